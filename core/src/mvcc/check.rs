//! Request validation before proposal: etcd's `api/v3rpc/key.go` (`checkRangeRequest`,
//! `checkPutRequest`, `checkDeleteRequest`, `checkTxnRequest`, `checkRequestOp`,
//! `checkIntervals`). These need no state; a request that fails here is never proposed.
//!
//! Beyond etcd 3.4: [`range`] rejects a sort order or target outside the enum with
//! `InvalidSortOption` (etcd 3.5's `checkRangeRequest`; 3.4 would panic or ignore it), and
//! so does a range inside a txn.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::Error;
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::request_op::Request;
use crate::api::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

/// A Range: a key is required; sort order and target must be known values.
pub fn range(req: &RangeRequest) -> Result<(), Error> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if SortOrder::try_from(req.sort_order).is_err()
        || SortTarget::try_from(req.sort_target).is_err()
    {
        return Err(Error::InvalidSortOption);
    }
    Ok(())
}

/// A Put: a key is required; `ignore_value` excludes a value, `ignore_lease` a lease.
pub fn put(req: &PutRequest) -> Result<(), Error> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

/// A DeleteRange: a key is required.
pub fn delete_range(req: &DeleteRangeRequest) -> Result<(), Error> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

/// A Txn: at most `max_txn_ops` compares, success ops and failure ops (a nested txn gets
/// what its parent's largest list left over); every compare and op well-formed (an op with
/// no request fails with `KeyNotFound`, as in etcd); no key written twice in one branch
/// (`DuplicateKey`, etcd's `checkIntervals` over both branches, nested txns included).
pub fn txn(req: &TxnRequest, max_txn_ops: usize) -> Result<(), Error> {
    check_txn_ops(req, max_txn_ops)?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

/// etcd's `checkTxnRequest`.
fn check_txn_ops(req: &TxnRequest, max_txn_ops: usize) -> Result<(), Error> {
    let ops = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    if ops > max_txn_ops {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|compare| compare.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        check_op(op, max_txn_ops - ops)?;
    }
    Ok(())
}

/// etcd's `checkRequestOp`.
fn check_op(op: &RequestOp, max_txn_ops: usize) -> Result<(), Error> {
    match &op.request {
        Some(Request::RequestRange(req)) => range(req),
        Some(Request::RequestPut(req)) => put(req),
        Some(Request::RequestDeleteRange(req)) => delete_range(req),
        Some(Request::RequestTxn(req)) => check_txn_ops(req, max_txn_ops),
        None => Err(Error::KeyNotFound),
    }
}

/// A key-range bound where the empty string is +infinity (etcd's `StringAffineComparable`).
fn affine_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

/// A deleted interval `[begin, end)` (affine ends).
#[derive(Debug, Clone)]
struct Interval {
    begin: Vec<u8>,
    end: Vec<u8>,
}

impl Interval {
    fn point(key: &[u8]) -> Self {
        let mut end = key.to_vec();
        end.push(0);
        Interval {
            begin: key.to_vec(),
            end,
        }
    }

    /// etcd's `Interval.Compare(...) == 0`: neither entirely left nor entirely right of
    /// `other`. A "from key" delete (`range_end = "\0"`) becomes `[key, "\0")`, which
    /// overlaps nothing, exactly as in etcd 3.4.
    fn overlaps(&self, other: &Interval) -> bool {
        let left = affine_cmp(&self.begin, &other.begin).is_lt()
            && affine_cmp(&self.end, &other.begin).is_le();
        let right = affine_cmp(&self.begin, &other.end).is_ge();
        !left && !right
    }
}

fn intersects(dels: &[Interval], key: &[u8]) -> bool {
    let point = Interval::point(key);
    dels.iter().any(|del| point.overlaps(del))
}

/// etcd's `checkIntervals`: the keys put and the intervals deleted by `ops` (nested txns
/// included), or `DuplicateKey` if a key is put twice or put inside a deleted interval.
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<Interval>), Error> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(del)) if del.range_end.is_empty() => {
                Some(Interval::point(&del.key))
            }
            Some(Request::RequestDeleteRange(del)) => Some(Interval {
                begin: del.key.clone(),
                end: del.range_end.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in ops {
        let Some(Request::RequestTxn(inner)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&inner.success)?;
        let (puts_else, dels_else) = check_intervals(&inner.failure)?;
        for key in &puts_then {
            if puts.contains(key) || intersects(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in &puts_else {
            let clashes_outside_then = puts.contains(key) && !puts_then.contains(key);
            if clashes_outside_then || intersects(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(put)) = &op.request else {
            continue;
        };
        if puts.contains(&put.key) || intersects(&dels, &put.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, dels))
}
