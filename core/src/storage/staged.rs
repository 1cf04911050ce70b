//! A write-back layer over an engine: changes are staged in memory, visible to every read
//! through the layer at once, and reach the base engine as ONE batch on [`Staged::flush`].
//!
//! The state machine applies a run of committed entries through it: each entry reads the
//! state its predecessors left (read-your-writes across entries), and the whole run, with
//! the consistent index of its last entry, is one atomic storage write instead of one per
//! entry. A crash before the flush loses the whole run and nothing else; the Raft log still
//! holds it, and the stored consistent index makes the replay idempotent.
//!
//! As an [`Engine`]: a [`Durability::Buffered`] write is staged (and may be lost by a crash,
//! as the contract allows, until a sync); a [`Durability::Sync`] write or [`Engine::sync`]
//! flushes everything staged to the base engine durably. Reads merge the staged changes
//! over the base engine; a scan sees the staged changes as they were when it began (each
//! space is a copy-on-write map, as in `mem`), and holds no lock while its visitor runs.
//! Dropping the layer drops what is staged: flush first.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::mem::check_batch;
use super::{Durability, Engine, Order, Space, StorageError, Visitor, WriteBatch};

/// The staged state of one space's keys: `None` is a deletion.
type StagedSpace = Arc<BTreeMap<Vec<u8>, Option<Vec<u8>>>>;

/// Staged keys of a scan's range, in scan order.
type StagedKeys<'a> = Box<dyn Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)> + 'a>;

/// An [`Engine`] that stages writes in memory over a base engine until flushed.
pub struct Staged {
    base: Arc<dyn Engine>,
    /// One map per space, indexed by the space's position in [`Space::ALL`].
    pending: RwLock<[StagedSpace; Space::ALL.len()]>,
    /// Whether anything is staged: reads through an empty layer skip the lock.
    staged: AtomicBool,
}

impl Staged {
    /// An empty layer over `base`.
    pub fn new(base: Arc<dyn Engine>) -> Staged {
        Staged {
            base,
            pending: RwLock::default(),
            staged: AtomicBool::new(false),
        }
    }

    /// The engine under the layer.
    pub fn base(&self) -> &Arc<dyn Engine> {
        &self.base
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        !self.staged.load(Ordering::Acquire)
    }

    fn read_pending(&self) -> RwLockReadGuard<'_, [StagedSpace; Space::ALL.len()]> {
        // The maps are replaced whole or changed by single inserts: a panic elsewhere while
        // the lock was held leaves them consistent.
        self.pending.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_pending(&self) -> RwLockWriteGuard<'_, [StagedSpace; Space::ALL.len()]> {
        self.pending.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stages `batch` (checked against the engine limits first, so an invalid batch stages
    /// nothing): later changes to a key replace earlier ones.
    pub fn stage(&self, batch: WriteBatch) -> Result<(), StorageError> {
        check_batch(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut pending = self.write_pending();
        for op in batch.into_ops() {
            Arc::make_mut(&mut pending[op.space as usize]).insert(op.key, op.value);
        }
        self.staged.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes everything staged to the base engine as one atomic batch with `durability`,
    /// and empties the layer. With nothing staged, a `Sync` flush syncs the base engine
    /// and a `Buffered` one does nothing. On failure the staged changes are dropped, as a
    /// failed write of an engine leaves nothing of its batch.
    pub fn flush(&self, durability: Durability) -> Result<(), StorageError> {
        let mut pending = self.write_pending();
        if !self.staged.load(Ordering::Acquire) {
            return match durability {
                Durability::Sync => self.base.sync(),
                Durability::Buffered => Ok(()),
            };
        }
        let mut batch = WriteBatch::new();
        for (space, staged) in Space::ALL.into_iter().zip(std::mem::take(&mut *pending)) {
            let staged = Arc::try_unwrap(staged).unwrap_or_else(|shared| (*shared).clone());
            for (key, value) in staged {
                match value {
                    Some(value) => batch.put(space, key, value),
                    None => batch.delete(space, key),
                }
            }
        }
        self.staged.store(false, Ordering::Release);
        self.base.write(batch, durability)
    }

    /// Drops everything staged.
    pub fn discard(&self) {
        let mut pending = self.write_pending();
        *pending = Default::default();
        self.staged.store(false, Ordering::Release);
    }

    /// The staged map of `space`, if anything at all is staged.
    fn snapshot(&self, space: Space) -> Option<StagedSpace> {
        if self.is_empty() {
            return None;
        }
        Some(self.read_pending()[space as usize].clone())
    }
}

impl Engine for Staged {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if !self.is_empty()
            && let Some(value) = self.read_pending()[space as usize].get(key)
        {
            return Ok(value.clone());
        }
        self.base.get(space, key)
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        let staged = match self.snapshot(space) {
            Some(staged) if !staged.is_empty() => staged,
            _ => return self.base.scan(space, start, end, order, visit),
        };
        if end.is_some_and(|end| end <= start) {
            return Ok(());
        }
        let bounds = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let range = staged.range::<[u8], _>(bounds);
        let mut staged_keys: StagedKeys<'_> = match order {
            Order::Ascending => Box::new(range),
            Order::Descending => Box::new(range.rev()),
        };
        let mut next_staged = staged_keys.next();
        // Whether a staged key comes before the stored key `key` in scan order.
        let before = |staged: &[u8], key: &[u8]| match order {
            Order::Ascending => staged < key,
            Order::Descending => staged > key,
        };
        let mut stopped = false;
        self.base
            .scan(space, start, end, order, &mut |key, value| {
                while let Some((staged_key, staged_value)) = next_staged {
                    if !before(staged_key, key) {
                        break;
                    }
                    next_staged = staged_keys.next();
                    if let Some(staged_value) = staged_value
                        && visit(staged_key, staged_value).is_break()
                    {
                        stopped = true;
                        return ControlFlow::Break(());
                    }
                }
                let flow = match next_staged {
                    Some((staged_key, staged_value)) if staged_key.as_slice() == key => {
                        next_staged = staged_keys.next();
                        match staged_value {
                            Some(staged_value) => visit(key, staged_value),
                            None => ControlFlow::Continue(()),
                        }
                    }
                    _ => visit(key, value),
                };
                stopped = flow.is_break();
                flow
            })?;
        if stopped {
            return Ok(());
        }
        while let Some((staged_key, staged_value)) = next_staged {
            if let Some(staged_value) = staged_value
                && visit(staged_key, staged_value).is_break()
            {
                break;
            }
            next_staged = staged_keys.next();
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        self.stage(batch)?;
        match durability {
            Durability::Sync => self.flush(Durability::Sync),
            Durability::Buffered => Ok(()),
        }
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.flush(Durability::Sync)
    }

    fn size_bytes(&self) -> u64 {
        self.base.size_bytes()
    }

    fn size_bytes_of(&self, spaces: &[Space]) -> u64 {
        self.base.size_bytes_of(spaces)
    }

    fn defragment(&self) -> Result<(), StorageError> {
        self.flush(Durability::Buffered)?;
        self.base.defragment()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::storage::mem::MemEngine;

    /// One step of a random workload.
    #[derive(Debug, Clone)]
    enum Step {
        Write(Vec<(usize, u8, Option<u8>)>),
        Flush,
        Scan(usize, u8, Option<u8>, bool),
        Get(usize, u8),
    }

    const SPACES: [Space; 2] = [Space::History, Space::Meta];

    fn key(k: u8) -> Vec<u8> {
        vec![b'a' + k]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => prop::collection::vec((0..2usize, 0..8u8, prop::option::of(any::<u8>())), 1..5)
                .prop_map(Step::Write),
            1 => Just(Step::Flush),
            2 => (0..2usize, 0..9u8, prop::option::of(0..9u8), any::<bool>())
                .prop_map(|(s, a, b, d)| Step::Scan(s, a, b, d)),
            1 => (0..2usize, 0..8u8).prop_map(|(s, k)| Step::Get(s, k)),
        ]
    }

    fn scan_all(
        engine: &dyn Engine,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut seen = Vec::new();
        engine
            .scan(space, start, end, order, &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })
            .expect("scan");
        seen
    }

    proptest! {
        /// Reads through the layer, whatever is staged and whatever was flushed, equal reads
        /// of a plain engine that received the same writes; after a final flush the base
        /// holds exactly that engine's state.
        #[test]
        fn reads_through_the_layer_equal_a_plain_engine(
            steps in prop::collection::vec(step(), 1..40)
        ) {
            let model = MemEngine::new();
            let base = MemEngine::new();
            let staged = Staged::new(Arc::new(base.clone()));
            for step in steps {
                match step {
                    Step::Write(ops) => {
                        let mut batch = WriteBatch::new();
                        for (space, k, value) in ops {
                            match value {
                                Some(v) => batch.put(SPACES[space], key(k), vec![v]),
                                None => batch.delete(SPACES[space], key(k)),
                            }
                        }
                        model.write(batch.clone(), Durability::Buffered).expect("model write");
                        staged.write(batch, Durability::Buffered).expect("staged write");
                    }
                    Step::Flush => staged.flush(Durability::Buffered).expect("flush"),
                    Step::Get(space, k) => prop_assert_eq!(
                        staged.get(SPACES[space], &key(k)).expect("get"),
                        model.get(SPACES[space], &key(k)).expect("get")
                    ),
                    Step::Scan(space, start, end, descending) => {
                        let order = if descending { Order::Descending } else { Order::Ascending };
                        let (start, end) = (key(start), end.map(key));
                        prop_assert_eq!(
                            scan_all(&staged, SPACES[space], &start, end.as_deref(), order),
                            scan_all(&model, SPACES[space], &start, end.as_deref(), order)
                        );
                    }
                }
            }
            staged.flush(Durability::Buffered).expect("flush");
            prop_assert!(staged.is_empty());
            for space in SPACES {
                prop_assert_eq!(
                    scan_all(&base, space, b"", None, Order::Ascending),
                    scan_all(&model, space, b"", None, Order::Ascending)
                );
            }
        }
    }
}
