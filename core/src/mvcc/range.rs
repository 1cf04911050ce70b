//! Range: etcd's `applierV3backend.Range` over `storeTxnRead.rangeKeys`.
//!
//! * Revision: 0 (or negative) reads the reader's current revision; above it is
//!   `FutureRevision`; below the compacted revision is `Compacted` (equal is allowed).
//! * `count` is every key in the range at that revision, before the min/max filters and
//!   the limit; `count_only` returns no kvs and `more = false`.
//! * Filters (`min/max_mod/create_revision`, 0 = off) drop kvs; then the sort; then the
//!   limit, with `more` set when more kvs than `limit` survived the filters.
//! * Sort: target other than KEY with order NONE means ASCEND. Ties keep ascending key
//!   order for both directions (a stable sort; etcd's Go `sort.Sort` behaves so on small
//!   inputs and is unspecified on large ones).
//! * `keys_only` clears values after sorting (a VALUE sort still sorts by value).
//! * The header carries the reader's current revision, not the requested one.
//!
//! Memory: without a sort only `limit` kvs are kept while the rest are counted; with a sort
//! and a limit, only the best `limit` are kept (a bounded heap).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;

use super::history::KeyRange;
use super::view::Reader;
use crate::Error;
use crate::api::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::api::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use crate::api::mvccpb::KeyValue;

/// The revision a range request reads, checked as etcd's `rangeKeys` does.
pub(crate) fn resolve_revision(requested: i64, current: i64, compacted: i64) -> Result<i64, Error> {
    if requested > current {
        return Err(Error::FutureRevision);
    }
    let rev = if requested <= 0 { current } else { requested };
    if rev < compacted {
        return Err(Error::Compacted);
    }
    Ok(rev)
}

/// Executes `req` against `reader`.
pub(crate) fn execute(reader: &Reader<'_>, req: &RangeRequest) -> Result<RangeResponse, Error> {
    let sort = Sort::of(req)?;
    let rev = resolve_revision(req.revision, reader.current, reader.compacted)?;
    let range = KeyRange::new(&req.key, &req.range_end);
    let mut collector = Collector::new(req, sort);
    reader.at(rev).for_each_live(&range, &mut |kv| {
        collector.offer(kv);
        ControlFlow::Continue(())
    })?;
    let (kvs, more, count) = collector.finish();
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: reader.current,
            ..ResponseHeader::default()
        }),
        kvs,
        more,
        count,
    })
}

/// The effective ordering of a range response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sort {
    target: SortTarget,
    descending: bool,
}

impl Sort {
    /// `None` keeps storage (ascending key) order.
    fn of(req: &RangeRequest) -> Result<Option<Sort>, Error> {
        let order = SortOrder::try_from(req.sort_order).map_err(|_| Error::InvalidSortOption)?;
        let target = SortTarget::try_from(req.sort_target).map_err(|_| Error::InvalidSortOption)?;
        let order = match (order, target) {
            (SortOrder::None, SortTarget::Key) => return Ok(None),
            (SortOrder::None, _) => SortOrder::Ascend,
            (order, _) => order,
        };
        if order == SortOrder::Ascend && target == SortTarget::Key {
            return Ok(None);
        }
        Ok(Some(Sort {
            target,
            descending: order == SortOrder::Descend,
        }))
    }

    fn compare(self, a: &Ranked, b: &Ranked) -> Ordering {
        let by_target = match self.target {
            SortTarget::Key => a.seq.cmp(&b.seq),
            SortTarget::Version => a.kv.version.cmp(&b.kv.version),
            SortTarget::Create => a.kv.create_revision.cmp(&b.kv.create_revision),
            SortTarget::Mod => a.kv.mod_revision.cmp(&b.kv.mod_revision),
            SortTarget::Value => a.kv.value.cmp(&b.kv.value),
        };
        let by_target = if self.descending {
            by_target.reverse()
        } else {
            by_target
        };
        by_target.then(a.seq.cmp(&b.seq))
    }
}

/// A kv with its position in key order, ordered by the request's sort.
struct Ranked {
    sort: Sort,
    seq: u64,
    kv: KeyValue,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort.compare(self, other)
    }
}

/// Min/max mod/create revision filters (0 = no bound).
#[derive(Debug, Clone, Copy)]
struct Filters {
    min_mod: i64,
    max_mod: i64,
    min_create: i64,
    max_create: i64,
}

impl Filters {
    fn admits(&self, kv: &KeyValue) -> bool {
        !((self.max_mod != 0 && kv.mod_revision > self.max_mod)
            || (self.min_mod != 0 && kv.mod_revision < self.min_mod)
            || (self.max_create != 0 && kv.create_revision > self.max_create)
            || (self.min_create != 0 && kv.create_revision < self.min_create))
    }
}

/// Accumulates a range response while the range is scanned.
struct Collector {
    count_only: bool,
    keys_only: bool,
    /// 0 = unlimited.
    limit: usize,
    filters: Filters,
    sort: Option<Sort>,
    /// Keys in the range (etcd's `count`).
    count: i64,
    /// Keys that passed the filters.
    admitted: usize,
    /// Kept kvs in key order (no sort).
    in_order: Vec<KeyValue>,
    /// Best kvs so far under the sort; the worst on top.
    ranked: BinaryHeap<Ranked>,
}

impl Collector {
    fn new(req: &RangeRequest, sort: Option<Sort>) -> Self {
        Collector {
            count_only: req.count_only,
            keys_only: req.keys_only,
            limit: usize::try_from(req.limit).unwrap_or(0),
            filters: Filters {
                min_mod: req.min_mod_revision,
                max_mod: req.max_mod_revision,
                min_create: req.min_create_revision,
                max_create: req.max_create_revision,
            },
            sort,
            count: 0,
            admitted: 0,
            in_order: Vec::new(),
            ranked: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, mut kv: KeyValue) {
        self.count += 1;
        if self.count_only || !self.filters.admits(&kv) {
            return;
        }
        self.admitted += 1;
        let Some(sort) = self.sort else {
            if self.limit == 0 || self.in_order.len() < self.limit {
                if self.keys_only {
                    kv.value.clear();
                }
                self.in_order.push(kv);
            }
            return;
        };
        let seq = self.admitted as u64;
        self.ranked.push(Ranked { sort, seq, kv });
        if self.limit != 0 && self.ranked.len() > self.limit {
            self.ranked.pop();
        }
    }

    /// `(kvs, more, count)`.
    fn finish(self) -> (Vec<KeyValue>, bool, i64) {
        let more = self.limit != 0 && self.admitted > self.limit;
        let mut kvs = match self.sort {
            None => self.in_order,
            Some(_) => self
                .ranked
                .into_sorted_vec()
                .into_iter()
                .map(|ranked| ranked.kv)
                .collect(),
        };
        if self.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        (kvs, more, self.count)
    }
}
