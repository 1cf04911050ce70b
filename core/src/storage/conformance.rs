//! The conformance suite every [`Engine`] passes (after openraft's storage test `Suite`).
//!
//! Each property is a generic function over a [`Harness`], which knows how to open an engine
//! and reopen it after a clean close; [`CrashHarness`] adds a simulated power loss. The
//! `engine_suite!` macro turns every property into one `#[test]` per engine, so `mem` (what
//! the simulator trusts) and `fjall` (what production runs) are held to the same contract and
//! cannot drift apart. Properties only `mem` can express (torn tails, injected fsync errors)
//! are at the end.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::cached::Cached;
use super::mem::{MAX_KEY_BYTES, MemEngine};
use super::staged::Staged;
use super::{Durability, Engine, Order, Space, StorageError, WriteBatch};

/// Opens engines for a test and reopens them after a clean shutdown.
trait Harness {
    type E: Engine;

    /// A fresh, empty engine.
    fn open(&mut self) -> Self::E;

    /// Closes `engine` cleanly (process exit, no power loss) and opens the same storage again.
    fn reopen_after_clean_close(&mut self, engine: Self::E) -> Self::E;
}

/// A harness that can also simulate a power loss.
trait CrashHarness: Harness {
    /// The engine a restart after power loss would find.
    fn crash(&mut self, engine: Self::E) -> Self::E;
}

struct MemHarness;

impl Harness for MemHarness {
    type E = MemEngine;

    fn open(&mut self) -> MemEngine {
        MemEngine::new()
    }

    fn reopen_after_clean_close(&mut self, engine: MemEngine) -> MemEngine {
        // A clean exit loses nothing the OS was handed: every batch reaches the disk.
        engine.crash_torn(usize::MAX)
    }
}

impl CrashHarness for MemHarness {
    fn crash(&mut self, engine: MemEngine) -> MemEngine {
        engine.crash()
    }
}

/// The write-back layer over the simulation engine: Buffered writes stay staged (so most
/// properties read through the merge of staged changes and stored ones), Sync writes flush.
#[derive(Default)]
struct StagedHarness {
    disk: MemEngine,
}

impl StagedHarness {
    fn layer(&self) -> Staged {
        Staged::new(Arc::new(self.disk.clone()))
    }
}

impl Harness for StagedHarness {
    type E = Staged;

    fn open(&mut self) -> Staged {
        self.disk = MemEngine::new();
        self.layer()
    }

    fn reopen_after_clean_close(&mut self, engine: Staged) -> Staged {
        // A clean close flushes the layer; then the disk keeps every batch it was handed.
        engine.flush(Durability::Buffered).expect("flush on close");
        self.disk = self.disk.crash_torn(usize::MAX);
        self.layer()
    }
}

impl CrashHarness for StagedHarness {
    fn crash(&mut self, engine: Staged) -> Staged {
        drop(engine);
        self.disk = self.disk.crash();
        self.layer()
    }
}

/// The read cache over the simulation engine, caching every space within a budget small
/// enough that the properties with many keys evict entries too.
#[derive(Default)]
struct CachedHarness {
    disk: MemEngine,
}

impl CachedHarness {
    fn layer(&self) -> Cached {
        Cached::new(Arc::new(self.disk.clone()), &Space::ALL, 4096)
    }
}

impl Harness for CachedHarness {
    type E = Cached;

    fn open(&mut self) -> Cached {
        self.disk = MemEngine::new();
        self.layer()
    }

    fn reopen_after_clean_close(&mut self, engine: Cached) -> Cached {
        drop(engine);
        self.disk = self.disk.crash_torn(usize::MAX);
        self.layer()
    }
}

impl CrashHarness for CachedHarness {
    fn crash(&mut self, engine: Cached) -> Cached {
        drop(engine);
        self.disk = self.disk.crash();
        self.layer()
    }
}

#[cfg(not(madsim))]
struct FjallHarness {
    dir: tempfile::TempDir,
}

#[cfg(not(madsim))]
impl FjallHarness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }
}

#[cfg(not(madsim))]
impl Harness for FjallHarness {
    type E = super::fjall::FjallEngine;

    fn open(&mut self) -> Self::E {
        super::fjall::FjallEngine::open(self.dir.path()).expect("open fjall engine")
    }

    fn reopen_after_clean_close(&mut self, engine: Self::E) -> Self::E {
        drop(engine);
        self.open()
    }
}

// ---- helpers ----------------------------------------------------------------------------

fn put(engine: &impl Engine, space: Space, key: &[u8], value: &[u8], durability: Durability) {
    let mut batch = WriteBatch::new();
    batch.put(space, key, value);
    engine.write(batch, durability).expect("write");
}

fn delete(engine: &impl Engine, space: Space, key: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.delete(space, key);
    engine.write(batch, Durability::Sync).expect("write");
}

fn get(engine: &impl Engine, space: Space, key: &[u8]) -> Option<Vec<u8>> {
    engine.get(space, key).expect("get")
}

/// Every `(key, value)` the scan visits, in visiting order.
fn scan(
    engine: &impl Engine,
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

fn scan_keys(
    engine: &impl Engine,
    space: Space,
    start: &[u8],
    end: Option<&[u8]>,
    order: Order,
) -> Vec<Vec<u8>> {
    scan(engine, space, start, end, order)
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn keys(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|k| k.to_vec()).collect()
}

/// Writes each of `list` (value = key) to `space` in one Sync batch.
fn put_all(engine: &impl Engine, space: Space, list: &[&[u8]]) {
    let mut batch = WriteBatch::new();
    for key in list {
        batch.put(space, *key, *key);
    }
    engine.write(batch, Durability::Sync).expect("write");
}

/// `len` bytes that do not compress (a fixed xorshift stream), so disk sizes are honest.
fn incompressible_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

// ---- properties every engine has ----------------------------------------------------------

fn get_put_delete_in_every_space<H: Harness>(h: &mut H) {
    let engine = h.open();
    for space in Space::ALL {
        assert_eq!(get(&engine, space, b"k"), None, "{space:?} starts empty");
        put(&engine, space, b"k", b"v1", Durability::Sync);
        assert_eq!(get(&engine, space, b"k"), Some(b"v1".to_vec()), "{space:?}");
        put(&engine, space, b"k", b"v2", Durability::Buffered);
        assert_eq!(
            get(&engine, space, b"k"),
            Some(b"v2".to_vec()),
            "{space:?} overwrite"
        );
        delete(&engine, space, b"k");
        assert_eq!(get(&engine, space, b"k"), None, "{space:?} after delete");
        delete(&engine, space, b"never-written");
        assert_eq!(
            get(&engine, space, b"never-written"),
            None,
            "{space:?} deleting absent"
        );
    }
}

fn live_bytes_count_the_current_keys_and_values_of_the_spaces_asked<H: Harness>(h: &mut H) {
    let engine = h.open();
    let live = |spaces: &[Space]| engine.live_bytes_of(spaces).expect("live bytes");
    assert_eq!(live(&Space::ALL), 0);
    put(&engine, Space::History, b"k1", &[7; 100], Durability::Sync);
    put(&engine, Space::History, b"k2", &[7; 50], Durability::Sync);
    put(&engine, Space::Meta, b"m", b"v", Durability::Sync);
    put(
        &engine,
        Space::RaftLog,
        b"log",
        &[1; 1000],
        Durability::Sync,
    );
    assert_eq!(live(&[Space::History, Space::Meta]), 102 + 52 + 2);
    put(&engine, Space::History, b"k1", b"small", Durability::Sync);
    delete(&engine, Space::History, b"k2");
    assert_eq!(live(&[Space::History]), 2 + 5);
    assert_eq!(live(&[Space::RaftLog]), 1003);
}

fn empty_value_is_present_not_absent<H: Harness>(h: &mut H) {
    let engine = h.open();
    put(&engine, Space::Meta, b"k", b"", Durability::Sync);
    assert_eq!(get(&engine, Space::Meta, b"k"), Some(Vec::new()));
    assert_eq!(
        scan(&engine, Space::Meta, b"", None, Order::Ascending),
        vec![(b"k".to_vec(), Vec::new())]
    );
}

fn spaces_are_independent<H: Harness>(h: &mut H) {
    let engine = h.open();
    for space in Space::ALL {
        put(
            &engine,
            space,
            b"shared",
            space.name().as_bytes(),
            Durability::Sync,
        );
    }
    delete(&engine, Space::Revisions, b"shared");
    for space in Space::ALL {
        let expected = (space != Space::Revisions).then(|| space.name().as_bytes().to_vec());
        assert_eq!(get(&engine, space, b"shared"), expected, "{space:?}");
        let scanned = scan(&engine, space, b"", None, Order::Ascending);
        let expected_scan: Vec<_> = expected
            .into_iter()
            .map(|v| (b"shared".to_vec(), v))
            .collect();
        assert_eq!(
            scanned, expected_scan,
            "{space:?} scan sees only its own keys"
        );
    }
}

fn scan_ascending_has_inclusive_start_and_exclusive_end<H: Harness>(h: &mut H) {
    let engine = h.open();
    put_all(&engine, Space::History, &[b"a", b"b", b"c", b"d", b"e"]);
    let asc = |start: &[u8], end: Option<&[u8]>| {
        scan_keys(&engine, Space::History, start, end, Order::Ascending)
    };
    assert_eq!(asc(b"b", Some(b"d")), keys(&[b"b", b"c"]));
    assert_eq!(
        asc(b"bb", Some(b"dd")),
        keys(&[b"c", b"d"]),
        "bounds between keys"
    );
    assert_eq!(asc(b"", None), keys(&[b"a", b"b", b"c", b"d", b"e"]));
    assert_eq!(
        asc(b"c", None),
        keys(&[b"c", b"d", b"e"]),
        "no end: to the end of the space"
    );
    assert_eq!(asc(b"", Some(b"c")), keys(&[b"a", b"b"]));
    assert_eq!(
        asc(b"e", Some(b"e\0")),
        keys(&[b"e"]),
        "smallest range holding one key"
    );
    let with_values = scan(&engine, Space::History, b"a", Some(b"b"), Order::Ascending);
    assert_eq!(
        with_values,
        vec![(b"a".to_vec(), b"a".to_vec())],
        "values come with keys"
    );
}

fn scan_descending_has_inclusive_start_and_exclusive_end<H: Harness>(h: &mut H) {
    let engine = h.open();
    put_all(&engine, Space::RaftLog, &[b"a", b"b", b"c", b"d", b"e"]);
    let desc = |start: &[u8], end: Option<&[u8]>| {
        scan_keys(&engine, Space::RaftLog, start, end, Order::Descending)
    };
    assert_eq!(desc(b"b", Some(b"d")), keys(&[b"c", b"b"]));
    assert_eq!(
        desc(b"bb", Some(b"dd")),
        keys(&[b"d", b"c"]),
        "bounds between keys"
    );
    assert_eq!(desc(b"", None), keys(&[b"e", b"d", b"c", b"b", b"a"]));
    assert_eq!(
        desc(b"c", None),
        keys(&[b"e", b"d", b"c"]),
        "no end: from the last key"
    );
    assert_eq!(desc(b"", Some(b"c")), keys(&[b"b", b"a"]));
}

fn scan_of_empty_range_visits_nothing<H: Harness>(h: &mut H) {
    let engine = h.open();
    put_all(&engine, Space::Meta, &[b"a", b"b", b"c"]);
    for order in [Order::Ascending, Order::Descending] {
        assert!(
            scan(&engine, Space::Meta, b"b", Some(b"b"), order).is_empty(),
            "start == end, {order:?}"
        );
        assert!(
            scan(&engine, Space::Meta, b"c", Some(b"a"), order).is_empty(),
            "start > end, {order:?}"
        );
        assert!(
            scan(&engine, Space::Meta, b"bb", Some(b"bc"), order).is_empty(),
            "no key inside, {order:?}"
        );
        assert!(
            scan(&engine, Space::Meta, b"d", None, order).is_empty(),
            "start past last key, {order:?}"
        );
        assert!(
            scan(&engine, Space::RaftState, b"", None, order).is_empty(),
            "empty space, {order:?}"
        );
    }
}

fn scan_stops_at_the_first_break<H: Harness>(h: &mut H) {
    let engine = h.open();
    put_all(&engine, Space::Revisions, &[b"a", b"b", b"c", b"d"]);
    for (order, expected) in [
        (Order::Ascending, keys(&[b"a", b"b"])),
        (Order::Descending, keys(&[b"d", b"c"])),
    ] {
        let mut seen = Vec::new();
        engine
            .scan(Space::Revisions, b"", None, order, &mut |k, _| {
                seen.push(k.to_vec());
                if seen.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("scan");
        assert_eq!(seen, expected, "{order:?}");
    }
}

fn scan_of_many_keys_visits_each_once_in_order<H: Harness>(h: &mut H) {
    let engine = h.open();
    let all: Vec<Vec<u8>> = (0u32..1500).map(|i| i.to_be_bytes().to_vec()).collect();
    let mut batch = WriteBatch::new();
    for key in &all {
        batch.put(Space::RaftLog, key.clone(), key.clone());
    }
    engine.write(batch, Durability::Sync).expect("write");

    assert_eq!(
        scan_keys(&engine, Space::RaftLog, b"", None, Order::Ascending),
        all
    );
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(
        scan_keys(&engine, Space::RaftLog, b"", None, Order::Descending),
        reversed
    );

    let (start, end) = (300u32.to_be_bytes(), 1300u32.to_be_bytes());
    let middle = scan_keys(
        &engine,
        Space::RaftLog,
        &start,
        Some(&end),
        Order::Descending,
    );
    assert_eq!(middle, reversed[200..1200].to_vec());

    let mut visited = 0;
    engine
        .scan(Space::RaftLog, b"", None, Order::Ascending, &mut |_, _| {
            visited += 1;
            if visited == 700 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
    assert_eq!(visited, 700, "a break deep into a long scan still stops it");
}

fn visitor_may_read_the_engine_during_a_scan<H: Harness>(h: &mut H) {
    let engine = h.open();
    put_all(&engine, Space::Revisions, &[b"1", b"2"]);
    put_all(&engine, Space::History, &[b"1"]);
    let mut found = Vec::new();
    engine
        .scan(
            Space::Revisions,
            b"",
            None,
            Order::Ascending,
            &mut |k, _| {
                found.push(
                    engine
                        .get(Space::History, k)
                        .expect("get inside scan")
                        .is_some(),
                );
                ControlFlow::Continue(())
            },
        )
        .expect("scan");
    assert_eq!(found, vec![true, false]);
}

fn scan_reads_the_state_from_when_it_began<H: Harness>(h: &mut H) {
    let engine = h.open();
    put_all(&engine, Space::History, &[b"a", b"b", b"c"]);
    for order in [Order::Ascending, Order::Descending] {
        let mut seen = Vec::new();
        engine
            .scan(Space::History, b"", None, order, &mut |k, v| {
                if seen.is_empty() {
                    let mut batch = WriteBatch::new();
                    batch.put(Space::History, b"b", b"changed");
                    batch.put(Space::History, b"bb", b"inserted");
                    batch.delete(Space::History, b"a");
                    batch.delete(Space::History, b"c");
                    engine
                        .write(batch, Durability::Buffered)
                        .expect("write inside scan");
                }
                seen.push((k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })
            .expect("scan");
        let mut expected = vec![
            (b"a".to_vec(), b"a".to_vec()),
            (b"b".to_vec(), b"b".to_vec()),
            (b"c".to_vec(), b"c".to_vec()),
        ];
        if order == Order::Descending {
            expected.reverse();
        }
        assert_eq!(
            seen, expected,
            "{order:?}: a write during the scan is not seen by it"
        );
        assert_eq!(
            get(&engine, Space::History, b"bb"),
            Some(b"inserted".to_vec()),
            "but it happened"
        );
        put_all(&engine, Space::History, &[b"a", b"b", b"c"]);
        delete(&engine, Space::History, b"bb");
    }
}

fn batch_applies_across_spaces_together<H: Harness>(h: &mut H) {
    let engine = h.open();
    put(&engine, Space::Meta, b"old", b"x", Durability::Sync);
    let mut batch = WriteBatch::new();
    batch.put(Space::History, b"k\x00\x01", b"v");
    batch.put(Space::Revisions, b"\x01", b"k");
    batch.delete(Space::Meta, b"old");
    batch.put(Space::Meta, b"consistent_index", b"7");
    engine.write(batch, Durability::Buffered).expect("write");
    assert_eq!(
        get(&engine, Space::History, b"k\x00\x01"),
        Some(b"v".to_vec())
    );
    assert_eq!(get(&engine, Space::Revisions, b"\x01"), Some(b"k".to_vec()));
    assert_eq!(get(&engine, Space::Meta, b"old"), None);
    assert_eq!(
        get(&engine, Space::Meta, b"consistent_index"),
        Some(b"7".to_vec())
    );
}

fn invalid_batch_fails_whole_and_applies_nothing<H: Harness>(h: &mut H) {
    let engine = h.open();
    let too_long = vec![b'k'; MAX_KEY_BYTES + 1];
    for (bad_key, what) in [(Vec::new(), "empty key"), (too_long, "key over the limit")] {
        let mut batch = WriteBatch::new();
        batch.put(Space::History, b"good", b"v");
        batch.put(Space::Meta, bad_key, b"v");
        let result = engine.write(batch, Durability::Sync);
        assert!(
            matches!(result, Err(StorageError::Io(_))),
            "{what}: {result:?}"
        );
        assert_eq!(
            get(&engine, Space::History, b"good"),
            None,
            "{what}: nothing applied"
        );
    }
    let longest = vec![b'k'; MAX_KEY_BYTES];
    put(&engine, Space::History, &longest, b"v", Durability::Sync);
    assert_eq!(
        get(&engine, Space::History, &longest),
        Some(b"v".to_vec()),
        "the limit itself is allowed"
    );
}

fn put_then_delete_in_one_batch_deletes<H: Harness>(h: &mut H) {
    let engine = h.open();
    put(
        &engine,
        Space::History,
        b"existing",
        b"old",
        Durability::Sync,
    );
    let mut batch = WriteBatch::new();
    batch.put(Space::History, b"new", b"v");
    batch.delete(Space::History, b"new");
    batch.put(Space::History, b"existing", b"newer");
    batch.delete(Space::History, b"existing");
    engine.write(batch, Durability::Sync).expect("write");
    assert_eq!(get(&engine, Space::History, b"new"), None);
    assert_eq!(get(&engine, Space::History, b"existing"), None);
    assert!(scan(&engine, Space::History, b"", None, Order::Ascending).is_empty());
}

fn delete_then_put_in_one_batch_keeps_the_put<H: Harness>(h: &mut H) {
    let engine = h.open();
    put(
        &engine,
        Space::History,
        b"existing",
        b"old",
        Durability::Sync,
    );
    let mut batch = WriteBatch::new();
    batch.delete(Space::History, b"existing");
    batch.put(Space::History, b"existing", b"new");
    batch.delete(Space::History, b"fresh");
    batch.put(Space::History, b"fresh", b"v");
    batch.put(Space::History, b"twice", b"first");
    batch.put(Space::History, b"twice", b"second");
    engine.write(batch, Durability::Sync).expect("write");
    assert_eq!(
        get(&engine, Space::History, b"existing"),
        Some(b"new".to_vec())
    );
    assert_eq!(get(&engine, Space::History, b"fresh"), Some(b"v".to_vec()));
    assert_eq!(
        get(&engine, Space::History, b"twice"),
        Some(b"second".to_vec()),
        "last put wins"
    );
}

fn in_batch_order_survives_reopen<H: Harness>(h: &mut H) {
    let engine = h.open();
    let mut batch = WriteBatch::new();
    batch.put(Space::History, b"deleted", b"v");
    batch.delete(Space::History, b"deleted");
    batch.delete(Space::History, b"kept");
    batch.put(Space::History, b"kept", b"v");
    engine.write(batch, Durability::Sync).expect("write");
    let engine = h.reopen_after_clean_close(engine);
    assert_eq!(get(&engine, Space::History, b"deleted"), None);
    assert_eq!(get(&engine, Space::History, b"kept"), Some(b"v".to_vec()));
}

fn binary_keys_order_bytewise<H: Harness>(h: &mut H) {
    let engine = h.open();
    let sorted: [&[u8]; 8] = [
        b"\x00",
        b"\x00\x00",
        b"\x00\xFF",
        b"\x01",
        b"\x7F\xFF\x00",
        b"\xFF",
        b"\xFF\x00",
        b"\xFF\xFF",
    ];
    let mut shuffled = sorted;
    shuffled.reverse();
    shuffled.swap(1, 5);
    put_all(&engine, Space::History, &shuffled);
    for key in sorted {
        assert_eq!(
            get(&engine, Space::History, key),
            Some(key.to_vec()),
            "{key:?}"
        );
    }
    assert_eq!(get(&engine, Space::History, b"\x00\x00\x00"), None);
    assert_eq!(
        scan_keys(&engine, Space::History, b"", None, Order::Ascending),
        keys(&sorted)
    );
    assert_eq!(
        scan_keys(
            &engine,
            Space::History,
            b"\x00",
            Some(b"\x01"),
            Order::Ascending
        ),
        keys(&sorted[..3])
    );
    assert_eq!(
        scan_keys(
            &engine,
            Space::History,
            b"\xFF",
            Some(b"\xFF\xFF"),
            Order::Descending
        ),
        keys(&[b"\xFF\x00", b"\xFF"])
    );
    assert_eq!(
        scan_keys(&engine, Space::History, b"\x7F", None, Order::Descending),
        keys(&[b"\xFF\xFF", b"\xFF\x00", b"\xFF", b"\x7F\xFF\x00"])
    );
}

fn large_value_round_trips_and_survives_reopen<H: Harness>(h: &mut H) {
    const MIB: usize = 1024 * 1024;
    let engine = h.open();
    let value = incompressible_bytes(MIB);
    put(&engine, Space::RaftLog, b"big", &value, Durability::Sync);
    put(&engine, Space::RaftLog, b"small", b"s", Durability::Sync);
    assert_eq!(
        get(&engine, Space::RaftLog, b"big").as_deref(),
        Some(value.as_slice())
    );
    assert!(
        engine.size_bytes() >= MIB as u64,
        "size_bytes {} counts the 1 MiB value",
        engine.size_bytes()
    );
    let engine = h.reopen_after_clean_close(engine);
    assert_eq!(
        get(&engine, Space::RaftLog, b"big").as_deref(),
        Some(value.as_slice())
    );
    let scanned = scan(&engine, Space::RaftLog, b"", None, Order::Descending);
    assert_eq!(
        scanned,
        vec![(b"small".to_vec(), b"s".to_vec()), (b"big".to_vec(), value)]
    );
}

fn clean_close_keeps_every_write<H: Harness>(h: &mut H) {
    let engine = h.open();
    for space in Space::ALL {
        put(
            &engine,
            space,
            b"synced",
            space.name().as_bytes(),
            Durability::Sync,
        );
        put(&engine, space, b"buffered", b"b", Durability::Buffered);
    }
    delete(&engine, Space::Meta, b"synced");
    let engine = h.reopen_after_clean_close(engine);
    for space in Space::ALL {
        let expected = (space != Space::Meta).then(|| space.name().as_bytes().to_vec());
        assert_eq!(get(&engine, space, b"synced"), expected, "{space:?}");
        assert_eq!(
            get(&engine, space, b"buffered"),
            Some(b"b".to_vec()),
            "{space:?}"
        );
    }
    put(&engine, Space::Meta, b"after", b"reopen", Durability::Sync);
    let engine = h.reopen_after_clean_close(engine);
    assert_eq!(
        get(&engine, Space::Meta, b"after"),
        Some(b"reopen".to_vec()),
        "a reopened engine accepts writes"
    );
}

fn sync_of_nothing_succeeds<H: Harness>(h: &mut H) {
    let engine = h.open();
    engine.sync().expect("sync of an empty engine");
    engine
        .write(WriteBatch::new(), Durability::Sync)
        .expect("empty Sync batch");
    engine
        .write(WriteBatch::new(), Durability::Buffered)
        .expect("empty Buffered batch");
    assert!(scan(&engine, Space::Meta, b"", None, Order::Ascending).is_empty());
}

// ---- crash properties (engines whose harness can simulate power loss) ----------------------

fn crash_drops_unsynced_batches_and_keeps_synced_ones<H: CrashHarness>(h: &mut H) {
    let engine = h.open();
    put(&engine, Space::RaftLog, b"1", b"synced", Durability::Sync);
    put(
        &engine,
        Space::RaftLog,
        b"2",
        b"buffered",
        Durability::Buffered,
    );
    put(
        &engine,
        Space::History,
        b"k",
        b"buffered",
        Durability::Buffered,
    );
    let engine = h.crash(engine);
    assert_eq!(get(&engine, Space::RaftLog, b"1"), Some(b"synced".to_vec()));
    assert_eq!(get(&engine, Space::RaftLog, b"2"), None);
    assert_eq!(get(&engine, Space::History, b"k"), None);
}

fn sync_write_makes_earlier_buffered_writes_durable<H: CrashHarness>(h: &mut H) {
    let engine = h.open();
    put(
        &engine,
        Space::History,
        b"a",
        b"buffered",
        Durability::Buffered,
    );
    put(&engine, Space::Meta, b"b", b"synced", Durability::Sync);
    put(&engine, Space::History, b"c", b"lost", Durability::Buffered);
    let engine = h.crash(engine);
    assert_eq!(
        get(&engine, Space::History, b"a"),
        Some(b"buffered".to_vec())
    );
    assert_eq!(get(&engine, Space::Meta, b"b"), Some(b"synced".to_vec()));
    assert_eq!(get(&engine, Space::History, b"c"), None);
}

fn explicit_sync_makes_earlier_writes_durable<H: CrashHarness>(h: &mut H) {
    let engine = h.open();
    put(&engine, Space::History, b"a", b"1", Durability::Buffered);
    engine.sync().expect("sync");
    put(&engine, Space::History, b"a", b"2", Durability::Buffered);
    let engine = h.crash(engine);
    assert_eq!(
        get(&engine, Space::History, b"a"),
        Some(b"1".to_vec()),
        "the synced value, not the later one"
    );
}

fn empty_sync_batch_makes_earlier_writes_durable<H: CrashHarness>(h: &mut H) {
    let engine = h.open();
    put(
        &engine,
        Space::RaftState,
        b"hard",
        b"s",
        Durability::Buffered,
    );
    engine
        .write(WriteBatch::new(), Durability::Sync)
        .expect("empty Sync batch");
    let engine = h.crash(engine);
    assert_eq!(get(&engine, Space::RaftState, b"hard"), Some(b"s".to_vec()));
}

fn crash_never_keeps_half_a_batch<H: CrashHarness>(h: &mut H) {
    let engine = h.open();
    let mut synced = WriteBatch::new();
    synced.put(Space::RaftLog, b"e1", b"entry");
    synced.put(Space::RaftState, b"hs", b"term1");
    engine.write(synced, Durability::Sync).expect("write");
    let mut unsynced = WriteBatch::new();
    unsynced.put(Space::History, b"k", b"v");
    unsynced.delete(Space::RaftLog, b"e1");
    unsynced.put(Space::RaftState, b"hs", b"term2");
    engine.write(unsynced, Durability::Buffered).expect("write");
    let engine = h.crash(engine);
    assert_eq!(get(&engine, Space::RaftLog, b"e1"), Some(b"entry".to_vec()));
    assert_eq!(
        get(&engine, Space::RaftState, b"hs"),
        Some(b"term1".to_vec())
    );
    assert_eq!(get(&engine, Space::History, b"k"), None);
}

fn crash_then_crash_again_keeps_the_same_state<H: CrashHarness>(h: &mut H) {
    let engine = h.open();
    put(&engine, Space::Meta, b"a", b"1", Durability::Sync);
    let engine = h.crash(engine);
    put(&engine, Space::Meta, b"b", b"2", Durability::Buffered);
    let engine = h.crash(engine);
    assert_eq!(
        scan(&engine, Space::Meta, b"", None, Order::Ascending),
        vec![(b"a".to_vec(), b"1".to_vec())]
    );
    put(&engine, Space::Meta, b"c", b"3", Durability::Sync);
    let engine = h.crash(engine);
    assert_eq!(
        scan_keys(&engine, Space::Meta, b"", None, Order::Ascending),
        keys(&[b"a", b"c"])
    );
}

/// One `#[test]` per property per engine: `storage::conformance::<engine>::<property>`.
macro_rules! engine_suite {
    ($(#[$attr:meta])* $engine:ident, $harness:expr, [$($property:ident),* $(,)?]) => {
        $(#[$attr])*
        mod $engine {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $property() {
                    super::$property(&mut $harness);
                }
            )*
        }
    };
}

macro_rules! every_engine {
    ($(#[$attr:meta])* $engine:ident, $harness:expr) => {
        engine_suite!($(#[$attr])* $engine, $harness, [
            get_put_delete_in_every_space,
            live_bytes_count_the_current_keys_and_values_of_the_spaces_asked,
            empty_value_is_present_not_absent,
            spaces_are_independent,
            scan_ascending_has_inclusive_start_and_exclusive_end,
            scan_descending_has_inclusive_start_and_exclusive_end,
            scan_of_empty_range_visits_nothing,
            scan_stops_at_the_first_break,
            scan_of_many_keys_visits_each_once_in_order,
            visitor_may_read_the_engine_during_a_scan,
            scan_reads_the_state_from_when_it_began,
            batch_applies_across_spaces_together,
            invalid_batch_fails_whole_and_applies_nothing,
            put_then_delete_in_one_batch_deletes,
            delete_then_put_in_one_batch_keeps_the_put,
            in_batch_order_survives_reopen,
            binary_keys_order_bytewise,
            large_value_round_trips_and_survives_reopen,
            clean_close_keeps_every_write,
            sync_of_nothing_succeeds,
        ]);
    };
}

every_engine!(mem, MemHarness);
every_engine!(staged, StagedHarness::default());
every_engine!(cached, CachedHarness::default());
every_engine!(
    #[cfg(not(madsim))]
    fjall,
    FjallHarness::new()
);
engine_suite!(
    mem_crash,
    MemHarness,
    [
        crash_drops_unsynced_batches_and_keeps_synced_ones,
        sync_write_makes_earlier_buffered_writes_durable,
        explicit_sync_makes_earlier_writes_durable,
        empty_sync_batch_makes_earlier_writes_durable,
        crash_never_keeps_half_a_batch,
        crash_then_crash_again_keeps_the_same_state,
    ]
);
engine_suite!(
    staged_crash,
    StagedHarness::default(),
    [
        crash_drops_unsynced_batches_and_keeps_synced_ones,
        sync_write_makes_earlier_buffered_writes_durable,
        explicit_sync_makes_earlier_writes_durable,
        empty_sync_batch_makes_earlier_writes_durable,
        crash_never_keeps_half_a_batch,
        crash_then_crash_again_keeps_the_same_state,
    ]
);

engine_suite!(
    cached_crash,
    CachedHarness::default(),
    [
        crash_drops_unsynced_batches_and_keeps_synced_ones,
        sync_write_makes_earlier_buffered_writes_durable,
        explicit_sync_makes_earlier_writes_durable,
        empty_sync_batch_makes_earlier_writes_durable,
        crash_never_keeps_half_a_batch,
        crash_then_crash_again_keeps_the_same_state,
    ]
);

// ---- faults only the simulation engine can inject ----------------------------------------

/// Writes three Buffered batches after one synced batch. Batch `i` (1-based) sets `last` to
/// `i`, adds `only{i}` and deletes `only{i-1}`, so each prefix of them leaves a distinct state.
fn three_unsynced_batches() -> MemEngine {
    let engine = MemEngine::new();
    let mut base = WriteBatch::new();
    base.put(Space::Meta, b"last", b"0");
    base.put(Space::History, b"only0", b"x");
    engine.write(base, Durability::Sync).expect("write");
    for i in 1..=3u8 {
        let mut batch = WriteBatch::new();
        batch.put(Space::Meta, b"last", [b'0' + i]);
        batch.put(Space::History, [b'o', b'n', b'l', b'y', b'0' + i], b"x");
        batch.delete(Space::History, [b'o', b'n', b'l', b'y', b'0' + i - 1]);
        engine.write(batch, Durability::Buffered).expect("write");
    }
    engine
}

mod mem_faults {
    use super::*;

    #[test]
    fn crash_torn_keeps_exactly_a_prefix_of_unsynced_batches() {
        let engine = three_unsynced_batches();
        assert_eq!(engine.unsynced_batches(), 3);
        for kept in 0..=3u8 {
            let restarted = engine.crash_torn(usize::from(kept));
            assert_eq!(
                get(&restarted, Space::Meta, b"last"),
                Some(vec![b'0' + kept]),
                "kept {kept}"
            );
            let history = scan_keys(&restarted, Space::History, b"", None, Order::Ascending);
            assert_eq!(
                history,
                vec![vec![b'o', b'n', b'l', b'y', b'0' + kept]],
                "kept {kept}: whole batches only"
            );
            assert_eq!(restarted.unsynced_batches(), 0, "what survived is durable");
        }
        let all = engine.crash_torn(100);
        assert_eq!(
            get(&all, Space::Meta, b"last"),
            Some(b"3".to_vec()),
            "more than written keeps all"
        );
    }

    #[test]
    fn crash_torn_result_is_durable() {
        let restarted = three_unsynced_batches().crash_torn(2);
        let again = restarted.crash();
        assert_eq!(get(&again, Space::Meta, b"last"), Some(b"2".to_vec()));
    }

    #[test]
    fn crash_leaves_the_crashed_engine_unchanged() {
        let engine = three_unsynced_batches();
        let _restarted = engine.crash();
        assert_eq!(get(&engine, Space::Meta, b"last"), Some(b"3".to_vec()));
        assert_eq!(engine.unsynced_batches(), 3);
        engine.sync().expect("sync");
        assert_eq!(
            get(&engine.crash(), Space::Meta, b"last"),
            Some(b"3".to_vec())
        );
    }

    #[test]
    fn clones_share_one_disk() {
        let engine = MemEngine::new();
        let clone = engine.clone();
        put(&clone, Space::Meta, b"k", b"v", Durability::Buffered);
        assert_eq!(get(&engine, Space::Meta, b"k"), Some(b"v".to_vec()));
        engine.sync().expect("sync");
        assert_eq!(get(&clone.crash(), Space::Meta, b"k"), Some(b"v".to_vec()));
    }

    #[test]
    fn failed_sync_write_reports_sync_error_and_stays_non_durable() {
        let engine = MemEngine::new();
        put(&engine, Space::RaftLog, b"1", b"durable", Durability::Sync);
        engine.fail_next_sync();
        let mut batch = WriteBatch::new();
        batch.put(Space::RaftLog, b"2", b"unknown");
        let result = engine.write(batch, Durability::Sync);
        assert!(matches!(result, Err(StorageError::Sync(_))), "{result:?}");
        assert_eq!(
            get(&engine, Space::RaftLog, b"2"),
            Some(b"unknown".to_vec()),
            "written, not synced"
        );
        let restarted = engine.crash();
        assert_eq!(
            get(&restarted, Space::RaftLog, b"1"),
            Some(b"durable".to_vec())
        );
        assert_eq!(get(&restarted, Space::RaftLog, b"2"), None);
    }

    #[test]
    fn failed_explicit_sync_reports_sync_error_and_stays_non_durable() {
        let engine = MemEngine::new();
        put(&engine, Space::History, b"k", b"v", Durability::Buffered);
        engine.fail_next_sync();
        assert!(matches!(engine.sync(), Err(StorageError::Sync(_))));
        assert_eq!(engine.unsynced_batches(), 1);
        assert_eq!(get(&engine.crash(), Space::History, b"k"), None);
    }

    #[test]
    fn injected_sync_failure_fires_once_and_only_on_a_sync() {
        let engine = MemEngine::new();
        engine.fail_next_sync();
        put(&engine, Space::History, b"a", b"1", Durability::Buffered);
        assert!(
            matches!(engine.sync(), Err(StorageError::Sync(_))),
            "buffered writes do not consume it"
        );
        put(&engine, Space::History, b"b", b"2", Durability::Sync);
        let restarted = engine.crash();
        assert_eq!(
            get(&restarted, Space::History, b"a"),
            Some(b"1".to_vec()),
            "a later sync covers it"
        );
        assert_eq!(get(&restarted, Space::History, b"b"), Some(b"2".to_vec()));
    }

    #[test]
    fn size_bytes_is_the_sum_of_visible_key_and_value_lengths() {
        let engine = MemEngine::new();
        assert_eq!(engine.size_bytes(), 0);
        put(
            &engine,
            Space::History,
            b"key",
            b"value",
            Durability::Buffered,
        );
        put(&engine, Space::Meta, b"key", b"v", Durability::Buffered);
        assert_eq!(engine.size_bytes(), 8 + 4);
        put(
            &engine,
            Space::History,
            b"key",
            b"longer-value",
            Durability::Buffered,
        );
        assert_eq!(
            engine.size_bytes(),
            15 + 4,
            "an overwrite replaces the old size"
        );
        delete(&engine, Space::Meta, b"key");
        delete(&engine, Space::Meta, b"absent");
        assert_eq!(engine.size_bytes(), 15);
        put(&engine, Space::Meta, b"lost", b"x", Durability::Buffered);
        assert_eq!(
            engine.crash().size_bytes(),
            15,
            "a crash forgets the unsynced bytes"
        );
    }
}
