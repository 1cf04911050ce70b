//! Three- and five-member clusters of the unchanged node code on simulated hosts: leader
//! kill, leader partition, minority and majority partitions, restart; and the same seed
//! giving the same run.

#![cfg(madsim)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use cairn_client::Client;
use cairn_core::api::etcdserverpb::{PutRequest, RangeRequest, StatusRequest};
use cairn_sim::cluster::{LogCompaction, SimCluster};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::time::sleep;

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));

async fn connect(endpoint: &str) -> Option<Client> {
    Client::connect(&[endpoint.to_string()]).await.ok()
}

/// The index of the member every reachable member agrees is leader.
async fn leader(endpoints: &[String]) -> Option<usize> {
    for _ in 0..100 {
        for (i, endpoint) in endpoints.iter().enumerate() {
            let Some(client) = connect(endpoint).await else {
                continue;
            };
            let Ok(status) = client.maintenance_status(StatusRequest {}).await else {
                continue;
            };
            let member = status.header.as_ref().map_or(0, |h| h.member_id);
            if status.leader != 0 && status.leader == member {
                return Some(i);
            }
        }
        sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn put(endpoint: &str, key: &str) -> bool {
    let Some(client) = connect(endpoint).await else {
        return false;
    };
    let req = PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        ..Default::default()
    };
    client.kv_put(req).await.is_ok()
}

async fn keys(endpoint: &str) -> BTreeSet<String> {
    let client = connect(endpoint).await.expect("connect for the final read");
    let req = RangeRequest {
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
        keys_only: true,
        ..Default::default()
    };
    let resp = client.kv_range(req).await.expect("final read");
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

/// Writes `count` keys round-robin over the members; returns the acknowledged ones.
async fn write_some(endpoints: &[String], prefix: &str, count: usize) -> BTreeSet<String> {
    let mut acknowledged = BTreeSet::new();
    for i in 0..count {
        let key = format!("k/{prefix}/{i:04}");
        if put(&endpoints[i % endpoints.len()], &key).await {
            acknowledged.insert(key);
        }
    }
    acknowledged
}

async fn assert_everywhere(endpoints: &[String], acknowledged: &BTreeSet<String>) {
    for endpoint in endpoints {
        let present = keys(endpoint).await;
        let missing: Vec<_> = acknowledged.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "{endpoint} misses acknowledged keys {missing:?}"
        );
    }
}

fn client_host() -> madsim::runtime::NodeHandle {
    Handle::current()
        .create_node()
        .name("client")
        .ip(CLIENT_IP)
        .build()
}

#[madsim::test]
async fn three_members_elect_a_leader_and_replicate() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    client_host()
        .spawn(async move {
            assert!(leader(&endpoints).await.is_some(), "no leader elected");
            let acknowledged = write_some(&endpoints, "a", 30).await;
            assert_eq!(acknowledged.len(), 30, "a healthy cluster refused writes");
            assert_everywhere(&endpoints, &acknowledged).await;
        })
        .await
        .unwrap();
}

#[madsim::test]
async fn leader_kill_and_restart_loses_no_acknowledged_write() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let (first, old_leader) = client
        .spawn(async move {
            let old = leader(&eps).await.expect("leader");
            (write_some(&eps, "before", 20).await, old)
        })
        .await
        .unwrap();
    cluster.kill(old_leader);
    let eps = endpoints.clone();
    let second = client
        .spawn(async move {
            let survivors: Vec<String> = eps
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != old_leader)
                .map(|(_, e)| e.clone())
                .collect();
            let new = leader(&survivors)
                .await
                .expect("a new leader among the survivors");
            assert_ne!(survivors[new], eps[old_leader]);
            write_some(&survivors, "during", 20).await
        })
        .await
        .unwrap();
    assert!(!second.is_empty(), "the majority accepted no write");
    cluster.start_again(old_leader);
    client
        .spawn(async move {
            sleep(Duration::from_secs(3)).await;
            let all: BTreeSet<String> = first.union(&second).cloned().collect();
            assert_everywhere(&endpoints, &all).await;
        })
        .await
        .unwrap();
}

#[madsim::test]
async fn partitioned_leader_is_replaced_and_catches_up_after_heal() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let old_leader = client
        .spawn(async move { leader(&eps).await.expect("leader") })
        .await
        .unwrap();
    let net = NetSim::current();
    for other in (0..3).filter(|i| *i != old_leader) {
        net.clog_link(cluster.node_id(old_leader), cluster.node_id(other));
        net.clog_link(cluster.node_id(other), cluster.node_id(old_leader));
    }
    let eps = endpoints.clone();
    let during = client
        .spawn(async move {
            let majority: Vec<String> = eps
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != old_leader)
                .map(|(_, e)| e.clone())
                .collect();
            leader(&majority)
                .await
                .expect("the majority elects a leader");
            write_some(&majority, "majority", 20).await
        })
        .await
        .unwrap();
    assert!(!during.is_empty());
    for other in (0..3).filter(|i| *i != old_leader) {
        net.unclog_link(cluster.node_id(old_leader), cluster.node_id(other));
        net.unclog_link(cluster.node_id(other), cluster.node_id(old_leader));
    }
    client
        .spawn(async move {
            sleep(Duration::from_secs(3)).await;
            assert_everywhere(&endpoints, &during).await;
        })
        .await
        .unwrap();
}

#[madsim::test]
async fn five_members_serve_with_two_down_and_not_with_three() {
    let cluster = SimCluster::start(5);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    client
        .spawn(async move { leader(&eps).await.expect("leader") })
        .await
        .unwrap();
    cluster.kill(0);
    cluster.kill(1);
    let eps = endpoints[2..].to_vec();
    let acknowledged = client
        .spawn(async move { write_some(&eps, "two-down", 10).await })
        .await
        .unwrap();
    assert!(!acknowledged.is_empty(), "3 of 5 members accepted no write");
    cluster.kill(2);
    let eps = endpoints[3..].to_vec();
    let refused = client
        .spawn(async move {
            let ok = write_some(&eps, "three-down", 3).await;
            ok.is_empty()
        })
        .await
        .unwrap();
    assert!(refused, "2 of 5 members acknowledged a write");
}

async fn determinism_scenario() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let old = client
        .spawn(async move { leader(&eps).await.expect("leader") })
        .await
        .unwrap();
    cluster.kill(old);
    let eps = endpoints.clone();
    client
        .spawn(async move { write_some(&eps, "d", 10).await })
        .await
        .unwrap();
    cluster.start_again(old);
    client
        .spawn(async move { write_some(&endpoints, "e", 10).await })
        .await
        .unwrap();
}

#[test]
fn the_same_seed_replays_the_same_run() {
    madsim::runtime::Runtime::check_determinism(7, madsim::Config::default(), determinism_scenario);
}

/// The first index in a member's Raft log (0 if empty).
fn first_log_index(cluster: &SimCluster, member: usize) -> u64 {
    use cairn_core::storage::{Engine as _, Order, Space};
    use protobuf::Message as _;
    let mut first = 0;
    let _ = cluster.engine(member).scan(
        Space::RaftLog,
        &[],
        None,
        Order::Ascending,
        &mut |_: &[u8], bytes: &[u8]| {
            first = raft::eraftpb::Entry::parse_from_bytes(bytes).map_or(0, |e| e.index);
            std::ops::ControlFlow::Break(())
        },
    );
    first
}

#[madsim::test]
async fn a_member_down_while_the_log_is_compacted_catches_up_by_snapshot() {
    let cluster = SimCluster::start_with(3, LogCompaction::AGGRESSIVE);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let old_leader = client
        .spawn(async move { leader(&eps).await.expect("leader") })
        .await
        .unwrap();
    let down = (old_leader + 1) % 3;
    cluster.kill(down);
    let up: Vec<String> = (0..3)
        .filter(|&i| i != down)
        .map(|i| endpoints[i].clone())
        .collect();
    let written = client
        .spawn(async move { write_some(&up, "snap", 400).await })
        .await
        .unwrap();
    assert_eq!(written.len(), 400, "a healthy majority refused writes");
    let compacted_to = (0..3)
        .filter(|&i| i != down)
        .map(|i| first_log_index(&cluster, i))
        .min()
        .unwrap_or(0);
    assert!(
        compacted_to > 100,
        "the live members kept their logs from entry {compacted_to}: nothing to catch up by snapshot"
    );
    cluster.start_again(down);
    client
        .spawn(async move {
            sleep(Duration::from_secs(5)).await;
            assert_everywhere(&endpoints, &written).await;
        })
        .await
        .unwrap();
}
