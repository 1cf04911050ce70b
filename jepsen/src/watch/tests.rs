//! One passing and one violating history per guarantee, each asserting the rule reported.
//!
//! The committed history all tests share:
//! rev 2 `put a=1`; rev 3 (a txn) `put b=1`, `put a=2`; rev 4 `delete a`; rev 5 `put c=1`;
//! rev 6 `put a=3` (a re-creation).

use super::*;

fn kv(key: &str, value: &str, create: Revision, modified: Revision, version: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        create_revision: create,
        mod_revision: modified,
        version,
        lease: 0,
    }
}

fn put(kv: KeyValue) -> Event {
    Event {
        kind: EventType::Put,
        kv,
        prev_kv: None,
    }
}

fn delete(key: &str, revision: Revision) -> Event {
    Event {
        kind: EventType::Delete,
        kv: KeyValue {
            key: key.into(),
            mod_revision: revision,
            ..KeyValue::default()
        },
        prev_kv: None,
    }
}

fn a2() -> Event {
    put(kv("a", "1", 2, 2, 1))
}
fn b3() -> Event {
    put(kv("b", "1", 3, 3, 1))
}
fn a3() -> Event {
    put(kv("a", "2", 2, 3, 2))
}
fn a4() -> Event {
    delete("a", 4)
}
fn c5() -> Event {
    put(kv("c", "1", 5, 5, 1))
}
fn a6() -> Event {
    put(kv("a", "3", 6, 6, 1))
}

fn with_prev(mut event: Event, prev: KeyValue) -> Event {
    event.prev_kv = Some(prev);
    event
}

fn commits() -> Vec<Commit> {
    let commit = |revision, events| Commit {
        revision,
        events,
        line: None,
    };
    vec![
        commit(2, vec![a2()]),
        commit(3, vec![b3(), a3()]),
        commit(4, vec![a4()]),
        commit(5, vec![c5()]),
        commit(6, vec![a6()]),
    ]
}

/// Every key (`""` with `range_end "\0"`) from revision 1.
fn all_keys() -> WatchRequest {
    WatchRequest {
        range_end: vec![0],
        start_revision: 1,
        ..WatchRequest::default()
    }
}

fn responses(batches: Vec<Vec<Event>>) -> Vec<WatchResponse> {
    batches
        .into_iter()
        .map(|events| WatchResponse {
            header_revision: events.last().map_or(0, |e| e.kv.mod_revision),
            events,
            ..WatchResponse::default()
        })
        .collect()
}

fn watcher(request: WatchRequest, responses: Vec<WatchResponse>) -> Watcher {
    Watcher {
        id: 1,
        request,
        compacted_before: 0,
        responses,
        line: None,
    }
}

fn cancel(compact_revision: Revision) -> WatchResponse {
    WatchResponse {
        canceled: true,
        compact_revision,
        ..WatchResponse::default()
    }
}

/// The rule broken by `watcher` against the shared history (None: all kept).
fn broken(watcher: Watcher) -> Option<Rule> {
    broken_with(watcher, vec![])
}

fn broken_with(watcher: Watcher, compactions: Vec<Revision>) -> Option<Rule> {
    let history = WatchHistory {
        commits: commits(),
        compactions,
        watchers: vec![watcher],
    };
    match check(&history).expect("well-formed history") {
        WatchVerdict::Ok => None,
        WatchVerdict::Violation(v) => {
            assert!(!v.to_string().is_empty());
            Some(v.rule)
        }
    }
}

fn everything() -> Vec<Vec<Event>> {
    vec![vec![a2()], vec![b3(), a3()], vec![a4()], vec![c5(), a6()]]
}

#[test]
fn watch_of_every_key_receiving_every_event_once_in_order_passes() {
    assert_eq!(broken(watcher(all_keys(), responses(everything()))), None);
}

#[test]
fn filter_single_key_with_nodelete_passes_and_a_filtered_delete_is_reported() {
    let request = WatchRequest {
        key: "a".into(),
        start_revision: 1,
        no_delete: true,
        ..WatchRequest::default()
    };
    let good = vec![vec![a2()], vec![a3()], vec![a6()]];
    assert_eq!(broken(watcher(request.clone(), responses(good))), None);
    let bad = vec![vec![a2()], vec![a3()], vec![a4()]];
    assert_eq!(broken(watcher(request, responses(bad))), Some(Rule::Filter));
}

#[test]
fn filter_key_outside_the_range_is_reported() {
    let request = WatchRequest {
        key: "a".into(),
        range_end: "b".into(),
        start_revision: 1,
        ..WatchRequest::default()
    };
    let good = vec![vec![a2()], vec![a3()], vec![a4()], vec![a6()]];
    assert_eq!(broken(watcher(request.clone(), responses(good))), None);
    let bad = vec![vec![a2()], vec![b3(), a3()]];
    assert_eq!(broken(watcher(request, responses(bad))), Some(Rule::Filter));
}

#[test]
fn range_forms_follow_etcd() {
    let request = |key: &str, end: &[u8]| WatchRequest {
        key: key.into(),
        range_end: end.to_vec(),
        ..WatchRequest::default()
    };
    assert!(request("a", b"").covers(b"a") && !request("a", b"").covers(b"ab"));
    assert!(request("b", b"\0").covers(b"zz") && !request("b", b"\0").covers(b"a"));
    assert!(request("a", b"c").covers(b"b") && !request("a", b"c").covers(b"c"));
    assert!(request("", b"\0").covers(b"a") && request("", b"").covers(b"\0"));
}

#[test]
fn committed_event_with_a_wrong_value_is_reported() {
    let mut wrong = a2();
    wrong.kv.value = "x".into();
    assert_eq!(
        broken(watcher(all_keys(), responses(vec![vec![wrong]]))),
        Some(Rule::Committed)
    );
}

#[test]
fn committed_event_at_an_uncommitted_revision_is_reported() {
    let mut batches = everything();
    batches.push(vec![put(kv("d", "1", 7, 7, 1))]);
    assert_eq!(
        broken(watcher(all_keys(), responses(batches))),
        Some(Rule::Committed)
    );
}

#[test]
fn derivable_creation_with_version_two_is_reported() {
    let mut bad = a2();
    bad.kv.version = 2;
    assert_eq!(
        broken(watcher(all_keys(), responses(vec![vec![bad]]))),
        Some(Rule::Derivable)
    );
    // The passing side: a re-created key (rev 6) is version 1 with create == mod again.
    let request = WatchRequest {
        start_revision: 6,
        ..all_keys()
    };
    assert_eq!(broken(watcher(request, responses(vec![vec![a6()]]))), None);
}

#[test]
fn unique_event_delivered_twice_is_reported() {
    let twice = vec![vec![a2()], vec![a2(), b3(), a3()]];
    assert_eq!(
        broken(watcher(all_keys(), responses(twice))),
        Some(Rule::Unique)
    );
}

#[test]
fn ordered_within_a_revision_follows_the_commit_order() {
    let swapped = vec![vec![a2()], vec![a3(), b3()], vec![a4()]];
    assert_eq!(
        broken(watcher(all_keys(), responses(swapped))),
        Some(Rule::Ordered)
    );
}

#[test]
fn ordered_across_revisions_a_late_event_is_a_reorder_not_a_gap() {
    let late = vec![vec![a2()], vec![a4()], vec![b3(), a3()]];
    assert_eq!(
        broken(watcher(all_keys(), responses(late))),
        Some(Rule::Ordered)
    );
}

#[test]
fn resume_at_a_revision_delivers_exactly_the_events_from_it() {
    let from_4 = WatchRequest {
        start_revision: 4,
        ..all_keys()
    };
    let good = vec![vec![a4()], vec![c5(), a6()]];
    assert_eq!(broken(watcher(from_4.clone(), responses(good))), None);
    let too_early = vec![vec![b3(), a3()], vec![a4()]];
    assert_eq!(
        broken(watcher(from_4.clone(), responses(too_early))),
        Some(Rule::Resume)
    );
    let late_start = vec![vec![c5()], vec![a6()]];
    assert_eq!(
        broken(watcher(from_4, responses(late_start))),
        Some(Rule::Resume)
    );
}

#[test]
fn no_gaps_a_skipped_revision_is_reported() {
    let skipped = vec![vec![a2()], vec![b3(), a3()], vec![c5()]];
    assert_eq!(
        broken(watcher(all_keys(), responses(skipped))),
        Some(Rule::NoGaps)
    );
}

#[test]
fn no_gaps_holds_up_to_the_last_revision_reached_only() {
    let stopped_early = vec![vec![a2()], vec![b3(), a3()]];
    assert_eq!(broken(watcher(all_keys(), responses(stopped_early))), None);
    let half_a_revision = vec![vec![a2()], vec![b3()]];
    assert_eq!(
        broken(watcher(all_keys(), responses(half_a_revision))),
        Some(Rule::NoGaps)
    );
}

#[test]
fn no_gaps_from_now_starts_at_the_first_event_delivered() {
    let from_now = WatchRequest {
        start_revision: 0,
        ..all_keys()
    };
    let good = vec![vec![c5()], vec![a6()]];
    assert_eq!(broken(watcher(from_now.clone(), responses(good))), None);
    let second_half = vec![vec![a3()], vec![a4()]];
    assert_eq!(
        broken(watcher(from_now, responses(second_half))),
        Some(Rule::NoGaps)
    );
}

#[test]
fn atomic_a_revision_split_needs_the_fragment_flag() {
    let mut split = responses(vec![vec![a2()], vec![b3()], vec![a3()], vec![a4()]]);
    assert_eq!(
        broken(watcher(all_keys(), split.clone())),
        Some(Rule::Atomic)
    );
    split[1].fragment = true;
    assert_eq!(broken(watcher(all_keys(), split)), None);
}

#[test]
fn prev_kv_is_the_previous_state_when_requested() {
    let request = WatchRequest {
        prev_kv: true,
        ..all_keys()
    };
    let good = vec![
        vec![a2()],
        vec![b3(), with_prev(a3(), kv("a", "1", 2, 2, 1))],
        vec![with_prev(a4(), kv("a", "2", 2, 3, 2))],
        vec![c5(), a6()],
    ];
    assert_eq!(broken(watcher(request.clone(), responses(good))), None);
    let stale = vec![
        vec![a2()],
        vec![b3(), with_prev(a3(), kv("a", "1", 2, 2, 1))],
        vec![with_prev(a4(), kv("a", "1", 2, 2, 1))],
    ];
    assert_eq!(
        broken(watcher(request, responses(stale))),
        Some(Rule::PrevKv)
    );
}

#[test]
fn prev_kv_may_be_missing_only_when_the_revision_before_was_compacted() {
    let request = WatchRequest {
        prev_kv: true,
        start_revision: 3,
        ..all_keys()
    };
    let without_prev = vec![vec![b3(), a3()]];
    assert_eq!(
        broken_with(
            watcher(request.clone(), responses(without_prev.clone())),
            vec![2]
        ),
        Some(Rule::PrevKv)
    );
    assert_eq!(
        broken_with(watcher(request.clone(), responses(without_prev)), vec![3]),
        None
    );
    let wrong_prev = vec![vec![b3(), with_prev(a3(), kv("a", "9", 2, 2, 1))]];
    assert_eq!(
        broken_with(watcher(request, responses(wrong_prev)), vec![3]),
        Some(Rule::PrevKv)
    );
}

#[test]
fn a_deletion_at_a_compaction_revision_may_be_missed_but_not_reordered() {
    let from_four = WatchRequest {
        start_revision: 4,
        ..all_keys()
    };
    let without_delete = responses(vec![vec![c5(), a6()]]);
    assert_eq!(
        broken_with(watcher(from_four.clone(), without_delete.clone()), vec![]),
        Some(Rule::Resume)
    );
    assert_eq!(
        broken_with(watcher(from_four.clone(), without_delete), vec![4]),
        None
    );
    let with_delete = responses(vec![vec![a4()], vec![c5(), a6()]]);
    assert_eq!(
        broken_with(watcher(from_four.clone(), with_delete), vec![4]),
        None
    );
    let late_delete = responses(vec![vec![c5(), a6()], vec![a4()]]);
    assert_eq!(
        broken_with(watcher(from_four, late_delete), vec![4]),
        Some(Rule::Ordered)
    );
}

#[test]
fn prev_kv_is_absent_when_not_requested() {
    let unasked = vec![
        vec![a2()],
        vec![b3(), with_prev(a3(), kv("a", "1", 2, 2, 1))],
    ];
    assert_eq!(
        broken(watcher(all_keys(), responses(unasked))),
        Some(Rule::PrevKv)
    );
}

#[test]
fn compaction_a_compacted_start_is_canceled_with_compact_revision_and_no_events() {
    let compacted = |responses| Watcher {
        compacted_before: 4,
        ..watcher(all_keys(), responses)
    };
    assert_eq!(broken_with(compacted(vec![cancel(4)]), vec![4]), None);
    let delivered = vec![responses(vec![vec![a2()]]).remove(0), cancel(4)];
    assert_eq!(
        broken_with(compacted(delivered), vec![4]),
        Some(Rule::Compaction)
    );
    assert_eq!(
        broken_with(compacted(vec![]), vec![4]),
        Some(Rule::Compaction)
    );
    assert_eq!(
        broken_with(compacted(vec![cancel(5)]), vec![4]),
        Some(Rule::Compaction)
    );
}

#[test]
fn compaction_cancel_of_a_watcher_that_needs_nothing_compacted_is_reported() {
    let from_4 = WatchRequest {
        start_revision: 4,
        ..all_keys()
    };
    let mut slow = responses(vec![vec![a4()]]);
    slow.push(cancel(6));
    assert_eq!(broken_with(watcher(from_4.clone(), slow), vec![6]), None);
    let spurious = vec![cancel(4)];
    assert_eq!(
        broken_with(watcher(from_4, spurious), vec![4]),
        Some(Rule::Compaction)
    );
}

#[test]
fn canceled_is_the_last_response() {
    let mut canceled = responses(vec![vec![a2()]]);
    canceled.push(cancel(0));
    assert_eq!(broken(watcher(all_keys(), canceled.clone())), None);
    canceled.extend(responses(vec![vec![b3(), a3()]]));
    assert_eq!(broken(watcher(all_keys(), canceled)), Some(Rule::Canceled));
}

#[test]
fn first_violation_names_watcher_response_event_and_both_sides() {
    let history = WatchHistory {
        commits: commits(),
        compactions: vec![],
        watchers: vec![
            watcher(all_keys(), responses(everything())),
            Watcher {
                id: 9,
                ..watcher(
                    all_keys(),
                    responses(vec![vec![a2()], vec![b3(), a3()], vec![c5()]]),
                )
            },
        ],
    };
    let WatchVerdict::Violation(v) = check(&history).unwrap() else {
        panic!("expected a violation");
    };
    assert_eq!(
        v.to_string(),
        "[no-gaps] watcher 9, response 2, event 0: expected DELETE \"a\" @4, got PUT \"c\" @5"
    );
}

#[test]
fn malformed_committed_history_is_refused_not_judged() {
    let mut commits = commits();
    commits.swap(0, 1);
    let history = WatchHistory {
        commits,
        ..WatchHistory::default()
    };
    let err = check(&history).unwrap_err();
    assert!(
        err.message.contains("revision 2 follows 3"),
        "{}",
        err.message
    );
}

fn progress(revision: Revision) -> WatchResponse {
    WatchResponse {
        header_revision: revision,
        ..WatchResponse::default()
    }
}

fn created(revision: Revision) -> WatchResponse {
    WatchResponse {
        header_revision: revision,
        created: true,
        ..WatchResponse::default()
    }
}

#[test]
fn no_gaps_a_progress_notification_promises_everything_up_to_its_revision() {
    let mut caught_up = responses(vec![vec![a2()], vec![b3(), a3()], vec![a4()]]);
    caught_up.push(progress(4));
    assert_eq!(broken(watcher(all_keys(), caught_up)), None);
    let mut behind = responses(vec![vec![a2()], vec![b3(), a3()]]);
    behind.push(progress(4));
    assert_eq!(broken(watcher(all_keys(), behind)), Some(Rule::NoGaps));
}

#[test]
fn no_gaps_from_now_is_due_from_just_after_the_created_revision() {
    let from_now = WatchRequest {
        start_revision: 0,
        ..all_keys()
    };
    let mut at_5 = vec![created(5)];
    at_5.extend(responses(vec![vec![a6()]]));
    assert_eq!(broken(watcher(from_now.clone(), at_5)), None);
    let mut at_4 = vec![created(4)];
    at_4.extend(responses(vec![vec![a6()]]));
    assert_eq!(broken(watcher(from_now, at_4)), Some(Rule::NoGaps));
}
