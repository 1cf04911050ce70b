//! In-memory engine for simulation: the disk model behind cairn-sim's power-loss faults.
//!
//! It keeps two states apart: the *visible* state (every write applied, what reads see) and
//! the *durable* state (what a power loss keeps). Batches written since the last successful
//! sync are queued, in order, as *unsynced*; a sync (explicit, or a [`Durability::Sync`]
//! write) moves them all into the durable state. [`MemEngine::crash`] and
//! [`MemEngine::crash_torn`] build the engine a restarted process would find, and
//! [`MemEngine::fail_next_sync`] injects an fsync error. Batches are the unit of loss: a crash
//! keeps a prefix of the unsynced batches (possibly empty), never part of one, matching the
//! contract in [`super`] that fjall's write-ahead journal provides in production.
//!
//! To stay interchangeable with fjall it also enforces fjall's key and value limits
//! ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]), and a scan reads a snapshot: each space is a
//! copy-on-write map, so a scan holds the map as it was when the scan began, without holding
//! the lock while the visitor runs (the visitor may read or write the engine).
//!
//! Everything is ordered (`BTreeMap`), so the same sequence of calls gives the same state and
//! the same scan order on every run.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Durability, Engine, Op, Order, Space, StorageError, Visitor, WriteBatch};

/// The longest key any engine accepts (fjall's limit: key lengths are stored as `u16`).
/// Enforced by `mem` as well, so simulation never accepts a write production would refuse.
pub const MAX_KEY_BYTES: usize = u16::MAX as usize;

/// The largest value any engine accepts (fjall's limit: value lengths are stored as `u32`).
pub const MAX_VALUE_BYTES: u64 = u32::MAX as u64;

/// Rejects a batch holding an empty key, a key over [`MAX_KEY_BYTES`] or a value over
/// [`MAX_VALUE_BYTES`], before any of it is applied. Every engine calls this first, so an
/// invalid batch fails the same way everywhere and leaves nothing behind.
pub(crate) fn check_batch(batch: &WriteBatch) -> Result<(), StorageError> {
    for op in batch.ops() {
        if op.key.is_empty() || op.key.len() > MAX_KEY_BYTES {
            return Err(StorageError::Io(format!(
                "key of {} bytes in space {} is outside the engine limit of 1..={MAX_KEY_BYTES} bytes",
                op.key.len(),
                op.space.name(),
            )));
        }
        let value_bytes = op.value.as_ref().map_or(0, |v| v.len() as u64);
        if value_bytes > MAX_VALUE_BYTES {
            return Err(StorageError::Io(format!(
                "value of {value_bytes} bytes in space {} exceeds the engine limit of {MAX_VALUE_BYTES} bytes",
                op.space.name(),
            )));
        }
    }
    Ok(())
}

/// A cloneable handle to one simulated disk; clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct MemEngine {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Every write applied: what reads see.
    visible: Tables,
    /// What survives a crash.
    durable: Tables,
    /// Batches applied to `visible` but not yet to `durable`, oldest first.
    unsynced: Vec<WriteBatch>,
    /// The next sync fails (one shot).
    fail_next_sync: bool,
}

/// One space's contents. Shared by `Arc` so scans and crash images are cheap snapshots; a
/// write clones the map only while such a snapshot is alive.
type SpaceMap = Arc<BTreeMap<Vec<u8>, Vec<u8>>>;

/// One complete key-value state: every space plus a running size in bytes.
#[derive(Debug, Clone, Default)]
struct Tables {
    spaces: BTreeMap<Space, SpaceMap>,
    /// Sum of key + value lengths over every space.
    bytes: u64,
}

impl Tables {
    fn apply(&mut self, batch: &WriteBatch) {
        for op in batch.ops() {
            self.apply_op(op);
        }
    }

    fn apply_op(&mut self, op: &Op) {
        let space = Arc::make_mut(self.spaces.entry(op.space).or_default());
        let removed = match &op.value {
            Some(value) => {
                self.bytes += entry_bytes(&op.key, value);
                space.insert(op.key.clone(), value.clone())
            }
            None => space.remove(&op.key),
        };
        if let Some(old) = removed {
            self.bytes -= entry_bytes(&op.key, &old);
        }
    }

    fn get(&self, space: Space, key: &[u8]) -> Option<Vec<u8>> {
        self.spaces.get(&space)?.get(key).cloned()
    }
}

fn entry_bytes(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// Visits `entries` until the visitor breaks.
fn visit_entries<'a>(
    entries: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>,
    visit: &mut Visitor<'_>,
) {
    for (key, value) in entries {
        if visit(key, value).is_break() {
            return;
        }
    }
}

impl MemEngine {
    /// An empty engine: nothing visible, nothing durable.
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine a restart after power loss finds: its visible and durable state are this
    /// engine's durable state. Every unsynced batch is lost. This engine is left unchanged.
    pub fn crash(&self) -> MemEngine {
        self.crash_torn(0)
    }

    /// Like [`MemEngine::crash`], but the first `keep_unsynced_batches` unsynced batches
    /// survive too, in order (the OS had flushed them). Whole batches only: never half of one.
    /// Asking for more batches than are unsynced keeps them all.
    pub fn crash_torn(&self, keep_unsynced_batches: usize) -> MemEngine {
        let state = self.lock();
        let mut survived = state.durable.clone();
        for batch in state.unsynced.iter().take(keep_unsynced_batches) {
            survived.apply(batch);
        }
        let restarted = State {
            visible: survived.clone(),
            durable: survived,
            unsynced: Vec::new(),
            fail_next_sync: false,
        };
        MemEngine {
            inner: Arc::new(Mutex::new(restarted)),
        }
    }

    /// Makes the next sync (explicit, or through a [`Durability::Sync`] write) fail with
    /// [`StorageError::Sync`]; what it would have made durable stays unsynced.
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// How many batches a crash would lose right now (for sim assertions and fault choice).
    pub fn unsynced_batches(&self) -> usize {
        self.lock().unsynced.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held while caller code runs (scans release it before visiting),
        // and nothing below panics midway through a mutation, so a poisoned lock still
        // guards a consistent state.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn sync(&mut self) -> Result<(), StorageError> {
        if self.fail_next_sync {
            self.fail_next_sync = false;
            return Err(StorageError::Sync(
                "injected fsync failure (mem engine)".to_owned(),
            ));
        }
        for batch in self.unsynced.drain(..) {
            self.durable.apply(&batch);
        }
        debug_assert_eq!(self.durable.bytes, self.visible.bytes);
        Ok(())
    }
}

impl Engine for MemEngine {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().visible.get(space, key))
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        if end.is_some_and(|end| end <= start) {
            return Ok(());
        }
        let snapshot = {
            let state = self.lock();
            state.visible.spaces.get(&space).cloned()
        };
        let Some(map) = snapshot else {
            return Ok(());
        };
        let bounds = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let entries = map.range::<[u8], _>(bounds);
        match order {
            Order::Ascending => visit_entries(entries, visit),
            Order::Descending => visit_entries(entries.rev(), visit),
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        check_batch(&batch)?;
        let mut state = self.lock();
        state.visible.apply(&batch);
        state.unsynced.push(batch);
        match durability {
            Durability::Sync => state.sync(),
            Durability::Buffered => Ok(()),
        }
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.lock().sync()
    }

    fn size_bytes(&self) -> u64 {
        self.lock().visible.bytes
    }
}
