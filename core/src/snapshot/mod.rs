//! A consistent snapshot of the state machine, in the one format that serves Raft snapshots
//! to lagging followers, `Maintenance.Snapshot` and `cairnctl snapshot restore`.
//!
//! Layout: the magic `CAIRNSNP`, a format version (u32 BE), a length-prefixed
//! `SnapshotHeader`, then every key of every state-machine space as records
//! `space u8 | key len u32 | key | value len u32 | value`, an end record (space `0xFF`),
//! zero padding to a multiple of 512 bytes, and a SHA-256 of everything before it. Restore verifies the checksum before it touches
//! anything and refuses a damaged file with a clear error.

use std::io::{Read, Write};
use std::ops::ControlFlow;

use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::api::cairnpb::SnapshotHeader;
use crate::storage::{Durability, Engine, Order, Space, StorageError, WriteBatch};

const MAGIC: &[u8; 8] = b"CAIRNSNP";
const FORMAT_VERSION: u32 = 1;
const END: u8 = 0xFF;
const CHECKSUM_BYTES: usize = 32;
/// The body before the checksum is zero-padded to a multiple of this, so that the file has
/// the shape etcdctl's `snapshot save` expects of an etcd snapshot (a page-aligned database
/// followed by its SHA-256) and etcdctl can download cairn snapshots too.
const ALIGN_BYTES: usize = 512;

/// Why a snapshot could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing the snapshot failed.
    #[error("cannot write snapshot: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid snapshot.
    #[error("damaged snapshot: {0}")]
    Damaged(String),
}

fn damaged(reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Damaged(reason.into())
}

/// The spaces a snapshot carries: everything but the Raft log and Raft state.
pub fn state_machine_spaces() -> impl Iterator<Item = Space> {
    Space::ALL
        .into_iter()
        .filter(|s| !matches!(s, Space::RaftLog | Space::RaftState))
}

fn space_code(space: Space) -> u8 {
    Space::ALL
        .iter()
        .position(|s| *s == space)
        .map_or(END, |i| i as u8)
}

fn space_of(code: u8) -> Option<Space> {
    Space::ALL
        .get(usize::from(code))
        .copied()
        .filter(|s| state_machine_spaces().any(|x| x == *s))
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    written: usize,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot of `engine`'s state-machine spaces, described by `header`, to `out`.
/// The caller must keep the state machine still while this runs (the apply loop does).
pub fn write(
    engine: &dyn Engine,
    header: &SnapshotHeader,
    out: impl Write,
) -> Result<(), SnapshotError> {
    let mut out = Hashing {
        inner: out,
        hasher: Sha256::new(),
        written: 0,
    };
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT_VERSION.to_be_bytes())?;
    let header_bytes = header.encode_to_vec();
    out.write_all(&(header_bytes.len() as u32).to_be_bytes())?;
    out.write_all(&header_bytes)?;
    for space in state_machine_spaces() {
        write_space(engine, space, &mut out)?;
    }
    out.write_all(&[END])?;
    let padding = (ALIGN_BYTES - out.written % ALIGN_BYTES) % ALIGN_BYTES;
    out.write_all(&vec![0; padding])?;
    let checksum = out.hasher.finalize_reset();
    out.inner.write_all(&checksum)?;
    out.inner.flush()?;
    Ok(())
}

fn write_space(
    engine: &dyn Engine,
    space: Space,
    out: &mut impl Write,
) -> Result<(), SnapshotError> {
    let code = space_code(space);
    let mut failure = None;
    engine.scan(space, &[], None, Order::Ascending, &mut |key, value| {
        let record = [
            &[code][..],
            &(key.len() as u32).to_be_bytes(),
            key,
            &(value.len() as u32).to_be_bytes(),
            value,
        ];
        for part in record {
            if let Err(e) = out.write_all(part) {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Writes a snapshot into memory.
pub fn to_bytes(engine: &dyn Engine, header: &SnapshotHeader) -> Result<Vec<u8>, SnapshotError> {
    let mut bytes = Vec::new();
    write(engine, header, &mut bytes)?;
    Ok(bytes)
}

/// Checks the checksum and format of `bytes` and returns the header.
pub fn verify(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    let (body, checksum) = split_checksum(bytes)?;
    let mut reader = Reader { bytes: body, at: 0 };
    let header = reader.header()?;
    while reader.record()?.is_some() {}
    let padding = &body[reader.at..];
    if padding.len() >= ALIGN_BYTES || padding.iter().any(|b| *b != 0) {
        return Err(damaged(format!(
            "{} unexpected bytes after the end record",
            padding.len()
        )));
    }
    debug_assert_eq!(checksum.len(), CHECKSUM_BYTES);
    Ok(header)
}

fn split_checksum(bytes: &[u8]) -> Result<(&[u8], &[u8]), SnapshotError> {
    if bytes.len() < MAGIC.len() + CHECKSUM_BYTES {
        return Err(damaged(format!(
            "{} bytes is too short for a snapshot",
            bytes.len()
        )));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    if Sha256::digest(body).as_slice() != checksum {
        return Err(damaged(
            "sha256 checksum mismatch (truncated or corrupted file)",
        ));
    }
    Ok((body, checksum))
}

/// Replaces the state-machine spaces of `engine` with the snapshot in `bytes` (after
/// verifying it), in one durable batch. Returns the snapshot's header.
pub fn restore(engine: &dyn Engine, bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    let header = verify(bytes)?;
    let (body, _) = split_checksum(bytes)?;
    let mut batch = WriteBatch::new();
    for space in state_machine_spaces() {
        engine.scan(space, &[], None, Order::Ascending, &mut |key, _| {
            batch.delete(space, key.to_vec());
            ControlFlow::Continue(())
        })?;
    }
    let mut reader = Reader { bytes: body, at: 0 };
    reader.header()?;
    while let Some((space, key, value)) = reader.record()? {
        batch.put(space, key.to_vec(), value.to_vec());
    }
    engine.write(batch, Durability::Sync)?;
    Ok(header)
}

/// Turns an empty data dir's `engine` into a new member holding the data of the snapshot in
/// `bytes` (`cairnctl snapshot restore`): the keys, revisions and leases are kept; the old
/// cluster's membership and applied index are dropped, so the member bootstraps a new
/// cluster from its `--initial-cluster` flags at its first start, as etcd's restore does.
pub fn restore_member(engine: &dyn Engine, bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    let mut probe_empty = true;
    engine.scan(Space::RaftLog, &[], None, Order::Ascending, &mut |_, _| {
        probe_empty = false;
        ControlFlow::Break(())
    })?;
    if !probe_empty {
        return Err(SnapshotError::Damaged(
            "the target data dir is not empty".into(),
        ));
    }
    let header = restore(engine, bytes)?;
    let mut batch = WriteBatch::new();
    crate::membership::ClusterState::stage_forget(engine, &mut batch)?;
    batch.delete(Space::Meta, crate::apply::CONSISTENT_INDEX_KEY.to_vec());
    engine.write(batch, Durability::Sync)?;
    Ok(header)
}

/// What `cairnctl snapshot status` reports of a snapshot file (etcd's `snapshot.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// CRC-32C over every record in file order: for each space its name once, then each
    /// key and value (etcd hashes each bolt bucket's name, then its keys and values).
    pub hash: u32,
    /// The store revision the snapshot was taken at.
    pub revision: i64,
    /// The number of records (etcd: keys in all buckets).
    pub total_keys: u64,
    /// The bytes before the SHA-256 trailer (etcd: the bolt database's size).
    pub total_size: u64,
}

/// Verifies `bytes` and summarises them as [`SnapshotStatus`].
pub fn status(bytes: &[u8]) -> Result<SnapshotStatus, SnapshotError> {
    let header = verify(bytes)?;
    let (body, _) = split_checksum(bytes)?;
    let mut reader = Reader { bytes: body, at: 0 };
    reader.header()?;
    let mut crc = crate::mvcc::Crc32c::new();
    let mut total_keys = 0u64;
    let mut current = None;
    while let Some((space, key, value)) = reader.record()? {
        if current != Some(space) {
            crc.update(space.name().as_bytes());
            current = Some(space);
        }
        crc.update(key);
        crc.update(value);
        total_keys += 1;
    }
    Ok(SnapshotStatus {
        hash: crc.finish(),
        revision: header.revision,
        total_keys,
        total_size: body.len() as u64,
    })
}

/// Reads a whole snapshot from `input` into memory.
pub fn read_all(mut input: impl Read) -> Result<Vec<u8>, SnapshotError> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    Ok(bytes)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Record<'a> = (Space, &'a [u8], &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| damaged(format!("truncated at byte {}", self.at)))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn header(&mut self) -> Result<SnapshotHeader, SnapshotError> {
        if self.take(MAGIC.len())? != MAGIC {
            return Err(damaged("not a cairn snapshot (bad magic)"));
        }
        let version = self.u32()?;
        if version != FORMAT_VERSION {
            return Err(damaged(format!(
                "unsupported snapshot format version {version}"
            )));
        }
        let len = self.u32()? as usize;
        SnapshotHeader::decode(self.take(len)?).map_err(|e| damaged(format!("bad header: {e}")))
    }

    fn record(&mut self) -> Result<Option<Record<'a>>, SnapshotError> {
        let code = self.take(1)?[0];
        if code == END {
            return Ok(None);
        }
        let space = space_of(code).ok_or_else(|| damaged(format!("unknown space code {code}")))?;
        let key_len = self.u32()? as usize;
        let key = self.take(key_len)?;
        let value_len = self.u32()? as usize;
        let value = self.take(value_len)?;
        Ok(Some((space, key, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemEngine;

    fn sample_engine() -> MemEngine {
        let engine = MemEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Space::History, b"k1".to_vec(), b"v1".to_vec());
        batch.put(Space::History, vec![0, 0xFF], vec![]);
        batch.put(Space::Meta, b"m".to_vec(), b"x".to_vec());
        batch.put(
            Space::RaftLog,
            b"log".to_vec(),
            b"not in snapshots".to_vec(),
        );
        engine.write(batch, Durability::Sync).unwrap();
        engine
    }

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            revision: 7,
            consistent_index: 42,
            ..Default::default()
        }
    }

    #[test]
    fn restore_reproduces_the_state_machine_spaces_only() {
        let source = sample_engine();
        let bytes = to_bytes(&source, &header()).unwrap();
        let target = MemEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Space::History, b"stale".to_vec(), b"gone".to_vec());
        batch.put(Space::RaftLog, b"own log".to_vec(), b"kept".to_vec());
        target.write(batch, Durability::Sync).unwrap();
        assert_eq!(restore(&target, &bytes).unwrap(), header());
        assert_eq!(
            target.get(Space::History, b"k1").unwrap(),
            Some(b"v1".to_vec())
        );
        assert_eq!(
            target.get(Space::History, &[0, 0xFF]).unwrap(),
            Some(vec![])
        );
        assert_eq!(target.get(Space::History, b"stale").unwrap(), None);
        assert_eq!(
            target.get(Space::RaftLog, b"own log").unwrap(),
            Some(b"kept".to_vec())
        );
        assert_eq!(target.get(Space::RaftLog, b"log").unwrap(), None);
    }

    #[test]
    fn a_flipped_byte_is_refused_before_anything_changes() {
        let mut bytes = to_bytes(&sample_engine(), &header()).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let target = MemEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Space::History, b"mine".to_vec(), b"v".to_vec());
        target.write(batch, Durability::Sync).unwrap();
        let err = restore(&target, &bytes).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(
            target.get(Space::History, b"mine").unwrap(),
            Some(b"v".to_vec())
        );
    }

    #[test]
    fn a_truncated_snapshot_is_refused() {
        let bytes = to_bytes(&sample_engine(), &header()).unwrap();
        for len in [0, 10, bytes.len() - 1] {
            assert!(verify(&bytes[..len]).is_err(), "accepted {len} bytes");
        }
    }

    #[test]
    fn status_counts_records_and_hashes_them_deterministically() {
        let bytes = to_bytes(&sample_engine(), &header()).unwrap();
        let summary = status(&bytes).unwrap();
        assert_eq!(summary.revision, 7);
        assert_eq!(summary.total_keys, 3);
        assert_eq!(summary.total_size as usize, bytes.len() - CHECKSUM_BYTES);
        assert_eq!(summary.total_size % ALIGN_BYTES as u64, 0);
        let mut crc = crate::mvcc::Crc32c::new();
        for part in [
            &b"history"[..],
            &[0, 0xFF],
            b"",
            b"k1",
            b"v1",
            b"meta",
            b"m",
            b"x",
        ] {
            crc.update(part);
        }
        assert_eq!(summary.hash, crc.finish());
        let other = MemEngine::new();
        let other_bytes = to_bytes(&other, &header()).unwrap();
        assert_ne!(status(&other_bytes).unwrap().hash, summary.hash);
    }

    #[test]
    fn a_file_that_is_not_a_snapshot_is_refused() {
        let mut bytes = vec![b'x'; 64];
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum);
        assert!(
            verify(&bytes)
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
    }
}

#[cfg(test)]
mod state_machine_tests {
    use std::sync::Arc;

    use prost::Message as _;

    use crate::api::cairnpb::{InternalRequest, internal_request::Request};
    use crate::api::etcdserverpb::{PutRequest, RangeRequest};
    use crate::apply::StateMachine;
    use crate::mvcc::keys::META_LATEST_INDEX;
    use crate::storage::mem::MemEngine;
    use crate::storage::{Durability, Engine, Order, Space, WriteBatch};

    fn put(sm: &StateMachine, index: u64, key: &[u8], value: &[u8]) {
        let entry = InternalRequest {
            auth: None,
            id: index,
            request: Some(Request::Put(PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                ..PutRequest::default()
            })),
        };
        sm.apply(index, &entry.encode_to_vec()).expect("apply");
    }

    fn value(sm: &StateMachine, key: &[u8]) -> Option<Vec<u8>> {
        let req = RangeRequest {
            key: key.to_vec(),
            ..RangeRequest::default()
        };
        let kvs = sm.range(&req).expect("range").kvs;
        kvs.into_iter().next().map(|kv| kv.value)
    }

    /// A snapshot of a store written before the Latest space existed (no entries, no mark),
    /// as an older member would send it, is indexed when it is restored.
    #[test]
    fn a_snapshot_without_the_latest_index_is_indexed_when_restored() {
        let source: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let sm = StateMachine::open(source.clone()).expect("open");
        put(&sm, 1, b"a", b"1");
        put(&sm, 2, b"b", b"1");
        put(&sm, 3, b"a", b"2");
        let mut strip = WriteBatch::new();
        source
            .scan(Space::Latest, b"", None, Order::Ascending, &mut |k, _| {
                strip.delete(Space::Latest, k.to_vec());
                std::ops::ControlFlow::Continue(())
            })
            .expect("scan");
        strip.delete(Space::Meta, META_LATEST_INDEX.to_vec());
        source.write(strip, Durability::Sync).expect("strip");
        let bytes = sm
            .snapshot(1, &raft::eraftpb::ConfState::default())
            .expect("snapshot");

        let target: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let restored = StateMachine::open(target.clone()).expect("open");
        put(&restored, 1, b"stale", b"x");
        restored.restore(&bytes).expect("restore");
        assert_eq!(value(&restored, b"a"), Some(b"2".to_vec()));
        assert_eq!(value(&restored, b"b"), Some(b"1".to_vec()));
        assert_eq!(value(&restored, b"stale"), None);
        assert!(
            target
                .get(Space::Meta, META_LATEST_INDEX)
                .expect("get")
                .is_some()
        );
        // The index is complete: the next put of `a` sees its previous version.
        put(&restored, 4, b"a", b"3");
        let req = RangeRequest {
            key: b"a".to_vec(),
            ..RangeRequest::default()
        };
        let kv = restored.range(&req).expect("range").kvs.remove(0);
        assert_eq!((kv.version, kv.value), (3, b"3".to_vec()));
    }
}
