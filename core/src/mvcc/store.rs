//! The [`Mvcc`] store: the current and compacted revision, and the entry points the apply
//! layer calls.
//!
//! Only the two revisions live in memory; everything else is read from the engine, so RAM
//! does not grow with the number of keys and opening reads three Meta values. Write methods
//! stage every storage change into the caller's batch and advance the in-memory revision;
//! the caller must write that batch to the engine (with its consistent index) before
//! calling any other method. On error a write method leaves the batch and the revisions
//! untouched.
//!
//! A new store is at revision 1 with compacted revision -1, as etcd's `NewStore`
//! (`currentRev: 1, compactMainRev: -1`); the first change gets revision 2.

use std::fmt;
use std::sync::Arc;

use super::compact;
use super::events::Catchup;
use super::hash;
use super::history::KeyRange;
use super::keys;
use super::latest;
use super::range;
use super::txn;
use super::view::Reader;
use super::write::{Finished, WriteTxn, header};
use crate::Error;
use crate::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::api::mvccpb::Event;
use crate::storage::{Engine, Space, StorageError, WriteBatch};

/// Whether a lease exists (the lessor implements it; tests use closures).
pub trait LeaseLookup {
    /// Whether lease `id` is currently granted.
    fn lease_exists(&self, id: i64) -> bool;
}

impl<F: Fn(i64) -> bool> LeaseLookup for F {
    fn lease_exists(&self, id: i64) -> bool {
        self(id)
    }
}

/// etcd's multi-version key-value store over a storage [`Engine`].
///
/// A clone shares the engine but not the in-memory revisions: running a read-only Txn on a
/// clone (with a throw-away batch) leaves the original untouched.
#[derive(Clone)]
pub struct Mvcc {
    engine: Arc<dyn Engine>,
    /// The revision of the last write transaction that changed something.
    current: i64,
    /// The revision of the last compaction (-1: never compacted).
    compacted: i64,
    /// Whether a put's event carries the previous version's value in `prev_kv` (see
    /// [`Mvcc::set_prev_values`]).
    prev_values: bool,
}

impl fmt::Debug for Mvcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mvcc")
            .field("current", &self.current)
            .field("compacted", &self.compacted)
            .finish_non_exhaustive()
    }
}

impl Mvcc {
    /// Opens the store kept in `engine`: reads its two Meta revisions, and the mark that
    /// the Latest space is complete (building that space first for a store that predates it).
    pub fn open(engine: Arc<dyn Engine>) -> Result<Mvcc, StorageError> {
        latest::ensure_indexed(engine.as_ref())?;
        let current = read_meta(engine.as_ref(), keys::META_CURRENT_REVISION)?.unwrap_or(1);
        let compacted = read_meta(engine.as_ref(), keys::META_COMPACTED_REVISION)?.unwrap_or(-1);
        if current < 1 || compacted > current {
            return Err(StorageError::Corrupt {
                space: "meta",
                reason: format!("current revision {current} with compacted revision {compacted}"),
            });
        }
        Ok(Mvcc {
            engine,
            current,
            compacted,
            prev_values: true,
        })
    }

    /// Whether the events of later puts carry the previous version's value in `prev_kv`
    /// (on by default). Off, a put that replaces a version reads only that version's
    /// metadata (one point lookup instead of two, and no value) unless its request needs
    /// the value (`prev_kv`, `ignore_value`): its event's `prev_kv` then has every field
    /// but `value`, which a watcher that wants it reads from history (etcd's watch server
    /// reads `prev_kv` from the backend too). Storage is the same either way.
    pub fn set_prev_values(&mut self, on: bool) {
        self.prev_values = on;
    }

    /// The revision of the last change (1 for a new store).
    pub fn current_revision(&self) -> i64 {
        self.current
    }

    /// The revision of the last compaction (-1 if never compacted, as etcd).
    pub fn compacted_revision(&self) -> i64 {
        self.compacted
    }

    /// A Range (rules in `mvcc/range.rs`). The header carries only the current
    /// revision.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        range::execute(&self.reader(), req)
    }

    /// A Put: the lease must exist (`LeaseNotFound`), then `ignore_value`/`ignore_lease`
    /// need the key (`KeyNotFound`). Always a change: the header carries the new revision.
    pub fn put(
        &mut self,
        req: &PutRequest,
        leases: &dyn LeaseLookup,
        batch: &mut WriteBatch,
    ) -> Result<(PutResponse, Vec<Event>), Error> {
        if req.lease != 0 && !leases.lease_exists(req.lease) {
            return Err(Error::LeaseNotFound);
        }
        let mut txn = WriteTxn::new(
            self.engine.as_ref(),
            self.current,
            self.compacted,
            self.prev_values,
        );
        let resp = txn.put(req)?;
        let finished = txn.finish();
        Ok((resp, self.commit(finished, batch)))
    }

    /// A DeleteRange. Deleting nothing changes nothing (and keeps the revision).
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
        batch: &mut WriteBatch,
    ) -> Result<(DeleteRangeResponse, Vec<Event>), Error> {
        let mut txn = WriteTxn::new(
            self.engine.as_ref(),
            self.current,
            self.compacted,
            self.prev_values,
        );
        let resp = txn.delete_range(req)?;
        let finished = txn.finish();
        Ok((resp, self.commit(finished, batch)))
    }

    /// A Txn (rules in `mvcc/txn.rs`). Fails before any change if a pre-check on
    /// the chosen path fails.
    pub fn txn(
        &mut self,
        req: &TxnRequest,
        leases: &dyn LeaseLookup,
        batch: &mut WriteBatch,
    ) -> Result<(TxnResponse, Vec<Event>), Error> {
        let before = self.reader();
        let path = txn::path(&before, req)?;
        txn::check(&before, req, &path, leases)?;
        let mut write = WriteTxn::new(
            self.engine.as_ref(),
            self.current,
            self.compacted,
            self.prev_values,
        );
        let mut resp = txn::apply(&mut write, req, &path)?;
        resp.header = Some(header(write.read_revision()));
        let finished = write.finish();
        Ok((resp, self.commit(finished, batch)))
    }

    /// A Compaction at `req.revision`: at or below the compacted revision is `Compacted`,
    /// above the current one `FutureRevision`. Done entirely within `batch` (`physical` is
    /// accepted and changes nothing). The header carries the current revision.
    pub fn compact(
        &mut self,
        req: &CompactionRequest,
        batch: &mut WriteBatch,
    ) -> Result<CompactionResponse, Error> {
        compact::check(req.revision, self.current, self.compacted)?;
        let mut staged = WriteBatch::new();
        compact::stage(
            self.engine.as_ref(),
            req.revision,
            self.compacted,
            &mut staged,
        )?;
        debug_assert!(req.revision > self.compacted);
        self.compacted = req.revision;
        batch.append(&mut staged);
        Ok(CompactionResponse {
            header: Some(header(self.current)),
        })
    }

    /// Events with revision `>= start_rev` for keys in `[key, range_end)` (etcd's range
    /// forms), in revision order, each with `prev_kv` when the key existed before. Whole
    /// revisions only: stops after the revision during which `limit` events were reached
    /// (0 = no limit); resume at the last event's revision + 1. `Compacted` if `start_rev`
    /// is below the compacted revision (at it is served, as etcd does).
    pub fn events_since(
        &self,
        start_rev: i64,
        key: &[u8],
        range_end: &[u8],
        limit: usize,
    ) -> Result<Vec<Event>, Error> {
        let catchup = Catchup {
            engine: self.engine.as_ref(),
            current: self.current,
            compacted: self.compacted,
        };
        catchup.events_since(start_rev, &KeyRange::new(key, range_end), limit)
    }

    /// etcd's HashKV at `rev` (0 = current): `(hash, compacted revision)`, equal to etcd's
    /// for the same history (see `mvcc/hash.rs`). `rev` at or below the compacted revision
    /// is `Compacted`; above the current one, `FutureRevision`.
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64), Error> {
        hash::hash_kv(self.engine.as_ref(), rev, self.current, self.compacted)
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            engine: self.engine.as_ref(),
            current: self.current,
            compacted: self.compacted,
            pending: None,
        }
    }

    /// Hands a finished write transaction's changes to the caller's batch and advances the
    /// revision.
    fn commit(&mut self, mut finished: Finished, batch: &mut WriteBatch) -> Vec<Event> {
        if let Some(revision) = finished.new_revision {
            debug_assert_eq!(
                revision,
                self.current + 1,
                "revisions advance by one per change"
            );
            self.current = revision;
        }
        batch.append(&mut finished.batch);
        finished.events
    }
}

fn read_meta(engine: &dyn Engine, name: &[u8]) -> Result<Option<i64>, StorageError> {
    match engine.get(Space::Meta, name)? {
        Some(bytes) => keys::decode_meta_revision(name, &bytes).map(Some),
        None => Ok(None),
    }
}
