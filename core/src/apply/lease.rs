//! Applies LeaseGrant and LeaseRevoke, and keeps key attachments in step with every write
//! (etcd's `applierV3backend.LeaseGrant`/`LeaseRevoke`, `lessor.Revoke`, and the
//! `Attach`/`Detach` calls of `storeTxnWrite.put`/`delete`).
//!
//! A revoke deletes every key attached to the lease in ONE write transaction (one revision,
//! one DELETE event per key, in key order), then forgets the lease, all in the entry's batch.
//! Like every function the applier calls, these leave the batch untouched on error.

use std::collections::BTreeMap;

use super::Response;
use crate::Error;
use crate::api::etcdserverpb::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, RequestOp, ResponseHeader, TxnRequest, request_op,
};
use crate::api::mvccpb::{Event, event::EventType};
use crate::lease::{self, Lessor};
use crate::mvcc::Mvcc;
use crate::storage::WriteBatch;

type Outcome = Result<(Response, Vec<Event>), Error>;

/// Grants a lease. ID 0 means "choose one": the proposer's request id with the sign bit
/// cleared, as etcd's `LeaseGrant` takes the next id of its request id generator. Every
/// member sees the same request id in the entry, so every member picks the same ID.
pub(super) fn grant(
    mvcc: &Mvcc,
    lessor: &mut Lessor,
    request_id: u64,
    req: &LeaseGrantRequest,
    batch: &mut WriteBatch,
) -> Outcome {
    let id = if req.id == 0 {
        (request_id & (i64::MAX as u64)) as i64
    } else {
        req.id
    };
    let ttl = lessor.grant(id, req.ttl, batch)?;
    let response = LeaseGrantResponse {
        header: Some(header(mvcc.current_revision())),
        id,
        ttl,
        error: String::new(),
    };
    Ok((Response::LeaseGrant(response), vec![]))
}

/// Revokes a lease: deletes its keys in one revision, then forgets it.
pub(super) fn revoke(
    mvcc: &mut Mvcc,
    lessor: &mut Lessor,
    req: &LeaseRevokeRequest,
    batch: &mut WriteBatch,
) -> Outcome {
    if !lessor.contains(req.id) {
        return Err(Error::LeaseNotFound);
    }
    let keys = lessor.keys(req.id)?;
    let mut staged = WriteBatch::new();
    let events = delete_keys(mvcc, lessor, &keys, &mut staged)?;
    for key in &keys {
        lease::stage_detach(&mut staged, req.id, key);
    }
    lessor.remove(req.id, &mut staged)?;
    batch.append(&mut staged);
    let response = LeaseRevokeResponse {
        header: Some(header(mvcc.current_revision())),
    };
    Ok((Response::LeaseRevoke(response), events))
}

/// Deletes `keys` in one write transaction (none: no revision).
fn delete_keys(
    mvcc: &mut Mvcc,
    lessor: &Lessor,
    keys: &[Vec<u8>],
    batch: &mut WriteBatch,
) -> Result<Vec<Event>, Error> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let delete = |key: &Vec<u8>| RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.clone(),
                ..DeleteRangeRequest::default()
            },
        )),
    };
    let txn = TxnRequest {
        success: keys.iter().map(delete).collect(),
        ..TxnRequest::default()
    };
    let (_, events) = mvcc.txn(&txn, lessor, batch)?;
    Ok(events)
}

/// Stages the attachment changes `events` imply: a key whose lease before the entry (its
/// first event's `prev_kv`) differs from its lease after (its last event: the put's lease,
/// none after a delete) moves from the one to the other.
pub(super) fn move_keys(events: &[Event], batch: &mut WriteBatch) {
    // The lease of an event's key before and after it.
    let leases = |event: &Event| {
        let after = match &event.kv {
            Some(kv) if event.r#type == EventType::Put as i32 => kv.lease,
            _ => 0,
        };
        (event.prev_kv.as_ref().map_or(0, |prev| prev.lease), after)
    };
    // Most entries touch no lease: nothing to collect.
    if events.iter().all(|event| leases(event) == (0, 0)) {
        return;
    }
    let mut moves: BTreeMap<&[u8], (i64, i64)> = BTreeMap::new();
    for event in events {
        let Some(kv) = &event.kv else { continue };
        let (before, after) = leases(event);
        moves.entry(kv.key.as_slice()).or_insert((before, after)).1 = after;
    }
    for (key, (before, after)) in moves {
        if before == after {
            continue;
        }
        if before != 0 {
            lease::stage_detach(batch, before, key);
        }
        if after != 0 {
            lease::stage_attach(batch, after, key);
        }
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..ResponseHeader::default()
    }
}
