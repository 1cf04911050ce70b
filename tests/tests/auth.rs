//! Authentication and RBAC against the reference etcd: the same etcdctl 3.4 session (users,
//! roles, a read-only role on a prefix, wrong passwords, revoked permissions, the root
//! rules, auth disable) answers identically on etcd and on cairn, and cairnctl answers as
//! etcdctl does; tokens expire after `--auth-token-ttl`; and a permission revoked through
//! one member of a cluster is enforced at once on the others.

#![cfg(not(madsim))]

use std::process::Output;
use std::time::Duration;

use cairn_tests::{Cluster, Kind, Server, etcdctl_with_stdin, mask_number_after, run_with_stdin};

/// bcrypt's cheapest cost, so that the many Authenticate calls stay fast.
const FAST: [&str; 2] = ["--bcrypt-cost", "4"];

/// One client invocation: arguments and standard input.
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

fn root(args: &[&str]) -> Step {
    let mut all = vec!["--user", "root:rootpw"];
    all.extend_from_slice(args);
    step(&all)
}

fn alice(password: &str, args: &[&str]) -> Step {
    let user = format!("alice:{password}");
    let mut all = vec!["--user", user.as_str()];
    all.extend_from_slice(args);
    step(&all)
}

fn scenario() -> Vec<Step> {
    vec![
        step(&["user", "add", "root:rootpw"]),
        step(&["user", "add", "root:again"]),
        step(&["user", "list"]),
        step(&["auth", "enable"]),
        step(&["get", "foo"]),
        step(&["put", "foo", "bar"]),
        step(&["--user", "root:wrong", "get", "foo"]),
        step(&["--user", "nobody:x", "get", "foo"]),
        root(&["put", "/app/a", "1"]),
        root(&["put", "/app/b", "2"]),
        root(&["put", "/other", "x"]),
        root(&["user", "add", "alice:apw"]),
        root(&["user", "add", "alice:apw"]),
        root(&["role", "add", "reader"]),
        root(&["role", "add", "reader"]),
        root(&[
            "role",
            "grant-permission",
            "reader",
            "read",
            "/app/",
            "--prefix",
        ]),
        root(&["role", "grant-permission", "reader", "readwrite", "k1"]),
        root(&["role", "grant-permission", "reader", "write", "/w/", "/w0"]),
        root(&[
            "role",
            "grant-permission",
            "reader",
            "read",
            "m",
            "--from-key",
        ]),
        root(&["role", "grant-permission", "reader", "bogus", "k"]),
        root(&["role", "grant-permission", "nope", "read", "k"]),
        root(&["role", "get", "reader"]),
        root(&["role", "get", "reader", "-w", "json"]),
        root(&["role", "get", "reader", "-w", "fields"]),
        root(&["role", "get", "reader", "-w", "table"]),
        root(&["role", "get", "nope"]),
        root(&["role", "list"]),
        root(&["role", "list", "-w", "json"]),
        root(&["user", "grant-role", "alice", "reader"]),
        root(&["user", "grant-role", "alice", "nope"]),
        root(&["user", "grant-role", "bob", "reader"]),
        root(&["user", "get", "alice"]),
        root(&["user", "get", "alice", "--detail"]),
        root(&["user", "get", "alice", "-w", "json"]),
        root(&["user", "get", "bob"]),
        root(&["user", "list"]),
        root(&["user", "list", "-w", "json"]),
        alice("apw", &["get", "/app/a"]),
        alice("apw", &["get", "/app/", "--prefix"]),
        alice("apw", &["get", "/app/", "--prefix", "-w", "json"]),
        alice("apw", &["put", "/app/a", "2"]),
        alice("apw", &["del", "/app/a"]),
        alice("apw", &["get", "/other"]),
        alice("apw", &["get", "", "--prefix"]),
        alice("apw", &["get", "zzz"]),
        alice("apw", &["put", "k1", "v"]),
        alice("apw", &["get", "k1"]),
        alice("apw", &["put", "/w/x", "v"]),
        alice("apw", &["get", "/w/x"]),
        alice("apw", &["user", "list"]),
        alice("apw", &["user", "get", "alice"]),
        alice("apw", &["user", "get", "root"]),
        alice("apw", &["role", "get", "reader"]),
        alice("apw", &["role", "get", "root"]),
        alice("apw", &["auth", "disable"]),
        alice("wrong", &["get", "/app/a"]),
        root(&["role", "revoke-permission", "reader", "/app/", "--prefix"]),
        root(&["role", "revoke-permission", "reader", "/app/", "--prefix"]),
        root(&["role", "revoke-permission", "reader", "k1"]),
        root(&["role", "revoke-permission", "reader", "m", "--from-key"]),
        alice("apw", &["get", "/app/a"]),
        root(&["role", "get", "reader"]),
        root(&["user", "delete", "root"]),
        root(&["role", "delete", "root"]),
        root(&["user", "revoke-role", "root", "root"]),
        Step {
            stdin: "newpw\n".to_string(),
            ..root(&["user", "passwd", "alice", "--interactive=false"])
        },
        alice("apw", &["get", "/w/x"]),
        alice("newpw", &["put", "/w/y", "v"]),
        root(&["user", "revoke-role", "alice", "reader"]),
        root(&["user", "revoke-role", "alice", "reader"]),
        alice("newpw", &["put", "/w/z", "v"]),
        root(&["role", "delete", "reader"]),
        root(&["role", "delete", "reader"]),
        root(&["user", "delete", "alice"]),
        root(&["user", "delete", "alice"]),
        alice("newpw", &["get", "/w/x"]),
        root(&["user", "add", "cn", "--no-password"]),
        step(&["--user", "cn:x", "get", "foo"]),
        root(&["auth", "disable"]),
        step(&["get", "/app/a"]),
        step(&["auth", "disable"]),
        step(&["user", "list"]),
        root(&["get", "/app/a"]),
        step(&["user", "delete", "root"]),
    ]
}

/// Masks what legitimately differs between two servers: ids and the raft term.
fn normalize(text: &str) -> String {
    let mut out: String = text
        .lines()
        .filter(|line| !line.starts_with("{\"level\":"))
        .map(|line| format!("{line}\n"))
        .collect();
    out = mask_number_after(&out, "127.0.0.1:", "PORT");
    for field in ["cluster_id", "member_id", "raft_term"] {
        out = mask_number_after(&out, &format!("\"{field}\":"), "N");
    }
    for field in ["\"ClusterID\" : ", "\"MemberID\" : ", "\"RaftTerm\" : "] {
        out = mask_number_after(&out, field, "N");
    }
    out
}

fn render(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        normalize(&String::from_utf8_lossy(&output.stdout)),
        normalize(&String::from_utf8_lossy(&output.stderr))
    )
}

/// Runs the scenario with `reference` and `candidate` and lists the steps that differ.
fn differences(
    reference: impl Fn(&[&str], &str) -> Output,
    candidate: impl Fn(&[&str], &str) -> Output,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (i, step) in scenario().iter().enumerate() {
        let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
        let want = render(&reference(&args, &step.stdin));
        let got = render(&candidate(&args, &step.stdin));
        if want != got {
            differences.push(format!(
                "step {i} {:?}\n--- reference\n{want}\n--- cairn\n{got}",
                step.args
            ));
        }
    }
    differences
}

fn assert_none(differences: Vec<String>) {
    assert!(
        differences.is_empty(),
        "{} steps differ:\n\n{}",
        differences.len(),
        differences.join("\n\n")
    );
}

#[test]
fn etcdctl_auth_session_answers_identically_on_etcd_and_cairn() {
    let (etcd_dir, cairn_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let etcd = Server::start_with(Kind::Etcd, etcd_dir.path(), &FAST);
    let cairn = Server::start_with(Kind::Cairn, cairn_dir.path(), &FAST);
    assert_none(differences(
        |args, stdin| etcdctl_with_stdin(&etcd.endpoint(), args, stdin),
        |args, stdin| etcdctl_with_stdin(&cairn.endpoint(), args, stdin),
    ));
}

#[test]
fn cairnctl_auth_session_answers_as_etcdctl_does() {
    let (etcd_dir, cairn_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let etcd = Server::start_with(Kind::Etcd, etcd_dir.path(), &FAST);
    let cairn = Server::start_with(Kind::Cairn, cairn_dir.path(), &FAST);
    let cairnctl = cairn_tests::workspace_bin("cairnctl");
    assert_none(differences(
        |args, stdin| etcdctl_with_stdin(&etcd.endpoint(), args, stdin),
        |args, stdin| run_with_stdin(&cairnctl, &cairn.endpoint(), args, stdin),
    ));
}

fn runtime() -> real_tokio::runtime::Runtime {
    real_tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates root, enables auth, and gives alice (password apw) read access to `/app/`.
fn set_up_reader(endpoint: &str) {
    let steps: [&[&str]; 8] = [
        &["user", "add", "root:rootpw"],
        &["auth", "enable"],
        &["--user", "root:rootpw", "put", "/app/a", "1"],
        &["--user", "root:rootpw", "user", "add", "alice:apw"],
        &["--user", "root:rootpw", "role", "add", "reader"],
        &[
            "--user",
            "root:rootpw",
            "role",
            "grant-permission",
            "reader",
            "read",
            "/app/",
            "--prefix",
        ],
        &[
            "--user",
            "root:rootpw",
            "user",
            "grant-role",
            "alice",
            "reader",
        ],
        &["--user", "alice:apw", "get", "/app/a"],
    ];
    for args in steps {
        let out = etcdctl_with_stdin(endpoint, args, "");
        assert!(out.status.success(), "{args:?}: {}", render(&out));
    }
}

async fn connect_as(endpoint: &str, user: &str, password: &str) -> etcd_client::Client {
    let options = etcd_client::ConnectOptions::new().with_user(user, password);
    etcd_client::Client::connect([endpoint], Some(options))
        .await
        .expect("authenticate")
}

fn status_of(error: etcd_client::Error) -> (String, String) {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            (format!("{:?}", status.code()), status.message().to_string())
        }
        other => ("not a status".into(), other.to_string()),
    }
}

/// A token unused for longer than `--auth-token-ttl` is refused; used within it, it lives.
#[test]
fn tokens_expire_after_the_ttl_as_on_etcd() {
    let rt = runtime();
    let mut outcomes = Vec::new();
    for kind in [Kind::Etcd, Kind::Cairn] {
        let dir = tempfile::tempdir().unwrap();
        let args = ["--bcrypt-cost", "4", "--auth-token-ttl", "2"];
        let server = Server::start_with(kind, dir.path(), &args);
        set_up_reader(&server.endpoint());
        let outcome = rt.block_on(async {
            let mut client = connect_as(&server.endpoint(), "alice", "apw").await;
            let fresh = client.get("/app/a", None).await.map(|_| ());
            // etcd checks expiry once a second: 2 s of TTL plus its resolution, plus slack.
            real_tokio::time::sleep(Duration::from_millis(4_500)).await;
            let expired = client.get("/app/a", None).await.map(|_| ());
            (fresh.map_err(status_of), expired.map_err(status_of))
        });
        outcomes.push(outcome);
    }
    let expected = (
        Ok(()),
        Err((
            "Unauthenticated".to_string(),
            "etcdserver: invalid auth token".to_string(),
        )),
    );
    assert_eq!(outcomes[0], expected, "etcd");
    assert_eq!(outcomes[1], expected, "cairn");
}

/// alice holds tokens on two members; root revokes her permission through a third; both
/// members refuse her next read at once.
#[test]
fn a_permission_revoked_through_one_member_is_enforced_on_the_others() {
    let cluster = Cluster::start_with(Kind::Cairn, 3, &FAST);
    let endpoints = cluster.endpoints();
    set_up_reader(&endpoints[0]);
    let rt = runtime();
    rt.block_on(async {
        let mut on_1 = connect_as(&endpoints[1], "alice", "apw").await;
        let mut on_2 = connect_as(&endpoints[2], "alice", "apw").await;
        assert!(on_1.get("/app/a", None).await.is_ok());
        assert!(on_2.get("/app/a", None).await.is_ok());
        let revoke = [
            "--user",
            "root:rootpw",
            "role",
            "revoke-permission",
            "reader",
            "/app/",
            "--prefix",
        ];
        let out = etcdctl_with_stdin(&endpoints[0], &revoke, "");
        assert!(out.status.success(), "{}", render(&out));
        let denied = (
            "PermissionDenied".to_string(),
            "etcdserver: permission denied".to_string(),
        );
        for client in [&mut on_1, &mut on_2] {
            let read = client.get("/app/a", None).await.map(|_| ());
            assert_eq!(read.map_err(status_of), Err(denied.clone()));
        }
    });
}
