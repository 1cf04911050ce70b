//! The production engine: one fjall database per data directory, one keyspace per [`Space`].
//!
//! Atomicity across spaces comes from fjall's write batch: a batch is one journal record, so
//! recovery replays it whole or not at all. A [`Durability::Sync`] batch is journalled with
//! `PersistMode::SyncData` (fdatasync, as etcd syncs its WAL: the data and the metadata needed
//! to read it back, without a journal commit for a mere mtime change) before it becomes
//! visible; a [`Durability::Buffered`] one with
//! `PersistMode::Buffer` (handed to the OS, no fsync), so it survives a process kill but may be
//! lost by a power loss until the next fsync, which the contract in [`super`] allows.
//!
//! Reads go through a fjall snapshot, so a reader sees each batch entirely or not at all, even
//! while it is being applied. Opening replays only the journal, bounded by
//! [`MAX_JOURNAL_BYTES`], and reads table metadata, never table data: restart time does not
//! grow with the size of the database (etcd, by contrast, rebuilds an in-memory index of every
//! key at start).
//!
//! Never built under madsim: fjall runs its own background threads.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fjall::{Database, Guard, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use super::mem::check_batch;
use super::{Durability, Engine, Order, Space, StorageError, Visitor, WriteBatch};

/// Upper bound on journal bytes kept before fjall flushes memtables to tables; it is also the
/// most a restart replays. fjall's minimum (its default is 512 MiB).
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes of writes a space's memtable holds before it is sealed and flushed into a table
/// (fjall's default is 64 MiB per keyspace). Memtables are the largest memory item under a
/// sustained write load: every hot space (history, revisions, the raft log) holds its full
/// memtable plus the sealed ones being flushed, and a skiplist takes about twice the bytes
/// it counts. 8 MiB is the low end of fjall's recommended 8-64 MiB; flushing more often
/// writes the same bytes in smaller tables. Databases created before this bound kept
/// fjall's 64 MiB in their keyspace options, so [`FjallEngine::write`] also enforces it.
pub const MAX_MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

/// fjall's background threads (memtable flushes and compactions) on a machine with
/// `cores` cores: one on two cores or fewer, fjall's default (`min(cores, 4)`) above.
///
/// With more than one, fjall's first worker leaves compactions to the others so as to stay
/// free for flushes: it puts a compaction request it receives back on the queue and takes
/// the next message, which is the same request while the other workers are busy. It spins
/// so for as long as a flush or compaction runs elsewhere. On two cores that spin took a
/// share of a core from the foreground: 9% of three members' CPU under a sustained put
/// load (`PRELOAD=60000 bench/profile.sh`), in `worker_tick` and the queue's `send`.
fn worker_threads(cores: usize) -> usize {
    if cores <= 2 { 1 } else { cores.min(4) }
}

/// A handle to an open fjall database; clones share it. The database closes (and fsyncs its
/// journal) when the last clone is dropped.
#[derive(Clone)]
pub struct FjallEngine {
    db: Database,
    /// Indexed by position in [`Space::ALL`].
    keyspaces: [Keyspace; Space::ALL.len()],
}

impl std::fmt::Debug for FjallEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallEngine").finish_non_exhaustive()
    }
}

impl FjallEngine {
    /// Opens the database in directory `path`, creating it (and every space) if absent.
    /// A directory that cannot be opened or recovered yields [`StorageError::Open`] naming
    /// `path` and fjall's reason.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let fail = |reason: String| StorageError::Open {
            path: path.display().to_string(),
            reason,
        };
        if path.as_os_str().is_empty() {
            return Err(fail("empty path".to_owned()));
        }
        // fjall reports bad directories as errors, but a few of its recovery checks are
        // `expect`s; a damaged directory must still be a clean refusal to start, not a panic.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let db = Database::builder(path)
                .max_journaling_size(MAX_JOURNAL_BYTES)
                .worker_threads(worker_threads(cores))
                .open()?;
            let keyspaces = open_keyspaces(&db)?;
            Ok::<_, fjall::Error>(Self { db, keyspaces })
        }));
        match opened {
            Ok(Ok(engine)) => Ok(engine),
            Ok(Err(error)) => Err(fail(error.to_string())),
            Err(panic) => Err(fail(format!(
                "fjall panicked while opening: {}",
                panic_text(&*panic)
            ))),
        }
    }

    fn keyspace(&self, space: Space) -> &Keyspace {
        &self.keyspaces[slot(space)]
    }

    /// Seals the active memtable of every space `batch` wrote whose memtable outgrew
    /// [`MAX_MEMTABLE_BYTES`] (fjall then flushes it in the background). fjall checks its
    /// own per-keyspace limit after each batch too, but a keyspace created by an earlier
    /// version keeps the 64 MiB it was created with. The batch is written by then: a
    /// failure to seal is only logged (fjall seals at its own limit anyway).
    fn bound_memtables(&self, batch: &WriteBatch) {
        use fjall::AbstractTree as _;
        let mut written = [false; Space::ALL.len()];
        for op in batch.ops() {
            written[slot(op.space)] = true;
        }
        for space in Space::ALL {
            let keyspace = self.keyspace(space);
            if written[slot(space)]
                && keyspace.tree.active_memtable().size() > MAX_MEMTABLE_BYTES
                && let Err(error) = keyspace.rotate_memtable()
            {
                tracing::warn!(space = space.name(), %error, "cannot seal memtable");
            }
        }
    }

    /// Makes every write durable and moves every memtable into tables, so that the journals
    /// holding them are dropped and the next open has nothing to replay. Called on a
    /// graceful shutdown (a restart after SIGTERM then opens at once) and by defragment.
    pub fn flush_memtables(&self) -> Result<(), StorageError> {
        self.sync()?;
        for space in Space::ALL {
            self.keyspace(space)
                .rotate_memtable_and_wait()
                .map_err(|error| {
                    StorageError::Io(format!("flushing space {}: {error}", space.name()))
                })?;
        }
        Ok(())
    }
}

/// The position of `space` in [`Space::ALL`].
fn slot(space: Space) -> usize {
    let index = space as usize;
    debug_assert_eq!(
        Space::ALL[index],
        space,
        "Space::ALL must list spaces in declaration order"
    );
    index
}

fn open_keyspaces(db: &Database) -> Result<[Keyspace; Space::ALL.len()], fjall::Error> {
    let [a, b, c, d, e, f, g] = Space::ALL.map(|space| {
        db.keyspace(space.name(), || {
            KeyspaceCreateOptions::default().max_memtable_size(MAX_MEMTABLE_BYTES)
        })
    });
    Ok([a?, b?, c?, d?, e?, f?, g?])
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        return (*text).to_owned();
    }
    if let Some(text) = panic.downcast_ref::<String>() {
        return text.clone();
    }
    "unknown panic payload".to_owned()
}

fn read_error(space: Space, error: fjall::Error) -> StorageError {
    StorageError::Io(format!("reading space {}: {error}", space.name()))
}

/// Visits `entries` until the visitor breaks or an entry cannot be read.
fn visit_entries(
    space: Space,
    entries: impl Iterator<Item = Guard>,
    visit: &mut Visitor<'_>,
) -> Result<(), StorageError> {
    for entry in entries {
        let (key, value) = entry.into_inner().map_err(|e| read_error(space, e))?;
        if let ControlFlow::Break(()) = visit(&key, &value) {
            break;
        }
    }
    Ok(())
}

impl Engine for FjallEngine {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self
            .db
            .snapshot()
            .get(self.keyspace(space), key)
            .map_err(|e| read_error(space, e))?;
        Ok(value.map(|v| v.to_vec()))
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
        let bounds = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let entries = self
            .db
            .snapshot()
            .range::<&[u8], _>(self.keyspace(space), bounds);
        match order {
            Order::Ascending => visit_entries(space, entries, visit),
            Order::Descending => visit_entries(space, entries.rev(), visit),
        }
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        check_batch(&batch)?;
        if batch.is_empty() {
            // fjall commits an empty batch without touching the journal; a Sync write must
            // still make every earlier write durable.
            return match durability {
                Durability::Sync => self.sync(),
                Durability::Buffered => Ok(()),
            };
        }
        let mode = match durability {
            Durability::Sync => PersistMode::SyncData,
            Durability::Buffered => PersistMode::Buffer,
        };
        let mut fjall_batch = self.db.batch().durability(Some(mode));
        // All items of a fjall batch share one sequence number, so two changes to the same key
        // tie; fjall happens to let the later memtable insert win, but does not promise it.
        // Keeping only the last change per key is what applying the batch in order means.
        for ((space, key), value) in last_change_per_key(&batch) {
            match value {
                Some(value) => fjall_batch.insert(self.keyspace(space), key, value),
                None => fjall_batch.remove(self.keyspace(space), key),
            }
        }
        fjall_batch.commit().map_err(|error| match durability {
            // The journal may or may not hold the batch: the caller must stop, not retry.
            Durability::Sync => StorageError::Sync(error.to_string()),
            Durability::Buffered => StorageError::Io(format!("writing batch: {error}")),
        })?;
        self.bound_memtables(&batch);
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.db
            .persist(PersistMode::SyncData)
            .map_err(|e| StorageError::Sync(e.to_string()))
    }

    /// The tables of every keyspace plus what the memtables hold (written, not flushed
    /// yet). The journal is left out, as etcd leaves its WAL out of its db size: fjall's
    /// own `disk_space` counts the active journal at its preallocated 64 MiB, which would
    /// put every member over a small `--quota-backend-bytes` at once, and no
    /// defragmentation could shrink it.
    fn size_bytes(&self) -> u64 {
        self.size_bytes_of(&Space::ALL)
    }

    /// The tables and active memtables of `spaces` (a sealed memtable, about to be flushed
    /// into a table, is not counted meanwhile).
    fn size_bytes_of(&self, spaces: &[Space]) -> u64 {
        use fjall::AbstractTree as _;
        spaces
            .iter()
            .map(|space| {
                let keyspace = self.keyspace(*space);
                keyspace.disk_space() + keyspace.tree.active_memtable().size()
            })
            .sum()
    }

    /// Flushes every memtable (so the journals holding them can be dropped), then rewrites
    /// each keyspace's tables in one major compaction, which drops deleted and overwritten
    /// versions no reader can see any more.
    fn defragment(&self) -> Result<(), StorageError> {
        let failed = |space: Space, error: fjall::Error| {
            StorageError::Io(format!("defragmenting space {}: {error}", space.name()))
        };
        self.flush_memtables()?;
        for space in Space::ALL {
            self.keyspace(space)
                .major_compact()
                .map_err(|e| failed(space, e))?;
        }
        Ok(())
    }
}

/// The final state each touched key has after applying `batch` in order.
fn last_change_per_key(batch: &WriteBatch) -> BTreeMap<(Space, &[u8]), Option<&[u8]>> {
    batch
        .ops()
        .iter()
        .map(|op| ((op.space, op.key.as_slice()), op.value.as_deref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_error(path: &Path) -> (String, String) {
        match FjallEngine::open(path) {
            Err(StorageError::Open { path, reason }) => (path, reason),
            other => panic!("expected an Open error, got {other:?}"),
        }
    }

    fn written_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = FjallEngine::open(dir.path()).expect("open");
        let mut batch = WriteBatch::new();
        batch.put(Space::Meta, b"k", b"v");
        engine.write(batch, Durability::Sync).expect("write");
        dir
    }

    #[test]
    fn open_on_a_regular_file_is_an_open_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"x").expect("write file");
        let (path, reason) = open_error(&file);
        assert_eq!(path, file.display().to_string());
        assert!(!reason.is_empty());
    }

    #[test]
    fn open_with_a_damaged_version_marker_is_an_open_error() {
        let dir = written_dir();
        std::fs::write(dir.path().join("version"), b"not a fjall version header").expect("damage");
        let (path, reason) = open_error(dir.path());
        assert_eq!(path, dir.path().display().to_string());
        assert!(
            reason.contains("InvalidVersion"),
            "fjall's reason is passed on: {reason}"
        );
    }

    #[test]
    fn second_open_of_a_directory_in_use_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _first = FjallEngine::open(dir.path()).expect("open");
        let (path, reason) = open_error(dir.path());
        assert_eq!(path, dir.path().display().to_string());
        assert!(reason.contains("Locked"), "{reason}");
    }

    #[test]
    fn defragment_gives_back_the_space_of_deleted_data() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = FjallEngine::open(dir.path()).expect("open");
        // Incompressible values: a compressed run of one byte would measure nothing.
        let mut state = 0x9E37_79B9_u32;
        let mut noise = || {
            (0..64 * 1024)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect::<Vec<u8>>()
        };
        for i in 0..64u32 {
            let mut batch = WriteBatch::new();
            batch.put(Space::History, i.to_be_bytes(), noise());
            engine.write(batch, Durability::Buffered).expect("write");
        }
        engine.defragment().expect("defragment");
        let full = engine.size_bytes();
        for i in 0..64u32 {
            let mut batch = WriteBatch::new();
            batch.delete(Space::History, i.to_be_bytes());
            engine.write(batch, Durability::Buffered).expect("delete");
        }
        engine.defragment().expect("defragment");
        let emptied = engine.size_bytes();
        assert!(
            emptied * 4 < full,
            "{full} bytes before, {emptied} after deleting everything"
        );
        assert_eq!(
            engine.get(Space::History, &0u32.to_be_bytes()).unwrap(),
            None
        );
    }

    #[test]
    fn size_of_some_spaces_leaves_the_others_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = FjallEngine::open(dir.path()).expect("open");
        let mut batch = WriteBatch::new();
        batch.put(Space::RaftLog, b"entry".to_vec(), vec![1u8; 10_000]);
        batch.put(Space::History, b"key".to_vec(), vec![2u8; 100]);
        engine.write(batch, Durability::Sync).expect("write");
        let history = engine.size_bytes_of(&[Space::History]);
        assert!(history >= 100, "{history}");
        assert!(history < 1_000, "{history}");
        assert!(engine.size_bytes() >= 10_100, "{}", engine.size_bytes());
    }

    #[test]
    fn open_of_an_empty_path_is_an_open_error() {
        let (_, reason) = open_error(Path::new(""));
        assert_eq!(reason, "empty path");
    }

    #[test]
    fn open_creates_the_directory_with_every_space() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("nested").join("data");
        let engine = FjallEngine::open(&data).expect("open");
        let mut names: Vec<String> = engine
            .db
            .list_keyspace_names()
            .iter()
            .map(|name| name.to_string())
            .collect();
        names.sort();
        let mut expected: Vec<String> = Space::ALL.iter().map(|s| s.name().to_owned()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }
}
