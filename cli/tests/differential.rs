//! Differential test: the same scenario of commands through the real `etcdctl` (3.4, from
//! PATH) and through `cairnctl`, each against its own fresh real `etcd` (from PATH), and the
//! outputs compared byte for byte: stdout, stderr and exit code of every step.
//!
//! Only what necessarily differs is normalized, on both sides alike: each server's ports,
//! cluster ID, member ID and raft term; its database file size (bbolt grows the file in
//! steps that depend on when its background commits and compaction ran); timestamps,
//! client UUIDs and durations in the log and health lines; and the program's own name and
//! version (`etcdctl` vs `cairnctl`).
//! Nothing is skipped: without etcd and etcdctl on PATH the test fails and says what to
//! install.

#![cfg(not(madsim))]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Longest any single command may run before the test calls it hung.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a fresh etcd may take to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One command of the scenario.
struct Step {
    /// Arguments; `{EP}` is the tool's server endpoint, `{DEAD}` an endpoint nobody serves.
    args: &'static [&'static str],
    /// Written to stdin (then closed).
    stdin: &'static str,
    /// Extra environment; values may use `{EP}`.
    env: &'static [(&'static str, &'static str)],
    /// Whether `--endpoints {EP}` is prepended.
    with_endpoint: bool,
    /// For `-w protobuf`: stdout decoded as this response, compared with its header's IDs
    /// normalized.
    protobuf: Option<Decode>,
    /// For commands that run until stopped (`watch`): stop them after this long and
    /// compare what they printed until then.
    stop_after: Option<Duration>,
}

/// Decodes a `-w protobuf` answer and re-encodes it with server-specific fields cleared.
type Decode = fn(&[u8]) -> Option<Vec<u8>>;

const fn step(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        env: &[],
        with_endpoint: true,
        protobuf: None,
        stop_after: None,
    }
}

const fn piped(args: &'static [&'static str], stdin: &'static str) -> Step {
    Step {
        args,
        stdin,
        env: &[],
        with_endpoint: true,
        protobuf: None,
        stop_after: None,
    }
}

const fn bare(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        env: &[],
        with_endpoint: false,
        protobuf: None,
        stop_after: None,
    }
}

const fn protobuf(args: &'static [&'static str], decode: Decode) -> Step {
    Step {
        args,
        stdin: "",
        env: &[],
        with_endpoint: true,
        protobuf: Some(decode),
        stop_after: None,
    }
}

/// How long a `watch` step runs before it is stopped: long enough to replay history.
const WATCH_RUN: Duration = Duration::from_millis(1500);

/// A command that runs until stopped, stopped after [`WATCH_RUN`].
const fn stopped(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        env: &[],
        with_endpoint: true,
        protobuf: None,
        stop_after: Some(WATCH_RUN),
    }
}

/// A `PutResponse` re-encoded with the header's cluster ID, member ID and term zeroed.
fn put_response_without_ids(bytes: &[u8]) -> Option<Vec<u8>> {
    use prost::Message;
    let mut response = cairn_client::pb::etcdserverpb::PutResponse::decode(bytes).ok()?;
    let header = response.header.as_mut()?;
    (header.cluster_id, header.member_id, header.raft_term) = (0, 0, 0);
    Some(response.encode_to_vec())
}

/// A `RangeResponse` re-encoded with the header's cluster ID, member ID and term zeroed.
fn range_response_without_ids(bytes: &[u8]) -> Option<Vec<u8>> {
    use prost::Message;
    let mut response = cairn_client::pb::etcdserverpb::RangeResponse::decode(bytes).ok()?;
    let header = response.header.as_mut()?;
    (header.cluster_id, header.member_id, header.raft_term) = (0, 0, 0);
    Some(response.encode_to_vec())
}

const fn with_env(
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
) -> Step {
    Step {
        args,
        stdin: "",
        env,
        with_endpoint: false,
        protobuf: None,
        stop_after: None,
    }
}

/// The scenario. Both servers start empty and see the same steps, so revisions agree.
const SCENARIO: &[Step] = &[
    // put
    step(&["put", "foo", "bar"]),
    step(&["put", "foo", "bar2", "--prev-kv"]),
    step(&["put", "foo", "bar3", "--prev-kv", "-w", "json"]),
    step(&["put", "foo", "bar4", "--prev-kv", "-w", "fields"]),
    step(&["put", "a", "1"]),
    step(&["put", "b", "2", "-w", "json"]),
    step(&["put", "c", "3"]),
    step(&["put", "p/1", "x"]),
    step(&["put", "p/2", "y"]),
    step(&["put", "sp ace", "v<&>"]),
    piped(&["put", "stdin-key"], "value from stdin\n"),
    step(&["put", "--", "dash", "-v"]),
    step(&["put", "k", "v", "--lease", "1234"]),
    step(&["put", "k", "v", "--lease", "zz"]),
    step(&["put", "nokey", "--ignore-value"]),
    step(&["put", "foo", "x", "--ignore-value"]),
    step(&["put"]),
    piped(&["put", "only-key"], ""),
    protobuf(
        &["put", "a", "1", "-w", "protobuf"],
        put_response_without_ids,
    ),
    // get
    step(&["get", "foo"]),
    step(&["get", "foo", "-w", "json"]),
    step(&["get", "foo", "-w", "fields"]),
    protobuf(
        &["get", "p/", "--prefix", "-w", "protobuf"],
        range_response_without_ids,
    ),
    step(&["get", "p/", "--prefix"]),
    step(&["get", "p/", "--prefix", "-w", "json"]),
    step(&["get", "", "--prefix", "--limit", "2", "-w", "json"]),
    step(&["get", "b", "--from-key", "--keys-only"]),
    step(&["get", "a", "c"]),
    step(&[
        "get",
        "a",
        "z",
        "--sort-by=value",
        "--order=descend",
        "--limit",
        "3",
    ]),
    step(&["get", "a", "z", "--sort-by=create", "-w", "json"]),
    step(&["get", "foo", "--rev", "2"]),
    step(&["get", "foo", "--print-value-only"]),
    step(&["get", "foo", "--print-value-only", "-w", "json"]),
    step(&["get", "foo", "--consistency", "s", "-w", "json"]),
    step(&["get", "sp ace", "--hex"]),
    step(&["get", "sp ace", "-w", "json"]),
    step(&["get", "missing"]),
    step(&["get", "missing", "-w", "json"]),
    step(&["get", "missing", "-w", "fields"]),
    step(&["get", "foo", "--rev", "1000"]),
    step(&["get"]),
    step(&["get", "a", "--prefix", "--from-key"]),
    step(&["get", "a", "b", "--prefix"]),
    step(&["get", "a", "--consistency", "x"]),
    step(&["get", "a", "--order", "sideways"]),
    step(&["get", "a", "--sort-by", "size"]),
    step(&["get", "a", "-w", "table"]),
    step(&["get", "a", "-w", "yaml"]),
    step(&["g", "foo"]),
    // txn
    piped(
        &["txn"],
        "value(\"a\") = \"1\"\n\nput t1 yes\nget a\ndel b --prev-kv\n\nget c\n\n",
    ),
    piped(
        &["txn", "-w", "json"],
        "mod(\"a\") > \"1000\"\n\nput t2 no\n\nget a\nget p/ --prefix --keys-only\n\n",
    ),
    piped(
        &["txn", "-i"],
        "ver(\"foo\") != \"0\"\nc(\"foo\") < \"100\"\n\nput t3 \"quoted value\"\n\nget t3\n\n",
    ),
    piped(
        &["txn", "-w", "fields"],
        "val(\"t3\") = \"quoted value\"\n\nget t3\ndel t3\n\n\n",
    ),
    piped(&["txn"], "\nput d 1\nput d 2\n\n\n"),
    piped(&["txn"], "bad\n\n\n"),
    piped(&["txn"], "value(\"a\")=\"1\"\n\n\n"),
    piped(&["txn"], "foo(\"a\") = \"1\"\n\n\n"),
    piped(&["txn"], "mod(\"a\") > \"x\"\n\n\n"),
    piped(&["txn"], "\nbogus a b\n\n\n"),
    piped(&["txn"], "\nget\n\n\n"),
    piped(&["txn"], "\nput a --lease zz\n\n\n"),
    piped(&["txn"], "value(\"a\") = \"1\"\n"),
    piped(&["txn", "extra"], ""),
    // del
    step(&["del", "missing"]),
    step(&["del", "c", "--prev-kv"]),
    step(&["del", "p/", "--prefix", "-w", "json", "--prev-kv"]),
    step(&["del", "t1", "t9", "-w", "fields"]),
    step(&["del"]),
    step(&["del", "a", "b", "c"]),
    step(&["del", "a", "--prefix", "--from-key"]),
    // compaction
    step(&["compaction", "3"]),
    step(&["compaction", "3"]),
    step(&["compaction", "5", "--physical", "-w", "json"]),
    step(&["compaction", "100000"]),
    step(&["compaction", "abc"]),
    step(&["compaction"]),
    step(&["get", "foo", "--rev", "2"]),
    // watch: history replayed from --rev, then stopped
    stopped(&["watch", "foo", "--rev", "1"]),
    stopped(&["watch", "foo", "--rev", "6"]),
    stopped(&["watch", "foo", "--rev", "6", "--prev-kv"]),
    stopped(&["watch", "foo", "--rev", "6", "-w", "json"]),
    stopped(&["watch", "foo", "--rev", "6", "-w", "fields"]),
    stopped(&["watch", "", "--prefix", "--rev", "20"]),
    stopped(&["watch", "a", "z", "--rev", "20", "--hex"]),
    stopped(&[
        "watch",
        "foo",
        "--rev",
        "6",
        "--",
        "sh",
        "-c",
        "echo exec $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE",
    ]),
    step(&["watch"]),
    step(&["watch", "foo", "--"]),
    step(&["watch", "a", "z", "--prefix"]),
    stopped(&["watch", "foo", "-w", "protobuf", "--rev", "6"]),
    // leases: the granted lease's ID is captured and used as {LEASE}
    step(&["lease", "list"]),
    step(&["lease", "grant", "100"]),
    step(&["put", "leased", "v", "--lease", "{LEASE}"]),
    step(&["lease", "list"]),
    step(&["lease", "list", "-w", "json"]),
    step(&["lease", "list", "-w", "fields"]),
    step(&["lease", "timetolive", "{LEASE}"]),
    step(&["lease", "timetolive", "{LEASE}", "--keys"]),
    step(&["lease", "timetolive", "{LEASE}", "--keys", "-w", "json"]),
    step(&["lease", "timetolive", "{LEASE}", "--keys", "-w", "fields"]),
    step(&["lease", "keep-alive", "--once", "{LEASE}"]),
    step(&["lease", "keep-alive", "--once", "{LEASE}", "-w", "json"]),
    step(&["lease", "keep-alive", "--once", "1234"]),
    step(&["lease", "timetolive", "1234"]),
    step(&["lease", "timetolive", "1234", "-w", "json"]),
    step(&["lease", "revoke", "{LEASE}", "-w", "json"]),
    step(&["get", "leased"]),
    step(&["lease", "revoke", "{LEASE}"]),
    step(&["lease", "grant", "100", "-w", "table"]),
    step(&["lease", "grant", "x"]),
    step(&["lease", "grant"]),
    step(&["lease", "revoke", "zz"]),
    step(&["lease", "timetolive"]),
    // membership and leadership on the one member
    step(&[
        "member",
        "update",
        "{MEMBER_HEX}",
        "--peer-urls",
        "{PEER_URL}",
    ]),
    step(&[
        "member",
        "update",
        "{MEMBER_HEX}",
        "--peer-urls",
        "{PEER_URL}",
        "-w",
        "json",
    ]),
    step(&[
        "member",
        "update",
        "{MEMBER_HEX}",
        "--peer-urls",
        "{PEER_URL}",
        "-w",
        "fields",
    ]),
    step(&["member", "promote", "{MEMBER_HEX}"]),
    step(&["member", "remove", "1234"]),
    step(&["member", "add"]),
    step(&["member", "add", "a", "b", "http://x:1"]),
    step(&["member", "add", "a"]),
    step(&["member", "remove"]),
    step(&["member", "promote", "zz"]),
    step(&["member", "update", "12"]),
    step(&["move-leader", "{MEMBER_HEX}"]),
    step(&["move-leader", "{MEMBER_HEX}", "-w", "json"]),
    step(&["move-leader", "{MEMBER_HEX}", "-w", "fields"]),
    step(&["move-leader", "1234"]),
    step(&["move-leader", "zz"]),
    step(&["move-leader"]),
    // cluster and endpoints
    step(&["member", "list"]),
    step(&["member", "list", "-w", "json"]),
    step(&["member", "list", "-w", "fields"]),
    step(&["member", "list", "-w", "table"]),
    step(&["mem", "li"]),
    step(&["endpoint", "status"]),
    step(&["endpoint", "status", "-w", "json"]),
    step(&["endpoint", "status", "-w", "fields"]),
    step(&["endpoint", "status", "-w", "table"]),
    step(&["endpoint", "status", "-w", "protobuf"]),
    step(&["endpoint", "health"]),
    step(&["endpoint", "health", "-w", "json"]),
    step(&["endpoint", "health", "-w", "fields"]),
    step(&["endpoint", "status", "--cluster"]),
    bare(&["--endpoints", "{DEAD},{EP}", "get", "foo"]),
    bare(&[
        "--endpoints",
        "{DEAD}",
        "--command-timeout",
        "1s",
        "get",
        "foo",
    ]),
    bare(&[
        "--endpoints",
        "{DEAD}",
        "--command-timeout=1s",
        "put",
        "x",
        "y",
    ]),
    bare(&[
        "--endpoints",
        "{EP},{DEAD}",
        "--command-timeout",
        "1s",
        "endpoint",
        "status",
    ]),
    bare(&[
        "--endpoints",
        "{DEAD}",
        "--command-timeout",
        "1s",
        "endpoint",
        "health",
        "-w",
        "json",
    ]),
    // environment
    with_env(
        &["get", "foo"],
        &[("ETCDCTL_ENDPOINTS", "{EP}"), ("ETCDCTL_WRITE_OUT", "json")],
    ),
    with_env(
        &["get", "foo"],
        &[("ETCDCTL_ENDPOINTS", "{EP}"), ("ETCDCTL_LIMIT", "1")],
    ),
    with_env(
        &["--endpoints", "{EP}", "get", "foo"],
        &[("ETCDCTL_ENDPOINTS", "{EP}")],
    ),
    // usage, help and errors
    bare(&["version"]),
    bare(&["foo"]),
    bare(&["gte", "a"]),
    bare(&["e"]),
    bare(&["--bogus", "get", "a"]),
    step(&["put", "--bogus", "k", "v"]),
    step(&["del", "--prefix=maybe", "k"]),
    step(&["put", "k", "v", "-x"]),
    step(&["put", "k", "--lease"]),
    step(&["compaction", "--physical=1x", "1"]),
    step(&["--dial-timeout", "3", "put", "k", "v"]),
    step(&["--command-timeout=3x", "del", "k"]),
    step(&["txn", "-w"]),
    bare(&["put", "--help"]),
    bare(&["del", "-h"]),
    bare(&["txn", "--help"]),
    bare(&["compaction", "--help"]),
    bare(&["help", "member", "list"]),
    bare(&["endpoint"]),
    bare(&["endpoint", "status", "--help"]),
    bare(&["endpoint", "health", "--help"]),
    bare(&["member"]),
    bare(&["version", "--help"]),
    bare(&["watch", "--help"]),
    bare(&["lease"]),
    bare(&["lease", "keep-alive", "--help"]),
    bare(&["member", "add", "--help"]),
    bare(&["move-leader", "--help"]),
    // operations
    step(&["alarm", "list"]),
    step(&["alarm", "list", "-w", "json"]),
    step(&["alarm", "list", "extra"]),
    step(&["alarm", "disarm"]),
    step(&["alarm", "disarm", "extra"]),
    step(&["defrag"]),
    step(&["snapshot", "save"]),
    step(&["snapshot", "save", "/nonexistent/cairn-test.db"]),
    step(&["snapshot", "status"]),
    step(&["snapshot", "status", "/nonexistent/cairn-test.db"]),
    step(&["snapshot", "restore"]),
    step(&[
        "snapshot",
        "restore",
        "/nonexistent/cairn-test.db",
        "--name",
        "zz",
    ]),
    bare(&["alarm"]),
    bare(&["alarm", "list", "--help"]),
    bare(&["defrag", "--help"]),
    bare(&["snapshot"]),
    bare(&["snapshot", "save", "--help"]),
    bare(&["snapshot", "status", "--help"]),
    bare(&["snapshot", "restore", "--help"]),
];

#[test]
fn cairnctl_matches_etcdctl_byte_for_byte() {
    let etcd = require_on_path("etcd");
    let etcdctl = require_on_path("etcdctl");
    let cairnctl = PathBuf::from(env!("CARGO_BIN_EXE_cairnctl"));
    let reference = Server::start(&etcd, &etcdctl, "reference");
    let subject = Server::start(&etcd, &etcdctl, "subject");
    let dead = free_port();
    let mut mismatches = Vec::new();
    for (index, step) in SCENARIO.iter().enumerate() {
        let want = reference.normalize(&run(&etcdctl, step, &reference, dead), dead);
        let got = subject
            .normalize(&run(&cairnctl, step, &subject, dead), dead)
            .replace("cairnctl", "etcdctl");
        if index == 0 {
            assert_eq!(
                want, "stdout:\nOK\n\nstderr:\n\nexit: 0\n",
                "the reference etcdctl/etcd pair does not work"
            );
        }
        if want != got {
            mismatches.push(format!(
                "step {index}: {}\n--- etcdctl\n{want}--- cairnctl\n{got}",
                describe(step)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} steps differ:\n\n{}",
        mismatches.len(),
        SCENARIO.len(),
        mismatches.join("\n")
    );
}

/// The path of `program` on PATH, or a failure that says what to install.
fn require_on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "`{program}` is not on PATH. The differential test runs the real etcd and etcdctl 3.4: \
             install the Debian packages etcd-server and etcd-client (apt-get install etcd-server etcd-client)."
        )
    })
}

/// A port nothing listens on (at the moment it is chosen).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A single-member etcd in a temporary directory, killed when dropped.
struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    cluster_id: u64,
    member_id: u64,
    /// The ID (hex) of the lease the scenario's `lease grant 100` created on this server.
    lease: std::cell::RefCell<String>,
}

impl Server {
    /// A fresh member whose ID and cluster ID have 16 hex digits (`member update` prints the
    /// cluster ID padded to 16 columns): `member list` and `endpoint status` print
    /// the ID in hex without padding, and tables are as wide as their widest cell, so both
    /// servers need IDs of one width for their tables to be comparable byte for byte. The ID
    /// hashes the peer URL and the cluster token, so another token gives another ID.
    fn start(etcd: &Path, etcdctl: &Path, name: &str) -> Server {
        for attempt in 0..32 {
            let server = Server::start_once(etcd, etcdctl, name, &format!("cairn-diff-{attempt}"));
            let width = |id: u64| format!("{id:x}").len();
            if width(server.member_id) == 16 && width(server.cluster_id) == 16 {
                return server;
            }
        }
        panic!("no member and cluster ID with 16 hex digits in 32 attempts");
    }

    fn start_once(etcd: &Path, etcdctl: &Path, name: &str, token: &str) -> Server {
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-diff-{name}-"))
            .tempdir()
            .expect("temp dir");
        let (client_port, peer_port) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log file");
        let child = Command::new(etcd)
            .args(["--name", "default", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &format!("default={peer}"),
                "--initial-cluster-token",
                token,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let mut server = Server {
            child,
            _dir: dir,
            client_port,
            peer_port,
            cluster_id: 0,
            member_id: 0,
            lease: std::cell::RefCell::new(String::new()),
        };
        server.wait_ready(etcdctl);
        server
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Waits until the member answers, then learns its cluster and member IDs.
    fn wait_ready(&mut self, etcdctl: &Path) {
        let start = Instant::now();
        loop {
            let out = Command::new(etcdctl)
                .args([
                    "--endpoints",
                    &self.endpoint(),
                    "--command-timeout",
                    "1s",
                    "member",
                    "list",
                    "-w",
                    "json",
                ])
                .env_remove("ETCDCTL_API")
                .output()
                .expect("run etcdctl");
            if out.status.success() && self.learn_ids(&out.stdout) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "etcd exited during startup with {status}; see its log in {:?}",
                    self._dir.path()
                );
            }
            assert!(
                start.elapsed() < STARTUP_TIMEOUT,
                "etcd did not answer within {STARTUP_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn learn_ids(&mut self, member_list_json: &[u8]) -> bool {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(member_list_json) else {
            return false;
        };
        self.cluster_id = json["header"]["cluster_id"].as_u64().unwrap_or(0);
        self.member_id = json["members"][0]["ID"].as_u64().unwrap_or(0);
        self.cluster_id != 0 && self.member_id != 0
    }

    /// Remembers the lease a `lease grant` printed (simple format).
    fn capture_lease(&self, stdout: &str) {
        let granted = stdout
            .strip_prefix("lease ")
            .and_then(|rest| rest.split_once(" granted with TTL"));
        if let Some((id, _)) = granted {
            *self.lease.borrow_mut() = id.to_string();
        }
    }

    /// Replaces what legitimately differs between the two servers and the two runs.
    fn normalize(&self, text: &str, dead_port: u16) -> String {
        let mut t = text.to_string();
        let lease = self.lease.borrow().clone();
        if let Ok(id) = u64::from_str_radix(&lease, 16) {
            t = t.replace(&lease, "<LEASE>");
            t = t.replace(&id.to_string(), "<LEASE>");
        }
        for (value, name) in [
            (self.cluster_id, "CLUSTER_ID"),
            (self.member_id, "MEMBER_ID"),
        ] {
            t = t.replace(&value.to_string(), &format!("<{name}>"));
            t = t.replace(&format!("{value:x}"), &format!("<{name}>"));
        }
        t = t.replace(&format!(":{}", self.client_port), ":<CLIENT_PORT>");
        t = t.replace(&format!(":{}", self.peer_port), ":<PEER_PORT>");
        t = t.replace(&format!(":{dead_port}"), ":<DEAD_PORT>");
        t = mask(&t, "\"raft_term\":", is_digit);
        t = mask(&t, "\"raftTerm\":", is_digit);
        t = mask(&t, "\"RaftTerm\" : ", is_digit);
        t = mask(&t, "\"dbSize\":", is_digit);
        t = mask(&t, "\"dbSizeInUse\":", is_digit);
        t = mask(&t, "\"DBSize\" : ", is_digit);
        t = mask(&t, "\"ts\":\"", |c| c != '"');
        t = mask(&t, "endpoint://client-", |c| {
            c.is_ascii_hexdigit() || c == '-'
        });
        t = mask(&t, "\"took\":\"", |c| c != '"');
        t = mask(&t, "took = ", |c| c != '\n');
        t = mask(&t, "\"Took\" : ", |c| c != '\n');
        t = mask(&t, "remaining(", is_digit);
        t = mask(&t, "\"ttl\":", |c| c.is_ascii_digit());
        t = mask(&t, "\"TTL\" : ", is_digit);
        let lines = t
            .lines()
            .map(mask_log_time)
            .map(mask_status_row)
            .map(mask_status_table_row)
            .map(mask_version);
        t = lines.collect::<Vec<_>>().join("\n");
        t + "\n"
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only the etcd this test started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// Replaces the run of `keep` characters after each `prefix` with `<…>`.
fn mask(text: &str, prefix: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let (head, tail) = rest.split_at(at + prefix.len());
        out.push_str(head);
        let end = tail.find(|c: char| !keep(c)).unwrap_or(tail.len());
        out.push_str("<…>");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// capnslog lines start with a local timestamp (`2006-01-02 15:04:05.000000 `).
fn mask_log_time(line: &str) -> String {
    let shape = "dddd-dd-dd dd:dd:dd.dddddd ";
    let matches = line.len() >= shape.len()
        && line
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s });
    match matches {
        true => format!("<TIME> {}", &line[shape.len()..]),
        false => line.to_string(),
    }
}

/// The DB size (4th) and raft term (7th) columns of a simple `endpoint status` row.
fn mask_status_row(line: String) -> String {
    let mut fields: Vec<String> = line.split(", ").map(str::to_string).collect();
    if fields.len() == 10 && is_endpoint(&fields[0]) && fields[6].chars().all(is_digit) {
        fields[3] = mask_digits(&fields[3]);
        fields[6] = "<…>".to_string();
        return fields.join(", ");
    }
    line
}

/// The DB size and raft term cells of an `endpoint status` table row (same width, as the
/// column is as wide as its header).
fn mask_status_table_row(line: String) -> String {
    let mut cells: Vec<String> = line.split('|').map(str::to_string).collect();
    if cells.len() == 12 && is_endpoint(cells[1].trim()) {
        cells[4] = mask_digits(&cells[4]);
        cells[7] = mask_digits(&cells[7]);
        return cells.join("|");
    }
    line
}

fn is_endpoint(text: &str) -> bool {
    text.starts_with("127.0.0.1:") || text.starts_with("http://127.0.0.1:")
}

fn mask_digits(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                '#'
            } else {
                c
            }
        })
        .collect()
}

/// `version` names the program and its own version.
fn mask_version(line: String) -> String {
    match line.split_once(" version: ") {
        Some((tool, _)) if tool == "etcdctl" || tool == "cairnctl" => {
            "etcdctl version: <…>".to_string()
        }
        _ => line,
    }
}

/// Runs one step with `program` against `server`; the outcome as text.
fn run(program: &Path, step: &Step, server: &Server, dead_port: u16) -> String {
    let fill = |s: &str| {
        s.replace("{EP}", &server.endpoint())
            .replace("{DEAD}", &format!("127.0.0.1:{dead_port}"))
            .replace("{LEASE}", &server.lease.borrow())
            .replace("{MEMBER_HEX}", &format!("{:x}", server.member_id))
            .replace(
                "{PEER_URL}",
                &format!("http://127.0.0.1:{}", server.peer_port),
            )
    };
    let mut command = Command::new(program);
    if step.with_endpoint {
        command.args(["--endpoints", &server.endpoint()]);
    }
    command.args(step.args.iter().map(|a| fill(a)));
    for (key, _) in std::env::vars() {
        if key.starts_with("ETCDCTL_") {
            command.env_remove(key);
        }
    }
    for (key, value) in step.env {
        command.env(key, fill(value));
    }
    let (mut stdout, stderr, code) = execute(command, step.stdin.as_bytes(), step.stop_after);
    server.capture_lease(&String::from_utf8_lossy(&stdout));
    if let Some(decode) = step.protobuf {
        stdout = match decode(&stdout) {
            Some(normalized) => format!("protobuf {normalized:02x?}").into_bytes(),
            None => format!("undecodable protobuf {stdout:02x?}").into_bytes(),
        };
    }
    format!(
        "stdout:\n{}\nstderr:\n{}\nexit: {code}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    )
}

/// Runs a command to completion (killing it after [`STEP_TIMEOUT`]), or, with
/// `stop_after`, until then (its exit code is then `stopped`).
fn execute(
    mut command: Command,
    stdin: &[u8],
    stop_after: Option<Duration>,
) -> (Vec<u8>, Vec<u8>, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tool");
    let mut input = child.stdin.take().expect("stdin is piped");
    let bytes = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let stdout = read_all(child.stdout.take().expect("stdout is piped"));
    let stderr = read_all(child.stderr.take().expect("stderr is piped"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the tool") {
            break Some(status);
        }
        if stop_after.is_some_and(|limit| start.elapsed() > limit) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if start.elapsed() > STEP_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command hung for {STEP_TIMEOUT:?}: {command:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let code = match status {
        None => "stopped".to_string(),
        Some(status) => status
            .code()
            .map_or_else(|| format!("{status}"), |c| c.to_string()),
    };
    (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
        code,
    )
}

fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn describe(step: &Step) -> String {
    let mut text = step.args.join(" ");
    if !step.stdin.is_empty() {
        text.push_str(&format!("  <<< {:?}", step.stdin));
    }
    if !step.env.is_empty() {
        text.push_str(&format!("  env {:?}", step.env));
    }
    text
}
