//! Client-side sessions, elections and locks with the semantics of etcd's
//! `clientv3/concurrency` (`session.go`, `election.go`, `mutex.go`, `key.go`), as etcdctl's
//! `elect` and `lock` use them: a [`Session`] is a lease kept alive by a task of its own,
//! an [`Election`] contender or a [`Mutex`] waiter owns the key `<name>/<lease id in hex>`
//! on it, and waiting for one's turn watches the key created just before one's own until it
//! is deleted. The requests are [`cairn_core::concurrency`]'s, shared with the server's
//! Election and Lock services.

use std::time::Duration;

use cairn_core::api::etcdserverpb::{
    LeaseGrantRequest, RangeRequest, RangeResponse, ResponseHeader, WatchCreateRequest,
    WatchRequest, watch_request,
};
use cairn_core::api::mvccpb::KeyValue;
use cairn_core::api::mvccpb::event::EventType;
use cairn_core::concurrency as recipe;
use tokio::sync::{mpsc, watch};

use crate::client::Client;
use crate::error::ClientError;

pub use cairn_core::concurrency::DEFAULT_SESSION_TTL_SECS;

/// clientv3's pause between attempts to reopen a failed keep-alive stream.
const KEEP_ALIVE_RETRY: Duration = Duration::from_millis(500);
/// Leader changes an observer queues before it waits for its reader.
pub const OBSERVE_QUEUE_LEN: usize = 16;

/// Why an election or lock operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConcurrencyError {
    /// A call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The contender's key is gone or was re-created (`ErrElectionNotLeader`).
    #[error("election: not leader")]
    NotLeader,
    /// A watch ended before the key it waited on was deleted.
    #[error("lost watcher waiting for delete")]
    LostWatcher,
    /// A watch started at a compacted revision.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// A watch was cancelled by the server for another reason.
    #[error("{0}")]
    WatchCanceled(String),
    /// A transaction answered in a shape its request cannot produce.
    #[error("unexpected transaction response")]
    Malformed(#[from] recipe::Malformed),
}

/// A lease kept alive until the session is dropped or the lease is lost
/// (clientv3's `concurrency.Session`).
pub struct Session {
    lease: i64,
    expired: watch::Receiver<bool>,
    keeper: mpsc::Sender<()>,
}

impl Session {
    /// Grants a lease of `ttl_secs` seconds and keeps it alive from now on.
    pub async fn new(client: &Client, ttl_secs: i64) -> Result<Session, ClientError> {
        let granted = client
            .lease_grant(LeaseGrantRequest {
                ttl: ttl_secs,
                id: 0,
            })
            .await?;
        let (expired_tx, expired) = watch::channel(false);
        let (keeper, stop) = mpsc::channel(1);
        tokio::spawn(keep_alive(
            client.clone(),
            granted.id,
            granted.ttl,
            stop,
            expired_tx,
        ));
        Ok(Session {
            lease: granted.id,
            expired,
            keeper,
        })
    }

    /// The session's lease.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Completes when the lease is no longer kept alive (revoked, expired, or unreachable
    /// for a whole TTL): clientv3's `Session.Done`.
    pub async fn done(&self) {
        let mut expired = self.expired.clone();
        let _ = expired.wait_for(|e| *e).await;
    }

    /// Stops keeping the lease alive (clientv3's `Orphan`).
    pub fn orphan(self) {
        drop(self.keeper);
    }
}

/// clientv3's keep-alive loop for one lease: a keep-alive every third of the TTL; the
/// session ends when the server answers TTL 0 (the lease is gone) or no answer came for a
/// whole TTL. Ends quietly when the session is dropped.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl_secs: i64,
    mut stop: mpsc::Receiver<()>,
    expired: watch::Sender<bool>,
) {
    let kept = async {
        let ttl = Duration::from_secs(u64::try_from(ttl_secs).unwrap_or(0).max(1));
        let mut deadline = tokio::time::Instant::now() + ttl;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, client.lease_keep_alive_once(lease)).await {
                Ok(Ok(answer)) if answer.ttl <= 0 => return,
                Ok(Ok(answer)) => {
                    let ttl = u64::try_from(answer.ttl).unwrap_or(1);
                    deadline = tokio::time::Instant::now() + Duration::from_secs(ttl);
                    tokio::time::sleep(Duration::from_secs(ttl) / 3).await;
                }
                Ok(Err(_)) => tokio::time::sleep(KEEP_ALIVE_RETRY).await,
                Err(_elapsed) => return,
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    };
    tokio::select! {
        _ = stop.recv() => {}
        () = kept => {
            let _ = expired.send(true);
        }
    }
}

/// An election contender that has been elected (clientv3's `Election` after `Campaign`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    /// The contender's key.
    pub key: Vec<u8>,
    /// Its create revision.
    pub revision: i64,
    /// The lease it is attached to.
    pub lease: i64,
    /// The header of the campaign's transaction.
    pub header: ResponseHeader,
}

/// What a campaign made before waiting for its turn: the key to resign if it is abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidacy {
    election: Election,
    prefix: Vec<u8>,
}

impl Candidacy {
    /// `Campaign`'s first half: creates the contender's key under election `name` with
    /// `value` (or takes over the key the lease already has, proclaiming `value`).
    pub async fn enter(
        client: &Client,
        lease: i64,
        name: &[u8],
        value: &[u8],
    ) -> Result<Candidacy, ConcurrencyError> {
        let prefix = recipe::key_prefix(name);
        let key = recipe::session_key(&prefix, lease);
        let answer = client.kv_txn(recipe::campaign(&key, value, lease)).await?;
        let found = recipe::campaigned(&answer)?;
        let election = Election {
            key,
            revision: found.revision,
            lease,
            header: answer.header.unwrap_or_default(),
        };
        if found.existing_value.is_some_and(|v| v != value)
            && let Err(e) = election.proclaim(client, value).await
        {
            let _ = election.resign(client).await;
            return Err(e);
        }
        Ok(Candidacy { election, prefix })
    }

    /// `Campaign`'s second half: waits until every key created before the contender's is
    /// gone. On failure the contender stays a candidate (see [`Candidacy::abandon`]).
    pub async fn wait(&self, client: &Client) -> Result<Election, ConcurrencyError> {
        wait_deletes(client, &self.prefix, self.election.revision - 1).await?;
        Ok(self.election.clone())
    }

    /// Resigns a campaign given up while waiting (etcd does when its context is cancelled).
    pub async fn abandon(&self, client: &Client) -> Result<(), ConcurrencyError> {
        self.election.resign(client).await
    }
}

impl Election {
    /// `Proclaim`: a new value, if the key is still the one created at `revision`.
    pub async fn proclaim(&self, client: &Client, value: &[u8]) -> Result<(), ConcurrencyError> {
        let txn = recipe::proclaim(&self.key, self.revision, value, self.lease);
        match client.kv_txn(txn).await?.succeeded {
            true => Ok(()),
            false => Err(ConcurrencyError::NotLeader),
        }
    }

    /// `Resign`: deletes the key if it is still the one created at `revision`.
    pub async fn resign(&self, client: &Client) -> Result<(), ConcurrencyError> {
        client
            .kv_txn(recipe::resign(&self.key, self.revision))
            .await?;
        Ok(())
    }
}

/// A lock waiter (clientv3's `Mutex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutex {
    prefix: Vec<u8>,
    key: Vec<u8>,
    revision: i64,
    owner: Option<ResponseHeader>,
}

impl Mutex {
    /// `Lock`'s first half: creates the waiter's key under lock `name` (or finds the key
    /// the lease already has) and learns whether it holds the lock already.
    pub async fn enqueue(
        client: &Client,
        lease: i64,
        name: &[u8],
    ) -> Result<Mutex, ConcurrencyError> {
        let prefix = recipe::key_prefix(name);
        let key = recipe::session_key(&prefix, lease);
        let answer = client.kv_txn(recipe::lock(&key, &prefix, lease)).await?;
        let found = recipe::locked(&answer)?;
        let owner = found.owner.then(|| answer.header.unwrap_or_default());
        Ok(Mutex {
            prefix,
            key,
            revision: found.revision,
            owner,
        })
    }

    /// The waiter's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// `Lock`'s second half: waits until every key created before the waiter's is gone;
    /// the header of the answer that gave the lock (clientv3's `Mutex.Header`).
    pub async fn wait(&self, client: &Client) -> Result<ResponseHeader, ConcurrencyError> {
        if let Some(header) = &self.owner {
            return Ok(*header);
        }
        wait_deletes(client, &self.prefix, self.revision - 1).await
    }

    /// `Unlock`: deletes the waiter's key.
    pub async fn unlock(&self, client: &Client) -> Result<(), ConcurrencyError> {
        client
            .kv_delete_range(cairn_core::api::etcdserverpb::DeleteRangeRequest {
                key: self.key.clone(),
                ..Default::default()
            })
            .await?;
        Ok(())
    }
}

/// `waitDeletes`: waits until no key under `prefix` created at or before
/// `max_create_revision` is left; the header of the read that found none.
pub async fn wait_deletes(
    client: &Client,
    prefix: &[u8],
    max_create_revision: i64,
) -> Result<ResponseHeader, ConcurrencyError> {
    loop {
        let found = client
            .kv_range(recipe::last_created_at_most(prefix, max_create_revision))
            .await?;
        let header = found.header.unwrap_or_default();
        let Some(last) = found.kvs.into_iter().next() else {
            return Ok(header);
        };
        wait_delete(client, last.key, header.revision).await?;
    }
}

/// `waitDelete`: waits for a delete of `key` at or after `revision`.
async fn wait_delete(client: &Client, key: Vec<u8>, revision: i64) -> Result<(), ConcurrencyError> {
    let mut watch = Watch::open(client, key, Vec::new(), revision).await?;
    loop {
        let Some(events) = watch.next().await? else {
            return Err(ConcurrencyError::LostWatcher);
        };
        if events.iter().any(|(kind, _)| *kind == EventType::Delete) {
            return Ok(());
        }
    }
}

/// One watcher on a stream of its own, yielding the events of each response.
struct Watch {
    stream: crate::stream::WatchStream,
}

/// The events of one watch response, with its header.
struct Events {
    header: ResponseHeader,
    events: Vec<(EventType, KeyValue)>,
}

impl std::ops::Deref for Events {
    type Target = [(EventType, KeyValue)];
    fn deref(&self) -> &Self::Target {
        &self.events
    }
}

impl Watch {
    async fn open(
        client: &Client,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> Result<Watch, ConcurrencyError> {
        let create = WatchCreateRequest {
            key,
            range_end,
            start_revision,
            ..WatchCreateRequest::default()
        };
        let first = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        };
        let stream = client.watch(first).await?;
        Ok(Watch { stream })
    }

    /// The next response with events; `None` when the stream ended.
    async fn next(&mut self) -> Result<Option<Events>, ConcurrencyError> {
        loop {
            let Some(response) = self.stream.message().await? else {
                return Ok(None);
            };
            if response.compact_revision != 0 {
                return Err(ConcurrencyError::Compacted);
            }
            if response.canceled {
                return Err(ConcurrencyError::WatchCanceled(response.cancel_reason));
            }
            if response.events.is_empty() {
                continue;
            }
            let events = response
                .events
                .into_iter()
                .map(|e| {
                    let kind = EventType::try_from(e.r#type).unwrap_or(EventType::Put);
                    (kind, e.kv.unwrap_or_default())
                })
                .collect();
            return Ok(Some(Events {
                header: response.header.unwrap_or_default(),
                events,
            }));
        }
    }
}

/// clientv3's `Election.Observe`: the leader of election `name` and every change of it,
/// each as a get response with one key (header at the read, or at the change), until a
/// read or a watch fails or the receiver is dropped; then the channel closes.
pub fn observe(client: &Client, name: &[u8]) -> mpsc::Receiver<RangeResponse> {
    let (out, leaders) = mpsc::channel(OBSERVE_QUEUE_LEN);
    let client = client.clone();
    let prefix = recipe::key_prefix(name);
    tokio::spawn(async move {
        tokio::select! {
            _ = out.closed() => {}
            _ = observe_loop(&client, &prefix, &out) => {}
        }
    });
    leaders
}

async fn observe_loop(client: &Client, prefix: &[u8], out: &mpsc::Sender<RangeResponse>) {
    loop {
        let Ok(found) = client.kv_range(recipe::first_created(prefix)).await else {
            return;
        };
        let header = found.header.unwrap_or_default();
        let (header, kv) = match found.kvs.into_iter().next() {
            Some(kv) => (header, kv),
            None => match first_put(client, prefix, header.revision).await {
                Some(first) => first,
                None => return,
            },
        };
        if !follow(client, header, kv, out).await {
            return;
        }
    }
}

/// The first key put under `prefix` from `revision` on, with the header at its revision.
async fn first_put(
    client: &Client,
    prefix: &[u8],
    revision: i64,
) -> Option<(ResponseHeader, KeyValue)> {
    let (key, range_end) = recipe::prefix_range(prefix);
    let mut watch = Watch::open(client, key, range_end, revision).await.ok()?;
    loop {
        let events = watch.next().await.ok()??;
        let put = events.iter().find(|(kind, _)| *kind == EventType::Put);
        if let Some((_, kv)) = put {
            let header = ResponseHeader {
                revision: kv.mod_revision,
                ..events.header
            };
            return Some((header, kv.clone()));
        }
    }
}

/// Sends leader `kv`, then each new value of its key until it is deleted (true) or the
/// watch or the receiver fails (false).
async fn follow(
    client: &Client,
    header: ResponseHeader,
    kv: KeyValue,
    out: &mpsc::Sender<RangeResponse>,
) -> bool {
    let start = header.revision + 1;
    let key = kv.key.clone();
    if out.send(leader_response(header, kv)).await.is_err() {
        return false;
    }
    let Ok(mut watch) = Watch::open(client, key, Vec::new(), start).await else {
        return false;
    };
    loop {
        let Ok(Some(events)) = watch.next().await else {
            return false;
        };
        for (kind, kv) in events.events {
            if kind == EventType::Delete {
                return true;
            }
            if out.send(leader_response(events.header, kv)).await.is_err() {
                return false;
            }
        }
    }
}

/// clientv3's `GetResponse{Header, Kvs: [kv]}` of an observed leader.
fn leader_response(header: ResponseHeader, kv: KeyValue) -> RangeResponse {
    RangeResponse {
        header: Some(header),
        kvs: vec![kv],
        ..RangeResponse::default()
    }
}

/// A plain `Get` of one key (what etcdctl prints after campaigning or locking).
pub fn get_key(key: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        ..RangeRequest::default()
    }
}
