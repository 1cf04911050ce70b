//! Compaction: etcd's `store.Compact` + `keyIndex.compact` + `scheduleCompaction`, done
//! synchronously into one batch.
//!
//! `Compact(rev)` keeps, per key, the newest version with `main <= rev` unless it is a
//! tombstone (then it goes too), and every version above `rev`; the Revisions entry of
//! every removed version goes with it, and so does the Latest entry of a key whose newest
//! version was a removed tombstone. Reads at `rev` and later see the same state as before;
//! reads below `rev` fail with `Compacted`.
//!
//! Cost: only keys changed since the previous compaction can have anything to drop (every
//! other key was reduced to one live version then), so the Revisions space is walked from
//! the previous compacted revision + 1 to `rev`. A key is handled once, at its newest
//! version `<= rev`; older entries of the same key are skipped after one point lookup.

use std::ops::ControlFlow;

use super::history;
use super::keys;
use super::revision::Revision;
use crate::Error;
use crate::storage::{Engine, Order, Space, StorageError, WriteBatch};

/// Revisions entries read per storage scan (bounds memory; the engine is read between
/// scans).
const REVISIONS_PER_SCAN: usize = 1024;

/// Checks a compaction request against etcd's `updateCompactRev` rules.
pub(crate) fn check(rev: i64, current: i64, compacted: i64) -> Result<(), Error> {
    if rev <= compacted {
        return Err(Error::Compacted);
    }
    if rev > current {
        return Err(Error::FutureRevision);
    }
    Ok(())
}

/// Stages into `batch` the removal of every version compaction at `rev` drops, and the new
/// compacted revision. `compacted` is the previous compacted revision.
pub(crate) fn stage(
    engine: &dyn Engine,
    rev: i64,
    compacted: i64,
    batch: &mut WriteBatch,
) -> Result<(), Error> {
    debug_assert!(rev > compacted);
    let mut from = Revision::first_of(compacted.saturating_add(1).max(0));
    let end = keys::revision_key(Revision::first_of(rev.saturating_add(1)));
    loop {
        let entries = read_revisions(engine, from, &end, REVISIONS_PER_SCAN)?;
        for (entry_rev, key) in &entries {
            compact_key_if_newest(engine, key, *entry_rev, rev, batch)?;
        }
        match entries.last() {
            Some((last, _)) if entries.len() == REVISIONS_PER_SCAN => {
                from = Revision::new(last.main, last.sub + 1)
            }
            _ => break,
        }
    }
    batch.put(
        Space::Meta,
        keys::META_COMPACTED_REVISION,
        keys::encode_meta_revision(rev),
    );
    Ok(())
}

/// Up to `max` Revisions entries from `from` (inclusive) to `end` (exclusive).
pub(crate) fn read_revisions(
    engine: &dyn Engine,
    from: Revision,
    end: &[u8],
    max: usize,
) -> Result<Vec<(Revision, Vec<u8>)>, Error> {
    let mut entries = Vec::new();
    let mut failure: Option<StorageError> = None;
    engine.scan(
        Space::Revisions,
        &keys::revision_key(from),
        Some(end),
        Order::Ascending,
        &mut |k, v| {
            match keys::decode_revision_key(k) {
                Ok(rev) => entries.push((rev, v.to_vec())),
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            if entries.len() >= max {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(entries),
    }
}

/// If `entry` is `key`'s newest version `<= rev`, stages the removal of every older version
/// of the key, and of `entry` itself when it is a tombstone.
fn compact_key_if_newest(
    engine: &dyn Engine,
    key: &[u8],
    entry: Revision,
    rev: i64,
    batch: &mut WriteBatch,
) -> Result<(), Error> {
    let Some(newest) = history::newest_at(engine, key, rev)? else {
        return Err(StorageError::Corrupt {
            space: "revisions",
            reason: format!(
                "revision ({}, {}) names a key with no stored version",
                entry.main, entry.sub
            ),
        }
        .into());
    };
    if newest.rev != entry {
        debug_assert!(newest.rev > entry);
        return Ok(());
    }
    let prefix = keys::key_prefix(key);
    let newest_key = keys::history_key(key, newest.rev);
    let mut failure: Option<StorageError> = None;
    engine.scan(
        Space::History,
        &prefix,
        Some(&newest_key),
        Order::Ascending,
        &mut |k, _| {
            match keys::split_history_key(k) {
                Ok((_, old)) => drop_version(batch, key, old),
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    if !newest.is_live() {
        drop_version(batch, key, newest.rev);
        // The key is gone from history unless it was written again after `rev`.
        if history::latest(engine, key)?.map(|entry| entry.rev) == Some(newest.rev) {
            batch.delete(Space::Latest, key.to_vec());
        }
    }
    Ok(())
}

fn drop_version(batch: &mut WriteBatch, key: &[u8], rev: Revision) {
    batch.delete(Space::History, keys::history_key(key, rev));
    batch.delete(Space::Revisions, keys::revision_key(rev));
}
