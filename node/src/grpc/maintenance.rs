//! The Maintenance service (etcd `api/v3rpc/maintenance.go`): Status, Hash, HashKV,
//! MoveLeader, Snapshot (the state machine in cairn's snapshot format, see
//! `cairn_core::snapshot`), Alarm and Defragment.
//!
//! Every Alarm request, GET included, goes through Raft as etcd's `EtcdServer.Alarm` does,
//! and is answered without a header, as etcd answers it. Defragment runs the storage
//! engine's compaction on a blocking thread. Hash is CRC-32C over cairn's own stored
//! state-machine data (`StateMachine::hash`), equal on members at the same applied index
//! but not comparable with etcd's bolt-file hash.

use std::pin::Pin;

use cairn_core::api::cairnpb::internal_request::Request as Proposal;
use cairn_core::api::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentRequest, DefragmentResponse,
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::pb::maintenance_server::Maintenance;
use super::status::{from_core, from_membership, from_server};
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

/// An alarm as etcd's Status lists it in `errors` (gogoproto's compact text form).
fn alarm_text(alarm: &AlarmMember) -> String {
    format!(
        "memberID:{} alarm:{} ",
        alarm.member_id,
        cairn_core::apply::alarm::alarm_name(alarm.alarm)
    )
}

/// Runs the storage engine's defragmentation on a blocking thread: it takes as long as
/// rewriting the whole database.
#[cfg(not(madsim))]
async fn defragment_off_the_runtime(
    handle: Handle,
) -> Result<Result<(), cairn_core::storage::StorageError>, Status> {
    tokio::task::spawn_blocking(move || handle.state_machine().defragment())
        .await
        .map_err(|e| Status::internal(format!("defragment did not finish: {e}")))
}

/// In simulation the engine is the in-memory one, whose defragmentation does nothing, and
/// madsim allows no blocking threads.
#[cfg(madsim)]
async fn defragment_off_the_runtime(
    handle: Handle,
) -> Result<Result<(), cairn_core::storage::StorageError>, Status> {
    Ok(handle.state_machine().defragment())
}

/// Bytes per `SnapshotResponse` (etcd sends 32 KiB blobs).
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// The stream of snapshot chunks.
pub type SnapshotStream =
    Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    type SnapshotStream = SnapshotStream;

    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        let proposal = Proposal::Alarm(request.into_inner());
        match self.handle.propose(proposal).await {
            Ok(cairn_core::apply::Response::Alarm(response)) => Ok(Response::new(response)),
            Ok(_) => Err(Status::internal("etcdserver: unexpected response to alarm")),
            Err(e) => Err(from_server(&e)),
        }
    }

    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        let handle = self.handle.clone();
        let before = handle.state_machine().size_bytes();
        let in_use_before = handle.state_machine().size_in_use_bytes().ok();
        tracing::info!(
            size_bytes = before,
            size_in_use_bytes = in_use_before,
            "starting defragment"
        );
        let done = defragment_off_the_runtime(handle).await?;
        done.map_err(|e| {
            tracing::warn!(error = %e, "failed to defragment");
            Status::internal(e.to_string())
        })?;
        let after = self.handle.state_machine().size_bytes();
        tracing::info!(
            size_bytes_before = before,
            size_bytes_after = after,
            size_in_use_bytes_before = in_use_before,
            size_in_use_bytes_after = self.handle.state_machine().size_in_use_bytes().ok(),
            "finished defragment"
        );
        // etcd answers an empty response, without a header.
        Ok(Response::new(DefragmentResponse { header: None }))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, revision) = self
            .handle
            .state_machine()
            .hash()
            .map_err(|e| from_core(&e.into()))?;
        Ok(Response::new(HashResponse {
            header: Some(self.handle.header(revision)),
            hash,
        }))
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
        let db_size_in_use = state_machine
            .size_in_use_bytes()
            .map_err(|e| Status::internal(e.to_string()))?;
        let db_size_in_use = i64::try_from(db_size_in_use).unwrap_or(i64::MAX);
        let mut errors = Vec::new();
        if raft.leader == 0 {
            errors.push(crate::server::ServerError::NoLeader.to_string());
        }
        errors.extend(state_machine.alarms(AlarmType::None).iter().map(alarm_text));
        Ok(Response::new(StatusResponse {
            header: Some(self.handle.header(state_machine.current_revision())),
            version: ETCD_COMPAT_VERSION.to_string(),
            db_size,
            leader: raft.leader,
            raft_index: raft.commit_index,
            raft_term: raft.term,
            raft_applied_index: raft.applied_index,
            errors,
            db_size_in_use,
            is_learner: false,
            storage_version: String::new(),
        }))
    }
}
