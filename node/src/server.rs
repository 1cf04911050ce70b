//! The member's event loop: the only place that owns the clock and drives the replica.
//!
//! gRPC handlers talk to the loop through a [`Handle`]: writes are proposed and answered when
//! applied; linearizable reads wait for a read-index round (all reads queued while a round is
//! being set up share one round) and for the applied index to reach it, then read locally.
//! The loop batches every command it finds queued before calling `handle_ready`, so many
//! proposals share one fsync (group commit).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::api::cairnpb::{
    ConfChangeContext, InternalRequest, MemberRecord, RequestAuth, internal_request::Request,
};
use cairn_core::api::etcdserverpb::{ResponseHeader, WatchResponse};
use cairn_core::api::mvccpb::Event;
use cairn_core::apply::{Applied, Response, StateMachine};
use cairn_core::membership::ClusterState;
use cairn_core::replica::{Output, ProposeError, Replica};
use cairn_core::storage::StorageError;
use cairn_core::watch::WatchStream;
use prost::Message as _;
use raft::eraftpb::ConfChangeV2;
use raft::eraftpb::Message;

use crate::peer::{PeerFeedback, Peers};
use crate::tokens::Tokens;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Commands queued to the loop; bounded so a flood of clients waits instead of growing memory.
pub const COMMAND_QUEUE_LEN: usize = 4096;
/// Commands taken from the queue per loop turn (one Ready, one fsync).
pub const MAX_COMMANDS_PER_READY: usize = 1024;
/// Ticks after which read-index rounds still waiting are asked again.
pub const READ_RETRY_TICKS: u64 = 3;
/// Applied entries buffered for event subscribers; one that falls further behind gets
/// `RecvError::Lagged` and must catch up from storage (`Mvcc::events_since`).
pub const EVENT_QUEUE_LEN: usize = 1024;

/// The events of one applied entry, in revision order (all of one revision).
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedEvents {
    /// The revision the entry created.
    pub revision: i64,
    /// Its events, each with `prev_kv` filled when a previous version exists.
    pub events: Vec<Event>,
    /// Whether each `prev_kv` carries its value (`Applied::prev_values`).
    pub prev_values: bool,
}

impl AppliedEvents {
    /// The responses `stream` owes for this entry ([`WatchStream::apply`]; an entry whose
    /// previous values were not read goes through history for a watcher that wants them).
    pub fn feed(&self, stream: &mut WatchStream) -> Vec<WatchResponse> {
        if self.prev_values {
            stream.apply(self.revision, &self.events)
        } else {
            stream.apply_without_prev_values(self.revision, &self.events)
        }
    }
}

/// Why a request did not get a result from the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// The request was applied and the state machine refused it.
    #[error(transparent)]
    Apply(#[from] cairn_core::Error),
    /// No leader to take the proposal.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// A proposal only the leader may make, and this member is not the leader.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// The request was not answered within the request timeout.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// The server is shutting down.
    #[error("etcdserver: server stopped")]
    Stopped,
}

/// Who this member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The cluster id.
    pub cluster_id: u64,
    /// This member's id.
    pub member_id: u64,
}

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The request could not be completed (no leader, timeout, stopping).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// raft-rs refused the change when it was applied.
    #[error("etcdserver: {0}")]
    Refused(String),
    /// No member has the id.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// Another member already has one of the peer URLs.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// Promote of a member that is not a learner.
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    /// Peer URLs that are not http(s) URLs with a port.
    #[error("etcdserver: given member URLs are invalid")]
    BadUrls,
    /// MoveLeader sent to a member that is not the leader.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// MoveLeader to a member that is not a voter.
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// The transfer did not finish within the request timeout.
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
}

/// Raft progress as last seen by the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// The leader's id (0: none).
    pub leader: u64,
    /// The term.
    pub term: u64,
    /// The commit index.
    pub commit_index: u64,
    /// The applied index.
    pub applied_index: u64,
}

type ProposeReply = oneshot::Sender<Result<Response, ServerError>>;
type ReadReply = oneshot::Sender<Result<(), ServerError>>;

type ConfChangeReply = oneshot::Sender<Result<ClusterState, MembershipError>>;

enum Command {
    Propose {
        request: Request,
        auth: Option<RequestAuth>,
        /// Refused unless this member is the leader (see [`Handle::propose_as_leader`]).
        leader_only: bool,
        reply: ProposeReply,
    },
    Read {
        reply: ReadReply,
    },
    ConfChange {
        change: ConfChangeV2,
        member: MemberRecord,
        reply: ConfChangeReply,
    },
    TransferLeader {
        transferee: u64,
    },
}

/// A cheap, cloneable handle to a running member.
#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    state_machine: Arc<StateMachine>,
    identity: Arc<Identity>,
    status: watch::Receiver<RaftStatus>,
    members: watch::Receiver<ClusterState>,
    events: broadcast::Sender<Arc<AppliedEvents>>,
    request_timeout: Duration,
    tokens: Arc<Tokens>,
}

impl Handle {
    /// The auth tokens this member honours.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Waits (up to the request timeout) until this member has applied `index`; false if it
    /// did not in time.
    pub async fn wait_applied(&self, index: u64) -> bool {
        let mut status = self.status.clone();
        let wait = status.wait_for(|s| s.applied_index >= index);
        matches!(
            tokio::time::timeout(self.request_timeout, wait).await,
            Ok(Ok(_))
        )
    }

    /// The membership as this member has applied it.
    pub fn cluster(&self) -> ClusterState {
        self.members.borrow().clone()
    }

    /// A receiver of membership changes (for the peer service).
    pub fn cluster_updates(&self) -> watch::Receiver<ClusterState> {
        self.members.clone()
    }

    /// Proposes a membership change and waits until it is applied.
    pub async fn change_membership(
        &self,
        change: ConfChangeV2,
        member: MemberRecord,
    ) -> Result<ClusterState, MembershipError> {
        let (reply, done) = oneshot::channel();
        self.send(Command::ConfChange {
            change,
            member,
            reply,
        })
        .await?;
        self.wait(done).await?
    }

    /// Waits (up to the request timeout) until `leader` leads; false if it never did.
    pub async fn wait_for_leader(&self, leader: u64) -> bool {
        let mut status = self.status.clone();
        let wait = status.wait_for(|s| s.leader == leader);
        matches!(
            tokio::time::timeout(self.request_timeout, wait).await,
            Ok(Ok(_))
        )
    }

    /// Asks this member (if leader) to hand leadership to `transferee`.
    pub async fn transfer_leader(&self, transferee: u64) -> Result<(), ServerError> {
        self.send(Command::TransferLeader { transferee }).await
    }

    /// Subscribes to the events of every entry applied from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<AppliedEvents>> {
        self.events.subscribe()
    }

    /// Proposes a write and waits until it is applied.
    pub async fn propose(&self, request: Request) -> Result<Response, ServerError> {
        self.propose_as(request, None).await
    }

    /// Proposes a write on behalf of the user `auth` names (checked at apply) and waits
    /// until it is applied.
    pub async fn propose_as(
        &self,
        request: Request,
        auth: Option<RequestAuth>,
    ) -> Result<Response, ServerError> {
        self.propose_with(request, auth, false).await
    }

    /// Proposes a write only if this member is the leader when the proposal is made (the
    /// lessor's revocation of an expired lease): it never waits for a leader nor goes to
    /// another one, which may have heard from the lease's holder since.
    pub async fn propose_as_leader(
        &self,
        request: Request,
        auth: Option<RequestAuth>,
    ) -> Result<Response, ServerError> {
        self.propose_with(request, auth, true).await
    }

    async fn propose_with(
        &self,
        request: Request,
        auth: Option<RequestAuth>,
        leader_only: bool,
    ) -> Result<Response, ServerError> {
        let (reply, response) = oneshot::channel();
        self.send(Command::Propose {
            request,
            auth,
            leader_only,
            reply,
        })
        .await?;
        self.wait(response).await?
    }

    /// Waits until the local state reflects every write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), ServerError> {
        #[cfg(madsim)]
        if cairn_core::buggify::local_reads() {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        self.send(Command::Read { reply }).await?;
        self.wait(done).await?
    }

    async fn send(&self, command: Command) -> Result<(), ServerError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| ServerError::Stopped)
    }

    async fn wait<T>(&self, receiver: oneshot::Receiver<T>) -> Result<T, ServerError> {
        match tokio::time::timeout(self.request_timeout, receiver).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::Timeout),
        }
    }

    /// How long a request may wait for the cluster (etcd's request timeout).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The state machine, for local reads.
    pub fn state_machine(&self) -> &StateMachine {
        &self.state_machine
    }

    /// Cluster and member ids.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The latest Raft status.
    pub fn raft_status(&self) -> RaftStatus {
        *self.status.borrow()
    }

    /// A response header at `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision,
            raft_term: self.raft_status().term,
        }
    }
}

/// The event loop's state.
pub struct EventLoop {
    replica: Replica,
    commands: mpsc::Receiver<Command>,
    peers: Peers,
    peer_inbox: mpsc::Receiver<Message>,
    peer_feedback: mpsc::UnboundedReceiver<PeerFeedback>,
    status: watch::Sender<RaftStatus>,
    members: watch::Sender<ClusterState>,
    events: broadcast::Sender<Arc<AppliedEvents>>,
    tick: Duration,
    tokens: Arc<Tokens>,
    conf_waiters: BTreeMap<u64, ConfChangeReply>,
    next_request_id: u64,
    waiters: BTreeMap<u64, ProposeReply>,
    /// Proposals that arrived while no leader was known, proposed once one is (etcd's raft
    /// node stops taking proposals while it has no leader: they wait, they do not fail).
    leaderless: Vec<(Request, Option<RequestAuth>, ProposeReply)>,
    /// A member refused our raft traffic: this member was removed from the cluster.
    removed_by_peer: bool,
    /// Reads that arrived since the last read-index round was started.
    queued_reads: Vec<ReadReply>,
    /// Read-index rounds in flight, by context.
    read_rounds: BTreeMap<u64, Vec<ReadReply>>,
    /// Ticks since the loop started.
    ticks: u64,
    /// Rounds whose index is known, waiting for apply to reach it.
    reads_to_release: Vec<(u64, Vec<ReadReply>)>,
    next_read_ctx: u64,
}

/// The loop's connections to the other members.
pub struct PeerChannels {
    /// Outbound queues.
    pub peers: Peers,
    /// Messages received from peers.
    pub inbox: mpsc::Receiver<Message>,
    /// Delivery failures reported by the outbound links.
    pub feedback: mpsc::UnboundedReceiver<PeerFeedback>,
}

/// Timing of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// One Raft tick (`--heartbeat-interval`).
    pub tick: Duration,
    /// How long a client request may wait.
    pub request_timeout: Duration,
    /// How long an unused auth token stays valid.
    pub token_ttl: Duration,
}

/// Builds the loop and its handle around an opened replica.
pub fn start(
    replica: Replica,
    identity: Identity,
    peers: PeerChannels,
    timing: Timing,
    request_id_base: u64,
) -> (EventLoop, Handle) {
    let Timing {
        tick,
        request_timeout,
        token_ttl,
    } = timing;
    let tokens = Arc::new(Tokens::new(token_ttl));
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE_LEN);
    let (status_tx, status) = watch::channel(RaftStatus::default());
    let (members_tx, members) = watch::channel(replica.cluster().clone());
    let (events, _) = broadcast::channel(EVENT_QUEUE_LEN);
    let handle = Handle {
        events: events.clone(),
        commands: commands_tx,
        state_machine: replica.state_machine().clone(),
        identity: Arc::new(identity),
        status,
        members,
        request_timeout,
        tokens: tokens.clone(),
    };
    let event_loop = EventLoop {
        replica,
        commands,
        peers: peers.peers,
        peer_inbox: peers.inbox,
        peer_feedback: peers.feedback,
        status: status_tx,
        members: members_tx,
        events,
        tick,
        tokens,
        conf_waiters: BTreeMap::new(),
        next_request_id: request_id_base,
        waiters: BTreeMap::new(),
        leaderless: Vec::new(),
        removed_by_peer: false,
        queued_reads: Vec::new(),
        read_rounds: BTreeMap::new(),
        ticks: 0,
        reads_to_release: Vec::new(),
        // Unique across restarts of this member: a late answer to a read asked before a
        // restart must not release a new one.
        next_read_ctx: request_id_base,
    };
    (event_loop, handle)
}

impl EventLoop {
    /// Runs until every handle is dropped or `shutdown` fires. A storage failure (a failed
    /// fsync above all) ends the loop with the error: the process must not continue.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), StorageError> {
        let member_id = self.replica.id();
        let mut period = crate::clock::real_period(member_id, self.tick);
        let mut ticker = tokio::time::interval(period);
        self.process_ready()?;
        loop {
            select! {
                _ = shutdown.changed() => return Ok(()),
                _ = ticker.tick() => {
                    self.on_tick();
                    // A member whose clock runs fast or slow ticks sooner or later (only
                    // ever under simulation: outside it the period never changes).
                    let now_period = crate::clock::real_period(member_id, self.tick);
                    if now_period != period {
                        period = now_period;
                        ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    }
                }
                Some(feedback) = self.peer_feedback.recv() => self.on_feedback(feedback),
                Some(message) = self.peer_inbox.recv() => self.take_messages(message),
                command = self.commands.recv() => match command {
                    Some(command) => self.take_commands(command),
                    None => return Ok(()),
                },
            }
            self.start_read_round();
            self.process_ready()?;
            // The Ready may have ended the round in flight: the reads queued behind it
            // start the next one now rather than at the next event.
            if self.start_read_round() {
                self.process_ready()?;
            }
            if self.removed() {
                // etcd: "the member has been permanently removed from the cluster".
                tracing::warn!("this member was removed from the cluster; shutting down");
                return Ok(());
            }
        }
    }

    /// Whether the applied membership no longer contains this member, or a member told
    /// it that it was removed.
    fn removed(&self) -> bool {
        self.removed_by_peer || self.replica.is_removed()
    }

    fn on_tick(&mut self) {
        self.replica.tick();
        // Forget requests whose client gave up (timed out or went away): a proposal lost in
        // a leader change, or a read round that never completed, must not pin memory.
        let before = self.waiters.len();
        self.waiters.retain(|_, reply| !reply.is_closed());
        // A proposal whose client gave up (timed out) failed, as etcd counts it.
        crate::metrics::metrics()
            .proposals_failed
            .inc_by((before - self.waiters.len()) as u64);
        let before = self.leaderless.len();
        self.leaderless.retain(|(_, _, reply)| !reply.is_closed());
        crate::metrics::metrics()
            .proposals_failed
            .inc_by((before - self.leaderless.len()) as u64);
        self.conf_waiters.retain(|_, reply| !reply.is_closed());
        self.read_rounds.retain(|_, readers| {
            readers.retain(|reader| !reader.is_closed());
            !readers.is_empty()
        });
        self.ticks += 1;
        if self.ticks.is_multiple_of(READ_RETRY_TICKS) {
            self.retry_read_rounds();
        }
    }

    /// raft-rs drops a read-index request silently when it cannot serve it yet (no leader,
    /// or a new leader that has not committed in its term); asking again for every round
    /// still waiting keeps such reads from waiting out the request timeout. A late answer
    /// to an earlier attempt finds its round gone and is ignored.
    fn retry_read_rounds(&mut self) {
        let pending: Vec<u64> = self.read_rounds.keys().copied().collect();
        for ctx in pending {
            let context = self.read_context(ctx);
            self.replica.read_index(context);
        }
    }

    fn take_commands(&mut self, first: Command) {
        self.handle_command(first);
        for _ in 1..MAX_COMMANDS_PER_READY {
            match self.commands.try_recv() {
                Ok(command) => self.handle_command(command),
                Err(_) => break,
            }
        }
    }

    fn take_messages(&mut self, first: Message) {
        self.step(first);
        for _ in 1..MAX_COMMANDS_PER_READY {
            match self.peer_inbox.try_recv() {
                Ok(message) => self.step(message),
                Err(_) => break,
            }
        }
    }

    fn step(&mut self, message: Message) {
        if let Err(e) = self.replica.step(message) {
            tracing::debug!(error = %e, "raft refused a peer message");
        }
    }

    fn on_feedback(&mut self, feedback: PeerFeedback) {
        match feedback {
            PeerFeedback::Unreachable(id) => self.replica.report_unreachable(id),
            PeerFeedback::Snapshot(id, delivered) => self.replica.report_snapshot(id, delivered),
            PeerFeedback::Removed(by) => {
                tracing::warn!(
                    by = format_args!("{by:x}"),
                    "{}",
                    crate::peer::MEMBER_REMOVED
                );
                self.removed_by_peer = true;
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Propose {
                request,
                auth,
                leader_only,
                reply,
            } => {
                if leader_only && self.replica.leader_id() != self.replica.id() {
                    let _ = reply.send(Err(ServerError::NotLeader));
                } else {
                    self.propose(request, auth, reply);
                }
            }
            Command::Read { reply } => self.queued_reads.push(reply),
            Command::ConfChange {
                change,
                member,
                reply,
            } => self.propose_conf_change(change, member, reply),
            Command::TransferLeader { transferee } => self.replica.transfer_leader(transferee),
        }
    }

    fn propose(&mut self, request: Request, auth: Option<RequestAuth>, reply: ProposeReply) {
        if self.replica.leader_id() == 0 && self.leaderless.len() < COMMAND_QUEUE_LEN {
            self.leaderless.push((request, auth, reply));
            return;
        }
        let id = self.next_request_id;
        self.next_request_id += 1;
        let data = InternalRequest {
            id,
            request: Some(request),
            auth,
        }
        .encode_to_vec();
        match self.replica.propose(data) {
            Ok(()) => {
                self.waiters.insert(id, reply);
            }
            Err(ProposeError::NoLeader) => {
                crate::metrics::metrics().proposals_failed.inc();
                let _ = reply.send(Err(ServerError::NoLeader));
            }
            Err(ProposeError::Dropped(reason)) => {
                tracing::warn!(%reason, "proposal dropped");
                crate::metrics::metrics().proposals_failed.inc();
                let _ = reply.send(Err(ServerError::NoLeader));
            }
        }
    }

    fn propose_conf_change(
        &mut self,
        change: ConfChangeV2,
        member: MemberRecord,
        reply: ConfChangeReply,
    ) {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let context = ConfChangeContext {
            request_id,
            member: Some(member),
        };
        match self.replica.propose_conf_change(change, &context) {
            Ok(()) => {
                self.conf_waiters.insert(request_id, reply);
            }
            Err(ProposeError::NoLeader) => {
                let _ = reply.send(Err(ServerError::NoLeader.into()));
            }
            Err(ProposeError::Dropped(reason)) => {
                let _ = reply.send(Err(MembershipError::Refused(reason)));
            }
        }
    }

    /// The leader keeps one pending read per context and silently drops a second one with
    /// the same bytes, so a context names the member as well as the round.
    fn read_context(&self, round: u64) -> Vec<u8> {
        [self.replica.id().to_be_bytes(), round.to_be_bytes()].concat()
    }

    /// Starts a read round for every queued read, unless a round is in flight: as etcd's
    /// `linearizableReadLoop`, reads that arrive during a round wait for it to end and
    /// then share the next one, so a read load costs one heartbeat round (and, on a
    /// follower, one request to the leader) per round trip rather than per batch of
    /// commands. Whether a round started.
    fn start_read_round(&mut self) -> bool {
        if self.queued_reads.is_empty() || !self.read_rounds.is_empty() {
            return false;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        self.replica.read_index(self.read_context(ctx));
        self.read_rounds
            .insert(ctx, std::mem::take(&mut self.queued_reads));
        true
    }

    /// Proposes what waited for a leader, once one is known.
    fn propose_leaderless(&mut self) {
        if self.leaderless.is_empty() || self.replica.leader_id() == 0 {
            return;
        }
        for (request, auth, reply) in std::mem::take(&mut self.leaderless) {
            // A client that gave up meanwhile was told it timed out: do not apply it now.
            if reply.is_closed() {
                crate::metrics::metrics().proposals_failed.inc();
                continue;
            }
            self.propose(request, auth, reply);
        }
    }

    fn process_ready(&mut self) -> Result<(), StorageError> {
        let metrics = crate::metrics::metrics();
        loop {
            self.propose_leaderless();
            // The core is clock-free: the node times each Ready round it drives (persisting
            // entries and hard state with their fsync, then applying what committed).
            let started = tokio::time::Instant::now();
            // A leader's appends leave before its own fsync (the followers persist
            // meanwhile); a link that cannot take one is reported once the Ready is done.
            let peers = &self.peers;
            let mut unreachable = Vec::new();
            let mut sent_early = false;
            let output = self.replica.handle_ready_sending(&mut |messages| {
                sent_early = true;
                for message in messages {
                    if let Err(to) = peers.send(message) {
                        unreachable.push(to);
                    }
                }
            })?;
            for to in unreachable {
                self.replica.report_unreachable(to);
            }
            let elapsed = started.elapsed().as_secs_f64();
            let idle = !sent_early
                && output.applied.is_empty()
                && output.read_states.is_empty()
                && output.messages.is_empty()
                && output.leader_changed.is_none();
            if !idle {
                metrics.wal_fsync.observe(elapsed);
            }
            if !output.applied.is_empty() {
                metrics.backend_commit.observe(elapsed);
            }
            self.deliver(output);
            if idle {
                break;
            }
        }
        self.release_reads();
        self.publish_status();
        metrics
            .has_leader
            .set(i64::from(self.replica.leader_id() != 0));
        metrics
            .proposals_committed
            .set(i64::try_from(self.replica.commit_index()).unwrap_or(i64::MAX));
        metrics
            .proposals_applied
            .set(i64::try_from(self.replica.applied_index()).unwrap_or(i64::MAX));
        metrics
            .proposals_pending
            .set(i64::try_from(self.waiters.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    fn deliver(&mut self, output: Output) {
        if let Some(leader) = output.leader_changed {
            tracing::info!(leader = format_args!("{leader:x}"), "leader changed");
            if leader != 0 {
                crate::metrics::metrics().leader_changes.inc();
            }
        }
        for message in output.messages {
            if let Err(to) = self.peers.send(message) {
                self.replica.report_unreachable(to);
            }
        }
        for applied in output.applied {
            self.answer(applied);
        }
        for change in output.conf_changes {
            if let Ok(cluster) = &change.result {
                self.publish_membership(cluster.clone());
            }
            if let Some(reply) = self.conf_waiters.remove(&change.request_id) {
                let _ = reply.send(change.result.map_err(MembershipError::Refused));
            }
        }
        for state in output.read_states {
            let ctx = ctx_of(&state.request_ctx);
            if let Some(readers) = self.read_rounds.remove(&ctx) {
                self.reads_to_release.push((state.index, readers));
            }
        }
    }

    fn answer(&mut self, applied: Applied) {
        if let Some(change) = &applied.token_change {
            self.tokens.apply(change);
        }
        if let Some(revision) = applied
            .events
            .last()
            .and_then(|e| e.kv.as_ref())
            .map(|kv| kv.mod_revision)
        {
            // No subscriber is not an error: nobody watches.
            let _ = self.events.send(Arc::new(AppliedEvents {
                revision,
                events: applied.events,
                prev_values: applied.prev_values,
            }));
        }
        if let Some(reply) = self.waiters.remove(&applied.request_id) {
            let _ = reply.send(applied.result.map_err(ServerError::Apply));
        }
    }

    fn release_reads(&mut self) {
        let applied = self.replica.applied_index();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_to_release)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_to_release = waiting;
        for (_, readers) in ready {
            for reader in readers {
                let _ = reader.send(Ok(()));
            }
        }
    }

    fn publish_membership(&mut self, cluster: ClusterState) {
        self.peers.update(&peer_urls(&cluster));
        self.members.send_replace(cluster);
    }

    fn publish_status(&self) {
        let status = RaftStatus {
            leader: self.replica.leader_id(),
            term: self.replica.term(),
            commit_index: self.replica.commit_index(),
            applied_index: self.replica.applied_index(),
        };
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }
}

/// `(id, first peer URL)` of every member.
pub fn peer_urls(cluster: &ClusterState) -> Vec<(u64, String)> {
    cluster
        .members
        .iter()
        .filter_map(|m| m.peer_urls.first().map(|url| (m.id, url.clone())))
        .collect()
}

/// The round number in a read context (see `EventLoop::read_context`).
fn ctx_of(bytes: &[u8]) -> u64 {
    bytes
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}
