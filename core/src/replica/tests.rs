//! The replica driven directly, with no runtime: a single voter on the `mem` engine.

use std::sync::Arc;

use prost::Message as _;

use super::{Replica, ReplicaConfig, tracing_logger};
use crate::api::cairnpb::{InternalRequest, internal_request::Request};
use crate::api::etcdserverpb::{PutRequest, RangeRequest};
use crate::apply::{Response, StateMachine};
use crate::membership::ClusterState;
use crate::storage::mem::MemEngine;

const ID: u64 = 1;

fn open(engine: &MemEngine) -> Replica {
    open_with(&ReplicaConfig::new(ID), Arc::new(engine.clone()))
}

/// The single voter `ID` with `config` on `engine`.
fn open_with(config: &ReplicaConfig, engine: Arc<dyn crate::storage::Engine>) -> Replica {
    let state_machine = Arc::new(StateMachine::open(engine.clone()).unwrap());
    Replica::open(
        config,
        engine,
        state_machine,
        &cluster(ID, &[ID]),
        &[ID],
        &tracing_logger(),
    )
    .unwrap()
}

fn put(id: u64, key: &str, value: &str) -> Vec<u8> {
    let put = PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    };
    InternalRequest {
        auth: None,
        id,
        request: Some(Request::Put(put)),
    }
    .encode_to_vec()
}

/// Runs Ready rounds until nothing more happens; returns the applied responses.
fn settle(replica: &mut Replica) -> Vec<crate::apply::Applied> {
    let mut applied = Vec::new();
    for _ in 0..100 {
        let out = replica.handle_ready().unwrap();
        let idle =
            out.applied.is_empty() && out.messages.is_empty() && out.leader_changed.is_none();
        applied.extend(out.applied);
        if idle {
            break;
        }
    }
    applied
}

fn value_of(replica: &Replica, key: &str) -> Option<Vec<u8>> {
    let req = RangeRequest {
        key: key.into(),
        ..Default::default()
    };
    let resp = replica.state_machine().range(&req).unwrap();
    resp.kvs.first().map(|kv| kv.value.clone())
}

#[test]
fn single_voter_becomes_leader_without_waiting_for_an_election() {
    let engine = MemEngine::new();
    let mut replica = open(&engine);
    settle(&mut replica);
    assert!(replica.is_leader());
    assert_eq!(replica.leader_id(), ID);
}

#[test]
fn proposals_are_applied_in_order_with_their_request_ids() {
    let engine = MemEngine::new();
    let mut replica = open(&engine);
    settle(&mut replica);
    for i in 0..10 {
        replica
            .propose(put(100 + i, "k", &format!("v{i}")))
            .unwrap();
    }
    let applied = settle(&mut replica);
    let ids: Vec<u64> = applied.iter().map(|a| a.request_id).collect();
    assert_eq!(ids, (100..110).collect::<Vec<_>>());
    let revisions: Vec<i64> = applied
        .iter()
        .map(|a| match &a.result {
            Ok(Response::Put(p)) => p.header.as_ref().map_or(0, |h| h.revision),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(revisions, (2..12).collect::<Vec<_>>());
    assert_eq!(value_of(&replica, "k"), Some(b"v9".to_vec()));
}

#[test]
fn acknowledged_writes_survive_power_loss() {
    let engine = MemEngine::new();
    let mut replica = open(&engine);
    settle(&mut replica);
    for i in 0..20 {
        replica.propose(put(i, &format!("k{i}"), "v")).unwrap();
    }
    let applied = settle(&mut replica);
    assert_eq!(applied.len(), 20);
    // Power loss: only what was fsynced survives. Applied entries were committed, so their
    // log entries were synced; the state machine replays them from the log.
    let survivor = engine.crash();
    let mut replica = open(&survivor);
    settle(&mut replica);
    for i in 0..20 {
        assert_eq!(
            value_of(&replica, &format!("k{i}")),
            Some(b"v".to_vec()),
            "k{i} lost"
        );
    }
    assert_eq!(replica.state_machine().current_revision(), 21);
}

#[test]
fn replay_after_restart_does_not_apply_twice() {
    let engine = MemEngine::new();
    let mut replica = open(&engine);
    settle(&mut replica);
    replica.propose(put(1, "k", "a")).unwrap();
    replica.propose(put(2, "k", "b")).unwrap();
    settle(&mut replica);
    let revision = replica.state_machine().current_revision();
    drop(replica);
    let mut replica = open(&engine);
    settle(&mut replica);
    assert_eq!(replica.state_machine().current_revision(), revision);
    assert_eq!(value_of(&replica, "k"), Some(b"b".to_vec()));
}

#[test]
fn log_is_compacted_behind_the_applied_index() {
    let engine = MemEngine::new();
    let engine_dyn: Arc<dyn crate::storage::Engine> = Arc::new(engine.clone());
    let config = ReplicaConfig {
        snapshot_count: 10,
        ..ReplicaConfig::new(ID)
    };
    let mut replica = open_with(&config, engine_dyn);
    settle(&mut replica);
    let total = super::CATCH_UP_ENTRIES + 50;
    for i in 0..total {
        replica.propose(put(i, "k", &i.to_string())).unwrap();
        if i % 100 == 0 {
            settle(&mut replica);
        }
    }
    settle(&mut replica);
    let first = replica.node.store().first_index();
    assert!(first > 1, "log was never compacted");
    assert!(replica.applied_index() - first <= super::CATCH_UP_ENTRIES + 10);
    drop(replica);
    let mut replica = open(&engine);
    settle(&mut replica);
    assert_eq!(
        value_of(&replica, "k"),
        Some((total - 1).to_string().into_bytes())
    );
}

/// A membership of `voters` seen from member `local_id`.
pub(super) fn cluster(local_id: u64, voters: &[u64]) -> ClusterState {
    let members = voters
        .iter()
        .map(|&id| crate::api::cairnpb::MemberRecord {
            id,
            ..Default::default()
        })
        .collect();
    ClusterState {
        cluster_id: 7,
        local_id,
        members,
        removed: Vec::new(),
    }
}

#[test]
fn a_restored_snapshot_starts_a_new_cluster_with_the_same_data() {
    let source = MemEngine::new();
    let mut replica = open(&source);
    settle(&mut replica);
    for i in 0..5 {
        replica.propose(put(i, &format!("k{i}"), "v")).unwrap();
    }
    settle(&mut replica);
    let revision = replica.state_machine().current_revision();
    let bytes = replica
        .state_machine()
        .snapshot(replica.term(), &replica.conf_state())
        .unwrap();

    let target = MemEngine::new();
    crate::snapshot::restore_member(&target, &bytes).unwrap();
    let mut restored = open(&target);
    settle(&mut restored);
    assert!(restored.is_leader());
    assert_eq!(value_of(&restored, "k4"), Some(b"v".to_vec()));
    assert_eq!(restored.state_machine().current_revision(), revision);
    restored.propose(put(100, "after", "x")).unwrap();
    let applied = settle(&mut restored);
    assert_eq!(applied.len(), 1, "the new cluster applies new writes");
    assert_eq!(restored.state_machine().current_revision(), revision + 1);
    assert!(
        crate::snapshot::restore_member(&target, &bytes).is_err(),
        "restore into a used data dir"
    );
}

#[test]
fn only_a_tail_of_the_log_stays_in_memory_and_the_rest_is_read_from_disk() {
    use raft::Storage as _;
    let engine = MemEngine::new();
    let engine_dyn: Arc<dyn crate::storage::Engine> = Arc::new(engine.clone());
    let config = ReplicaConfig {
        snapshot_count: 150,
        catch_up_entries: 5,
        ..ReplicaConfig::new(ID)
    };
    let mut replica = open_with(&config, engine_dyn.clone());
    settle(&mut replica);
    for i in 0..100 {
        replica.propose(put(i, "k", &i.to_string())).unwrap();
        settle(&mut replica);
    }
    let store = replica.node.store();
    let (first, last) = (store.first_index(), store.last_index());
    assert_eq!(first, 1, "compacted too early");
    assert!(
        last + 1 - store.memory_first_index() <= 10,
        "{} entries in memory",
        last + 1 - store.memory_first_index()
    );
    // raft-rs still sees the whole log: old entries come from the engine.
    let all = store
        .entries(first, last + 1, None, raft::GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(all.len() as u64, last);
    assert!(all.iter().zip(1..).all(|(e, i)| e.index == i));
    assert_eq!(store.term(1).unwrap(), all[0].term);
    // A size limit stops inside the on-disk part, after at least one entry.
    let some = store
        .entries(1, last + 1, Some(1), raft::GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(some.len(), 1);

    // Compaction drops entries that were only on disk.
    for i in 100..200 {
        replica.propose(put(i, "k", &i.to_string())).unwrap();
        settle(&mut replica);
    }
    let store = replica.node.store();
    assert!(store.first_index() > 1, "log was never compacted");
    assert_eq!(
        store.term(store.first_index() - 1).unwrap(),
        store.term_of(store.first_index() - 1).unwrap()
    );
    let mut on_disk = 0;
    engine_dyn
        .scan(
            crate::storage::Space::RaftLog,
            &[],
            None,
            crate::storage::Order::Ascending,
            &mut |_, _| {
                on_disk += 1;
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(on_disk, store.last_index() + 1 - store.first_index());

    // A restart loads only the tail, and the log still reads back whole.
    drop(replica);
    let mut replica = open_with(&config, engine_dyn);
    let store = replica.node.store();
    let (first, last) = (store.first_index(), store.last_index());
    assert!(last + 1 - store.memory_first_index() <= 10);
    let all = store
        .entries(first, last + 1, None, raft::GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(all.len() as u64, last + 1 - first);
    settle(&mut replica);
    assert_eq!(value_of(&replica, "k"), Some(b"199".to_vec()));
}
