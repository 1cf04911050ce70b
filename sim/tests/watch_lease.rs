//! Watches and keep-alives across a leader change, on a simulated 3-member cluster: a
//! watcher that resumes after its stream breaks sees every committed event exactly once, in
//! order; a lease kept alive outlives the leader that granted it; a lease nobody keeps alive
//! expires after its TTL, not before, and not much later.

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    LeaseGrantRequest, LeaseTimeToLiveRequest, PutRequest, RangeRequest, StatusRequest,
    WatchCreateRequest, WatchRequest, watch_request,
};
use cairn_client::pb::mvccpb::Event;
use cairn_client::{Client, ConnectOptions};
use cairn_sim::cluster::SimCluster;
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use madsim::time::{Instant, sleep, timeout};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
/// The TTL of the leases under test.
const TTL: Duration = Duration::from_secs(5);
/// What a new leader adds to every lease: the election timeout (default flags).
const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for the expiry check interval and for committing the revoke.
const SLACK: Duration = Duration::from_secs(1);
/// Keys the writer puts under `w/`.
const WRITES: usize = 40;

fn client_host() -> NodeHandle {
    Handle::current()
        .create_node()
        .name("client")
        .ip(CLIENT_IP)
        .build()
}

async fn connect(endpoint: &str) -> Option<Client> {
    let options = ConnectOptions {
        dial_timeout: Some(Duration::from_secs(1)),
        request_timeout: Some(Duration::from_secs(3)),
        tls: None,
    };
    Client::connect_with(&[endpoint.to_string()], options)
        .await
        .ok()
}

/// The index of the member that says it leads, polling for up to 30 s.
async fn leader(endpoints: &[String]) -> usize {
    for _ in 0..150 {
        for (i, endpoint) in endpoints.iter().enumerate() {
            let Some(client) = connect(endpoint).await else {
                continue;
            };
            let Ok(status) = client.maintenance_status(StatusRequest {}).await else {
                continue;
            };
            let member = status.header.as_ref().map_or(0, |h| h.member_id);
            if status.leader != 0 && status.leader == member {
                return i;
            }
        }
        sleep(Duration::from_millis(200)).await;
    }
    panic!("no leader within 30 s");
}

/// Puts `w/<i>` for each `i`, retrying on every member until each put is acknowledged.
async fn write_all(endpoints: Vec<String>, range: std::ops::Range<usize>) {
    let mut member = 0;
    for i in range {
        loop {
            let request = PutRequest {
                key: format!("w/{i:03}").into_bytes(),
                value: b"v".to_vec(),
                ..Default::default()
            };
            if let Some(client) = connect(&endpoints[member]).await
                && client.kv_put(request).await.is_ok()
            {
                break;
            }
            member = (member + 1) % endpoints.len();
            sleep(Duration::from_millis(100)).await;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Watches `w/` from revision 1 through `first` member, resuming at the last revision + 1
/// on the next member whenever the stream breaks or stays silent for 3 s, until `done` and
/// nothing came for a second; returns every event received, in order, and how many times
/// it resumed.
async fn watch_resuming(
    endpoints: Vec<String>,
    first: usize,
    done: Arc<AtomicBool>,
) -> (Vec<Event>, usize) {
    let mut events: Vec<Event> = Vec::new();
    let mut member = first;
    let mut sessions = 0;
    loop {
        sessions += 1;
        let next = events
            .last()
            .and_then(|e| e.kv.as_ref())
            .map_or(1, |kv| kv.mod_revision + 1);
        let create = WatchCreateRequest {
            key: b"w/".to_vec(),
            range_end: b"w0".to_vec(),
            start_revision: next,
            ..Default::default()
        };
        let request = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        };
        if let Some(client) = connect(&endpoints[member]).await
            && let Ok(mut stream) = client.watch(request).await
        {
            let mut quiet = 0;
            loop {
                match timeout(Duration::from_secs(1), stream.message()).await {
                    Ok(Ok(Some(response))) => {
                        quiet = 0;
                        events.extend(response.events);
                    }
                    Ok(_) => break,
                    Err(_quiet) if done.load(Ordering::Relaxed) => {
                        return (events, sessions - 1);
                    }
                    // A member that went away may leave the stream silent.
                    Err(_quiet) if quiet >= 3 => break,
                    Err(_quiet) => quiet += 1,
                }
            }
        }
        member = (member + 1) % endpoints.len();
        sleep(Duration::from_millis(100)).await;
    }
}

/// Every key under `w/` as a linearizable read sees it now.
async fn final_keys(endpoints: &[String]) -> Vec<(Vec<u8>, i64)> {
    for _ in 0..100 {
        for endpoint in endpoints {
            let Some(client) = connect(endpoint).await else {
                continue;
            };
            let request = RangeRequest {
                key: b"w/".to_vec(),
                range_end: b"w0".to_vec(),
                ..Default::default()
            };
            if let Ok(response) = client.kv_range(request).await {
                return response
                    .kvs
                    .into_iter()
                    .map(|kv| (kv.key, kv.mod_revision))
                    .collect();
            }
        }
        sleep(Duration::from_millis(200)).await;
    }
    panic!("no member answered the final read");
}

#[madsim::test]
async fn resumed_watch_sees_every_event_once_in_order_across_a_leader_kill() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let old = client
        .spawn(async move { leader(&eps).await })
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = client.spawn(watch_resuming(endpoints.clone(), old, done.clone()));
    let eps = endpoints.clone();
    client.spawn(write_all(eps, 0..WRITES / 2)).await.unwrap();
    cluster.kill(old);
    let eps = endpoints.clone();
    client
        .spawn(write_all(eps, WRITES / 2..WRITES))
        .await
        .unwrap();
    cluster.start_again(old);
    let eps = endpoints.clone();
    let committed = client
        .spawn(async move { final_keys(&eps).await })
        .await
        .unwrap();
    assert_eq!(committed.len(), WRITES, "every acknowledged put is there");
    sleep(Duration::from_secs(3)).await;
    done.store(true, Ordering::Relaxed);
    let (events, resumed) = watcher.await.unwrap();
    assert!(
        resumed >= 1,
        "the watch never resumed after the leader kill"
    );
    let seen: Vec<(Vec<u8>, i64)> = events
        .iter()
        .filter_map(|e| e.kv.as_ref())
        .map(|kv| (kv.key.clone(), kv.mod_revision))
        .collect();
    let mut by_revision = committed.clone();
    by_revision.sort_by_key(|(_, revision)| *revision);
    assert_eq!(
        seen, by_revision,
        "the watcher saw exactly the committed puts, once each, in revision order"
    );
}

/// What the lease test saw of one lease.
#[derive(Debug)]
struct Observed {
    granted_sent: Instant,
    granted_acked: Instant,
    revoked_seen: Option<Instant>,
}

async fn grant(endpoints: &[String]) -> (i64, Instant, Instant) {
    for _ in 0..100 {
        for endpoint in endpoints {
            let Some(client) = connect(endpoint).await else {
                continue;
            };
            let sent = Instant::now();
            let request = LeaseGrantRequest {
                ttl: TTL.as_secs() as i64,
                id: 0,
            };
            if let Ok(response) = client.lease_grant(request).await {
                let key = format!("lease/{:x}", response.id);
                let put = PutRequest {
                    key: key.into_bytes(),
                    value: b"v".to_vec(),
                    lease: response.id,
                    ..Default::default()
                };
                client.kv_put(put).await.expect("attach a key to the lease");
                return (response.id, sent, Instant::now());
            }
        }
        sleep(Duration::from_millis(200)).await;
    }
    panic!("no lease granted");
}

/// Whether lease `id` is revoked, asked of whichever member answers (the leader).
async fn revoked(endpoints: &[String], id: i64) -> Option<bool> {
    for endpoint in endpoints {
        let Some(client) = connect(endpoint).await else {
            continue;
        };
        // An isolated former leader cannot answer: ask the next member soon.
        let client = client.with_request_timeout(Some(Duration::from_millis(500)));
        let request = LeaseTimeToLiveRequest { id, keys: false };
        if let Ok(response) = client.lease_time_to_live(request).await {
            return Some(response.ttl == -1);
        }
    }
    None
}

/// Polls lease `id` every 100 ms until it is seen revoked or `until` passes.
async fn watch_expiry(endpoints: Vec<String>, id: i64, until: Instant) -> Option<Instant> {
    while Instant::now() < until {
        if revoked(&endpoints, id).await == Some(true) {
            return Some(Instant::now());
        }
        sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Grants a lease nobody keeps alive and polls until it is revoked (30 s at most): when the
/// grant was sent and acknowledged, and when it was seen revoked.
async fn grant_unkept(
    client: &NodeHandle,
    endpoints: Vec<String>,
) -> (Instant, Instant, Option<Instant>) {
    client
        .spawn(async move {
            let (id, sent, acked) = grant(&endpoints).await;
            let seen = watch_expiry(endpoints, id, Instant::now() + Duration::from_secs(30)).await;
            (sent, acked, seen)
        })
        .await
        .unwrap()
}

/// Keeps lease `id` alive every second until `stop`, switching members after a failure
/// (only the leader renews); returns when the last acknowledged keep-alive was sent.
async fn keep_alive(endpoints: Vec<String>, id: i64, stop: Arc<AtomicBool>) -> Instant {
    let mut last_acked = Instant::now();
    let mut member = 0;
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let answer = match connect(&endpoints[member]).await {
            Some(client) => timeout(Duration::from_secs(2), client.lease_keep_alive_once(id))
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        match answer {
            Some(response) => {
                assert!(
                    response.ttl > 0,
                    "the kept-alive lease was revoked (last acknowledged keep-alive sent {:?} before)",
                    sent - last_acked
                );
                last_acked = sent;
                sleep(Duration::from_secs(1)).await;
            }
            None => {
                member = (member + 1) % endpoints.len();
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
    last_acked
}

#[madsim::test]
async fn kept_alive_lease_survives_a_leader_change_and_unkept_ones_expire_after_their_ttl() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let (kept, unkept, old) = client
        .spawn(async move {
            let old = leader(&eps).await;
            let kept = grant(&eps).await;
            let unkept = grant(&eps).await;
            (kept, unkept, old)
        })
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let keeper = client.spawn(keep_alive(endpoints.clone(), kept.0, stop.clone()));
    let unkept_expiry = client.spawn(watch_expiry(
        endpoints.clone(),
        unkept.0,
        Instant::now() + Duration::from_secs(30),
    ));

    // Isolate the leader two seconds in; a new one takes over.
    sleep(Duration::from_secs(2)).await;
    let net = NetSim::current();
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    for &other in &others {
        net.clog_link(cluster.node_id(old), cluster.node_id(other));
        net.clog_link(cluster.node_id(other), cluster.node_id(old));
    }
    let majority: Vec<String> = others.iter().map(|&i| endpoints[i].clone()).collect();
    let new = client
        .spawn(async move { leader(&majority).await })
        .await
        .unwrap();
    let new_leader_seen = Instant::now();
    assert_ne!(others[new], old);

    let unkept = Observed {
        granted_sent: unkept.1,
        granted_acked: unkept.2,
        revoked_seen: unkept_expiry.await.unwrap(),
    };
    let revoked_at = unkept
        .revoked_seen
        .expect("the lease nobody kept alive was never revoked");
    assert!(
        revoked_at >= unkept.granted_sent + TTL,
        "revoked {:?} after its grant, before its TTL: {unkept:?}",
        revoked_at - unkept.granted_sent
    );
    let latest = new_leader_seen.max(unkept.granted_acked + TTL) + TTL + ELECTION_TIMEOUT + SLACK;
    assert!(
        revoked_at <= latest,
        "revoked {:?} after the new leader was seen: {unkept:?}",
        revoked_at - new_leader_seen
    );

    for &other in &others {
        net.unclog_link(cluster.node_id(old), cluster.node_id(other));
        net.unclog_link(cluster.node_id(other), cluster.node_id(old));
    }
    // The kept lease has lived through the change for well over its TTL.
    sleep(TTL * 2).await;
    let eps = endpoints.clone();
    let id = kept.0;
    let alive = client
        .spawn(async move { revoked(&eps, id).await })
        .await
        .unwrap();
    assert_eq!(alive, Some(false), "the kept-alive lease is still granted");

    // With a stable leader, a lease nobody keeps alive expires within its TTL and a check.
    let (stable_sent, stable_acked, stable_revoked) =
        grant_unkept(&client, endpoints.clone()).await;
    let stable_revoked = stable_revoked.expect("the lease was never revoked");
    assert!(stable_revoked >= stable_sent + TTL);
    assert!(
        stable_revoked <= stable_acked + TTL + SLACK,
        "revoked {:?} after its grant was acknowledged",
        stable_revoked - stable_acked
    );

    // Once nobody keeps it alive, the kept lease expires too.
    stop.store(true, Ordering::Relaxed);
    let last_acked = keeper.await.unwrap();
    let eps = endpoints.clone();
    let expired = client
        .spawn(async move { watch_expiry(eps, id, Instant::now() + Duration::from_secs(30)).await })
        .await
        .unwrap()
        .expect("the lease was never revoked after its keep-alives stopped");
    assert!(expired >= last_acked + TTL);
}

#[madsim::test]
async fn a_leader_whose_clock_runs_fast_expires_leases_early_by_its_skew() {
    let cluster = SimCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = client_host();
    let eps = endpoints.clone();
    let leader = client
        .spawn(async move { leader(&eps).await })
        .await
        .unwrap();
    let leader_id = cluster
        .node_handle(leader)
        .expect("the leader runs")
        .identity()
        .member_id;
    // The leader's clock runs 50% fast: its heartbeats and its lease clock both speed up,
    // and it stays leader (a fast leader only heartbeats more often).
    cairn_node::clock::sim_skew::set(leader_id, 500_000);
    let (sent, acked, seen) = grant_unkept(&client, endpoints.clone()).await;
    cairn_node::clock::sim_skew::clear();
    let seen = seen.expect("the lease was never revoked");
    assert_eq!(
        cluster.leader(),
        Some(leader),
        "the fast leader kept leading"
    );
    // 5 s of the leader's time pass in 3.33 s.
    let fast_ttl = TTL * 2 / 3;
    assert!(
        seen >= sent + fast_ttl && seen < acked + TTL - SLACK / 2,
        "revoked {:?} after the grant was sent; a 50% fast clock expires a {TTL:?} lease after {fast_ttl:?}",
        seen - sent
    );
}
