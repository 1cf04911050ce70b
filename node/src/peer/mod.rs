//! Peer transport: Raft messages between members over tonic on the peer URLs.
//!
//! Inbound, [`PeerService`] checks that a batch belongs to this cluster and this member and
//! hands its messages to the event loop through a bounded inbox. Outbound, [`Peers`] keeps
//! one bounded queue and one sender task per remote member; the task batches whatever is
//! queued into one RPC, reconnects with backoff, and reports failures back to the loop so
//! raft-rs can slow down (`report_unreachable`, `report_snapshot`). A slow or dead peer never
//! blocks the loop or the other peers: when its queue is full, messages to it are dropped,
//! which Raft tolerates by design.

mod forward;
mod link;
#[cfg(madsim)]
pub mod sim_faults;
mod snapshot;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cairn_core::api::cairnpb::{
    ForwardRenewRequest, ForwardRenewResponse, ForwardTimeToLiveRequest, ForwardTimeToLiveResponse,
    MembersRequest, MembersResponse, RaftAck, RaftBatch, SnapshotChunk,
};
use cairn_core::membership::ClusterState;
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::grpc::lease::LeaseService;

pub use forward::LeaderClient;
pub use link::PeerFeedback;

/// The generated peer service code.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("cairnpb");
}

/// Messages queued per remote member before new ones are dropped.
pub const PEER_QUEUE_LEN: usize = 4096;
/// Messages received from all peers waiting for the event loop.
pub const INBOX_LEN: usize = 8192;
/// Messages sent in one RPC at most.
pub const MAX_MESSAGES_PER_BATCH: usize = 512;

/// Serves the peer protocol for one member.
#[derive(Clone)]
pub struct PeerService {
    cluster_id: u64,
    member_id: u64,
    inbox: mpsc::Sender<Message>,
    max_snapshot_bytes: usize,
    members: Option<tokio::sync::watch::Receiver<ClusterState>>,
    leases: Option<LeaseService>,
}

impl PeerService {
    /// A service that hands messages for `member_id` of `cluster_id` to `inbox`, taking
    /// snapshots of up to `max_snapshot_bytes`.
    pub fn new(
        cluster_id: u64,
        member_id: u64,
        inbox: mpsc::Sender<Message>,
        max_snapshot_bytes: usize,
    ) -> Self {
        PeerService {
            cluster_id,
            member_id,
            inbox,
            max_snapshot_bytes,
            members: None,
            leases: None,
        }
    }

    /// Answers keep-alives and time-to-live queries forwarded by followers with `leases`.
    pub fn with_leases(mut self, leases: LeaseService) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Answers `Members` from this view of the membership.
    pub fn with_members(mut self, members: tokio::sync::watch::Receiver<ClusterState>) -> Self {
        self.members = Some(members);
        self
    }
}

#[tonic::async_trait]
impl pb::raft_server::Raft for PeerService {
    async fn send(&self, request: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        self.accept(request.into_inner()).await?;
        Ok(Response::new(RaftAck {}))
    }

    async fn stream(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftAck>, Status> {
        let mut batches = request.into_inner();
        while let Some(batch) = batches.message().await? {
            self.accept(batch).await?;
        }
        Ok(Response::new(RaftAck {}))
    }

    async fn members(
        &self,
        _request: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let members = self
            .members
            .as_ref()
            .map(|m| m.borrow().members.clone())
            .unwrap_or_default();
        Ok(Response::new(MembersResponse {
            cluster_id: self.cluster_id,
            members,
        }))
    }

    async fn send_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftAck>, Status> {
        let message = snapshot::receive(
            self.cluster_id,
            self.member_id,
            self.max_snapshot_bytes,
            request.into_inner(),
        )
        .await?;
        self.inbox
            .send(message)
            .await
            .map_err(|_| Status::unavailable("member is stopping"))?;
        Ok(Response::new(RaftAck {}))
    }

    async fn forward_renew(
        &self,
        request: Request<ForwardRenewRequest>,
    ) -> Result<Response<ForwardRenewResponse>, Status> {
        let request = request.into_inner();
        self.check_cluster(request.cluster_id)?;
        let ttl = self.leases()?.renew_here(request.id).await?;
        Ok(Response::new(ForwardRenewResponse { ttl }))
    }

    async fn forward_time_to_live(
        &self,
        request: Request<ForwardTimeToLiveRequest>,
    ) -> Result<Response<ForwardTimeToLiveResponse>, Status> {
        let request = request.into_inner();
        self.check_cluster(request.cluster_id)?;
        let answer = self
            .leases()?
            .time_to_live_here(request.id, request.keys)
            .await?;
        Ok(Response::new(answer))
    }
}

impl PeerService {
    /// Checks that `batch` is for this member of this cluster and queues its messages for
    /// the event loop, in order.
    async fn accept(&self, batch: RaftBatch) -> Result<(), Status> {
        check_route(
            self.cluster_id,
            self.member_id,
            batch.cluster_id,
            batch.from,
            batch.to,
        )?;
        if self
            .members
            .as_ref()
            .is_some_and(|members| members.borrow().is_removed(batch.from))
        {
            // etcd answers 410 Gone: the sender stops itself when it hears this.
            return Err(Status::failed_precondition(MEMBER_REMOVED));
        }
        for bytes in &batch.messages {
            let message = Message::parse_from_carllerche_bytes(bytes)
                .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))?;
            check_snapshot(&message, batch.from)?;
            self.inbox
                .send(message)
                .await
                .map_err(|_| Status::unavailable("member is stopping"))?;
        }
        Ok(())
    }

    fn check_cluster(&self, cluster_id: u64) -> Result<(), Status> {
        check_route(
            self.cluster_id,
            self.member_id,
            cluster_id,
            0,
            self.member_id,
        )
    }

    fn leases(&self) -> Result<&LeaseService, Status> {
        self.leases
            .as_ref()
            .ok_or_else(|| Status::unavailable("member does not serve leases yet"))
    }
}

/// What a member answers a removed member's raft traffic, and what that member then stops
/// with (etcd's `errMemberRemoved`).
pub const MEMBER_REMOVED: &str = "the member has been permanently removed from the cluster";

/// Whether `status` tells the sender it was removed from the cluster.
pub fn is_member_removed(status: &Status) -> bool {
    status.code() == tonic::Code::FailedPrecondition && status.message() == MEMBER_REMOVED
}

/// Refuses traffic for another cluster (with a log line saying so) or another member.
fn check_route(
    cluster_id: u64,
    member_id: u64,
    their_cluster: u64,
    from: u64,
    to: u64,
) -> Result<(), Status> {
    if their_cluster != cluster_id {
        tracing::warn!(
            from = format_args!("{from:x}"),
            their_cluster = format_args!("{their_cluster:x}"),
            our_cluster = format_args!("{cluster_id:x}"),
            "refusing raft traffic from a member of another cluster"
        );
        return Err(Status::failed_precondition(format!(
            "cluster ID mismatch: this member belongs to cluster {cluster_id:x}, the sender to \
             {their_cluster:x}"
        )));
    }
    if to != member_id {
        return Err(Status::failed_precondition(format!(
            "member ID mismatch: this member is {member_id:x}, the message is for {to:x}"
        )));
    }
    Ok(())
}

/// Refuses a snapshot whose checksum does not match before raft-rs sees it, so the
/// sender reports the failure and sends it again.
fn check_snapshot(message: &Message, from: u64) -> Result<(), Status> {
    if message.get_msg_type() != raft::eraftpb::MessageType::MsgSnapshot {
        return Ok(());
    }
    cairn_core::snapshot::verify(&message.get_snapshot().data).map(|_| ()).map_err(|e| {
        tracing::warn!(from = format_args!("{from:x}"), error = %e, "refusing a damaged snapshot");
        Status::data_loss(format!("refusing snapshot: {e}"))
    })
}

/// Serves the peer protocol on `addr` (with `tls` if given) until `shutdown` completes.
pub async fn serve_peers(
    service: PeerService,
    addr: SocketAddr,
    max_message_bytes: usize,
    tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = pb::raft_server::RaftServer::new(service)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let router = tonic::transport::Server::builder().add_service(server);
    crate::tls::serve(router, addr, tls, shutdown).await
}

/// The outbound side: one queue and sender task per remote member.
pub struct Peers {
    cluster_id: u64,
    self_id: u64,
    max_message_bytes: usize,
    tls: Option<std::sync::Arc<crate::config::TlsSettings>>,
    feedback: mpsc::UnboundedSender<PeerFeedback>,
    links: BTreeMap<u64, (String, mpsc::Sender<Message>)>,
}

impl Peers {
    /// Starts a sender task for every `(id, peer URL)` except `self_id`; failures are
    /// reported on `feedback`.
    pub fn start(
        cluster_id: u64,
        self_id: u64,
        members: &[(u64, String)],
        max_message_bytes: usize,
        tls: Option<std::sync::Arc<crate::config::TlsSettings>>,
        feedback: mpsc::UnboundedSender<PeerFeedback>,
    ) -> Peers {
        let mut peers = Peers {
            cluster_id,
            self_id,
            max_message_bytes,
            tls,
            feedback,
            links: BTreeMap::new(),
        };
        peers.update(members);
        peers
    }

    /// Follows a membership change: starts links to new members (or members whose URL
    /// changed) and drops links to members that left, which ends their tasks.
    pub fn update(&mut self, members: &[(u64, String)]) {
        let wanted: BTreeMap<u64, &String> = members
            .iter()
            .filter(|(id, _)| *id != self.self_id)
            .map(|(id, url)| (*id, url))
            .collect();
        self.links
            .retain(|id, (url, _)| wanted.get(id).is_some_and(|u| *u == url));
        for (id, url) in wanted {
            if self.links.contains_key(&id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE_LEN);
            let link = link::Link::new(
                self.cluster_id,
                self.self_id,
                id,
                url.clone(),
                self.max_message_bytes,
                self.tls.clone(),
                self.feedback.clone(),
            );
            tokio::spawn(link.run(rx));
            self.links.insert(id, (url.clone(), tx));
        }
    }

    /// Queues `message` for its destination; returns the destination if it cannot take it
    /// (unknown member or full queue), so the caller can tell raft it is unreachable.
    pub fn send(&self, message: Message) -> Result<(), u64> {
        let to = message.to;
        match self.links.get(&to) {
            Some((_, link)) => link.try_send(message).map_err(|_| to),
            None => Err(to),
        }
    }
}
