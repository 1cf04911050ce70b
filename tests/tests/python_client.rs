//! A client written in another language: the python-etcd3 library (Debian python3-etcd3,
//! gRPC) runs the same session (tests/clients/python_etcd3.py: get/put, prefix reads,
//! compare-and-swap, transactions, leases with keys, prefix watch, its lock recipe, delete
//! prefix, status, members) against the reference etcd 3.4 and against cairn; the printed
//! results must be identical.

#![cfg(not(madsim))]

use std::path::Path;
use std::process::Command;

use cairn_tests::{Kind, Server};

fn session(server: &Server) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python_etcd3.py");
    let port = server
        .endpoint()
        .rsplit_once(':')
        .map(|(_, port)| port.to_string())
        .expect("endpoint has a port");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&port)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python-etcd3 session failed against {:?}: {}",
        server.endpoint(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn python_etcd3_session_answers_as_against_etcd() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = session(&Server::start(Kind::Etcd, etcd_dir.path()));
    let cairn = session(&Server::start(Kind::Cairn, cairn_dir.path()));
    assert_eq!(cairn, etcd);
    assert!(cairn.contains("('lock', True, True)"), "{cairn}");
}
