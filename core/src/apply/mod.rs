//! Applies committed Raft entries to the state machine, a run of entries at a time,
//! atomically.
//!
//! The MVCC changes of a run of entries (staged in a [`Staged`] layer, so each entry reads
//! what the earlier ones changed) and the new `consistent_index` are written in ONE storage
//! batch, so replaying the log after a crash is idempotent: an entry at or below the stored
//! consistent index is skipped (etcd's `consistentIndex` check in `applyEntryNormal`).
//! Apply batches are not fsynced; the Raft log is the durability point.
//!
//! Reads (`range`) share the state machine with apply through a read-write lock held only
//! for the duration of one call, never across an await.
//!
//! Leases (`apply/lease.rs`): LeaseGrant and LeaseRevoke change the [`Lessor`]; every applied
//! Put, DeleteRange, Txn and revoke also moves keys between leases in the same batch, from
//! the events it produced (etcd's `Attach`/`Detach` in `storeTxnWrite.put`/`delete`).
//!
//! Alarms (`apply/alarm.rs`): AlarmRequests change the alarm store; an active NOSPACE or
//! CORRUPT alarm makes the writes etcd's capped and corrupt appliers refuse fail here, on
//! every member alike. `apply/quota.rs` estimates what a write costs the backend quota.

pub mod alarm;
mod auth;
mod lease;
pub mod quota;

#[cfg(test)]
mod batch_tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prost::Message as _;

pub use auth::{AuthResponse, TokenChange};

use crate::api::cairnpb::{InternalRequest, RequestAuth, internal_request::Request};
use crate::api::etcdserverpb::{
    AlarmMember, AlarmResponse, AlarmType, CompactionResponse, DeleteRangeResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutResponse, RangeRequest, RangeResponse, TxnRequest,
    TxnResponse,
};
use crate::api::mvccpb::Event;
use crate::auth::{Access, AuthStore};
use crate::error::Error;
use crate::lease::Lessor;
use crate::mvcc::Mvcc;
use crate::storage::staged::Staged;
use crate::storage::{Durability, Engine, Space, StorageError, WriteBatch};

/// Meta key of the index of the last applied entry.
pub const CONSISTENT_INDEX_KEY: &[u8] = b"consistent_index";

/// The response to one applied write request.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// A Put.
    Put(PutResponse),
    /// A DeleteRange.
    DeleteRange(DeleteRangeResponse),
    /// A Txn.
    Txn(TxnResponse),
    /// A Compact.
    Compaction(CompactionResponse),
    /// A LeaseGrant.
    LeaseGrant(LeaseGrantResponse),
    /// A LeaseRevoke.
    LeaseRevoke(LeaseRevokeResponse),
    /// An Alarm.
    Alarm(AlarmResponse),
    /// An auth management request.
    Auth(AuthResponse),
}

/// The outcome of applying one entry that carried a client request.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The Raft index of the entry.
    pub index: u64,
    /// The proposer's request id (meaningful only on the member that proposed it).
    pub request_id: u64,
    /// What the client gets back.
    pub result: Result<Response, Error>,
    /// The events the entry produced, in revision order (for watchers).
    pub events: Vec<Event>,
    /// Whether every event's `prev_kv` carries its value. When false (previous values off,
    /// [`StateMachine::set_prev_values`]), a Put event's `prev_kv` may have every field but
    /// `value`: a watcher that wants `prev_kv` reads such an entry from history instead.
    pub prev_values: bool,
    /// What the entry means for member-local auth tokens (every member applies it).
    pub token_change: Option<TokenChange>,
}

struct Inner {
    mvcc: Mvcc,
    lessor: Lessor,
    alarms: alarm::Alarms,
    auth: AuthStore,
    consistent_index: u64,
}

impl Inner {
    /// Loads the state stored under `staged` (empty at open); the MVCC store and the lessor
    /// read through the layer, so an entry sees what earlier entries of its run staged.
    fn open(staged: &Arc<Staged>) -> Result<Inner, StorageError> {
        let engine: Arc<dyn Engine> = staged.clone();
        let mvcc = Mvcc::open(engine.clone())?;
        let lessor = Lessor::open(engine.clone())?;
        let alarms = alarm::Alarms::open(engine.as_ref())?;
        let auth = AuthStore::open(engine.as_ref())?;
        let consistent_index = match engine.get(Space::Meta, CONSISTENT_INDEX_KEY)? {
            Some(bytes) => decode_u64(&bytes)?,
            None => 0,
        };
        Ok(Inner {
            mvcc,
            lessor,
            alarms,
            auth,
            consistent_index,
        })
    }
}

/// The replicated state machine: MVCC store, leases, and the index of the last applied entry.
pub struct StateMachine {
    /// The storage engine itself (snapshots, hashes, sizes).
    engine: Arc<dyn Engine>,
    /// The layer apply stages a run of entries in; empty whenever `inner` is not
    /// write-locked, so readers never see a change before it is in `engine`.
    staged: Arc<Staged>,
    inner: RwLock<Inner>,
    /// Whether Put events carry previous values (see [`StateMachine::set_prev_values`]).
    prev_values: AtomicBool,
}

impl StateMachine {
    /// Opens the state machine stored in `engine`.
    pub fn open(engine: Arc<dyn Engine>) -> Result<StateMachine, StorageError> {
        let staged = Arc::new(Staged::new(engine.clone()));
        let inner = Inner::open(&staged)?;
        Ok(StateMachine {
            engine,
            staged,
            inner: RwLock::new(inner),
            prev_values: AtomicBool::new(true),
        })
    }

    /// Whether the events of entries applied from now on carry the previous version's value
    /// in a Put's `prev_kv` (on when opened). Off, a put that replaces a version reads one
    /// point of metadata instead of the whole version, unless its request needs the value
    /// ([`Mvcc::set_prev_values`]); [`Applied::prev_values`] says which entries were
    /// applied so. A member turns them on once a watcher asks for `prev_kv`. Only events
    /// differ: storage is the same either way.
    pub fn set_prev_values(&self, on: bool) {
        self.prev_values.store(on, Ordering::Release);
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .expect("state machine lock poisoned by a panic in apply")
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .expect("state machine lock poisoned by a panic in apply")
    }

    /// The index of the last entry applied.
    pub fn consistent_index(&self) -> u64 {
        self.read().consistent_index
    }

    /// The store's current revision.
    pub fn current_revision(&self) -> i64 {
        self.read().mvcc.current_revision()
    }

    /// The store's compacted revision.
    pub fn compacted_revision(&self) -> i64 {
        self.read().mvcc.compacted_revision()
    }

    /// Bytes the state machine takes in storage (the Raft log excluded), for
    /// `Status.dbSize` and the backend quota.
    pub fn size_bytes(&self) -> u64 {
        let spaces: Vec<Space> = crate::snapshot::state_machine_spaces().collect();
        self.engine.size_bytes_of(&spaces)
    }

    /// The part of [`StateMachine::size_bytes`] that live data takes (`Status.dbSizeInUse`):
    /// the bytes of every stored key and value, capped at the size on disk (which may be
    /// smaller when the engine compresses). Visits every entry.
    pub fn size_in_use_bytes(&self) -> Result<u64, StorageError> {
        let spaces: Vec<Space> = crate::snapshot::state_machine_spaces().collect();
        let live = self.engine.live_bytes_of(&spaces)?;
        Ok(live.min(self.engine.size_bytes_of(&spaces)))
    }

    /// Defragments the storage engine (`Maintenance.Defragment`); blocks until done.
    pub fn defragment(&self) -> Result<(), StorageError> {
        self.engine.defragment()
    }

    /// The active alarms of type `alarm` (`NONE`: all), in (type, member id) order.
    pub fn alarms(&self, alarm: AlarmType) -> Vec<AlarmMember> {
        self.read().alarms.list(alarm as i32)
    }

    /// etcd's `Maintenance.Hash`, defined over cairn's own storage: CRC-32C over every
    /// state-machine space (its name, then each key and value in key order), skipping the
    /// consistent index as etcd's `DefaultIgnores` does. Members that applied the same
    /// entries agree. Returns `(hash, current revision)`.
    pub fn hash(&self) -> Result<(u32, i64), StorageError> {
        let inner = self.read();
        let mut crc = crate::mvcc::Crc32c::new();
        for space in crate::snapshot::state_machine_spaces() {
            crc.update(space.name().as_bytes());
            self.engine.scan(
                space,
                &[],
                None,
                crate::storage::Order::Ascending,
                &mut |k, v| {
                    if !(space == Space::Meta && k == CONSISTENT_INDEX_KEY) {
                        crc.update(k);
                        crc.update(v);
                    }
                    std::ops::ControlFlow::Continue(())
                },
            )?;
        }
        Ok((crc.finish(), inner.mvcc.current_revision()))
    }

    /// Serves a Range from the local state (the caller decides linearizability).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        self.read().mvcc.range(req)
    }

    /// etcd's HashKV at `revision` (0: current): `(hash, compacted revision, revision hashed)`.
    pub fn hash_kv(&self, revision: i64) -> Result<(u32, i64, i64), Error> {
        let inner = self.read();
        let hashed = if revision == 0 {
            inner.mvcc.current_revision()
        } else {
            revision
        };
        let (hash, compacted) = inner.mvcc.hash_kv(revision)?;
        Ok((hash, compacted, hashed))
    }

    /// The injected bug [`crate::buggify::Bug::CompactionWithoutLog`]: compacts this
    /// member's store at once, as if the request had been applied, without it going
    /// through the log (so no other member compacts).
    #[cfg(madsim)]
    pub fn compact_without_log(
        &self,
        req: &crate::api::etcdserverpb::CompactionRequest,
    ) -> Result<CompactionResponse, Error> {
        let mut inner = self.write();
        let mut batch = WriteBatch::new();
        let response = inner.mvcc.compact(req, &mut batch)?;
        self.engine.write(batch, Durability::Buffered)?;
        Ok(response)
    }

    /// Whether auth is enabled.
    pub fn auth_enabled(&self) -> bool {
        self.read().auth.enabled()
    }

    /// The auth store's revision.
    pub fn auth_revision(&self) -> u64 {
        self.read().auth.revision()
    }

    /// What the serving member needs to check an Authenticate's password (etcd's
    /// `CheckPassword`): the user's bcrypt hash and the auth revision it was read at.
    pub fn password_hash(&self, name: &str) -> Result<(Vec<u8>, u64), Error> {
        self.read().auth.password_hash(name)
    }

    /// etcd's `IsAdminPermitted` for operations checked where they are served
    /// (maintenance, membership changes).
    pub fn check_admin(&self, auth: Option<&RequestAuth>) -> Result<(), Error> {
        self.read().auth.check_admin(auth)
    }

    /// etcd's `IsRangePermitted` (a watch creation).
    pub fn check_read(
        &self,
        auth: Option<&RequestAuth>,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), Error> {
        self.read().auth.check(auth, key, range_end, Access::Read)
    }

    /// A Range served locally on behalf of `auth` (etcd's `doSerialize`): the permission
    /// check and the read happen under one lock, so no change of the auth store falls
    /// between them.
    pub fn range_as(
        &self,
        auth: Option<&RequestAuth>,
        req: &RangeRequest,
    ) -> Result<RangeResponse, Error> {
        let inner = self.read();
        inner
            .auth
            .check(auth, &req.key, &req.range_end, Access::Read)?;
        inner.mvcc.range(req)
    }

    /// A read-only Txn served locally on behalf of `auth`, checked like [`Self::range_as`].
    pub fn read_only_txn_as(
        &self,
        auth: Option<&RequestAuth>,
        req: &TxnRequest,
    ) -> Result<TxnResponse, Error> {
        let inner = self.read();
        if inner.auth.enabled() {
            auth::check_txn(&inner.auth, auth, req)?;
        }
        read_only_txn(&inner, req)
    }

    /// Runs `f` on the lessor: the leader's timing of leases (tick, promote, renew) and lease
    /// queries. Granting and revoking happen only by applying log entries.
    pub fn with_lessor<R>(&self, f: impl FnOnce(&mut Lessor) -> R) -> R {
        f(&mut self.write().lessor)
    }

    /// Serves a Txn whose every branch only reads, from the local state, changing nothing
    /// (etcd serves read-only txns like ranges instead of proposing them).
    pub fn read_only_txn(&self, req: &TxnRequest) -> Result<TxnResponse, Error> {
        read_only_txn(&self.read(), req)
    }

    /// Applies the entry at `index` carrying `data` (empty for Raft's own no-op entries).
    /// Returns `None` for entries with no client request or already applied before a restart.
    pub fn apply(&self, index: u64, data: &[u8]) -> Result<Option<Applied>, StorageError> {
        Ok(self.apply_batch(&[(index, data)])?.pop())
    }

    /// Applies a run of consecutive normal entries `(index, data)`, in index order, with ONE
    /// storage write: each entry executes over what the earlier ones staged (exactly as if
    /// they had been written one by one), then every change and the consistent index of the
    /// last entry are written atomically. The write lock is held throughout, so no reader
    /// sees a revision before its data is stored. Returns the outcomes of the entries that
    /// carried a client request and were not already applied before a restart.
    pub fn apply_batch(&self, entries: &[(u64, &[u8])]) -> Result<Vec<Applied>, StorageError> {
        let mut inner = self.write();
        let result = self.stage_run(&mut inner, entries);
        if result.is_err() {
            self.staged.discard();
        }
        result
    }

    fn stage_run(
        &self,
        inner: &mut Inner,
        entries: &[(u64, &[u8])],
    ) -> Result<Vec<Applied>, StorageError> {
        let mut applied = Vec::new();
        let mut last = None;
        let prev_values = self.prev_values.load(Ordering::Acquire);
        inner.mvcc.set_prev_values(prev_values);
        for &(index, data) in entries {
            if index <= inner.consistent_index || last.is_some_and(|last| index <= last) {
                continue;
            }
            if !data.is_empty() {
                let mut batch = WriteBatch::new();
                let mut entry = execute(inner, index, data, &mut batch);
                entry.prev_values = prev_values;
                applied.push(entry);
                self.staged.stage(batch)?;
            }
            last = Some(index);
        }
        let Some(last) = last else {
            return Ok(applied);
        };
        let mut batch = WriteBatch::new();
        batch.put(
            Space::Meta,
            CONSISTENT_INDEX_KEY.to_vec(),
            last.to_be_bytes().to_vec(),
        );
        self.staged.stage(batch)?;
        self.staged.flush(Durability::Buffered)?;
        inner.consistent_index = last;
        Ok(applied)
    }

    /// Records that the entry at `index` (a configuration change, applied by the replica)
    /// has been applied.
    pub fn mark_applied(&self, index: u64) -> Result<(), StorageError> {
        self.apply(index, &[]).map(|_| ())
    }

    /// Watch catch-up: `Mvcc::events_since`, and the current revision the events were read
    /// at, under one lock.
    pub fn events_since(
        &self,
        start_rev: i64,
        key: &[u8],
        range_end: &[u8],
        limit: usize,
    ) -> Result<(Vec<Event>, i64), Error> {
        let inner = self.read();
        let events = inner.mvcc.events_since(start_rev, key, range_end, limit)?;
        Ok((events, inner.mvcc.current_revision()))
    }

    /// A snapshot of the state machine as it is now (apply is held off meanwhile), taken
    /// at Raft term `term` with configuration `conf_state`.
    pub fn snapshot(
        &self,
        term: u64,
        conf_state: &raft::eraftpb::ConfState,
    ) -> Result<Vec<u8>, crate::snapshot::SnapshotError> {
        use protobuf::Message as _;
        let inner = self.read();
        let header = crate::api::cairnpb::SnapshotHeader {
            revision: inner.mvcc.current_revision(),
            consistent_index: inner.consistent_index,
            term,
            conf_state: conf_state.write_to_bytes().unwrap_or_default(),
            ..Default::default()
        };
        crate::snapshot::to_bytes(self.engine.as_ref(), &header)
    }

    /// Replaces the whole state machine with a verified snapshot and reloads it.
    pub fn restore(
        &self,
        bytes: &[u8],
    ) -> Result<crate::api::cairnpb::SnapshotHeader, crate::snapshot::SnapshotError> {
        let mut inner = self.write();
        let header = crate::snapshot::restore(self.engine.as_ref(), bytes)?;
        let min_ttl_secs = inner.lessor.min_ttl_secs();
        *inner = Inner::open(&self.staged)?;
        // A member's configuration, not replicated state: it outlives the restore. The
        // lessor comes back not primary; the expiry task promotes it again if leader.
        inner.lessor.set_min_ttl_secs(min_ttl_secs);
        Ok(header)
    }
}

fn read_only_txn(inner: &Inner, req: &TxnRequest) -> Result<TxnResponse, Error> {
    let mut mvcc = inner.mvcc.clone();
    let mut scratch = WriteBatch::new();
    let (response, _) = mvcc.txn(req, &inner.lessor, &mut scratch)?;
    debug_assert!(scratch.is_empty(), "a read-only txn wrote to storage");
    Ok(response)
}

fn execute(inner: &mut Inner, index: u64, data: &[u8], batch: &mut WriteBatch) -> Applied {
    let (request_id, result, events, token_change) = match InternalRequest::decode(data) {
        Ok(request) => {
            let auth = request.auth.as_ref();
            match request.request {
                Some(req) if auth::is_auth(&req) => {
                    let revision = inner.mvcc.current_revision();
                    match auth::execute(&mut inner.auth, auth, req, index, revision, batch) {
                        Ok((response, change)) => {
                            (request.id, Ok(Response::Auth(response)), vec![], change)
                        }
                        Err(e) => (request.id, Err(e), vec![], None),
                    }
                }
                req => {
                    let (result, events) = execute_checked(inner, request.id, auth, req, batch);
                    (request.id, result, events, None)
                }
            }
        }
        Err(e) => {
            // Every member refuses the same bytes the same way, so state stays identical.
            tracing::error!(index, error = %e, "skipping undecodable log entry");
            (
                0,
                Err(Error::Storage(format!(
                    "undecodable log entry {index}: {e}"
                ))),
                vec![],
                None,
            )
        }
    };
    Applied {
        index,
        request_id,
        result,
        events,
        prev_values: true,
        token_change,
    }
}

type Executed = (Result<Response, Error>, Vec<Event>);

/// A KV, compaction or lease request, after the permission checks of its user.
fn execute_checked(
    inner: &mut Inner,
    request_id: u64,
    auth: Option<&RequestAuth>,
    request: Option<Request>,
    batch: &mut WriteBatch,
) -> Executed {
    if let Some(req) = &request
        && let Err(e) = auth::check_write(&inner.auth, &inner.lessor, auth, req)
    {
        return (Err(e), vec![]);
    }
    execute_request(inner, request_id, request, batch)
}

fn execute_request(
    inner: &mut Inner,
    request_id: u64,
    request: Option<Request>,
    batch: &mut WriteBatch,
) -> Executed {
    let Inner {
        mvcc,
        lessor,
        alarms,
        ..
    } = inner;
    if let Some(refused) = refused_by_alarm(alarms, request.as_ref()) {
        return (Err(refused), vec![]);
    }
    let result = match request {
        Some(Request::Put(req)) => mvcc
            .put(&req, lessor, batch)
            .map(|(r, e)| (Response::Put(r), e)),
        Some(Request::DeleteRange(req)) => mvcc
            .delete_range(&req, batch)
            .map(|(r, e)| (Response::DeleteRange(r), e)),
        Some(Request::Txn(req)) => mvcc
            .txn(&req, lessor, batch)
            .map(|(r, e)| (Response::Txn(r), e)),
        Some(Request::Compaction(req)) => mvcc
            .compact(&req, batch)
            .map(|r| (Response::Compaction(r), vec![])),
        Some(Request::LeaseGrant(req)) => lease::grant(mvcc, lessor, request_id, &req, batch),
        Some(Request::LeaseRevoke(req)) => lease::revoke(mvcc, lessor, &req, batch),
        Some(Request::Alarm(req)) => Ok((Response::Alarm(alarms.apply(&req, batch)), vec![])),
        Some(_) => Err(Error::Storage(
            "auth request outside the auth applier".into(),
        )),
        None => Err(Error::Storage("log entry without a request".into())),
    };
    match result {
        Ok((response, events)) => {
            lease::move_keys(&events, batch);
            (Ok(response), events)
        }
        Err(e) => (Err(e), vec![]),
    }
}

/// The error an active alarm answers `request` with, if any: CORRUPT refuses every write
/// (etcd's `applierV3Corrupt`), NOSPACE every write that needs space (`applierV3Capped`).
fn refused_by_alarm(alarms: &alarm::Alarms, request: Option<&Request>) -> Option<Error> {
    let is_write = !matches!(request, Some(Request::Alarm(_)) | None);
    if is_write && alarms.is_active(AlarmType::Corrupt) {
        return Some(Error::Corrupt);
    }
    let needs_space = match request {
        Some(Request::Put(_) | Request::LeaseGrant(_)) => true,
        Some(Request::Txn(txn)) => quota::txn_cost(txn) > 0,
        _ => false,
    };
    (needs_space && alarms.is_active(AlarmType::Nospace)).then_some(Error::NoSpace)
}

fn decode_u64(bytes: &[u8]) -> Result<u64, StorageError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        space: Space::Meta.name(),
        reason: format!("consistent index has {} bytes, expected 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}
