//! The Maintenance service. This issue serves `Status`; the other RPCs answer
//! `Unimplemented` (generated default stubs) until the operations issue lands.

use cairn_core::api::etcdserverpb::{StatusRequest, StatusResponse};
use tonic::{Request, Response, Status};

use super::pb::maintenance_server::Maintenance;
use crate::config::ETCD_COMPAT_VERSION;
use crate::server::Handle;

/// The Maintenance service of one member.
#[derive(Clone)]
pub struct MaintenanceService {
    handle: Handle,
}

impl MaintenanceService {
    /// A Maintenance service answering through `handle`.
    pub fn new(handle: Handle) -> Self {
        MaintenanceService { handle }
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let raft = self.handle.raft_status();
        let state_machine = self.handle.state_machine();
        let db_size = i64::try_from(state_machine.size_bytes()).unwrap_or(i64::MAX);
        Ok(Response::new(StatusResponse {
            header: Some(self.handle.header(state_machine.current_revision())),
            version: ETCD_COMPAT_VERSION.to_string(),
            db_size,
            leader: raft.leader,
            raft_index: raft.commit_index,
            raft_term: raft.term,
            raft_applied_index: raft.applied_index,
            errors: vec![],
            db_size_in_use: db_size,
            is_learner: false,
            storage_version: String::new(),
        }))
    }
}
