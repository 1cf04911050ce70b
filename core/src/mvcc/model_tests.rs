//! Property test: random sequences of Put, DeleteRange, Txn (with nested txns), Compact,
//! Range at any revision, events_since, HashKV and reopen, on a small key alphabet, give
//! exactly the responses, events and errors of a tiny obvious model that keeps a list of
//! every version and answers each question by a linear search.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;

use super::{LeaseLookup, Mvcc, check};
use crate::Error;
use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::request_op::Request;
use crate::api::etcdserverpb::response_op::Response;
use crate::api::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::api::mvccpb::{Event, KeyValue, event::EventType};
use crate::storage::mem::MemEngine;
use crate::storage::{Durability, Engine, WriteBatch};

/// The only lease that exists.
const GRANTED_LEASE: i64 = 1;

fn leases() -> impl LeaseLookup {
    |id: i64| id == GRANTED_LEASE
}

// ---------------------------------------------------------------------------------------
// The model

/// One version of one key; `kv = None` is a deletion.
#[derive(Debug, Clone)]
struct ModelVersion {
    key: Vec<u8>,
    main: i64,
    sub: i64,
    kv: Option<KeyValue>,
}

/// Every stored version in revision order, plus the two revisions.
#[derive(Debug, Clone)]
struct Model {
    versions: Vec<ModelVersion>,
    current: i64,
    compacted: i64,
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        end => key >= start && key < end,
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    })
}

/// A write transaction of the model: its changes are appended to `versions` at once.
struct ModelTxn {
    begin: i64,
    changes: i64,
    events: Vec<Event>,
}

impl ModelTxn {
    fn read_rev(&self) -> i64 {
        if self.changes > 0 {
            self.begin + 1
        } else {
            self.begin
        }
    }
}

impl Model {
    fn new() -> Self {
        Model {
            versions: Vec::new(),
            current: 1,
            compacted: -1,
        }
    }

    fn state_at(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        self.versions
            .iter()
            .rfind(|v| v.key == key && v.main <= rev)
            .and_then(|v| v.kv.clone())
    }

    fn live(&self, start: &[u8], end: &[u8], rev: i64) -> Vec<KeyValue> {
        let keys: BTreeSet<Vec<u8>> = self
            .versions
            .iter()
            .filter(|v| in_range(&v.key, start, end))
            .map(|v| v.key.clone())
            .collect();
        keys.iter()
            .filter_map(|key| self.state_at(key, rev))
            .collect()
    }

    fn range(&self, req: &RangeRequest, current: i64) -> Result<RangeResponse, Error> {
        let order = SortOrder::try_from(req.sort_order).map_err(|_| Error::InvalidSortOption)?;
        let target = SortTarget::try_from(req.sort_target).map_err(|_| Error::InvalidSortOption)?;
        if req.revision > current {
            return Err(Error::FutureRevision);
        }
        let rev = if req.revision <= 0 {
            current
        } else {
            req.revision
        };
        if rev < self.compacted {
            return Err(Error::Compacted);
        }
        let all = self.live(&req.key, &req.range_end, rev);
        let count = all.len() as i64;
        if req.count_only {
            return Ok(RangeResponse {
                header: header(current),
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        let mut kvs: Vec<KeyValue> = all
            .into_iter()
            .filter(|kv| req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            .filter(|kv| req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            .filter(|kv| {
                req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision
            })
            .filter(|kv| {
                req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision
            })
            .collect();
        let order = if order == SortOrder::None && target != SortTarget::Key {
            SortOrder::Ascend
        } else {
            order
        };
        if order != SortOrder::None {
            kvs.sort_by(|a, b| {
                let ord = match target {
                    SortTarget::Key => a.key.cmp(&b.key),
                    SortTarget::Version => a.version.cmp(&b.version),
                    SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                    SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                    SortTarget::Value => a.value.cmp(&b.value),
                };
                if order == SortOrder::Descend {
                    ord.reverse()
                } else {
                    ord
                }
            });
        }
        let mut more = false;
        if req.limit > 0 && kvs.len() > req.limit as usize {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        Ok(RangeResponse {
            header: header(current),
            kvs,
            more,
            count,
        })
    }

    fn begin(&self) -> ModelTxn {
        ModelTxn {
            begin: self.current,
            changes: 0,
            events: Vec::new(),
        }
    }

    fn end(&mut self, txn: ModelTxn) -> Vec<Event> {
        if txn.changes > 0 {
            self.current += 1;
        }
        txn.events
    }

    fn txn_put(&mut self, txn: &mut ModelTxn, req: &PutRequest) -> Result<PutResponse, Error> {
        let prev = self.state_at(&req.key, txn.read_rev());
        if (req.ignore_value || req.ignore_lease) && prev.is_none() {
            return Err(Error::KeyNotFound);
        }
        let main = txn.begin + 1;
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(main, |p| p.create_revision),
            mod_revision: main,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: if req.ignore_value {
                prev.as_ref().map(|p| p.value.clone()).unwrap_or_default()
            } else {
                req.value.clone()
            },
            lease: if req.ignore_lease {
                prev.as_ref().map_or(0, |p| p.lease)
            } else {
                req.lease
            },
        };
        let event_prev = if kv.version == 1 {
            None
        } else {
            self.state_at(&req.key, txn.begin)
        };
        txn.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv.clone()),
            prev_kv: event_prev,
        });
        self.versions.push(ModelVersion {
            key: req.key.clone(),
            main,
            sub: txn.changes,
            kv: Some(kv),
        });
        txn.changes += 1;
        Ok(PutResponse {
            header: header(main),
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    fn txn_delete(&mut self, txn: &mut ModelTxn, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let existing = self.live(&req.key, &req.range_end, txn.read_rev());
        let main = txn.begin + 1;
        for kv in &existing {
            let gone = KeyValue {
                key: kv.key.clone(),
                mod_revision: main,
                ..KeyValue::default()
            };
            let prev = self.state_at(&kv.key, txn.begin);
            txn.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(gone),
                prev_kv: prev,
            });
            self.versions.push(ModelVersion {
                key: kv.key.clone(),
                main,
                sub: txn.changes,
                kv: None,
            });
            txn.changes += 1;
        }
        DeleteRangeResponse {
            header: header(txn.read_rev()),
            deleted: existing.len() as i64,
            prev_kvs: if req.prev_kv { existing } else { Vec::new() },
        }
    }

    fn put(&mut self, req: &PutRequest) -> Result<(PutResponse, Vec<Event>), Error> {
        if req.lease != 0 && req.lease != GRANTED_LEASE {
            return Err(Error::LeaseNotFound);
        }
        let mut txn = self.begin();
        let resp = self.txn_put(&mut txn, req)?;
        Ok((resp, self.end(txn)))
    }

    fn delete(&mut self, req: &DeleteRangeRequest) -> (DeleteRangeResponse, Vec<Event>) {
        let mut txn = self.begin();
        let resp = self.txn_delete(&mut txn, req);
        (resp, self.end(txn))
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let kvs = self.live(&c.key, &c.range_end, self.current);
        if kvs.is_empty() {
            return c.target != CompareTarget::Value as i32 && compare_kv(c, &KeyValue::default());
        }
        kvs.iter().all(|kv| compare_kv(c, kv))
    }

    /// The ops the txn will run, with nested txns flattened in execution order, or the
    /// pre-check error.
    fn chosen_ops(&self, req: &TxnRequest) -> (bool, Vec<RequestOp>) {
        let succeeded = req.compare.iter().all(|c| self.compare_holds(c));
        let ops = if succeeded {
            req.success.clone()
        } else {
            req.failure.clone()
        };
        (succeeded, ops)
    }

    fn precheck(&self, req: &TxnRequest) -> Result<(), Error> {
        let mut puts = Vec::new();
        let mut ranges = Vec::new();
        self.collect_checked(req, &mut puts, &mut ranges);
        for put in puts {
            if (put.ignore_value || put.ignore_lease)
                && self.state_at(&put.key, self.current).is_none()
            {
                return Err(Error::KeyNotFound);
            }
            if put.lease != 0 && put.lease != GRANTED_LEASE {
                return Err(Error::LeaseNotFound);
            }
        }
        for range in ranges {
            if range.revision != 0 && range.revision > self.current {
                return Err(Error::FutureRevision);
            }
            if range.revision != 0 && range.revision < self.compacted {
                return Err(Error::Compacted);
            }
        }
        Ok(())
    }

    fn collect_checked(
        &self,
        req: &TxnRequest,
        puts: &mut Vec<PutRequest>,
        ranges: &mut Vec<RangeRequest>,
    ) {
        let (_, ops) = self.chosen_ops(req);
        for op in ops {
            match op.request {
                Some(Request::RequestPut(put)) => puts.push(put),
                Some(Request::RequestRange(range)) => ranges.push(range),
                Some(Request::RequestTxn(inner)) => self.collect_checked(&inner, puts, ranges),
                _ => {}
            }
        }
    }

    fn txn(&mut self, req: &TxnRequest) -> Result<(TxnResponse, Vec<Event>), Error> {
        self.precheck(req)?;
        let before = self.clone();
        let mut txn = self.begin();
        let mut resp = self.run_txn(&before, &mut txn, req)?;
        resp.header = header(txn.read_rev());
        Ok((resp, self.end(txn)))
    }

    /// Runs `req` with compares evaluated on `before` (the state before the outer txn).
    fn run_txn(
        &mut self,
        before: &Model,
        txn: &mut ModelTxn,
        req: &TxnRequest,
    ) -> Result<TxnResponse, Error> {
        let (succeeded, ops) = before.chosen_ops(req);
        let mut responses = Vec::new();
        for op in ops {
            let response = match op.request {
                Some(Request::RequestRange(r)) => {
                    Some(Response::ResponseRange(self.range(&r, txn.read_rev())?))
                }
                Some(Request::RequestPut(p)) => Some(Response::ResponsePut(self.txn_put(txn, &p)?)),
                Some(Request::RequestDeleteRange(d)) => {
                    Some(Response::ResponseDeleteRange(self.txn_delete(txn, &d)))
                }
                Some(Request::RequestTxn(inner)) => {
                    Some(Response::ResponseTxn(self.run_txn(before, txn, &inner)?))
                }
                None => None,
            };
            responses.push(ResponseOp { response });
        }
        Ok(TxnResponse {
            header: Some(ResponseHeader::default()),
            succeeded,
            responses,
        })
    }

    fn compact(&mut self, rev: i64) -> Result<i64, Error> {
        if rev <= self.compacted {
            return Err(Error::Compacted);
        }
        if rev > self.current {
            return Err(Error::FutureRevision);
        }
        let snapshot = self.versions.clone();
        self.versions.retain(|v| {
            if v.main > rev {
                return true;
            }
            let newest = snapshot.iter().rfind(|w| w.key == v.key && w.main <= rev);
            newest.is_some_and(|n| n.main == v.main && n.sub == v.sub) && v.kv.is_some()
        });
        self.compacted = rev;
        Ok(self.current)
    }

    fn events_since(
        &self,
        start: i64,
        key: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Event>, Error> {
        if start < self.compacted {
            return Err(Error::Compacted);
        }
        let mut events: Vec<Event> = Vec::new();
        for v in self.versions.iter().filter(|v| v.main >= start) {
            let last_main = events
                .last()
                .and_then(|e| e.kv.as_ref())
                .map(|kv| kv.mod_revision);
            if limit != 0 && events.len() >= limit && last_main != Some(v.main) {
                break;
            }
            if !in_range(&v.key, key, end) {
                continue;
            }
            let (kind, kv) = match &v.kv {
                Some(kv) => (EventType::Put, kv.clone()),
                None => (
                    EventType::Delete,
                    KeyValue {
                        key: v.key.clone(),
                        mod_revision: v.main,
                        ..KeyValue::default()
                    },
                ),
            };
            let prev = if kind == EventType::Put && kv.version == 1 {
                None
            } else {
                self.state_at(&v.key, v.main - 1)
            };
            events.push(Event {
                r#type: kind as i32,
                kv: Some(kv),
                prev_kv: prev,
            });
        }
        Ok(events)
    }

    /// etcd's `HashByRev`, written out over the model's surviving versions.
    fn hash_kv(&self, rev: i64) -> Result<(u32, i64), Error> {
        use prost::Message;
        if rev > 0 && rev <= self.compacted {
            return Err(Error::Compacted);
        }
        if rev > 0 && rev > self.current {
            return Err(Error::FutureRevision);
        }
        let rev = if rev == 0 { self.current } else { rev };
        let keys: BTreeSet<Vec<u8>> = self.versions.iter().map(|v| v.key.clone()).collect();
        let keep: Vec<(i64, i64)> = keys
            .iter()
            .filter_map(|key| {
                self.versions
                    .iter()
                    .rfind(|v| &v.key == key && v.main <= rev)
            })
            .filter(|v| v.kv.is_some())
            .map(|v| (v.main, v.sub))
            .collect();
        let mut crc = super::hash::Crc32c::new();
        crc.update(b"key");
        for v in self.versions.iter().filter(|v| v.main <= rev) {
            if v.main <= self.compacted && !keep.is_empty() && !keep.contains(&(v.main, v.sub)) {
                continue;
            }
            let mut bolt_key = v.main.to_be_bytes().to_vec();
            bolt_key.push(b'_');
            bolt_key.extend_from_slice(&v.sub.to_be_bytes());
            let value = match &v.kv {
                Some(kv) => kv.clone(),
                None => {
                    bolt_key.push(b't');
                    KeyValue {
                        key: v.key.clone(),
                        ..KeyValue::default()
                    }
                }
            };
            crc.update(&bolt_key);
            crc.update(&value.encode_to_vec());
        }
        Ok((crc.finish(), self.compacted))
    }
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match (CompareTarget::try_from(c.target), &c.target_union) {
        (Ok(CompareTarget::Value), Some(TargetUnion::Value(v))) => kv.value.cmp(v),
        (Ok(CompareTarget::Value), _) => kv.value.as_slice().cmp(&[][..]),
        (Ok(CompareTarget::Version), Some(TargetUnion::Version(v))) => kv.version.cmp(v),
        (Ok(CompareTarget::Version), _) => kv.version.cmp(&0),
        (Ok(CompareTarget::Create), Some(TargetUnion::CreateRevision(v))) => {
            kv.create_revision.cmp(v)
        }
        (Ok(CompareTarget::Create), _) => kv.create_revision.cmp(&0),
        (Ok(CompareTarget::Mod), Some(TargetUnion::ModRevision(v))) => kv.mod_revision.cmp(v),
        (Ok(CompareTarget::Mod), _) => kv.mod_revision.cmp(&0),
        (Ok(CompareTarget::Lease), Some(TargetUnion::Lease(v))) => kv.lease.cmp(v),
        (Ok(CompareTarget::Lease), _) => kv.lease.cmp(&0),
        (Err(_), _) => std::cmp::Ordering::Equal,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord.is_eq(),
        Ok(CompareResult::NotEqual) => ord.is_ne(),
        Ok(CompareResult::Greater) => ord.is_gt(),
        Ok(CompareResult::Less) => ord.is_lt(),
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------
// Actions and their generators

#[derive(Debug, Clone)]
enum Action {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Range(RangeRequest),
    Txn(TxnRequest),
    Compact(i64),
    EventsSince {
        start: i64,
        key: Vec<u8>,
        range_end: Vec<u8>,
        limit: usize,
    },
    HashKv(i64),
    Reopen,
}

const KEYS: [&[u8]; 5] = [b"a", b"ab", b"b", b"b\0", b"c"];
const VALUES: [&[u8]; 4] = [b"", b"x", b"y", b"z"];
/// Revisions tests ask for; [`fit`] folds them onto the revisions a sequence has reached.
const MAX_REVISION: i64 = 30;

/// Folds a generated revision onto `0..=current + 1` (keeping 0 and negatives), so most
/// requests name a readable revision and some a compacted or future one.
fn fit(rev: i64, current: i64) -> i64 {
    if rev <= 0 { rev } else { rev % (current + 2) }
}

fn fit_txn(req: &TxnRequest, current: i64) -> TxnRequest {
    let fit_ops = |ops: &[RequestOp]| -> Vec<RequestOp> {
        ops.iter()
            .map(|op| match &op.request {
                Some(Request::RequestRange(r)) => RequestOp {
                    request: Some(Request::RequestRange(RangeRequest {
                        revision: fit(r.revision, current),
                        ..r.clone()
                    })),
                },
                Some(Request::RequestTxn(inner)) => RequestOp {
                    request: Some(Request::RequestTxn(fit_txn(inner, current))),
                },
                _ => op.clone(),
            })
            .collect()
    };
    TxnRequest {
        compare: req.compare.clone(),
        success: fit_ops(&req.success),
        failure: fit_ops(&req.failure),
    }
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(KEYS.to_vec()).prop_map(<[u8]>::to_vec)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(VALUES.to_vec()).prop_map(<[u8]>::to_vec)
}

/// The first key of a range: any key, or `"\0"` (with `range_end = "\0"`: everything).
fn range_start() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => key(), 1 => Just(vec![0])]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => Just(vec![0]),
        2 => prop::sample::select(vec![&b"ab"[..], b"b", b"b\0", b"c", b"d"]).prop_map(<[u8]>::to_vec),
    ]
}

fn revision() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 2 => -1..=MAX_REVISION]
}

fn put_request() -> impl Strategy<Value = PutRequest> {
    (
        key(),
        value(),
        prop::sample::select(vec![0i64, 0, 0, GRANTED_LEASE, 2]),
        any::<bool>(),
        0..8u8,
    )
        .prop_map(|(key, value, lease, prev_kv, flags)| {
            let ignore_value = flags == 1;
            let ignore_lease = flags == 2;
            PutRequest {
                key,
                value: if ignore_value { Vec::new() } else { value },
                lease: if ignore_lease { 0 } else { lease },
                prev_kv,
                ignore_value,
                ignore_lease,
            }
        })
}

fn delete_request() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn range_request() -> impl Strategy<Value = RangeRequest> {
    let filter = || prop_oneof![8 => Just(0i64), 1 => 1..12i64];
    (
        (
            range_start(),
            range_end(),
            revision(),
            prop_oneof![Just(0i64), 1..4i64],
        ),
        (0..3i32, 0..5i32, any::<bool>(), any::<bool>()),
        (filter(), filter(), filter(), filter()),
    )
        .prop_map(
            |(
                (key, range_end, revision, limit),
                (order, target, count_only, keys_only),
                filters,
            )| {
                RangeRequest {
                    key,
                    range_end,
                    limit,
                    revision,
                    sort_order: order,
                    sort_target: target,
                    serializable: false,
                    keys_only,
                    count_only: count_only && limit % 2 == 0,
                    min_mod_revision: filters.0,
                    max_mod_revision: filters.1,
                    min_create_revision: filters.2,
                    max_create_revision: filters.3,
                }
            },
        )
}

fn compare_strategy() -> impl Strategy<Value = Compare> {
    (
        key(),
        prop_oneof![3 => Just(Vec::new()), 1 => range_end()],
        0..5i32,
        0..4i32,
        value(),
        0..6i64,
    )
        .prop_map(|(key, range_end, target, result, value, number)| {
            let target_union = match CompareTarget::try_from(target) {
                Ok(CompareTarget::Value) => TargetUnion::Value(value),
                Ok(CompareTarget::Version) => TargetUnion::Version(number),
                Ok(CompareTarget::Create) => TargetUnion::CreateRevision(number),
                Ok(CompareTarget::Mod) => TargetUnion::ModRevision(number),
                _ => TargetUnion::Lease(number % 3),
            };
            Compare {
                result,
                target,
                key,
                range_end,
                target_union: Some(target_union),
            }
        })
}

fn flat_op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        3 => put_request().prop_map(|r| RequestOp { request: Some(Request::RequestPut(r)) }),
        2 => delete_request().prop_map(|r| RequestOp { request: Some(Request::RequestDeleteRange(r)) }),
        2 => range_request().prop_map(|r| RequestOp { request: Some(Request::RequestRange(r)) }),
    ]
}

fn flat_txn() -> impl Strategy<Value = TxnRequest> {
    (
        prop::collection::vec(compare_strategy(), 0..3),
        prop::collection::vec(flat_op(), 0..4),
        prop::collection::vec(flat_op(), 0..4),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

fn txn_request() -> impl Strategy<Value = TxnRequest> {
    let op = prop_oneof![
        5 => flat_op(),
        1 => flat_txn().prop_map(|t| RequestOp { request: Some(Request::RequestTxn(t)) }),
    ];
    (
        prop::collection::vec(compare_strategy(), 0..3),
        prop::collection::vec(op.clone(), 0..4),
        prop::collection::vec(op, 0..4),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => put_request().prop_map(Action::Put),
        2 => delete_request().prop_map(Action::Delete),
        4 => range_request().prop_map(Action::Range),
        4 => txn_request().prop_map(Action::Txn),
        1 => (-1..=MAX_REVISION).prop_map(Action::Compact),
        2 => (-1..=MAX_REVISION, key(), range_end(), 0..4usize)
            .prop_map(|(start, key, range_end, limit)| Action::EventsSince { start, key, range_end, limit }),
        1 => revision().prop_map(Action::HashKv),
        1 => Just(Action::Reopen),
    ]
}

// ---------------------------------------------------------------------------------------
// The property

struct Subject {
    engine: Arc<dyn Engine>,
    mvcc: Mvcc,
}

impl Subject {
    fn write(&self, batch: WriteBatch) {
        self.engine
            .write(batch, Durability::Buffered)
            .expect("write");
    }
}

/// Runs `action` on both and asserts identical outcomes.
fn step(subject: &mut Subject, model: &mut Model, action: &Action) -> Result<(), TestCaseError> {
    match action {
        Action::Put(req) => {
            if check::put(req).is_err() {
                return Ok(());
            }
            let mut batch = WriteBatch::new();
            let got = subject.mvcc.put(req, &leases(), &mut batch);
            subject.write(batch);
            prop_assert_eq!(got, model.put(req));
        }
        Action::Delete(req) => {
            let mut batch = WriteBatch::new();
            let got = subject.mvcc.delete_range(req, &mut batch);
            subject.write(batch);
            prop_assert_eq!(got, Ok(model.delete(req)));
        }
        Action::Range(req) => {
            let req = RangeRequest {
                revision: fit(req.revision, model.current),
                ..req.clone()
            };
            prop_assert_eq!(subject.mvcc.range(&req), model.range(&req, model.current));
        }
        Action::Txn(req) => {
            let req = &fit_txn(req, model.current);
            if check::txn(req, 128).is_err() {
                return Ok(());
            }
            let mut batch = WriteBatch::new();
            let got = subject.mvcc.txn(req, &leases(), &mut batch);
            if got.is_err() {
                prop_assert!(batch.is_empty(), "a failed txn staged changes");
            }
            subject.write(batch);
            let before = model.clone();
            let want = model.txn(req);
            if want.is_err() {
                *model = before;
            }
            prop_assert_eq!(got, want);
        }
        Action::Compact(rev) => {
            let rev = &fit(*rev, model.current);
            let mut batch = WriteBatch::new();
            let got = subject.mvcc.compact(
                &CompactionRequest {
                    revision: *rev,
                    physical: false,
                },
                &mut batch,
            );
            subject.write(batch);
            prop_assert_eq!(
                got.map(|resp| resp.header.map_or(0, |h| h.revision)),
                model.compact(*rev)
            );
        }
        Action::EventsSince {
            start,
            key,
            range_end,
            limit,
        } => {
            let start = &fit(*start, model.current);
            prop_assert_eq!(
                subject.mvcc.events_since(*start, key, range_end, *limit),
                model.events_since(*start, key, range_end, *limit)
            );
        }
        Action::HashKv(rev) => {
            let rev = &fit(*rev, model.current);
            prop_assert_eq!(subject.mvcc.hash_kv(*rev), model.hash_kv(*rev));
        }
        Action::Reopen => {
            subject.mvcc = Mvcc::open(subject.engine.clone()).expect("reopen");
        }
    }
    prop_assert_eq!(subject.mvcc.current_revision(), model.current);
    prop_assert_eq!(subject.mvcc.compacted_revision(), model.compacted);
    Ok(())
}

/// Every readable revision shows the same state, and every event since the compaction matches.
fn assert_same_history(subject: &Subject, model: &Model) -> Result<(), TestCaseError> {
    let everything = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..RangeRequest::default()
    };
    for rev in model.compacted.max(1)..=model.current {
        let req = RangeRequest {
            revision: rev,
            ..everything.clone()
        };
        prop_assert_eq!(
            subject.mvcc.range(&req),
            model.range(&req, model.current),
            "at revision {}",
            rev
        );
    }
    let start = model.compacted + 1;
    prop_assert_eq!(
        subject.mvcc.events_since(start, &[0], &[0], 0),
        model.events_since(start, &[0], &[0], 0)
    );
    prop_assert_eq!(subject.mvcc.hash_kv(0), model.hash_kv(0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mvcc_matches_a_model_that_keeps_every_version(actions in prop::collection::vec(action(), 1..60)) {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let mut subject = Subject { mvcc: Mvcc::open(engine.clone()).expect("open"), engine };
        let mut model = Model::new();
        for action in &actions {
            step(&mut subject, &mut model, action)?;
        }
        assert_same_history(&subject, &model)?;
    }
}
