//! The same etcdctl 3.4 session against the reference etcd and against cairn: every
//! command's stdout, stderr and exit code must be identical (member/cluster ids and the raft
//! term, which differ by construction, are masked).

#![cfg(not(madsim))]

use cairn_tests::{Kind, Server, etcdctl_with_stdin, mask_number_after};

/// One etcdctl invocation: arguments and standard input.
struct Step {
    args: Vec<String>,
    stdin: String,
}

fn step(args: &[&str]) -> Step {
    Step {
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: String::new(),
    }
}

fn piped(args: &[&str], stdin: &str) -> Step {
    Step {
        stdin: stdin.to_string(),
        ..step(args)
    }
}

fn scenario() -> Vec<Step> {
    let mut steps = vec![
        step(&["put", "a", "1"]),
        step(&["put", "b", "2"]),
        step(&["put", "c", "3"]),
        step(&["get", "a"]),
        step(&["get", "a", "-w", "json"]),
        step(&["get", "a", "c"]),
        step(&["get", "a", "c", "-w", "json"]),
        step(&["get", "--from-key", "b"]),
        step(&["get", "--from-key", ""]),
        step(&["get", "--prefix", ""]),
        step(&["get", "--prefix", "", "--limit", "2"]),
        step(&["get", "--prefix", "", "--limit", "2", "-w", "json"]),
        step(&["get", "--prefix", "", "--keys-only"]),
        step(&["get", "--prefix", "", "--count-only", "-w", "json"]),
        step(&["get", "--print-value-only", "b"]),
        step(&["get", "--rev", "2", "--prefix", ""]),
        step(&["get", "--rev", "1", "a"]),
        step(&["get", "missing"]),
        step(&["get", "missing", "-w", "json"]),
        step(&["put", "a", "11", "--prev-kv"]),
        step(&["put", "a", "12", "--prev-kv", "-w", "json"]),
        step(&["get", "a", "-w", "json"]),
        step(&["put", "a", "--ignore-value"]),
        step(&["get", "a", "-w", "json"]),
        step(&["put", "nokey", "--ignore-value"]),
        step(&["put", "nokey", "v", "--lease", "1234"]),
        step(&["put", "a", "v", "--ignore-lease"]),
        step(&["del", "b"]),
        step(&["del", "b"]),
        step(&["del", "b", "-w", "json"]),
        step(&["get", "--prefix", ""]),
        step(&["del", "--prev-kv", "a"]),
        step(&["put", "a", "again"]),
        step(&["get", "a", "-w", "json"]),
        step(&["put", "foo/1", "x"]),
        step(&["put", "foo/2", "y"]),
        step(&["put", "foo/3", "z"]),
        step(&["put", "foo/2", "yy"]),
        step(&[
            "get",
            "--prefix",
            "foo/",
            "--sort-by",
            "MODIFY",
            "--order",
            "DESCEND",
        ]),
        step(&[
            "get",
            "--prefix",
            "foo/",
            "--sort-by",
            "VERSION",
            "--order",
            "ASCEND",
        ]),
        step(&[
            "get",
            "--prefix",
            "foo/",
            "--sort-by",
            "VALUE",
            "--order",
            "DESCEND",
        ]),
        step(&["get", "--prefix", "foo/", "--sort-by", "CREATE"]),
        step(&["get", "--prefix", "foo/", "--order", "DESCEND"]),
        step(&["get", "--prefix", "foo/", "--min-mod-rev", "11"]),
        step(&["get", "--prefix", "foo/", "--max-mod-rev", "10"]),
        step(&[
            "get",
            "--prefix",
            "foo/",
            "--min-create-rev",
            "10",
            "--max-create-rev",
            "11",
        ]),
        step(&["get", "--prefix", "foo/", "--consistency", "s"]),
        step(&["get", "foo/", "foo/3"]),
        step(&["get", "foo/3", "foo/1"]),
        step(&["del", "foo/1", "foo/3"]),
        step(&["get", "--prefix", "foo/"]),
        step(&["del", "--prefix", "foo/", "--prev-kv", "-w", "json"]),
        step(&["del", "--from-key", "z"]),
        piped(&["txn"], "value(\"c\") = \"3\"\n\nput c 33\n\nput c 0\n\n"),
        step(&["get", "c"]),
        piped(&["txn"], "value(\"c\") = \"3\"\n\nput c 34\n\nget c\n\n"),
        piped(
            &["txn", "-w", "json"],
            "mod(\"c\") > \"0\"\n\nget c\nput d 4\n\ndel c\n\n",
        ),
        piped(
            &["txn"],
            "ver(\"c\") = \"2\"\ncreate(\"c\") > \"0\"\n\ndel c\nput e 5\n\n\n",
        ),
        piped(&["txn"], "value(\"zzz\") = \"\"\n\n\nput zzz 1\n\n"),
        piped(&["txn"], "\nput x 1\nput x 2\n\n\n"),
        piped(&["txn"], "\nput y 1\ndel --prefix y\n\n\n"),
        piped(&["txn"], "\nget --prefix \"\"\n\n\n"),
        piped(&["txn", "-w", "json"], "\nput t1 a\nput t2 b\ndel t1\n\n\n"),
        step(&["get", "--prefix", "t", "-w", "json"]),
        step(&["compaction", "3"]),
        step(&["compaction", "3"]),
        step(&["compaction", "2"]),
        step(&["compaction", "100000"]),
        step(&["get", "--rev", "2", "a"]),
        step(&["get", "--rev", "3", "--prefix", ""]),
        step(&["get", "--rev", "100000", "a"]),
        step(&["get", "--prefix", "", "-w", "json"]),
        step(&["put", "", "empty"]),
        step(&["get", ""]),
        step(&["del", ""]),
        step(&["put", "k\u{1}bin", "v\u{2}"]),
        step(&["get", "k\u{1}bin", "-w", "json"]),
        step(&["put", "sp ace", "va lue"]),
        step(&["get", "sp ace"]),
        step(&["put", "uni", "h\u{e9}llo \u{2603}"]),
        step(&["get", "uni", "--hex"]),
        step(&["put", "v1", "same"]),
        step(&["put", "v1", "same"]),
        step(&["get", "v1", "-w", "json"]),
        step(&["del", "v1"]),
        step(&["put", "v1", "reborn"]),
        step(&["get", "v1", "-w", "json"]),
        step(&["get", "v1", "--rev", "90"]),
        step(&["compaction", "--physical", "88"]),
        step(&["get", "--prefix", "v", "-w", "json"]),
        step(&["member", "list", "-w", "json"]),
        step(&[
            "get",
            "--prefix",
            "",
            "--limit",
            "1",
            "--sort-by",
            "KEY",
            "--order",
            "DESCEND",
        ]),
        step(&["get", "a", "--rev", "-1"]),
    ];
    let too_many: String = (0..129).map(|i| format!("put k{i} v\n")).collect();
    steps.push(piped(&["txn"], &format!("\n{too_many}\n\n")));
    steps.push(piped(&["put", "big"], &"x".repeat(1_600_000)));
    steps.push(step(&["get", "big", "--count-only"]));
    steps.push(step(&["endpoint", "hashkv"]));
    steps.push(step(&["endpoint", "hashkv", "-w", "json"]));
    steps
}

/// Masks what legitimately differs between two clusters: ids and the raft term.
fn normalize(text: &str) -> String {
    let mut out: String = text
        .lines()
        .filter(|line| !line.starts_with("{\"level\":"))
        .map(|line| format!("{line}\n"))
        .collect();
    out = mask_number_after(&out, "127.0.0.1:", "PORT");
    for field in ["cluster_id", "member_id", "raft_term", "ID"] {
        out = mask_number_after(&out, &format!("\"{field}\":"), "N");
    }
    out
}

#[test]
fn etcdctl_session_answers_identically_on_etcd_and_cairn() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    let mut differences = Vec::new();
    let steps = scenario();
    for (i, step) in steps.iter().enumerate() {
        let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
        let want = etcdctl_with_stdin(&etcd.endpoint(), &args, &step.stdin);
        let got = etcdctl_with_stdin(&cairn.endpoint(), &args, &step.stdin);
        let render = |o: &std::process::Output| {
            format!(
                "exit {:?}\nstdout: {}\nstderr: {}",
                o.status.code(),
                normalize(&String::from_utf8_lossy(&o.stdout)),
                normalize(&String::from_utf8_lossy(&o.stderr))
            )
        };
        let (want, got) = (render(&want), render(&got));
        if want != got {
            differences.push(format!(
                "step {i} {:?}\n--- etcd\n{want}\n--- cairn\n{got}",
                step.args
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} steps differ:\n\n{}",
        differences.len(),
        steps.len(),
        differences.join("\n\n")
    );
}
