//! Several replicas wired together in memory, no runtime: messages are routed by hand, so a
//! test can isolate a member, drop traffic, and watch elections, replication and snapshot
//! catch-up happen step by step.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message as _;

use super::{Replica, ReplicaConfig, tracing_logger};
use crate::api::cairnpb::{InternalRequest, internal_request::Request};
use crate::api::etcdserverpb::{PutRequest, RangeRequest};
use crate::apply::StateMachine;
use crate::membership::ClusterState;
use crate::storage::mem::MemEngine;
use crate::storage::{Engine, Space};

struct Net {
    replicas: Vec<Replica>,
    engines: Vec<Arc<dyn Engine>>,
    isolated: BTreeSet<u64>,
    next_request: u64,
}

impl Net {
    fn new(size: u64, config: impl Fn(u64) -> ReplicaConfig) -> Net {
        let voters: Vec<u64> = (1..=size).collect();
        let engines: Vec<Arc<dyn Engine>> = voters
            .iter()
            .map(|_| Arc::new(MemEngine::new()) as Arc<dyn Engine>)
            .collect();
        let replicas = voters
            .iter()
            .zip(&engines)
            .map(|(&id, engine)| {
                let engine = engine.clone();
                let state_machine = Arc::new(StateMachine::open(engine.clone()).unwrap());
                Replica::open(
                    &config(id),
                    engine,
                    state_machine,
                    &cluster(id, &voters),
                    &voters,
                    &tracing_logger(),
                )
                .unwrap()
            })
            .collect();
        Net {
            replicas,
            engines,
            isolated: BTreeSet::new(),
            next_request: 1,
        }
    }

    fn replica(&mut self, id: u64) -> &mut Replica {
        &mut self.replicas[(id - 1) as usize]
    }

    /// Runs Ready rounds and delivers messages until the cluster is quiet.
    fn settle(&mut self) {
        for _ in 0..1000 {
            if !self.round() {
                return;
            }
        }
        panic!("the cluster never went quiet");
    }

    fn tick(&mut self, ticks: usize) {
        for _ in 0..ticks {
            for replica in &mut self.replicas {
                replica.tick();
            }
            self.settle();
        }
    }

    fn leader(&self) -> Option<u64> {
        self.replicas
            .iter()
            .find(|r| r.is_leader() && !self.isolated.contains(&r.id()))
            .map(Replica::id)
    }

    fn put(&mut self, key: &str, value: &str) {
        let leader = self.leader().expect("a leader");
        self.propose_put(leader, key, value);
        self.settle();
    }

    /// Proposes a put through member `through`, leaving the Ready rounds to the caller.
    fn propose_put(&mut self, through: u64, key: &str, value: &str) {
        let id = self.next_request;
        self.next_request += 1;
        let put = PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        };
        let data = InternalRequest {
            auth: None,
            id,
            request: Some(Request::Put(put)),
        }
        .encode_to_vec();
        self.replica(through).propose(data).unwrap();
    }

    /// One Ready round on every member, then every message delivered except to or from an
    /// isolated member; returns whether any message was sent.
    fn round(&mut self) -> bool {
        let mut messages = Vec::new();
        for replica in &mut self.replicas {
            messages.extend(replica.handle_ready().unwrap().messages);
        }
        let sent = !messages.is_empty();
        for message in messages {
            let missing = message.to as usize > self.replicas.len();
            if missing
                || self.isolated.contains(&message.from)
                || self.isolated.contains(&message.to)
            {
                continue;
            }
            let _ = self.replica(message.to).step(message);
        }
        sent
    }

    fn value(&mut self, id: u64, key: &str) -> Option<Vec<u8>> {
        let req = RangeRequest {
            key: key.into(),
            ..Default::default()
        };
        let resp = self.replica(id).state_machine().range(&req).unwrap();
        resp.kvs.first().map(|kv| kv.value.clone())
    }
}

#[test]
fn three_replicas_elect_one_leader_and_apply_the_same_writes() {
    let mut net = Net::new(3, ReplicaConfig::new);
    net.tick(30);
    let leaders = net.replicas.iter().filter(|r| r.is_leader()).count();
    assert_eq!(leaders, 1);
    for i in 0..10 {
        net.put(&format!("k{i}"), "v");
    }
    for id in 1..=3 {
        assert_eq!(net.value(id, "k9"), Some(b"v".to_vec()), "member {id}");
        assert_eq!(net.replica(id).state_machine().current_revision(), 11);
    }
}

#[test]
fn isolated_leader_is_replaced_by_the_majority() {
    let mut net = Net::new(3, ReplicaConfig::new);
    net.tick(30);
    let old = net.leader().unwrap();
    net.isolated.insert(old);
    net.tick(40);
    let new = net.leader().expect("the majority elects a leader");
    assert_ne!(new, old);
    net.put("after", "x");
    net.isolated.clear();
    net.tick(10);
    assert_eq!(
        net.value(old, "after"),
        Some(b"x".to_vec()),
        "the old leader caught up"
    );
}

/// Three members; one follower cut off while 100 puts are applied. Returns the network,
/// the leader and the lagging follower.
fn lagging_follower(config: impl Fn(u64) -> ReplicaConfig) -> (Net, u64, u64) {
    let mut net = Net::new(3, config);
    net.tick(30);
    let leader = net.leader().unwrap();
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    net.isolated.insert(lagging);
    for i in 0..100 {
        net.put(&format!("k{i:03}"), &i.to_string());
    }
    (net, leader, lagging)
}

#[test]
fn follower_behind_the_compacted_log_catches_up_by_snapshot() {
    let config = |id| ReplicaConfig {
        snapshot_count: 10,
        catch_up_entries: 5,
        ..ReplicaConfig::new(id)
    };
    let (mut net, leader, lagging) = lagging_follower(config);
    assert!(
        net.replica(leader).node.store().first_index() > 50,
        "leader's log was not compacted"
    );
    net.isolated.clear();
    net.tick(10);
    assert_eq!(net.value(lagging, "k099"), Some(b"99".to_vec()));
    assert_eq!(net.value(lagging, "k000"), Some(b"0".to_vec()));
    let want = net.replica(leader).state_machine().current_revision();
    assert_eq!(
        net.replica(lagging).state_machine().current_revision(),
        want
    );
    assert_eq!(
        net.replica(lagging).applied_index(),
        net.replica(leader).applied_index()
    );
    // And it keeps replicating normally afterwards.
    net.put("after-snapshot", "y");
    assert_eq!(net.value(lagging, "after-snapshot"), Some(b"y".to_vec()));
}

fn cluster(local_id: u64, voters: &[u64]) -> ClusterState {
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

use super::single_change as change;

#[test]
fn a_member_joining_with_an_empty_log_learns_every_voter() {
    use raft::eraftpb::ConfChangeType::{AddLearnerNode, AddNode, RemoveNode};
    let mut net = Net::new(3, ReplicaConfig::new);
    net.tick(30);
    let leader = net.leader().unwrap();
    let context = crate::api::cairnpb::ConfChangeContext::default();
    net.replica(leader)
        .propose_conf_change(change(AddLearnerNode, 4), &context)
        .unwrap();
    net.settle();
    let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
    let state_machine = Arc::new(StateMachine::open(engine.clone()).unwrap());
    let joiner = Replica::open(
        &ReplicaConfig::new(4),
        engine,
        state_machine,
        &cluster(4, &[]),
        &[],
        &tracing_logger(),
    )
    .unwrap();
    net.replicas.push(joiner);
    net.tick(5);
    net.replica(leader)
        .propose_conf_change(change(AddNode, 4), &context)
        .unwrap();
    net.settle();
    let removed = (1..=3).find(|id| *id != leader).unwrap();
    net.replica(leader)
        .propose_conf_change(change(RemoveNode, removed), &context)
        .unwrap();
    net.settle();
    net.tick(5);
    let mut voters = net.replica(4).conf_state().voters;
    voters.sort_unstable();
    let mut want: Vec<u64> = (1..=4).filter(|id| *id != removed).collect();
    want.sort_unstable();
    assert_eq!(voters, want, "the joiner must know the bootstrap voters");
    assert!(!net.replica(4).is_leader(), "the joiner elected itself");
    net.put("after-join", "z");
    assert_eq!(net.value(4, "after-join"), Some(b"z".to_vec()));
}

#[test]
fn follower_behind_the_in_memory_tail_catches_up_from_the_leaders_disk() {
    let config = |id| ReplicaConfig {
        snapshot_count: 1000,
        catch_up_entries: 5,
        ..ReplicaConfig::new(id)
    };
    let (mut net, leader, lagging) = lagging_follower(config);
    let store = net.replica(leader).node.store();
    assert_eq!(store.first_index(), 1, "leader's log was compacted");
    assert!(
        store.memory_first_index() > 50,
        "leader kept its whole log in memory"
    );
    net.isolated.clear();
    net.tick(10);
    assert_eq!(net.value(lagging, "k099"), Some(b"99".to_vec()));
    assert_eq!(net.value(lagging, "k000"), Some(b"0".to_vec()));
    // From the log, not from a snapshot: the follower's log starts at the first entry.
    assert_eq!(net.replica(lagging).node.store().first_index(), 1);
    assert_eq!(
        net.replica(lagging).applied_index(),
        net.replica(leader).applied_index()
    );
}

#[test]
fn a_leader_that_removes_itself_stops_and_the_others_go_on() {
    use raft::eraftpb::ConfChangeType::RemoveNode;
    let mut net = Net::new(3, ReplicaConfig::new);
    net.tick(30);
    let leader = net.leader().unwrap();
    net.replica(leader)
        .propose_conf_change(
            change(RemoveNode, leader),
            &crate::api::cairnpb::ConfChangeContext::default(),
        )
        .unwrap();
    // A put every round: the Ready that applies the removal also carries new entries of
    // the leader's own (raft-rs then used to look up the removed leader's progress).
    for i in 0..50 {
        if net.replica(leader).is_removed() {
            break;
        }
        net.propose_put(leader, "k", &i.to_string());
        net.round();
    }
    assert!(
        net.replica(leader).is_removed(),
        "the removal never applied"
    );
    let out = net.replica(leader).handle_ready().unwrap();
    assert!(out.messages.is_empty() && out.applied.is_empty());
    net.isolated.insert(leader);
    net.tick(30);
    let next = net.leader().expect("the two others elect a leader");
    assert_ne!(next, leader);
    net.put("after", "x");
    assert_eq!(net.value(next, "after"), Some(b"x".to_vec()));
}

/// Whether `engine` holds log entry `index`.
fn logged(engine: &dyn Engine, index: u64) -> bool {
    let key = super::log_store::entry_key(index);
    engine.get(Space::RaftLog, &key).unwrap().is_some()
}

#[test]
fn a_leaders_appends_leave_before_its_own_write_and_replies_after_the_followers() {
    use raft::eraftpb::MessageType::{MsgAppend, MsgAppendResponse};
    let mut net = Net::new(3, ReplicaConfig::new);
    net.tick(30);
    let leader = net.leader().unwrap();
    net.propose_put(leader, "k", "v");
    let leader_engine = net.engines[(leader - 1) as usize].clone();
    let mut early = Vec::new();
    let out = net
        .replica(leader)
        .handle_ready_sending(&mut |messages| {
            for message in &messages {
                for entry in message.get_entries() {
                    assert!(
                        !logged(leader_engine.as_ref(), entry.index),
                        "entry {} was written before its append left",
                        entry.index
                    );
                }
            }
            early.extend(messages);
        })
        .unwrap();
    let appended: Vec<u64> = early
        .iter()
        .filter(|m| m.get_msg_type() == MsgAppend)
        .flat_map(|m| m.get_entries().iter().map(|e| e.index))
        .collect();
    assert!(!appended.is_empty(), "no append left early: {early:?}");
    for index in &appended {
        assert!(
            logged(leader_engine.as_ref(), *index),
            "the Ready wrote {index}"
        );
    }
    assert!(
        out.applied.is_empty(),
        "nothing commits on the leader's copy alone"
    );

    // A follower writes first and replies after: its answers are never sent early.
    let follower = early[0].to;
    for message in early.into_iter().filter(|m| m.to == follower) {
        net.replica(follower).step(message).unwrap();
    }
    let follower_engine = net.engines[(follower - 1) as usize].clone();
    let mut follower_early = Vec::new();
    let out = net
        .replica(follower)
        .handle_ready_sending(&mut |messages| follower_early.extend(messages))
        .unwrap();
    assert!(
        follower_early
            .iter()
            .all(|m| m.get_msg_type() != MsgAppendResponse),
        "a follower acknowledged before writing: {follower_early:?}"
    );
    assert!(
        out.messages
            .iter()
            .any(|m| m.get_msg_type() == MsgAppendResponse)
    );
    for index in &appended {
        assert!(logged(follower_engine.as_ref(), *index));
    }
    // The acknowledgement commits the put on the leader, which applies it.
    for message in out.messages {
        net.replica(message.to).step(message).unwrap();
    }
    net.settle();
    assert_eq!(net.value(leader, "k"), Some(b"v".to_vec()));
}
