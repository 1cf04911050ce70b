//! etcd's Election and Lock services, and `elect`/`lock` on the command line, against a real
//! cairn and the reference etcd 3.4: the same RPCs (through the `etcd-client` crate) and the
//! same etcdctl runs must give the same answers, error codes and messages, revisions and
//! output on both (lease ids and cluster ids, which differ by construction, are masked).
//! Contenders wait their turn, a lock is held by one waiter at a time, and a campaign or a
//! lock abandoned by its client leaves no key behind.

#![cfg(not(madsim))]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_tests::{Kind, Server, installed, workspace_bin};
use etcd_client::{Client, GetOptions, LeaderKey, LockOptions, ProclaimOptions, ResignOptions};

/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a waiter is given to show that it does *not* get through.
const STILL_BLOCKED: Duration = Duration::from_millis(500);

fn runtime() -> real_tokio::runtime::Runtime {
    real_tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(server: &Server) -> Client {
    Client::connect([server.endpoint()], None)
        .await
        .expect("connect")
}

/// `ok <what>` or `err <code> <message>`.
fn outcome<T>(result: Result<T, etcd_client::Error>, show: impl FnOnce(&T) -> String) -> String {
    match result {
        Ok(value) => format!("ok {}", show(&value)),
        Err(etcd_client::Error::GRpcStatus(status)) => {
            format!("err {:?} {}", status.code(), status.message())
        }
        Err(other) => format!("client error {other}"),
    }
}

fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(-1, |h| h.revision())
}

/// Replaces each `/` followed by a run of at least 8 hex digits (a lease id in a session
/// key) with `/<lease>`.
fn mask_lease_keys(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('/') {
        out.push_str(&rest[..=pos]);
        rest = &rest[pos + 1..];
        let hex = rest
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len());
        if hex >= 8 {
            out.push_str("<lease>");
            rest = &rest[hex..];
        }
    }
    out.push_str(rest);
    out
}

/// The same election and lock RPCs, with the outcome of each.
async fn rpc_transcript(server: &Server) -> Vec<String> {
    let mut c = connect(server).await;
    let mut e = c.election_client();
    let mut l = c.lock_client();
    let lease = c.lease_grant(60, None).await.unwrap().id();
    let key_of = |k: &[u8]| mask_lease_keys(&String::from_utf8_lossy(k));
    let mut t = vec![outcome(e.leader("el").await, |_| String::new())];
    t.push(outcome(e.campaign("el", "v", 12345).await, |_| {
        String::new()
    }));
    let campaigned = e.campaign("el", "v1", lease).await;
    let leader = campaigned.as_ref().ok().and_then(|r| r.leader().cloned());
    t.push(outcome(campaigned, |r| {
        let l = r.leader().unwrap();
        format!(
            "{} rev {} at {}",
            key_of(l.key()),
            l.rev(),
            revision(r.header())
        )
    }));
    let lk = leader.expect("campaign on a fresh election succeeds");
    t.push(outcome(e.campaign("el", "v2", lease).await, |r| {
        format!("again at {}", revision(r.header()))
    }));
    let show_leader = |r: &etcd_client::LeaderResponse| {
        let kv = r.kv().unwrap();
        format!(
            "{}={} create {} mod {} at {}",
            key_of(kv.key()),
            String::from_utf8_lossy(kv.value()),
            kv.create_revision(),
            kv.mod_revision(),
            revision(r.header())
        )
    };
    t.push(outcome(e.leader("el").await, show_leader));
    let with = |k: &LeaderKey| Some(ProclaimOptions::new().with_leader(k.clone()));
    t.push(outcome(e.proclaim("v3", with(&lk)).await, |r| {
        format!("at {}", revision(r.header()))
    }));
    t.push(outcome(e.proclaim("v3", None).await, |_| String::new()));
    let stale = LeaderKey::new()
        .with_name("el")
        .with_key(lk.key().to_vec())
        .with_rev(lk.rev() + 100)
        .with_lease(lease);
    t.push(outcome(e.proclaim("v4", with(&stale)).await, |_| {
        String::new()
    }));
    let resign = |k: &LeaderKey| Some(ResignOptions::new().with_leader(k.clone()));
    let at = |r: &etcd_client::ResignResponse| format!("at {}", revision(r.header()));
    t.push(outcome(e.resign(resign(&stale)).await, at));
    t.push(outcome(e.resign(None).await, at));
    t.push(outcome(e.resign(resign(&lk)).await, at));
    t.push(outcome(e.resign(resign(&lk)).await, at));
    t.push(outcome(e.leader("el").await, show_leader));
    t.push(outcome(e.proclaim("v5", with(&lk)).await, |_| {
        String::new()
    }));
    let locked =
        |r: &etcd_client::LockResponse| format!("{} at {}", key_of(r.key()), revision(r.header()));
    let on = |id: i64| Some(LockOptions::new().with_lease(id));
    t.push(outcome(l.lock("lk", on(999)).await, locked));
    t.push(outcome(l.lock("lk", on(lease)).await, locked));
    t.push(outcome(l.lock("lk", on(lease)).await, locked));
    let unlocked = |r: &etcd_client::UnlockResponse| format!("at {}", revision(r.header()));
    t.push(outcome(l.unlock("missing").await, unlocked));
    t.push(outcome(l.unlock("").await, unlocked));
    t.push(outcome(l.lock("", on(lease)).await, locked));
    // A request without a lease gets a session lease of 60 s, as etcd's server makes one.
    let fresh = e.campaign("el0", "v", 0).await.unwrap();
    let granted = c
        .lease_time_to_live(fresh.leader().unwrap().lease(), None)
        .await
        .unwrap();
    t.push(format!("granted ttl {}", granted.granted_ttl()));
    t
}

#[test]
fn election_and_lock_rpcs_answer_exactly_as_etcd() {
    let rt = runtime();
    let mut transcripts = Vec::new();
    for kind in [Kind::Etcd, Kind::Cairn] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(kind, dir.path());
        transcripts.push(rt.block_on(rpc_transcript(&server)));
    }
    assert_eq!(transcripts[0], transcripts[1]);
    let etcd = &transcripts[0];
    assert_eq!(etcd[0], "err Unknown election: no leader");
    assert_eq!(etcd[1], "err Unknown etcdserver: requested lease not found");
    assert_eq!(etcd[6], "err Unknown \"leader\" field must be provided");
    assert_eq!(etcd[7], "err Unknown election: not leader");
    assert_eq!(etcd.last().unwrap(), "granted ttl 60");
}

/// Waits until the election `job` has at least `count` contenders' keys.
async fn contenders_at_least(c: &mut Client, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let keys = c
            .get("job/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        if keys.kvs().len() >= count {
            return;
        }
        assert!(Instant::now() < deadline, "contenders never queued");
        real_tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `work` is still pending after [`STILL_BLOCKED`].
async fn still_blocked<T>(work: &mut real_tokio::task::JoinHandle<T>) -> bool {
    real_tokio::time::timeout(STILL_BLOCKED, work)
        .await
        .is_err()
}

async fn finish<T>(work: real_tokio::task::JoinHandle<T>) -> T {
    real_tokio::time::timeout(PATIENCE, work)
        .await
        .expect("the waiter gets through")
        .expect("the waiter task")
}

#[test]
fn contenders_wait_for_every_earlier_key_and_observers_see_each_leader() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut c = connect(&server).await;
        let mut e = c.election_client();
        let first = c.lease_grant(60, None).await.unwrap().id();
        let second = c.lease_grant(60, None).await.unwrap().id();
        let third = c.lease_grant(60, None).await.unwrap().id();
        let mut observer = e.observe("job").await.unwrap();
        let a = e.campaign("job", "a", first).await.unwrap();
        let mut e2 = c.election_client();
        let mut b = real_tokio::spawn(async move { e2.campaign("job", "b", second).await });
        // b's key must exist before c campaigns, or c could queue ahead of b.
        contenders_at_least(&mut c, 2).await;
        let mut e3 = c.election_client();
        let mut c3 = real_tokio::spawn(async move { e3.campaign("job", "c", third).await });
        assert!(still_blocked(&mut b).await, "b waits while a leads");

        let seen = observer.message().await.unwrap().unwrap();
        assert_eq!(seen.kv().unwrap().value(), b"a");
        let a_key = a.leader().unwrap().clone();
        e.proclaim(
            "a2",
            Some(ProclaimOptions::new().with_leader(a_key.clone())),
        )
        .await
        .unwrap();
        let seen = observer.message().await.unwrap().unwrap();
        assert_eq!(seen.kv().unwrap().value(), b"a2");

        e.resign(Some(ResignOptions::new().with_leader(a_key)))
            .await
            .unwrap();
        let b = finish(b).await.unwrap();
        assert_eq!(b.leader().unwrap().lease(), second);
        let seen = observer.message().await.unwrap().unwrap();
        assert_eq!(seen.kv().unwrap().value(), b"b");
        assert!(still_blocked(&mut c3).await, "c waits while b leads");

        // A leader whose lease is revoked loses its key, and the next contender leads.
        c.lease_revoke(second).await.unwrap();
        let c3 = finish(c3).await.unwrap();
        assert_eq!(c3.leader().unwrap().lease(), third);
        let seen = observer.message().await.unwrap().unwrap();
        assert_eq!(seen.kv().unwrap().value(), b"c");
        let leader = e.leader("job").await.unwrap();
        assert_eq!(leader.kv().unwrap().value(), b"c");
    });
}

#[test]
fn a_lock_has_one_holder_and_unlock_hands_it_to_the_next_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut c = connect(&server).await;
        let mut l = c.lock_client();
        let first = c.lease_grant(60, None).await.unwrap().id();
        let second = c.lease_grant(60, None).await.unwrap().id();
        let held = l
            .lock("m", Some(LockOptions::new().with_lease(first)))
            .await
            .unwrap();
        let mut l2 = c.lock_client();
        let mut next = real_tokio::spawn(async move {
            l2.lock("m", Some(LockOptions::new().with_lease(second)))
                .await
        });
        assert!(still_blocked(&mut next).await, "the second waiter waits");
        let unlocked = l.unlock(held.key()).await.unwrap();
        let next = finish(next).await.unwrap();
        assert_eq!(
            next.key(),
            format!("m/{second:x}").as_bytes(),
            "the waiter's key is <name>/<lease in hex>"
        );
        assert!(
            revision(next.header()) >= revision(unlocked.header()),
            "the lock is granted after the unlock"
        );
        let keys = c
            .get("m/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(keys.count(), 1, "only the holder's key is left");
    });
}

/// Starts a campaign and a lock that must wait, gives up on both from the client side, and
/// returns how many keys are left under their prefixes once the server has cleaned up.
async fn keys_left_by_abandoned_waiters(server: &Server) -> i64 {
    let mut c = connect(server).await;
    let holder = c.lease_grant(60, None).await.unwrap().id();
    let waiter = c.lease_grant(60, None).await.unwrap().id();
    let mut e = c.election_client();
    let mut l = c.lock_client();
    e.campaign("ab", "holder", holder).await.unwrap();
    l.lock("ab-lock", Some(LockOptions::new().with_lease(holder)))
        .await
        .unwrap();
    let gave_up = real_tokio::time::timeout(STILL_BLOCKED, e.campaign("ab", "w", waiter)).await;
    assert!(gave_up.is_err(), "the campaign was waiting");
    let lock = l.lock("ab-lock", Some(LockOptions::new().with_lease(waiter)));
    let gave_up = real_tokio::time::timeout(STILL_BLOCKED, lock).await;
    assert!(gave_up.is_err(), "the lock was waiting");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = c
            .get("ab", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap()
            .count();
        if left == 2 || Instant::now() >= deadline {
            return left;
        }
        real_tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_campaign_or_lock_abandoned_by_its_client_deletes_its_key() {
    let rt = runtime();
    for kind in [Kind::Etcd, Kind::Cairn] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(kind, dir.path());
        let left = rt.block_on(keys_left_by_abandoned_waiters(&server));
        assert_eq!(left, 2, "{kind:?}: only the holders' keys are left");
    }
}

/// A client process whose stdout lines arrive on a channel as they are printed.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(program: &Path, endpoint: &str, args: &[&str]) -> Running {
        let mut child = Command::new(program)
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(endpoint)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start client");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until `count` lines have been printed in all.
    fn wait_lines(&mut self, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("only {:?} printed, expected {count} lines", self.seen),
            }
        }
    }

    /// SIGINT, then the rest of stdout, stderr and the exit code.
    fn interrupt(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + PATIENCE;
        let code = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code();
            }
            assert!(Instant::now() < deadline, "the client ignored SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        format!(
            "stdout {:?} stderr {:?} exit {code:?}",
            self.seen,
            stderr.trim_end()
        )
    }
}

/// One run to completion: stdout, stderr, exit code.
fn run_once(program: &Path, endpoint: &str, args: &[&str]) -> String {
    let out = cairn_tests::run_with_stdin(program, endpoint, args, "");
    format!(
        "stdout {:?} stderr {:?} exit {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    )
}

/// `lock` (exec form and held until SIGINT) and `elect` (campaign, blocked campaign, and
/// `-l` observing), each step's output masked.
fn cli_transcript(program: &Path, endpoint: &str) -> Vec<String> {
    let show_env = "echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV";
    let mut t = vec![
        run_once(
            program,
            endpoint,
            &["lock", "l1", "--", "sh", "-c", show_env],
        ),
        run_once(
            program,
            endpoint,
            &["lock", "l1", "--", "sh", "-c", "exit 3"],
        ),
        run_once(program, endpoint, &["lock", "l1", "cairn-no-such-command"]),
        run_once(program, endpoint, &["elect", "e1"]),
        run_once(program, endpoint, &["elect", "-l", "e1", "p"]),
        run_once(program, endpoint, &["lock"]),
    ];
    let mut held = Running::start(program, endpoint, &["lock", "l1"]);
    held.wait_lines(2);
    let mut waiting = Running::start(program, endpoint, &["lock", "l1", "--ttl", "5"]);
    std::thread::sleep(STILL_BLOCKED);
    t.push(held.interrupt());
    waiting.wait_lines(2);
    t.push(waiting.interrupt());

    let mut leader = Running::start(program, endpoint, &["elect", "e1", "first"]);
    leader.wait_lines(2);
    let mut observer = Running::start(program, endpoint, &["elect", "-l", "e1"]);
    observer.wait_lines(2);
    let blocked = Running::start(program, endpoint, &["elect", "e1", "second"]);
    std::thread::sleep(STILL_BLOCKED);
    t.push(blocked.interrupt());
    let mut next = Running::start(program, endpoint, &["elect", "e1", "third"]);
    std::thread::sleep(STILL_BLOCKED);
    t.push(leader.interrupt());
    next.wait_lines(2);
    observer.wait_lines(4);
    t.push(observer.interrupt());
    t.push(next.interrupt());
    t.push(run_once(
        program,
        endpoint,
        &["get", "--prefix", "e1", "-w", "json"],
    ));
    t.iter()
        .map(|step| mask_cluster(&mask_lease_keys(step)))
        .collect()
}

/// Masks what differs between two servers in `-w json` output.
fn mask_cluster(text: &str) -> String {
    let masked = cairn_tests::mask_number_after(text, "\\\"cluster_id\\\":", "<cluster>");
    let masked = cairn_tests::mask_number_after(&masked, "\\\"member_id\\\":", "<member>");
    cairn_tests::mask_number_after(&masked, "\\\"lease\\\":", "<lease>")
}

#[test]
fn etcdctl_and_cairnctl_elect_and_lock_behave_alike_on_cairn_and_etcd() {
    let etcdctl = installed("etcdctl");
    let cairnctl = workspace_bin("cairnctl");
    let mut transcripts = Vec::new();
    for (kind, program) in [
        (Kind::Etcd, &etcdctl),
        (Kind::Cairn, &etcdctl),
        (Kind::Cairn, &cairnctl),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(kind, dir.path());
        transcripts.push(cli_transcript(program, &server.endpoint()));
    }
    assert_eq!(transcripts[0], transcripts[1], "etcdctl: etcd vs cairn");
    assert_eq!(transcripts[1], transcripts[2], "cairn: etcdctl vs cairnctl");
    let etcd = &transcripts[0];
    assert!(etcd[0].contains("key=l1/<lease> rev="), "{}", etcd[0]);
    assert!(etcd[1].contains("Error: exit status 3") && etcd[1].ends_with("exit Some(1)"));
    assert!(etcd[8].contains("Error: context canceled"), "{}", etcd[8]);
    assert!(
        etcd[10].contains("\"first\", \"e1/<lease>\", \"third\""),
        "the observer saw both leaders: {}",
        etcd[10]
    );
}
