//! Building the Latest space (each key's newest version, see `keys`) for a store whose
//! history was written before the space existed: a store restored from such a snapshot, or
//! a data directory of an earlier cairn. Writes keep the space current from then on.

use std::ops::ControlFlow;

use super::history;
use super::keys;
use super::revision::Revision;
use crate::storage::{Durability, Engine, Order, Space, StorageError, WriteBatch};

/// Keys indexed per storage batch (bounds the memory a large store needs to be indexed).
const KEYS_PER_BATCH: usize = 4096;

/// Makes sure the Latest space names the newest version of every key: unless the store is
/// marked as indexed, walks History once in key order, stores each key's newest revision
/// and that version's metadata, and then the mark (durably, last, so an interrupted build
/// starts over on the next open).
pub(crate) fn ensure_indexed(engine: &dyn Engine) -> Result<(), StorageError> {
    if engine.get(Space::Meta, keys::META_LATEST_INDEX)?.is_some() {
        return Ok(());
    }
    let mut from = Vec::new();
    loop {
        let mut batch = WriteBatch::new();
        let resume = index_some(engine, &from, &mut batch)?;
        let Some(resume) = resume else {
            batch.put(Space::Meta, keys::META_LATEST_INDEX, Vec::new());
            return engine.write(batch, Durability::Sync);
        };
        engine.write(batch, Durability::Buffered)?;
        from = resume;
    }
}

/// Stages the Latest entries of up to [`KEYS_PER_BATCH`] keys whose History keys start at
/// or after `from`; returns where the next call starts, or `None` at the end of History.
fn index_some(
    engine: &dyn Engine,
    from: &[u8],
    batch: &mut WriteBatch,
) -> Result<Option<Vec<u8>>, StorageError> {
    // The key being indexed, its newest revision so far and that version's stored value.
    let mut newest: Option<(Vec<u8>, Revision, Vec<u8>)> = None;
    let mut indexed = 0;
    let mut resume = None;
    let mut failure = None;
    engine.scan(Space::History, from, None, Order::Ascending, &mut |k, v| {
        let (prefix, rev) = match keys::split_history_key(k) {
            Ok(split) => split,
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        };
        match &mut newest {
            // Versions of one key come in revision order: the last one is the newest.
            Some((current, newest_rev, stored)) if current.as_slice() == prefix => {
                *newest_rev = rev;
                stored.clear();
                stored.extend_from_slice(v);
            }
            _ => {
                if let Some((done, done_rev, stored)) = newest.take() {
                    if let Err(e) = stage(batch, &done, done_rev, &stored) {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                    indexed += 1;
                    if indexed == KEYS_PER_BATCH {
                        resume = Some(prefix.to_vec());
                        return ControlFlow::Break(());
                    }
                }
                newest = Some((prefix.to_vec(), rev, v.to_vec()));
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some((done, done_rev, stored)) = newest {
        stage(batch, &done, done_rev, &stored)?;
    }
    Ok(resume)
}

fn stage(
    batch: &mut WriteBatch,
    prefix: &[u8],
    rev: Revision,
    stored: &[u8],
) -> Result<(), StorageError> {
    let key = keys::unescape_prefix(prefix)?;
    let stored = history::decode_stored(stored)?;
    batch.put(Space::Latest, key, keys::encode_latest(rev, &stored));
    Ok(())
}
