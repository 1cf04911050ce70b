//! The watchers of one watch stream and every response the stream owes its client (etcd's
//! `mvcc.watchStream` + `watchableStore` synced/unsynced groups + the per-stream half of
//! `serverWatchStream`, without goroutines or clocks).
//!
//! The caller feeds inputs in one order and sends the returned responses in that order:
//! client requests ([`WatchStream::create`], [`WatchStream::cancel`],
//! [`WatchStream::request_progress`]), every applied entry's events once
//! ([`WatchStream::apply`]; [`WatchStream::lagged`] when some were lost), catch-up steps
//! ([`WatchStream::catch_up`]) while [`WatchStream::has_unsynced`], and progress ticks
//! ([`WatchStream::progress_tick`]). Given that, each watcher gets every matching event with
//! revision `>= start_revision` exactly once, in revision order, all events of one revision
//! in one response (or one fragmented series).
//!
//! The caller must subscribe to applied events *before* it reads the `current` revisions it
//! passes to `new` and `create`: a watcher starting after `current` relies on every later
//! entry reaching `apply` (a gap in the revisions `apply` sees counts as lost entries).
//!
//! Header revisions are etcd's: `created` and `canceled` carry the current revision, live
//! events their own revision, a catch-up batch the revision storage was read at, a
//! compaction cancel 0. A stream-wide progress request is answered once every watcher is
//! synced (etcd 3.5's `RequestProgressAll`), so its revision never runs ahead of an event.

use std::collections::BTreeMap;

use super::error::WatchError;
use super::fragment;
use super::history::History;
use super::range::WatchRange;
use super::watcher::{State, Watcher, revision_of};
use crate::Error;
use crate::api::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchResponse};
use crate::api::mvccpb::Event;

/// The id of responses not tied to one watcher (etcd's `clientv3.InvalidWatchID`).
pub const INVALID_WATCH_ID: i64 = -1;
/// The `watch_id` a client sends to let the stream choose (etcd's `clientv3.AutoWatchID`).
pub const AUTO_WATCH_ID: i64 = 0;

/// Bounds of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// Watchers one stream may hold (canceled-by-compaction ones included).
    pub max_watchers: usize,
    /// Responses of fragmenting watchers are split at this encoded size (etcd: the max
    /// request bytes plus gRPC overhead).
    pub fragment_bytes: usize,
    /// Events one catch-up read asks storage for (whole revisions; etcd reads up to 1000
    /// revisions per watcher per sync).
    pub catchup_events: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            max_watchers: 10_000,
            fragment_bytes: 1_572_864 + 512 * 1024,
            catchup_events: 1000,
        }
    }
}

/// The watchers of one stream.
#[derive(Debug)]
pub struct WatchStream {
    limits: WatchLimits,
    /// Cluster, member and term of every response; the revision is set per response.
    header: ResponseHeader,
    watchers: BTreeMap<i64, Watcher>,
    /// Where the search for the next automatic id starts (etcd's `nextID`).
    next_auto_id: i64,
    /// A stream-wide progress request waits for every watcher to be synced.
    progress_deferred: bool,
    /// The watcher caught up last; catch-up steps go round the unsynced ones in id order.
    catchup_cursor: i64,
    /// The highest revision handed to `apply`, or known to precede the stream. Revisions
    /// grow by one per applied entry with events, so a larger jump means lost entries.
    applied_up_to: i64,
}

impl WatchStream {
    /// An empty stream. `header` supplies cluster id, member id and raft term; `current` is
    /// the store's revision read after subscribing to applied events.
    pub fn new(limits: WatchLimits, header: ResponseHeader, current: i64) -> WatchStream {
        WatchStream {
            limits,
            header,
            watchers: BTreeMap::new(),
            next_auto_id: 0,
            progress_deferred: false,
            catchup_cursor: i64::MIN,
            applied_up_to: current,
        }
    }

    /// Updates the raft term later responses carry.
    pub fn set_raft_term(&mut self, term: u64) {
        self.header.raft_term = term;
    }

    /// Number of watchers (compacted ones included until canceled).
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// Whether the stream has no watcher.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Whether some watcher still reads history ([`WatchStream::catch_up`] has work).
    pub fn has_unsynced(&self) -> bool {
        self.watchers.values().any(|w| w.state == State::Unsynced)
    }

    /// Creates a watcher; `current` is the store's revision, read after subscribing to
    /// applied events. Answers `created` with the new id, or `created` + `canceled` with
    /// `watch_id = -1` and the reason.
    pub fn create(&mut self, req: &WatchCreateRequest, current: i64) -> WatchResponse {
        let header = header_at(&self.header, current);
        match self.add(req, current) {
            Ok(watch_id) => WatchResponse {
                header,
                watch_id,
                created: true,
                ..WatchResponse::default()
            },
            Err(e) => WatchResponse {
                header,
                watch_id: INVALID_WATCH_ID,
                created: true,
                canceled: true,
                cancel_reason: e.to_string(),
                ..WatchResponse::default()
            },
        }
    }

    fn add(&mut self, req: &WatchCreateRequest, current: i64) -> Result<i64, WatchError> {
        let range = WatchRange::new(&req.key, &req.range_end)?;
        if req.watch_id != AUTO_WATCH_ID && self.watchers.contains_key(&req.watch_id) {
            return Err(WatchError::DuplicateId);
        }
        if self.watchers.len() >= self.limits.max_watchers {
            return Err(WatchError::TooManyWatchers {
                limit: self.limits.max_watchers,
            });
        }
        let id = match req.watch_id {
            AUTO_WATCH_ID => self.auto_id(),
            chosen => chosen,
        };
        let (next_rev, state) = start_position(req.start_revision, current);
        let watcher = Watcher::new(id, range, req, next_rev, state);
        self.watchers.insert(id, watcher);
        Ok(id)
    }

    fn auto_id(&mut self) -> i64 {
        while self.watchers.contains_key(&self.next_auto_id) {
            self.next_auto_id += 1;
        }
        let id = self.next_auto_id;
        self.next_auto_id += 1;
        id
    }

    /// Cancels watcher `id`: a `canceled` response at `current`, nothing for an unknown id
    /// (as etcd).
    pub fn cancel(&mut self, id: i64, current: i64) -> Vec<WatchResponse> {
        if self.watchers.remove(&id).is_none() {
            return Vec::new();
        }
        let mut out = vec![WatchResponse {
            header: header_at(&self.header, current),
            watch_id: id,
            canceled: true,
            ..WatchResponse::default()
        }];
        self.flush_deferred_progress(current, &mut out);
        out
    }

    /// A client's `WatchProgressRequest`: a response with `watch_id = -1` and no events
    /// once every watcher is synced (at once if they are).
    pub fn request_progress(&mut self, current: i64) -> Vec<WatchResponse> {
        self.progress_deferred = true;
        let mut out = Vec::new();
        self.flush_deferred_progress(current, &mut out);
        out
    }

    /// A progress tick (etcd's progress ticker of `sendLoop`): each synced watcher created
    /// with `progress_notify` that got no events since the previous tick gets an empty
    /// response at the revision it has seen everything up to.
    pub fn progress_tick(&mut self, current: i64) -> Vec<WatchResponse> {
        let mut out = Vec::new();
        for w in self.watchers.values_mut().filter(|w| w.progress_notify) {
            if w.progress_due && w.state == State::Synced {
                let revision = current.min(w.next_rev - 1);
                out.push(response(&self.header, revision, w.id, Vec::new()));
            }
            w.progress_due = true;
        }
        out
    }

    /// The events of one applied entry (all of revision `revision`), to every synced watcher
    /// that has not seen that revision yet. An entry after a gap (entries lost on the way,
    /// or a state installed from a snapshot) first sends every synced watcher back to
    /// storage, as etcd's `watchableStore.Restore` does.
    pub fn apply(&mut self, revision: i64, events: &[Event]) -> Vec<WatchResponse> {
        debug_assert!(
            events.iter().all(|e| revision_of(e) == revision),
            "one applied entry carries the events of one revision"
        );
        if revision > self.applied_up_to + 1 {
            self.lagged();
        }
        self.applied_up_to = self.applied_up_to.max(revision);
        let mut out = Vec::new();
        for w in self.watchers.values_mut() {
            if w.state != State::Synced || revision < w.next_rev {
                continue;
            }
            w.next_rev = revision + 1;
            if crate::buggify::drop_watch_event(revision) {
                continue;
            }
            let selected = w.select(events);
            deliver(&self.header, &self.limits, w, revision, selected, &mut out);
        }
        self.flush_deferred_progress(revision, &mut out);
        out
    }

    /// [`WatchStream::apply`] for an entry whose Put events may lack the previous value in
    /// `prev_kv` (applied with previous values off). If a synced watcher that wants
    /// `prev_kv` would get the entry, every synced watcher reads it from history instead,
    /// where `prev_kv` is whole (as after lost entries).
    pub fn apply_without_prev_values(
        &mut self,
        revision: i64,
        events: &[Event],
    ) -> Vec<WatchResponse> {
        let wants_prev = self
            .watchers
            .values()
            .any(|w| w.state == State::Synced && revision >= w.next_rev && w.wants_prev_kv());
        if !wants_prev {
            return self.apply(revision, events);
        }
        self.lagged();
        self.applied_up_to = self.applied_up_to.max(revision);
        Vec::new()
    }

    /// Some applied entries never reached [`WatchStream::apply`]: every synced watcher goes
    /// back to reading history from its next revision.
    pub fn lagged(&mut self) {
        for w in self.watchers.values_mut() {
            if w.state == State::Synced {
                w.state = State::Unsynced;
            }
        }
    }

    /// One catch-up step: the next unsynced watcher (round robin by id) reads one batch of
    /// history. A watcher whose next revision is below the compacted revision is canceled
    /// with `compact_revision` set (etcd's `chooseAll`); a watcher whose batch reached the
    /// present becomes synced.
    pub fn catch_up(&mut self, history: &dyn History) -> Result<Vec<WatchResponse>, Error> {
        let Some(id) = self.next_unsynced() else {
            return Ok(Vec::new());
        };
        self.catchup_cursor = id;
        let compacted = history.compacted_revision();
        let Some(w) = self.watchers.get_mut(&id) else {
            return Ok(Vec::new());
        };
        if w.next_rev < compacted {
            w.state = State::Compacted;
            return Ok(vec![compaction_cancel(&self.header, id, compacted)]);
        }
        if w.next_rev < 0 {
            return Ok(self.skip_history(id, history.current_revision()));
        }
        let limit = self.limits.catchup_events.max(1);
        let Some((events, current)) = read_batch(history, w, compacted, limit)? else {
            return Ok(Vec::new());
        };
        debug_assert!(events.iter().all(|e| revision_of(e) >= w.next_rev));
        match events.last() {
            Some(last) if events.len() >= limit => w.next_rev = revision_of(last) + 1,
            _ => {
                w.next_rev = w.next_rev.max(current + 1);
                w.state = State::Synced;
            }
        }
        let selected = w.select(&events);
        let mut out = Vec::new();
        deliver(&self.header, &self.limits, w, current, selected, &mut out);
        self.flush_deferred_progress(current, &mut out);
        Ok(out)
    }

    /// Syncs watcher `id` at `current` without reading history: etcd reads history from the
    /// byte encoding of a negative start revision, which sorts after every stored revision,
    /// so such a watcher gets only what comes next.
    fn skip_history(&mut self, id: i64, current: i64) -> Vec<WatchResponse> {
        if let Some(w) = self.watchers.get_mut(&id) {
            w.next_rev = current + 1;
            w.state = State::Synced;
        }
        let mut out = Vec::new();
        self.flush_deferred_progress(current, &mut out);
        out
    }

    fn next_unsynced(&self) -> Option<i64> {
        let unsynced = |w: &&Watcher| w.state == State::Unsynced;
        let after = self.watchers.range(self.catchup_cursor.saturating_add(1)..);
        let from_start = self.watchers.range(..);
        after
            .map(|(_, w)| w)
            .find(unsynced)
            .or_else(|| from_start.map(|(_, w)| w).find(unsynced))
            .map(|w| w.id)
    }

    /// Answers a deferred stream-wide progress request if every watcher is synced now. `cap`
    /// is a revision every synced watcher has been given all events up to (or started
    /// after).
    fn flush_deferred_progress(&mut self, cap: i64, out: &mut Vec<WatchResponse>) {
        if !self.progress_deferred {
            return;
        }
        let mut revision = cap;
        for w in self.watchers.values() {
            match w.state {
                State::Unsynced => return,
                State::Synced => revision = revision.min(w.next_rev - 1),
                State::Compacted => {}
            }
        }
        self.progress_deferred = false;
        out.push(response(
            &self.header,
            revision,
            INVALID_WATCH_ID,
            Vec::new(),
        ));
    }
}

/// One batch of `w`'s history from its next revision, or `None` if a compaction ran since
/// `compacted` was read (the next step decides again).
///
/// etcd serves a watcher starting exactly at the compacted revision with what compaction
/// kept of it. Until `Mvcc::events_since` reads at the compacted revision itself, such a
/// watcher starts one revision later instead.
fn read_batch(
    history: &dyn History,
    w: &Watcher,
    compacted: i64,
    limit: usize,
) -> Result<Option<(Vec<Event>, i64)>, Error> {
    let (key, range_end) = w.range.as_request();
    let read = |start: i64| match history.events_since(start, key, range_end, limit) {
        Err(Error::Compacted) => Ok(None),
        other => other.map(Some),
    };
    match read(w.next_rev)? {
        None if w.next_rev == compacted => read(compacted + 1),
        batch => Ok(batch),
    }
}

/// Where a new watcher starts (etcd's `watchableStore.watch`): `0` means after `current`,
/// a future revision waits for it, anything else reads history first.
fn start_position(start_revision: i64, current: i64) -> (i64, State) {
    if start_revision == 0 {
        (current + 1, State::Synced)
    } else if start_revision > current {
        (start_revision, State::Synced)
    } else {
        (start_revision, State::Unsynced)
    }
}

/// Queues `events` for `w` in a response at `revision`, fragmented if it asked.
fn deliver(
    header: &ResponseHeader,
    limits: &WatchLimits,
    w: &mut Watcher,
    revision: i64,
    events: Vec<Event>,
    out: &mut Vec<WatchResponse>,
) {
    if events.is_empty() {
        return;
    }
    w.progress_due = false;
    let response = response(header, revision, w.id, events);
    if w.fragment {
        out.extend(fragment::split(response, limits.fragment_bytes));
    } else {
        out.push(response);
    }
}

fn header_at(template: &ResponseHeader, revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..*template
    })
}

fn response(
    header: &ResponseHeader,
    revision: i64,
    watch_id: i64,
    events: Vec<Event>,
) -> WatchResponse {
    WatchResponse {
        header: header_at(header, revision),
        watch_id,
        events,
        ..WatchResponse::default()
    }
}

/// etcd's cancel of a compacted watcher: header revision 0, no reason, `compact_revision`.
fn compaction_cancel(header: &ResponseHeader, watch_id: i64, compacted: i64) -> WatchResponse {
    WatchResponse {
        header: header_at(header, 0),
        watch_id,
        canceled: true,
        compact_revision: compacted,
        ..WatchResponse::default()
    }
}
