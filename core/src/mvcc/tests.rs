//! Unit tests of the MVCC store: each test pins one etcd rule.

use std::sync::Arc;

use super::{LeaseLookup, Mvcc, check, keys};
use crate::Error;
use crate::api::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::request_op::Request;
use crate::api::etcdserverpb::response_op::Response;
use crate::api::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, ResponseHeader, TxnRequest, TxnResponse,
};
use crate::api::mvccpb::{Event, KeyValue, event::EventType};
use crate::storage::mem::MemEngine;
use crate::storage::{Durability, Engine, Order, Space, WriteBatch};

/// A store on a fresh [`MemEngine`]; every write's batch is written to the engine.
struct Fixture {
    engine: Arc<dyn Engine>,
    mvcc: Mvcc,
}

fn no_leases() -> impl LeaseLookup {
    |_: i64| false
}

fn leases(granted: &'static [i64]) -> impl LeaseLookup {
    move |id: i64| granted.contains(&id)
}

impl Fixture {
    fn new() -> Self {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let mvcc = Mvcc::open(engine.clone()).expect("open");
        Fixture { engine, mvcc }
    }

    fn write(&self, batch: WriteBatch) {
        self.engine
            .write(batch, Durability::Buffered)
            .expect("write");
    }

    fn try_put(
        &mut self,
        req: &PutRequest,
        leases: &dyn LeaseLookup,
    ) -> Result<(i64, Option<KeyValue>, Vec<Event>), Error> {
        let mut batch = WriteBatch::new();
        let (resp, events) = self.mvcc.put(req, leases, &mut batch)?;
        self.write(batch);
        Ok((revision_of(&resp.header), resp.prev_kv, events))
    }

    /// Puts `key = value` and returns the new revision.
    fn put(&mut self, key: &[u8], value: &[u8]) -> i64 {
        self.try_put(&put_req(key, value), &no_leases())
            .expect("put")
            .0
    }

    fn try_delete(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<(i64, i64, Vec<KeyValue>, Vec<Event>), Error> {
        let mut batch = WriteBatch::new();
        let (resp, events) = self.mvcc.delete_range(req, &mut batch)?;
        self.write(batch);
        Ok((
            revision_of(&resp.header),
            resp.deleted,
            resp.prev_kvs,
            events,
        ))
    }

    /// Deletes `[key, range_end)` and returns `(header revision, deleted)`.
    fn delete(&mut self, key: &[u8], range_end: &[u8]) -> (i64, i64) {
        let (rev, deleted, _, _) = self
            .try_delete(&delete_req(key, range_end))
            .expect("delete");
        (rev, deleted)
    }

    fn txn(
        &mut self,
        req: &TxnRequest,
        leases: &dyn LeaseLookup,
    ) -> Result<(TxnResponse, Vec<Event>), Error> {
        let mut batch = WriteBatch::new();
        let result = self.mvcc.txn(req, leases, &mut batch)?;
        self.write(batch);
        Ok(result)
    }

    fn compact(&mut self, rev: i64) -> Result<i64, Error> {
        let mut batch = WriteBatch::new();
        let resp = self.mvcc.compact(
            &CompactionRequest {
                revision: rev,
                physical: false,
            },
            &mut batch,
        )?;
        self.write(batch);
        Ok(revision_of(&resp.header))
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        self.mvcc.range(req)
    }

    fn get(&self, key: &[u8]) -> Option<KeyValue> {
        self.range(&range_req(key, b""))
            .expect("range")
            .kvs
            .into_iter()
            .next()
    }

    fn get_at(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>, Error> {
        let req = RangeRequest {
            revision: rev,
            ..range_req(key, b"")
        };
        Ok(self.range(&req)?.kvs.into_iter().next())
    }

    fn keys(&self, key: &[u8], range_end: &[u8]) -> Vec<Vec<u8>> {
        let resp = self.range(&range_req(key, range_end)).expect("range");
        resp.kvs.into_iter().map(|kv| kv.key).collect()
    }

    /// Every entry stored in `space`, in key order.
    fn entries(&self, space: Space) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = Vec::new();
        self.engine
            .scan(space, b"", None, Order::Ascending, &mut |k, v| {
                entries.push((k.to_vec(), v.to_vec()));
                std::ops::ControlFlow::Continue(())
            })
            .expect("scan");
        entries
    }

    /// The keys stored in `space`, in order.
    fn stored_keys(&self, space: Space) -> Vec<Vec<u8>> {
        self.entries(space).into_iter().map(|(k, _)| k).collect()
    }

    /// Number of entries stored in `space`.
    fn stored(&self, space: Space) -> usize {
        let mut n = 0;
        self.engine
            .scan(space, b"", None, Order::Ascending, &mut |_, _| {
                n += 1;
                std::ops::ControlFlow::Continue(())
            })
            .expect("scan");
        n
    }
}

fn revision_of(header: &Option<ResponseHeader>) -> i64 {
    header.as_ref().expect("header").revision
}

fn put_req(key: &[u8], value: &[u8]) -> PutRequest {
    PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        ..PutRequest::default()
    }
}

fn delete_req(key: &[u8], range_end: &[u8]) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.to_vec(),
        range_end: range_end.to_vec(),
        prev_kv: false,
    }
}

fn range_req(key: &[u8], range_end: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        range_end: range_end.to_vec(),
        ..RangeRequest::default()
    }
}

fn op(request: Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

fn op_put(key: &[u8], value: &[u8]) -> RequestOp {
    op(Request::RequestPut(put_req(key, value)))
}

fn op_get(key: &[u8]) -> RequestOp {
    op(Request::RequestRange(range_req(key, b"")))
}

fn op_delete(key: &[u8], range_end: &[u8]) -> RequestOp {
    op(Request::RequestDeleteRange(delete_req(key, range_end)))
}

fn compare(
    key: &[u8],
    target: CompareTarget,
    result: CompareResult,
    value: TargetUnion,
) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(value),
    }
}

fn kv(key: &[u8], value: &[u8], create: i64, modified: i64, version: i64) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: create,
        mod_revision: modified,
        version,
        value: value.to_vec(),
        lease: 0,
    }
}

// ---------------------------------------------------------------------------------------
// Revisions and versions

#[test]
fn new_store_is_at_revision_one_and_first_put_gets_revision_two() {
    let mut f = Fixture::new();
    assert_eq!(f.mvcc.current_revision(), 1);
    assert_eq!(f.mvcc.compacted_revision(), -1);
    assert_eq!(f.put(b"a", b"1"), 2);
    assert_eq!(f.mvcc.current_revision(), 2);
}

#[test]
fn every_put_advances_the_revision_by_one_even_with_the_same_value() {
    let mut f = Fixture::new();
    assert_eq!(f.put(b"a", b"1"), 2);
    assert_eq!(f.put(b"a", b"1"), 3);
    assert_eq!(f.put(b"b", b"1"), 4);
    assert_eq!(f.get(b"a"), Some(kv(b"a", b"1", 2, 3, 2)));
}

#[test]
fn deleting_nothing_keeps_the_revision_and_writes_nothing() {
    let mut f = Fixture::new();
    f.put(b"a", b"1");
    let mut batch = WriteBatch::new();
    let (resp, events) = f
        .mvcc
        .delete_range(&delete_req(b"b", b""), &mut batch)
        .expect("delete");
    assert_eq!(revision_of(&resp.header), 2);
    assert_eq!(resp.deleted, 0);
    assert!(events.is_empty());
    assert!(batch.is_empty());
    assert_eq!(f.mvcc.current_revision(), 2);
}

#[test]
fn version_counts_puts_and_create_revision_stays() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    f.put(b"k", b"2");
    f.put(b"k", b"3");
    assert_eq!(f.get(b"k"), Some(kv(b"k", b"3", 2, 4, 3)));
}

#[test]
fn put_after_delete_starts_at_version_one_with_a_new_create_revision() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    f.put(b"k", b"2");
    assert_eq!(f.delete(b"k", b""), (4, 1));
    assert_eq!(f.get(b"k"), None);
    f.put(b"k", b"3");
    assert_eq!(f.get(b"k"), Some(kv(b"k", b"3", 5, 5, 1)));
}

#[test]
fn txn_changes_share_one_revision_in_sub_revision_order() {
    let mut f = Fixture::new();
    f.put(b"c", b"0");
    let req = TxnRequest {
        success: vec![op_put(b"b", b"1"), op_put(b"a", b"2"), op_delete(b"c", b"")],
        ..TxnRequest::default()
    };
    let (resp, events) = f.txn(&req, &no_leases()).expect("txn");
    assert_eq!(revision_of(&resp.header), 3);
    assert_eq!(f.mvcc.current_revision(), 3);
    let order: Vec<(Vec<u8>, i64)> = events
        .iter()
        .map(|e| {
            e.kv.as_ref()
                .map(|kv| (kv.key.clone(), kv.mod_revision))
                .expect("kv")
        })
        .collect();
    assert_eq!(
        order,
        vec![(b"b".to_vec(), 3), (b"a".to_vec(), 3), (b"c".to_vec(), 3)]
    );
    let stored = f.mvcc.events_since(3, b"\0", b"\0", 0).expect("events");
    assert_eq!(stored, events, "storage keeps the sub revision order");
}

#[test]
fn txn_whose_branch_changes_nothing_keeps_the_revision() {
    let mut f = Fixture::new();
    f.put(b"a", b"1");
    let req = TxnRequest {
        success: vec![op_get(b"a"), op_delete(b"missing", b"")],
        ..TxnRequest::default()
    };
    let (resp, events) = f.txn(&req, &no_leases()).expect("txn");
    assert_eq!(revision_of(&resp.header), 2);
    assert!(events.is_empty());
    assert_eq!(f.mvcc.current_revision(), 2);
}

// ---------------------------------------------------------------------------------------
// Range forms

fn abc_store() -> Fixture {
    let mut f = Fixture::new();
    for key in [&b"a"[..], b"ab", b"abc", b"b", b"c"] {
        f.put(key, b"v");
    }
    f
}

#[test]
fn empty_range_end_reads_exactly_one_key() {
    let f = abc_store();
    assert_eq!(f.keys(b"ab", b""), vec![b"ab".to_vec()]);
    assert!(f.keys(b"aa", b"").is_empty());
}

#[test]
fn range_end_zero_byte_reads_every_key_from_key_on() {
    let f = abc_store();
    assert_eq!(
        f.keys(b"ab", b"\0"),
        vec![
            b"ab".to_vec(),
            b"abc".to_vec(),
            b"b".to_vec(),
            b"c".to_vec()
        ]
    );
}

#[test]
fn zero_key_with_zero_range_end_reads_everything() {
    let f = abc_store();
    assert_eq!(f.keys(b"\0", b"\0").len(), 5);
}

#[test]
fn range_end_is_exclusive_and_a_prefix_end_reads_the_prefix() {
    let f = abc_store();
    assert_eq!(
        f.keys(b"a", b"b"),
        vec![b"a".to_vec(), b"ab".to_vec(), b"abc".to_vec()]
    );
    assert_eq!(f.keys(b"ab", b"ac"), vec![b"ab".to_vec(), b"abc".to_vec()]);
}

#[test]
fn range_end_at_or_below_key_is_empty_not_an_error() {
    let f = abc_store();
    let resp = f.range(&range_req(b"b", b"a")).expect("range");
    assert!(resp.kvs.is_empty());
    assert_eq!(resp.count, 0);
    assert!(f.keys(b"b", b"b").is_empty());
}

#[test]
fn keys_with_zero_bytes_sort_in_byte_order() {
    let mut f = Fixture::new();
    let keys: [&[u8]; 6] = [b"a\x01", b"a", b"ab", b"a\0b", b"a\0", b"\0"];
    for key in keys {
        f.put(key, b"v");
    }
    let mut expected: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    expected.sort();
    assert_eq!(f.keys(b"\0", b"\0"), expected);
    assert_eq!(
        f.keys(b"a\0", b"a\x01"),
        vec![b"a\0".to_vec(), b"a\0b".to_vec()]
    );
    assert_eq!(f.get(b"a\0").map(|kv| kv.key), Some(b"a\0".to_vec()));
}

// ---------------------------------------------------------------------------------------
// Reads at a revision

#[test]
fn range_at_a_past_revision_sees_that_revision() {
    let mut f = Fixture::new();
    f.put(b"k", b"1"); // 2
    f.put(b"k", b"2"); // 3
    f.delete(b"k", b""); // 4
    f.put(b"j", b"x"); // 5
    assert_eq!(f.get_at(b"k", 2), Ok(Some(kv(b"k", b"1", 2, 2, 1))));
    assert_eq!(f.get_at(b"k", 3), Ok(Some(kv(b"k", b"2", 2, 3, 2))));
    assert_eq!(f.get_at(b"k", 4), Ok(None));
    assert_eq!(f.get_at(b"j", 4), Ok(None));
    assert_eq!(f.get_at(b"k", 1), Ok(None));
}

#[test]
fn range_header_reports_the_current_revision_not_the_requested_one() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    f.put(b"k", b"2");
    let resp = f
        .range(&RangeRequest {
            revision: 2,
            ..range_req(b"k", b"")
        })
        .expect("range");
    assert_eq!(revision_of(&resp.header), 3);
}

#[test]
fn range_above_the_current_revision_is_a_future_revision() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    assert_eq!(f.get_at(b"k", 3), Err(Error::FutureRevision));
    assert!(f.get_at(b"k", 2).is_ok());
}

#[test]
fn range_at_the_compacted_revision_is_served_and_below_it_is_compacted() {
    let mut f = Fixture::new();
    f.put(b"k", b"1"); // 2
    f.put(b"k", b"2"); // 3
    f.put(b"k", b"3"); // 4
    f.compact(3).expect("compact");
    assert_eq!(f.get_at(b"k", 3), Ok(Some(kv(b"k", b"2", 2, 3, 2))));
    assert_eq!(f.get_at(b"k", 2), Err(Error::Compacted));
    assert_eq!(f.get_at(b"k", 0), Ok(Some(kv(b"k", b"3", 2, 4, 3))));
}

#[test]
fn range_over_a_key_with_a_long_history_sees_the_right_version() {
    let mut f = Fixture::new();
    f.put(b"a", b"first");
    for i in 0..40u32 {
        f.put(b"b", i.to_string().as_bytes());
    }
    f.put(b"c", b"last");
    let current = f.mvcc.current_revision();
    for rev in [2, 3, 10, 20, 42, current] {
        let req = RangeRequest {
            revision: rev,
            ..range_req(b"a", b"\0")
        };
        let resp = f.range(&req).expect("range");
        let b = resp.kvs.iter().find(|kv| kv.key == b"b").cloned();
        assert_eq!(b, f.get_at(b"b", rev).expect("get"), "at {rev}");
        let want_c = usize::from(rev == current);
        assert_eq!(
            resp.kvs.iter().filter(|kv| kv.key == b"c").count(),
            want_c,
            "at {rev}"
        );
        assert_eq!(resp.kvs[0].key, b"a");
    }
    assert_eq!(
        f.get_at(b"b", 10).expect("get").map(|kv| kv.value),
        Some(b"7".to_vec())
    );
}

// ---------------------------------------------------------------------------------------
// Limit, count, filters, sorting

#[test]
fn limit_keeps_the_first_keys_sets_more_and_counts_every_key() {
    let f = abc_store();
    let resp = f
        .range(&RangeRequest {
            limit: 2,
            ..range_req(b"a", b"\0")
        })
        .expect("range");
    assert_eq!(
        resp.kvs
            .iter()
            .map(|kv| kv.key.as_slice())
            .collect::<Vec<_>>(),
        vec![&b"a"[..], b"ab"]
    );
    assert!(resp.more);
    assert_eq!(resp.count, 5);
    let all = f
        .range(&RangeRequest {
            limit: 5,
            ..range_req(b"a", b"\0")
        })
        .expect("range");
    assert!(!all.more);
    assert_eq!(all.kvs.len(), 5);
}

#[test]
fn count_only_returns_the_count_without_kvs_or_more() {
    let f = abc_store();
    let resp = f
        .range(&RangeRequest {
            count_only: true,
            limit: 1,
            ..range_req(b"a", b"\0")
        })
        .expect("range");
    assert!(resp.kvs.is_empty());
    assert!(!resp.more);
    assert_eq!(resp.count, 5);
}

#[test]
fn keys_only_clears_values() {
    let f = abc_store();
    let resp = f
        .range(&RangeRequest {
            keys_only: true,
            ..range_req(b"a", b"")
        })
        .expect("range");
    assert_eq!(resp.kvs, vec![kv(b"a", b"", 2, 2, 1)]);
}

#[test]
fn filters_apply_before_limit_and_leave_count_alone() {
    let f = abc_store(); // a@2 ab@3 abc@4 b@5 c@6
    let req = RangeRequest {
        min_mod_revision: 3,
        max_mod_revision: 5,
        limit: 2,
        ..range_req(b"a", b"\0")
    };
    let resp = f.range(&req).expect("range");
    assert_eq!(
        resp.kvs
            .iter()
            .map(|kv| kv.mod_revision)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert!(resp.more);
    assert_eq!(resp.count, 5);
    let req = RangeRequest {
        min_create_revision: 4,
        max_create_revision: 4,
        ..range_req(b"a", b"\0")
    };
    let resp = f.range(&req).expect("range");
    assert_eq!(
        resp.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        vec![b"abc".to_vec()]
    );
    assert!(!resp.more);
}

fn sorted_keys(f: &Fixture, order: SortOrder, target: SortTarget, limit: i64) -> Vec<Vec<u8>> {
    let req = RangeRequest {
        sort_order: order as i32,
        sort_target: target as i32,
        limit,
        ..range_req(b"a", b"\0")
    };
    f.range(&req)
        .expect("range")
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect()
}

fn sort_store() -> Fixture {
    let mut f = Fixture::new();
    f.put(b"a", b"3"); // 2
    f.put(b"b", b"1"); // 3
    f.put(b"c", b"2"); // 4
    f.put(b"d", b"1"); // 5
    f.put(b"a", b"3"); // 6: a has version 2
    f
}

#[test]
fn sort_target_other_than_key_with_order_none_ascends() {
    let f = sort_store();
    assert_eq!(
        sorted_keys(&f, SortOrder::None, SortTarget::Mod, 0),
        [b"b", b"c", b"d", b"a"].map(|k| k.to_vec())
    );
    assert_eq!(
        sorted_keys(&f, SortOrder::None, SortTarget::Key, 0),
        [b"a", b"b", b"c", b"d"].map(|k| k.to_vec())
    );
}

#[test]
fn sorts_keep_ties_in_ascending_key_order_in_both_directions() {
    let f = sort_store();
    assert_eq!(
        sorted_keys(&f, SortOrder::Ascend, SortTarget::Value, 0),
        [b"b", b"d", b"c", b"a"].map(|k| k.to_vec())
    );
    assert_eq!(
        sorted_keys(&f, SortOrder::Descend, SortTarget::Value, 0),
        [b"a", b"c", b"b", b"d"].map(|k| k.to_vec())
    );
    assert_eq!(
        sorted_keys(&f, SortOrder::Descend, SortTarget::Version, 0),
        [b"a", b"b", b"c", b"d"].map(|k| k.to_vec())
    );
    assert_eq!(
        sorted_keys(&f, SortOrder::Ascend, SortTarget::Create, 0),
        [b"a", b"b", b"c", b"d"].map(|k| k.to_vec())
    );
    assert_eq!(
        sorted_keys(&f, SortOrder::Descend, SortTarget::Key, 0),
        [b"d", b"c", b"b", b"a"].map(|k| k.to_vec())
    );
}

#[test]
fn sort_with_limit_returns_the_first_of_the_sorted_order_and_sets_more() {
    let f = sort_store();
    assert_eq!(
        sorted_keys(&f, SortOrder::Descend, SortTarget::Key, 1),
        vec![b"d".to_vec()]
    );
    assert_eq!(
        sorted_keys(&f, SortOrder::Descend, SortTarget::Value, 3),
        [b"a", b"c", b"b"].map(|k| k.to_vec())
    );
    let req = RangeRequest {
        sort_order: SortOrder::Descend as i32,
        sort_target: SortTarget::Mod as i32,
        limit: 2,
        ..range_req(b"a", b"\0")
    };
    let resp = f.range(&req).expect("range");
    assert!(resp.more);
    assert_eq!(resp.count, 4);
}

#[test]
fn value_sort_with_keys_only_sorts_by_value_then_clears_it() {
    let f = sort_store();
    let req = RangeRequest {
        sort_order: SortOrder::Descend as i32,
        sort_target: SortTarget::Value as i32,
        keys_only: true,
        ..range_req(b"a", b"\0")
    };
    let resp = f.range(&req).expect("range");
    assert_eq!(
        resp.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        [b"a", b"c", b"b", b"d"].map(|k| k.to_vec())
    );
    assert!(resp.kvs.iter().all(|kv| kv.value.is_empty()));
}

#[test]
fn unknown_sort_order_or_target_is_an_invalid_sort_option() {
    let f = sort_store();
    let bad_order = RangeRequest {
        sort_order: 3,
        ..range_req(b"a", b"")
    };
    let bad_target = RangeRequest {
        sort_target: 5,
        ..range_req(b"a", b"")
    };
    assert_eq!(f.range(&bad_order), Err(Error::InvalidSortOption));
    assert_eq!(check::range(&bad_order), Err(Error::InvalidSortOption));
    assert_eq!(check::range(&bad_target), Err(Error::InvalidSortOption));
    assert_eq!(check::range(&range_req(b"", b"")), Err(Error::EmptyKey));
    assert_eq!(check::range(&range_req(b"a", b"")), Ok(()));
}

// ---------------------------------------------------------------------------------------
// Put

#[test]
fn put_with_prev_kv_returns_the_previous_version() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    let req = PutRequest {
        prev_kv: true,
        ..put_req(b"k", b"2")
    };
    let (rev, prev, _) = f.try_put(&req, &no_leases()).expect("put");
    assert_eq!(rev, 3);
    assert_eq!(prev, Some(kv(b"k", b"1", 2, 2, 1)));
    let (_, prev, _) = f
        .try_put(
            &PutRequest {
                prev_kv: true,
                ..put_req(b"new", b"x")
            },
            &no_leases(),
        )
        .expect("put");
    assert_eq!(prev, None);
}

#[test]
fn ignore_value_keeps_the_previous_value() {
    let mut f = Fixture::new();
    f.put(b"k", b"old");
    let req = PutRequest {
        ignore_value: true,
        lease: 7,
        ..put_req(b"k", b"")
    };
    f.try_put(&req, &leases(&[7])).expect("put");
    let got = f.get(b"k").expect("key");
    assert_eq!(
        (got.value.as_slice(), got.lease, got.version),
        (&b"old"[..], 7, 2)
    );
}

#[test]
fn ignore_lease_keeps_the_previous_lease() {
    let mut f = Fixture::new();
    f.try_put(
        &PutRequest {
            lease: 9,
            ..put_req(b"k", b"1")
        },
        &leases(&[9]),
    )
    .expect("put");
    f.try_put(
        &PutRequest {
            ignore_lease: true,
            ..put_req(b"k", b"2")
        },
        &no_leases(),
    )
    .expect("put");
    let got = f.get(b"k").expect("key");
    assert_eq!((got.value.as_slice(), got.lease), (&b"2"[..], 9));
}

#[test]
fn ignore_value_or_ignore_lease_on_a_missing_key_is_key_not_found_and_changes_nothing() {
    let mut f = Fixture::new();
    f.put(b"other", b"1");
    for req in [
        PutRequest {
            ignore_value: true,
            ..put_req(b"k", b"")
        },
        PutRequest {
            ignore_lease: true,
            ..put_req(b"k", b"v")
        },
    ] {
        let mut batch = WriteBatch::new();
        assert_eq!(
            f.mvcc.put(&req, &no_leases(), &mut batch),
            Err(Error::KeyNotFound)
        );
        assert!(batch.is_empty());
        assert_eq!(f.mvcc.current_revision(), 2);
    }
}

#[test]
fn put_with_an_unknown_lease_is_lease_not_found_and_changes_nothing() {
    let mut f = Fixture::new();
    let mut batch = WriteBatch::new();
    let req = PutRequest {
        lease: 5,
        ..put_req(b"k", b"v")
    };
    assert_eq!(
        f.mvcc.put(&req, &leases(&[4]), &mut batch),
        Err(Error::LeaseNotFound)
    );
    assert!(batch.is_empty());
    assert_eq!(f.mvcc.current_revision(), 1);
    assert!(f.try_put(&req, &leases(&[5])).is_ok());
    assert_eq!(f.get(b"k").map(|kv| kv.lease), Some(5));
}

#[test]
fn check_put_rejects_empty_key_value_with_ignore_value_and_lease_with_ignore_lease() {
    assert_eq!(check::put(&put_req(b"", b"v")), Err(Error::EmptyKey));
    assert_eq!(
        check::put(&PutRequest {
            ignore_value: true,
            ..put_req(b"k", b"v")
        }),
        Err(Error::ValueProvided)
    );
    assert_eq!(
        check::put(&PutRequest {
            ignore_lease: true,
            lease: 1,
            ..put_req(b"k", b"")
        }),
        Err(Error::LeaseProvided)
    );
    assert_eq!(check::put(&put_req(b"k", b"")), Ok(()));
    assert_eq!(
        check::delete_range(&delete_req(b"", b"\0")),
        Err(Error::EmptyKey)
    );
}

// ---------------------------------------------------------------------------------------
// DeleteRange and events

#[test]
fn delete_range_returns_deleted_count_prev_kvs_and_the_new_revision() {
    let mut f = abc_store();
    let req = DeleteRangeRequest {
        prev_kv: true,
        ..delete_req(b"ab", b"b\0")
    };
    let (rev, deleted, prev, events) = f.try_delete(&req).expect("delete");
    assert_eq!((rev, deleted), (7, 3));
    assert_eq!(
        prev.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        [&b"ab"[..], b"abc", b"b"].map(|k| k.to_vec())
    );
    assert_eq!(prev[0], kv(b"ab", b"v", 3, 3, 1));
    assert_eq!(events.len(), 3);
    assert_eq!(f.keys(b"\0", b"\0"), vec![b"a".to_vec(), b"c".to_vec()]);
}

#[test]
fn delete_event_carries_only_key_and_mod_revision_and_the_previous_value() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    let (_, _, _, events) = f.try_delete(&delete_req(b"k", b"")).expect("delete");
    assert_eq!(
        events,
        vec![Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key: b"k".to_vec(),
                mod_revision: 3,
                ..KeyValue::default()
            }),
            prev_kv: Some(kv(b"k", b"1", 2, 2, 1)),
        }]
    );
}

#[test]
fn put_event_carries_the_new_version_and_the_previous_one_when_it_existed() {
    let mut f = Fixture::new();
    let (_, _, events) = f.try_put(&put_req(b"k", b"1"), &no_leases()).expect("put");
    assert_eq!(
        events,
        vec![Event {
            r#type: EventType::Put as i32,
            kv: Some(kv(b"k", b"1", 2, 2, 1)),
            prev_kv: None
        }]
    );
    let (_, _, events) = f.try_put(&put_req(b"k", b"2"), &no_leases()).expect("put");
    assert_eq!(events[0].prev_kv, Some(kv(b"k", b"1", 2, 2, 1)));
    assert_eq!(events[0].kv, Some(kv(b"k", b"2", 2, 3, 2)));
}

#[test]
fn events_since_replays_history_in_revision_order_with_prev_kv() {
    let mut f = Fixture::new();
    let mut live = Vec::new();
    live.extend(
        f.try_put(&put_req(b"a", b"1"), &no_leases())
            .expect("put")
            .2,
    );
    live.extend(
        f.try_put(&put_req(b"b", b"1"), &no_leases())
            .expect("put")
            .2,
    );
    live.extend(
        f.try_put(&put_req(b"a", b"2"), &no_leases())
            .expect("put")
            .2,
    );
    live.extend(f.try_delete(&delete_req(b"a", b"c")).expect("delete").3);
    live.extend(
        f.try_put(&put_req(b"a", b"3"), &no_leases())
            .expect("put")
            .2,
    );
    assert_eq!(
        f.mvcc.events_since(0, b"\0", b"\0", 0).expect("events"),
        live
    );
    assert_eq!(
        f.mvcc.events_since(4, b"\0", b"\0", 0).expect("events"),
        live[2..].to_vec()
    );
    let only_b: Vec<Event> = live
        .iter()
        .filter(|e| e.kv.as_ref().is_some_and(|kv| kv.key == b"b"))
        .cloned()
        .collect();
    assert_eq!(
        f.mvcc.events_since(2, b"b", b"", 0).expect("events"),
        only_b
    );
    assert!(
        f.mvcc
            .events_since(f.mvcc.current_revision() + 1, b"a", b"\0", 0)
            .expect("events")
            .is_empty()
    );
}

#[test]
fn events_since_with_a_limit_returns_whole_revisions() {
    let mut f = Fixture::new();
    f.put(b"a", b"1"); // 2
    let req = TxnRequest {
        success: vec![op_put(b"b", b"1"), op_put(b"c", b"1")],
        ..TxnRequest::default()
    };
    f.txn(&req, &no_leases()).expect("txn"); // 3: two events
    f.put(b"d", b"1"); // 4
    let events = f.mvcc.events_since(2, b"\0", b"\0", 2).expect("events");
    let revs: Vec<i64> = events
        .iter()
        .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision))
        .collect();
    assert_eq!(revs, vec![2, 3, 3]);
    let rest = f.mvcc.events_since(4, b"\0", b"\0", 2).expect("events");
    assert_eq!(rest.len(), 1);
}

#[test]
fn events_since_below_the_compacted_revision_is_compacted_and_at_it_gets_what_compaction_kept() {
    let mut f = Fixture::new();
    f.put(b"a", b"1"); // 2
    f.delete(b"a", b""); // 3
    f.put(b"a", b"2"); // 4
    f.compact(3).expect("compact");
    assert_eq!(f.mvcc.events_since(2, b"a", b"", 0), Err(Error::Compacted));
    // etcd serves a watch starting at the compacted revision; the delete at 3 was dropped
    // by the compaction (a tombstone is not kept), so only the later put remains.
    let at_compacted = f
        .mvcc
        .events_since(3, b"a", b"", 0)
        .expect("events at the compacted revision");
    assert_eq!(
        at_compacted,
        f.mvcc.events_since(4, b"a", b"", 0).expect("events")
    );
    let events = f.mvcc.events_since(4, b"a", b"", 0).expect("events");
    assert_eq!(
        events,
        vec![Event {
            r#type: EventType::Put as i32,
            kv: Some(kv(b"a", b"2", 4, 4, 1)),
            prev_kv: None
        }]
    );
}

// ---------------------------------------------------------------------------------------
// Txn

fn compare_result(f: &mut Fixture, compare: Compare) -> bool {
    let req = TxnRequest {
        compare: vec![compare],
        ..TxnRequest::default()
    };
    f.txn(&req, &no_leases()).expect("txn").0.succeeded
}

#[test]
fn txn_compares_each_target_with_each_operator() {
    let mut f = Fixture::new();
    f.try_put(
        &PutRequest {
            lease: 3,
            ..put_req(b"k", b"m")
        },
        &leases(&[3]),
    )
    .expect("put"); // create 2
    f.put(b"k", b"m"); // mod 3, version 2, lease 0
    use CompareResult::{Equal, Greater, Less, NotEqual};
    use CompareTarget as T;
    let cases: Vec<(CompareTarget, TargetUnion, [bool; 4])> = vec![
        // [EQUAL, NOT_EQUAL, GREATER, LESS] of stored vs given
        (
            T::Value,
            TargetUnion::Value(b"m".to_vec()),
            [true, false, false, false],
        ),
        (
            T::Value,
            TargetUnion::Value(b"a".to_vec()),
            [false, true, true, false],
        ),
        (
            T::Value,
            TargetUnion::Value(b"z".to_vec()),
            [false, true, false, true],
        ),
        (
            T::Version,
            TargetUnion::Version(2),
            [true, false, false, false],
        ),
        (
            T::Version,
            TargetUnion::Version(1),
            [false, true, true, false],
        ),
        (
            T::Create,
            TargetUnion::CreateRevision(2),
            [true, false, false, false],
        ),
        (
            T::Create,
            TargetUnion::CreateRevision(5),
            [false, true, false, true],
        ),
        (
            T::Mod,
            TargetUnion::ModRevision(3),
            [true, false, false, false],
        ),
        (
            T::Mod,
            TargetUnion::ModRevision(2),
            [false, true, true, false],
        ),
        (T::Lease, TargetUnion::Lease(0), [true, false, false, false]),
        (T::Lease, TargetUnion::Lease(3), [false, true, false, true]),
    ];
    for (target, value, expected) in cases {
        for (result, want) in [Equal, NotEqual, Greater, Less].into_iter().zip(expected) {
            let got = compare_result(&mut f, compare(b"k", target, result, value.clone()));
            assert_eq!(got, want, "{target:?} {result:?} {value:?}");
        }
    }
}

#[test]
fn txn_compare_on_a_missing_key_fails_for_value_and_uses_zero_for_the_rest() {
    let mut f = Fixture::new();
    use CompareResult::{Equal, Less};
    assert!(!compare_result(
        &mut f,
        compare(
            b"k",
            CompareTarget::Value,
            Equal,
            TargetUnion::Value(Vec::new())
        )
    ));
    assert!(compare_result(
        &mut f,
        compare(b"k", CompareTarget::Version, Equal, TargetUnion::Version(0))
    ));
    assert!(compare_result(
        &mut f,
        compare(
            b"k",
            CompareTarget::Create,
            Less,
            TargetUnion::CreateRevision(1)
        )
    ));
    assert!(compare_result(
        &mut f,
        compare(b"k", CompareTarget::Mod, Equal, TargetUnion::ModRevision(0))
    ));
}

#[test]
fn txn_compare_over_a_range_needs_every_key_to_match() {
    let mut f = abc_store(); // a, ab, abc, b, c: all version 1
    f.put(b"b", b"v"); // b version 2
    let mut cmp = compare(
        b"a",
        CompareTarget::Version,
        CompareResult::Equal,
        TargetUnion::Version(1),
    );
    cmp.range_end = b"b".to_vec();
    assert!(compare_result(&mut f, cmp.clone()));
    cmp.range_end = b"c".to_vec();
    assert!(!compare_result(&mut f, cmp.clone()));
    cmp.key = b"x".to_vec();
    cmp.range_end = b"\0".to_vec();
    cmp.target_union = Some(TargetUnion::Version(0));
    assert!(
        compare_result(&mut f, cmp),
        "an empty range compares against the zero KeyValue"
    );
}

#[test]
fn txn_runs_the_failure_branch_when_a_compare_fails() {
    let mut f = Fixture::new();
    f.put(b"k", b"1");
    let req = TxnRequest {
        compare: vec![compare(
            b"k",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value(b"2".to_vec()),
        )],
        success: vec![op_put(b"s", b"1")],
        failure: vec![op_put(b"f", b"1")],
    };
    let (resp, _) = f.txn(&req, &no_leases()).expect("txn");
    assert!(!resp.succeeded);
    assert!(f.get(b"f").is_some());
    assert!(f.get(b"s").is_none());
}

#[test]
fn txn_reads_see_the_txn_s_earlier_writes_and_report_etcd_s_sub_headers() {
    let mut f = Fixture::new();
    f.put(b"a", b"old"); // 2
    let req = TxnRequest {
        success: vec![
            op_get(b"a"),
            op_put(b"a", b"new"),
            op_get(b"a"),
            op_delete(b"a", b""),
            op(Request::RequestRange(range_req(b"a", b"\0"))),
            op_delete(b"zzz", b""),
        ],
        ..TxnRequest::default()
    };
    let (resp, events) = f.txn(&req, &no_leases()).expect("txn");
    assert_eq!(revision_of(&resp.header), 3);
    let revs: Vec<i64> = resp
        .responses
        .iter()
        .map(|r| match &r.response {
            Some(Response::ResponseRange(r)) => revision_of(&r.header),
            Some(Response::ResponsePut(r)) => revision_of(&r.header),
            Some(Response::ResponseDeleteRange(r)) => revision_of(&r.header),
            _ => panic!("unexpected response"),
        })
        .collect();
    assert_eq!(revs, vec![2, 3, 3, 3, 3, 3]);
    let Some(Response::ResponseRange(first)) = &resp.responses[0].response else {
        panic!("range")
    };
    assert_eq!(first.kvs, vec![kv(b"a", b"old", 2, 2, 1)]);
    let Some(Response::ResponseRange(second)) = &resp.responses[2].response else {
        panic!("range")
    };
    assert_eq!(second.kvs, vec![kv(b"a", b"new", 2, 3, 2)]);
    let Some(Response::ResponseRange(third)) = &resp.responses[4].response else {
        panic!("range")
    };
    assert!(third.kvs.is_empty());
    assert_eq!(third.count, 0);
    // Both events' prev_kv is the state before the txn (etcd reads it at mod_revision - 1).
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.prev_kv == Some(kv(b"a", b"old", 2, 2, 1)))
    );
    assert_eq!(f.get(b"a"), None);
}

#[test]
fn txn_range_merges_the_txn_s_writes_in_key_order() {
    let mut f = abc_store();
    let req = TxnRequest {
        success: vec![
            op_put(b"aa", b"new"),
            op_delete(b"abc", b""),
            op_put(b"d", b"new"),
            op(Request::RequestRange(RangeRequest {
                limit: 4,
                ..range_req(b"a", b"\0")
            })),
        ],
        ..TxnRequest::default()
    };
    let (resp, _) = f.txn(&req, &no_leases()).expect("txn");
    let Some(Response::ResponseRange(range)) = &resp.responses[3].response else {
        panic!("range")
    };
    let keys: Vec<&[u8]> = range.kvs.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, vec![&b"a"[..], b"aa", b"ab", b"b"]);
    assert_eq!(range.count, 6);
    assert!(range.more);
}

#[test]
fn read_only_txn_reports_the_current_revision() {
    let mut f = Fixture::new();
    f.put(b"a", b"1");
    let req = TxnRequest {
        success: vec![op_get(b"a")],
        ..TxnRequest::default()
    };
    let (resp, events) = f.txn(&req, &no_leases()).expect("txn");
    assert_eq!(revision_of(&resp.header), 2);
    assert!(events.is_empty());
}

#[test]
fn nested_txn_runs_its_chosen_branch_and_has_an_all_zero_header() {
    let mut f = Fixture::new();
    f.put(b"k", b"1"); // 2
    let inner = TxnRequest {
        compare: vec![compare(
            b"k",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value(b"1".to_vec()),
        )],
        success: vec![op_put(b"inner-then", b"x"), op_get(b"k")],
        failure: vec![op_put(b"inner-else", b"x")],
    };
    let req = TxnRequest {
        success: vec![op_put(b"outer", b"y"), op(Request::RequestTxn(inner))],
        ..TxnRequest::default()
    };
    let (resp, events) = f.txn(&req, &no_leases()).expect("txn");
    assert_eq!(revision_of(&resp.header), 3);
    let Some(Response::ResponseTxn(nested)) = &resp.responses[1].response else {
        panic!("txn")
    };
    assert!(nested.succeeded);
    assert_eq!(nested.header, Some(ResponseHeader::default()));
    assert_eq!(nested.responses.len(), 2);
    assert!(f.get(b"inner-then").is_some());
    assert!(f.get(b"inner-else").is_none());
    let subs: Vec<i64> = events
        .iter()
        .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision))
        .collect();
    assert_eq!(subs, vec![3, 3]);
}

#[test]
fn nested_txn_compares_see_the_state_before_the_outer_txn() {
    let mut f = Fixture::new();
    let inner = TxnRequest {
        compare: vec![compare(
            b"k",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0),
        )],
        success: vec![op_put(b"saw-missing", b"x")],
        failure: vec![op_put(b"saw-put", b"x")],
    };
    let req = TxnRequest {
        success: vec![op_put(b"k", b"1"), op(Request::RequestTxn(inner))],
        ..TxnRequest::default()
    };
    f.txn(&req, &no_leases()).expect("txn");
    assert!(f.get(b"saw-missing").is_some());
}

#[test]
fn failing_txn_changes_nothing() {
    let mut f = Fixture::new();
    f.put(b"a", b"1");
    let cases: Vec<(TxnRequest, Error)> = vec![
        (
            TxnRequest {
                success: vec![
                    op_put(b"x", b"1"),
                    op(Request::RequestPut(PutRequest {
                        ignore_value: true,
                        ..put_req(b"missing", b"")
                    })),
                ],
                ..TxnRequest::default()
            },
            Error::KeyNotFound,
        ),
        (
            TxnRequest {
                success: vec![
                    op_put(b"x", b"1"),
                    op(Request::RequestPut(PutRequest {
                        lease: 42,
                        ..put_req(b"y", b"")
                    })),
                ],
                ..TxnRequest::default()
            },
            Error::LeaseNotFound,
        ),
        (
            TxnRequest {
                success: vec![
                    op_put(b"x", b"1"),
                    op(Request::RequestRange(RangeRequest {
                        revision: 9,
                        ..range_req(b"a", b"")
                    })),
                ],
                ..TxnRequest::default()
            },
            Error::FutureRevision,
        ),
    ];
    for (req, want) in cases {
        let mut batch = WriteBatch::new();
        assert_eq!(f.mvcc.txn(&req, &no_leases(), &mut batch), Err(want));
        assert!(batch.is_empty());
        assert_eq!(f.mvcc.current_revision(), 2);
    }
    assert!(f.get(b"x").is_none());
}

#[test]
fn txn_pre_checks_only_the_executed_branch() {
    let mut f = Fixture::new();
    let req = TxnRequest {
        success: vec![op_put(b"ok", b"1")],
        failure: vec![op(Request::RequestPut(PutRequest {
            lease: 42,
            ..put_req(b"bad", b"")
        }))],
        ..TxnRequest::default()
    };
    assert!(f.txn(&req, &no_leases()).expect("txn").0.succeeded);
}

#[test]
fn txn_put_check_errors_come_before_range_check_errors() {
    let mut f = Fixture::new();
    let req = TxnRequest {
        success: vec![
            op(Request::RequestRange(RangeRequest {
                revision: 99,
                ..range_req(b"a", b"")
            })),
            op(Request::RequestPut(PutRequest {
                lease: 42,
                ..put_req(b"bad", b"")
            })),
        ],
        ..TxnRequest::default()
    };
    let mut batch = WriteBatch::new();
    assert_eq!(
        f.mvcc.txn(&req, &no_leases(), &mut batch),
        Err(Error::LeaseNotFound)
    );
}

#[test]
fn txn_range_below_the_compacted_revision_is_compacted() {
    let mut f = Fixture::new();
    f.put(b"a", b"1");
    f.put(b"a", b"2");
    f.compact(3).expect("compact");
    let req = TxnRequest {
        success: vec![op(Request::RequestRange(RangeRequest {
            revision: 2,
            ..range_req(b"a", b"")
        }))],
        ..TxnRequest::default()
    };
    let mut batch = WriteBatch::new();
    assert_eq!(
        f.mvcc.txn(&req, &no_leases(), &mut batch),
        Err(Error::Compacted)
    );
}

// ---------------------------------------------------------------------------------------
// check::txn

fn txn_of(success: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        success,
        ..TxnRequest::default()
    }
}

#[test]
fn check_txn_rejects_more_ops_than_max_txn_ops_in_any_list() {
    let three = vec![op_get(b"a"), op_get(b"b"), op_get(b"c")];
    assert_eq!(check::txn(&txn_of(three.clone()), 3), Ok(()));
    assert_eq!(
        check::txn(&txn_of(three.clone()), 2),
        Err(Error::TooManyOps)
    );
    let failure = TxnRequest {
        failure: three.clone(),
        ..TxnRequest::default()
    };
    assert_eq!(check::txn(&failure, 2), Err(Error::TooManyOps));
    let cmp = compare(
        b"a",
        CompareTarget::Version,
        CompareResult::Equal,
        TargetUnion::Version(0),
    );
    let compares = TxnRequest {
        compare: vec![cmp; 3],
        ..TxnRequest::default()
    };
    assert_eq!(check::txn(&compares, 2), Err(Error::TooManyOps));
    // A nested txn may use only what its parent's largest list left over.
    let nested = txn_of(vec![
        op_get(b"a"),
        op(Request::RequestTxn(txn_of(vec![
            op_get(b"b"),
            op_get(b"c"),
        ]))),
    ]);
    assert_eq!(check::txn(&nested, 3), Err(Error::TooManyOps));
    assert_eq!(check::txn(&nested, 4), Ok(()));
}

#[test]
fn check_txn_rejects_empty_keys_and_empty_ops() {
    let empty_compare = TxnRequest {
        compare: vec![compare(
            b"",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0),
        )],
        ..TxnRequest::default()
    };
    assert_eq!(check::txn(&empty_compare, 128), Err(Error::EmptyKey));
    assert_eq!(
        check::txn(&txn_of(vec![op_put(b"", b"v")]), 128),
        Err(Error::EmptyKey)
    );
    let nested = txn_of(vec![op(Request::RequestTxn(txn_of(vec![op_delete(
        b"", b"",
    )])))]);
    assert_eq!(check::txn(&nested, 128), Err(Error::EmptyKey));
    assert_eq!(
        check::txn(&txn_of(vec![RequestOp { request: None }]), 128),
        Err(Error::KeyNotFound)
    );
    let bad_sort = op(Request::RequestRange(RangeRequest {
        sort_order: 9,
        ..range_req(b"a", b"")
    }));
    assert_eq!(
        check::txn(&txn_of(vec![bad_sort]), 128),
        Err(Error::InvalidSortOption)
    );
}

#[test]
fn check_txn_rejects_a_key_put_twice_in_one_branch() {
    assert_eq!(
        check::txn(&txn_of(vec![op_put(b"a", b"1"), op_put(b"a", b"2")]), 128),
        Err(Error::DuplicateKey)
    );
    let split = TxnRequest {
        success: vec![op_put(b"a", b"1")],
        failure: vec![op_put(b"a", b"2")],
        ..TxnRequest::default()
    };
    assert_eq!(check::txn(&split, 128), Ok(()));
}

#[test]
fn check_txn_rejects_a_put_inside_a_range_deleted_in_the_same_branch() {
    assert_eq!(
        check::txn(
            &txn_of(vec![op_delete(b"a", b"c"), op_put(b"b", b"1")]),
            128
        ),
        Err(Error::DuplicateKey)
    );
    assert_eq!(
        check::txn(&txn_of(vec![op_put(b"b", b"1"), op_delete(b"b", b"")]), 128),
        Err(Error::DuplicateKey)
    );
    assert_eq!(
        check::txn(
            &txn_of(vec![op_delete(b"a", b"c"), op_put(b"c", b"1")]),
            128
        ),
        Ok(())
    );
    // etcd 3.4 turns a "from key" delete into the interval [key, "\0"), which holds nothing.
    assert_eq!(
        check::txn(
            &txn_of(vec![op_delete(b"a", b"\0"), op_put(b"b", b"1")]),
            128
        ),
        Ok(())
    );
}

#[test]
fn check_txn_finds_duplicates_across_nested_txns() {
    let nested_put = |key: &[u8]| op(Request::RequestTxn(txn_of(vec![op_put(key, b"1")])));
    assert_eq!(
        check::txn(&txn_of(vec![op_put(b"a", b"1"), nested_put(b"a")]), 128),
        Err(Error::DuplicateKey)
    );
    assert_eq!(
        check::txn(&txn_of(vec![nested_put(b"a"), nested_put(b"a")]), 128),
        Err(Error::DuplicateKey)
    );
    let nested_delete = op(Request::RequestTxn(txn_of(vec![op_delete(b"a", b"z")])));
    assert_eq!(
        check::txn(&txn_of(vec![nested_delete, op_put(b"m", b"1")]), 128),
        Err(Error::DuplicateKey)
    );
    let then_else = op(Request::RequestTxn(TxnRequest {
        success: vec![op_put(b"a", b"1")],
        failure: vec![op_put(b"a", b"2")],
        ..TxnRequest::default()
    }));
    assert_eq!(check::txn(&txn_of(vec![then_else]), 128), Ok(()));
}

// ---------------------------------------------------------------------------------------
// Compaction

#[test]
fn compaction_keeps_the_newest_version_at_or_below_its_revision() {
    let mut f = Fixture::new();
    f.put(b"a", b"1"); // 2
    f.put(b"a", b"2"); // 3
    f.put(b"b", b"1"); // 4
    f.put(b"a", b"3"); // 5
    assert_eq!(f.compact(4), Ok(5));
    assert_eq!(f.mvcc.compacted_revision(), 4);
    // a@3 (newest <= 4), a@5, b@4 remain.
    assert_eq!(f.stored(Space::History), 3);
    assert_eq!(f.stored(Space::Revisions), 3);
    assert_eq!(f.get_at(b"a", 4), Ok(Some(kv(b"a", b"2", 2, 3, 2))));
    assert_eq!(f.get(b"a"), Some(kv(b"a", b"3", 2, 5, 3)));
}

#[test]
fn compaction_removes_a_key_whose_newest_version_is_a_deletion() {
    let mut f = Fixture::new();
    f.put(b"a", b"1"); // 2
    f.delete(b"a", b""); // 3
    f.put(b"b", b"1"); // 4
    f.compact(3).expect("compact");
    assert_eq!(f.stored(Space::History), 1);
    assert_eq!(f.stored(Space::Revisions), 1);
    assert_eq!(f.get_at(b"a", 3), Ok(None));
}

#[test]
fn later_compaction_drops_versions_an_earlier_one_kept() {
    let mut f = Fixture::new();
    f.put(b"a", b"1"); // 2
    f.put(b"b", b"1"); // 3
    f.compact(3).expect("compact");
    f.put(b"a", b"2"); // 4
    f.delete(b"b", b""); // 5
    f.put(b"c", b"1"); // 6
    f.compact(5).expect("compact");
    assert_eq!(f.stored(Space::History), 2, "a@4 and c@6");
    assert_eq!(f.keys(b"\0", b"\0"), vec![b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(f.get_at(b"a", 5), Ok(Some(kv(b"a", b"2", 2, 4, 2))));
}

#[test]
fn compaction_at_or_below_the_compacted_revision_or_above_current_fails() {
    let mut f = Fixture::new();
    f.put(b"a", b"1");
    f.put(b"a", b"2");
    assert_eq!(f.compact(4), Err(Error::FutureRevision));
    f.compact(2).expect("compact");
    assert_eq!(f.compact(2), Err(Error::Compacted));
    assert_eq!(f.compact(1), Err(Error::Compacted));
    assert_eq!(f.compact(3), Ok(3));
}

// ---------------------------------------------------------------------------------------
// HashKV

fn build(ops: &[(&[u8], Option<&[u8]>)]) -> Fixture {
    let mut f = Fixture::new();
    for (key, value) in ops {
        match value {
            Some(value) => {
                f.put(key, value);
            }
            None => {
                f.delete(key, b"");
            }
        }
    }
    f
}

#[test]
fn hash_kv_is_equal_for_equal_histories_and_differs_otherwise() {
    let history: Vec<(&[u8], Option<&[u8]>)> = vec![
        (b"a", Some(b"1")),
        (b"b", Some(b"2")),
        (b"a", None),
        (b"a", Some(b"3")),
    ];
    let one = build(&history);
    let two = build(&history);
    assert_eq!(one.mvcc.hash_kv(0), two.mvcc.hash_kv(0));
    assert_eq!(one.mvcc.hash_kv(3), two.mvcc.hash_kv(3));
    assert_ne!(one.mvcc.hash_kv(4), one.mvcc.hash_kv(5));
    let mut other = history.clone();
    other[1] = (b"b", Some(b"9"));
    assert_ne!(one.mvcc.hash_kv(0), build(&other).mvcc.hash_kv(0));
}

#[test]
fn hash_kv_of_an_empty_store_is_the_hash_of_the_bucket_name() {
    let f = Fixture::new();
    let mut crc = super::hash::Crc32c::new();
    crc.update(b"key");
    assert_eq!(f.mvcc.hash_kv(0), Ok((crc.finish(), -1)));
}

#[test]
fn hash_kv_checks_the_revision_like_etcd() {
    let mut f = build(&[(b"a", Some(b"1")), (b"a", Some(b"2")), (b"a", Some(b"3"))]);
    f.compact(3).expect("compact");
    assert_eq!(f.mvcc.hash_kv(3), Err(Error::Compacted));
    assert_eq!(f.mvcc.hash_kv(5), Err(Error::FutureRevision));
    let (_, compacted) = f.mvcc.hash_kv(4).expect("hash");
    assert_eq!(compacted, 3);
}

/// Expected values computed by etcd 3.4.23 (Debian's etcd-server) for the same history:
/// put a=1, put b=2, del a, put a=3, put c=4 (revisions 2..6), then `etcdctl endpoint
/// hashkv [--rev 5]` before and after `etcdctl compact 4`.
#[test]
fn hash_kv_matches_etcd_for_a_known_history() {
    let mut f = build(&[
        (b"a", Some(b"1")),
        (b"b", Some(b"2")),
        (b"a", None),
        (b"a", Some(b"3")),
        (b"c", Some(b"4")),
    ]);
    assert_eq!(f.mvcc.hash_kv(0), Ok((410_763_012, -1)));
    assert_eq!(f.mvcc.hash_kv(5), Ok((2_804_068_566, -1)));
    f.compact(4).expect("compact");
    assert_eq!(f.mvcc.hash_kv(0), Ok((2_897_012_457, 4)));
    assert_eq!(f.mvcc.hash_kv(5), Ok((1_767_588_491, 4)));
}

// ---------------------------------------------------------------------------------------
// Reopen and corruption

#[test]
fn reopened_store_has_the_same_revisions_and_data() {
    let mut f = abc_store();
    f.delete(b"ab", b"");
    f.compact(4).expect("compact");
    let reopened = Mvcc::open(f.engine.clone()).expect("reopen");
    assert_eq!(reopened.current_revision(), f.mvcc.current_revision());
    assert_eq!(reopened.compacted_revision(), 4);
    let all = range_req(b"\0", b"\0");
    assert_eq!(reopened.range(&all), f.mvcc.range(&all));
    assert_eq!(reopened.hash_kv(0), f.mvcc.hash_kv(0));
    assert_eq!(
        reopened.events_since(5, b"\0", b"\0", 0),
        f.mvcc.events_since(5, b"\0", b"\0", 0)
    );
}

#[test]
fn open_rejects_corrupt_meta() {
    let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
    let mut batch = WriteBatch::new();
    batch.put(Space::Meta, keys::META_CURRENT_REVISION, b"short".to_vec());
    engine.write(batch, Durability::Buffered).expect("write");
    assert!(Mvcc::open(engine).is_err());
}

#[test]
fn undecodable_stored_version_is_a_storage_error() {
    let f = Fixture::new();
    let mut batch = WriteBatch::new();
    let rev = super::revision::Revision::new(1, 0);
    batch.put(
        Space::History,
        keys::history_key(b"k", rev),
        vec![0xFF, 0xFF, 0xFF],
    );
    batch.put(Space::Latest, b"k".to_vec(), keys::revision_key(rev));
    f.write(batch);
    assert!(matches!(
        f.mvcc.range(&range_req(b"k", b"")),
        Err(Error::Storage(_))
    ));
}

#[test]
fn a_store_written_without_the_latest_index_is_indexed_when_opened() {
    let mut f = Fixture::new();
    // More keys than one indexing batch; some with two versions, one with a zero byte, one
    // deleted (its newest version is the tombstone).
    for i in 0..4200 {
        f.put(format!("k{i:05}").as_bytes(), b"v1");
    }
    for i in (0..4200).step_by(7) {
        f.put(format!("k{i:05}").as_bytes(), b"v2");
    }
    f.put(b"a\0b", b"zero");
    f.put(b"gone", b"x");
    f.delete(b"gone", b"");
    let indexed = f.entries(Space::Latest);
    assert_eq!(indexed.len(), 4200 + 2);
    // Forget the index, as in a store written before it existed.
    let mut batch = WriteBatch::new();
    for (key, _) in &indexed {
        batch.delete(Space::Latest, key.clone());
    }
    batch.delete(Space::Meta, keys::META_LATEST_INDEX.to_vec());
    f.write(batch);
    assert_eq!(f.stored(Space::Latest), 0);

    f.mvcc = Mvcc::open(f.engine.clone()).expect("reopen");
    assert_eq!(f.entries(Space::Latest), indexed);
    assert!(
        f.engine
            .get(Space::Meta, keys::META_LATEST_INDEX)
            .expect("get")
            .is_some()
    );
    let value = |f: &Fixture, key: &[u8]| f.get(key).map(|kv| kv.value);
    assert_eq!(value(&f, b"k00007"), Some(b"v2".to_vec()));
    assert_eq!(value(&f, b"k00008"), Some(b"v1".to_vec()));
    assert_eq!(value(&f, b"a\0b"), Some(b"zero".to_vec()));
    assert_eq!(value(&f, b"gone"), None);
}

#[test]
fn compaction_forgets_a_keys_newest_version_only_when_it_drops_it() {
    let mut f = Fixture::new();
    f.put(b"gone", b"x");
    f.delete(b"gone", b"");
    f.put(b"back", b"1");
    f.delete(b"back", b"");
    let compact_at = f.mvcc.current_revision();
    f.put(b"back", b"2");
    f.put(b"kept", b"v");
    f.compact(compact_at).expect("compact");
    assert_eq!(
        f.stored_keys(Space::Latest),
        vec![b"back".to_vec(), b"kept".to_vec()]
    );
    assert_eq!(f.get(b"back").map(|kv| kv.value), Some(b"2".to_vec()));
    assert_eq!(f.get(b"gone"), None);

    // A key whose whole history was compacted away starts over.
    let rev = f.put(b"gone", b"y");
    assert_eq!(f.get(b"gone"), Some(kv(b"gone", b"y", rev, rev, 1)));
    f.delete(b"back", b"");
    f.compact(f.mvcc.current_revision()).expect("compact");
    assert_eq!(
        f.stored_keys(Space::Latest),
        vec![b"gone".to_vec(), b"kept".to_vec()]
    );
}

#[test]
fn without_previous_values_a_put_event_has_the_previous_metadata_but_not_its_value() {
    // The same writes with previous values on and off.
    let run = |prev_values: bool| {
        let mut f = Fixture::new();
        f.mvcc.set_prev_values(prev_values);
        let granted = leases(&[7]);
        let leased = PutRequest {
            lease: 7,
            ..put_req(b"k", b"v1")
        };
        f.try_put(&leased, &granted).expect("put");
        let (_, _, plain) = f.try_put(&put_req(b"k", b"v2"), &granted).expect("put");
        let asked = PutRequest {
            prev_kv: true,
            ..put_req(b"k", b"v3")
        };
        let (_, returned, asked_events) = f.try_put(&asked, &granted).expect("put");
        let (_, _, created) = f.try_put(&put_req(b"new", b"n"), &granted).expect("put");
        f.delete(b"new", b"");
        let (_, _, recreated) = f.try_put(&put_req(b"new", b"n2"), &granted).expect("put");
        (f, [plain, asked_events, created, recreated], returned)
    };
    let (on, on_events, on_returned) = run(true);
    let (off, off_events, off_returned) = run(false);
    // Storage is the same, byte for byte.
    for space in Space::ALL {
        assert_eq!(
            on.entries(space),
            off.entries(space),
            "space {}",
            space.name()
        );
    }
    // prev_kv asked for by the request is whole either way, in the response and the event.
    assert_eq!(on_returned, off_returned);
    assert_eq!(
        off_returned.as_ref().map(|kv| kv.value.as_slice()),
        Some(&b"v2"[..])
    );
    assert_eq!(on_events[1], off_events[1]);
    // A creation has no prev_kv either way.
    assert_eq!(on_events[2..], off_events[2..]);
    assert_eq!(off_events[3][0].prev_kv, None);
    // The plain update's prev_kv: every field but the value.
    let whole = on_events[0][0].prev_kv.clone().expect("prev_kv");
    assert_eq!(whole.value, b"v1");
    assert_eq!(whole.lease, 7);
    assert_eq!(
        off_events[0][0].prev_kv,
        Some(KeyValue {
            value: Vec::new(),
            ..whole
        })
    );
    assert_eq!(on_events[0][0].kv, off_events[0][0].kv);
}

#[test]
fn a_latest_entry_without_metadata_is_read_through_history() {
    let mut f = Fixture::new();
    f.mvcc.set_prev_values(false);
    let granted = leases(&[7]);
    let leased = PutRequest {
        lease: 7,
        ..put_req(b"k", b"v1")
    };
    let (first, _, _) = f.try_put(&leased, &granted).expect("put");
    // As a store written before Latest held metadata: the revision alone.
    let mut batch = WriteBatch::new();
    let rev = keys::revision_key(super::revision::Revision::new(first, 0));
    batch.put(Space::Latest, b"k".to_vec(), rev.to_vec());
    f.write(batch);
    let (_, _, events) = f.try_put(&put_req(b"k", b"v2"), &granted).expect("put");
    let prev = events[0].prev_kv.clone().expect("prev_kv");
    assert_eq!(
        (
            prev.create_revision,
            prev.mod_revision,
            prev.version,
            prev.lease
        ),
        (first, first, 1, 7)
    );
    let kv = f.get(b"k").expect("exists");
    assert_eq!(
        (kv.version, kv.create_revision, kv.value),
        (2, first, b"v2".to_vec())
    );
}
