//! Real `cairn` clusters on 127.0.0.1: every member serves, SIGKILL of leaders and followers
//! under a write load loses no acknowledged write, reads never go backwards, and a 5-member
//! cluster survives two members down.

#![cfg(not(madsim))]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::{Cluster, Kind, etcdctl};
use etcd_client::{Client, ConnectOptions, GetOptions};

fn runtime() -> real_tokio::runtime::Runtime {
    real_tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn client(endpoints: &[String]) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(3));
    Client::connect(endpoints, Some(options))
        .await
        .expect("connect")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_member_of_three_serves_reads_and_writes() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    for (i, endpoint) in cluster.endpoints().iter().enumerate() {
        let out = etcdctl(endpoint, &["put", &format!("from-{i}"), &format!("v{i}")]);
        assert_eq!(
            stdout(&out),
            "OK\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for endpoint in cluster.endpoints() {
        let out = etcdctl(
            &endpoint,
            &["get", "--prefix", "from-", "--print-value-only"],
        );
        assert_eq!(stdout(&out), "v0\nv1\nv2\n");
    }
    assert!(
        cluster.leader().is_some(),
        "no member reports itself leader"
    );
}

#[test]
fn sigkill_of_leaders_and_followers_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(Kind::Cairn, 3);
    let endpoints = cluster.endpoints();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let rt = runtime();
    let stop_at = Instant::now() + Duration::from_secs(14);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let endpoints = endpoints.clone();
            let acknowledged = acknowledged.clone();
            rt.spawn(async move {
                let mut client = client(&endpoints).await;
                let mut last_revision = 0;
                let mut i = 0u64;
                while Instant::now() < stop_at {
                    let key = format!("w{w}/{i:06}");
                    i += 1;
                    if client.put(key.clone(), "v", None).await.is_ok() {
                        acknowledged.lock().unwrap().insert(key);
                    }
                    if let Ok(resp) = client
                        .get("w", Some(GetOptions::new().with_prefix().with_count_only()))
                        .await
                    {
                        let revision = resp.header().map_or(0, |h| h.revision());
                        assert!(
                            revision >= last_revision,
                            "read went back from {last_revision} to {revision}"
                        );
                        last_revision = revision;
                    }
                }
            })
        })
        .collect();
    // Nemesis: kill the leader, then a follower, restarting each after a pause.
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(1500));
        let victim = if round % 2 == 0 {
            cluster.leader().unwrap_or(0)
        } else {
            (cluster.leader().unwrap_or(0) + 1) % 3
        };
        cluster.members[victim].kill9();
        std::thread::sleep(Duration::from_millis(1200));
        cluster.members[victim].start_again();
    }
    for writer in writers {
        rt.block_on(writer).expect("writer task");
    }
    for member in &cluster.members {
        member.wait_until_serving();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "too few writes were acknowledged: {}",
        acknowledged.len()
    );
    rt.block_on(async {
        for endpoint in &endpoints {
            let mut client = client(std::slice::from_ref(endpoint)).await;
            let resp = client
                .get("w", Some(GetOptions::new().with_prefix().with_keys_only()))
                .await
                .unwrap();
            let present: BTreeSet<String> = resp
                .kvs()
                .iter()
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                .collect();
            let missing: Vec<&String> = acknowledged.difference(&present).collect();
            assert!(
                missing.is_empty(),
                "{endpoint} lost {} acknowledged writes, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
        }
    });
}

#[test]
fn five_members_survive_two_down() {
    let mut cluster = Cluster::start(Kind::Cairn, 5);
    cluster.members[0].kill9();
    cluster.members[1].kill9();
    let survivor = cluster.members[4].endpoint();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = etcdctl(&survivor, &["put", "after", "two-down"]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded with 3 of 5 members up"
        );
    }
    for member in &cluster.members[2..] {
        let out = etcdctl(&member.endpoint(), &["get", "after", "--print-value-only"]);
        assert_eq!(stdout(&out), "two-down\n");
    }
}

#[test]
fn concurrent_linearizable_reads_on_every_member_all_complete() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    let endpoints = cluster.endpoints();
    assert!(etcdctl(&endpoints[0], &["put", "r", "v"]).status.success());
    let rt = runtime();
    let failures = rt.block_on(async {
        let tasks: Vec<_> = (0..48)
            .map(|t| {
                let endpoint = endpoints[t % endpoints.len()].clone();
                real_tokio::spawn(async move {
                    let mut client = client(std::slice::from_ref(&endpoint)).await;
                    let mut failures = Vec::new();
                    for _ in 0..60 {
                        if let Err(e) = client.get("r", None).await {
                            failures.push(format!("{endpoint}: {e}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("reader task"));
        }
        all
    });
    assert!(
        failures.is_empty(),
        "{} reads failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

/// A follower that missed more than the log keeps catches up from a Raft snapshot streamed
/// in chunks (several MiB here, so several chunks), and then holds every key.
#[test]
fn a_lagging_follower_catches_up_by_a_streamed_snapshot() {
    const KEYS: usize = 700;
    let mut cluster = Cluster::start_with(
        Kind::Cairn,
        3,
        &[
            "--snapshot-count",
            "100",
            "--experimental-snapshot-catchup-entries",
            "10",
        ],
    );
    let leader = cluster.leader().expect("a leader");
    let lagging = (leader + 1) % 3;
    cluster.members[lagging].kill9();
    let writer = cluster.members[leader].endpoint();
    let rt = runtime();
    let value = "x".repeat(4096);
    let last_revision = rt.block_on(async {
        let mut client = client(&[writer]).await;
        let mut revision = 0;
        for i in 0..KEYS {
            let put = client.put(format!("bulk/{i:04}"), value.as_str(), None);
            revision = put.await.expect("put").header().expect("header").revision();
        }
        revision
    });
    cluster.members[lagging].start_again();
    cluster.members[lagging].wait_until_serving_serializable();
    let endpoint = cluster.members[lagging].endpoint();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (count, revision) = rt.block_on(async {
        let mut client = client(&[endpoint]).await;
        loop {
            let options = GetOptions::new()
                .with_prefix()
                .with_count_only()
                .with_serializable();
            let resp = client.get("bulk/", Some(options)).await;
            let seen = resp.map_or((0, 0), |r| {
                (r.count(), r.header().map_or(0, |h| h.revision()))
            });
            if seen.1 >= last_revision || Instant::now() > deadline {
                break seen;
            }
            real_tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert_eq!((count, revision), (KEYS as i64, last_revision));
}

/// A write reaching a member that knows no leader waits for one instead of failing at once
/// (etcd's raft node takes no proposal while it has no leader, so the request waits until
/// a leader is elected or the request times out): once a second member is back, the
/// election completes and the write is acknowledged.
#[test]
fn a_write_without_a_leader_waits_for_the_next_one_as_etcd() {
    let mut transcripts = Vec::new();
    for kind in [Kind::Etcd, Kind::Cairn] {
        let mut cluster = Cluster::start(kind, 3);
        let endpoint = cluster.members[0].endpoint();
        cluster.members[1].kill9();
        cluster.members[2].kill9();
        // Three election timeouts (1 s by default): a leader has stepped down (check
        // quorum) and a follower has started campaigning, so member 0 knows no leader.
        std::thread::sleep(Duration::from_secs(3));
        let writer = {
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                etcdctl(&endpoint, &["put", "waited", "v", "--command-timeout=30s"])
            })
        };
        std::thread::sleep(Duration::from_secs(2));
        let waited = !writer.is_finished();
        cluster.members[1].start_again();
        let out = writer.join().unwrap();
        let get = etcdctl(&endpoint, &["get", "waited", "--print-value-only"]);
        transcripts.push(vec![
            format!("waiting after 2s: {waited}"),
            format!(
                "put: {}{}",
                stdout(&out),
                String::from_utf8_lossy(&out.stderr)
            ),
            format!("get: {}", stdout(&get)),
        ]);
    }
    assert_eq!(
        transcripts[0],
        ["waiting after 2s: true", "put: OK\n", "get: v\n"],
        "etcd's answers"
    );
    assert_eq!(transcripts[1], transcripts[0], "cairn's answers");
}
