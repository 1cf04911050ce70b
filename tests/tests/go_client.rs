//! etcd's own Go client: tests/clients/go_clientv3/main.go, built against Debian's etcd 3.4
//! Go sources (golang-etcd-server-dev, GOPATH mode) runs put/get, txn, watch with prev_kv
//! and a progress request, leases, and clientv3/concurrency's Mutex, Election and STM (all
//! four isolation levels) against the reference etcd 3.4 and against cairn; the printed
//! transcripts must be identical.

#![cfg(not(madsim))]

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_tests::{Kind, Server, installed};

/// Where Debian installs the Go sources of etcd 3.4 and their dependencies.
const GOPATH: &str = "/usr/share/gocode";

/// Builds the Go client into the test target dir (Go's build cache there too).
fn build_client() -> PathBuf {
    let go = installed("go");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/go_clientv3/main.go");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let binary = out_dir.join("go_clientv3");
    let built = Command::new(go)
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", out_dir.join("go-build-cache"))
        .env("GOFLAGS", "")
        .output()
        .expect("run go build");
    assert!(
        built.status.success(),
        "go build of {} failed (scripts/install-test-deps installs golang-go and \
         golang-etcd-server-dev): {}",
        source.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    binary
}

fn session(client: &Path, server: &Server) -> String {
    let out = Command::new(client)
        .arg(server.endpoint())
        .output()
        .expect("run the Go client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "Go client session failed against {}:\n{stdout}\n{}",
        server.endpoint(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn go_clientv3_session_answers_as_against_etcd() {
    let client = build_client();
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = session(&client, &Server::start(Kind::Etcd, etcd_dir.path()));
    let cairn = session(&client, &Server::start(Kind::Cairn, cairn_dir.path()));
    assert_eq!(cairn, etcd);
    for line in [
        "owner 1: true",
        "lock 2 while held: context deadline exceeded",
        "leader after resign: election: no leader",
        "stm 3: rev=26 succeeded=true",
    ] {
        assert!(cairn.contains(line), "missing {line:?} in:\n{cairn}");
    }
}
