//! The Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases
//! (etcd `api/v3rpc/lease.go` over `EtcdServer.LeaseGrant`/`LeaseRevoke`/`LeaseRenew`/
//! `LeaseTimeToLive`/`LeaseLeases` of `etcdserver/v3_server.go`).
//!
//! Grant and revoke go through the log. Keep-alives and time-to-live queries are answered
//! by the leader's lessor, which alone times leases, after the local state caught up with
//! the log (etcd's `waitAppliedIndex`); a follower forwards them to the leader over the peer
//! URLs, again until the request timeout while there is no leader or it cannot be reached. A leader that has not promoted its lessor yet, or a
//! lease whose expiry is being revoked, makes the request wait, as etcd's `Renew` does. A
//! keep-alive of an unknown lease answers TTL 0 and a time-to-live query TTL -1, not an
//! error, as etcd.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::api::cairnpb::ForwardTimeToLiveResponse;
use cairn_core::api::cairnpb::internal_request::Request;
use cairn_core::api::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, ResponseHeader,
};
use cairn_core::apply::Response as Applied;
use cairn_core::lease::{Lessor, RenewError};
use futures::Stream;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

use super::pb::lease_server::Lease;
use super::quota::Quota;
use super::status::{from_core, from_server};
use crate::config::TlsSettings;
use crate::peer::LeaderClient;
use crate::server::{Handle, ServerError};

/// How often a waiting keep-alive or query looks again at the lessor.
pub const LEASE_WAIT_POLL: Duration = Duration::from_millis(20);
/// How long a keep-alive or query waits for the lessor before `request timed out`.
pub const LEASE_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The stream of keep-alive responses, one per request, in order.
pub type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send + 'static>>;

/// The Lease service of one member.
#[derive(Clone)]
pub struct LeaseService {
    handle: Handle,
    leader_client: LeaderClient,
    quota: Quota,
}

/// Where keep-alives and time-to-live queries are answered right now.
enum Primary {
    Here,
    /// The leader, at this peer URL.
    There(String),
    Unknown,
}

impl LeaseService {
    /// A Lease service answering through `handle`, reaching the leader over the peer URLs
    /// with `peer_tls` when they are `https://`.
    pub fn new(handle: Handle, peer_tls: Option<Arc<TlsSettings>>) -> Self {
        let leader_client = LeaderClient::new(handle.identity().cluster_id, peer_tls);
        LeaseService {
            quota: Quota::new(handle.clone(), 0),
            handle,
            leader_client,
        }
    }

    fn primary(&self) -> Primary {
        let leader = self.handle.raft_status().leader;
        if leader == 0 {
            return Primary::Unknown;
        }
        if leader == self.handle.identity().member_id {
            return Primary::Here;
        }
        self.handle
            .cluster()
            .members
            .iter()
            .find(|m| m.id == leader)
            .and_then(|m| m.peer_urls.first().cloned())
            .map_or(Primary::Unknown, Primary::There)
    }

    /// Asks the leader, wherever it is, until it answers or the request timeout passes
    /// (etcd's `LeaseRenew`/`LeaseTimeToLive` loops): `here` on this member while it leads,
    /// `there` with the leader's peer URL otherwise.
    async fn on_leader<R, Here, There>(
        &self,
        here: impl Fn() -> Here,
        there: impl Fn(String) -> There,
    ) -> Result<R, Status>
    where
        Here: std::future::Future<Output = Result<R, Status>>,
        There: std::future::Future<Output = Result<R, Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.handle.request_timeout();
        loop {
            let failed = match self.primary() {
                Primary::Here => match here().await {
                    Ok(answer) => return Ok(answer),
                    // Leadership moved while waiting: ask the new leader.
                    Err(_) if !matches!(self.primary(), Primary::Here) => None,
                    Err(status) => return Err(status),
                },
                Primary::There(url) => match there(url).await {
                    Ok(answer) => return Ok(answer),
                    Err(status) => Some(status),
                },
                Primary::Unknown => None,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(match (failed, self.primary()) {
                    (_, Primary::Unknown) => from_server(&ServerError::NoLeader),
                    _ => from_server(&ServerError::Timeout),
                });
            }
            if let Some(status) = failed {
                tracing::debug!(%status, "forwarding a lease request to the leader failed");
            }
            tokio::time::sleep(LEASE_WAIT_POLL).await;
        }
    }

    /// The same service with `--quota-backend-bytes` `quota_bytes` (0: etcd's default).
    pub fn with_quota(self, quota_bytes: i64) -> Self {
        LeaseService {
            quota: Quota::new(self.handle.clone(), quota_bytes),
            ..self
        }
    }

    async fn propose_as(
        &self,
        request: Request,
        auth: Option<cairn_core::api::cairnpb::RequestAuth>,
    ) -> Result<Applied, Status> {
        self.handle
            .propose_as(request, auth)
            .await
            .map_err(|e| from_server(&e))
    }

    /// A header at the current revision (etcd's `header.fill` of an empty header).
    fn current_header(&self) -> ResponseHeader {
        self.handle
            .header(self.handle.state_machine().current_revision())
    }

    fn stamp(&self, header: &mut Option<ResponseHeader>) {
        let revision = header.as_ref().map_or(0, |h| h.revision);
        *header = Some(self.handle.header(revision));
    }

    /// Whether this member may answer from its own lessor.
    fn check_leader(&self) -> Result<(), Status> {
        match self.primary() {
            Primary::Here => Ok(()),
            Primary::Unknown => Err(from_server(&ServerError::NoLeader)),
            Primary::There(_) => Err(from_core(&cairn_core::Error::NotLeader)),
        }
    }

    /// Runs `answer` on the leader's promoted lessor once the local state caught up, again
    /// every `LEASE_WAIT_POLL` while it answers `None`.
    async fn on_primary<R>(
        &self,
        mut answer: impl FnMut(&mut Lessor) -> Option<R>,
    ) -> Result<R, Status> {
        self.handle
            .read_barrier()
            .await
            .map_err(|e| from_server(&e))?;
        let deadline = tokio::time::Instant::now() + LEASE_WAIT_TIMEOUT;
        loop {
            self.check_leader()?;
            let answered = self.handle.state_machine().with_lessor(|lessor| {
                if lessor.is_primary() {
                    answer(lessor)
                } else {
                    None
                }
            });
            if let Some(result) = answered {
                return Ok(result);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(from_server(&ServerError::Timeout));
            }
            tokio::time::sleep(LEASE_WAIT_POLL).await;
        }
    }

    /// On a leader whose lessor is not promoted yet (the first check interval of its term),
    /// waits for the promotion, so that a grant applies after it and its TTL runs from the
    /// grant, not from the promotion plus an election timeout: etcd promotes before it
    /// applies any request of the term. Gives up silently after `LEASE_WAIT_TIMEOUT`.
    async fn wait_for_promotion_if_leader(&self) {
        let deadline = tokio::time::Instant::now() + LEASE_WAIT_TIMEOUT;
        while self.handle.raft_status().leader == self.handle.identity().member_id
            && !self
                .handle
                .state_machine()
                .with_lessor(|lessor| lessor.is_primary())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(LEASE_WAIT_POLL).await;
        }
    }

    /// Renews lease `id` on the leader: its TTL, or 0 if it does not exist (any more).
    async fn renew(&self, id: i64) -> Result<i64, Status> {
        self.on_leader(
            || self.renew_here(id),
            |url| async move { self.leader_client.renew(&url, id).await },
        )
        .await
    }

    /// Renews lease `id` with this member's lessor (it must lead): its TTL, or 0 if it does
    /// not exist (any more).
    pub async fn renew_here(&self, id: i64) -> Result<i64, Status> {
        self.on_primary(|lessor| match lessor.renew(id) {
            Ok(ttl) => Some(ttl),
            Err(RenewError::NotFound) => Some(0),
            Err(RenewError::Expired | RenewError::NotPrimary) => None,
        })
        .await
    }

    async fn keep_alive_once(
        &self,
        req: LeaseKeepAliveRequest,
    ) -> Result<LeaseKeepAliveResponse, Status> {
        // The header is taken before the renewal, so that a lease revoked at revision r is
        // never reported kept alive at a revision above r (as etcd's `leaseKeepAlive`).
        let header = self.current_header();
        let ttl = self.renew(req.id).await?;
        Ok(LeaseKeepAliveResponse {
            header: Some(header),
            id: req.id,
            ttl,
        })
    }

    async fn time_to_live(
        &self,
        req: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, Status> {
        let (id, keys) = (req.id, req.keys);
        let found = self
            .on_leader(
                || self.time_to_live_here(id, keys),
                |url| async move { self.leader_client.time_to_live(&url, id, keys).await },
            )
            .await?;
        Ok(LeaseTimeToLiveResponse {
            header: Some(self.current_header()),
            id,
            ttl: found.ttl,
            granted_ttl: found.granted_ttl,
            keys: found.keys,
        })
    }

    /// How long lease `id` has left by this member's lessor (it must lead): TTL -1 if it
    /// does not exist.
    pub async fn time_to_live_here(
        &self,
        id: i64,
        keys: bool,
    ) -> Result<ForwardTimeToLiveResponse, Status> {
        let found = self
            .on_primary(|lessor| {
                let Some(ttl) = lessor.time_to_live(id) else {
                    return Some(Ok(None));
                };
                let keys = if keys {
                    lessor.keys(id)
                } else {
                    Ok(Vec::new())
                };
                Some(keys.map(|keys| Some((ttl, keys))))
            })
            .await?
            .map_err(|e| from_core(&e.into()))?;
        Ok(match found {
            Some((ttl, keys)) => ForwardTimeToLiveResponse {
                ttl: ttl.remaining_secs,
                granted_ttl: ttl.granted_ttl_secs,
                keys,
            },
            None => ForwardTimeToLiveResponse {
                ttl: -1,
                ..ForwardTimeToLiveResponse::default()
            },
        })
    }
}

fn unexpected(what: &str) -> Status {
    Status::internal(format!("etcdserver: unexpected response to {what}"))
}

/// Answers each keep-alive request of `inbound` in turn, until the client closes its side
/// or an error ends the stream.
fn keep_alive_stream(
    service: LeaseService,
    inbound: Streaming<LeaseKeepAliveRequest>,
) -> KeepAliveStream {
    Box::pin(futures::stream::unfold(
        Some((service, inbound)),
        |state| async move {
            let (service, mut inbound) = state?;
            let reply = match inbound.message().await {
                Ok(Some(req)) => service.keep_alive_once(req).await,
                Ok(None) => return None,
                Err(status) => Err(status),
            };
            let next = reply.is_ok().then_some((service, inbound));
            Some((reply, next))
        },
    ))
}

#[tonic::async_trait]
impl Lease for LeaseService {
    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_grant(
        &self,
        request: GrpcRequest<LeaseGrantRequest>,
    ) -> Result<GrpcResponse<LeaseGrantResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        self.quota
            .check(cairn_core::apply::quota::LEASE_OVERHEAD_BYTES)
            .await?;
        self.wait_for_promotion_if_leader().await;
        let auth = super::auth::request_auth(&self.handle, request.metadata()).await?;
        match self
            .propose_as(Request::LeaseGrant(request.into_inner()), auth)
            .await?
        {
            Applied::LeaseGrant(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(GrpcResponse::new(resp))
            }
            _ => Err(unexpected("lease grant")),
        }
    }

    async fn lease_revoke(
        &self,
        request: GrpcRequest<LeaseRevokeRequest>,
    ) -> Result<GrpcResponse<LeaseRevokeResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let auth = super::auth::request_auth(&self.handle, request.metadata()).await?;
        match self
            .propose_as(Request::LeaseRevoke(request.into_inner()), auth)
            .await?
        {
            Applied::LeaseRevoke(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(GrpcResponse::new(resp))
            }
            _ => Err(unexpected("lease revoke")),
        }
    }

    async fn lease_keep_alive(
        &self,
        request: GrpcRequest<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<GrpcResponse<Self::LeaseKeepAliveStream>, Status> {
        super::require_leader(&self.handle, &request)?;
        Ok(GrpcResponse::new(keep_alive_stream(
            self.clone(),
            request.into_inner(),
        )))
    }

    async fn lease_time_to_live(
        &self,
        request: GrpcRequest<LeaseTimeToLiveRequest>,
    ) -> Result<GrpcResponse<LeaseTimeToLiveResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        Ok(GrpcResponse::new(
            self.time_to_live(&request.into_inner()).await?,
        ))
    }

    async fn lease_leases(
        &self,
        request: GrpcRequest<LeaseLeasesRequest>,
    ) -> Result<GrpcResponse<LeaseLeasesResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let ids = self
            .handle
            .state_machine()
            .with_lessor(|lessor| lessor.leases());
        Ok(GrpcResponse::new(LeaseLeasesResponse {
            header: Some(self.current_header()),
            leases: ids.into_iter().map(|id| LeaseStatus { id }).collect(),
        }))
    }
}
