//! The Cluster service. This issue serves `MemberList` from the bootstrap membership; the
//! membership-changing RPCs answer `Unimplemented` until the cluster issue lands.

use cairn_core::api::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use super::pb::cluster_server::Cluster;
use crate::server::Handle;

/// The Cluster service of one member.
#[derive(Clone)]
pub struct ClusterService {
    handle: Handle,
}

impl ClusterService {
    /// A Cluster service answering through `handle`.
    pub fn new(handle: Handle) -> Self {
        ClusterService { handle }
    }
}

fn pending(rpc: &str) -> Status {
    Status::unimplemented(format!("cairn: {rpc} is not implemented yet"))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(pending("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(pending("MemberRemove"))
    }

    async fn member_update(
        &self,
        _: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(pending("MemberUpdate"))
    }

    async fn member_promote(
        &self,
        _: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(pending("MemberPromote"))
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let identity = self.handle.identity();
        let members = identity
            .members
            .iter()
            .map(|m| Member {
                id: m.id,
                name: m.name.clone(),
                peer_ur_ls: m.peer_urls.clone(),
                client_ur_ls: m.client_urls.clone(),
                is_learner: m.is_learner,
            })
            .collect();
        // etcd's ClusterServer header carries no revision.
        Ok(Response::new(MemberListResponse {
            header: Some(self.handle.header(0)),
            members,
        }))
    }
}
