//! The Maintenance service: Status, HashKV, MoveLeader and Snapshot (the state machine in
//! cairn's snapshot format, see `cairn_core::snapshot`). Alarm, Defragment and Hash answer
//! `Unimplemented` until the operations issue lands.

use std::pin::Pin;

use cairn_core::api::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::pb::maintenance_server::Maintenance;
use super::status::{from_core, from_membership};
use crate::config::ETCD_COMPAT_VERSION;
use crate::server::{Handle, MembershipError};

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

fn pending(rpc: &str) -> Status {
    Status::unimplemented(format!("cairn: {rpc} is not implemented yet"))
}

/// Bytes per `SnapshotResponse` (etcd sends 32 KiB blobs).
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// The stream of snapshot chunks.
pub type SnapshotStream =
    Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    type SnapshotStream = SnapshotStream;

    async fn alarm(&self, _: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        Err(pending("Alarm"))
    }

    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Err(pending("Defragment"))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(pending("Hash"))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        super::auth::require_admin(&self.handle, request.metadata()).await?;
        let revision = request.into_inner().revision;
        let state_machine = self.handle.state_machine();
        let (hash, compact_revision, hash_revision) =
            state_machine.hash_kv(revision).map_err(|e| from_core(&e))?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.handle.header(state_machine.current_revision())),
            hash,
            compact_revision,
            hash_revision,
        }))
    }

    async fn snapshot(
        &self,
        request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        super::auth::require_admin(&self.handle, request.metadata()).await?;
        let term = self.handle.raft_status().term;
        let state_machine = self.handle.state_machine();
        let bytes = state_machine
            .snapshot(term, &raft::eraftpb::ConfState::default())
            .map_err(|e| Status::internal(format!("cannot take a snapshot: {e}")))?;
        let header = self.handle.header(state_machine.current_revision());
        let total = bytes.len();
        let chunks: Vec<Result<SnapshotResponse, Status>> = bytes
            .chunks(SNAPSHOT_CHUNK_BYTES)
            .scan(0usize, |sent, chunk| {
                *sent += chunk.len();
                Some(Ok(SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: (total - *sent) as u64,
                    blob: chunk.to_vec(),
                }))
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        let me = self.handle.identity().member_id;
        if self.handle.raft_status().leader != me {
            return Err(from_membership(&MembershipError::NotLeader));
        }
        let voter = self
            .handle
            .cluster()
            .member(target)
            .is_some_and(|m| !m.is_learner);
        if !voter {
            return Err(from_membership(&MembershipError::BadLeaderTransferee));
        }
        self.handle
            .transfer_leader(target)
            .await
            .map_err(|e| from_membership(&e.into()))?;
        if !self.handle.wait_for_leader(target).await {
            return Err(from_membership(&MembershipError::LeaderTransferTimeout));
        }
        let revision = self.handle.state_machine().current_revision();
        Ok(Response::new(MoveLeaderResponse {
            header: Some(self.handle.header(revision)),
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
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
