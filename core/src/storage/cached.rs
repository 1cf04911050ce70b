//! A read cache over an engine for the point reads of chosen spaces.
//!
//! Every put and delete the state machine applies first looks up the key's Latest entry
//! (`mvcc::keys`): in fjall that is a search of the memtables, then of the tables' filters
//! and blocks, which took 12% of three members' CPU under a sustained put load
//! (`PRELOAD=60000 bench/profile.sh`). [`Cached`] keeps the values it read or wrote of the
//! spaces it is given, within a byte budget, so that a key written or read recently is
//! found without a search.
//!
//! The cache never holds a value the engine does not: every write goes through
//! [`Engine::write`] of this layer, which updates the cache after the base engine took the
//! batch; a failed write empties the cache (the base engine's state is then unknown). A
//! value read from the base engine is kept only if no write changed the cached spaces
//! since the read began, so a read that raced a write cannot put back the value the write
//! replaced. Scans and everything else go to the base engine.
//!
//! Eviction is by generations: new entries go into the current map; when it holds half
//! the budget, it becomes the previous map and the old previous one is dropped. A hit in
//! the previous map moves the entry back into the current one. Lookups and inserts are
//! O(1) and nothing is ever iterated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Durability, Engine, Order, Space, StorageError, Visitor, WriteBatch};

/// The budget of the cache a member keeps of its Latest entries ([`Cached::for_member`]):
/// about 290,000 entries of short keys, each entry counting its key, its 41-byte value
/// and [`ENTRY_OVERHEAD`].
pub const MEMBER_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Bytes counted per cached entry beyond its key and value (the maps' slots and the two
/// allocations), so that a budget bounds the memory of many small entries too.
const ENTRY_OVERHEAD: usize = 64;

/// What the cache knows of a key: its value, or `None` for a key known to be absent.
type Known = Option<Vec<u8>>;

/// One generation: the entries of each space and the bytes they count.
#[derive(Default)]
struct Generation {
    /// Indexed by position in [`Space::ALL`].
    entries: [HashMap<Vec<u8>, Known>; Space::ALL.len()],
    bytes: usize,
}

impl Generation {
    fn cost(key_bytes: usize, known: &Known) -> usize {
        key_bytes + known.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
    }

    fn get(&self, space: Space, key: &[u8]) -> Option<&Known> {
        self.entries[space as usize].get(key)
    }

    fn insert(&mut self, space: Space, key: Vec<u8>, known: Known) {
        let key_bytes = key.len();
        self.bytes += Self::cost(key_bytes, &known);
        if let Some(old) = self.entries[space as usize].insert(key, known) {
            self.bytes -= Self::cost(key_bytes, &old);
        }
    }

    fn remove(&mut self, space: Space, key: &[u8]) -> Option<Known> {
        let known = self.entries[space as usize].remove(key)?;
        self.bytes -= Self::cost(key.len(), &known);
        Some(known)
    }
}

struct State {
    current: Generation,
    previous: Generation,
    /// Counts the writes to cached spaces: a read from the base engine fills the cache
    /// only if it did not change while the read ran.
    writes: u64,
}

/// An [`Engine`] that caches the point reads of some spaces of a base engine.
pub struct Cached {
    base: Arc<dyn Engine>,
    /// Which spaces are cached, indexed by position in [`Space::ALL`].
    cached: [bool; Space::ALL.len()],
    /// The bytes the two generations may count together.
    budget: usize,
    state: Mutex<State>,
    /// Held by writers of cached spaces from the base engine's write to the cache's
    /// update, so that two writers cannot leave the older one's value in the cache.
    writing: Mutex<()>,
}

impl Cached {
    /// A cache of `spaces` over `base`, holding about `budget` bytes of keys and values.
    pub fn new(base: Arc<dyn Engine>, spaces: &[Space], budget: usize) -> Cached {
        let mut cached = [false; Space::ALL.len()];
        for space in spaces {
            cached[*space as usize] = true;
        }
        Cached {
            base,
            cached,
            budget,
            state: Mutex::new(State {
                current: Generation::default(),
                previous: Generation::default(),
                writes: 0,
            }),
            writing: Mutex::new(()),
        }
    }

    /// The cache a member keeps over its engine: the Latest entries, within
    /// [`MEMBER_CACHE_BYTES`].
    pub fn for_member(base: Arc<dyn Engine>) -> Cached {
        Cached::new(base, &[Space::Latest], MEMBER_CACHE_BYTES)
    }

    /// The bytes the cached entries count now (at most the budget, plus one entry).
    pub fn cached_bytes(&self) -> usize {
        let state = self.lock();
        state.current.bytes + state.previous.bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is a whole insert or removal: a panic elsewhere while
        // the lock was held leaves it consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_cached(&self, space: Space) -> bool {
        self.cached[space as usize]
    }
}

impl State {
    /// Adds or replaces an entry, starting a new generation when the current one holds
    /// half of `budget`.
    fn insert(&mut self, budget: usize, space: Space, key: Vec<u8>, known: Known) {
        self.previous.remove(space, &key);
        self.current.insert(space, key, known);
        if self.current.bytes >= budget / 2 {
            self.previous = std::mem::take(&mut self.current);
        }
    }

    fn clear(&mut self) {
        self.current = Generation::default();
        self.previous = Generation::default();
    }
}

impl Engine for Cached {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if !self.is_cached(space) {
            return self.base.get(space, key);
        }
        let writes = {
            let mut state = self.lock();
            if let Some(known) = state.current.get(space, key) {
                return Ok(known.clone());
            }
            if let Some(known) = state.previous.remove(space, key) {
                state.insert(self.budget, space, key.to_vec(), known.clone());
                return Ok(known);
            }
            state.writes
        };
        let value = self.base.get(space, key)?;
        let mut state = self.lock();
        if state.writes == writes {
            state.insert(self.budget, space, key.to_vec(), value.clone());
        }
        Ok(value)
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        self.base.scan(space, start, end, order, visit)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        let updates: Vec<(Space, Vec<u8>, Known)> = batch
            .ops()
            .iter()
            .filter(|op| self.is_cached(op.space))
            .map(|op| (op.space, op.key.clone(), op.value.clone()))
            .collect();
        if updates.is_empty() {
            return self.base.write(batch, durability);
        }
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let written = self.base.write(batch, durability);
        let mut state = self.lock();
        state.writes += 1;
        match written {
            Ok(()) => {
                // In batch order: a later change to a key replaces an earlier one.
                for (space, key, known) in updates {
                    state.insert(self.budget, space, key, known);
                }
            }
            Err(_) => state.clear(),
        }
        written
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.base.sync()
    }

    fn size_bytes(&self) -> u64 {
        self.base.size_bytes()
    }

    fn size_bytes_of(&self, spaces: &[Space]) -> u64 {
        self.base.size_bytes_of(spaces)
    }

    fn live_bytes_of(&self, spaces: &[Space]) -> Result<u64, StorageError> {
        self.base.live_bytes_of(spaces)
    }

    fn defragment(&self) -> Result<(), StorageError> {
        self.base.defragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemEngine;

    fn put(engine: &dyn Engine, space: Space, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::new();
        batch.put(space, key.to_vec(), value.to_vec());
        engine.write(batch, Durability::Buffered).expect("write");
    }

    #[test]
    fn a_cached_read_answers_without_the_base_engine_and_an_uncached_space_reads_through() {
        let base = MemEngine::new();
        let cached = Cached::new(Arc::new(base.clone()), &[Space::Latest], 1 << 20);
        put(&cached, Space::Latest, b"k", b"v1");
        put(&cached, Space::Meta, b"m", b"1");
        // Changed behind the cache's back (no writer does this; it shows where reads go).
        put(&base, Space::Latest, b"k", b"v2");
        put(&base, Space::Meta, b"m", b"2");
        assert_eq!(
            cached.get(Space::Latest, b"k").unwrap(),
            Some(b"v1".to_vec())
        );
        assert_eq!(cached.get(Space::Meta, b"m").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn writes_through_the_cache_replace_and_delete_what_it_holds() {
        let cached = Cached::new(Arc::new(MemEngine::new()), &[Space::Latest], 1 << 20);
        assert_eq!(cached.get(Space::Latest, b"k").unwrap(), None);
        let mut batch = WriteBatch::new();
        batch.put(Space::Latest, b"k".to_vec(), b"v1".to_vec());
        batch.put(Space::Latest, b"k".to_vec(), b"v2".to_vec());
        cached.write(batch, Durability::Sync).unwrap();
        assert_eq!(
            cached.get(Space::Latest, b"k").unwrap(),
            Some(b"v2".to_vec())
        );
        let mut batch = WriteBatch::new();
        batch.delete(Space::Latest, b"k".to_vec());
        cached.write(batch, Durability::Sync).unwrap();
        assert_eq!(cached.get(Space::Latest, b"k").unwrap(), None);
    }

    #[test]
    fn the_cache_stays_within_its_budget_and_keeps_the_entries_used_recently() {
        let budget = 100 * (ENTRY_OVERHEAD + 8);
        let base = MemEngine::new();
        let cached = Cached::new(Arc::new(base.clone()), &[Space::Latest], budget);
        for i in 0u32..1000 {
            put(&cached, Space::Latest, &i.to_be_bytes(), b"valu");
            // Key 0 is read after every write: it stays cached however many follow.
            assert_eq!(
                cached.get(Space::Latest, &0u32.to_be_bytes()).unwrap(),
                Some(b"valu".to_vec())
            );
            assert!(cached.cached_bytes() <= budget, "{}", cached.cached_bytes());
        }
        // Proof that key 0 came from the cache: the base engine's value differs now.
        put(&base, Space::Latest, &0u32.to_be_bytes(), b"base");
        assert_eq!(
            cached.get(Space::Latest, &0u32.to_be_bytes()).unwrap(),
            Some(b"valu".to_vec())
        );
        // An old key was evicted: it is read from the base engine.
        put(&base, Space::Latest, &1u32.to_be_bytes(), b"base");
        assert_eq!(
            cached.get(Space::Latest, &1u32.to_be_bytes()).unwrap(),
            Some(b"base".to_vec())
        );
    }

    #[test]
    fn a_failed_write_empties_the_cache() {
        let base = MemEngine::new();
        let cached = Cached::new(Arc::new(base.clone()), &[Space::Latest], 1 << 20);
        put(&cached, Space::Latest, b"k", b"v1");
        base.fail_next_sync();
        let mut batch = WriteBatch::new();
        batch.put(Space::Latest, b"k".to_vec(), b"v2".to_vec());
        assert!(cached.write(batch, Durability::Sync).is_err());
        assert_eq!(cached.cached_bytes(), 0);
        // Whatever the base engine holds now is what a read sees.
        assert_eq!(
            cached.get(Space::Latest, b"k").unwrap(),
            base.get(Space::Latest, b"k").unwrap()
        );
    }

    /// A base engine that runs a write through the cache while a read of it is under way:
    /// after reading its value, before returning it.
    struct WriteDuringRead {
        base: MemEngine,
        cache: std::sync::OnceLock<std::sync::Weak<Cached>>,
        armed: std::sync::atomic::AtomicBool,
    }

    impl Engine for WriteDuringRead {
        fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            let value = self.base.get(space, key)?;
            if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
                && let Some(cache) = self.cache.get().and_then(std::sync::Weak::upgrade)
            {
                put(cache.as_ref(), space, key, b"new");
            }
            Ok(value)
        }
        fn scan(
            &self,
            space: Space,
            start: &[u8],
            end: Option<&[u8]>,
            order: Order,
            visit: &mut Visitor<'_>,
        ) -> Result<(), StorageError> {
            self.base.scan(space, start, end, order, visit)
        }
        fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
            self.base.write(batch, durability)
        }
        fn sync(&self) -> Result<(), StorageError> {
            self.base.sync()
        }
        fn size_bytes(&self) -> u64 {
            self.base.size_bytes()
        }
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_put_the_replaced_value_back() {
        let base = Arc::new(WriteDuringRead {
            base: MemEngine::new(),
            cache: std::sync::OnceLock::new(),
            armed: std::sync::atomic::AtomicBool::new(false),
        });
        put(&base.base, Space::Latest, b"k", b"old");
        let cached = Arc::new(Cached::new(base.clone(), &[Space::Latest], 1 << 20));
        assert!(base.cache.set(Arc::downgrade(&cached)).is_ok());
        base.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        // The read returns what it read before the write; the cache must not keep it.
        assert_eq!(
            cached.get(Space::Latest, b"k").unwrap(),
            Some(b"old".to_vec())
        );
        assert_eq!(
            cached.get(Space::Latest, b"k").unwrap(),
            Some(b"new".to_vec())
        );
    }
}
