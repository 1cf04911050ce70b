//! The KV service: Range, Put, DeleteRange, Txn, Compact (etcd `api/v3rpc/key.go`).
//!
//! Requests are checked here (etcd's `checkPutRequest` etc.), then writes are proposed
//! through Raft and reads served locally after a read-index barrier (or at once when
//! `serializable`). A read-only Txn is served like a read, as etcd does.

use cairn_core::api::cairnpb::internal_request::Request;
use cairn_core::api::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse, request_op,
};
use cairn_core::apply::Response as Applied;
use cairn_core::apply::quota;
use cairn_core::mvcc::check;
use prost::Message as _;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::auth::request_auth;
use super::pb::kv_server::Kv;
use super::quota::Quota;
use super::status::{from_core, from_server};
use crate::server::Handle;

/// The KV service of one member.
#[derive(Clone)]
pub struct KvService {
    handle: Handle,
    max_request_bytes: usize,
    max_txn_ops: usize,
    quota: Quota,
}

impl KvService {
    /// A KV service answering through `handle`.
    pub fn new(handle: Handle, max_request_bytes: usize, max_txn_ops: usize) -> Self {
        KvService {
            quota: Quota::new(handle.clone(), 0),
            handle,
            max_request_bytes,
            max_txn_ops,
        }
    }

    /// The same service with `--quota-backend-bytes` `quota_bytes` (0: etcd's default).
    pub fn with_quota(self, quota_bytes: i64) -> Self {
        KvService {
            quota: Quota::new(self.handle.clone(), quota_bytes),
            ..self
        }
    }

    fn check_size(&self, encoded_len: usize) -> Result<(), Status> {
        if encoded_len > self.max_request_bytes {
            return Err(from_core(&cairn_core::Error::RequestTooLarge));
        }
        Ok(())
    }

    async fn propose(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        request: Request,
    ) -> Result<Applied, Status> {
        let auth = request_auth(&self.handle, metadata).await?;
        self.handle
            .propose_as(request, auth)
            .await
            .map_err(|e| from_server(&e))
    }

    async fn barrier(&self, serializable: bool) -> Result<(), Status> {
        if serializable {
            return Ok(());
        }
        self.handle
            .read_barrier()
            .await
            .map_err(|e| from_server(&e))
    }

    fn stamp(&self, header: &mut Option<cairn_core::api::etcdserverpb::ResponseHeader>) {
        let revision = header.as_ref().map_or(0, |h| h.revision);
        *header = Some(self.handle.header(revision));
    }
}

fn unexpected(what: &str) -> Status {
    Status::internal(format!("etcdserver: unexpected response to {what}"))
}

fn is_read_only(txn: &TxnRequest) -> bool {
    let op_is_read_only = |op: &cairn_core::api::etcdserverpb::RequestOp| match &op.request {
        Some(request_op::Request::RequestRange(_)) | None => true,
        Some(request_op::Request::RequestTxn(inner)) => is_read_only(inner),
        Some(_) => false,
    };
    txn.success.iter().all(op_is_read_only) && txn.failure.iter().all(op_is_read_only)
}

fn is_serializable_txn(txn: &TxnRequest) -> bool {
    let mut any = false;
    let mut all = true;
    for op in txn.success.iter().chain(&txn.failure) {
        if let Some(request_op::Request::RequestRange(r)) = &op.request {
            any = true;
            all &= r.serializable;
        }
    }
    any && all
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: GrpcRequest<RangeRequest>,
    ) -> Result<GrpcResponse<RangeResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let metadata = request.metadata().clone();
        let req = request.into_inner();
        check::range(&req).map_err(|e| from_core(&e))?;
        self.barrier(req.serializable).await?;
        let auth = request_auth(&self.handle, &metadata).await?;
        let mut resp = self
            .handle
            .state_machine()
            .range_as(auth.as_ref(), &req)
            .map_err(|e| from_core(&e))?;
        self.stamp(&mut resp.header);
        Ok(GrpcResponse::new(resp))
    }

    async fn put(
        &self,
        request: GrpcRequest<PutRequest>,
    ) -> Result<GrpcResponse<PutResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let metadata = request.metadata().clone();
        let req = request.into_inner();
        check::put(&req).map_err(|e| from_core(&e))?;
        self.check_size(req.encoded_len())?;
        self.quota.check(quota::put_cost(&req)).await?;
        match self.propose(&metadata, Request::Put(req)).await? {
            Applied::Put(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(GrpcResponse::new(resp))
            }
            _ => Err(unexpected("put")),
        }
    }

    async fn delete_range(
        &self,
        request: GrpcRequest<DeleteRangeRequest>,
    ) -> Result<GrpcResponse<DeleteRangeResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let metadata = request.metadata().clone();
        let req = request.into_inner();
        check::delete_range(&req).map_err(|e| from_core(&e))?;
        self.check_size(req.encoded_len())?;
        match self.propose(&metadata, Request::DeleteRange(req)).await? {
            Applied::DeleteRange(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(GrpcResponse::new(resp))
            }
            _ => Err(unexpected("delete range")),
        }
    }

    async fn txn(
        &self,
        request: GrpcRequest<TxnRequest>,
    ) -> Result<GrpcResponse<TxnResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let metadata = request.metadata().clone();
        let req = request.into_inner();
        check::txn(&req, self.max_txn_ops).map_err(|e| from_core(&e))?;
        self.check_size(req.encoded_len())?;
        if is_read_only(&req) {
            self.barrier(is_serializable_txn(&req)).await?;
            let auth = request_auth(&self.handle, &metadata).await?;
            let mut resp = self
                .handle
                .state_machine()
                .read_only_txn_as(auth.as_ref(), &req)
                .map_err(|e| from_core(&e))?;
            self.stamp(&mut resp.header);
            return Ok(GrpcResponse::new(resp));
        }
        self.quota.check(quota::txn_cost(&req)).await?;
        match self.propose(&metadata, Request::Txn(req)).await? {
            Applied::Txn(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(GrpcResponse::new(resp))
            }
            _ => Err(unexpected("txn")),
        }
    }

    async fn compact(
        &self,
        request: GrpcRequest<CompactionRequest>,
    ) -> Result<GrpcResponse<CompactionResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let metadata = request.metadata().clone();
        let req = request.into_inner();
        #[cfg(madsim)]
        if cairn_core::buggify::compaction_without_log() {
            let mut resp = self
                .handle
                .state_machine()
                .compact_without_log(&req)
                .map_err(|e| from_core(&e))?;
            self.stamp(&mut resp.header);
            return Ok(GrpcResponse::new(resp));
        }
        match self.propose(&metadata, Request::Compaction(req)).await? {
            Applied::Compaction(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(GrpcResponse::new(resp))
            }
            _ => Err(unexpected("compact")),
        }
    }
}
