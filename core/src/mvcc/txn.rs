//! Txn: etcd's `applierV3backend.Txn` (`etcdserver/apply.go`).
//!
//! 1. Every compare of the request, and of each nested txn on the chosen path, is evaluated
//!    against the state before the transaction (`compareToPath`).
//! 2. Pre-checks along the chosen path, in op order, nested first-come: puts
//!    (`checkRequestPut`: `ignore_value`/`ignore_lease` need the key to exist before the
//!    transaction -> `KeyNotFound`; a lease must exist -> `LeaseNotFound`), then ranges
//!    (`checkRequestRange`: revision above current -> `FutureRevision`, below the compacted
//!    revision -> `Compacted`). A failing check fails the whole txn before any change.
//! 3. The chosen branch runs in one write transaction; reads see earlier writes.
//!
//! Compare semantics (`applyCompare`/`compareKV`): every key of the compare's range must
//! satisfy it; with no key, a VALUE compare fails and any other target is compared against
//! the zero `KeyValue`. An unset or mismatched target value compares as 0 / empty; an unknown
//! result operator holds.
//!
//! Headers (`newTxnResp`, `applyTxn`): the top header carries `begin + 1` if the txn changed
//! something, else `begin`; each sub-response's header carries only its revision as the
//! sub-operation reported it; a nested txn's header is present but all zero.

use std::ops::ControlFlow;

use super::LeaseLookup;
use super::history::KeyRange;
use super::view::Reader;
use super::write::WriteTxn;
use crate::Error;
use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::request_op::Request;
use crate::api::etcdserverpb::response_op::Response;
use crate::api::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, ResponseHeader, ResponseOp, TxnRequest,
    TxnResponse,
};
use crate::api::mvccpb::KeyValue;

/// Which branch each txn on the chosen path takes.
pub(crate) struct Path {
    succeeded: bool,
    /// The paths of the nested txns of the chosen branch, in op order.
    nested: Vec<Path>,
}

/// Evaluates the compares of `req` and of every nested txn on the chosen path.
pub(crate) fn path(reader: &Reader<'_>, req: &TxnRequest) -> Result<Path, Error> {
    let mut succeeded = true;
    for compare in &req.compare {
        if !compare_holds(reader, compare)? {
            succeeded = false;
            break;
        }
    }
    let mut nested = Vec::new();
    for op in branch(req, succeeded) {
        if let Some(Request::RequestTxn(inner)) = &op.request {
            nested.push(path(reader, inner)?);
        }
    }
    Ok(Path { succeeded, nested })
}

/// The pre-checks of the chosen path (puts first, then ranges, as etcd's `Txn`).
pub(crate) fn check(
    reader: &Reader<'_>,
    req: &TxnRequest,
    path: &Path,
    leases: &dyn LeaseLookup,
) -> Result<(), Error> {
    walk_ops(req, path, &mut |op| match op {
        Request::RequestPut(put) => check_put(reader, put, leases),
        _ => Ok(()),
    })?;
    walk_ops(req, path, &mut |op| match op {
        Request::RequestRange(range) => check_range(reader, range),
        _ => Ok(()),
    })
}

/// Runs the chosen branch of `req` (and nested txns) in `txn`. The returned header is
/// present but zero: the caller sets the top-level revision.
pub(crate) fn apply(
    txn: &mut WriteTxn<'_>,
    req: &TxnRequest,
    path: &Path,
) -> Result<TxnResponse, Error> {
    let ops = branch(req, path.succeeded);
    let mut nested = path.nested.iter();
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let response = match &op.request {
            Some(Request::RequestRange(range)) => Some(Response::ResponseRange(txn.range(range)?)),
            Some(Request::RequestPut(put)) => Some(Response::ResponsePut(txn.put(put)?)),
            Some(Request::RequestDeleteRange(delete)) => {
                Some(Response::ResponseDeleteRange(txn.delete_range(delete)?))
            }
            Some(Request::RequestTxn(inner)) => {
                let Some(inner_path) = nested.next() else {
                    debug_assert!(false, "txn path shorter than the request");
                    return Err(Error::Storage(
                        "txn path does not match the request".to_owned(),
                    ));
                };
                Some(Response::ResponseTxn(apply(txn, inner, inner_path)?))
            }
            None => None,
        };
        responses.push(ResponseOp { response });
    }
    Ok(TxnResponse {
        header: Some(ResponseHeader::default()),
        succeeded: path.succeeded,
        responses,
    })
}

fn branch(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

/// Calls `f` on every non-txn op of the chosen path, depth first in op order.
fn walk_ops(
    req: &TxnRequest,
    path: &Path,
    f: &mut dyn FnMut(&Request) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut nested = path.nested.iter();
    for op in branch(req, path.succeeded) {
        match &op.request {
            Some(Request::RequestTxn(inner)) => {
                if let Some(inner_path) = nested.next() {
                    walk_ops(inner, inner_path, f)?;
                }
            }
            Some(request) => f(request)?,
            None => {}
        }
    }
    Ok(())
}

/// etcd's `checkRequestPut`.
fn check_put(reader: &Reader<'_>, put: &PutRequest, leases: &dyn LeaseLookup) -> Result<(), Error> {
    if (put.ignore_value || put.ignore_lease) && reader.at(reader.current).get(&put.key)?.is_none()
    {
        return Err(Error::KeyNotFound);
    }
    if put.lease != 0 && !leases.lease_exists(put.lease) {
        return Err(Error::LeaseNotFound);
    }
    Ok(())
}

/// etcd's `checkRequestRange` (note: any non-zero revision below the compacted revision
/// fails, including negative ones, exactly as etcd compares against `FirstRev`).
fn check_range(reader: &Reader<'_>, range: &RangeRequest) -> Result<(), Error> {
    match range.revision {
        0 => Ok(()),
        rev if rev > reader.current => Err(Error::FutureRevision),
        rev if rev < reader.compacted => Err(Error::Compacted),
        _ => Ok(()),
    }
}

/// etcd's `applyCompare`.
fn compare_holds(reader: &Reader<'_>, compare: &Compare) -> Result<bool, Error> {
    let range = KeyRange::new(&compare.key, &compare.range_end);
    let mut any = false;
    let mut holds = true;
    reader.at(reader.current).for_each_live(&range, &mut |kv| {
        any = true;
        if compare_kv(compare, &kv) {
            return ControlFlow::Continue(());
        }
        holds = false;
        ControlFlow::Break(())
    })?;
    if any {
        return Ok(holds);
    }
    if compare.target == CompareTarget::Value as i32 {
        return Ok(false);
    }
    Ok(compare_kv(compare, &KeyValue::default()))
}

/// etcd's `compareKV`.
fn compare_kv(compare: &Compare, kv: &KeyValue) -> bool {
    let wanted = compare.target_union.as_ref();
    let int = |pick: fn(&TargetUnion) -> Option<i64>| wanted.and_then(pick).unwrap_or(0);
    let ordering = match CompareTarget::try_from(compare.target) {
        Ok(CompareTarget::Value) => {
            let value = match wanted {
                Some(TargetUnion::Value(value)) => value.as_slice(),
                _ => &[],
            };
            kv.value.as_slice().cmp(value)
        }
        Ok(CompareTarget::Create) => kv.create_revision.cmp(&int(|t| match t {
            TargetUnion::CreateRevision(rev) => Some(*rev),
            _ => None,
        })),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(&int(|t| match t {
            TargetUnion::ModRevision(rev) => Some(*rev),
            _ => None,
        })),
        Ok(CompareTarget::Version) => kv.version.cmp(&int(|t| match t {
            TargetUnion::Version(version) => Some(*version),
            _ => None,
        })),
        Ok(CompareTarget::Lease) => kv.lease.cmp(&int(|t| match t {
            TargetUnion::Lease(lease) => Some(*lease),
            _ => None,
        })),
        Err(_) => std::cmp::Ordering::Equal,
    };
    match CompareResult::try_from(compare.result) {
        Ok(CompareResult::Equal) => ordering.is_eq(),
        Ok(CompareResult::NotEqual) => ordering.is_ne(),
        Ok(CompareResult::Greater) => ordering.is_gt(),
        Ok(CompareResult::Less) => ordering.is_lt(),
        Err(_) => true,
    }
}
