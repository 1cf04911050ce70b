//! A single-member cluster on a simulated host, driven by `cairn_client` over the
//! simulated network: puts and gets, and acknowledged writes surviving a power cut.

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use cairn_client::Client;
use cairn_core::api::etcdserverpb::{PutRequest, RangeRequest};
use cairn_sim::cluster::SimCluster;
use madsim::runtime::Handle;

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));

async fn connect(endpoints: &[String]) -> Client {
    for _ in 0..50 {
        if let Ok(client) = Client::connect(endpoints).await {
            return client;
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not connect to {endpoints:?}");
}

async fn put(client: &Client, key: &str, value: &str) -> i64 {
    let req = PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    };
    let resp = client.kv_put(req).await.expect("put");
    resp.header.expect("header").revision
}

async fn get(client: &Client, key: &str) -> Option<Vec<u8>> {
    let req = RangeRequest {
        key: key.into(),
        ..Default::default()
    };
    let resp = client.kv_range(req).await.expect("range");
    resp.kvs.first().map(|kv| kv.value.clone())
}

#[madsim::test]
async fn single_member_serves_puts_and_gets() {
    let cluster = SimCluster::start(1);
    let endpoints = cluster.endpoints();
    let client_host = Handle::current()
        .create_node()
        .name("client")
        .ip(CLIENT_IP)
        .build();
    client_host
        .spawn(async move {
            let client = connect(&endpoints).await;
            let mut last = 1;
            for i in 0..50 {
                let revision = put(&client, &format!("k{}", i % 7), &format!("v{i}")).await;
                assert_eq!(revision, last + 1, "every put makes one revision");
                last = revision;
            }
            assert_eq!(get(&client, "k0").await, Some(b"v49".to_vec()));
            assert_eq!(get(&client, "k6").await, Some(b"v48".to_vec()));
            assert_eq!(get(&client, "missing").await, None);
        })
        .await
        .expect("client task");
}

#[madsim::test]
async fn acknowledged_puts_survive_a_power_cut() {
    let cluster = SimCluster::start(1);
    let endpoints = cluster.endpoints();
    let client_host = Handle::current()
        .create_node()
        .name("client")
        .ip(CLIENT_IP)
        .build();
    let writer_endpoints = endpoints.clone();
    client_host
        .spawn(async move {
            let client = connect(&writer_endpoints).await;
            for i in 0..30 {
                put(&client, &format!("k{i}"), "v").await;
            }
        })
        .await
        .expect("writer");
    cluster.power_cycle(0);
    client_host
        .spawn(async move {
            let client = connect(&endpoints).await;
            for i in 0..30 {
                assert_eq!(
                    get(&client, &format!("k{i}")).await,
                    Some(b"v".to_vec()),
                    "k{i} lost"
                );
            }
        })
        .await
        .expect("reader");
}
