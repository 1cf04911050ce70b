//! The backend quota's cost of a request (etcd's `backendQuota.Cost` in
//! `etcdserver/quota.go`): what a write is estimated to add to the database. A request
//! that costs nothing (a delete, a read-only txn) always passes the quota.

use crate::api::etcdserverpb::{PutRequest, RequestOp, TxnRequest, request_op};

/// etcd's `DefaultQuotaBytes`: the quota when `--quota-backend-bytes` is 0.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// etcd's `leaseOverhead`: the estimated cost of storing a lease.
pub const LEASE_OVERHEAD_BYTES: u64 = 64;
/// etcd's `kvOverhead`: the estimated cost of storing a key's metadata.
pub const KV_OVERHEAD_BYTES: u64 = 256;

/// The cost of a put: the overhead plus its key and value.
pub fn put_cost(req: &PutRequest) -> u64 {
    KV_OVERHEAD_BYTES + req.key.len() as u64 + req.value.len() as u64
}

fn op_cost(op: &RequestOp) -> u64 {
    match &op.request {
        Some(request_op::Request::RequestPut(put)) => put_cost(put),
        // etcd counts the puts of the top level only, not those of nested txns.
        _ => 0,
    }
}

/// The cost of a txn: the costlier of its two branches' puts.
pub fn txn_cost(req: &TxnRequest) -> u64 {
    let success: u64 = req.success.iter().map(op_cost).sum();
    let failure: u64 = req.failure.iter().map(op_cost).sum();
    success.max(failure)
}

/// Whether a request of `cost` fits: etcd's `backendQuota.Available`, `size + cost <
/// quota`, where `quota_bytes` 0 means [`DEFAULT_QUOTA_BYTES`] and a negative quota none.
pub fn available(size_bytes: u64, cost: u64, quota_bytes: i64) -> bool {
    if cost == 0 || quota_bytes < 0 {
        return true;
    }
    let quota = match quota_bytes {
        0 => DEFAULT_QUOTA_BYTES,
        q => q as u64,
    };
    size_bytes.saturating_add(cost) < quota
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.into(),
                value: value.into(),
                ..PutRequest::default()
            })),
        }
    }

    #[test]
    fn a_txn_costs_its_costlier_branch_of_puts() {
        let txn = TxnRequest {
            success: vec![put("a", "12345")],
            failure: vec![put("b", "1"), put("c", "1")],
            ..TxnRequest::default()
        };
        assert_eq!(txn_cost(&txn), 2 * (KV_OVERHEAD_BYTES + 2));
        assert_eq!(txn_cost(&TxnRequest::default()), 0);
    }

    #[test]
    fn the_quota_is_strict_and_zero_means_the_default() {
        assert!(available(99, 0, 100));
        assert!(available(98, 1, 100));
        assert!(!available(99, 1, 100));
        assert!(available(DEFAULT_QUOTA_BYTES - 2, 1, 0));
        assert!(!available(DEFAULT_QUOTA_BYTES - 1, 1, 0));
        assert!(available(u64::MAX, 1, -1));
    }
}
