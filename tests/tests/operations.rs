//! Operations on real processes: snapshot save/status/restore into a new cluster, the
//! NOSPACE alarm under a small `--quota-backend-bytes` (differentially against the
//! reference etcd 3.4), defragmentation and `Maintenance.Hash`.

#![cfg(not(madsim))]

use std::path::Path;

use sha2::Digest as _;
use std::process::Output;
use std::time::{Duration, Instant};

use cairn_tests::{
    Cluster, Kind, Server, etcdctl, mask_number_after, run_with_stdin, workspace_bin,
};

fn cairnctl(endpoint: &str, args: &[&str]) -> Output {
    run_with_stdin(&workspace_bin("cairnctl"), endpoint, args, "")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", stderr(&out));
    stdout(&out)
}

/// The `Error: ...` lines of stderr (the zap warnings carry timestamps and ids).
fn error_lines(out: &Output) -> String {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A value of `len` bytes that compression cannot shrink, different for each `seed`.
fn noise(seed: u64, len: usize) -> String {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    [(state % 62) as usize],
            )
        })
        .collect()
}

/// The `"kvs"` array and the header revision of `get "" --prefix -w json`.
fn kvs_and_revision(endpoint: &str) -> (String, i64) {
    let json = ok(etcdctl(
        endpoint,
        &["get", "", "--prefix", "-w", "json", "--consistency", "s"],
    ));
    let kvs = json
        .find("\"kvs\":")
        .and_then(|start| {
            json[start..]
                .find(",\"count\"")
                .map(|end| &json[start..start + end])
        })
        .unwrap_or_default()
        .to_string();
    (kvs, revision_in(&json))
}

fn revision_in(json: &str) -> i64 {
    let start = json.find("\"revision\":").map_or(json.len(), |i| i + 11);
    json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

fn load(endpoint: &str) {
    for i in 0..60 {
        let key = format!("key{:02}", i % 25);
        ok(etcdctl(endpoint, &["put", &key, &noise(i, 200)]));
    }
    ok(etcdctl(endpoint, &["del", "key03"]));
    ok(etcdctl(endpoint, &["compaction", "20"]));
    ok(etcdctl(endpoint, &["put", "last", "value"]));
}

#[test]
fn a_restored_snapshot_starts_a_new_cluster_with_every_key_and_revision() {
    let old = Cluster::start(Kind::Cairn, 3);
    let endpoint = old.members[1].endpoint();
    load(&endpoint);
    let before = kvs_and_revision(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let file = file.to_str().unwrap();

    let several = format!("{},{}", old.members[0].endpoint(), endpoint);
    let refused = cairnctl(&several, &["snapshot", "save", file]);
    assert_eq!(refused.status.code(), Some(5));
    assert!(error_lines(&refused).contains("snapshot must be requested to one selected node"));
    let saved = ok(cairnctl(&endpoint, &["snapshot", "save", file]));
    assert_eq!(saved, format!("Snapshot saved at {file}\n"));
    assert!(!Path::new(&format!("{file}.part")).exists());
    let status = ok(cairnctl(
        &endpoint,
        &["snapshot", "status", file, "-w", "json"],
    ));
    assert!(
        status.contains(&format!("\"revision\":{}", before.1)),
        "{status}"
    );

    // The reference etcdctl checks the SHA-256 trailer of what it downloads.
    let by_etcdctl = dir.path().join("etcdctl.db");
    ok(etcdctl(
        &endpoint,
        &["snapshot", "save", by_etcdctl.to_str().unwrap()],
    ));
    let header = cairn_core::snapshot::verify(&std::fs::read(&by_etcdctl).unwrap()).unwrap();
    assert_eq!(header.revision, before.1);

    let old_ids = member_ids(&ok(etcdctl(&endpoint, &["member", "list"])));
    let mut new = Cluster::plan(Kind::Cairn, 3, "cairn-restored");
    let initial = new.initial_cluster();
    for member in &new.members {
        let data_dir = member.data_dir().to_str().unwrap().to_string();
        let out = cairnctl(
            &endpoint,
            &[
                "snapshot",
                "restore",
                file,
                "--name",
                member.name(),
                "--data-dir",
                &data_dir,
                "--initial-cluster",
                &initial,
                "--initial-cluster-token",
                "cairn-restored",
                "--initial-advertise-peer-urls",
                &member.peer_url(),
            ],
        );
        ok(out);
    }
    drop(old);
    new.start_planned();
    for member in &new.members {
        assert_eq!(
            kvs_and_revision(&member.endpoint()),
            before,
            "{}",
            member.name()
        );
    }
    let compacted = etcdctl(&new.members[0].endpoint(), &["get", "key00", "--rev", "10"]);
    assert_eq!(
        error_lines(&compacted),
        "Error: etcdserver: mvcc: required revision has been compacted\n"
    );
    let put = ok(etcdctl(
        &new.members[2].endpoint(),
        &["put", "after", "restore"],
    ));
    assert_eq!(put, "OK\n");
    let new_ids = member_ids(&ok(etcdctl(
        &new.members[0].endpoint(),
        &["member", "list"],
    )));
    assert_eq!(new_ids.len(), 3);
    assert!(
        new_ids.iter().all(|id| !old_ids.contains(id)),
        "{old_ids:?} {new_ids:?}"
    );
}

/// The member ids (first column) of `member list`.
fn member_ids(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split(',').next())
        .map(str::to_string)
        .collect()
}

fn restore_into(file: &Path, data_dir: &Path) -> Output {
    cairnctl(
        "127.0.0.1:1",
        &[
            "snapshot",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    )
}

#[test]
fn damaged_snapshots_and_used_data_dirs_are_refused_leaving_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, &dir.path().join("server"));
    load(&server.endpoint());
    let file = dir.path().join("good.db");
    ok(cairnctl(
        &server.endpoint(),
        &["snapshot", "save", file.to_str().unwrap()],
    ));
    let good = std::fs::read(&file).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let flipped_file = dir.path().join("flipped.db");
    std::fs::write(&flipped_file, &flipped).unwrap();
    let target = dir.path().join("restored");
    let out = restore_into(&flipped_file, &target);
    assert_eq!(out.status.code(), Some(1));
    let errors = error_lines(&out);
    assert!(errors.starts_with("Error: expected sha256 ["), "{errors}");
    assert!(errors.contains("checksum mismatch"), "{errors}");
    assert!(!target.exists());

    let truncated_file = dir.path().join("truncated.db");
    std::fs::write(&truncated_file, &good[..good.len() - 100]).unwrap();
    let out = restore_into(&truncated_file, &target);
    assert_eq!(
        error_lines(&out),
        "Error: snapshot missing hash but --skip-hash-check=false\n"
    );
    assert!(!target.exists());

    // A well-formed trailer over bytes that are not a snapshot: refused by the restore
    // itself, after the storage was created, which must not be left behind.
    let mut garbage = noise(7, 1024).into_bytes();
    let digest = sha2::Sha256::digest(&garbage);
    garbage.extend_from_slice(&digest);
    let garbage_file = dir.path().join("garbage.db");
    std::fs::write(&garbage_file, &garbage).unwrap();
    let out = restore_into(&garbage_file, &target);
    assert!(
        error_lines(&out).contains("damaged snapshot"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = restore_into(&file, server.data_dir());
    assert_eq!(
        error_lines(&out),
        format!(
            "Error: data-dir {:?} exists\n",
            server.data_dir().display().to_string()
        )
    );

    let status = cairnctl(
        &server.endpoint(),
        &["snapshot", "status", flipped_file.to_str().unwrap()],
    );
    assert!(
        error_lines(&status).contains("checksum"),
        "{}",
        stderr(&status)
    );
    ok(restore_into(&file, &target));
    assert!(target.join("member").is_dir());
}

/// The quota scenario, as etcdctl sees it: fill until NOSPACE, check what still works,
/// then compact, defragment and disarm. Returns the transcript to compare.
fn quota_scenario(server: &Server) -> Vec<String> {
    let ep = server.endpoint();
    let mut transcript = Vec::new();
    let mut record = |label: &str, out: &Output| {
        let text = format!("{label}: {}{}", stdout(out), error_lines(out));
        let text = mask_number_after(&text, "memberID:", "<ID>");
        transcript.push(text.replace(&ep, "<EP>"));
    };
    let mut filled = None;
    for i in 0..400 {
        let out = etcdctl(&ep, &["put", &format!("k{i:03}"), &noise(i, 6000)]);
        if !out.status.success() {
            filled = Some(i);
            record("put over quota", &out);
            break;
        }
    }
    assert!(
        filled.is_some_and(|i| i > 5),
        "never hit the quota: {filled:?}"
    );
    record("alarm list", &etcdctl(&ep, &["alarm", "list"]));
    record("put", &etcdctl(&ep, &["put", "a", "b"]));
    record("get", &etcdctl(&ep, &["get", "k000", "--keys-only"]));
    record("del", &etcdctl(&ep, &["del", "k000"]));
    record("lease grant", &etcdctl(&ep, &["lease", "grant", "10"]));
    record(
        "txn",
        &run_with_stdin(
            &cairn_tests::installed("etcdctl"),
            &ep,
            &["txn"],
            "\nput x y\n\n",
        ),
    );
    let status = etcdctl(&ep, &["endpoint", "status"]);
    let shown = stdout(&status).contains("alarm:NOSPACE");
    record(
        &format!("status shows the alarm: {shown}"),
        &Output {
            stdout: vec![],
            ..status
        },
    );
    ok(etcdctl(&ep, &["del", "--prefix", "k"]));
    let revision = revision_in(&ok(etcdctl(&ep, &["get", "k", "-w", "json"])));
    ok(etcdctl(&ep, &["compaction", &revision.to_string()]));
    record("defrag", &etcdctl(&ep, &["defrag"]));
    record("put before disarm", &etcdctl(&ep, &["put", "a", "b"]));
    record("alarm disarm", &etcdctl(&ep, &["alarm", "disarm"]));
    record("put after disarm", &etcdctl(&ep, &["put", "a", "b"]));
    record("alarm list after", &etcdctl(&ep, &["alarm", "list"]));
    transcript
}

#[test]
fn nospace_alarm_caps_writes_until_compaction_defrag_and_disarm_as_in_etcd() {
    let quota = ["--quota-backend-bytes", "400000"];
    let etcd_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start_with(Kind::Etcd, etcd_dir.path(), &quota);
    let expected = quota_scenario(&etcd);
    drop(etcd);
    let cairn_dir = tempfile::tempdir().unwrap();
    let cairn = Server::start_with(Kind::Cairn, cairn_dir.path(), &quota);
    let actual = quota_scenario(&cairn);
    assert_eq!(actual, expected);
    assert!(
        expected
            .iter()
            .any(|l| l == "alarm list: memberID:<ID> alarm:NOSPACE \n"),
        "{expected:#?}"
    );
    assert!(
        expected
            .iter()
            .any(|l| l == "put: Error: etcdserver: mvcc: database space exceeded\n")
    );
}

#[test]
fn cairnctl_alarm_commands_print_what_etcdctl_prints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        Kind::Cairn,
        dir.path(),
        &["--quota-backend-bytes", "100000"],
    );
    let ep = server.endpoint();
    for i in 0..100 {
        if !etcdctl(&ep, &["put", &format!("k{i}"), &noise(i, 6000)])
            .status
            .success()
        {
            break;
        }
    }
    for format in ["simple", "json"] {
        let ours = cairnctl(&ep, &["alarm", "list", "-w", format]);
        let theirs = etcdctl(&ep, &["alarm", "list", "-w", format]);
        assert_eq!(stdout(&ours), stdout(&theirs), "-w {format}");
        assert!(stdout(&ours).contains("NOSPACE") || stdout(&ours).contains("\"alarm\":1"));
    }
    let ours = cairnctl(&ep, &["put", "a", "b"]);
    assert_eq!(
        error_lines(&ours),
        error_lines(&etcdctl(&ep, &["put", "a", "b"]))
    );
    let disarmed = ok(cairnctl(&ep, &["alarm", "disarm"]));
    assert!(disarmed.ends_with(" alarm:NOSPACE \n"), "{disarmed}");
    assert_eq!(ok(cairnctl(&ep, &["alarm", "list"])), "");
    assert_eq!(ok(cairnctl(&ep, &["alarm", "disarm"])), "");
}

#[test]
fn defrag_cluster_reaches_every_member_and_hashes_agree() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    let ep = cluster.members[0].endpoint();
    load(&ep);
    let out = ok(cairnctl(&ep, &["defrag", "--cluster"]));
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    let mut expected: Vec<String> = cluster
        .endpoints()
        .iter()
        .map(|e| format!("Finished defragmenting etcd member[http://{e}]"))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
    assert_eq!(
        ok(cairnctl(&ep, &["defrag"])),
        format!("Finished defragmenting etcd member[{ep}]\n")
    );
    let agreed = hashes_agree(&cluster.endpoints());
    ok(etcdctl(&ep, &["put", "one", "more"]));
    let after = hashes_agree(&cluster.endpoints());
    assert_ne!(agreed, after);
}

/// Waits (bounded) until every member answers the same `Maintenance.Hash`; returns it.
fn hashes_agree(endpoints: &[String]) -> u32 {
    let runtime = real_tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hashes: Vec<(u32, i64)> = endpoints
            .iter()
            .map(|e| {
                runtime.block_on(async {
                    let mut client = etcd_client::Client::connect([e.as_str()], None)
                        .await
                        .expect("connect");
                    let response = client.hash().await.expect("hash");
                    let revision = response.header().map_or(0, |h| h.revision());
                    (response.hash(), revision)
                })
            })
            .collect();
        if hashes.iter().all(|h| *h == hashes[0]) {
            return hashes[0].0;
        }
        assert!(
            Instant::now() < deadline,
            "members never agreed: {hashes:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `cairn` on `data_dir` (default name and loopback URLs on fresh ports) expecting it
/// to refuse to start; returns its exit code and stderr.
fn refused_start(data_dir: &Path) -> (Option<i32>, String) {
    let client = format!("http://127.0.0.1:{}", cairn_tests::free_port());
    let peer = format!("http://127.0.0.1:{}", cairn_tests::free_port());
    let mut child = std::process::Command::new(workspace_bin("cairn"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen-client-urls", &client, "--advertise-client-urls"])
        .arg(&client)
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls"])
        .arg(&peer)
        .arg("--initial-cluster")
        .arg(format!("default={peer}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cairn kept running on {}", data_dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), stderr(&out))
}

#[test]
fn a_data_dir_of_a_newer_storage_format_is_refused_and_left_untouched() {
    use cairn_core::storage::fjall::FjallEngine;
    use cairn_core::storage::{Durability, Engine, Space, WriteBatch, format};

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut server = Server::start(Kind::Cairn, &data_dir);
    ok(cairnctl(&server.endpoint(), &["put", "k", "v"]));
    assert_eq!(server.terminate(), Some(0));
    let member = data_dir.join("member");
    {
        let engine = FjallEngine::open(&member).unwrap();
        assert_eq!(
            format::recorded(&engine).unwrap(),
            Some(format::FORMAT_VERSION)
        );
        let mut batch = WriteBatch::new();
        let newer = format::FORMAT_VERSION + 1;
        batch.put(
            Space::RaftState,
            format::FORMAT_VERSION_KEY,
            newer.to_be_bytes().to_vec(),
        );
        engine.write(batch, Durability::Sync).unwrap();
    }

    let (code, err) = refused_start(&data_dir);
    assert_ne!(code, Some(0), "{err}");
    let expected = format!(
        "data dir {}: storage format version {} is newer than the version this cairn supports \
         ({}): the data dir was written by a newer cairn; run that version or a later one",
        data_dir.display(),
        format::FORMAT_VERSION + 1,
        format::FORMAT_VERSION
    );
    assert!(err.contains(&expected), "{err}");

    let engine = FjallEngine::open(&member).unwrap();
    assert_eq!(
        format::recorded(&engine).unwrap(),
        Some(format::FORMAT_VERSION + 1)
    );
}

/// The body of a plain HTTP/1.0 GET (the server closes the connection after it).
fn http_get(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(endpoint).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {endpoint}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// `dbSize` and `dbSizeInUse` of `endpoint status -w json`.
fn db_sizes(endpoint: &str) -> (i64, i64) {
    let json: serde_json::Value = serde_json::from_str(&ok(cairnctl(
        endpoint,
        &["endpoint", "status", "-w", "json"],
    )))
    .unwrap();
    let status = &json[0]["Status"];
    let field = |name: &str| status[name].as_i64().unwrap_or(-1);
    (field("dbSize"), field("dbSizeInUse"))
}

#[test]
fn db_size_in_use_counts_live_data_and_defrag_gives_the_rest_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, &dir.path().join("data"));
    let ep = server.endpoint();
    let value_bytes = 2000;
    let keys = 150;
    for i in 0..keys {
        ok(etcdctl(
            &ep,
            &["put", &format!("k{i:03}"), &noise(i, value_bytes)],
        ));
    }
    let (size, in_use) = db_sizes(&ep);
    let written = (keys * value_bytes as u64) as i64;
    assert!(in_use >= written, "in use {in_use} < {written} written");
    assert!(in_use <= size, "in use {in_use} > db size {size}");

    ok(etcdctl(&ep, &["del", "--prefix", "k"]));
    let revision = revision_in(&ok(etcdctl(&ep, &["get", "k", "-w", "json"])));
    ok(etcdctl(&ep, &["compaction", &revision.to_string()]));
    let (size_compacted, in_use_compacted) = db_sizes(&ep);
    assert!(
        in_use_compacted < written / 10,
        "in use {in_use_compacted} after deleting and compacting {written} bytes"
    );
    assert!(
        size_compacted >= written,
        "db size {size_compacted} shrank before defrag"
    );

    ok(etcdctl(&ep, &["defrag"]));
    let (size_defragged, in_use_defragged) = db_sizes(&ep);
    assert!(
        size_defragged < written / 2,
        "db size {size_defragged} after defrag (was {size_compacted})"
    );
    assert!(in_use_defragged <= size_defragged);
    let metrics = http_get(&ep, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("etcd_mvcc_db_total_size_in_use_in_bytes {in_use_defragged}")),
        "{metrics}"
    );
}

/// A tmpfs mounted for one test (root only); unmounted when dropped.
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount a tmpfs: {}", stderr(&out));
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "remount the tmpfs: {}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_stops_the_member_without_losing_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "20m");
    let mut server = Server::start(Kind::Cairn, &disk.dir.join("data"));
    let ep = server.endpoint();
    let value_bytes = 60_000;
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for i in 0..1000 {
        let key = format!("k{i:04}");
        let out = cairnctl(&ep, &["put", &key, &noise(i, value_bytes)]);
        if !out.status.success() {
            failure = Some(error_lines(&out));
            break;
        }
        assert_eq!(stdout(&out), "OK\n");
        acknowledged.push((i, key));
    }
    let failure = failure.expect("20 MiB never filled up");
    // The write the disk could not take is answered as etcd answers requests pending when
    // it stops (or, had the member died between two writes, the next one finds no server).
    assert!(
        failure == "Error: etcdserver: server stopped\n"
            || failure == "Error: context deadline exceeded\n",
        "{failure}"
    );
    assert!(
        acknowledged.len() > 10,
        "filled after {}",
        acknowledged.len()
    );
    // As etcd, which panics when its WAL cannot be written: the member stops.
    let code = server.wait_exit(Duration::from_secs(30));
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");

    disk.resize("64m");
    server.restart();
    for (i, key) in &acknowledged {
        let value = ok(cairnctl(&ep, &["get", key, "--print-value-only"]));
        assert!(
            value == format!("{}\n", noise(*i, value_bytes)),
            "{key} lost or damaged"
        );
    }
    ok(cairnctl(&ep, &["put", "after", "space"]));
    assert_eq!(
        ok(cairnctl(&ep, &["get", "after", "--print-value-only"])),
        "space\n"
    );
    drop(server);
}
