//! Leases on a real cairn process through the `etcd-client` crate: grant (with and without
//! an ID), keys attached by `put --lease`, time-to-live with keys, keep-alive, revoke
//! deleting the keys, expiry after roughly the TTL (never before), survival across SIGKILL
//! with the TTL refreshed as etcd does, a leader kill in a 3-member cluster (the lease
//! neither ends early nor lingers), and etcd's error codes and messages.

#![cfg(not(madsim))]

use std::time::{Duration, Instant};

use cairn_tests::{Cluster, Kind, Server};
use etcd_client::{Client, ConnectOptions, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions};

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

/// The status code (by name, independent of the tonic version etcd-client uses) and message.
fn grpc_error(error: etcd_client::Error) -> (String, String) {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            (format!("{:?}", status.code()), status.message().to_string())
        }
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

async fn exists(client: &mut Client, key: &str) -> bool {
    client.get(key, None).await.expect("get").count() == 1
}

async fn time_to_live(client: &mut Client, id: i64) -> (i64, i64, Vec<String>) {
    let resp = client
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .expect("ttl");
    let keys = resp
        .keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    (resp.ttl(), resp.granted_ttl(), keys)
}

#[test]
fn grant_attach_keep_alive_and_revoke_follow_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let chosen = client
            .lease_grant(60, None)
            .await
            .expect("grant without id");
        assert!(chosen.id() > 0, "a chosen ID is positive, as etcd's");
        assert_eq!(chosen.ttl(), 60);
        let given = client
            .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x1234)))
            .await
            .expect("grant");
        assert_eq!((given.id(), given.ttl()), (0x1234, 30));

        client
            .put("a", "1", Some(PutOptions::new().with_lease(0x1234)))
            .await
            .expect("put a");
        client
            .put("b", "2", Some(PutOptions::new().with_lease(0x1234)))
            .await
            .expect("put b");
        client
            .put("c", "3", Some(PutOptions::new().with_lease(chosen.id())))
            .await
            .expect("put c");
        let got = client.get("a", None).await.expect("get");
        assert_eq!(got.kvs()[0].lease(), 0x1234);

        let (ttl, granted, keys) = time_to_live(&mut client, 0x1234).await;
        assert_eq!(granted, 30);
        assert!((28..30).contains(&ttl), "remaining {ttl} s of 30");
        assert_eq!(keys, vec!["a", "b"], "attached keys, in key order");

        let mut ids: Vec<i64> = client
            .leases()
            .await
            .expect("leases")
            .leases()
            .iter()
            .map(|l| l.id())
            .collect();
        ids.sort_unstable();
        let mut want = vec![chosen.id(), 0x1234];
        want.sort_unstable();
        assert_eq!(ids, want);

        let (mut keeper, mut responses) =
            client.lease_keep_alive(0x1234).await.expect("keep-alive");
        keeper.keep_alive().await.expect("send keep-alive");
        let resp = responses
            .message()
            .await
            .expect("keep-alive response")
            .expect("a response");
        assert_eq!((resp.id(), resp.ttl()), (0x1234, 30));

        let before = client
            .get("a", None)
            .await
            .expect("get")
            .header()
            .expect("header")
            .revision();
        let revoked = client.lease_revoke(0x1234).await.expect("revoke");
        assert_eq!(
            revoked.header().expect("header").revision(),
            before + 1,
            "both keys go in one revision"
        );
        assert!(!exists(&mut client, "a").await && !exists(&mut client, "b").await);
        assert!(exists(&mut client, "c").await, "another lease's key stays");

        keeper.keep_alive().await.expect("send keep-alive");
        let resp = responses
            .message()
            .await
            .expect("keep-alive response")
            .expect("a response");
        assert_eq!(resp.ttl(), 0, "keep-alive of a revoked lease answers TTL 0");
        let gone = client
            .lease_time_to_live(0x1234, None)
            .await
            .expect("ttl of a revoked lease");
        assert_eq!(
            gone.ttl(),
            -1,
            "time-to-live of a revoked lease answers TTL -1"
        );
    });
}

#[test]
fn keep_alive_holds_a_lease_past_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let lease = client.lease_grant(2, None).await.expect("grant");
        client
            .put("held", "v", Some(PutOptions::new().with_lease(lease.id())))
            .await
            .expect("put");
        let (mut keeper, mut responses) = client
            .lease_keep_alive(lease.id())
            .await
            .expect("keep-alive");
        for _ in 0..8 {
            keeper.keep_alive().await.expect("send keep-alive");
            let resp = responses
                .message()
                .await
                .expect("response")
                .expect("a response");
            assert_eq!(resp.ttl(), 2);
            real_tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            exists(&mut client, "held").await,
            "kept alive for 4 s, twice its TTL"
        );
    });
}

#[test]
fn a_lease_expires_after_roughly_its_ttl_and_never_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let start = Instant::now();
        let lease = client.lease_grant(2, None).await.expect("grant");
        assert_eq!(lease.ttl(), 2);
        client
            .put(
                "ephemeral",
                "v",
                Some(PutOptions::new().with_lease(lease.id())),
            )
            .await
            .expect("put");
        let ttl = Duration::from_secs(2);
        let gone_at = loop {
            let present = exists(&mut client, "ephemeral").await;
            let elapsed = start.elapsed();
            if !present {
                break elapsed;
            }
            assert!(
                elapsed < ttl + Duration::from_secs(4),
                "still present {elapsed:?} after a 2 s grant"
            );
            real_tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            gone_at >= ttl,
            "deleted {gone_at:?} after the grant, before its TTL"
        );
        let (remaining, _, _) = time_to_live(&mut client, lease.id()).await;
        assert_eq!(remaining, -1, "an expired lease is gone");
    });
}

#[test]
fn a_lease_survives_a_restart_with_its_ttl_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Kind::Cairn, dir.path());
    let rt = runtime();
    let id = rt.block_on(async {
        let mut client = connect(&server).await;
        let lease = client.lease_grant(10, None).await.expect("grant");
        client
            .put(
                "durable",
                "v",
                Some(PutOptions::new().with_lease(lease.id())),
            )
            .await
            .expect("put");
        real_tokio::time::sleep(Duration::from_secs(4)).await;
        let (remaining, _, _) = time_to_live(&mut client, lease.id()).await;
        // 10 s minus the 4 s that passed, give or take the leader's 100 ms check interval.
        assert!(remaining <= 6, "4 s passed: {remaining} s left");
        lease.id()
    });
    server.kill9();
    server.restart();
    rt.block_on(async {
        let mut client = connect(&server).await;
        let (remaining, granted, keys) = time_to_live(&mut client, id).await;
        assert_eq!(granted, 10);
        assert!(
            remaining >= 8,
            "a restarted leader gives every lease its full TTL again: {remaining} s"
        );
        assert_eq!(keys, vec!["durable"], "the key is still attached");
        assert!(exists(&mut client, "durable").await);
        client.lease_revoke(id).await.expect("revoke after restart");
        assert!(!exists(&mut client, "durable").await);
    });
}

#[test]
fn lease_errors_carry_etcds_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client
            .lease_grant(60, Some(LeaseGrantOptions::new().with_id(7)))
            .await
            .expect("grant");
        let exists = client
            .lease_grant(60, Some(LeaseGrantOptions::new().with_id(7)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc_error(exists),
            (
                "FailedPrecondition".into(),
                "etcdserver: lease already exists".into()
            )
        );
        let too_large = client.lease_grant(9_000_000_001, None).await.unwrap_err();
        assert_eq!(
            grpc_error(too_large),
            (
                "OutOfRange".into(),
                "etcdserver: too large lease TTL".into()
            )
        );
        let not_found = client.lease_revoke(8).await.unwrap_err();
        assert_eq!(
            grpc_error(not_found),
            (
                "NotFound".into(),
                "etcdserver: requested lease not found".into()
            )
        );
        let put = client
            .put("k", "v", Some(PutOptions::new().with_lease(8)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc_error(put),
            (
                "NotFound".into(),
                "etcdserver: requested lease not found".into()
            )
        );
        let minimum = client
            .lease_grant(1, None)
            .await
            .expect("grant below the minimum");
        assert_eq!(
            minimum.ttl(),
            2,
            "raised to etcd's minimum TTL for a 1 s election timeout"
        );
    });
}

#[test]
fn a_lease_outlives_a_leader_kill_and_expires_after_roughly_its_ttl() {
    let mut cluster = Cluster::start(Kind::Cairn, 3);
    let leader = cluster.leader().expect("a leader");
    let survivors: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| cluster.members[i].endpoint())
        .collect();
    let rt = runtime();
    let start = Instant::now();
    rt.block_on(async {
        let mut client = Client::connect([cluster.members[leader].endpoint()], None)
            .await
            .expect("connect to the leader");
        let lease = client.lease_grant(5, None).await.expect("grant");
        client
            .put("ha", "v", Some(PutOptions::new().with_lease(lease.id())))
            .await
            .expect("put");
    });
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    cluster.members[leader].kill9();
    let gone_after_kill = rt.block_on(async {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(2));
        let mut client = Client::connect(&survivors, Some(options))
            .await
            .expect("connect to the survivors");
        loop {
            let elapsed = killed_at.elapsed();
            assert!(
                elapsed < Duration::from_secs(14),
                "still there {elapsed:?} after the kill: election + 1 s + 5 s TTL is far less"
            );
            match client.get("ha", None).await {
                Ok(resp) if resp.count() == 0 => break elapsed,
                _ => real_tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    // The new leader restarts the lease's full TTL plus an election timeout when it takes
    // over, after the kill: the lease must not end before 5 s past the kill.
    assert!(
        gone_after_kill >= Duration::from_secs(5),
        "expired {gone_after_kill:?} after the leader kill, {:?} after the grant",
        start.elapsed()
    );
}

#[test]
fn a_follower_forwards_keep_alives_and_time_to_live_to_the_leader() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    let leader = cluster.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&cluster.members[follower]).await;
        let lease = client.lease_grant(3, None).await.expect("grant").id();
        client
            .put("held", "v", Some(PutOptions::new().with_lease(lease)))
            .await
            .expect("put");
        let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.expect("keep-alive");
        // Twice the TTL, renewed through the follower every second.
        for _ in 0..6 {
            keeper.keep_alive().await.expect("send keep-alive");
            let answer = answers
                .message()
                .await
                .expect("answer")
                .expect("open stream");
            assert_eq!((answer.id(), answer.ttl()), (lease, 3));
            real_tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(
            exists(&mut client, "held").await,
            "kept alive through a follower"
        );
        let (ttl, granted, keys) = time_to_live(&mut client, lease).await;
        assert!((1..=3).contains(&ttl), "remaining TTL {ttl}");
        assert_eq!((granted, keys), (3, vec!["held".to_string()]));

        // An unknown lease: the leader answers TTL 0, which etcd-client reports as not found.
        let unknown = 0x7777;
        let refused = client.lease_keep_alive(unknown).await.map(|_| ());
        assert!(
            matches!(refused, Err(etcd_client::Error::LeaseKeepAliveError(_))),
            "{refused:?}"
        );
        assert_eq!(time_to_live(&mut client, unknown).await.0, -1);
    });
}
