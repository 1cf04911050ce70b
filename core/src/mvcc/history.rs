//! Reading the History space: which version of a key, or of every key in a range, is the
//! one visible at a revision.
//!
//! The version of a key visible at `rev` is its newest stored version with `main <= rev`;
//! the key exists at `rev` when that version is not a tombstone (etcd's
//! `keyIndex.get`/`findGeneration`). There is no in-memory index: a range read walks the
//! History space in key order, and when one key has many versions it stops walking them and
//! seeks straight to the one it needs, so a read costs O(keys in range), not O(history).

use std::ops::ControlFlow;

use prost::Message;

use super::keys;
use super::revision::Revision;
use crate::Error;
use crate::api::cairnpb::StoredVersion;
use crate::api::mvccpb::KeyValue;
use crate::storage::{Engine, Order, Space, StorageError};

/// Versions of one key a range scan reads in storage order before it seeks directly to the
/// version it needs (bounds the cost of keys with a long history).
const SEEK_AFTER_VERSIONS: usize = 8;

/// The keys a request names, decoded once from etcd's `(key, range_end)` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyRange {
    /// `range_end` empty: exactly `key`.
    Single(Vec<u8>),
    /// `[start, end)`; `end = None` is unbounded (etcd's `range_end = "\0"`).
    Span {
        /// First key of the range.
        start: Vec<u8>,
        /// First key past the range, if bounded.
        end: Option<Vec<u8>>,
    },
}

impl KeyRange {
    /// etcd's range forms: empty `range_end` is one key, `"\0"` is every key `>= key`
    /// (`mkGteRange`), anything else is `[key, range_end)`, empty when `range_end <= key`.
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => KeyRange::Single(key.to_vec()),
            [0] => KeyRange::Span {
                start: key.to_vec(),
                end: None,
            },
            end => KeyRange::Span {
                start: key.to_vec(),
                end: Some(end.to_vec()),
            },
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Single(single) => single.as_slice() == key,
            KeyRange::Span { start, end } => {
                key >= start.as_slice() && end.as_ref().is_none_or(|end| key < end.as_slice())
            }
        }
    }

    /// Whether the range holds no key at all (`range_end <= key`).
    pub fn is_empty(&self) -> bool {
        match self {
            KeyRange::Single(_) => false,
            KeyRange::Span { start, end } => end.as_ref().is_some_and(|end| end <= start),
        }
    }
}

/// One stored version of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    /// The user key.
    pub key: Vec<u8>,
    /// Where the version sits in history; `rev.main` is its mod revision.
    pub rev: Revision,
    /// What was stored.
    pub stored: StoredVersion,
}

impl Version {
    /// Whether the key exists in this version (it is not a deletion).
    pub fn is_live(&self) -> bool {
        !self.stored.tombstone
    }

    /// The version as etcd's `KeyValue` (a tombstone keeps only key and mod revision, as
    /// etcd's DELETE events do).
    pub fn into_key_value(self) -> KeyValue {
        if self.stored.tombstone {
            return KeyValue {
                key: self.key,
                mod_revision: self.rev.main,
                ..KeyValue::default()
            };
        }
        KeyValue {
            key: self.key,
            create_revision: self.stored.create_revision,
            mod_revision: self.rev.main,
            version: self.stored.version,
            value: self.stored.value,
            lease: self.stored.lease,
        }
    }
}

/// Decodes a History value.
pub(crate) fn decode_stored(bytes: &[u8]) -> Result<StoredVersion, StorageError> {
    StoredVersion::decode(bytes).map_err(|e| StorageError::Corrupt {
        space: "history",
        reason: format!("undecodable stored version: {e}"),
    })
}

/// The stored version of `key` at exactly `rev`, if any.
pub(crate) fn get_exact(
    engine: &dyn Engine,
    key: &[u8],
    rev: Revision,
) -> Result<Option<StoredVersion>, Error> {
    match engine.get(Space::History, &keys::history_key(key, rev))? {
        Some(bytes) => Ok(Some(decode_stored(&bytes)?)),
        None => Ok(None),
    }
}

/// The newest stored version of `key` with `main <= rev` (tombstone or not).
///
/// The Latest space names the key's newest version: when that is at or below `rev` (every
/// read of the current state, every write's look at the previous version) it is read by
/// two point lookups, and a key that was never written costs one. Only an older state (a
/// read at a past revision, compaction, watch catch-up) scans the key's history.
pub(crate) fn newest_at(
    engine: &dyn Engine,
    key: &[u8],
    rev: i64,
) -> Result<Option<Version>, Error> {
    if rev < 1 {
        return Ok(None);
    }
    let Some(keys::LatestEntry { rev: latest, .. }) = latest(engine, key)? else {
        return Ok(None);
    };
    if latest.main <= rev {
        return match get_exact(engine, key, latest)? {
            Some(stored) => Ok(Some(Version {
                key: key.to_vec(),
                rev: latest,
                stored,
            })),
            None => Err(StorageError::Corrupt {
                space: "latest",
                reason: format!(
                    "names revision ({}, {}) of a key with no version stored there",
                    latest.main, latest.sub
                ),
            }
            .into()),
        };
    }
    scan_newest_at(engine, key, rev)
}

/// The Latest entry of `key` (its newest stored version), if it has one.
pub(crate) fn latest(engine: &dyn Engine, key: &[u8]) -> Result<Option<keys::LatestEntry>, Error> {
    match engine.get(Space::Latest, key)? {
        Some(bytes) => Ok(Some(keys::decode_latest(&bytes)?)),
        None => Ok(None),
    }
}

/// The version of `key` visible at `rev` if the key exists then, as [`live_at`] but with
/// an empty value when `rev` is at or past the key's newest version and the Latest space
/// holds that version's metadata: one point lookup, no read of the value. For a write that
/// needs only the previous version's revisions, version count and lease.
pub(crate) fn live_meta_at(
    engine: &dyn Engine,
    key: &[u8],
    rev: i64,
) -> Result<Option<KeyValue>, Error> {
    if rev < 1 {
        return Ok(None);
    }
    match latest(engine, key)? {
        None => Ok(None),
        Some(keys::LatestEntry {
            rev: newest,
            meta: Some(meta),
        }) if newest.main <= rev => Ok((!meta.tombstone).then(|| KeyValue {
            key: key.to_vec(),
            create_revision: meta.create_revision,
            mod_revision: newest.main,
            version: meta.version,
            value: Vec::new(),
            lease: meta.lease,
        })),
        Some(_) => Ok(live_at(engine, key, rev)?.map(Version::into_key_value)),
    }
}

/// [`newest_at`] by a reverse scan of the key's history.
fn scan_newest_at(engine: &dyn Engine, key: &[u8], rev: i64) -> Result<Option<Version>, Error> {
    let prefix = keys::key_prefix(key);
    let end = match rev.checked_add(1) {
        Some(next) => keys::history_key(key, Revision::first_of(next)),
        None => keys::past_prefix(&prefix),
    };
    let mut found: Option<(Vec<u8>, Vec<u8>)> = None;
    engine.scan(
        Space::History,
        &prefix,
        Some(&end),
        Order::Descending,
        &mut |k, v| {
            found = Some((k.to_vec(), v.to_vec()));
            ControlFlow::Break(())
        },
    )?;
    let Some((stored_key, value)) = found else {
        return Ok(None);
    };
    let (_, rev) = keys::split_history_key(&stored_key)?;
    Ok(Some(Version {
        key: key.to_vec(),
        rev,
        stored: decode_stored(&value)?,
    }))
}

/// The version of `key` visible at `rev`, if the key exists then.
pub(crate) fn live_at(engine: &dyn Engine, key: &[u8], rev: i64) -> Result<Option<Version>, Error> {
    Ok(newest_at(engine, key, rev)?.filter(Version::is_live))
}

/// Visits, in key order, the visible version of every key of `range` that exists at `rev`,
/// until `visit` breaks.
pub(crate) fn scan_live_at(
    engine: &dyn Engine,
    range: &KeyRange,
    rev: i64,
    visit: &mut dyn FnMut(Version) -> ControlFlow<()>,
) -> Result<(), Error> {
    if range.is_empty() || rev < 1 {
        return Ok(());
    }
    let (start, end) = match range {
        KeyRange::Single(key) => {
            if let Some(version) = live_at(engine, key, rev)? {
                let _ = visit(version);
            }
            return Ok(());
        }
        KeyRange::Span { start, end } => (start, end),
    };
    let end = end.as_deref().map(keys::escaped);
    let mut from = keys::escaped(start);
    loop {
        match scan_span_once(engine, &from, end.as_deref(), rev, visit)? {
            SpanEnd::Finished | SpanEnd::Stopped => return Ok(()),
            SpanEnd::SeekPast(prefix) => {
                let key = keys::unescape_prefix(&prefix)?;
                if let Some(version) = live_at(engine, &key, rev)?
                    && visit(version).is_break()
                {
                    return Ok(());
                }
                from = keys::past_prefix(&prefix);
            }
        }
    }
}

/// How one storage scan of a span ended.
enum SpanEnd {
    /// Reached the end of the span.
    Finished,
    /// The visitor broke.
    Stopped,
    /// The key with this prefix has too many versions: look it up directly and resume
    /// after it. Every key before it has been visited.
    SeekPast(Vec<u8>),
}

/// The key being read during a span scan and its newest version `<= rev` so far.
struct Candidate {
    prefix: Vec<u8>,
    versions_seen: usize,
    rev: Option<Revision>,
    value: Vec<u8>,
}

impl Candidate {
    /// Emits the candidate version to `visit` if the key exists at the read revision.
    fn emit(
        &mut self,
        visit: &mut dyn FnMut(Version) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, Error> {
        let Some(rev) = self.rev.take() else {
            return Ok(ControlFlow::Continue(()));
        };
        let stored = decode_stored(&self.value)?;
        if stored.tombstone {
            return Ok(ControlFlow::Continue(()));
        }
        let key = keys::unescape_prefix(&self.prefix)?;
        Ok(visit(Version { key, rev, stored }))
    }
}

fn scan_span_once(
    engine: &dyn Engine,
    from: &[u8],
    end: Option<&[u8]>,
    rev: i64,
    visit: &mut dyn FnMut(Version) -> ControlFlow<()>,
) -> Result<SpanEnd, Error> {
    let mut cand = Candidate {
        prefix: Vec::new(),
        versions_seen: 0,
        rev: None,
        value: Vec::new(),
    };
    let mut failure: Option<Error> = None;
    let mut outcome = SpanEnd::Finished;
    engine.scan(Space::History, from, end, Order::Ascending, &mut |k, v| {
        let (prefix, version_rev) = match keys::split_history_key(k) {
            Ok(split) => split,
            Err(e) => {
                failure = Some(e.into());
                return ControlFlow::Break(());
            }
        };
        if prefix != cand.prefix.as_slice() {
            match cand.emit(visit) {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => {
                    outcome = SpanEnd::Stopped;
                    return ControlFlow::Break(());
                }
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            cand.prefix.clear();
            cand.prefix.extend_from_slice(prefix);
            cand.versions_seen = 0;
        }
        cand.versions_seen += 1;
        if cand.versions_seen > SEEK_AFTER_VERSIONS {
            outcome = SpanEnd::SeekPast(std::mem::take(&mut cand.prefix));
            return ControlFlow::Break(());
        }
        if version_rev.main <= rev {
            cand.rev = Some(version_rev);
            cand.value.clear();
            cand.value.extend_from_slice(v);
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if !matches!(outcome, SpanEnd::Finished) {
        return Ok(outcome);
    }
    Ok(match cand.emit(visit)? {
        ControlFlow::Continue(()) => SpanEnd::Finished,
        ControlFlow::Break(()) => SpanEnd::Stopped,
    })
}
