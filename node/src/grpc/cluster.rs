//! The Cluster service (etcd `api/v3rpc/member.go`): member list, add (voter or learner),
//! remove, promote and peer-URL update, each a Raft configuration change (ConfChangeV2)
//! answered once applied.

use std::time::{SystemTime, UNIX_EPOCH};

use cairn_core::api::cairnpb::MemberRecord;
use cairn_core::api::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
};
use cairn_core::membership::{ClusterState, member_id};
use cairn_core::replica::single_change;
use raft::eraftpb::ConfChangeType;
use tonic::{Request, Response, Status};

use super::pb::cluster_server::Cluster;
use super::status::from_membership;
use crate::server::{Handle, MembershipError};

/// The Cluster service of one member.
#[derive(Clone)]
pub struct ClusterService {
    handle: Handle,
    token: String,
}

impl ClusterService {
    /// A Cluster service answering through `handle`; `token` is `--initial-cluster-token`.
    pub fn new(handle: Handle, token: String) -> Self {
        ClusterService { handle, token }
    }

    /// etcd's ClusterServer header carries no revision.
    fn header(&self) -> Option<ResponseHeader> {
        Some(self.handle.header(0))
    }

    async fn change(
        &self,
        kind: ConfChangeType,
        member: MemberRecord,
    ) -> Result<ClusterState, Status> {
        let change = single_change(kind, member.id);
        self.handle
            .change_membership(change, member)
            .await
            .map_err(|e| from_membership(&e))
    }
}

fn to_member(record: &MemberRecord) -> Member {
    Member {
        id: record.id,
        name: record.name.clone(),
        peer_ur_ls: record.peer_urls.clone(),
        client_ur_ls: record.client_urls.clone(),
        is_learner: record.is_learner,
    }
}

fn members(cluster: &ClusterState) -> Vec<Member> {
    cluster.members.iter().map(to_member).collect()
}

fn check_urls(urls: &[String]) -> Result<(), Status> {
    let valid = !urls.is_empty()
        && urls.iter().all(|u| {
            url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.port().is_some())
        });
    if valid {
        Ok(())
    } else {
        Err(from_membership(&MembershipError::BadUrls))
    }
}

fn existing(cluster: &ClusterState, id: u64) -> Result<MemberRecord, Status> {
    cluster
        .member(id)
        .cloned()
        .ok_or_else(|| from_membership(&MembershipError::MemberNotFound))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        super::auth::require_admin(&self.handle, request.metadata()).await?;
        let req = request.into_inner();
        check_urls(&req.peer_ur_ls)?;
        let cluster = self.handle.cluster();
        if cluster
            .members
            .iter()
            .any(|m| m.peer_urls.iter().any(|u| req.peer_ur_ls.contains(u)))
        {
            return Err(from_membership(&MembershipError::PeerUrlExists));
        }
        // etcd: a new member's id hashes its peer URLs, the token and the time of the add.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = member_id(&req.peer_ur_ls, &format!("{}{secs}", self.token));
        let record = MemberRecord {
            id,
            peer_urls: req.peer_ur_ls.clone(),
            is_learner: req.is_learner,
            ..Default::default()
        };
        let kind = if req.is_learner {
            ConfChangeType::AddLearnerNode
        } else {
            ConfChangeType::AddNode
        };
        let cluster = self.change(kind, record.clone()).await?;
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member: Some(to_member(&record)),
            members: members(&cluster),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        super::auth::require_admin(&self.handle, request.metadata()).await?;
        let id = request.into_inner().id;
        let record = existing(&self.handle.cluster(), id)?;
        let cluster = self.change(ConfChangeType::RemoveNode, record).await?;
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members: members(&cluster),
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        super::auth::require_admin(&self.handle, request.metadata()).await?;
        let req = request.into_inner();
        // An unknown member is refused first, whatever the URLs (etcd checks the member in
        // `ValidateConfigurationChange`, before anything else).
        let cluster = self.handle.cluster();
        let mut record = existing(&cluster, req.id)?;
        check_urls(&req.peer_ur_ls)?;
        if cluster
            .members
            .iter()
            .any(|m| m.id != req.id && m.peer_urls.iter().any(|u| req.peer_ur_ls.contains(u)))
        {
            return Err(from_membership(&MembershipError::PeerUrlExists));
        }
        record.peer_urls = req.peer_ur_ls;
        // Re-adding a member in its current role changes nothing in Raft; the applied
        // context carries the new peer URLs into the member record.
        let kind = if record.is_learner {
            ConfChangeType::AddLearnerNode
        } else {
            ConfChangeType::AddNode
        };
        let cluster = self.change(kind, record).await?;
        Ok(Response::new(MemberUpdateResponse {
            header: self.header(),
            members: members(&cluster),
        }))
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let cluster = self.handle.cluster();
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: members(&cluster),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        super::auth::require_admin(&self.handle, request.metadata()).await?;
        let id = request.into_inner().id;
        let record = existing(&self.handle.cluster(), id)?;
        if !record.is_learner {
            return Err(from_membership(&MembershipError::NotLearner));
        }
        let cluster = self.change(ConfChangeType::AddNode, record).await?;
        Ok(Response::new(MemberPromoteResponse {
            header: self.header(),
            members: members(&cluster),
        }))
    }
}
