//! The `cairn-jepsen check-watch` contract, run as a real process: `FILE<TAB>ok` or
//! `FILE<TAB>violation: MESSAGE` on stdout, exit codes 0/1/2, file:line errors for malformed
//! input.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-jepsen");

/// Two revisions (the second a txn of two puts), a compaction, and two watchers: one over
/// every key from revision 1, one over key "a" only, resumed at revision 3 with prev_kv.
const HISTORY: &str = r#"{"kind":"commit","revision":2,"events":[{"type":"PUT","key":"a","value":"1","create_revision":2,"mod_revision":2,"version":1}]}
{"kind":"watch","watcher":1,"request":{"key":"","range_end":"\u0000","start_revision":1}}
{"kind":"response","watcher":1,"header_revision":2,"events":[{"type":"PUT","key":"a","value":"1","create_revision":2,"mod_revision":2,"version":1}]}
{"kind":"commit","revision":3,"events":[{"type":"PUT","key_b64":"Yg==","value":"1","create_revision":3,"mod_revision":3,"version":1},{"type":"PUT","key":"a","value":"2","create_revision":2,"mod_revision":3,"version":2}]}
{"kind":"response","watcher":1,"header_revision":3,"events":[{"type":"PUT","key":"b","value":"1","create_revision":3,"mod_revision":3,"version":1},{"type":"PUT","key":"a","value":"2","create_revision":2,"mod_revision":3,"version":2}]}
{"kind":"compact","revision":3}
{"kind":"watch","watcher":2,"request":{"key":"a","start_revision":3,"prev_kv":true}}
{"kind":"response","watcher":2,"header_revision":3,"events":[{"type":"PUT","key":"a","value":"2","create_revision":2,"mod_revision":3,"version":2,"prev_kv":{"key":"a","value":"1","create_revision":2,"mod_revision":2,"version":1}}]}
"#;

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cairn-jepsen")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test history");
    path.display().to_string()
}

#[test]
fn check_watch_prints_ok_violation_and_malformed_with_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.jsonl", HISTORY);
    let out = run(&["check-watch", &good]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{good}\tok\n"));

    // Watcher 1 gets revision 3's second event twice.
    let doubled = HISTORY.replace(
        r#""version":2}]}
{"kind":"compact""#,
        r#""version":2},{"type":"PUT","key":"a","value":"2","create_revision":2,"mod_revision":3,"version":2}]}
{"kind":"compact""#,
    );
    assert_ne!(doubled, HISTORY);
    let bad = write(dir.path(), "bad.jsonl", &doubled);
    let out = run(&["check-watch", &good, &bad]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{good}\tok\n{bad}\tviolation: [unique] watcher 1, response 1, event 2 (line 5): \
             expected each event once (PUT \"a\" @3 came already in response 1, event 1), \
             got PUT \"a\" @3\n"
        )
    );

    let broken = write(
        dir.path(),
        "broken.jsonl",
        &HISTORY.replace(
            r#""watcher":2,"header_revision""#,
            r#""watcher":3,"header_revision""#,
        ),
    );
    let out = run(&["check-watch", &bad, &broken]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{bad}\tviolation: [unique] watcher 1, response 1, event 2 (line 5): expected each event once (PUT \"a\" @3 came already in response 1, event 1), got PUT \"a\" @3\n"
        )
    );
    assert_eq!(
        text(&out.stderr),
        format!("{broken}:8: expected a \"watch\" line for watcher 3 before its responses\n")
    );
}

#[test]
fn check_watch_compacted_start_must_be_canceled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let late = format!(
        "{HISTORY}{}\n",
        r#"{"kind":"watch","watcher":3,"request":{"key":"a","start_revision":2}}"#
    );
    let canceled = format!(
        "{late}{}\n",
        r#"{"kind":"response","watcher":3,"header_revision":3,"canceled":true,"compact_revision":3}"#
    );
    let file = write(dir.path(), "canceled.jsonl", &canceled);
    let out = run(&["check-watch", &file]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let file = write(dir.path(), "uncanceled.jsonl", &late);
    let out = run(&["check-watch", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("violation: [compaction] watcher 3 (line 9)"),
        "{}",
        text(&out.stdout)
    );
}
