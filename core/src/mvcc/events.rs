//! Events from stored history, for watchers that fell behind (etcd's
//! `watchableStore.syncWatchers` + `kvsToEvents`, with `prev_kv` as the watch server fills it).
//!
//! Events come in revision order, one per stored change in the key range: PUT with the
//! version, DELETE with `{key, mod_revision}` only. `prev_kv` is the key's state at
//! `mod_revision - 1` whenever the key existed then (a watcher that did not ask drops it).
//!
//! Start revisions below the compacted revision fail with `Compacted`. A start exactly at
//! the compacted revision is served, as etcd serves it (it cancels only below): that
//! revision's events are what compaction kept of it, without the deletions it removed.

use super::compact::read_revisions;
use super::history::{self, KeyRange};
use super::keys;
use super::revision::Revision;
use crate::Error;
use crate::api::mvccpb::{Event, event::EventType};
use crate::storage::{Engine, StorageError};

/// Revisions entries read per storage scan.
const REVISIONS_PER_SCAN: usize = 256;

/// The stored history `events_since` reads.
pub(crate) struct Catchup<'a> {
    /// The engine.
    pub engine: &'a dyn Engine,
    /// The store's current revision.
    pub current: i64,
    /// The store's compacted revision.
    pub compacted: i64,
}

impl Catchup<'_> {
    /// Events with revision `>= start_rev` in `range`, whole revisions only: stops after the
    /// revision during which the count reached `limit` (0 = no limit).
    pub fn events_since(
        &self,
        start_rev: i64,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<Event>, Error> {
        if start_rev < self.compacted {
            return Err(Error::Compacted);
        }
        let mut events: Vec<Event> = Vec::new();
        let start = start_rev.max(1);
        if start > self.current || range.is_empty() {
            return Ok(events);
        }
        let end = keys::revision_key(Revision::first_of(self.current.saturating_add(1)));
        let mut from = Revision::first_of(start);
        loop {
            let entries = read_revisions(self.engine, from, &end, REVISIONS_PER_SCAN)?;
            for (rev, key) in &entries {
                let limit_reached = limit != 0 && events.len() >= limit;
                let new_revision = events
                    .last()
                    .is_none_or(|last| last_revision(last) != rev.main);
                if limit_reached && new_revision {
                    return Ok(events);
                }
                if range.contains(key) {
                    events.push(self.event(key, *rev)?);
                }
            }
            match entries.last() {
                Some((last, _)) if entries.len() == REVISIONS_PER_SCAN => {
                    from = Revision::new(last.main, last.sub + 1)
                }
                _ => return Ok(events),
            }
        }
    }

    fn event(&self, key: &[u8], rev: Revision) -> Result<Event, Error> {
        let Some(stored) = history::get_exact(self.engine, key, rev)? else {
            return Err(StorageError::Corrupt {
                space: "revisions",
                reason: format!("revision ({}, {}) has no stored version", rev.main, rev.sub),
            }
            .into());
        };
        let created = !stored.tombstone && stored.version == 1;
        let kind = if stored.tombstone {
            EventType::Delete
        } else {
            EventType::Put
        };
        let kv = history::Version {
            key: key.to_vec(),
            rev,
            stored,
        }
        .into_key_value();
        debug_assert!(
            rev.main >= self.compacted,
            "event read below the compacted revision"
        );
        let prev_kv = if created {
            None
        } else {
            history::live_at(self.engine, key, rev.main - 1)?.map(history::Version::into_key_value)
        };
        Ok(Event {
            r#type: kind as i32,
            kv: Some(kv),
            prev_kv,
        })
    }
}

fn last_revision(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}
