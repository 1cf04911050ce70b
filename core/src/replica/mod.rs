//! The replica: raft-rs's `RawNode` plus the state machine, driven by its caller.
//!
//! Inputs are method calls (`tick`, `propose`, `read_index`, `step`); the caller then calls
//! [`Replica::handle_ready`], which persists new log entries and hard state in ONE storage
//! batch with ONE fsync, applies committed entries, and returns what the caller must do
//! with the outside world ([`Output`]: messages to send, responses, read states). The
//! replica owns no clock, socket or task, so tests and the simulator drive it directly.
//!
//! A single member is the same code path as a cluster: every write goes through the log.

#[cfg(test)]
mod cluster_tests;
mod log_store;
mod logger;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, ReadState, StateRole};

pub use log_store::LogStore;
pub use logger::tracing_logger;

use crate::api::cairnpb::ConfChangeContext;
use crate::apply::{Applied, StateMachine};
use crate::membership::ClusterState;
use crate::storage::{Durability, Engine, StorageError, WriteBatch};

/// Entries kept behind the applied index when the log is compacted, so that a briefly
/// lagging follower catches up from the log (etcd's `SnapshotCatchUpEntries`).
pub const CATCH_UP_ENTRIES: u64 = 5000;

/// Static settings of a replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This member's id.
    pub id: u64,
    /// Ticks without a leader before an election (etcd: election-timeout / heartbeat-interval).
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between log compactions (`--snapshot-count`).
    pub snapshot_count: u64,
    /// Upper bound of one append message.
    pub max_size_per_msg_bytes: u64,
    /// Append messages in flight per follower.
    pub max_inflight_msgs: usize,
    /// Applied entries kept in the log behind a compaction (`CATCH_UP_ENTRIES` by default);
    /// also how many applied entries the log keeps in memory (older ones are read from
    /// the engine).
    pub catch_up_entries: u64,
    /// Seed of the election-timeout randomization (see [`Replica::pin_election_timeout`]).
    pub election_seed: u64,
}

impl ReplicaConfig {
    /// etcd's defaults for member `id`: 100 ms heartbeat, 1000 ms election timeout.
    pub fn new(id: u64) -> Self {
        ReplicaConfig {
            id,
            election_ticks: 10,
            heartbeat_ticks: 1,
            snapshot_count: 100_000,
            max_size_per_msg_bytes: 1024 * 1024,
            max_inflight_msgs: 4096 / 8,
            catch_up_entries: CATCH_UP_ENTRIES,
            election_seed: id,
        }
    }
}

/// What the caller must do after a `handle_ready`.
#[derive(Debug, Default)]
pub struct Output {
    /// Raft messages to send to peers.
    pub messages: Vec<Message>,
    /// Applied client requests, in log order.
    pub applied: Vec<Applied>,
    /// Completed read-index rounds: reads tagged with `request_ctx` may be served once the
    /// applied index reaches `index`.
    pub read_states: Vec<ReadState>,
    /// The leader changed to this id (0: no leader known).
    pub leader_changed: Option<u64>,
    /// Membership changes applied, in log order, each with the id of the request that
    /// proposed it and whether raft-rs accepted it.
    pub conf_changes: Vec<ConfChangeApplied>,
}

/// One applied membership change.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfChangeApplied {
    /// The proposer's request id.
    pub request_id: u64,
    /// The membership after the change, or why raft-rs refused it.
    pub result: Result<ClusterState, String>,
}

/// Why a replica could not be opened or driven.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// raft-rs refused the state it was given.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// Why a proposal was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No leader is known (election in progress or quorum lost).
    #[error("no leader")]
    NoLeader,
    /// raft-rs refused it for another reason.
    #[error("proposal dropped: {0}")]
    Dropped(String),
}

/// A Raft member and its state machine.
pub struct Replica {
    node: RawNode<LogStore>,
    election_ticks: usize,
    election_seed: u64,
    engine: Arc<dyn Engine>,
    state_machine: Arc<StateMachine>,
    snapshot_count: u64,
    catch_up_entries: u64,
    cluster: ClusterState,
    /// Campaign as soon as the configuration says this member is the only voter.
    campaign_when_alone: bool,
}

impl Replica {
    /// Opens the member stored in `engine`. A member that never started records `cluster`
    /// and, when bootstrapping a new cluster, starts with `initial_voters`; a member joining
    /// an existing cluster passes no voters and learns the configuration from the leader.
    pub fn open(
        config: &ReplicaConfig,
        engine: Arc<dyn Engine>,
        state_machine: Arc<StateMachine>,
        cluster: &ClusterState,
        initial_voters: &[u64],
        logger: &slog::Logger,
    ) -> Result<Replica, ReplicaError> {
        let mut store = LogStore::load(engine.clone(), config.catch_up_entries)?;
        let cluster = match ClusterState::load(engine.as_ref())? {
            Some(stored) => stored,
            None => {
                let mut batch = WriteBatch::new();
                cluster.stage(&mut batch);
                engine.write(batch, Durability::Sync)?;
                cluster.clone()
            }
        };
        if store.is_new() && !initial_voters.is_empty() {
            let mut batch = WriteBatch::new();
            stage_bootstrap_log(&mut store, initial_voters, &mut batch);
            engine.write(batch, Durability::Sync)?;
        }
        let applied = state_machine
            .consistent_index()
            .min(store.hard_state().commit)
            .max(store.first_index() - 1);
        // A lone member elects itself at once instead of after an election timeout; on a
        // first start its configuration is known only once the bootstrap entries apply.
        let alone = initial_voters == [config.id] || store.conf_state().voters == [config.id];
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied,
            max_size_per_msg: config.max_size_per_msg_bytes,
            max_inflight_msgs: config.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        };
        raft_config.validate()?;
        let node = RawNode::new(&raft_config, store, logger)?;
        let mut replica = Replica {
            node,
            election_ticks: config.election_ticks,
            election_seed: config.election_seed,
            engine,
            state_machine,
            snapshot_count: config.snapshot_count,
            catch_up_entries: config.catch_up_entries,
            cluster,
            campaign_when_alone: false,
        };
        replica.campaign_when_alone = alone;
        replica.pin_election_timeout();
        Ok(replica)
    }

    /// raft-rs draws each term's election timeout from the OS random source, which the
    /// simulator cannot replay. Right after every input, the timeout is replaced by one
    /// drawn from this replica's seed, the term and the role: still different per member
    /// and per term (what avoids split votes), and the same in every replay of a seed.
    fn pin_election_timeout(&mut self) {
        let raft = &mut self.node.raft;
        let (min, span) = (self.election_ticks, self.election_ticks.max(1));
        let role = raft.state as u64;
        let draw =
            splitmix64(self.election_seed ^ splitmix64(raft.term ^ (role << 56) ^ (raft.id << 8)));
        let timeout = min + (draw % span as u64) as usize;
        if raft.randomized_election_timeout() != timeout {
            raft.set_randomized_election_timeout(timeout);
        }
    }

    /// The state machine this replica applies to.
    pub fn state_machine(&self) -> &Arc<StateMachine> {
        &self.state_machine
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.node.raft.id
    }

    /// The leader's id as this member knows it (0: none).
    pub fn leader_id(&self) -> u64 {
        self.node.raft.leader_id
    }

    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The highest log index known committed.
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The highest log index applied to the state machine.
    pub fn applied_index(&self) -> u64 {
        self.state_machine.consistent_index()
    }

    /// The membership as this member has applied it.
    pub fn cluster(&self) -> &ClusterState {
        &self.cluster
    }

    /// Proposes a membership change; `context` names the member and the request.
    pub fn propose_conf_change(
        &mut self,
        change: ConfChangeV2,
        context: &ConfChangeContext,
    ) -> Result<(), ProposeError> {
        use prost::Message as _;
        if self.leader_id() == 0 || self.is_removed() {
            return Err(ProposeError::NoLeader);
        }
        self.node
            .propose_conf_change(context.encode_to_vec(), change)
            .map_err(|e| match e {
                raft::Error::ProposalDropped => ProposeError::NoLeader,
                other => ProposeError::Dropped(other.to_string()),
            })
    }

    /// Asks the leader to hand leadership to `transferee`.
    pub fn transfer_leader(&mut self, transferee: u64) {
        if self.is_removed() {
            return;
        }
        self.node.transfer_leader(transferee);
    }

    /// The voters and learners of the current configuration.
    pub fn conf_state(&self) -> ConfState {
        self.node.store().conf_state().clone()
    }

    /// Advances the logical clock by one tick (one heartbeat interval).
    pub fn tick(&mut self) {
        // A member that applied its own removal takes no further part in Raft (raft-rs
        // would look up its own progress, which is gone); it is about to stop.
        if self.is_removed() {
            return;
        }
        self.node.tick();
        self.pin_election_timeout();
    }

    /// Proposes a client request (an encoded `InternalRequest`).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        if self.leader_id() == 0 || self.is_removed() {
            return Err(ProposeError::NoLeader);
        }
        self.node.propose(vec![], data).map_err(|e| match e {
            raft::Error::ProposalDropped => ProposeError::NoLeader,
            other => ProposeError::Dropped(other.to_string()),
        })
    }

    /// Starts a read-index round tagged with `ctx`; its `ReadState` appears in a later Output.
    pub fn read_index(&mut self, ctx: Vec<u8>) {
        if self.is_removed() {
            return;
        }
        self.node.read_index(ctx);
    }

    /// Delivers a message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), raft::Error> {
        if self.is_removed() {
            return Ok(());
        }
        let result = self.node.step(message);
        self.pin_election_timeout();
        result
    }

    /// Tells raft-rs that messages to `id` could not be delivered (it then probes slowly).
    pub fn report_unreachable(&mut self, id: u64) {
        self.node.report_unreachable(id);
    }

    /// Tells raft-rs whether a snapshot sent to `id` arrived.
    pub fn report_snapshot(&mut self, id: u64, delivered: bool) {
        let status = if delivered {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.node.report_snapshot(id, status);
    }

    /// Persists, applies and collects everything raft-rs has ready.
    pub fn handle_ready(&mut self) -> Result<Output, StorageError> {
        let mut early = Vec::new();
        let mut out = self.handle_ready_sending(&mut |messages| early.extend(messages))?;
        early.append(&mut out.messages);
        out.messages = early;
        Ok(out)
    }

    /// [`Replica::handle_ready`], handing the messages that may leave before this member's
    /// own fsync (a leader's appends and heartbeats) to `send_now` as soon as the Ready is
    /// taken, before anything is applied or persisted: followers then write the entries
    /// while the leader does (the Raft thesis, 10.2.1). raft-rs counts the leader's own
    /// copy towards the commit quorum only once it is persisted, so nothing is
    /// acknowledged earlier. [`Output::messages`] holds the rest, which must wait for
    /// persistence (a follower's replies above all).
    pub fn handle_ready_sending(
        &mut self,
        send_now: &mut dyn FnMut(Vec<Message>),
    ) -> Result<Output, StorageError> {
        let mut out = Output::default();
        if self.is_removed() {
            return Ok(out);
        }
        // raft-rs may have asked for a snapshot while stepping a message that produced no
        // Ready (the send it wanted failed); build it now so the next attempt succeeds.
        if self.node.store().take_snapshot_request() {
            self.prepare_snapshot()?;
        }
        self.maybe_campaign_alone();
        if !self.node.has_ready() {
            return Ok(out);
        }
        let mut ready = self.node.ready();
        if let Some(soft) = ready.ss() {
            out.leader_changed = Some(soft.leader_id);
        }
        // A leader may send before its own fsync; followers' replies wait for theirs.
        let immediate = ready.take_messages();
        if !immediate.is_empty() {
            send_now(immediate);
        }
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot())?;
            out.conf_changes.push(ConfChangeApplied {
                request_id: 0,
                result: Ok(self.cluster.clone()),
            });
        }
        self.apply_entries(ready.take_committed_entries(), &mut out)?;
        if self.is_removed() {
            // This member applied its own removal: it stops for good (etcd's server does),
            // and raft-rs must not go on as if it still were a member (a leader that
            // removed itself has no progress of its own to advance).
            return Ok(out);
        }

        let mut batch = WriteBatch::new();
        let store = self.node.mut_store();
        store.stage_append(ready.entries(), &mut batch);
        if let Some(hard_state) = ready.hs() {
            store.stage_hard_state(hard_state, &mut batch);
        }
        if !batch.is_empty() {
            let durability = if ready.must_sync() && !crate::buggify::ack_before_fsync() {
                Durability::Sync
            } else {
                Durability::Buffered
            };
            self.engine.write(batch, durability)?;
        }
        out.read_states = ready.take_read_states();
        out.messages.extend(ready.take_persisted_messages());

        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut batch = WriteBatch::new();
            self.node.mut_store().stage_commit(commit, &mut batch);
            self.engine.write(batch, Durability::Buffered)?;
        }
        out.messages.extend(light.take_messages());
        self.apply_entries(light.take_committed_entries(), &mut out)?;
        self.node.advance_apply();
        self.maybe_compact_log()?;
        let applied = self.applied_index();
        self.node.mut_store().release_applied(applied);
        self.maybe_campaign_alone();
        Ok(out)
    }

    /// Whether this member applied its own removal from the cluster.
    pub fn is_removed(&self) -> bool {
        !self.cluster.members.is_empty() && self.cluster.member(self.id()).is_none()
    }

    fn maybe_campaign_alone(&mut self) {
        if !self.campaign_when_alone || self.node.store().conf_state().voters != [self.id()] {
            return;
        }
        self.campaign_when_alone = false;
        if let Err(e) = self.node.campaign() {
            tracing::warn!(error = %e, "campaign failed");
        }
        self.pin_election_timeout();
    }

    /// Replaces the state machine and the log with a snapshot from the leader. The peer
    /// layer verified its checksum before raft-rs saw it; a failure here is a storage failure.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let meta = snapshot.get_metadata();
        tracing::info!(
            index = meta.index,
            term = meta.term,
            bytes = snapshot.data.len(),
            "installing snapshot"
        );
        self.state_machine.restore(&snapshot.data).map_err(|e| {
            StorageError::Io(format!(
                "cannot install snapshot at index {}: {e}",
                meta.index
            ))
        })?;
        let mut batch = WriteBatch::new();
        self.node.mut_store().stage_apply_snapshot(meta, &mut batch);
        self.engine.write(batch, Durability::Sync)?;
        if let Some(cluster) = ClusterState::load(self.engine.as_ref())? {
            self.cluster = cluster;
        }
        Ok(())
    }

    /// Builds a snapshot of the state machine at the applied index for raft-rs to send.
    fn prepare_snapshot(&mut self) -> Result<(), StorageError> {
        let index = self.applied_index();
        let Some(term) = self.node.store().term_of(index) else {
            tracing::warn!(
                index,
                "cannot snapshot: the applied entry is no longer in the log"
            );
            return Ok(());
        };
        let conf_state = self.conf_state();
        let data = self
            .state_machine
            .snapshot(term, &conf_state)
            .map_err(|e| {
                StorageError::Io(format!("cannot build snapshot at index {index}: {e}"))
            })?;
        let mut snapshot = Snapshot {
            data: data.into(),
            ..Snapshot::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(conf_state);
        tracing::info!(
            index,
            term,
            bytes = snapshot.data.len(),
            "prepared snapshot for a lagging follower"
        );
        self.node.mut_store().set_snapshot(snapshot);
        Ok(())
    }

    /// Applies committed entries in order: each run of consecutive normal entries with one
    /// storage write (`StateMachine::apply_batch`); a configuration change ends a run.
    fn apply_entries(&mut self, entries: Vec<Entry>, out: &mut Output) -> Result<(), StorageError> {
        let mut run: Vec<(u64, &[u8])> = Vec::new();
        for entry in &entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal => run.push((entry.index, &entry.data[..])),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_run(&mut run, out)?;
                    self.apply_conf_change(entry, out)?;
                }
            }
        }
        self.apply_run(&mut run, out)
    }

    /// Applies a run of normal entries and empties it.
    fn apply_run(
        &mut self,
        run: &mut Vec<(u64, &[u8])>,
        out: &mut Output,
    ) -> Result<(), StorageError> {
        if !run.is_empty() {
            out.applied.extend(self.state_machine.apply_batch(run)?);
            run.clear();
        }
        Ok(())
    }

    fn apply_conf_change(&mut self, entry: &Entry, out: &mut Output) -> Result<(), StorageError> {
        let change = match decode_conf_change(entry) {
            Ok(change) => change,
            Err(e) => {
                tracing::error!(index = entry.index, error = %e, "skipping undecodable conf change");
                return self.state_machine.mark_applied(entry.index);
            }
        };
        let context = decode_context(&entry.context);
        let result = match self.node.apply_conf_change(&change) {
            Ok(conf_state) => {
                let mut batch = WriteBatch::new();
                self.node
                    .mut_store()
                    .stage_conf_state(&conf_state, &mut batch);
                self.record_membership(&change, context.member.as_ref(), &mut batch);
                self.engine.write(batch, Durability::Buffered)?;
                Ok(self.cluster.clone())
            }
            Err(e) => {
                tracing::warn!(index = entry.index, error = %e, "conf change refused");
                Err(e.to_string())
            }
        };
        out.conf_changes.push(ConfChangeApplied {
            request_id: context.request_id,
            result,
        });
        self.state_machine.mark_applied(entry.index)
    }

    /// Mirrors an applied configuration change into the member records.
    fn record_membership(
        &mut self,
        change: &ConfChangeV2,
        member: Option<&crate::api::cairnpb::MemberRecord>,
        batch: &mut WriteBatch,
    ) {
        use raft::eraftpb::ConfChangeType;
        for single in change.get_changes() {
            let id = single.node_id;
            match single.get_change_type() {
                ConfChangeType::RemoveNode => self.cluster.remove(id, batch),
                kind => {
                    let learner = kind == ConfChangeType::AddLearnerNode;
                    let mut record = self
                        .cluster
                        .member(id)
                        .cloned()
                        .or_else(|| member.filter(|m| m.id == id).cloned())
                        .unwrap_or_else(|| crate::api::cairnpb::MemberRecord {
                            id,
                            ..Default::default()
                        });
                    record.is_learner = learner;
                    // A member update (new peer URLs) or a member publishing its name and
                    // client URLs re-adds the member with the new attributes in the context.
                    if let Some(update) = member.filter(|m| m.id == id) {
                        merge_attributes(&mut record, update);
                    }
                    self.cluster.upsert(record, batch);
                }
            }
        }
    }

    fn maybe_compact_log(&mut self) -> Result<(), StorageError> {
        let applied = self.applied_index();
        let store = self.node.store();
        let keep_from = applied.saturating_sub(self.catch_up_entries);
        if keep_from < store.first_index() + self.snapshot_count {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        self.node.mut_store().stage_compact(keep_from, &mut batch)?;
        // Sync: this also makes every earlier apply batch durable, so the log is never
        // shorter on disk than what the durable state machine needs.
        self.engine.write(batch, Durability::Sync)
    }
}

/// A configuration change of one member.
pub fn single_change(kind: raft::eraftpb::ConfChangeType, id: u64) -> ConfChangeV2 {
    let mut single = raft::eraftpb::ConfChangeSingle {
        node_id: id,
        ..Default::default()
    };
    single.set_change_type(kind);
    let mut change = ConfChangeV2::default();
    change.set_changes(vec![single].into());
    change
}

fn merge_attributes(
    record: &mut crate::api::cairnpb::MemberRecord,
    update: &crate::api::cairnpb::MemberRecord,
) {
    if !update.peer_urls.is_empty() {
        record.peer_urls = update.peer_urls.clone();
    }
    if !update.name.is_empty() {
        record.name = update.name.clone();
    }
    if !update.client_urls.is_empty() {
        record.client_urls = update.client_urls.clone();
    }
}

/// Writes the first entries of a brand-new cluster's log, as etcd does at bootstrap: one
/// committed AddNode per initial member at term 1. Every member writes the same entries, so
/// the configuration is in the log itself, and a member that joins later and replays the log
/// from index 1 learns the same voters as everyone else.
fn stage_bootstrap_log(store: &mut LogStore, voters: &[u64], batch: &mut WriteBatch) {
    use raft::eraftpb::{ConfChange, ConfChangeType, HardState};
    let entries: Vec<Entry> = voters
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let mut change = ConfChange::default();
            change.set_change_type(ConfChangeType::AddNode);
            change.node_id = id;
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::EntryConfChange);
            entry.term = 1;
            entry.index = i as u64 + 1;
            entry.data = change.write_to_bytes().unwrap_or_default().into();
            entry
        })
        .collect();
    store.stage_append(&entries, batch);
    let hard_state = HardState {
        term: 1,
        commit: entries.len() as u64,
        ..HardState::default()
    };
    store.stage_hard_state(&hard_state, batch);
}

/// A well-mixed 64-bit hash (SplitMix64's finalizer).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn decode_context(bytes: &[u8]) -> ConfChangeContext {
    use prost::Message as _;
    ConfChangeContext::decode(bytes).unwrap_or_default()
}

fn decode_conf_change(entry: &Entry) -> Result<ConfChangeV2, protobuf::ProtobufError> {
    if entry.get_entry_type() == EntryType::EntryConfChangeV2 {
        return ConfChangeV2::parse_from_bytes(&entry.data);
    }
    let v1 = raft::eraftpb::ConfChange::parse_from_bytes(&entry.data)?;
    Ok(raft_proto::ConfChangeI::into_v2(v1))
}
