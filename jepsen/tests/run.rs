//! `cairn-jepsen run` against real processes: a short run on a 3-member cairn under SIGKILL
//! and partitions is linearizable and its watchers keep etcd's guarantees, the same
//! workload against the reference etcd 3.4 (`--endpoints`) is linearizable, and a stale read
//! doctored into a recorded history is a violation with an HTML page.
//!
//! Needs the cairn binary built next to this test (`cargo build -p cairn-node --bin cairn`,
//! which `cargo test --workspace` does) and the reference etcd installed. The cairn run uses
//! ports 43100+; the etcd cluster comes from the tests crate's harness, on free ports.

#![cfg(not(madsim))]

use std::process::{Command, Output};

use cairn_tests::{Cluster, Kind, workspace_bin};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-jepsen");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cairn-jepsen")
}

/// The stdout line of a file's verdict: `PATH<TAB>...`.
fn verdict_of(stdout: &str, file: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{file}\t")))
        .unwrap_or_else(|| panic!("no verdict line for {file} in:\n{stdout}"))
        .to_string()
}

#[test]
fn cairn_under_kill_and_partition_is_linearizable_and_watchers_keep_the_guarantees() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let binary = workspace_bin("cairn");
    let out = run(&[
        "run",
        "--binary",
        &binary.display().to_string(),
        "--dir",
        &run_dir.display().to_string(),
        "--time-limit",
        "16",
        "--seed",
        "3",
        "--nemesis",
        "kill,partition,isolate-leader",
        "--base-port",
        "43100",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let history = run_dir.join("history.jsonl").display().to_string();
    let watch = run_dir.join("watch.jsonl").display().to_string();
    assert_eq!(
        verdict_of(&stdout, &history),
        "linearizable",
        "{stdout}\n{stderr}"
    );
    assert_eq!(verdict_of(&stdout, &watch), "ok", "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("seed 3\n"), "{stdout}");

    // The nemesis did kill a member and cut the network, and the workload got through.
    let nemesis = std::fs::read_to_string(run_dir.join("nemesis.log")).unwrap();
    assert!(nemesis.contains("kill n"), "{nemesis}");
    assert!(
        nemesis.contains("partition") || nemesis.contains("isolate leader"),
        "{nemesis}"
    );
    assert!(nemesis.contains("converged at revision"), "{nemesis}");
    let recorded = std::fs::read_to_string(&history).unwrap();
    assert!(
        recorded.lines().count() > 100,
        "too few events:\n{recorded}"
    );
    assert!(
        recorded.contains(r#""type":"ok","f":"write""#),
        "no write succeeded"
    );
    assert!(!stdout.contains("could not be attributed"), "{stdout}");

    // The same history with a stale read doctored in is a violation with an HTML page.
    let doctored = dir.path().join("doctored.jsonl");
    std::fs::write(&doctored, with_stale_read(&recorded)).unwrap();
    let html_dir = dir.path().join("html");
    let out = run(&[
        "check",
        "--html",
        &html_dir.display().to_string(),
        &doctored.display().to_string(),
    ]);
    let doctored_name = doctored.display().to_string();
    assert_eq!(verdict_of(&text(&out.stdout), &doctored_name), "violation");
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(html_dir.join("doctored.jsonl.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
}

/// `history` with, after its last event: write "7" to r/0, write "8" to r/0, then a read of
/// r/0 returning "7" — stale, since "8" was written before the read began.
fn with_stale_read(history: &str) -> String {
    let last_time = history
        .lines()
        .filter_map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).ok()?;
            json.get("time")?.as_u64()
        })
        .max()
        .unwrap_or(0);
    let mut doctored = history.to_string();
    let events = [
        (900_001, "invoke", "write", r#""7""#),
        (900_001, "ok", "write", r#""7""#),
        (900_001, "invoke", "write", r#""8""#),
        (900_001, "ok", "write", r#""8""#),
        (900_002, "invoke", "read", "null"),
        (900_002, "ok", "read", r#""7""#),
    ];
    for (i, (process, kind, f, value)) in events.into_iter().enumerate() {
        let time = last_time + 1000 * (i as u64 + 1);
        doctored.push_str(&format!(
            "{{\"process\":{process},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"r/0\",\"value\":{value},\"time\":{time}}}\n"
        ));
    }
    doctored
}

#[test]
fn reference_etcd_via_endpoints_is_linearizable() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Cluster::start(Kind::Etcd, 3);
    // Twice against the same cluster: the second run starts from the keys the first left.
    for (attempt, seed) in [(1, "5"), (2, "6")] {
        let run_dir = dir.path().join(format!("run{attempt}"));
        let out = run(&[
            "run",
            "--endpoints",
            &etcd.endpoints().join(","),
            "--dir",
            &run_dir.display().to_string(),
            "--time-limit",
            "5",
            "--seed",
            seed,
        ]);
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        let history = run_dir.join("history.jsonl").display().to_string();
        let watch = run_dir.join("watch.jsonl").display().to_string();
        assert!(
            stdout.contains(&format!("{history}\tlinearizable")),
            "run {attempt}: {stdout}\n{stderr}"
        );
        assert_eq!(verdict_of(&stdout, &watch), "ok", "{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        // No processes of its own: no nemesis, no member logs.
        assert!(!run_dir.join("n0.log").exists());
        let recorded = std::fs::read_to_string(&history).unwrap();
        assert!(recorded.contains(r#""type":"ok","f":"write""#));
    }
}

#[test]
fn unknown_nemesis_fault_is_a_usage_error() {
    let out = run(&["run", "--nemesis", "kill,meteor", "--time-limit", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown nemesis fault \"meteor\""));
}
