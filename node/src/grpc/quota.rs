//! The backend quota at the door (etcd's `quotaKVServer`/`quotaLeaseServer` and
//! `quotaAlarmer` in `api/v3rpc/quota.go`): a put, a txn with puts or a lease grant that
//! would take the database past `--quota-backend-bytes` is refused with `database space
//! exceeded`, and this member raises the NOSPACE alarm through Raft. Once raised, the alarm
//! itself caps writes on every member (see `cairn_core::apply::alarm`) until it is disarmed.
//!
//! Unlike etcd, a write that passed this check is not checked again when it is applied
//! (etcd's `quotaApplierV3`): concurrent writes may overshoot the quota by what they carry.

use cairn_core::api::cairnpb::internal_request::Request;
use cairn_core::api::etcdserverpb::{AlarmRequest, AlarmType, alarm_request::AlarmAction};
use cairn_core::apply::quota;
use tonic::Status;

use super::status::from_core;
use crate::server::Handle;

/// One member's backend quota.
#[derive(Clone)]
pub struct Quota {
    handle: Handle,
    /// `--quota-backend-bytes`: 0 is etcd's 2 GiB default, a negative value no quota.
    quota_bytes: i64,
}

impl Quota {
    /// The quota `quota_bytes` of the member behind `handle`.
    pub fn new(handle: Handle, quota_bytes: i64) -> Self {
        Quota {
            handle,
            quota_bytes,
        }
    }

    /// Lets a request of `cost` bytes through, or raises NOSPACE and refuses it.
    pub async fn check(&self, cost: u64) -> Result<(), Status> {
        let size_bytes = self.handle.state_machine().size_bytes();
        if quota::available(size_bytes, cost, self.quota_bytes) {
            return Ok(());
        }
        let member_id = self.handle.identity().member_id;
        tracing::warn!(
            size_bytes,
            cost,
            quota_bytes = self.quota_bytes,
            "request exceeds the backend quota; raising the NOSPACE alarm"
        );
        let raise = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id,
            alarm: AlarmType::Nospace as i32,
        };
        if let Err(e) = self.handle.propose(Request::Alarm(raise)).await {
            tracing::warn!(error = %e, "cannot raise the NOSPACE alarm");
        }
        Err(from_core(&cairn_core::Error::NoSpace))
    }
}
