//! Key-range permission checks, as etcd's `auth/range_perm_cache.go` does them over
//! `pkg/adt`'s interval tree of `BytesAffineComparable`s.
//!
//! A permission is the interval `[key, range_end)`; a permission with no `range_end` is the
//! single key `[key, key + "\0")`; a `range_end` of `"\0"` means "to the end of the key
//! space". In etcd's affine byte order the empty byte string is +infinity, which is how the
//! open end is represented here too ([`affine_cmp`]).
//!
//! A single-key request is permitted when some permission of the right type contains the
//! key (`Intersects` of the point); a range request when the permissions of the right type,
//! taken together, cover the whole requested range without a gap (`Contains`).

use std::cmp::Ordering;

use crate::api::authpb::{Permission, Role, permission::Type};

/// The kind of access a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading (Range, watch, txn compares, `prev_kv`).
    Read,
    /// Writing (Put, DeleteRange, lease revoke).
    Write,
}

/// Compares two interval bounds in etcd's affine byte order: the empty string is greater
/// than every other (it stands for +infinity).
pub fn affine_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

/// A half-open interval `[begin, end)` in affine order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interval {
    begin: Vec<u8>,
    end: Vec<u8>,
}

impl Interval {
    fn point(key: &[u8]) -> Interval {
        let mut end = key.to_vec();
        end.push(0);
        Interval {
            begin: key.to_vec(),
            end,
        }
    }

    /// The interval a stored permission grants (`getMergedPerms`).
    fn of_permission(perm: &Permission) -> Interval {
        if perm.range_end.is_empty() {
            return Interval::point(&perm.key);
        }
        Interval {
            begin: perm.key.clone(),
            end: open_end(&perm.range_end),
        }
    }

    fn overlaps(&self, other: &Interval) -> bool {
        affine_cmp(&self.begin, &other.end) == Ordering::Less
            && affine_cmp(&self.end, &other.begin) == Ordering::Greater
    }
}

/// `"\0"` as a range end means "no end": the empty (infinite) bound.
fn open_end(range_end: &[u8]) -> Vec<u8> {
    if range_end == [0] {
        Vec::new()
    } else {
        range_end.to_vec()
    }
}

fn grants(perm: &Permission, access: Access) -> bool {
    let kind = Type::try_from(perm.perm_type).unwrap_or(Type::Read);
    matches!(
        (kind, access),
        (Type::Readwrite, _) | (Type::Read, Access::Read) | (Type::Write, Access::Write)
    )
}

/// Whether `roles` together permit `access` to `key` (with no `range_end`: the one key) or
/// to the range `[key, range_end)` (`isRangeOpPermitted`).
pub fn permitted<'a>(
    roles: impl IntoIterator<Item = &'a Role>,
    key: &[u8],
    range_end: &[u8],
    access: Access,
) -> bool {
    let granted: Vec<Interval> = roles
        .into_iter()
        .flat_map(|role| role.key_permission.iter())
        .filter(|perm| grants(perm, access))
        .map(Interval::of_permission)
        .collect();
    if range_end.is_empty() {
        let point = Interval::point(key);
        return granted.iter().any(|ivl| ivl.overlaps(&point));
    }
    let wanted = Interval {
        begin: key.to_vec(),
        end: open_end(range_end),
    };
    covers(granted, &wanted)
}

/// adt's `IntervalTree.Contains`: the granted intervals that overlap `wanted`, in ascending
/// order of their beginnings, join without a gap and span all of it.
fn covers(mut granted: Vec<Interval>, wanted: &Interval) -> bool {
    granted.retain(|ivl| ivl.overlaps(wanted));
    granted.sort_by(|a, b| affine_cmp(&a.begin, &b.begin));
    let mut iter = granted.into_iter();
    let Some(first) = iter.next() else {
        return false;
    };
    let min_begin = first.begin;
    let mut max_end = first.end;
    for ivl in iter {
        if affine_cmp(&max_end, &ivl.begin) == Ordering::Less {
            return false;
        }
        if affine_cmp(&ivl.end, &max_end) == Ordering::Greater {
            max_end = ivl.end;
        }
    }
    affine_cmp(&max_end, &wanted.end) != Ordering::Less
        && affine_cmp(&min_begin, &wanted.begin) != Ordering::Greater
}
