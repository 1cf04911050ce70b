//! The storage boundary: every byte cairn keeps on disk goes through [`Engine`].
//!
//! An engine is a set of ordered key spaces ([`Space`]) with atomic multi-space batches.
//! Two engines implement it: `fjall` (production; not built under madsim because fjall runs
//! OS threads) and [`mem`] (simulation; keeps what was written apart from what was synced,
//! so a simulated power loss drops unsynced writes). Both pass the same conformance suite
//! (`storage::conformance`), as do [`staged::Staged`], the write-back layer the state
//! machine applies a run of entries through before writing them as one batch, and
//! [`cached::Cached`], the read cache a member keeps over its engine.
//!
//! Durability contract: a batch written with [`Durability::Sync`] is on stable storage when
//! `write` returns, together with every batch written before it. A batch written with
//! [`Durability::Buffered`] is atomic (all or nothing after a crash) and ordered, but may be
//! lost by a crash until a later `Sync` write or [`Engine::sync`].

use std::ops::ControlFlow;

pub mod cached;
#[cfg(test)]
mod conformance;
#[cfg(not(madsim))]
pub mod fjall;
pub mod format;
pub mod mem;
pub mod staged;

/// The fixed set of key spaces. Each is an independent ordered map of byte strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// MVCC history: `(key, revision)` -> `StoredVersion` (see `mvcc::keys`).
    History,
    /// MVCC revision index: `revision` -> key, for watch catch-up and compaction.
    Revisions,
    /// State-machine metadata: consistent index, current and compacted revision, members.
    Meta,
    /// Raft log entries: big-endian index -> encoded `eraftpb::Entry`.
    RaftLog,
    /// Raft durable state: hard state, conf state, snapshot metadata.
    RaftState,
    /// Leases: granted leases and the keys attached to each (see `lease::keys`).
    Leases,
    /// MVCC latest-version pointers: user key -> revision of its newest stored version, so
    /// that finding a key's current version is a point lookup (see `mvcc::keys`).
    Latest,
}

impl Space {
    /// Every space, in a fixed order (engines create them all on open).
    pub const ALL: [Space; 7] = [
        Space::History,
        Space::Revisions,
        Space::Meta,
        Space::RaftLog,
        Space::RaftState,
        Space::Leases,
        Space::Latest,
    ];

    /// The on-disk name of the space.
    pub fn name(self) -> &'static str {
        match self {
            Space::History => "history",
            Space::Revisions => "revisions",
            Space::Meta => "meta",
            Space::RaftLog => "raft_log",
            Space::RaftState => "raft_state",
            Space::Leases => "leases",
            Space::Latest => "latest",
        }
    }
}

/// Whether a write must be on stable storage before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before returning (covers every earlier write too).
    Sync,
    /// Atomic and ordered, but may be lost by a crash until the next sync.
    Buffered,
}

/// One change in a batch: `None` deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The key space.
    pub space: Space,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// A set of changes applied atomically, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<Op>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` in `space`.
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op {
            space,
            key: key.into(),
            value: Some(value.into()),
        });
    }

    /// Deletes `key` from `space` (no error if absent).
    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.ops.push(Op {
            space,
            key: key.into(),
            value: None,
        });
    }

    /// The changes, in the order they were added.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether the batch holds no change.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Moves every change of `other` to the end of this batch.
    pub fn append(&mut self, other: &mut WriteBatch) {
        self.ops.append(&mut other.ops);
    }

    /// The changes, in the order they were added, by value.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending key order.
    Ascending,
    /// Descending key order.
    Descending,
}

/// A storage failure. For a failed sync the process must stop (never retry and continue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The engine could not be opened (names the path and the reason).
    #[error("cannot open storage at {path}: {reason}")]
    Open {
        /// The data directory or file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A read or write failed.
    #[error("storage i/o error: {0}")]
    Io(String),
    /// An fsync failed: what was written since the last sync is in an unknown state.
    #[error("storage sync failed: {0}")]
    Sync(String),
    /// The store was written by a newer cairn, in a layout this build cannot read.
    #[error(
        "storage format version {found} is newer than the version this cairn supports \
         ({supported}): the data dir was written by a newer cairn; run that version or a later one"
    )]
    NewerFormat {
        /// The version recorded in the store.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Stored bytes could not be decoded (names the space and key).
    #[error("corrupt data in space {space}: {reason}")]
    Corrupt {
        /// The space name.
        space: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// What a scan visitor sees: a key and its value.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// An ordered, multi-space key-value engine with atomic batches.
pub trait Engine: Send + Sync {
    /// The value of `key` in `space`, if any.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Visits the keys in `[start, end)` of `space` (`end = None`: to the end of the space)
    /// in `order`, until the visitor returns `Break`.
    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError>;

    /// Applies `batch` atomically.
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError>;

    /// Makes every earlier write durable.
    fn sync(&self) -> Result<(), StorageError>;

    /// Approximate bytes on disk.
    fn size_bytes(&self) -> u64;

    /// Approximate bytes stored for `spaces` only (`Status.dbSize` and the backend quota
    /// count the state machine, not the Raft log, as etcd counts its bolt file and not its
    /// WAL). Engines that cannot tell spaces apart answer [`Engine::size_bytes`].
    fn size_bytes_of(&self, spaces: &[Space]) -> u64 {
        let _ = spaces;
        self.size_bytes()
    }

    /// The bytes of the keys and values `spaces` hold now: what [`Engine::size_bytes_of`]
    /// would be with no deleted, overwritten or not-yet-compacted data in it
    /// (`Status.dbSizeInUse`, as etcd counts bolt's pages in use). Visits every entry.
    fn live_bytes_of(&self, spaces: &[Space]) -> Result<u64, StorageError> {
        let mut total = 0u64;
        for space in spaces {
            self.scan(*space, &[], None, Order::Ascending, &mut |key, value| {
                total = total.saturating_add((key.len() + value.len()) as u64);
                ControlFlow::Continue(())
            })?;
        }
        Ok(total)
    }

    /// Gives the space of deleted and overwritten data back to the file system
    /// (`Maintenance.Defragment`); blocks until done. Engines that hold nothing dead (the
    /// in-memory one) have nothing to do.
    fn defragment(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
