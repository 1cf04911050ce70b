//! TLS on real processes, with certificates made at test time: client TLS with client
//! certificate authentication (cairn and the reference etcd answer etcdctl alike), the flag
//! set of etcd's documented `etcd.service` unit on a 3-member cluster over https, a peer
//! whose certificate comes from another CA kept out, a missing certificate file refusing
//! start-up, and a certificate rotated on disk served without a restart.

#![cfg(not(madsim))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cairn_tests::{START_TIMEOUT, free_port, installed, run_with_stdin, workspace_bin};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// Writes `<name>.crt`/`<name>.key` (valid for 127.0.0.1, server and client use) and
    /// this CA as `<name>-ca.crt` into `dir`.
    fn issue(&self, dir: &Path, name: &str) -> Files {
        self.issue_valid(dir, name, true)
    }

    /// Like [`Ca::issue`]; a certificate that is not `valid` expired in 2001.
    fn issue_valid(&self, dir: &Path, name: &str, valid: bool) -> Files {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        if !valid {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = Files {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            ca: dir.join(format!("{name}-ca.crt")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        std::fs::write(&files.ca, &self.pem).unwrap();
        files
    }
}

struct Files {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Files {
    fn client_flags(&self) -> Vec<String> {
        vec![
            format!("--cacert={}", self.ca.display()),
            format!("--cert={}", self.cert.display()),
            format!("--key={}", self.key.display()),
        ]
    }
}

/// A server process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &Path, args: &[String]) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server"),
    )
}

fn ctl(program: &Path, endpoint: &str, flags: &[String], args: &[&str]) -> Output {
    let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
    all.extend(["--command-timeout=3s", "--dial-timeout=2s"]);
    all.extend(args);
    run_with_stdin(program, endpoint, &all, "")
}

fn etcdctl() -> PathBuf {
    installed("etcdctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(endpoint: &str, flags: &[String]) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if ctl(&etcdctl(), endpoint, flags, &["get", "probe"])
            .status
            .success()
        {
            return;
        }
        sleep(Duration::from_millis(200));
    }
    panic!("{endpoint} did not serve within {START_TIMEOUT:?}");
}

/// One member serving clients over https with client certificate authentication.
fn single_tls_member(program: &Path, dir: &Path, server: &Files) -> (Proc, String) {
    let port = free_port();
    let client = format!("https://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let args = vec![
        "--name=m0".to_string(),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=m0={peer}"),
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
        format!("--trusted-ca-file={}", server.ca.display()),
        "--client-cert-auth".to_string(),
    ];
    (spawn(program, &args), client)
}

/// What etcdctl sees of a TLS member: success with the right files, refusal without a
/// client certificate, with one from another CA, and in plaintext.
fn tls_outcomes(program: &Path) -> Vec<(String, bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let server = ca.issue(dir.path(), "server");
    let client = ca.issue(dir.path(), "client");
    let stranger = Ca::new("another CA").issue(dir.path(), "stranger");
    let (_proc, endpoint) = single_tls_member(program, dir.path(), &server);
    let good = client.client_flags();
    wait_until(&endpoint, &good);
    let no_cert = vec![format!("--cacert={}", client.ca.display())];
    let wrong_ca_cert = vec![
        format!("--cacert={}", client.ca.display()),
        format!("--cert={}", stranger.cert.display()),
        format!("--key={}", stranger.key.display()),
    ];
    let plaintext = endpoint.replace("https://", "http://");
    let run = |name: &str, endpoint: &str, flags: &[String], args: &[&str]| {
        let out = ctl(&etcdctl(), endpoint, flags, args);
        let shown = if out.status.success() {
            stdout(&out)
        } else {
            String::new()
        };
        (name.to_string(), out.status.success(), shown)
    };
    vec![
        run("put", &endpoint, &good, &["put", "k", "v"]),
        run("get", &endpoint, &good, &["get", "k"]),
        run(
            "bare endpoint with TLS files",
            &endpoint.replace("https://", ""),
            &good,
            &["get", "k", "--print-value-only"],
        ),
        run("no client certificate", &endpoint, &no_cert, &["get", "k"]),
        run(
            "certificate of another CA",
            &endpoint,
            &wrong_ca_cert,
            &["get", "k"],
        ),
        run("plaintext", &plaintext, &[], &["get", "k"]),
    ]
}

#[test]
fn client_tls_with_client_cert_auth_answers_as_etcd() {
    let etcd = tls_outcomes(&installed("etcd"));
    let cairn = tls_outcomes(&workspace_bin("cairn"));
    assert_eq!(cairn, etcd);
    assert!(cairn[0].1 && cairn[1].2 == "k\nv\n", "{cairn:?}");
    assert!(!cairn[3].1 && !cairn[4].1 && !cairn[5].1, "{cairn:?}");
}

#[test]
fn cairnctl_reads_and_writes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let server = ca.issue(dir.path(), "server");
    let client = ca.issue(dir.path(), "client");
    let (_proc, endpoint) = single_tls_member(&workspace_bin("cairn"), dir.path(), &server);
    let flags = client.client_flags();
    wait_until(&endpoint, &flags);
    let cairnctl = workspace_bin("cairnctl");
    let put = ctl(
        &cairnctl,
        &endpoint,
        &flags,
        &["put", "tls-key", "tls-value"],
    );
    assert_eq!(
        stdout(&put),
        "OK\n",
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let get = ctl(&cairnctl, &endpoint, &flags, &["get", "tls-key"]);
    assert_eq!(stdout(&get), "tls-key\ntls-value\n");
    let refused = ctl(&cairnctl, &endpoint, &flags[..1], &["get", "tls-key"]);
    assert!(
        !refused.status.success(),
        "no client certificate must be refused"
    );
}

/// The members of a cluster over https on both links, each with the flags of etcd's
/// documented `etcd.service` unit; `peer_files[i]` are member i's peer certificate files.
fn https_cluster(
    dir: &Path,
    client_files: &Files,
    peer_files: &[Files],
) -> (Vec<Proc>, Vec<String>) {
    let ports: Vec<(u16, u16)> = peer_files
        .iter()
        .map(|_| (free_port(), free_port()))
        .collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=https://127.0.0.1:{peer}"))
        .collect();
    let mut procs = Vec::new();
    let mut endpoints = Vec::new();
    for (i, ((client_port, peer_port), peer)) in ports.iter().zip(peer_files).enumerate() {
        let client = format!("https://127.0.0.1:{client_port}");
        let peer_url = format!("https://127.0.0.1:{peer_port}");
        let args = vec![
            format!("--name=m{i}"),
            format!("--data-dir={}", dir.join(format!("m{i}")).display()),
            format!("--cert-file={}", client_files.cert.display()),
            format!("--key-file={}", client_files.key.display()),
            format!("--peer-cert-file={}", peer.cert.display()),
            format!("--peer-key-file={}", peer.key.display()),
            format!("--trusted-ca-file={}", client_files.ca.display()),
            format!("--peer-trusted-ca-file={}", peer.ca.display()),
            "--peer-client-cert-auth".to_string(),
            "--client-cert-auth".to_string(),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            "--initial-cluster-token=etcd-cluster-0".to_string(),
            format!("--initial-cluster={}", initial.join(",")),
            "--initial-cluster-state=new".to_string(),
        ];
        procs.push(spawn(&workspace_bin("cairn"), &args));
        endpoints.push(client);
    }
    (procs, endpoints)
}

#[test]
fn three_members_over_https_with_the_etcd_service_flags() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let server = ca.issue(dir.path(), "server");
    let peers: Vec<Files> = (0..3)
        .map(|i| ca.issue(dir.path(), &format!("peer{i}")))
        .collect();
    let client = ca.issue(dir.path(), "client");
    let (_procs, endpoints) = https_cluster(dir.path(), &server, &peers);
    let flags = client.client_flags();
    for endpoint in &endpoints {
        wait_until(endpoint, &flags);
    }
    let put = ctl(&etcdctl(), &endpoints[0], &flags, &["put", "over", "tls"]);
    assert_eq!(stdout(&put), "OK\n");
    for endpoint in &endpoints {
        let get = ctl(
            &etcdctl(),
            endpoint,
            &flags,
            &["get", "over", "--print-value-only"],
        );
        assert_eq!(stdout(&get), "tls\n", "{endpoint}");
    }
}

#[test]
fn a_peer_with_a_certificate_from_another_ca_is_kept_out() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let server = ca.issue(dir.path(), "server");
    let mut peers: Vec<Files> = (0..2)
        .map(|i| ca.issue(dir.path(), &format!("peer{i}")))
        .collect();
    let intruder = Ca::new("intruder CA").issue(dir.path(), "intruder");
    // The intruder trusts the cluster's CA, but its own certificate is not from it.
    peers.push(Files {
        cert: intruder.cert,
        key: intruder.key,
        ca: peers[0].ca.clone(),
    });
    let client = ca.issue(dir.path(), "client");
    let (_procs, endpoints) = https_cluster(dir.path(), &server, &peers);
    let flags = client.client_flags();
    // Two members of three are a quorum: they serve.
    wait_until(&endpoints[0], &flags);
    let put = ctl(&etcdctl(), &endpoints[0], &flags, &["put", "secret", "v"]);
    assert_eq!(stdout(&put), "OK\n");
    sleep(Duration::from_secs(3));
    let mut serializable = flags.clone();
    serializable.push("--consistency=s".to_string());
    let get = ctl(&etcdctl(), &endpoints[2], &serializable, &["get", "secret"]);
    assert_eq!(stdout(&get), "", "the intruder received the data");
}

#[test]
fn a_missing_certificate_file_refuses_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.crt");
    let key = dir.path().join("no-such.key");
    let port = free_port();
    let out = Command::new(workspace_bin("cairn"))
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls=https://127.0.0.1:{port}"))
        .arg(format!("--advertise-client-urls=https://127.0.0.1:{port}"))
        .arg(format!(
            "--listen-peer-urls=http://127.0.0.1:{}",
            free_port()
        ))
        .arg(format!("--cert-file={}", missing.display()))
        .arg(format!("--key-file={}", key.display()))
        .output()
        .expect("run cairn");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*missing.to_string_lossy()), "{stderr}");
}

#[test]
fn a_rotated_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let server = old_ca.issue(dir.path(), "server");
    let old_client = old_ca.issue(dir.path(), "old-client");
    let new_client = new_ca.issue(dir.path(), "new-client");
    let port = free_port();
    let client_url = format!("https://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let args = vec![
        format!("--data-dir={}", dir.path().join("data").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
    ];
    let _proc = spawn(&workspace_bin("cairn"), &args);
    let trusts_old = vec![format!("--cacert={}", old_client.ca.display())];
    let trusts_new = vec![format!("--cacert={}", new_client.ca.display())];
    wait_until(&client_url, &trusts_old);
    // Rotate: the same paths now hold a certificate from the new CA.
    let rotated = new_ca.issue(dir.path(), "rotated");
    std::fs::copy(&rotated.cert, &server.cert).unwrap();
    std::fs::copy(&rotated.key, &server.key).unwrap();
    let get = |flags: &[String]| ctl(&etcdctl(), &client_url, flags, &["get", "x"]);
    assert!(
        get(&trusts_new).status.success(),
        "the rotated certificate is not served"
    );
    assert!(
        !get(&trusts_old).status.success(),
        "the old certificate is still served"
    );
}

#[test]
fn insecure_skip_tls_verify_accepts_an_unknown_server_certificate_as_etcdctl_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = Ca::new("unknown CA").issue(dir.path(), "server");
    let port = free_port();
    let client_url = format!("https://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let args = vec![
        format!("--data-dir={}", dir.path().join("data").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
    ];
    let _proc = spawn(&workspace_bin("cairn"), &args);
    // As etcdctl: skipping verification needs a secure transport, which TLS files or
    // --insecure-transport=false ask for.
    let skip = vec![
        "--insecure-transport=false".to_string(),
        "--insecure-skip-tls-verify".to_string(),
    ];
    wait_until(&client_url, &skip);
    let outcomes = |program: &Path| -> Vec<(bool, String)> {
        [&skip[..], &skip[1..], &[]]
            .iter()
            .map(|flags| {
                let out = ctl(program, &client_url, flags, &["put", "k", "v"]);
                (out.status.success(), stdout(&out))
            })
            .collect()
    };
    let etcdctl_outcomes = outcomes(&etcdctl());
    assert_eq!(outcomes(&workspace_bin("cairnctl")), etcdctl_outcomes);
    assert_eq!(
        etcdctl_outcomes,
        vec![
            (true, "OK\n".to_string()),
            (false, String::new()),
            (false, String::new())
        ]
    );
}

/// With `--client-cert-auth` and auth enabled, what a client certificate's CN may do as the
/// user of requests without a token: (step, succeeded, stdout, last stderr line).
fn certificate_user_outcomes(program: &Path) -> Vec<(String, bool, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let server = ca.issue(dir.path(), "server");
    let root = ca.issue(dir.path(), "root");
    let alice = ca.issue(dir.path(), "alice");
    let bob = ca.issue(dir.path(), "bob");
    let (_proc, endpoint) = single_tls_member(program, dir.path(), &server);
    let (root, alice, bob) = (
        root.client_flags(),
        alice.client_flags(),
        bob.client_flags(),
    );
    wait_until(&endpoint, &root);
    let setup: [&[&str]; 8] = [
        &["put", "/app/k", "v"],
        &["put", "/other/k", "v"],
        &["user", "add", "root:rootpw"],
        &["role", "add", "reader"],
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "/app/",
            "--prefix",
        ],
        &["user", "add", "alice", "--no-password"],
        &["user", "grant-role", "alice", "reader"],
        &["auth", "enable"],
    ];
    for args in setup {
        let out = ctl(&etcdctl(), &endpoint, &root, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let steps: [(&str, &[String], &[&str]); 6] = [
        ("alice reads her prefix", &alice, &["get", "/app/k"]),
        ("alice reads elsewhere", &alice, &["get", "/other/k"]),
        ("alice writes her prefix", &alice, &["put", "/app/k", "w"]),
        ("root (by CN) reads anything", &root, &["get", "/other/k"]),
        ("bob has no user", &bob, &["get", "/app/k"]),
        (
            "a token still wins",
            &alice,
            &["get", "/other/k", "--user=root:rootpw"],
        ),
    ];
    steps
        .iter()
        .map(|(step, flags, args)| {
            let out = ctl(&etcdctl(), &endpoint, flags, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or_default().to_string();
            (step.to_string(), out.status.success(), stdout(&out), last)
        })
        .collect()
}

#[test]
fn client_certificate_cn_is_the_user_without_a_token_as_in_etcd() {
    let etcd = certificate_user_outcomes(&installed("etcd"));
    let cairn = certificate_user_outcomes(&workspace_bin("cairn"));
    assert_eq!(cairn, etcd);
    assert_eq!(
        cairn[0],
        (
            "alice reads her prefix".into(),
            true,
            "/app/k\nv\n".into(),
            String::new()
        )
    );
    assert!(
        !cairn[1].1 && cairn[1].3 == "Error: etcdserver: permission denied",
        "{cairn:?}"
    );
    assert!(!cairn[2].1, "{cairn:?}");
    assert!(cairn[3].1 && cairn[5].1, "{cairn:?}");
}

/// An expired client certificate is refused where client certificates are required, by
/// cairn as by etcd; the same client with a valid certificate is served.
#[test]
fn an_expired_client_certificate_is_refused_as_by_etcd() {
    let outcomes = |program: &Path| -> Vec<bool> {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let server = ca.issue(dir.path(), "server");
        let valid = ca.issue(dir.path(), "client");
        let expired = ca.issue_valid(dir.path(), "expired", false);
        let (_proc, endpoint) = single_tls_member(program, dir.path(), &server);
        wait_until(&endpoint, &valid.client_flags());
        [valid, expired]
            .iter()
            .map(|files| {
                ctl(&etcdctl(), &endpoint, &files.client_flags(), &["get", "k"])
                    .status
                    .success()
            })
            .collect()
    };
    let cairn = outcomes(&workspace_bin("cairn"));
    assert_eq!(cairn, vec![true, false]);
    assert_eq!(cairn, outcomes(&installed("etcd")));
}
