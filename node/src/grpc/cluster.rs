//! The Cluster service. This issue serves `MemberList` from the bootstrap membership; the
//! membership-changing RPCs answer `Unimplemented` until the cluster issue lands.

use cairn_core::api::etcdserverpb::{Member, MemberListRequest, MemberListResponse};
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

#[tonic::async_trait]
impl Cluster for ClusterService {
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
        Ok(Response::new(MemberListResponse { header: Some(self.handle.header(0)), members }))
    }
}
