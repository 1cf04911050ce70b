//! One write transaction: etcd's `storeTxnWrite` plus the Put/DeleteRange appliers of
//! `etcdserver/apply.go`.
//!
//! Every change gets revision `(begin + 1, sub)` with `sub` counting the transaction's
//! changes from 0. A Put always changes the store (even with the same value); a DeleteRange
//! that finds nothing does not. The transaction's own reads see its earlier changes (at
//! revision `begin + 1` once it has any), through an [`Overlay`]. Storage changes are staged
//! in a private batch that [`WriteTxn::finish`] hands over whole, so an error leaves the
//! caller's batch untouched.
//!
//! Events carry `prev_kv` = the key's state at `begin` (etcd's watch server reads it at
//! `mod_revision - 1`), whenever the key existed then.

use prost::Message;

use super::history::{self, KeyRange};
use super::keys;
use super::range;
use super::revision::Revision;
use super::view::{Overlay, Pending, Reader};
use crate::Error;
use crate::api::cairnpb::StoredVersion;
use crate::api::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    ResponseHeader,
};
use crate::api::mvccpb::{Event, KeyValue, event::EventType};
use crate::storage::{Engine, Space, WriteBatch};

/// One change of the transaction, in order.
struct Change {
    kind: EventType,
    /// The new version (a deletion keeps only key and mod revision).
    kv: KeyValue,
    /// The key's state before the transaction.
    prev: Option<KeyValue>,
}

/// What a finished write transaction hands back.
pub(crate) struct Finished {
    /// Every storage change, including the new current revision in Meta.
    pub batch: WriteBatch,
    /// One event per change, in revision order.
    pub events: Vec<Event>,
    /// The new current revision, if the transaction changed something.
    pub new_revision: Option<i64>,
}

/// A write transaction in progress.
pub(crate) struct WriteTxn<'a> {
    engine: &'a dyn Engine,
    begin: i64,
    compacted: i64,
    /// Whether every Put event's `prev_kv` carries the previous value ([`Mvcc::set_prev_values`]).
    ///
    /// [`Mvcc::set_prev_values`]: super::Mvcc::set_prev_values
    prev_values: bool,
    overlay: Overlay,
    changes: Vec<Change>,
    batch: WriteBatch,
}

impl<'a> WriteTxn<'a> {
    /// A transaction on top of revision `begin`; `prev_values` as [`WriteTxn::prev_values`].
    pub fn new(engine: &'a dyn Engine, begin: i64, compacted: i64, prev_values: bool) -> Self {
        WriteTxn {
            engine,
            begin,
            compacted,
            prev_values,
            overlay: Overlay::new(),
            changes: Vec::new(),
            batch: WriteBatch::new(),
        }
    }

    /// The revision this transaction's reads see and report: `begin`, or `begin + 1` once
    /// it changed something (etcd's `storeTxnWrite.Range`).
    pub fn read_revision(&self) -> i64 {
        if self.changes.is_empty() {
            self.begin
        } else {
            self.begin + 1
        }
    }

    /// A reader of the store as this transaction sees it.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            engine: self.engine,
            current: self.read_revision(),
            compacted: self.compacted,
            pending: (!self.changes.is_empty()).then_some(&self.overlay),
        }
    }

    /// A Range inside the transaction.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        range::execute(&self.reader(), req)
    }

    /// A Put (etcd's `applierV3backend.Put` with a transaction): `ignore_value` and
    /// `ignore_lease` take the previous version's value or lease and need the key to exist.
    /// The lease is not checked here (callers check it first, as etcd does).
    pub fn put(&mut self, req: &PutRequest) -> Result<PutResponse, Error> {
        let prev = self.current_version(&req.key, req.prev_kv || req.ignore_value)?;
        if (req.ignore_value || req.ignore_lease) && prev.is_none() {
            return Err(Error::KeyNotFound);
        }
        let value = match (&prev, req.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => req.value.clone(),
        };
        let lease = match (&prev, req.ignore_lease) {
            (Some(prev), true) => prev.lease,
            _ => req.lease,
        };
        let rev = self.next_revision();
        let (create_revision, version) = match &prev {
            Some(prev) => (prev.create_revision, prev.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision,
            mod_revision: rev.main,
            version,
            value,
            lease,
        };
        let stored = StoredVersion {
            create_revision,
            version,
            value: kv.value.clone(),
            lease,
            tombstone: false,
        };
        // A creation has no previous version (etcd's watch skips prev_kv on create events).
        let before = if version == 1 {
            None
        } else {
            self.state_before(&req.key, prev.as_ref())?
        };
        self.stage(rev, &req.key, &stored);
        self.overlay
            .insert(req.key.clone(), Pending::Put(kv.clone()));
        self.changes.push(Change {
            kind: EventType::Put,
            kv,
            prev: before,
        });
        Ok(PutResponse {
            header: Some(header(rev.main)),
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    /// A DeleteRange (etcd's `applierV3backend.DeleteRange` with a transaction).
    pub fn delete_range(&mut self, req: &DeleteRangeRequest) -> Result<DeleteRangeResponse, Error> {
        let range = KeyRange::new(&req.key, &req.range_end);
        let mut existing = Vec::new();
        let reader = self.reader();
        reader.at(reader.current).for_each_live(&range, &mut |kv| {
            existing.push(kv);
            std::ops::ControlFlow::Continue(())
        })?;
        let deleted = existing.len() as i64;
        let mut befores = Vec::with_capacity(existing.len());
        for kv in &existing {
            befores.push(self.state_before(&kv.key, Some(kv))?);
        }
        for (kv, before) in existing.iter().zip(befores) {
            self.delete(&kv.key, before);
        }
        Ok(DeleteRangeResponse {
            header: Some(header(self.read_revision())),
            deleted,
            prev_kvs: if req.prev_kv { existing } else { Vec::new() },
        })
    }

    /// Ends the transaction: the staged batch (with the new current revision when something
    /// changed) and the events.
    pub fn finish(mut self) -> Finished {
        if self.changes.is_empty() {
            debug_assert!(self.batch.is_empty());
            return Finished {
                batch: self.batch,
                events: Vec::new(),
                new_revision: None,
            };
        }
        let new_revision = self.begin + 1;
        self.batch.put(
            Space::Meta,
            keys::META_CURRENT_REVISION,
            keys::encode_meta_revision(new_revision),
        );
        let events = self
            .changes
            .into_iter()
            .map(|change| Event {
                r#type: change.kind as i32,
                kv: Some(change.kv),
                prev_kv: change.prev,
            })
            .collect();
        Finished {
            batch: self.batch,
            events,
            new_revision: Some(new_revision),
        }
    }

    fn next_revision(&self) -> Revision {
        Revision::new(self.begin + 1, self.changes.len() as i64)
    }

    /// The key's current version as this transaction sees it. Its value is read when
    /// `with_value`, when events carry previous values, or when the transaction changed the
    /// key already; otherwise it is left empty, and only the stored metadata is read.
    fn current_version(&self, key: &[u8], with_value: bool) -> Result<Option<KeyValue>, Error> {
        if with_value || self.prev_values || self.overlay.contains_key(key) {
            let reader = self.reader();
            return reader.at(reader.current).get(key);
        }
        history::live_meta_at(self.engine, key, self.begin)
    }

    /// The key's state before this transaction, given its state now (`current`).
    fn state_before(
        &self,
        key: &[u8],
        current: Option<&KeyValue>,
    ) -> Result<Option<KeyValue>, Error> {
        if self.overlay.contains_key(key) {
            return Ok(history::live_at(self.engine, key, self.begin)?
                .map(history::Version::into_key_value));
        }
        Ok(current.cloned())
    }

    fn delete(&mut self, key: &[u8], before: Option<KeyValue>) {
        let rev = self.next_revision();
        let tombstone = StoredVersion {
            tombstone: true,
            ..StoredVersion::default()
        };
        self.stage(rev, key, &tombstone);
        self.overlay.insert(key.to_vec(), Pending::Deleted);
        let kv = KeyValue {
            key: key.to_vec(),
            mod_revision: rev.main,
            ..KeyValue::default()
        };
        self.changes.push(Change {
            kind: EventType::Delete,
            kv,
            prev: before,
        });
    }

    fn stage(&mut self, rev: Revision, key: &[u8], stored: &StoredVersion) {
        self.batch.put(
            Space::History,
            keys::history_key(key, rev),
            stored.encode_to_vec(),
        );
        self.batch
            .put(Space::Revisions, keys::revision_key(rev), key);
        self.batch
            .put(Space::Latest, key, keys::encode_latest(rev, stored));
    }
}

/// A response header with only the revision set (the caller fills cluster, member, term).
pub(crate) fn header(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..ResponseHeader::default()
    }
}
