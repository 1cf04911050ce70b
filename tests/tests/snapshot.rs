//! `Maintenance.Snapshot`: the reference etcdctl downloads a cairn snapshot (`snapshot
//! save`), and the file verifies as a cairn snapshot of the store at that revision.

#![cfg(not(madsim))]

use cairn_tests::{Kind, Server, etcdctl};

#[test]
fn etcdctl_snapshot_save_downloads_a_verifiable_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    for i in 0..50 {
        assert!(
            etcdctl(
                &server.endpoint(),
                &["put", &format!("k{i}"), &"v".repeat(i * 100)]
            )
            .status
            .success()
        );
    }
    let file = dir.path().join("backup.db");
    let out = etcdctl(
        &server.endpoint(),
        &["snapshot", "save", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&file).unwrap();
    let header = cairn_core::snapshot::verify(&bytes).expect("a valid cairn snapshot");
    assert_eq!(header.revision, 51);

    let mut damaged = bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    let err = cairn_core::snapshot::verify(&damaged).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}
