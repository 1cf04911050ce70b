//! HashKV: etcd's `store.HashByRev`, reproduced byte for byte.
//!
//! The hash is CRC-32C (Castagnoli) over `"key"`, then, for every stored version with
//! `main <= rev` in revision order, etcd's bolt key (`main` BE, `'_'`, `sub` BE, plus `'t'`
//! for a tombstone) and etcd's stored value (the marshaled `mvccpb.KeyValue`; a tombstone
//! stores only its key). Versions at or below the compacted revision count only if they
//! are what compaction at `rev` would keep (the key's newest version `<= rev`, not a
//! tombstone), unless nothing at all would be kept, in which case all count (etcd's
//! `len(keep) > 0` guard). The result is the same whether or not compaction has physically
//! removed anything, so members with the same history and compacted revision agree, and
//! the value equals what etcd computes for the same history.

use std::ops::ControlFlow;

use prost::Message;

use super::compact::read_revisions;
use super::history::{self, KeyRange};
use super::keys;
use super::revision::Revision;
use crate::Error;
use crate::api::cairnpb::StoredVersion;
use crate::api::mvccpb::KeyValue;
use crate::storage::{Engine, StorageError};

/// Revisions entries read per storage scan.
const REVISIONS_PER_SCAN: usize = 1024;

/// `(hash, compacted revision)` of the history up to `rev` (0 = current).
pub(crate) fn hash_kv(
    engine: &dyn Engine,
    rev: i64,
    current: i64,
    compacted: i64,
) -> Result<(u32, i64), Error> {
    if rev > 0 && rev <= compacted {
        return Err(Error::Compacted);
    }
    if rev > 0 && rev > current {
        return Err(Error::FutureRevision);
    }
    let rev = if rev == 0 { current } else { rev };
    let mut crc = Crc32c::new();
    crc.update(b"key");
    if rev < 1 {
        return Ok((crc.finish(), compacted));
    }
    let mut anything_kept: Option<bool> = None;
    let end = keys::revision_key(Revision::first_of(rev.saturating_add(1)));
    let mut from = Revision::first_of(1);
    loop {
        let entries = read_revisions(engine, from, &end, REVISIONS_PER_SCAN)?;
        for (entry_rev, key) in &entries {
            let Some(stored) = history::get_exact(engine, key, *entry_rev)? else {
                return Err(StorageError::Corrupt {
                    space: "revisions",
                    reason: format!(
                        "revision ({}, {}) has no stored version",
                        entry_rev.main, entry_rev.sub
                    ),
                }
                .into());
            };
            if entry_rev.main <= compacted
                && !kept_at(engine, key, *entry_rev, &stored, rev, &mut anything_kept)?
            {
                continue;
            }
            crc.update(&etcd_revision_bytes(*entry_rev, stored.tombstone));
            crc.update(&etcd_value_bytes(key, *entry_rev, stored).encode_to_vec());
        }
        match entries.last() {
            Some((last, _)) if entries.len() == REVISIONS_PER_SCAN => {
                from = Revision::new(last.main, last.sub + 1)
            }
            _ => return Ok((crc.finish(), compacted)),
        }
    }
}

/// Whether a version at or below the compacted revision counts: etcd's `keep` map test.
fn kept_at(
    engine: &dyn Engine,
    key: &[u8],
    entry: Revision,
    stored: &StoredVersion,
    rev: i64,
    anything_kept: &mut Option<bool>,
) -> Result<bool, Error> {
    let anything = match *anything_kept {
        Some(anything) => anything,
        None => {
            let anything = any_key_exists_at(engine, rev)?;
            *anything_kept = Some(anything);
            anything
        }
    };
    if !anything {
        return Ok(true);
    }
    if stored.tombstone {
        return Ok(false);
    }
    Ok(history::newest_at(engine, key, rev)?.is_some_and(|newest| newest.rev == entry))
}

fn any_key_exists_at(engine: &dyn Engine, rev: i64) -> Result<bool, Error> {
    let everything = KeyRange::Span {
        start: Vec::new(),
        end: None,
    };
    let mut any = false;
    history::scan_live_at(engine, &everything, rev, &mut |_| {
        any = true;
        ControlFlow::Break(())
    })?;
    Ok(any)
}

/// etcd's bolt key of a revision: `main` BE, `'_'`, `sub` BE, then `'t'` for a tombstone.
fn etcd_revision_bytes(rev: Revision, tombstone: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    out.extend_from_slice(&rev.main.to_be_bytes());
    out.push(b'_');
    out.extend_from_slice(&rev.sub.to_be_bytes());
    if tombstone {
        out.push(b't');
    }
    out
}

/// etcd's bolt value of a version: the `KeyValue` it stored (a tombstone stores its key only).
fn etcd_value_bytes(key: &[u8], rev: Revision, stored: StoredVersion) -> KeyValue {
    if stored.tombstone {
        return KeyValue {
            key: key.to_vec(),
            ..KeyValue::default()
        };
    }
    KeyValue {
        key: key.to_vec(),
        create_revision: stored.create_revision,
        mod_revision: rev.main,
        version: stored.version,
        value: stored.value,
        lease: stored.lease,
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Go's
/// `crc32.New(crc32.MakeTable(crc32.Castagnoli))`.
#[derive(Debug, Clone)]
pub struct Crc32c {
    state: u32,
}

const CASTAGNOLI_REFLECTED: u32 = 0x82F6_3B78;

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ CASTAGNOLI_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

impl Crc32c {
    /// A hash of nothing yet.
    pub fn new() -> Self {
        Crc32c { state: !0 }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state =
                CRC32C_TABLE[((self.state ^ u32::from(byte)) & 0xFF) as usize] ^ (self.state >> 8);
        }
    }

    /// The checksum of everything fed so far.
    pub fn finish(&self) -> u32 {
        !self.state
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Crc32c::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        let mut crc = Crc32c::new();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xE306_9283);
    }

    #[test]
    fn crc32c_is_incremental() {
        let mut whole = Crc32c::new();
        whole.update(b"hello world");
        let mut parts = Crc32c::new();
        parts.update(b"hello ");
        parts.update(b"world");
        assert_eq!(whole.finish(), parts.finish());
    }
}
