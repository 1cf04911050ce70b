//! One watcher: what it asked for and how far it has got (etcd's `mvcc/watcher.go` `watcher`,
//! plus the per-watcher flags `serverWatchStream` keeps in `etcdserver/api/v3rpc/watch.go`).
//!
//! `next_rev` is etcd's `minRev`: the watcher has been given, or has no interest in, every
//! event below it. A watcher is *synced* when the stream feeds it applied events as they
//! come, *unsynced* while it reads history from storage, and *compacted* once a compaction
//! passed its `next_rev` (etcd keeps such a watcher's id taken until it is canceled).

use super::range::WatchRange;
use crate::api::etcdserverpb::WatchCreateRequest;
use crate::api::etcdserverpb::watch_create_request::FilterType;
use crate::api::mvccpb::{Event, event::EventType};

/// Where a watcher gets its next events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// From applied events as they arrive.
    Synced,
    /// From stored history, one batch at a time.
    Unsynced,
    /// Nowhere: canceled because its next revision was compacted.
    Compacted,
}

/// One watcher of a stream.
#[derive(Debug, Clone)]
pub(crate) struct Watcher {
    /// The stream-unique id.
    pub id: i64,
    /// The keys it watches.
    pub range: WatchRange,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    /// Whether it gets periodic progress notifications.
    pub progress_notify: bool,
    /// Whether large responses are split into fragments.
    pub fragment: bool,
    /// The lowest revision it may still receive events of.
    pub next_rev: i64,
    /// Where its events come from.
    pub state: State,
    /// No events were sent since the last progress tick (etcd's `sws.progress[id]`).
    pub progress_due: bool,
}

impl Watcher {
    /// A watcher for `req` under `id`, positioned at `next_rev`.
    pub fn new(
        id: i64,
        range: WatchRange,
        req: &WatchCreateRequest,
        next_rev: i64,
        state: State,
    ) -> Watcher {
        let has = |filter: FilterType| req.filters.contains(&(filter as i32));
        Watcher {
            id,
            range,
            no_put: has(FilterType::Noput),
            no_delete: has(FilterType::Nodelete),
            prev_kv: req.prev_kv,
            progress_notify: req.progress_notify,
            fragment: req.fragment,
            next_rev,
            state,
            progress_due: req.progress_notify,
        }
    }

    /// Whether it asked for `prev_kv`.
    pub fn wants_prev_kv(&self) -> bool {
        self.prev_kv
    }

    /// The events of `events` this watcher receives, in order, `prev_kv` dropped unless it
    /// asked for it (etcd's range match, `watcher.send` filters and the watch server's
    /// `prevKV` map).
    pub fn select(&self, events: &[Event]) -> Vec<Event> {
        events
            .iter()
            .filter(|event| self.wants(event))
            .map(|event| self.shape(event))
            .collect()
    }

    fn wants(&self, event: &Event) -> bool {
        let Some(kv) = &event.kv else {
            return false;
        };
        if !self.range.contains(&kv.key) {
            return false;
        }
        if event.r#type == EventType::Put as i32 {
            !self.no_put
        } else {
            !self.no_delete
        }
    }

    fn shape(&self, event: &Event) -> Event {
        let mut event = event.clone();
        if !self.prev_kv {
            event.prev_kv = None;
        }
        event
    }
}

/// The revision of an event (its `mod_revision`; a deletion carries it too).
pub(crate) fn revision_of(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}
