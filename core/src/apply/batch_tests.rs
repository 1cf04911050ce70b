//! Property test: applying committed entries in runs ([`StateMachine::apply_batch`]) is
//! indistinguishable from applying them one at a time: the same responses and events for
//! every entry, the same HashKV and `Maintenance.Hash`, and the same bytes in every space of
//! the engine. Random sequences mix Put (with and without leases), DeleteRange, Txn,
//! Compaction, LeaseGrant, LeaseRevoke, NOSPACE alarms, Raft no-ops and undecodable
//! entries, over a small key alphabet so entries of one run touch the same keys; a restart
//! in the middle re-applies entries the store already holds.

use std::ops::ControlFlow;
use std::sync::Arc;

use proptest::prelude::*;
use prost::Message as _;

use super::StateMachine;
use crate::api::cairnpb::{InternalRequest, internal_request::Request};
use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::request_op::Request as OpRequest;
use crate::api::etcdserverpb::{
    AlarmRequest, AlarmType, CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    alarm_request::AlarmAction,
};
use crate::storage::mem::MemEngine;
use crate::storage::{Engine, Order, Space};

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k]
}

fn put(k: u8, lease: i64, prev_kv: bool) -> PutRequest {
    PutRequest {
        key: key(k),
        value: vec![b'v', k],
        lease,
        prev_kv,
        ..PutRequest::default()
    }
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        6 => (0..5u8, prop_oneof![3 => Just(0i64), 1 => 1..3i64], any::<bool>())
            .prop_map(|(k, lease, prev)| Request::Put(put(k, lease, prev))),
        2 => (0..5u8, 0..3u8, any::<bool>()).prop_map(|(k, span, prev_kv)| {
            Request::DeleteRange(DeleteRangeRequest {
                key: key(k),
                range_end: if span == 0 { vec![] } else { key(k + span) },
                prev_kv,
            })
        }),
        2 => (0..5u8, 0..3i64, 0..5u8, 0..5u8).prop_map(|(k, version, then, otherwise)| {
            Request::Txn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Version as i32,
                    key: key(k),
                    target_union: Some(TargetUnion::Version(version)),
                    ..Compare::default()
                }],
                success: vec![
                    RequestOp {
                        request: Some(OpRequest::RequestPut(put(then, 0, true))),
                    },
                    RequestOp {
                        request: Some(OpRequest::RequestRange(RangeRequest {
                            key: key(0),
                            range_end: vec![0],
                            ..RangeRequest::default()
                        })),
                    },
                ],
                failure: vec![RequestOp {
                    request: Some(OpRequest::RequestDeleteRange(DeleteRangeRequest {
                        key: key(otherwise),
                        prev_kv: true,
                        ..DeleteRangeRequest::default()
                    })),
                }],
            })
        }),
        1 => (1..30i64).prop_map(|revision| Request::Compaction(CompactionRequest {
            revision,
            physical: false,
        })),
        1 => (1..3i64).prop_map(|id| Request::LeaseGrant(LeaseGrantRequest { id, ttl: 60 })),
        1 => (1..3i64).prop_map(|id| Request::LeaseRevoke(LeaseRevokeRequest { id })),
        1 => any::<bool>().prop_map(|on| Request::Alarm(AlarmRequest {
            action: if on { AlarmAction::Activate } else { AlarmAction::Deactivate } as i32,
            member_id: 7,
            alarm: AlarmType::Nospace as i32,
        })),
    ]
}

/// An entry's data: a request, a Raft no-op (empty) or bytes that do not decode.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => (request(), any::<u64>()).prop_map(|(request, id)| InternalRequest {
            auth: None,
            id,
            request: Some(request),
        }
        .encode_to_vec()),
        1 => Just(Vec::new()),
        1 => Just(vec![0xff, 0xff, 0xff]),
    ]
}

/// Every key and value of every space.
fn contents(engine: &dyn Engine) -> Vec<(Space, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for space in Space::ALL {
        engine
            .scan(space, &[], None, Order::Ascending, &mut |k, v| {
                all.push((space, k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })
            .expect("scan");
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn applying_runs_equals_applying_one_by_one(
        entries in prop::collection::vec(entry(), 1..40),
        cuts in prop::collection::vec(any::<bool>(), 40),
        restart_at in 0..40usize,
        replay in 0..5usize,
    ) {
        let indexed: Vec<(u64, &[u8])> = entries
            .iter()
            .enumerate()
            .map(|(i, data)| (i as u64 + 1, data.as_slice()))
            .collect();

        let one_engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let one = StateMachine::open(one_engine.clone()).expect("open");
        let mut one_applied = Vec::new();
        for &(index, data) in &indexed {
            one_applied.extend(one.apply(index, data).expect("apply"));
        }

        let runs_engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let mut runs = StateMachine::open(runs_engine.clone()).expect("open");
        let mut runs_applied = Vec::new();
        let mut start = 0;
        for end in 1..=indexed.len() {
            if end == indexed.len() || cuts[end - 1] {
                // A restart re-reads the store; the next run re-delivers a few entries the
                // store already holds, which apply skips.
                let from = if end > restart_at && start <= restart_at {
                    runs = StateMachine::open(runs_engine.clone()).expect("reopen");
                    start.saturating_sub(replay)
                } else {
                    start
                };
                runs_applied.extend(runs.apply_batch(&indexed[from..end]).expect("apply run"));
                start = end;
            }
        }

        prop_assert_eq!(&runs_applied, &one_applied);
        prop_assert_eq!(runs.consistent_index(), one.consistent_index());
        prop_assert_eq!(runs.current_revision(), one.current_revision());
        prop_assert_eq!(runs.hash().expect("hash"), one.hash().expect("hash"));
        prop_assert_eq!(runs.hash_kv(0), one.hash_kv(0));
        prop_assert_eq!(contents(runs_engine.as_ref()), contents(one_engine.as_ref()));
    }
}
