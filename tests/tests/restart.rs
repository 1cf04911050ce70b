//! Restarting a member on its data dir, cleanly (SIGTERM) and with bootstrap flags that no
//! longer match: etcd reads its membership from the data dir and ignores
//! `--initial-cluster*` then, and so must cairn.

#![cfg(not(madsim))]

use cairn_tests::{Kind, Server, etcdctl};

fn stdout(endpoint: &str, args: &[&str]) -> String {
    let out = etcdctl(endpoint, args);
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes keys, stops with SIGTERM, restarts with another `--initial-cluster-token`: the
/// member serves every key at the same revision.
fn restart_keeps_data_and_ignores_bootstrap_flags(kind: Kind) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_with(kind, dir.path(), &["--initial-cluster-token", "first"]);
    let endpoint = server.endpoint();
    for i in 0..200 {
        stdout(&endpoint, &["put", &format!("k{i:03}"), &format!("v{i}")]);
    }
    let before = stdout(&endpoint, &["get", "k", "--prefix", "-w", "json"]);
    let status = server.terminate();
    if kind == Kind::Cairn {
        // etcd re-raises the signal after its clean stop; cairn exits with 0.
        assert_eq!(status, Some(0), "cairn exits cleanly on SIGTERM");
    }

    server.set_extra_args(&["--initial-cluster-token", "second"]);
    server.start_again();
    server.wait_until_serving();
    let last = stdout(&endpoint, &["get", "k199"]);
    let after = stdout(&endpoint, &["get", "k", "--prefix", "-w", "json"]);
    let same_kvs = strip_header(&before) == strip_header(&after);
    let count = serde_json::from_str::<serde_json::Value>(&after).expect("json")["count"].clone();
    format!("count {count}\n{last}same kvs and revisions: {same_kvs}\n")
}

/// The JSON of a range without its header (the raft term moves on a restart).
fn strip_header(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    serde_json::to_string(&value["kvs"]).expect("json")
}

#[test]
fn a_restarted_member_keeps_its_data_and_ignores_bootstrap_flags_as_etcd() {
    let etcd = restart_keeps_data_and_ignores_bootstrap_flags(Kind::Etcd);
    let cairn = restart_keeps_data_and_ignores_bootstrap_flags(Kind::Cairn);
    assert!(etcd.contains("same kvs and revisions: true"), "{etcd}");
    assert_eq!(etcd, cairn);
}
