//! The lease workload: client processes grant leases with short TTLs, attach a key to each,
//! keep some alive continuously (through leader changes and partitions) and let the others
//! expire; what they observe is checked for lease safety.
//!
//! etcd's guarantee (the lessor runs on the leader only; a new leader restarts every TTL
//! plus an election timeout): a lease is not revoked before its TTL has run from the last
//! renewal the leader made, and a renewal is made between the sending of a keep-alive and
//! its acknowledgement. So for every lease whose revocation a client observed at time `x`
//! (a keep-alive answered with TTL 0, a time-to-live query answered -1), with `s` the
//! sending time of the last acknowledged keep-alive (or of the grant):
//! `x >= s + TTL - tolerance`. The tolerance covers a deposed leader that renewed after its
//! successor took over (the election timeout the successor adds to every lease), and a
//! leader whose clock the nemesis made run fast (etcd, too, assumes bounded drift). No keep-alive may be acknowledged after the
//! lease was seen revoked. In the liveness phase, with keep-alives stopped, every lease must
//! be revoked (checked here), and no leased key may remain (checked with the final data).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{LeaseGrantRequest, LeaseTimeToLiveRequest, PutRequest};
use cairn_client::{Client, ClientError, KeepAliveStream};
use madsim::rand::Rng as _;

use crate::client::Connection;
use crate::recorder::now_nanos;
use crate::watcher::LEASE_KEY_PREFIX;

/// How early (before TTL after the last acknowledged renewal) a revocation may be seen,
/// whatever the clocks: the election timeout a new leader adds to every lease (1 s with the
/// default flags).
pub const LEASE_TOLERANCE: Duration = Duration::from_secs(1);

/// How early a lease of `ttl` may be seen revoked: [`LEASE_TOLERANCE`], plus what a leader
/// whose clock runs fast (the nemesis's clock skew) takes off its TTL.
pub fn tolerance(ttl: Duration) -> Duration {
    let skew =
        ttl.as_nanos() * crate::nemesis::MAX_CLOCK_SKEW_PPM.unsigned_abs() as u128 / 1_000_000;
    LEASE_TOLERANCE + Duration::from_nanos(u64::try_from(skew).unwrap_or(u64::MAX))
}
/// Shortest and longest TTL granted, in seconds.
const TTL_SECS: (i64, i64) = (3, 6);
/// Leases one client holds at most at a time.
const MAX_LIVE_LEASES: usize = 3;
/// How often kept-alive leases are renewed and unkept ones looked at.
const ROUND_INTERVAL: Duration = Duration::from_millis(500);
/// How long one keep-alive may wait for its answer.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// What is known about one granted lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The client that granted it.
    pub client: u64,
    /// The granted TTL.
    pub ttl: Duration,
    /// Whether its client keeps it alive (during the safety phase).
    pub kept: bool,
    /// When the grant was sent.
    pub granted: Duration,
    /// When the last acknowledged keep-alive (or the grant) was sent.
    pub renewed: Duration,
    /// When (and how) it was first seen revoked.
    pub gone: Option<(Duration, String)>,
}

#[derive(Debug, Default)]
struct State {
    leases: BTreeMap<i64, LeaseRecord>,
    breaches: Vec<String>,
}

/// The leases of a run, shared by every lease client.
#[derive(Debug, Clone, Default)]
pub struct LeaseLog {
    state: Arc<Mutex<State>>,
}

fn now() -> Duration {
    Duration::from_nanos(now_nanos())
}

impl LeaseLog {
    /// An empty log.
    pub fn new() -> Self {
        LeaseLog::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn granted(&self, id: i64, record: LeaseRecord) {
        self.lock().leases.insert(id, record);
    }

    /// A keep-alive of `id` sent at `sent` was acknowledged with a positive TTL.
    fn renewed(&self, id: i64, sent: Duration) {
        let mut state = self.lock();
        let Some(lease) = state.leases.get_mut(&id) else {
            return;
        };
        lease.renewed = lease.renewed.max(sent);
        if let Some((at, how)) = lease.gone.clone() {
            let breach = format!(
                "lease {id:x} renewed by a keep-alive sent at {:.3}s after it was seen revoked \
                 at {:.3}s ({how})",
                sent.as_secs_f64(),
                at.as_secs_f64()
            );
            state.breaches.push(breach);
        }
    }

    /// Lease `id` was seen revoked now, by `how`.
    fn revoked(&self, id: i64, how: &str) {
        let at = now();
        if let Some(lease) = self.lock().leases.get_mut(&id) {
            lease.gone.get_or_insert((at, how.to_string()));
        }
    }

    /// Whether lease `id` was seen revoked.
    fn is_gone(&self, id: i64) -> bool {
        self.lock()
            .leases
            .get(&id)
            .is_none_or(|lease| lease.gone.is_some())
    }

    /// Leases not seen revoked yet.
    pub fn live(&self) -> Vec<i64> {
        let state = self.lock();
        state
            .leases
            .iter()
            .filter(|(_, l)| l.gone.is_none())
            .map(|(&id, _)| id)
            .collect()
    }

    /// Every lease and what was seen of it.
    pub fn leases(&self) -> BTreeMap<i64, LeaseRecord> {
        self.lock().leases.clone()
    }

    /// Every breach of lease safety seen: revocations earlier than the guarantee allows,
    /// renewals after a revocation.
    pub fn breaches(&self) -> Vec<String> {
        let state = self.lock();
        let mut breaches = state.breaches.clone();
        for (id, lease) in &state.leases {
            let Some((at, how)) = &lease.gone else {
                continue;
            };
            let earliest = (lease.renewed + lease.ttl).saturating_sub(tolerance(lease.ttl));
            if *at < earliest {
                breaches.push(format!(
                    "lease {id:x} (TTL {}s, {}) seen revoked at {:.3}s ({how}), but its last \
                     acknowledged renewal was sent at {:.3}s: not before {:.3}s",
                    lease.ttl.as_secs(),
                    if lease.kept {
                        "kept alive"
                    } else {
                        "not kept alive"
                    },
                    at.as_secs_f64(),
                    lease.renewed.as_secs_f64(),
                    earliest.as_secs_f64()
                ));
            }
        }
        breaches
    }
}

/// One lease client process.
pub struct LeaseClient {
    id: u64,
    conn: Connection,
    log: LeaseLog,
    /// Leases this client granted and has not seen revoked: id and whether kept alive.
    mine: Vec<(i64, bool)>,
    keep_alive: Option<KeepAliveStream>,
    seq: u64,
    next_grant: Duration,
}

impl LeaseClient {
    /// Lease client `id`, first connected to member `id % endpoints.len()`.
    pub fn new(id: u64, endpoints: Vec<String>, log: LeaseLog) -> Self {
        let preferred = id as usize % endpoints.len();
        LeaseClient {
            id,
            conn: Connection::new(endpoints, preferred),
            log,
            mine: Vec::new(),
            keep_alive: None,
            seq: 0,
            next_grant: Duration::ZERO,
        }
    }

    /// Grants, renews and watches leases until `stop` is set; then keeps nothing alive.
    pub async fn run_until(mut self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            self.round().await;
            madsim::time::sleep(ROUND_INTERVAL).await;
        }
    }

    async fn round(&mut self) {
        self.mine.retain(|(id, _)| !self.log.is_gone(*id));
        if self.mine.len() < MAX_LIVE_LEASES && now() >= self.next_grant {
            self.grant().await;
            let pause = madsim::rand::thread_rng().gen_range(1000..4000);
            self.next_grant = now() + Duration::from_millis(pause);
        }
        for (id, kept) in self.mine.clone() {
            if kept {
                self.renew(id).await;
            } else if madsim::rand::thread_rng().gen_bool(0.5) {
                self.look_at(id).await;
            }
        }
    }

    /// Grants a lease, attaches a key to it, and decides whether to keep it alive.
    async fn grant(&mut self) {
        let Some(client) = self.conn.get().await else {
            return;
        };
        let ttl = madsim::rand::thread_rng().gen_range(TTL_SECS.0..=TTL_SECS.1);
        let sent = now();
        let request = LeaseGrantRequest { ttl, id: 0 };
        let response = match client.lease_grant(request).await {
            Ok(response) => response,
            Err(error) => {
                self.conn.outcome_of(&error);
                return;
            }
        };
        let kept = madsim::rand::thread_rng().gen_bool(0.5);
        let record = LeaseRecord {
            client: self.id,
            ttl: Duration::from_secs(u64::try_from(response.ttl.max(ttl)).unwrap_or(0)),
            kept,
            granted: sent,
            renewed: sent,
            gone: None,
        };
        self.log.granted(response.id, record);
        self.mine.push((response.id, kept));
        self.attach(&client, response.id).await;
    }

    async fn attach(&mut self, client: &Client, lease: i64) {
        self.seq += 1;
        let key = format!("{LEASE_KEY_PREFIX}{}/{:06}", self.id, self.seq);
        let request = PutRequest {
            key: key.into_bytes(),
            value: format!("{lease:x}").into_bytes(),
            lease,
            ..Default::default()
        };
        if let Err(error) = client.kv_put(request).await {
            self.conn.outcome_of(&error);
        }
    }

    /// One keep-alive of `id`, on this client's keep-alive stream (opened by it if there
    /// is none).
    async fn renew(&mut self, id: i64) {
        let sent = now();
        let answered = match self.keep_alive.take() {
            Some(mut stream) => {
                let answer = async {
                    stream.keep_alive(id).await?;
                    let response = stream.message().await?;
                    Ok::<_, ClientError>((stream, response))
                };
                madsim::time::timeout(KEEP_ALIVE_TIMEOUT, answer).await
            }
            None => {
                let Some(client) = self.conn.get().await else {
                    return;
                };
                let answer = async {
                    let mut stream = client.lease_keep_alive(id).await?;
                    let response = stream.message().await?;
                    Ok::<_, ClientError>((stream, response))
                };
                madsim::time::timeout(KEEP_ALIVE_TIMEOUT, answer).await
            }
        };
        match answered {
            Ok(Ok((stream, Some(response)))) => {
                if response.ttl > 0 {
                    self.log.renewed(id, sent);
                } else {
                    self.log.revoked(id, "keep-alive answered TTL 0");
                }
                self.keep_alive = Some(stream);
            }
            Ok(Err(error)) => {
                self.conn.outcome_of(&error);
                self.broken();
            }
            Ok(Ok((_, None))) | Err(_) => self.broken(),
        }
    }

    /// The stream or the connection failed: dial another member next time.
    fn broken(&mut self) {
        self.keep_alive = None;
        self.conn.drop_connection();
    }

    /// Asks for `id`'s time to live; -1 means it was revoked.
    async fn look_at(&mut self, id: i64) {
        if time_to_live(&mut self.conn, id).await == Some(true) {
            self.log.revoked(id, "time-to-live answered -1");
        }
    }
}

/// Whether lease `id` is revoked, by a time-to-live query; `None` if no answer.
async fn time_to_live(conn: &mut Connection, id: i64) -> Option<bool> {
    let client = conn.get().await?;
    let request = LeaseTimeToLiveRequest { id, keys: false };
    match client.lease_time_to_live(request).await {
        Ok(response) => Some(response.ttl == -1),
        Err(error) => {
            conn.outcome_of(&error);
            conn.drop_connection();
            None
        }
    }
}

/// The liveness phase's lease check: with every keep-alive stopped, each lease not seen
/// revoked yet is polled until it is (the caller bounds the time).
pub async fn wait_for_revocations(endpoints: Vec<String>, log: LeaseLog) {
    let mut conn = Connection::new(endpoints, 0);
    loop {
        let live = log.live();
        if live.is_empty() {
            return;
        }
        for id in live {
            if time_to_live(&mut conn, id).await == Some(true) {
                log.revoked(id, "time-to-live answered -1 after the keep-alives stopped");
            }
        }
        madsim::time::sleep(ROUND_INTERVAL).await;
    }
}
