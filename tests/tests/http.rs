//! The HTTP endpoints beside gRPC on real processes, against the reference etcd 3.4 where
//! it has them: `/health` (leader, alarms) and `/version` JSON, `/metrics` parsed as
//! Prometheus text with etcd's metric names (also on `--listen-metrics-urls`), `/livez` and
//! `/readyz`, HTTPS on a TLS client URL; an etcd YAML `--config-file` starting cairn (and
//! etcd); auto-compaction in revision and periodic modes; JSON logs and `--version`.

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cairn_tests::{Cluster, Kind, Server, etcdctl, free_port, installed, workspace_bin};

/// An HTTP answer: status code, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A tiny HTTP/1.1 client: `GET path` on `127.0.0.1:port`, the connection closed after.
fn get(port: u16, path: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn port_of(server: &Server) -> u16 {
    server
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// One metric family of a Prometheus text exposition.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    /// `(labels, value)` of each sample, the sample name's suffix (`_bucket`...) included in
    /// the labels as `__name__`.
    samples: Vec<(BTreeMap<String, String>, f64)>,
}

/// Parses Prometheus' text format (version 0.0.4) into families by name, checking every
/// line is well formed.
fn parse_prometheus(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "bad type in {line:?}"
                    );
                    families.entry(name.to_string()).or_default().kind = kind.to_string();
                }
                (Some("HELP"), Some(_), _) => {}
                _ => panic!("bad comment line {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels end with }");
                let labels: BTreeMap<String, String> = inner
                    .split("\",")
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once("=\"").expect("label=\"value\"");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                families
                    .get(base)
                    .is_some_and(|f| f.kind == "histogram")
                    .then_some(base)
            })
            .unwrap_or(name);
        let mut labels = labels;
        labels.insert("__name__".to_string(), name.to_string());
        families
            .entry(family.to_string())
            .or_default()
            .samples
            .push((labels, value));
    }
    families
}

/// The names dashboards and alerts use, with etcd's types.
const ETCD_METRICS: [(&str, &str); 13] = [
    ("etcd_server_has_leader", "gauge"),
    ("etcd_server_leader_changes_seen_total", "counter"),
    ("etcd_server_proposals_committed_total", "gauge"),
    ("etcd_server_proposals_applied_total", "gauge"),
    ("etcd_server_proposals_pending", "gauge"),
    ("etcd_server_proposals_failed_total", "counter"),
    ("etcd_disk_wal_fsync_duration_seconds", "histogram"),
    ("etcd_disk_backend_commit_duration_seconds", "histogram"),
    ("etcd_mvcc_db_total_size_in_bytes", "gauge"),
    ("etcd_mvcc_db_total_size_in_use_in_bytes", "gauge"),
    ("etcd_debugging_mvcc_keys_total", "gauge"),
    ("grpc_server_handled_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
];

fn value(families: &BTreeMap<String, Family>, name: &str) -> f64 {
    families[name].samples[0].1
}

#[test]
fn health_and_version_answer_as_etcd() {
    let dirs = tempfile::tempdir().unwrap();
    let cairn = Server::start(Kind::Cairn, &dirs.path().join("cairn"));
    let etcd = Server::start(Kind::Etcd, &dirs.path().join("etcd"));
    for server in [&cairn, &etcd] {
        let health = get(port_of(server), "/health");
        assert_eq!(health.status, 200, "{}", health.body);
        assert_eq!(json(&health.body)["health"], "true");
        let version = get(port_of(server), "/version");
        assert_eq!(version.status, 200);
        assert_eq!(
            version.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let version = json(&version.body);
        for field in ["etcdserver", "etcdcluster"] {
            let v = version[field].as_str().expect("a version string");
            assert_eq!(v.split('.').count(), 3, "{field} is {v:?}");
        }
    }
    // cairn also gives 3.5's reason and its own version.
    assert_eq!(
        json(&get(port_of(&cairn), "/health").body),
        serde_json::json!({"health": "true", "reason": ""})
    );
    let version = json(&get(port_of(&cairn), "/version").body);
    assert_eq!(version["etcdserver"], "3.5.17");
    assert_eq!(version["etcdcluster"], "3.5.0");
    assert_eq!(version["cairn"], env!("CARGO_PKG_VERSION"));
    // Only GET: etcd answers other methods 405.
    let mut stream = TcpStream::connect(cairn.endpoint()).unwrap();
    write!(
        stream,
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // gRPC still works on the same port.
    assert!(
        etcdctl(&cairn.endpoint(), &["put", "k", "v"])
            .status
            .success()
    );
}

#[test]
fn a_path_nothing_serves_is_gos_404_as_on_etcd() {
    let dirs = tempfile::tempdir().unwrap();
    let cairn = Server::start(Kind::Cairn, &dirs.path().join("cairn"));
    let etcd = Server::start(Kind::Etcd, &dirs.path().join("etcd"));
    for server in [&cairn, &etcd] {
        for path in ["/nothing", "/etcdserverpb.Nothing/Range", "/"] {
            let answer = get(port_of(server), path);
            assert_eq!(answer.status, 404, "{path}: {}", answer.body);
            assert_eq!(answer.body.trim_end(), "404 page not found", "{path}");
        }
    }
    // Every service is still reached by its name on the same port.
    assert!(
        etcdctl(&cairn.endpoint(), &["put", "k", "v"])
            .status
            .success()
    );
    let members = etcdctl(&cairn.endpoint(), &["member", "list"]);
    assert!(members.status.success());
}

#[test]
fn livez_and_readyz_answer_ok() {
    let dir = tempfile::tempdir().unwrap();
    let cairn = Server::start(Kind::Cairn, dir.path());
    let livez = get(port_of(&cairn), "/livez");
    assert_eq!((livez.status, livez.body.as_str()), (200, "ok\n"));
    let readyz = get(port_of(&cairn), "/readyz");
    assert_eq!((readyz.status, readyz.body.as_str()), (200, "ok\n"));
    let verbose = get(port_of(&cairn), "/readyz?verbose");
    assert_eq!(verbose.status, 200);
    assert!(
        verbose.body.contains("[+]linearizable_read ok"),
        "{}",
        verbose.body
    );
}

/// A process started by hand (a member that cannot reach its peers), killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// A member that served and then lost its leader (the other member of two is killed):
// etcd 3.5's answers. (etcd 3.4 has no reason text, and serves no client on a member that
// never had a leader, so only cairn is checked.)
#[test]
fn health_is_false_without_a_leader() {
    let mut cluster = Cluster::start(Kind::Cairn, 2);
    cluster.members[1].kill9();
    let cairn_port = port_of(&cluster.members[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while value(
        &parse_prometheus(&get(cairn_port, "/metrics").body),
        "etcd_server_has_leader",
    ) != 0.0
    {
        assert!(Instant::now() < deadline, "the leader was never lost");
        sleep(Duration::from_millis(100));
    }
    let health = get(cairn_port, "/health");
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(
        health.headers.get("content-type").map(String::as_str),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        json(&get(cairn_port, "/health").body),
        serde_json::json!({"health": "false", "reason": "RAFT NO LEADER"})
    );
    let readyz = get(cairn_port, "/readyz");
    assert_eq!(readyz.status, 503);
    assert!(
        readyz.body.contains("[-]linearizable_read failed"),
        "{}",
        readyz.body
    );
    let metrics = parse_prometheus(&get(cairn_port, "/metrics").body);
    assert_eq!(value(&metrics, "etcd_server_has_leader"), 0.0);
}

#[test]
fn metrics_carry_etcds_names_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, &dir.path().join("etcd"));
    let metrics_port = free_port();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    let cairn = Server::start_with(
        Kind::Cairn,
        &dir.path().join("cairn"),
        &["--listen-metrics-urls", &metrics_url],
    );
    for server in [&cairn, &etcd] {
        for i in 0..5 {
            let put = etcdctl(&server.endpoint(), &["put", &format!("k{i}"), "v"]);
            assert!(put.status.success());
        }
    }
    let etcd_metrics = parse_prometheus(&get(port_of(&etcd), "/metrics").body);
    let scraped = get(port_of(&cairn), "/metrics");
    assert_eq!(scraped.status, 200);
    assert!(
        scraped.headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{:?}",
        scraped.headers
    );
    let cairn_metrics = parse_prometheus(&scraped.body);
    for (name, kind) in ETCD_METRICS {
        for (who, families) in [("etcd", &etcd_metrics), ("cairn", &cairn_metrics)] {
            let family = families
                .get(name)
                .unwrap_or_else(|| panic!("{who} has no {name}"));
            assert_eq!(family.kind, kind, "{who}'s {name}");
        }
    }
    assert_eq!(value(&cairn_metrics, "etcd_server_has_leader"), 1.0);
    assert!(value(&cairn_metrics, "etcd_server_leader_changes_seen_total") >= 1.0);
    assert_eq!(value(&cairn_metrics, "etcd_debugging_mvcc_keys_total"), 5.0);
    assert!(value(&cairn_metrics, "etcd_server_proposals_applied_total") >= 5.0);
    assert!(value(&cairn_metrics, "etcd_mvcc_db_total_size_in_bytes") > 0.0);
    let fsyncs = &cairn_metrics["etcd_disk_wal_fsync_duration_seconds"];
    let count = fsyncs
        .samples
        .iter()
        .find(|(l, _)| l["__name__"].ends_with("_count"))
        .map(|(_, v)| *v)
        .unwrap();
    assert!(count >= 5.0, "{count} fsyncs");
    let puts: f64 = cairn_metrics["grpc_server_handled_total"]
        .samples
        .iter()
        .filter(|(l, _)| {
            l.get("grpc_method").map(String::as_str) == Some("Put")
                && l.get("grpc_code").map(String::as_str) == Some("OK")
                && l.get("grpc_service").map(String::as_str) == Some("etcdserverpb.KV")
                && l.get("grpc_type").map(String::as_str) == Some("unary")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(puts, 5.0);
    // The metrics listener serves /metrics and /health too.
    let separate = parse_prometheus(&get(metrics_port, "/metrics").body);
    assert_eq!(value(&separate, "etcd_debugging_mvcc_keys_total"), 5.0);
    assert_eq!(json(&get(metrics_port, "/health").body)["health"], "true");
}

#[test]
fn peer_round_trip_times_are_measured_in_a_cluster() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    let leader = cluster.leader().expect("a leader");
    let member = &cluster.members[leader];
    assert!(
        etcdctl(&member.endpoint(), &["put", "k", "v"])
            .status
            .success()
    );
    let metrics = parse_prometheus(&get(port_of(member), "/metrics").body);
    let rtt = &metrics["etcd_network_peer_round_trip_time_seconds"];
    assert_eq!(rtt.kind, "histogram");
    let peers: std::collections::BTreeSet<&str> = rtt
        .samples
        .iter()
        .filter_map(|(l, _)| l.get("To").map(String::as_str))
        .collect();
    assert_eq!(peers.len(), 2, "{peers:?}");
}

#[test]
fn health_is_served_over_https_on_a_tls_client_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let peer = free_port();
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(workspace_bin("cairn"))
        .args(["--name", "a", "--data-dir"])
        .arg(dir.path())
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("a={peer_url}")])
        .args(["--auto-tls"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _process = Process(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(installed("curl"))
            .args(["-sk", "--max-time", "5", &format!("{url}/health")])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        if body.contains("\"health\":\"true\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no healthy answer over https: {body:?}"
        );
        sleep(Duration::from_millis(200));
    }
    // HTTP/1.1 explicitly (ALPN offers both).
    let out = Command::new(installed("curl"))
        .args([
            "-sk",
            "--http1.1",
            "--max-time",
            "5",
            &format!("{url}/version"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stdout))["etcdserver"],
        "3.5.17"
    );
}

/// An etcd YAML configuration file for one member, with keys cairn ignores beside.
fn config_file(dir: &Path, name: &str, client: u16, peer: u16) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yml"));
    let yaml = format!(
        "# etcd configuration file\n\
         name: '{name}'\n\
         data-dir: {data}\n\
         wal-dir:\n\
         snapshot-count: 10000\n\
         heartbeat-interval: 100\n\
         election-timeout: 1000\n\
         quota-backend-bytes: 0\n\
         listen-peer-urls: http://127.0.0.1:{peer}\n\
         listen-client-urls: http://127.0.0.1:{client}\n\
         max-snapshots: 5\n\
         max-wals: 5\n\
         initial-advertise-peer-urls: http://127.0.0.1:{peer}\n\
         advertise-client-urls: http://127.0.0.1:{client}\n\
         initial-cluster: {name}=http://127.0.0.1:{peer}\n\
         initial-cluster-token: 'etcd-cluster-yaml'\n\
         initial-cluster-state: 'new'\n\
         strict-reconfig-check: false\n\
         enable-v2: false\n\
         client-transport-security:\n  \
           cert-file:\n  \
           key-file:\n  \
           client-cert-auth: false\n  \
           trusted-ca-file:\n  \
           auto-tls: false\n\
         peer-transport-security:\n  \
           cert-file:\n  \
           key-file:\n  \
           client-cert-auth: false\n  \
           trusted-ca-file:\n  \
           auto-tls: false\n\
         debug: false\n\
         log-level: info\n\
         logger: zap\n\
         log-outputs: [stderr]\n\
         force-new-cluster: false\n\
         auto-compaction-mode: periodic\n\
         auto-compaction-retention: \"1\"\n",
        data = dir.join(format!("{name}-data")).display(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn an_etcd_yaml_config_file_starts_cairn_as_it_starts_etcd() {
    let dir = tempfile::tempdir().unwrap();
    for (program, name) in [
        (workspace_bin("cairn"), "cairn-member"),
        (installed("etcd"), "etcd-member"),
    ] {
        let (client, peer) = (free_port(), free_port());
        let file = config_file(dir.path(), name, client, peer);
        // Flags beside --config-file are ignored, as etcd ignores them.
        let child = Command::new(program)
            .arg("--config-file")
            .arg(&file)
            .args(["--name", "ignored"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _process = Process(child);
        let endpoint = format!("127.0.0.1:{client}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !etcdctl(&endpoint, &["put", "k", "v"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "{name} does not serve on {endpoint}"
            );
            sleep(Duration::from_millis(200));
        }
        let members = etcdctl(&endpoint, &["member", "list"]);
        let members = String::from_utf8_lossy(&members.stdout).to_string();
        assert!(
            members.contains(&format!(", started, {name}, http://127.0.0.1:{peer}")),
            "{members}"
        );
        assert!(
            dir.path()
                .join(format!("{name}-data"))
                .join("member")
                .is_dir()
        );
    }
}

#[test]
fn a_broken_config_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yml");
    std::fs::write(&file, "name: [unclosed\n").unwrap();
    let out = Command::new(workspace_bin("cairn"))
        .arg("--config-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config-file") && err.contains("bad.yml"),
        "{err}"
    );
}

/// The compacted revision as /metrics reports it, checked against a read below it, refused
/// as compacted.
fn compacted_revision(server: &Server) -> i64 {
    let metrics = parse_prometheus(&get(port_of(server), "/metrics").body);
    let compacted = value(&metrics, "etcd_debugging_mvcc_compact_revision") as i64;
    if compacted > 1 {
        let below = etcdctl(
            &server.endpoint(),
            &["get", "k", "--rev", &(compacted - 1).to_string()],
        );
        assert!(
            String::from_utf8_lossy(&below.stderr).contains("required revision has been compacted"),
            "{below:?}"
        );
    }
    compacted
}

/// The current revision.
fn current_revision(server: &Server) -> i64 {
    let out = etcdctl(&server.endpoint(), &["get", "k", "-w", "json"]);
    json(&String::from_utf8_lossy(&out.stdout))["header"]["revision"]
        .as_i64()
        .unwrap()
}

#[test]
fn revision_auto_compaction_keeps_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let cairn = Server::start_with(
        Kind::Cairn,
        dir.path(),
        &[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "5",
            "--experimental-auto-compaction-check-interval",
            "200ms",
        ],
    );
    for i in 0..20 {
        assert!(
            etcdctl(&cairn.endpoint(), &["put", "k", &i.to_string()])
                .status
                .success()
        );
    }
    let current = current_revision(&cairn);
    // The compactor keeps the last 5 revisions: it compacts at current - 5.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let compacted = compacted_revision(&cairn);
        if compacted == current - 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "compacted at {compacted}, want {}",
            current - 5
        );
        sleep(Duration::from_millis(200));
    }
    // The history from the compacted revision on is kept.
    for (rev, value) in [(current - 5, "14\n"), (current, "19\n")] {
        let kept = etcdctl(
            &cairn.endpoint(),
            &["get", "k", "--rev", &rev.to_string(), "--print-value-only"],
        );
        assert_eq!(String::from_utf8_lossy(&kept.stdout), value);
    }
}

#[test]
fn periodic_auto_compaction_compacts_history_older_than_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let cairn = Server::start_with(
        Kind::Cairn,
        dir.path(),
        &[
            "--auto-compaction-mode",
            "periodic",
            "--auto-compaction-retention",
            "1s",
        ],
    );
    for i in 0..5 {
        assert!(
            etcdctl(&cairn.endpoint(), &["put", "k", &i.to_string()])
                .status
                .success()
        );
    }
    let current = current_revision(&cairn);
    // A period later the current revision is the oldest sample, and compacted.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if compacted_revision(&cairn) == current {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "history was not compacted to revision {current}"
        );
        sleep(Duration::from_millis(300));
    }
}

#[test]
fn bad_auto_compaction_flags_are_refused() {
    for args in [
        [
            "--auto-compaction-mode",
            "hourly",
            "--auto-compaction-retention",
            "1",
        ],
        [
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1h",
        ],
    ] {
        let out = Command::new(workspace_bin("cairn"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("auto-compaction"), "{err}");
    }
}

#[test]
fn json_logs_and_version() {
    let out = Command::new(workspace_bin("cairn"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("cairn Version: {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("etcd API Version: 3.5.17\n"), "{text}");
    // --log-format json: every line of the log is a JSON object with a level and message.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cairn.log");
    let cairn = Server::start_with(
        Kind::Cairn,
        &dir.path().join("data"),
        &[
            "--log-format",
            "json",
            "--log-outputs",
            log.to_str().unwrap(),
            "--log-level",
            "info",
        ],
    );
    drop(cairn);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.lines().count() >= 2, "{logged}");
    for line in logged.lines() {
        let entry = json(line);
        // zap's keys, as etcd writes them.
        assert!(
            ["debug", "info", "warn", "error"].contains(&entry["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(
            entry["ts"].is_string() && entry["msg"].is_string(),
            "{line}"
        );
        assert!(entry["caller"].is_string(), "{line}");
    }
    assert!(logged.contains("starting member"), "{logged}");
}

#[test]
fn an_alarm_makes_health_false_unless_excluded_as_in_etcd() {
    let dirs = tempfile::tempdir().unwrap();
    let quota = ["--quota-backend-bytes", "400000"];
    let value = "x".repeat(50_000);
    for (kind, dir) in [(Kind::Etcd, "etcd"), (Kind::Cairn, "cairn")] {
        let server = Server::start_with(kind, &dirs.path().join(dir), &quota);
        let full = (0..100).any(|i| {
            let put = etcdctl(&server.endpoint(), &["put", &format!("k{i}"), &value]);
            String::from_utf8_lossy(&put.stderr).contains("database space exceeded")
        });
        assert!(full, "{kind:?} never ran out of space");
        let health = get(port_of(&server), "/health");
        assert_eq!(health.status, 503, "{kind:?}: {}", health.body);
        assert_eq!(json(&health.body)["health"], "false", "{kind:?}");
        let excluded = get(port_of(&server), "/health?exclude=NOSPACE");
        assert_eq!(excluded.status, 200, "{kind:?}: {}", excluded.body);
        assert_eq!(json(&excluded.body)["health"], "true", "{kind:?}");
        if kind == Kind::Cairn {
            assert_eq!(json(&health.body)["reason"], "ALARM NOSPACE");
        }
    }
}
