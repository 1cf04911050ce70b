//! The Raft log as raft-rs sees it: the log (entries after the last compaction point) plus
//! hard state and conf state, mirrored to the `RaftLog` and `RaftState` spaces of the engine.
//!
//! Persistence is driven by the replica: [`LogStore::stage_append`] and friends add their
//! changes to a `WriteBatch` that the replica writes with one fsync per Ready, and only then
//! updates this in-memory view. Only the tail of the log is held in memory: every entry not
//! yet applied plus at least `memory_entries` applied ones (the replica passes its
//! catch-up entries, what a follower a little behind needs, as etcd keeps
//! `SnapshotCatchUpEntries` in its in-memory raft storage); older entries, kept on disk until the log is compacted for lagging followers,
//! are read back from the engine when raft-rs asks for them. Restart reads the same tail
//! back with [`LogStore::load`], so neither memory nor restart time grows with
//! `--snapshot-count`.

use std::cell::Cell;
use std::ops::ControlFlow;
use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError as RaftStorageError};

use protobuf::Message as _;

use crate::storage::{Engine, Order, Space, StorageError, WriteBatch};

const HARD_STATE_KEY: &[u8] = b"hard_state";
const CONF_STATE_KEY: &[u8] = b"conf_state";
/// Index and term of the last entry dropped by log compaction (the log starts after it).
const LOG_START_KEY: &[u8] = b"log_start";

/// The storage key of the log entry at `index`.
pub fn entry_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The engine holding the entries older than the in-memory tail.
#[derive(Clone)]
struct Disk(Arc<dyn Engine>);

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Disk")
    }
}

/// raft-rs's view of the log.
#[derive(Debug, Default, Clone)]
pub struct LogStore {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the entry just before the first entry (0, 0 for a new log).
    start: (u64, u64),
    /// Index of `entries[0]`, or of the next entry when `entries` is empty. Entries from
    /// `start.0 + 1` up to it are only on disk.
    memory_first: u64,
    /// The in-memory tail of the log.
    entries: Vec<Entry>,
    /// Where entries before `memory_first` are read from (none: every entry is in memory).
    disk: Option<Disk>,
    /// Applied entries the in-memory tail keeps at least; it is trimmed once it holds
    /// twice as many, so trimming is amortized over many Readies.
    memory_entries: u64,
    /// The last state-machine snapshot prepared for lagging followers.
    snapshot: Option<Snapshot>,
    /// raft-rs asked for a snapshot this store did not have ready.
    snapshot_wanted: Cell<bool>,
}

impl LogStore {
    /// Reads the persisted hard state, conf state and log tail from `engine`, which then
    /// serves the entries older than the tail; at least `memory_entries` applied entries
    /// stay in memory.
    pub fn load(engine: Arc<dyn Engine>, memory_entries: u64) -> Result<LogStore, StorageError> {
        let mut store = LogStore {
            memory_entries: memory_entries.max(1),
            ..LogStore::default()
        };
        if let Some(bytes) = engine.get(Space::RaftState, HARD_STATE_KEY)? {
            store.hard_state = decode("hard state", &bytes)?;
        }
        if let Some(bytes) = engine.get(Space::RaftState, CONF_STATE_KEY)? {
            store.conf_state = decode("conf state", &bytes)?;
        }
        if let Some(bytes) = engine.get(Space::RaftState, LOG_START_KEY)? {
            store.start = decode_start(&bytes)?;
        }
        // The newest entries, down to the applied ones a follower may still need (the
        // applied index is not known here; the commit index bounds it).
        let commit = store.hard_state.commit;
        let mut tail = Vec::new();
        scan_entries(
            engine.as_ref(),
            &[],
            None,
            Order::Descending,
            &mut |entry, _| {
                let enough = entry.index <= commit.saturating_sub(store.memory_entries);
                tail.push(entry);
                if enough {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        tail.reverse();
        store.memory_first = tail.first().map_or(store.start.0 + 1, |e| e.index);
        store.entries = tail;
        store.check_contiguous()?;
        if store.memory_first > store.first_index()
            && engine
                .get(Space::RaftLog, &entry_key(store.first_index()))?
                .is_none()
        {
            return Err(StorageError::Corrupt {
                space: Space::RaftLog.name(),
                reason: format!(
                    "log has a gap: expected index {}, found {}",
                    store.first_index(),
                    store.memory_first
                ),
            });
        }
        store.disk = Some(Disk(engine));
        Ok(store)
    }

    fn check_contiguous(&self) -> Result<(), StorageError> {
        let first = self.entries.first().map_or(self.memory_first, |e| e.index);
        if first <= self.start.0 {
            return Err(StorageError::Corrupt {
                space: Space::RaftLog.name(),
                reason: format!("log holds index {first}, compacted up to {}", self.start.0),
            });
        }
        for (expected, entry) in (first..).zip(&self.entries) {
            if entry.index != expected {
                return Err(StorageError::Corrupt {
                    space: Space::RaftLog.name(),
                    reason: format!(
                        "log has a gap: expected index {expected}, found {}",
                        entry.index
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether nothing was ever persisted (a brand-new member).
    pub fn is_new(&self) -> bool {
        self.conf_state.voters.is_empty()
            && self.conf_state.learners.is_empty()
            && self.last_index() == self.start.0
            && self.hard_state == HardState::default()
    }

    /// The current hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The current configuration.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Index of the last entry in the log.
    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.memory_first.max(self.start.0 + 1) - 1, |e| e.index)
    }

    /// Index of the first entry held in memory (the next index if none is).
    pub fn memory_first_index(&self) -> u64 {
        self.memory_first.max(self.start.0 + 1)
    }

    /// Drops from memory the entries older than the last `memory_entries` applied ones
    /// once twice that many are held; they stay on disk until compaction. A
    /// store without an engine (built in memory) keeps every entry.
    pub fn release_applied(&mut self, applied: u64) {
        if self.disk.is_none() {
            return;
        }
        let memory_first = self.memory_first_index();
        if applied < memory_first + 2 * self.memory_entries {
            return;
        }
        let keep_from = (applied - self.memory_entries + 1).min(self.last_index());
        if keep_from <= memory_first {
            return;
        }
        self.entries.drain(..(keep_from - memory_first) as usize);
        self.memory_first = keep_from;
    }

    /// Index of the first entry still held.
    pub fn first_index(&self) -> u64 {
        self.start.0 + 1
    }

    /// Adds `entries` (which may overwrite a conflicting suffix) to `batch` and to the view.
    pub fn stage_append(&mut self, entries: &[Entry], batch: &mut WriteBatch) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index > self.start.0,
            "append of compacted index {}",
            first.index
        );
        assert!(
            first.index <= self.last_index() + 1,
            "append leaves a gap at {}",
            first.index
        );
        let new_last = first.index + entries.len() as u64 - 1;
        for stale in (new_last + 1)..=self.last_index() {
            batch.delete(Space::RaftLog, entry_key(stale).to_vec());
        }
        for entry in entries {
            batch.put(
                Space::RaftLog,
                entry_key(entry.index).to_vec(),
                encode(entry),
            );
        }
        let memory_first = self.memory_first_index();
        if first.index >= memory_first {
            self.entries.truncate((first.index - memory_first) as usize);
        } else {
            // Overwrites entries only on disk (the batch replaces them there).
            self.entries.clear();
            self.memory_first = first.index;
        }
        self.entries.extend_from_slice(entries);
    }

    /// Records a new hard state in `batch` and the view.
    pub fn stage_hard_state(&mut self, hard_state: &HardState, batch: &mut WriteBatch) {
        batch.put(
            Space::RaftState,
            HARD_STATE_KEY.to_vec(),
            encode(hard_state),
        );
        self.hard_state = hard_state.clone();
    }

    /// Records the commit index (part of the hard state) in `batch` and the view.
    pub fn stage_commit(&mut self, commit: u64, batch: &mut WriteBatch) {
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = commit;
        self.stage_hard_state(&hard_state, batch);
    }

    /// Records a new configuration in `batch` and the view.
    pub fn stage_conf_state(&mut self, conf_state: &ConfState, batch: &mut WriteBatch) {
        batch.put(
            Space::RaftState,
            CONF_STATE_KEY.to_vec(),
            encode(conf_state),
        );
        self.conf_state = conf_state.clone();
    }

    /// Whether raft-rs asked for a snapshot since the last call (and clears the request).
    pub fn take_snapshot_request(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// Offers `snapshot` to raft-rs for followers behind the compacted log.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }

    /// The term of the entry at `index`, if this store still has it.
    pub fn term_of(&self, index: u64) -> Option<u64> {
        raft::Storage::term(self, index).ok()
    }

    /// Resets the log to start right after a snapshot received from the leader: every held
    /// entry goes, the configuration and commit index come from the snapshot.
    pub fn stage_apply_snapshot(&mut self, meta: &SnapshotMetadata, batch: &mut WriteBatch) {
        for index in self.first_index()..=self.last_index() {
            batch.delete(Space::RaftLog, entry_key(index).to_vec());
        }
        self.entries.clear();
        self.start = (meta.index, meta.term);
        self.memory_first = self.start.0 + 1;
        batch.put(
            Space::RaftState,
            LOG_START_KEY.to_vec(),
            encode_start(self.start),
        );
        self.stage_conf_state(meta.get_conf_state(), batch);
        let mut hard_state = self.hard_state.clone();
        hard_state.term = hard_state.term.max(meta.term);
        hard_state.commit = hard_state.commit.max(meta.index);
        self.stage_hard_state(&hard_state, batch);
        self.snapshot = None;
    }

    /// Drops entries before `index` (which must be applied), keeping `index` itself so the
    /// log is never empty after compaction. Fails only if the term of the last dropped
    /// entry cannot be read back from disk.
    pub fn stage_compact(
        &mut self,
        index: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        if index <= self.first_index() || index > self.last_index() {
            return Ok(());
        }
        let last_dropped = index - 1;
        let term = self.term_at(last_dropped)?;
        for dropped in self.first_index()..index {
            batch.delete(Space::RaftLog, entry_key(dropped).to_vec());
        }
        // Where the in-memory tail begins, read before `start` moves (it bounds the result).
        let memory_first = self.memory_first_index();
        self.start = (last_dropped, term);
        batch.put(
            Space::RaftState,
            LOG_START_KEY.to_vec(),
            encode_start(self.start),
        );
        if index > memory_first {
            self.entries.drain(..(index - memory_first) as usize);
            self.memory_first = index;
        }
        Ok(())
    }

    /// The term of the held entry at `index` (between the first and last index), from
    /// memory or from disk.
    fn term_at(&self, index: u64) -> Result<u64, StorageError> {
        let memory_first = self.memory_first_index();
        if index >= memory_first {
            return Ok(self.entries[(index - memory_first) as usize].term);
        }
        let mut entries = self.read_disk(index, index + 1, u64::MAX)?;
        match entries.pop() {
            Some(entry) => Ok(entry.term),
            None => Err(missing(index)),
        }
    }

    /// Entries `[low, high)` from disk (all before the in-memory tail), stopping before
    /// the one that would take their encoded size over `max_size` (at least one is read).
    fn read_disk(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        let Some(Disk(engine)) = &self.disk else {
            return Err(missing(low));
        };
        let mut out: Vec<Entry> = Vec::new();
        let mut total = 0u64;
        scan_entries(
            engine.as_ref(),
            &entry_key(low),
            Some(&entry_key(high)),
            Order::Ascending,
            &mut |entry, size| {
                total += size;
                if !out.is_empty() && total > max_size {
                    return ControlFlow::Break(());
                }
                out.push(entry);
                ControlFlow::Continue(())
            },
        )?;
        for (expected, entry) in (low..).zip(&out) {
            if entry.index != expected {
                return Err(missing(expected));
            }
        }
        if out.is_empty() {
            return Err(missing(low));
        }
        Ok(out)
    }
}

/// Visits the log entries stored from key `start` (up to `end`, exclusive) in `order`, each
/// decoded with its encoded size, until `visit` breaks. An undecodable entry ends the scan
/// with its error.
fn scan_entries(
    engine: &dyn Engine,
    start: &[u8],
    end: Option<&[u8]>,
    order: Order,
    visit: &mut dyn FnMut(Entry, u64) -> ControlFlow<()>,
) -> Result<(), StorageError> {
    let mut failure = None;
    engine.scan(
        Space::RaftLog,
        start,
        end,
        order,
        &mut |_, value| match decode::<Entry>("log entry", value) {
            Ok(entry) => visit(entry, value.len() as u64),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    failure.map_or(Ok(()), Err)
}

/// Whether `conf_state` has member `id` (as a voter or learner, in either configuration).
fn holds_member(conf_state: &ConfState, id: u64) -> bool {
    [
        &conf_state.voters,
        &conf_state.learners,
        &conf_state.voters_outgoing,
        &conf_state.learners_next,
    ]
    .into_iter()
    .any(|ids| ids.contains(&id))
}

/// The error for an entry the log should hold and the engine does not.
fn missing(index: u64) -> StorageError {
    StorageError::Corrupt {
        space: Space::RaftLog.name(),
        reason: format!("log entry {index} is missing"),
    }
}

/// A storage failure as raft-rs's storage error.
fn raft_error(error: StorageError) -> raft::Error {
    raft::Error::Store(RaftStorageError::Other(Box::new(error)))
}

fn encode(message: &impl protobuf::Message) -> Vec<u8> {
    // rust-protobuf only fails to encode proto2 messages with missing required fields;
    // eraftpb is proto3, so this cannot fail.
    message
        .write_to_bytes()
        .expect("proto3 raft messages always encode")
}

fn decode<M: protobuf::Message>(what: &str, bytes: &[u8]) -> Result<M, StorageError> {
    M::parse_from_bytes(bytes).map_err(|e| StorageError::Corrupt {
        space: Space::RaftState.name(),
        reason: format!("cannot decode {what}: {e}"),
    })
}

fn encode_start((index, term): (u64, u64)) -> Vec<u8> {
    let mut bytes = index.to_be_bytes().to_vec();
    bytes.extend_from_slice(&term.to_be_bytes());
    bytes
}

fn decode_start(bytes: &[u8]) -> Result<(u64, u64), StorageError> {
    let corrupt = || StorageError::Corrupt {
        space: Space::RaftState.name(),
        reason: format!("log start record has {} bytes, expected 16", bytes.len()),
    };
    let index = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let term = bytes
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    Ok((u64::from_be_bytes(index), u64::from_be_bytes(term)))
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index() {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if high > self.last_index() + 1 {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let memory_first = self.memory_first_index();
        let mut out = Vec::new();
        let mut total = 0u64;
        if low < memory_first {
            out = self
                .read_disk(low, high.min(memory_first), max_size)
                .map_err(raft_error)?;
            total = out.iter().map(|e| u64::from(e.compute_size())).sum();
            if (low + out.len() as u64) < high.min(memory_first) {
                return Ok(out);
            }
        }
        let from = low.max(memory_first);
        if from >= high {
            return Ok(out);
        }
        let slice = &self.entries[(from - memory_first) as usize..(high - memory_first) as usize];
        for entry in slice {
            total += u64::from(entry.compute_size());
            if !out.is_empty() && total > max_size {
                break;
            }
            out.push(entry.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.start.0 {
            return Ok(self.start.1);
        }
        if idx < self.first_index() {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if idx > self.last_index() {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        self.term_at(idx).map_err(raft_error)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(LogStore::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(LogStore::last_index(self))
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // A snapshot is usable while the log still holds every entry after it, and only
        // for a member its configuration holds: a member added after it was taken would
        // ignore it (etcd sends every snapshot at the applied index and configuration).
        let usable = self.snapshot.as_ref().filter(|s| {
            let index = s.get_metadata().index;
            index >= request_index
                && index + 1 >= self.first_index()
                && holds_member(s.get_metadata().get_conf_state(), to)
        });
        match usable {
            Some(snapshot) => Ok(snapshot.clone()),
            None => {
                // The replica builds one before its next Ready; raft-rs asks again later.
                self.snapshot_wanted.set(true);
                Err(raft::Error::Store(
                    RaftStorageError::SnapshotTemporarilyUnavailable,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use raft::Storage as _;

    use super::*;
    use crate::storage::Durability;
    use crate::storage::mem::MemEngine;

    /// A stored log of entries 1..=20, entry `i` of term `i`, keeping at least
    /// `memory_entries` applied entries in memory.
    fn stored_log(memory_entries: u64) -> (Arc<dyn Engine>, LogStore) {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let mut store = LogStore::load(engine.clone(), memory_entries).unwrap();
        let entries: Vec<Entry> = (1..=20)
            .map(|i| Entry {
                index: i,
                term: i,
                ..Entry::default()
            })
            .collect();
        let mut batch = WriteBatch::new();
        store.stage_append(&entries, &mut batch);
        engine.write(batch, Durability::Sync).unwrap();
        (engine, store)
    }

    #[test]
    fn a_snapshot_is_offered_only_to_members_its_configuration_holds() {
        let (_, mut store) = stored_log(5);
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = 20;
        snapshot.mut_metadata().term = 20;
        snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2];
        snapshot.mut_metadata().mut_conf_state().learners = vec![3];
        store.set_snapshot(snapshot);
        for member in [1, 2, 3] {
            assert_eq!(store.snapshot(20, member).unwrap().get_metadata().index, 20);
        }
        assert!(!store.snapshot_wanted.get());
        // Member 4 joined after the snapshot was taken: raft-rs would ignore it there.
        assert!(matches!(
            store.snapshot(20, 4),
            Err(raft::Error::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable
            ))
        ));
        assert!(store.snapshot_wanted.get());
    }

    #[test]
    fn compaction_keeps_every_later_entry_readable_wherever_the_memory_tail_begins() {
        // Compaction points before and inside the in-memory tail, with every entry in
        // memory and with the applied ones released to disk (the tail then starts at 16).
        for (compact_at, release) in [(10, false), (10, true), (18, false), (18, true)] {
            let (engine, mut store) = stored_log(5);
            if release {
                store.release_applied(20);
                assert_eq!(store.memory_first_index(), 16);
            }
            let mut batch = WriteBatch::new();
            store.stage_compact(compact_at, &mut batch).unwrap();
            engine.write(batch, Durability::Sync).unwrap();
            let case = format!("compacted at {compact_at}, released: {release}");
            assert_eq!(
                raft::Storage::first_index(&store).unwrap(),
                compact_at,
                "{case}"
            );
            for i in compact_at - 1..=20 {
                assert_eq!(store.term(i).unwrap(), i, "term of {i}, {case}");
            }
            let all = store
                .entries(compact_at, 21, None, GetEntriesContext::empty(false))
                .unwrap();
            let indexes: Vec<u64> = all.iter().map(|e| e.index).collect();
            assert_eq!(indexes, (compact_at..=20).collect::<Vec<_>>(), "{case}");
        }
    }
}
