//! Black-box test harness: real `cairn` and reference `etcd` processes on 127.0.0.1, driven
//! by real clients (etcdctl, the `etcd-client` crate). Nothing here runs under madsim.
//!
//! The binaries under test are the ones cargo built next to this test executable
//! (`cargo test --workspace` builds them); the reference `etcd` and `etcdctl` come from
//! Debian (`scripts/install-test-deps`).

#![cfg(not(madsim))]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a server may take to start answering.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener
        .local_addr()
        .expect("ephemeral port address")
        .port()
}

/// Path of a binary of this workspace built by cargo for this test run.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --bin {name}`, which `cargo test --workspace` does)",
        path.display()
    );
    path
}

/// Path of a program that must be installed (the reference etcd and etcdctl).
pub fn installed(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("{program} is not installed: run scripts/install-test-deps (Debian etcd-server, etcd-client)")
    })
}

/// Which server a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This project's `cairn`.
    Cairn,
    /// The reference etcd 3.4.
    Etcd,
}

/// A server process on loopback ports of its own: a single member, or one member of a
/// [`Cluster`].
pub struct Server {
    kind: Kind,
    child: Option<Child>,
    name: String,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    initial_cluster: Option<String>,
    extra_args: Vec<String>,
}

impl Server {
    /// Starts `kind` on fresh ports with its data in `data_dir`, and waits until it serves.
    pub fn start(kind: Kind, data_dir: &Path) -> Server {
        Server::start_with(kind, data_dir, &[])
    }

    /// Like [`Server::start`], with extra flags.
    pub fn start_with(kind: Kind, data_dir: &Path, extra_args: &[&str]) -> Server {
        let mut server = Server {
            kind,
            child: None,
            name: "default".to_string(),
            data_dir: data_dir.to_path_buf(),
            client_port: free_port(),
            peer_port: free_port(),
            initial_cluster: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    /// The peer URL of this member.
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The client endpoint, `127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let program = match self.kind {
            Kind::Cairn => workspace_bin("cairn"),
            Kind::Etcd => installed("etcd"),
        };
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let initial_cluster = self
            .initial_cluster
            .clone()
            .unwrap_or_else(|| format!("{}={peer}", self.name));
        let child = Command::new(program)
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
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
            .args(["--initial-cluster", &initial_cluster])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server process");
        self.child = Some(child);
        if self.initial_cluster.is_none() {
            self.wait_until_serving();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Waits until the member answers a linearizable read (a cluster member needs a quorum).
    pub fn wait_until_serving(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.client_port)).is_ok() {
                let probe = etcdctl(&self.endpoint(), &["get", "cairn-test-probe"]);
                if probe.status.success() {
                    return;
                }
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "{:?} did not serve on {} within {START_TIMEOUT:?}",
            self.kind,
            self.endpoint()
        );
    }

    /// Waits until the member answers a local (serializable) read: a learner does not serve
    /// linearizable reads.
    pub fn wait_until_serving_serializable(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let probe = etcdctl(
                &self.endpoint(),
                &["get", "cairn-test-probe", "--consistency", "s"],
            );
            if probe.status.success() {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "{:?} did not serve on {} within {START_TIMEOUT:?}",
            self.kind,
            self.endpoint()
        );
    }

    /// SIGKILL, as a crash or power cut of the process would be.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same ports and data dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Replaces the extra flags the next (re)start passes.
    pub fn set_extra_args(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
    }

    /// Starts a killed member again without waiting for it to serve.
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster of `kind` members on loopback, each with its own ports and data dir.
pub struct Cluster {
    /// The members, in `--initial-cluster` order.
    pub members: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `size` members and waits until every one serves.
    pub fn start(kind: Kind, size: usize) -> Cluster {
        Cluster::start_with(kind, size, &[])
    }

    /// Starts `size` members with `extra_args` on every command line and waits until every
    /// one serves.
    pub fn start_with(kind: Kind, size: usize, extra_args: &[&str]) -> Cluster {
        let mut cluster = Cluster::plan_with(kind, size, "cairn-test", extra_args);
        cluster.start_planned();
        cluster
    }

    /// Chooses names, ports and data dirs for `size` members of a cluster with `token`,
    /// without starting them (to prepare their data dirs first, e.g. by a restore).
    pub fn plan(kind: Kind, size: usize, token: &str) -> Cluster {
        Cluster::plan_with(kind, size, token, &[])
    }

    /// Like [`Cluster::plan`], with `extra_args` on every command line.
    pub fn plan_with(kind: Kind, size: usize, token: &str, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("cluster temp dir");
        let mut members: Vec<Server> = (0..size)
            .map(|i| Server {
                kind,
                child: None,
                name: format!("m{i}"),
                data_dir: dir.path().join(format!("m{i}")),
                client_port: free_port(),
                peer_port: free_port(),
                initial_cluster: None,
                extra_args: ["--initial-cluster-token", token]
                    .iter()
                    .chain(extra_args)
                    .map(|arg| (*arg).to_string())
                    .collect(),
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<String>>()
            .join(",");
        for member in &mut members {
            member.initial_cluster = Some(initial.clone());
        }
        Cluster { members, _dir: dir }
    }

    /// The `--initial-cluster` value of this cluster.
    pub fn initial_cluster(&self) -> String {
        self.members[0].initial_cluster.clone().unwrap_or_default()
    }

    /// Starts every planned member and waits until every one serves.
    pub fn start_planned(&mut self) {
        for member in &mut self.members {
            member.spawn();
        }
        for member in &self.members {
            member.wait_until_serving();
        }
        self.wait_until_published();
    }

    /// Waits until `member list` shows every member started with its client URLs
    /// (published through Raft), so `--cluster` commands reach them all. etcd serves clients
    /// only after publishing; cairn serves at once and publishes just after.
    fn wait_until_published(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let endpoint = self.members[0].endpoint();
        loop {
            let out = etcdctl(&endpoint, &["member", "list"]);
            let list = String::from_utf8_lossy(&out.stdout);
            // "id, status, name, peer URLs, client URLs, is learner": bootstrap members are
            // named from the start; their client URLs come with the publish.
            let started = list
                .lines()
                .filter(|l| {
                    let fields: Vec<&str> = l.split(", ").collect();
                    fields.len() == 6 && fields[1] == "started" && !fields[4].is_empty()
                })
                .count();
            if out.status.success() && started == self.members.len() {
                return;
            }
            if Instant::now() >= deadline {
                // Not fatal here: a test that needs every member listed fails on its own
                // assertion; this line says why.
                eprintln!(
                    "members not all published after 20 s: {list}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return;
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Adds a member the way etcd documents it: `member add` (as a learner when `learner`),
    /// then a first start with `--initial-cluster-state existing` and the member list the
    /// add printed. Returns its index once it serves.
    pub fn add_member(&mut self, learner: bool) -> usize {
        let index = self.members.len();
        let name = format!("m{index}");
        let data_dir = self._dir.path().join(&name);
        let template = &self.members[0];
        let mut member = Server {
            kind: template.kind,
            child: None,
            name: name.clone(),
            data_dir,
            client_port: free_port(),
            peer_port: free_port(),
            initial_cluster: None,
            extra_args: vec![
                "--initial-cluster-token".into(),
                "cairn-test".into(),
                "--initial-cluster-state".into(),
                "existing".into(),
            ],
        };
        let peer_url = member.peer_url();
        let mut args = vec![
            "member",
            "add",
            name.as_str(),
            "--peer-urls",
            peer_url.as_str(),
        ];
        if learner {
            args.push("--learner");
        }
        let out = etcdctl(&self.members[0].endpoint(), &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "member add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let initial = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER=\""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("member add prints ETCD_INITIAL_CLUSTER")
            .to_string();
        member.initial_cluster = Some(initial);
        member.spawn();
        member.wait_until_serving_serializable();
        self.members.push(member);
        index
    }

    /// Every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Server::endpoint).collect()
    }

    /// Index of the member that reports itself leader, if one does.
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            if !m.is_running() {
                return false;
            }
            let out = etcdctl(
                &m.endpoint(),
                &["endpoint", "status", "-w", "json", "--command-timeout=2s"],
            );
            let text = String::from_utf8_lossy(&out.stdout);
            member_id_and_leader(&text).is_some_and(|(id, leader)| id == leader)
        })
    }
}

/// `(member_id, leader)` from `etcdctl endpoint status -w json`.
fn member_id_and_leader(json: &str) -> Option<(u64, u64)> {
    let number = |field: &str| -> Option<u64> {
        let start = json.find(&format!("\"{field}\":"))? + field.len() + 3;
        let digits: String = json[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((number("member_id")?, number("leader")?))
}

/// Replaces the (possibly negative) number after every `needle` with `placeholder`: what
/// differs between two servers by construction (ids, ports, raft terms, lease ids).
pub fn mask_number_after(text: &str, needle: &str, placeholder: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find(needle) {
        out.push_str(&rest[..pos + needle.len()]);
        rest = &rest[pos + needle.len()..];
        let negative = usize::from(rest.starts_with('-'));
        let digits = rest[negative..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len(), |n| n + negative);
        out.push_str(placeholder);
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Runs the reference etcdctl (API v3) against `endpoint`.
pub fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    etcdctl_with_stdin(endpoint, args, "")
}

/// Runs the reference etcdctl with `stdin` piped in.
pub fn etcdctl_with_stdin(endpoint: &str, args: &[&str], stdin: &str) -> Output {
    run_with_stdin(&installed("etcdctl"), endpoint, args, stdin)
}

/// Runs a client binary with `--endpoints endpoint` and `stdin` piped in.
pub fn run_with_stdin(program: &Path, endpoint: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start client");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("client output")
}
