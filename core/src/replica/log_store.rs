//! The Raft log as raft-rs sees it: an in-memory window of the log (entries after the last
//! compaction point) plus hard state and conf state, mirrored to the `RaftLog` and `RaftState`
//! spaces of the engine.
//!
//! Persistence is driven by the replica: [`LogStore::stage_append`] and friends add their
//! changes to a `WriteBatch` that the replica writes with one fsync per Ready, and only then
//! updates this in-memory view. Restart reads the window back with [`LogStore::load`], whose
//! cost is bounded by the number of entries since the last compaction, not by history.

use std::cell::Cell;

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

/// raft-rs's view of the log.
#[derive(Debug, Default, Clone)]
pub struct LogStore {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the entry just before `entries[0]` (0, 0 for a new log).
    start: (u64, u64),
    entries: Vec<Entry>,
    /// The last state-machine snapshot prepared for lagging followers.
    snapshot: Option<Snapshot>,
    /// raft-rs asked for a snapshot this store did not have ready.
    snapshot_wanted: Cell<bool>,
}

impl LogStore {
    /// Reads the persisted log window, hard state and conf state from `engine`.
    pub fn load(engine: &dyn Engine) -> Result<LogStore, StorageError> {
        let mut store = LogStore::default();
        if let Some(bytes) = engine.get(Space::RaftState, HARD_STATE_KEY)? {
            store.hard_state = decode("hard state", &bytes)?;
        }
        if let Some(bytes) = engine.get(Space::RaftState, CONF_STATE_KEY)? {
            store.conf_state = decode("conf state", &bytes)?;
        }
        if let Some(bytes) = engine.get(Space::RaftState, LOG_START_KEY)? {
            store.start = decode_start(&bytes)?;
        }
        let mut failure = None;
        engine.scan(
            Space::RaftLog,
            &[],
            None,
            Order::Ascending,
            &mut |_, value| match decode::<Entry>("log entry", value) {
                Ok(entry) => {
                    store.entries.push(entry);
                    std::ops::ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(e);
                    std::ops::ControlFlow::Break(())
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        store.check_contiguous()?;
        Ok(store)
    }

    fn check_contiguous(&self) -> Result<(), StorageError> {
        for (expected, entry) in (self.start.0 + 1..).zip(&self.entries) {
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
            && self.entries.is_empty()
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
        self.entries.last().map_or(self.start.0, |e| e.index)
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
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
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
        for entry in &self.entries {
            batch.delete(Space::RaftLog, entry_key(entry.index).to_vec());
        }
        self.entries.clear();
        self.start = (meta.index, meta.term);
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
    /// log is never empty after compaction.
    pub fn stage_compact(&mut self, index: u64, batch: &mut WriteBatch) {
        if index <= self.first_index() || index > self.last_index() {
            return;
        }
        let drop = (index - self.first_index()) as usize;
        let last_dropped = &self.entries[drop - 1];
        self.start = (last_dropped.index, last_dropped.term);
        for entry in &self.entries[..drop] {
            batch.delete(Space::RaftLog, entry_key(entry.index).to_vec());
        }
        batch.put(
            Space::RaftState,
            LOG_START_KEY.to_vec(),
            encode_start(self.start),
        );
        self.entries.drain(..drop);
    }
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
        let offset = self.first_index();
        let slice = &self.entries[(low - offset) as usize..(high - offset) as usize];
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let mut total = 0u64;
        let mut out = Vec::new();
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
        Ok(self.entries[(idx - self.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(LogStore::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(LogStore::last_index(self))
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // A snapshot is usable while the log still holds every entry after it.
        let usable = self.snapshot.as_ref().filter(|s| {
            let index = s.get_metadata().index;
            index >= request_index && index + 1 >= self.first_index()
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
