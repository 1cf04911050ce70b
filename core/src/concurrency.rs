//! The requests of etcd's client-side recipes for elections and locks
//! (`clientv3/concurrency`: `election.go`, `mutex.go`, `key.go`), and the reading of their
//! answers, without I/O: the node's Election and Lock services and `cairnctl elect`/`lock`
//! send exactly these, so keys, values and revisions are etcd's byte for byte.
//!
//! A contender owns the key `<prefix><lease id in hex>` (Go's `%x` of the signed id), made
//! by a transaction that puts it only if it does not exist yet (`create_revision == 0`). The
//! contender whose key has the lowest create revision under the prefix leads (holds the
//! lock); the others wait until every key created before theirs is deleted.

use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest,
    TxnResponse, request_op, response_op,
};
use crate::api::mvccpb::KeyValue;

/// The TTL of a session's lease when none is given (clientv3's `defaultSessionTTL`).
pub const DEFAULT_SESSION_TTL_SECS: i64 = 60;

/// Go's `%x` of a signed integer: lower-case hex digits of the magnitude, with a `-` sign.
pub fn go_hex(value: i64) -> String {
    match value < 0 {
        true => format!("-{:x}", value.unsigned_abs()),
        false => format!("{value:x}"),
    }
}

/// The key a session with lease `lease` owns under `prefix`.
pub fn session_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(go_hex(lease).as_bytes());
    key
}

/// The prefix of an election's or a lock's keys: its name and a `/`.
pub fn key_prefix(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// clientv3's `WithPrefix`: `(key, range_end)` of every key starting with `prefix`.
pub fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return (prefix.to_vec(), end);
        }
    }
    (prefix.to_vec(), vec![0])
}

/// clientv3's `withTop`: the one key under `prefix` first by `order` of create revision.
fn top_created(prefix: &[u8], order: SortOrder) -> RangeRequest {
    let (key, range_end) = prefix_range(prefix);
    RangeRequest {
        key,
        range_end,
        limit: 1,
        sort_order: order as i32,
        sort_target: SortTarget::Create as i32,
        ..RangeRequest::default()
    }
}

/// `Get(prefix, WithFirstCreate())`: the oldest key under `prefix` (the leader, the owner).
pub fn first_created(prefix: &[u8]) -> RangeRequest {
    top_created(prefix, SortOrder::Ascend)
}

/// `Get(prefix, WithLastCreate(), WithMaxCreateRev(max))`: the newest key under `prefix`
/// created at or before revision `max_create_revision` (what `waitDeletes` waits on).
pub fn last_created_at_most(prefix: &[u8], max_create_revision: i64) -> RangeRequest {
    RangeRequest {
        max_create_revision,
        ..top_created(prefix, SortOrder::Descend)
    }
}

fn create_revision_is(key: &[u8], revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::CreateRevision(revision)),
        ..Compare::default()
    }
}

fn put(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..PutRequest::default()
        })),
    }
}

fn get(request: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(request)),
    }
}

fn get_key(key: &[u8]) -> RequestOp {
    get(RangeRequest {
        key: key.to_vec(),
        ..RangeRequest::default()
    })
}

/// `Election.Campaign`'s transaction: create `key` with `value` on `lease`, or read it.
pub fn campaign(key: &[u8], value: &[u8], lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![create_revision_is(key, 0)],
        success: vec![put(key, value, lease)],
        failure: vec![get_key(key)],
    }
}

/// `Election.Proclaim`'s transaction: a new value for the leader key, if it is still the
/// key created at `revision`.
pub fn proclaim(key: &[u8], revision: i64, value: &[u8], lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![create_revision_is(key, revision)],
        success: vec![put(key, value, lease)],
        failure: vec![],
    }
}

/// `Election.Resign`'s transaction: delete the leader key, if it is still the key created
/// at `revision`.
pub fn resign(key: &[u8], revision: i64) -> TxnRequest {
    let delete = RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.to_vec(),
                ..DeleteRangeRequest::default()
            },
        )),
    };
    TxnRequest {
        compare: vec![create_revision_is(key, revision)],
        success: vec![delete],
        failure: vec![],
    }
}

/// `Mutex.Lock`'s transaction: create `key` (empty, on `lease`) or read it, and read the
/// current owner of `prefix` in the same round trip.
pub fn lock(key: &[u8], prefix: &[u8], lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![create_revision_is(key, 0)],
        success: vec![put(key, b"", lease), get(first_created(prefix))],
        failure: vec![get_key(key), get(first_created(prefix))],
    }
}

/// A transaction answer that is not the shape its request implies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected transaction response")]
pub struct Malformed;

fn range_at(response: &TxnResponse, index: usize) -> Result<&RangeResponse, Malformed> {
    match response
        .responses
        .get(index)
        .and_then(|r| r.response.as_ref())
    {
        Some(response_op::Response::ResponseRange(range)) => Ok(range),
        _ => Err(Malformed),
    }
}

fn header_revision(response: &TxnResponse) -> i64 {
    response.header.as_ref().map_or(0, |h| h.revision)
}

/// What a campaign transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaigned {
    /// The create revision of the contender's key.
    pub revision: i64,
    /// The key existed already with this value (a campaign resumed with the same lease).
    pub existing_value: Option<Vec<u8>>,
}

/// Reads the answer to [`campaign`].
pub fn campaigned(response: &TxnResponse) -> Result<Campaigned, Malformed> {
    if response.succeeded {
        return Ok(Campaigned {
            revision: header_revision(response),
            existing_value: None,
        });
    }
    let kv = range_at(response, 0)?.kvs.first().ok_or(Malformed)?;
    Ok(Campaigned {
        revision: kv.create_revision,
        existing_value: Some(kv.value.clone()),
    })
}

/// What a lock transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The create revision of the waiter's key.
    pub revision: i64,
    /// Whether that key is the oldest under the prefix (the lock is held at once).
    pub owner: bool,
}

/// Reads the answer to [`lock`].
pub fn locked(response: &TxnResponse) -> Result<Locked, Malformed> {
    let revision = match response.succeeded {
        true => header_revision(response),
        false => {
            range_at(response, 0)?
                .kvs
                .first()
                .ok_or(Malformed)?
                .create_revision
        }
    };
    let owner = range_at(response, 1)?
        .kvs
        .first()
        .is_none_or(|kv: &KeyValue| kv.create_revision == revision);
    Ok(Locked { revision, owner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::etcdserverpb::{ResponseHeader, ResponseOp};

    fn header(revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision,
            ..ResponseHeader::default()
        })
    }

    fn range_op(kvs: Vec<KeyValue>) -> ResponseOp {
        ResponseOp {
            response: Some(response_op::Response::ResponseRange(RangeResponse {
                kvs,
                ..RangeResponse::default()
            })),
        }
    }

    fn kv(key: &str, value: &str, create_revision: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision,
            ..KeyValue::default()
        }
    }

    #[test]
    fn session_keys_use_gos_signed_hex() {
        assert_eq!(
            session_key(b"e/", 0x694d_8c2a_13f0_a01d),
            b"e/694d8c2a13f0a01d"
        );
        assert_eq!(session_key(b"e/", -26), b"e/-1a");
        assert_eq!(session_key(b"/", 0), b"/0");
    }

    #[test]
    fn prefix_ranges_follow_clientv3() {
        assert_eq!(prefix_range(b"a/"), (b"a/".to_vec(), b"a0".to_vec()));
        assert_eq!(prefix_range(b"a\xff"), (b"a\xff".to_vec(), b"b".to_vec()));
        assert_eq!(prefix_range(b"\xff"), (b"\xff".to_vec(), vec![0]));
        assert_eq!(prefix_range(b""), (vec![0], vec![0]));
    }

    #[test]
    fn wait_query_is_the_newest_key_created_before_ours() {
        let q = last_created_at_most(b"l/", 7);
        assert_eq!(
            (q.limit, q.max_create_revision, q.sort_order, q.sort_target),
            (1, 7, SortOrder::Descend as i32, SortTarget::Create as i32)
        );
    }

    #[test]
    fn a_new_campaign_key_is_created_at_the_transaction_revision() {
        let fresh = TxnResponse {
            header: header(9),
            succeeded: true,
            ..TxnResponse::default()
        };
        assert_eq!(
            campaigned(&fresh),
            Ok(Campaigned {
                revision: 9,
                existing_value: None
            })
        );
        let resumed = TxnResponse {
            header: header(9),
            succeeded: false,
            responses: vec![range_op(vec![kv("e/1", "old", 4)])],
        };
        assert_eq!(
            campaigned(&resumed),
            Ok(Campaigned {
                revision: 4,
                existing_value: Some(b"old".to_vec())
            })
        );
        let broken = TxnResponse {
            succeeded: false,
            ..TxnResponse::default()
        };
        assert_eq!(campaigned(&broken), Err(Malformed));
    }

    #[test]
    fn the_oldest_waiter_owns_the_lock() {
        let alone = TxnResponse {
            header: header(5),
            succeeded: true,
            responses: vec![ResponseOp::default(), range_op(vec![kv("l/1", "", 5)])],
        };
        assert_eq!(
            locked(&alone),
            Ok(Locked {
                revision: 5,
                owner: true
            })
        );
        let behind = TxnResponse {
            header: header(6),
            succeeded: true,
            responses: vec![ResponseOp::default(), range_op(vec![kv("l/2", "", 3)])],
        };
        assert_eq!(
            locked(&behind),
            Ok(Locked {
                revision: 6,
                owner: false
            })
        );
    }
}
