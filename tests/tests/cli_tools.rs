//! cairnctl's tool commands on real processes: `make-mirror` between two cairn servers
//! (the initial copy, then changes followed, one destination transaction per source
//! revision), `check perf`/`check datascale` refusals compared with etcdctl 3.4, and
//! `completion` scripts accepted by bash and completing the command tree.

#![cfg(not(madsim))]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cairn_tests::{Kind, Server, etcdctl, run_with_stdin, workspace_bin};

fn cairnctl(endpoint: &str, args: &[&str]) -> Output {
    run_with_stdin(&workspace_bin("cairnctl"), endpoint, args, "")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `get --prefix` at `endpoint` as `key=value` lines.
fn pairs(endpoint: &str, prefix: &str) -> String {
    let out = ok(cairnctl(endpoint, &["get", "--prefix", prefix]));
    out.lines()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|kv| format!("{}={}\n", kv[0], kv.get(1).unwrap_or(&"")))
        .collect()
}

/// The `ModRevision` of `key` at `endpoint` (`-w fields`).
fn mod_revision(endpoint: &str, key: &str) -> String {
    let out = ok(cairnctl(endpoint, &["get", key, "-w", "fields"]));
    out.lines()
        .find(|l| l.starts_with("\"ModRevision\""))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn make_mirror_copies_the_prefix_then_follows_its_changes() {
    let (src_dir, dst_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = Server::start(Kind::Cairn, src_dir.path());
    let dest = Server::start(Kind::Cairn, dst_dir.path());
    let (src, dst) = (source.endpoint(), dest.endpoint());
    for (k, v) in [("/m/a", "1"), ("/m/b", "2"), ("/x", "outside")] {
        ok(cairnctl(&src, &["put", k, v]));
    }
    let mut mirror = Command::new(workspace_bin("cairnctl"))
        .args(["--endpoints", &src, "make-mirror", "--prefix", "/m/"])
        .args(["--dest-prefix", "/n/", &dst])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start make-mirror");
    let wait_for = |expected: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = pairs(&dst, "/n/");
            if got == expected || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let copied = wait_for("/n/a=1\n/n/b=2\n");
    ok(cairnctl(&src, &["put", "/m/c", "3"]));
    ok(cairnctl(&src, &["del", "/m/a"]));
    ok(run_with_stdin(
        &workspace_bin("cairnctl"),
        &src,
        &["txn"],
        "\nput /m/d 4\nput /m/e 5\n\n\n",
    ));
    let followed = wait_for("/n/b=2\n/n/c=3\n/n/d=4\n/n/e=5\n");
    let (d, e) = (mod_revision(&dst, "/n/d"), mod_revision(&dst, "/n/e"));
    let outside = pairs(&dst, "/x");
    let _ = mirror.kill();
    let output = mirror.wait_with_output().expect("make-mirror output");
    assert_eq!(copied, "/n/a=1\n/n/b=2\n", "{}", text(&output.stderr));
    assert_eq!(followed, "/n/b=2\n/n/c=3\n/n/d=4\n/n/e=5\n");
    assert_eq!(
        d, e,
        "one source transaction is one destination transaction"
    );
    assert_eq!(outside, "", "keys outside the prefix are not mirrored");
}

#[test]
fn make_mirror_and_check_refuse_bad_input_as_etcdctl() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    let endpoint = server.endpoint();
    ok(cairnctl(&endpoint, &["put", "/etcdctl-check-perf/k", "v"]));
    let cases: [&[&str]; 6] = [
        &["make-mirror"],
        &[
            "make-mirror",
            "--dest-prefix",
            "/a",
            "--no-dest-prefix",
            "x:1",
        ],
        &["check", "perf", "--load", "huge"],
        &["check", "datascale", "--load", "x"],
        &["check", "perf"],
        &["check", "datascale", "--prefix", "/etcdctl-check-perf/"],
    ];
    for args in cases {
        let (ours, theirs) = (cairnctl(&endpoint, args), etcdctl(&endpoint, args));
        let errors = |out: &Output| -> String {
            text(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("Error:"))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(errors(&ours), errors(&theirs), "{args:?}");
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
    }
}

#[test]
fn check_datascale_reads_the_memory_metric_and_passes_as_with_etcdctl() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    let endpoint = server.endpoint();
    let args = ["check", "datascale"];
    for out in [cairnctl(&endpoint, &args), etcdctl(&endpoint, &args)] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with("Start data scale check for work load [10000 key-value pairs"),
            "{stdout}"
        );
        let verdict = stdout.lines().last().unwrap_or_default();
        assert!(
            verdict.starts_with("PASS: Approximate system memory used : "),
            "{stdout}"
        );
    }
    assert_eq!(
        ok(cairnctl(
            &endpoint,
            &["get", "--prefix", "/etcdctl-check-datascale/"]
        )),
        "",
        "the check's keys were left behind"
    );
}

/// What the bash completion of `cairnctl` offers for the words typed so far (the last one
/// being completed).
fn complete(script: &str, typed: &[&str]) -> String {
    let words: Vec<String> = typed.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=(cairnctl {})\nCOMP_CWORD={}\n_cairnctl\necho \"${{COMPREPLY[*]}}\"\n",
        words.join(" "),
        typed.len()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim_end().to_string()
}

#[test]
fn completion_scripts_cover_the_command_tree() {
    let bash = ok(Command::new(workspace_bin("cairnctl"))
        .args(["completion", "bash"])
        .output()
        .expect("run cairnctl"));
    let checked = Command::new("bash")
        .args(["-n", "-c", &bash])
        .output()
        .expect("run bash -n");
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    let top = complete(&bash, &[""]);
    for command in [
        "alarm",
        "auth",
        "bench",
        "check",
        "compaction",
        "completion",
        "defrag",
        "del",
        "elect",
        "endpoint",
        "get",
        "help",
        "lease",
        "lock",
        "make-mirror",
        "member",
        "move-leader",
        "put",
        "role",
        "snapshot",
        "txn",
        "user",
        "version",
        "watch",
    ] {
        assert!(bash.contains(&format!("\"/{command}\")")), "{command}");
        assert!(top.split(' ').any(|w| w == command), "{command} in {top}");
    }
    assert_eq!(complete(&bash, &["mem"]), "member");
    assert_eq!(complete(&bash, &["member", "l"]), "list");
    assert_eq!(complete(&bash, &["-w", "json", "check", "p"]), "perf");
    let flags = complete(&bash, &["get", "k", "--pr"]);
    assert_eq!(flags, "--prefix --print-value-only");
    assert_eq!(complete(&bash, &["put", "k", "v", "--pr"]), "--prev-kv");
    let zsh = ok(Command::new(workspace_bin("cairnctl"))
        .args(["completion", "zsh"])
        .output()
        .expect("run cairnctl"));
    assert!(zsh.starts_with("#compdef cairnctl\n"));
    assert!(zsh.contains("bashcompinit") && zsh.contains(&bash));
}

/// The number after `label` in `text`.
fn number_after(text: &str, label: &str) -> u64 {
    let start = text.find(label).map_or(text.len(), |i| i + label.len());
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

#[test]
fn bench_txn_mixed_and_watch_latency_report_what_they_measured() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    let endpoint = server.endpoint();
    let mixed = ok(cairnctl(
        &endpoint,
        &[
            "bench",
            "txn-mixed",
            "--total",
            "200",
            "--key-space-size",
            "10",
            "--clients",
            "4",
        ],
    ));
    assert!(
        mixed.starts_with("bench with linearizable range\nTotal Read Ops: "),
        "{mixed}"
    );
    let (reads, writes) = (
        number_after(&mixed, "Total Read Ops: "),
        number_after(&mixed, "Total Write Ops: "),
    );
    assert_eq!(reads + writes, 200, "{mixed}");
    assert!(
        reads > 50 && writes > 50,
        "an even mix: {reads} reads, {writes} writes"
    );
    let keys = ok(cairnctl(&endpoint, &["get", "", "--prefix", "--keys-only"]));
    let written = keys.lines().filter(|l| !l.is_empty()).count();
    assert!(
        (1..=10).contains(&written),
        "{written} keys in a key space of 10"
    );

    let latency = ok(cairnctl(
        &endpoint,
        &[
            "bench",
            "watch-latency",
            "--total",
            "20",
            "--put-rate",
            "200",
            "--clients",
            "3",
            "-w",
            "json",
        ],
    ));
    assert!(
        latency.contains("\"benchmark\":\"watch-latency\""),
        "{latency}"
    );
    assert_eq!(
        number_after(&latency, "\"requests\":"),
        60,
        "3 watchers x 20 puts"
    );
    assert_eq!(number_after(&latency, "\"errors\":"), 0);
    let value = ok(cairnctl(&endpoint, &["get", "", "--prefix", "--keys-only"]));
    assert!(
        value.lines().count() > keys.lines().count(),
        "the watched key was written"
    );
}
