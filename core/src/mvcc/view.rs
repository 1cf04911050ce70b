//! What a read sees: the stored history at a revision, plus, inside a write transaction,
//! that transaction's own not-yet-stored changes (read-your-writes).
//!
//! etcd's `storeTxnWrite.Range` reads at `beginRev + 1` once the transaction has changed
//! something, and its index already holds those changes. Here the changes live in an
//! [`Overlay`] until the caller writes the batch, and a read at `beginRev + 1` merges the
//! stored state at `beginRev` with the overlay.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use super::history::{self, KeyRange};
use crate::Error;
use crate::api::mvccpb::KeyValue;
use crate::storage::Engine;

/// The latest state of each key a running write transaction changed.
pub(crate) type Overlay = BTreeMap<Vec<u8>, Pending>;

/// A key's state after a running transaction's change to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Put: the key's new version.
    Put(KeyValue),
    /// Deleted.
    Deleted,
}

/// A consistent read position: the revision a read at revision 0 sees, the compaction
/// floor, and the running transaction's changes (present only when `current` is the
/// revision those changes will get).
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    /// The engine holding stored history.
    pub engine: &'a dyn Engine,
    /// What revision 0 means; also the revision range responses report.
    pub current: i64,
    /// Reads below this revision fail with `Compacted`.
    pub compacted: i64,
    /// Changes of the running transaction at revision `current`, not yet stored.
    pub pending: Option<&'a Overlay>,
}

impl<'a> Reader<'a> {
    /// The state at `rev` (already checked against `current` and `compacted`).
    pub fn at(&self, rev: i64) -> View<'a> {
        debug_assert!(
            rev <= self.current,
            "read at {rev} above current {}",
            self.current
        );
        debug_assert!(
            rev >= self.compacted,
            "read at {rev} below compacted {}",
            self.compacted
        );
        match self.pending {
            Some(overlay) if rev == self.current => View {
                engine: self.engine,
                rev: rev - 1,
                overlay: Some(overlay),
            },
            _ => View {
                engine: self.engine,
                rev,
                overlay: None,
            },
        }
    }
}

/// The key-value state at one revision.
pub(crate) struct View<'a> {
    engine: &'a dyn Engine,
    /// Stored history is read at this revision.
    rev: i64,
    /// Changes newer than `rev` that override stored history.
    overlay: Option<&'a Overlay>,
}

impl View<'_> {
    /// The key's value, if it exists.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, Error> {
        if let Some(pending) = self.overlay.and_then(|overlay| overlay.get(key)) {
            return Ok(match pending {
                Pending::Put(kv) => Some(kv.clone()),
                Pending::Deleted => None,
            });
        }
        Ok(history::live_at(self.engine, key, self.rev)?.map(history::Version::into_key_value))
    }

    /// Visits every existing key of `range` in key order until `visit` breaks.
    pub fn for_each_live(
        &self,
        range: &KeyRange,
        visit: &mut dyn FnMut(KeyValue) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let overlay = match (self.overlay, range) {
            (None, _) => {
                return history::scan_live_at(self.engine, range, self.rev, &mut |version| {
                    visit(version.into_key_value())
                });
            }
            (Some(_), KeyRange::Single(key)) => {
                if let Some(kv) = self.get(key)? {
                    let _ = visit(kv);
                }
                return Ok(());
            }
            (Some(overlay), KeyRange::Span { .. }) => overlay,
        };
        if range.is_empty() {
            return Ok(());
        }
        let mut pending = overlay.range::<[u8], _>(overlay_bounds(range)).peekable();
        let mut stopped = false;
        history::scan_live_at(self.engine, range, self.rev, &mut |version| {
            while let Some((_, state)) =
                pending.next_if(|(key, _)| key.as_slice() < version.key.as_slice())
            {
                if let Pending::Put(kv) = state
                    && visit(kv.clone()).is_break()
                {
                    stopped = true;
                    return ControlFlow::Break(());
                }
            }
            let flow = match pending.next_if(|(key, _)| key.as_slice() == version.key.as_slice()) {
                Some((_, Pending::Put(kv))) => visit(kv.clone()),
                Some((_, Pending::Deleted)) => ControlFlow::Continue(()),
                None => visit(version.into_key_value()),
            };
            stopped = flow.is_break();
            flow
        })?;
        if stopped {
            return Ok(());
        }
        for (_, state) in pending {
            if let Pending::Put(kv) = state
                && visit(kv.clone()).is_break()
            {
                break;
            }
        }
        Ok(())
    }
}

fn overlay_bounds(range: &KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    match range {
        KeyRange::Single(key) => (
            Bound::Included(key.as_slice()),
            Bound::Included(key.as_slice()),
        ),
        KeyRange::Span { start, end } => (
            Bound::Included(start.as_slice()),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        ),
    }
}
