//! Unit tests of the watch registry, each pinning one etcd rule. They run the real state
//! machine on the in-memory engine and no runtime: time is a `progress_tick` call.

use std::sync::Arc;

use prost::Message as _;

use super::{INVALID_WATCH_ID, WatchLimits, WatchStream, fragment};
use crate::api::cairnpb::{InternalRequest, internal_request::Request};
use crate::api::etcdserverpb::watch_create_request::FilterType;
use crate::api::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, PutRequest, RequestOp, ResponseHeader, TxnRequest,
    WatchCreateRequest, WatchResponse, request_op,
};
use crate::api::mvccpb::{Event, event::EventType};
use crate::apply::StateMachine;
use crate::storage::mem::MemEngine;

/// A state machine that applies requests one entry at a time.
struct Store {
    sm: StateMachine,
    index: u64,
}

/// One applied entry, as the node broadcasts it.
struct Entry {
    revision: i64,
    events: Vec<Event>,
    prev_values: bool,
}

impl Store {
    fn new() -> Store {
        let sm = StateMachine::open(Arc::new(MemEngine::new())).expect("open");
        Store { sm, index: 0 }
    }

    fn apply(&mut self, request: Request) -> Entry {
        self.index += 1;
        let data = InternalRequest {
            auth: None,
            id: self.index,
            request: Some(request),
        }
        .encode_to_vec();
        let applied = self
            .sm
            .apply(self.index, &data)
            .expect("apply")
            .expect("applied");
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        let revision = applied
            .events
            .last()
            .and_then(|e| e.kv.as_ref())
            .map_or(0, |kv| kv.mod_revision);
        Entry {
            revision,
            events: applied.events,
            prev_values: applied.prev_values,
        }
    }

    fn put(&mut self, key: &str, value: &str) -> Entry {
        self.apply(Request::Put(put(key, value)))
    }

    fn delete(&mut self, key: &str) -> Entry {
        self.apply(Request::DeleteRange(DeleteRangeRequest {
            key: key.into(),
            ..DeleteRangeRequest::default()
        }))
    }

    fn txn_puts(&mut self, pairs: &[(&str, &str)]) -> Entry {
        let success = pairs
            .iter()
            .map(|(k, v)| RequestOp {
                request: Some(request_op::Request::RequestPut(put(k, v))),
            })
            .collect();
        self.apply(Request::Txn(TxnRequest {
            success,
            ..TxnRequest::default()
        }))
    }

    fn compact(&mut self, revision: i64) {
        self.index += 1;
        let data = InternalRequest {
            auth: None,
            id: self.index,
            request: Some(Request::Compaction(CompactionRequest {
                revision,
                physical: false,
            })),
        }
        .encode_to_vec();
        let applied = self
            .sm
            .apply(self.index, &data)
            .expect("apply")
            .expect("applied");
        assert!(applied.result.is_ok(), "{:?}", applied.result);
    }

    fn current(&self) -> i64 {
        self.sm.current_revision()
    }
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    }
}

fn header() -> ResponseHeader {
    ResponseHeader {
        cluster_id: 7,
        member_id: 9,
        revision: 0,
        raft_term: 2,
    }
}

/// A stream subscribed to `store` now: every later entry must be fed to it.
fn stream(store: &Store) -> WatchStream {
    WatchStream::new(WatchLimits::default(), header(), store.current())
}

fn on_key(key: &str) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        ..WatchCreateRequest::default()
    }
}

fn on_prefix(prefix: &str) -> WatchCreateRequest {
    let mut end = prefix.as_bytes().to_vec();
    match end.last_mut() {
        Some(last) => *last += 1,
        None => end = vec![0],
    }
    WatchCreateRequest {
        key: prefix.into(),
        range_end: end,
        ..WatchCreateRequest::default()
    }
}

fn from(req: WatchCreateRequest, start_revision: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        start_revision,
        ..req
    }
}

/// Creates a watcher and returns its id, asserting it was accepted.
fn create(stream: &mut WatchStream, store: &Store, req: WatchCreateRequest) -> i64 {
    let created = stream.create(&req, store.current());
    assert!(created.created && !created.canceled, "{created:?}");
    assert_eq!(revision(&created), store.current());
    created.watch_id
}

fn feed(stream: &mut WatchStream, entry: &Entry) -> Vec<WatchResponse> {
    if entry.prev_values {
        stream.apply(entry.revision, &entry.events)
    } else {
        stream.apply_without_prev_values(entry.revision, &entry.events)
    }
}

/// Runs catch-up steps until no watcher is unsynced.
fn catch_up(stream: &mut WatchStream, store: &Store) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        if !stream.has_unsynced() {
            return out;
        }
        out.extend(stream.catch_up(&store.sm).expect("catch up"));
    }
    panic!("catch-up did not finish");
}

/// The value of the first event's `prev_kv`, if it has one.
fn prev_value(response: &WatchResponse) -> Option<String> {
    response.events[0]
        .prev_kv
        .as_ref()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

fn revision(response: &WatchResponse) -> i64 {
    response.header.as_ref().map_or(-100, |h| h.revision)
}

/// `(type, key, mod_revision)` of every event.
fn summary(responses: &[WatchResponse]) -> Vec<(i64, &'static str, String, i64)> {
    let mut out = Vec::new();
    for r in responses {
        for e in &r.events {
            let kv = e.kv.as_ref().expect("kv");
            let kind = if e.r#type == EventType::Put as i32 {
                "PUT"
            } else {
                "DELETE"
            };
            out.push((
                r.watch_id,
                kind,
                String::from_utf8_lossy(&kv.key).into_owned(),
                kv.mod_revision,
            ));
        }
    }
    out
}

fn ev(id: i64, kind: &'static str, key: &str, rev: i64) -> (i64, &'static str, String, i64) {
    (id, kind, key.to_string(), rev)
}

#[test]
fn watcher_from_now_sees_only_later_events_each_at_its_revision() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let before = store.put("a", "0");
    let id = create(&mut s, &store, on_key("a"));
    // An entry applied before creation but delivered after it is not repeated.
    assert!(feed(&mut s, &before).is_empty());
    let e1 = store.put("a", "1");
    let e2 = store.delete("a");
    let out: Vec<_> = [feed(&mut s, &e1), feed(&mut s, &e2)].concat();
    assert_eq!(
        summary(&out),
        vec![ev(id, "PUT", "a", 3), ev(id, "DELETE", "a", 4)]
    );
    assert_eq!(out.iter().map(revision).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(
        out[0]
            .header
            .as_ref()
            .map(|h| (h.cluster_id, h.member_id, h.raft_term)),
        Some((7, 9, 2))
    );
}

#[test]
fn fan_out_reaches_each_matching_watcher_once_by_key_prefix_range_and_from_key() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let key = create(&mut s, &store, on_key("foo/1"));
    let prefix = create(&mut s, &store, on_prefix("foo/"));
    let range = create(
        &mut s,
        &store,
        WatchCreateRequest {
            key: b"a".to_vec(),
            range_end: b"foo/2".to_vec(),
            ..Default::default()
        },
    );
    let from_key = create(
        &mut s,
        &store,
        WatchCreateRequest {
            key: b"g".to_vec(),
            range_end: vec![0],
            ..Default::default()
        },
    );
    let everything = create(&mut s, &store, on_prefix(""));
    let e1 = store.put("foo/1", "x");
    let e2 = store.put("foo/2", "y");
    let e3 = store.put("zz", "z");
    let out: Vec<_> = [feed(&mut s, &e1), feed(&mut s, &e2), feed(&mut s, &e3)].concat();
    assert_eq!(
        summary(&out),
        vec![
            ev(key, "PUT", "foo/1", 2),
            ev(prefix, "PUT", "foo/1", 2),
            ev(range, "PUT", "foo/1", 2),
            ev(everything, "PUT", "foo/1", 2),
            ev(prefix, "PUT", "foo/2", 3),
            ev(everything, "PUT", "foo/2", 3),
            ev(from_key, "PUT", "zz", 4),
            ev(everything, "PUT", "zz", 4),
        ]
    );
}

#[test]
fn range_end_at_or_before_key_is_refused_with_etcds_reason() {
    let store = Store::new();
    let mut s = stream(&store);
    for end in ["a", "A"] {
        let req = WatchCreateRequest {
            key: b"a".to_vec(),
            range_end: end.into(),
            ..Default::default()
        };
        let refused = s.create(&req, store.current());
        assert!(refused.created && refused.canceled);
        assert_eq!(refused.watch_id, INVALID_WATCH_ID);
        assert_eq!(refused.cancel_reason, "mvcc: watcher range is empty");
        assert_eq!(revision(&refused), 1);
    }
    assert!(s.is_empty());
}

#[test]
fn auto_ids_count_up_from_zero_skipping_ids_clients_chose() {
    let store = Store::new();
    let mut s = stream(&store);
    assert_eq!(
        create(
            &mut s,
            &store,
            WatchCreateRequest {
                watch_id: 1,
                ..on_key("a")
            }
        ),
        1
    );
    assert_eq!(create(&mut s, &store, on_key("a")), 0);
    assert_eq!(create(&mut s, &store, on_key("a")), 2);
    assert_eq!(
        create(
            &mut s,
            &store,
            WatchCreateRequest {
                watch_id: -7,
                ..on_key("a")
            }
        ),
        -7
    );
}

#[test]
fn duplicate_client_chosen_id_is_refused_and_the_first_watcher_stays() {
    let mut store = Store::new();
    let mut s = stream(&store);
    create(
        &mut s,
        &store,
        WatchCreateRequest {
            watch_id: 5,
            ..on_key("a")
        },
    );
    let refused = s.create(
        &WatchCreateRequest {
            watch_id: 5,
            ..on_key("b")
        },
        store.current(),
    );
    assert_eq!(
        (refused.watch_id, refused.canceled),
        (INVALID_WATCH_ID, true)
    );
    assert_eq!(
        refused.cancel_reason,
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    let e = store.put("a", "1");
    assert_eq!(summary(&feed(&mut s, &e)), vec![ev(5, "PUT", "a", 2)]);
}

#[test]
fn a_stream_holds_at_most_max_watchers() {
    let store = Store::new();
    let limits = WatchLimits {
        max_watchers: 2,
        ..WatchLimits::default()
    };
    let mut s = WatchStream::new(limits, header(), store.current());
    create(&mut s, &store, on_key("a"));
    create(&mut s, &store, on_key("b"));
    let refused = s.create(&on_key("c"), store.current());
    assert!(refused.canceled);
    assert_eq!(
        refused.cancel_reason,
        "cairn: too many watchers on one watch stream (limit 2)"
    );
    assert_eq!(s.cancel(0, store.current()).len(), 1);
    create(&mut s, &store, on_key("c"));
}

#[test]
fn noput_and_nodelete_filters_drop_events_and_send_nothing_when_all_are_dropped() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let no_put = create(
        &mut s,
        &store,
        WatchCreateRequest {
            filters: vec![FilterType::Noput as i32],
            ..on_key("a")
        },
    );
    let no_delete = create(
        &mut s,
        &store,
        WatchCreateRequest {
            filters: vec![FilterType::Nodelete as i32],
            ..on_key("a")
        },
    );
    let e1 = store.put("a", "1");
    let e2 = store.delete("a");
    let put_out = feed(&mut s, &e1);
    let delete_out = feed(&mut s, &e2);
    assert_eq!(summary(&put_out), vec![ev(no_delete, "PUT", "a", 2)]);
    assert_eq!(
        put_out.len(),
        1,
        "no empty response for the filtered watcher"
    );
    assert_eq!(summary(&delete_out), vec![ev(no_put, "DELETE", "a", 3)]);
}

#[test]
fn prev_kv_is_sent_only_to_watchers_that_asked() {
    let mut store = Store::new();
    store.put("a", "old");
    let mut s = stream(&store);
    let with = create(
        &mut s,
        &store,
        WatchCreateRequest {
            prev_kv: true,
            ..on_key("a")
        },
    );
    create(&mut s, &store, on_key("a"));
    let e1 = store.put("a", "new");
    let e2 = store.delete("a");
    let e3 = store.put("a", "reborn");
    let out: Vec<_> = [feed(&mut s, &e1), feed(&mut s, &e2), feed(&mut s, &e3)].concat();
    let seen: Vec<_> = out.iter().map(|r| (r.watch_id, prev_value(r))).collect();
    assert_eq!(
        seen,
        vec![
            (with, Some("old".to_string())),
            (1, None),
            (with, Some("new".to_string())),
            (1, None),
            (with, None),
            (1, None),
        ],
        "a delete's prev_kv is the deleted pair; a (re)creation has none"
    );
}

#[test]
fn an_entry_applied_without_previous_values_reaches_a_prev_kv_watcher_through_history() {
    let mut store = Store::new();
    store.put("a", "old");
    store.sm.set_prev_values(false);
    let mut with_prev = stream(&store);
    let mut without = stream(&store);
    let asks = create(
        &mut with_prev,
        &store,
        WatchCreateRequest {
            prev_kv: true,
            ..on_key("a")
        },
    );
    let plain = create(&mut with_prev, &store, on_key("a"));
    let alone = create(&mut without, &store, on_key("a"));
    let e1 = store.put("a", "new");
    assert!(!e1.prev_values);
    // Nobody on this stream wants prev_kv: the entry is delivered as it is.
    let out = feed(&mut without, &e1);
    assert_eq!(summary(&out), vec![ev(alone, "PUT", "a", e1.revision)]);
    // A watcher wants it: the stream reads the entry from history, where it is whole.
    assert!(feed(&mut with_prev, &e1).is_empty());
    assert!(with_prev.has_unsynced());
    let out = catch_up(&mut with_prev, &store);
    let seen: Vec<_> = out.iter().map(|r| (r.watch_id, prev_value(r))).collect();
    assert_eq!(seen, vec![(asks, Some("old".to_string())), (plain, None)]);
    // With previous values back on, entries are delivered live again, exactly once.
    store.sm.set_prev_values(true);
    let e2 = store.put("a", "newer");
    assert!(e2.prev_values);
    let out = feed(&mut with_prev, &e2);
    let seen: Vec<_> = out.iter().map(|r| (r.watch_id, prev_value(r))).collect();
    assert_eq!(seen, vec![(asks, Some("new".to_string())), (plain, None)]);
    assert!(!with_prev.has_unsynced());
}

#[test]
fn all_events_of_one_txn_arrive_in_one_response_in_txn_order() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let id = create(&mut s, &store, on_prefix(""));
    let e = store.txn_puts(&[("b", "1"), ("a", "2"), ("c", "3")]);
    let out = feed(&mut s, &e);
    assert_eq!(out.len(), 1);
    assert_eq!(
        summary(&out),
        vec![
            ev(id, "PUT", "b", 2),
            ev(id, "PUT", "a", 2),
            ev(id, "PUT", "c", 2)
        ]
    );
}

#[test]
fn start_revision_in_the_past_replays_history_then_continues_live_without_duplicates() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let early = [
        store.put("a", "1"),
        store.put("b", "1"),
        store.put("a", "2"),
    ];
    let id = create(&mut s, &store, from(on_prefix(""), 3));
    assert!(s.has_unsynced());
    // Applied entries still queued for this stream arrive while the watcher is unsynced.
    for entry in &early {
        assert!(feed(&mut s, entry).is_empty());
    }
    let replay = catch_up(&mut s, &store);
    assert_eq!(
        summary(&replay),
        vec![ev(id, "PUT", "b", 3), ev(id, "PUT", "a", 4)]
    );
    assert_eq!(
        revision(&replay[0]),
        4,
        "a catch-up batch carries the revision it was read at"
    );
    let late = store.put("c", "1");
    assert_eq!(summary(&feed(&mut s, &late)), vec![ev(id, "PUT", "c", 5)]);
}

#[test]
fn entries_applied_during_catch_up_are_delivered_once() {
    let mut store = Store::new();
    let mut s = stream(&store);
    store.put("a", "1");
    let id = create(&mut s, &store, from(on_key("a"), 1));
    let raced = store.put("a", "2");
    let replay = catch_up(&mut s, &store);
    // The entry was in storage when catch-up read it, and reaches the stream afterwards.
    assert!(feed(&mut s, &raced).is_empty());
    assert_eq!(
        summary(&replay),
        vec![ev(id, "PUT", "a", 2), ev(id, "PUT", "a", 3)]
    );
}

#[test]
fn catch_up_reads_whole_revisions_in_bounded_batches() {
    let mut store = Store::new();
    let limits = WatchLimits {
        catchup_events: 2,
        ..WatchLimits::default()
    };
    let mut s = WatchStream::new(limits, header(), store.current());
    store.put("a", "1");
    store.txn_puts(&[("b", "1"), ("c", "1"), ("d", "1")]);
    store.put("e", "1");
    let id = create(&mut s, &store, from(on_prefix(""), 1));
    let first = s.catch_up(&store.sm).expect("catch up");
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].events.len(),
        4,
        "the batch ends with the revision that reached the limit"
    );
    assert!(s.has_unsynced());
    let second = catch_up(&mut s, &store);
    assert_eq!(summary(&second), vec![ev(id, "PUT", "e", 4)]);
}

#[test]
fn start_revision_below_compacted_cancels_with_compact_revision_and_header_zero() {
    let mut store = Store::new();
    let mut s = stream(&store);
    for i in 0..4 {
        store.put("a", &i.to_string());
    }
    store.compact(4);
    let id = create(&mut s, &store, from(on_key("a"), 3));
    let out = catch_up(&mut s, &store);
    assert_eq!(out.len(), 1);
    let cancel = &out[0];
    assert_eq!(
        (cancel.watch_id, cancel.canceled, cancel.compact_revision),
        (id, true, 4)
    );
    assert_eq!(cancel.cancel_reason, "");
    assert_eq!(revision(cancel), 0);
    assert!(!s.has_unsynced());
    let later = store.put("a", "x");
    assert!(
        feed(&mut s, &later).is_empty(),
        "a compacted watcher gets nothing more"
    );
}

#[test]
fn start_revision_at_the_compacted_revision_is_served() {
    let mut store = Store::new();
    let mut s = stream(&store);
    for i in 0..4 {
        store.put("a", &i.to_string());
    }
    store.compact(4);
    store.put("a", "after");
    let id = create(&mut s, &store, from(on_key("a"), 4));
    let out = catch_up(&mut s, &store);
    assert!(out.iter().all(|r| !r.canceled), "{out:?}");
    assert!(summary(&out).contains(&ev(id, "PUT", "a", 6)));
}

#[test]
fn start_revision_at_the_compacted_revision_gets_what_compaction_kept_of_it() {
    let mut store = Store::new();
    let mut s = stream(&store);
    store.put("a", "1");
    store.put("b", "1");
    store.put("a", "2");
    store.delete("b");
    store.compact(4);
    let id = create(
        &mut s,
        &store,
        WatchCreateRequest {
            prev_kv: true,
            ..from(on_prefix(""), 4)
        },
    );
    let out = catch_up(&mut s, &store);
    // The put at 4 survives compaction at 4; its prev_kv (at 3) is compacted away. The
    // deletion at 5 keeps its prev_kv, read at 4.
    assert_eq!(
        summary(&out),
        vec![ev(id, "PUT", "a", 4), ev(id, "DELETE", "b", 5)]
    );
    let prev: Vec<Option<i64>> = out[0]
        .events
        .iter()
        .map(|e| e.prev_kv.as_ref().map(|kv| kv.mod_revision))
        .collect();
    assert_eq!(prev, vec![None, Some(3)]);
}

#[test]
fn a_negative_start_revision_gets_no_history_unless_below_the_compacted_revision() {
    let mut store = Store::new();
    store.put("a", "1");
    let mut s = stream(&store);
    let skips = create(&mut s, &store, from(on_key("a"), -1));
    let canceled = create(&mut s, &store, from(on_key("a"), -2));
    let out = catch_up(&mut s, &store);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].watch_id, out[0].canceled, out[0].compact_revision),
        (canceled, true, -1)
    );
    let e = store.put("a", "2");
    assert_eq!(summary(&feed(&mut s, &e)), vec![ev(skips, "PUT", "a", 3)]);
}

#[test]
fn a_compacted_watcher_keeps_its_id_until_canceled() {
    let mut store = Store::new();
    let mut s = stream(&store);
    store.put("a", "1");
    store.put("a", "2");
    store.compact(3);
    let id = create(
        &mut s,
        &store,
        WatchCreateRequest {
            watch_id: 4,
            ..from(on_key("a"), 1)
        },
    );
    catch_up(&mut s, &store);
    let again = s.create(
        &WatchCreateRequest {
            watch_id: id,
            ..on_key("a")
        },
        store.current(),
    );
    assert_eq!(
        again.cancel_reason,
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    let canceled = s.cancel(id, store.current());
    assert_eq!(
        (
            canceled[0].watch_id,
            canceled[0].canceled,
            canceled[0].compact_revision
        ),
        (id, true, 0)
    );
    assert!(s.is_empty());
}

#[test]
fn cancel_stops_events_and_an_unknown_id_gets_no_response() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let id = create(&mut s, &store, on_key("a"));
    store.put("x", "1");
    let canceled = s.cancel(id, store.current());
    assert_eq!(canceled.len(), 1);
    assert_eq!(
        (
            canceled[0].watch_id,
            canceled[0].canceled,
            revision(&canceled[0])
        ),
        (id, true, 2)
    );
    let e = store.put("a", "1");
    assert!(feed(&mut s, &e).is_empty());
    assert!(s.cancel(id, store.current()).is_empty());
    assert!(s.cancel(99, store.current()).is_empty());
}

#[test]
fn future_start_revision_waits_for_that_revision() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let id = create(&mut s, &store, from(on_key("a"), 3));
    assert!(!s.has_unsynced());
    let e2 = store.put("a", "1");
    let e3 = store.put("a", "2");
    assert!(feed(&mut s, &e2).is_empty());
    assert_eq!(summary(&feed(&mut s, &e3)), vec![ev(id, "PUT", "a", 3)]);
}

#[test]
fn a_lagged_stream_catches_up_from_storage_without_gaps_or_duplicates() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let id = create(&mut s, &store, on_prefix(""));
    let future = create(&mut s, &store, from(on_key("k"), 9));
    let first = store.put("k", "1");
    let mut out = feed(&mut s, &first);
    // Entries 3..=6 never reach the stream.
    for i in 2..=5 {
        store.put("k", &i.to_string());
    }
    s.lagged();
    let seventh = store.put("k", "6");
    out.extend(feed(&mut s, &seventh));
    out.extend(catch_up(&mut s, &store));
    for i in 7..=9 {
        let entry = store.put("k", &i.to_string());
        out.extend(feed(&mut s, &entry));
    }
    let revisions: Vec<i64> = summary(&out)
        .iter()
        .filter(|e| e.0 == id)
        .map(|e| e.3)
        .collect();
    assert_eq!(revisions, (2..=10).collect::<Vec<_>>());
    let future_revisions: Vec<i64> = summary(&out)
        .iter()
        .filter(|e| e.0 == future)
        .map(|e| e.3)
        .collect();
    assert_eq!(future_revisions, vec![9, 10]);
}

#[test]
fn an_entry_after_a_gap_sends_synced_watchers_back_to_storage() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let id = create(&mut s, &store, on_prefix(""));
    let e2 = store.put("a", "1");
    store.put("b", "1");
    let e4 = store.put("c", "1");
    let mut out = feed(&mut s, &e2);
    // Entry 3 never arrives (a snapshot was installed, say); entry 4 does.
    out.extend(feed(&mut s, &e4));
    assert!(s.has_unsynced());
    out.extend(catch_up(&mut s, &store));
    let revisions: Vec<i64> = summary(&out).iter().map(|e| e.3).collect();
    assert_eq!(revisions, vec![2, 3, 4]);
    assert!(summary(&out).iter().all(|e| e.0 == id));
}

#[test]
fn progress_request_is_answered_at_once_when_every_watcher_is_synced() {
    let mut store = Store::new();
    let mut s = stream(&store);
    store.put("a", "1");
    let out = s.request_progress(store.current());
    assert_eq!(out.len(), 1, "with no watcher too");
    create(&mut s, &store, on_key("a"));
    create(&mut s, &store, from(on_key("a"), 50));
    let out = s.request_progress(store.current());
    assert_eq!(out.len(), 1);
    let progress = &out[0];
    assert_eq!(
        (progress.watch_id, progress.events.len(), revision(progress)),
        (INVALID_WATCH_ID, 0, 2)
    );
    assert!(!progress.created && !progress.canceled);
}

#[test]
fn progress_request_waits_until_unsynced_watchers_caught_up() {
    let mut store = Store::new();
    let mut s = stream(&store);
    store.put("a", "1");
    store.put("a", "2");
    let id = create(&mut s, &store, from(on_key("a"), 1));
    assert!(s.request_progress(store.current()).is_empty());
    let out = catch_up(&mut s, &store);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        summary(&out[..1]),
        vec![ev(id, "PUT", "a", 2), ev(id, "PUT", "a", 3)]
    );
    assert_eq!((out[1].watch_id, revision(&out[1])), (INVALID_WATCH_ID, 3));
}

#[test]
fn progress_ticks_notify_synced_watchers_that_got_no_events_since_the_last_tick() {
    let mut store = Store::new();
    let mut s = stream(&store);
    let notified = create(
        &mut s,
        &store,
        WatchCreateRequest {
            progress_notify: true,
            ..on_key("a")
        },
    );
    create(&mut s, &store, on_key("a"));
    let behind = create(
        &mut s,
        &store,
        WatchCreateRequest {
            progress_notify: true,
            ..from(on_key("b"), 1)
        },
    );
    let b = store.put("b", "1");
    feed(&mut s, &b);
    let tick = s.progress_tick(store.current());
    assert_eq!(
        tick.iter()
            .map(|r| (r.watch_id, revision(r)))
            .collect::<Vec<_>>(),
        vec![(notified, 2)]
    );
    let e = store.put("a", "1");
    feed(&mut s, &e);
    assert!(
        s.progress_tick(store.current()).is_empty(),
        "a watcher that got events skips one tick"
    );
    assert!(!catch_up(&mut s, &store).is_empty());
    let tick = s.progress_tick(store.current());
    assert_eq!(
        tick.iter().map(|r| r.watch_id).collect::<Vec<_>>(),
        vec![notified],
        "caught-up events count"
    );
    let tick = s.progress_tick(store.current());
    assert_eq!(
        tick.iter()
            .map(|r| (r.watch_id, revision(r), r.events.len()))
            .collect::<Vec<_>>(),
        vec![(notified, 3, 0), (behind, 3, 0)]
    );
    assert!(behind > notified);
}

#[test]
fn a_fragmenting_watcher_gets_fragments_that_reassemble_into_the_response() {
    let mut store = Store::new();
    let limits = WatchLimits {
        fragment_bytes: 200,
        ..WatchLimits::default()
    };
    let mut s = WatchStream::new(limits, header(), store.current());
    let id = create(
        &mut s,
        &store,
        WatchCreateRequest {
            fragment: true,
            ..on_prefix("")
        },
    );
    let whole = create(&mut s, &store, on_prefix(""));
    let value = "v".repeat(60);
    let pairs: Vec<(String, String)> = (0..6).map(|i| (format!("k{i}"), value.clone())).collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let e = store.txn_puts(&refs);
    let out = feed(&mut s, &e);
    let fragments: Vec<_> = out.iter().filter(|r| r.watch_id == id).collect();
    assert!(fragments.len() > 1);
    assert!(fragments[..fragments.len() - 1].iter().all(|r| r.fragment));
    assert!(!fragments[fragments.len() - 1].fragment);
    let reassembled: Vec<Event> = fragments.iter().flat_map(|r| r.events.clone()).collect();
    let unfragmented: Vec<_> = out.iter().filter(|r| r.watch_id == whole).collect();
    assert_eq!(unfragmented.len(), 1);
    assert_eq!(reassembled, unfragmented[0].events);
}

fn sized_event(key: &str, value_len: usize) -> Event {
    Event {
        r#type: EventType::Put as i32,
        kv: Some(crate::api::mvccpb::KeyValue {
            key: key.into(),
            value: vec![b'x'; value_len],
            mod_revision: 2,
            create_revision: 2,
            version: 1,
            lease: 0,
        }),
        prev_kv: None,
    }
}

fn response_with(events: Vec<Event>) -> WatchResponse {
    WatchResponse {
        header: Some(header()),
        watch_id: 3,
        events,
        ..WatchResponse::default()
    }
}

#[test]
fn a_response_below_the_limit_or_with_one_event_is_sent_whole() {
    let small = response_with(vec![sized_event("a", 10), sized_event("b", 10)]);
    assert_eq!(fragment::split(small.clone(), 1000), vec![small]);
    let single = response_with(vec![sized_event("a", 5000)]);
    assert_eq!(fragment::split(single.clone(), 1000), vec![single]);
}

#[test]
fn fragments_stay_below_the_limit_unless_one_event_alone_exceeds_it() {
    let events = vec![
        sized_event("a", 300),
        sized_event("b", 300),
        sized_event("c", 2000),
        sized_event("d", 300),
        sized_event("e", 10),
    ];
    let fragments = fragment::split(response_with(events.clone()), 1000);
    let shape: Vec<Vec<String>> = fragments
        .iter()
        .map(|r| {
            r.events
                .iter()
                .map(|e| String::from_utf8_lossy(&e.kv.as_ref().unwrap().key).into_owned())
                .collect()
        })
        .collect();
    assert_eq!(shape, vec![vec!["a", "b"], vec!["c"], vec!["d", "e"]]);
    assert_eq!(
        fragments.iter().map(|r| r.fragment).collect::<Vec<_>>(),
        vec![true, true, false]
    );
    for r in &fragments {
        assert_eq!((r.watch_id, r.header), (3, Some(header())));
        assert!(r.events.len() == 1 || r.encoded_len() < 1000);
    }
}

/// A tiny deterministic generator (no randomness of core's own).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn watchers_see_each_event_once_in_order_whatever_entries_the_stream_loses() {
    for seed in 0..20 {
        let mut rng = Lcg(seed);
        let mut store = Store::new();
        let limits = WatchLimits {
            catchup_events: 3,
            ..WatchLimits::default()
        };
        let mut s = WatchStream::new(limits, header(), store.current());
        let all = create(&mut s, &store, on_prefix(""));
        let some = create(
            &mut s,
            &store,
            WatchCreateRequest {
                prev_kv: true,
                ..on_prefix("k1")
            },
        );
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for step in 0..60 {
            let key = format!("k{}", rng.below(3));
            let entry = if rng.below(4) == 0 {
                store.delete(&key)
            } else {
                store.put(&key, &step.to_string())
            };
            expected.extend(entry.events.clone());
            match rng.below(5) {
                0 => s.lagged(),
                _ => out.extend(feed(&mut s, &entry)),
            }
            if rng.below(3) == 0 && s.has_unsynced() {
                out.extend(s.catch_up(&store.sm).expect("catch up"));
            }
        }
        out.extend(catch_up(&mut s, &store));
        let got = |id: i64| -> Vec<Event> {
            out.iter()
                .filter(|r| r.watch_id == id)
                .flat_map(|r| r.events.clone())
                .collect()
        };
        let strip = |e: &Event| Event {
            prev_kv: None,
            ..e.clone()
        };
        assert_eq!(
            got(all),
            expected.iter().map(strip).collect::<Vec<_>>(),
            "seed {seed}"
        );
        let in_k1: Vec<Event> = expected
            .iter()
            .filter(|e| e.kv.as_ref().is_some_and(|kv| kv.key.starts_with(b"k1")))
            .cloned()
            .collect();
        assert_eq!(got(some), in_k1, "seed {seed}");
    }
}
