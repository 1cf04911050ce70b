//! Lease tests: the applied half through the state machine on a [`MemEngine`], the timing
//! half with a fake clock (durations handed to `tick`/`promote`; nothing sleeps).

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;

use super::{
    DEFAULT_MIN_TTL_SECS, FOREVER_TTL_SECS, LEASE_REVOKE_RATE_PER_SEC, RenewError, TimeToLive,
    min_ttl_secs,
};
use crate::Error;
use crate::api::cairnpb::{InternalRequest, internal_request::Request};
use crate::api::etcdserverpb::request_op::Request as OpRequest;
use crate::api::etcdserverpb::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use crate::api::mvccpb::{Event, event::EventType};
use crate::apply::{Response, StateMachine};
use crate::storage::Engine;
use crate::storage::mem::MemEngine;

const SEC: Duration = Duration::from_secs(1);
/// etcd's default election timeout (10 ticks of 100 ms).
const ELECTION: Duration = Duration::from_millis(1000);

/// A state machine on a [`MemEngine`], fed encoded log entries one index at a time.
struct Fixture {
    engine: Arc<dyn Engine>,
    sm: StateMachine,
    index: u64,
}

impl Fixture {
    fn new() -> Self {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let sm = StateMachine::open(engine.clone()).expect("open");
        Fixture {
            engine,
            sm,
            index: 0,
        }
    }

    /// The same engine opened again, as after a restart.
    fn reopen(self) -> Self {
        let sm = StateMachine::open(self.engine.clone()).expect("reopen");
        Fixture {
            engine: self.engine,
            sm,
            index: self.index,
        }
    }

    fn apply_with_id(
        &mut self,
        id: u64,
        request: Request,
    ) -> (Result<Response, Error>, Vec<Event>) {
        self.index += 1;
        let data = InternalRequest {
            auth: None,
            id,
            request: Some(request),
        }
        .encode_to_vec();
        let applied = self
            .sm
            .apply(self.index, &data)
            .expect("apply")
            .expect("a request");
        (applied.result, applied.events)
    }

    fn apply(&mut self, request: Request) -> (Result<Response, Error>, Vec<Event>) {
        self.apply_with_id(self.index + 1000, request)
    }

    fn grant(&mut self, id: i64, ttl: i64) -> Result<(i64, i64), Error> {
        match self
            .apply(Request::LeaseGrant(LeaseGrantRequest { id, ttl }))
            .0?
        {
            Response::LeaseGrant(r) => Ok((r.id, r.ttl)),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn revoke(&mut self, id: i64) -> (Result<Response, Error>, Vec<Event>) {
        self.apply(Request::LeaseRevoke(LeaseRevokeRequest { id }))
    }

    fn put(&mut self, key: &str, lease: i64) -> Result<(), Error> {
        let req = PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            lease,
            ..PutRequest::default()
        };
        self.apply(Request::Put(req)).0.map(|_| ())
    }

    fn delete(&mut self, key: &str) {
        let req = DeleteRangeRequest {
            key: key.into(),
            ..DeleteRangeRequest::default()
        };
        self.apply(Request::DeleteRange(req)).0.expect("delete");
    }

    /// The live keys, in order, with their lease.
    fn keys(&self) -> Vec<(String, i64)> {
        let req = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..RangeRequest::default()
        };
        let resp = self.sm.range(&req).expect("range");
        resp.kvs
            .into_iter()
            .map(|kv| (String::from_utf8(kv.key).expect("utf8"), kv.lease))
            .collect()
    }

    fn attached(&self, id: i64) -> Vec<String> {
        let keys = self.sm.with_lessor(|l| l.keys(id)).expect("keys");
        keys.into_iter()
            .map(|k| String::from_utf8(k).expect("utf8"))
            .collect()
    }

    fn ttl(&self, id: i64) -> Option<TimeToLive> {
        self.sm.with_lessor(|l| l.time_to_live(id))
    }

    fn tick(&self, now: Duration) -> Vec<i64> {
        self.sm.with_lessor(|l| {
            l.tick(now);
            l.check_invariants();
            l.expired(usize::MAX, 10 * SEC)
        })
    }

    fn promote(&self, now: Duration) {
        self.sm.with_lessor(|l| {
            l.promote(now, ELECTION);
            l.check_invariants();
        });
    }
}

fn txn_put(key: &str, lease: i64) -> RequestOp {
    let put = PutRequest {
        key: key.into(),
        value: b"t".to_vec(),
        lease,
        ..PutRequest::default()
    };
    RequestOp {
        request: Some(OpRequest::RequestPut(put)),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---- granting and revoking (applied) ----------------------------------------------------

#[test]
fn grant_without_id_takes_the_request_id_without_its_sign_bit() {
    let mut f = Fixture::new();
    let (result, _) = f.apply_with_id(
        0x8000_0000_0000_0007,
        Request::LeaseGrant(LeaseGrantRequest { id: 0, ttl: 60 }),
    );
    let Ok(Response::LeaseGrant(resp)) = result else {
        panic!("{result:?}")
    };
    assert_eq!((resp.id, resp.ttl), (7, 60));
    assert_eq!(
        resp.header.expect("header").revision,
        1,
        "a grant changes no revision"
    );
    assert!(f.sm.with_lessor(|l| l.contains(7)));
}

#[test]
fn grant_with_id_keeps_it_and_a_second_grant_of_it_is_lease_exists() {
    let mut f = Fixture::new();
    assert_eq!(f.grant(42, 60), Ok((42, 60)));
    assert_eq!(f.grant(42, 30), Err(Error::LeaseExists));
    assert_eq!(
        f.ttl(42).map(|t| t.granted_ttl_secs),
        Some(60),
        "the first grant stands"
    );
}

#[test]
fn ttl_below_the_minimum_is_raised_to_it() {
    let mut f = Fixture::new();
    assert_eq!(f.grant(1, 1), Ok((1, 2)), "etcd's default minimum is 2 s");
    assert_eq!(f.grant(2, -5), Ok((2, 2)));
    f.sm.with_lessor(|l| l.set_min_ttl_secs(7));
    assert_eq!(f.grant(3, 5), Ok((3, 7)));
    assert_eq!(
        f.ttl(1).map(|t| t.granted_ttl_secs),
        Some(7),
        "existing leases are raised too"
    );
}

#[test]
fn ttl_above_the_maximum_is_too_large() {
    let mut f = Fixture::new();
    assert_eq!(f.grant(1, 9_000_000_001), Err(Error::LeaseTtlTooLarge));
    assert_eq!(f.grant(1, 9_000_000_000), Ok((1, 9_000_000_000)));
}

#[test]
fn min_ttl_is_one_and_a_half_election_timeouts_rounded_up_to_seconds() {
    assert_eq!(
        min_ttl_secs(10, Duration::from_millis(100)),
        DEFAULT_MIN_TTL_SECS
    );
    assert_eq!(DEFAULT_MIN_TTL_SECS, 2);
    assert_eq!(
        min_ttl_secs(5, Duration::from_millis(100)),
        1,
        "7 ticks: 0.7 s -> 1 s"
    );
    assert_eq!(
        min_ttl_secs(50, Duration::from_millis(100)),
        8,
        "75 ticks: 7.5 s -> 8 s"
    );
}

#[test]
fn revoking_an_unknown_lease_is_not_found_and_changes_nothing() {
    let mut f = Fixture::new();
    let (result, events) = f.revoke(99);
    assert_eq!(result, Err(Error::LeaseNotFound));
    assert!(events.is_empty());
}

#[test]
fn putting_with_an_unknown_lease_is_not_found() {
    let mut f = Fixture::new();
    assert_eq!(f.put("k", 5), Err(Error::LeaseNotFound));
    f.grant(5, 60).expect("grant");
    assert_eq!(f.put("k", 5), Ok(()));
}

#[test]
fn revoke_deletes_every_attached_key_in_one_revision_with_delete_events() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    f.put("c", 1).expect("put");
    f.put("a", 1).expect("put");
    f.put("keep", 0).expect("put");
    f.put("b", 1).expect("put");
    let before = f.sm.current_revision();
    let (result, events) = f.revoke(1);
    let Ok(Response::LeaseRevoke(resp)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        resp.header.expect("header").revision,
        before + 1,
        "one revision for all keys"
    );
    let deleted: Vec<(i32, Vec<u8>, i64, i64)> = events
        .iter()
        .map(|e| {
            let kv = e.kv.clone().expect("kv");
            (
                e.r#type,
                kv.key,
                kv.mod_revision,
                e.prev_kv.as_ref().expect("prev_kv").lease,
            )
        })
        .collect();
    let delete = EventType::Delete as i32;
    assert_eq!(
        deleted,
        vec![
            (delete, b"a".to_vec(), before + 1, 1),
            (delete, b"b".to_vec(), before + 1, 1),
            (delete, b"c".to_vec(), before + 1, 1),
        ],
        "DELETE events in key order, each with its prev_kv"
    );
    assert_eq!(f.keys(), vec![("keep".to_owned(), 0)]);
    assert!(!f.sm.with_lessor(|l| l.contains(1)));
    assert!(f.attached(1).is_empty(), "no attachment outlives its lease");
}

#[test]
fn revoking_a_lease_with_no_keys_makes_no_revision() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    let before = f.sm.current_revision();
    let (result, events) = f.revoke(1);
    let Ok(Response::LeaseRevoke(resp)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(resp.header.expect("header").revision, before);
    assert!(events.is_empty());
}

#[test]
fn overwriting_a_key_moves_it_to_the_new_lease() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    f.grant(2, 60).expect("grant");
    f.put("k", 1).expect("put");
    f.put("k", 2).expect("put");
    assert!(f.attached(1).is_empty());
    assert_eq!(f.attached(2), vec!["k"]);
    assert!(
        f.revoke(1).1.is_empty(),
        "the old lease no longer owns the key"
    );
    assert_eq!(f.keys(), vec![("k".to_owned(), 2)]);
    assert_eq!(f.revoke(2).1.len(), 1);
    assert!(f.keys().is_empty());
}

#[test]
fn overwriting_without_a_lease_detaches_the_key() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    f.put("k", 1).expect("put");
    f.put("k", 0).expect("put");
    assert!(f.attached(1).is_empty());
    f.revoke(1).0.expect("revoke");
    assert_eq!(f.keys(), vec![("k".to_owned(), 0)]);
}

#[test]
fn ignore_lease_keeps_the_key_on_its_lease() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    f.put("k", 1).expect("put");
    let req = PutRequest {
        key: b"k".to_vec(),
        value: b"w".to_vec(),
        ignore_lease: true,
        ..PutRequest::default()
    };
    f.apply(Request::Put(req)).0.expect("put");
    assert_eq!(f.attached(1), vec!["k"]);
}

#[test]
fn deleting_a_key_detaches_it() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    f.put("k", 1).expect("put");
    f.delete("k");
    assert!(f.attached(1).is_empty());
    f.put("k", 0).expect("recreate without a lease");
    assert!(f.revoke(1).1.is_empty());
    assert_eq!(f.keys(), vec![("k".to_owned(), 0)]);
}

#[test]
fn txn_puts_attach_and_txn_deletes_detach() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    let txn = TxnRequest {
        success: vec![txn_put("x", 1), txn_put("y", 1)],
        ..TxnRequest::default()
    };
    f.apply(Request::Txn(txn)).0.expect("txn");
    assert_eq!(f.attached(1), vec!["x", "y"]);
    let del = DeleteRangeRequest {
        key: b"x".to_vec(),
        ..DeleteRangeRequest::default()
    };
    let txn = TxnRequest {
        success: vec![RequestOp {
            request: Some(OpRequest::RequestDeleteRange(del)),
        }],
        ..TxnRequest::default()
    };
    f.apply(Request::Txn(txn)).0.expect("txn");
    assert_eq!(f.attached(1), vec!["y"]);
}

#[test]
fn a_failed_txn_attaches_nothing() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    let txn = TxnRequest {
        success: vec![txn_put("x", 1), txn_put("y", 9)],
        ..TxnRequest::default()
    };
    assert_eq!(f.apply(Request::Txn(txn)).0, Err(Error::LeaseNotFound));
    assert!(f.attached(1).is_empty());
    assert!(f.keys().is_empty());
}

#[test]
fn leases_and_attachments_survive_reopening_the_state_machine() {
    let mut f = Fixture::new();
    f.grant(1, 60).expect("grant");
    f.grant(2, 1).expect("grant");
    f.put("a", 1).expect("put");
    f.put("b", 1).expect("put");
    let mut f = f.reopen();
    assert!(
        !f.sm.with_lessor(|l| l.is_primary()),
        "a reopened lessor waits for promote"
    );
    assert_eq!(f.sm.with_lessor(|l| l.leases()), vec![1, 2]);
    assert_eq!(
        f.ttl(2).map(|t| t.granted_ttl_secs),
        Some(2),
        "granted TTLs are kept"
    );
    assert_eq!(f.ttl(1).map(|t| t.remaining_secs), Some(FOREVER_TTL_SECS));
    assert_eq!(f.attached(1), vec!["a", "b"]);
    assert_eq!(f.grant(1, 5), Err(Error::LeaseExists));
    assert_eq!(f.revoke(1).1.len(), 2);
    assert!(f.keys().is_empty());
}

// ---- timing (leader only, fake clock) ---------------------------------------------------

#[test]
fn a_follower_never_expires_a_lease() {
    let mut f = Fixture::new();
    f.grant(1, 5).expect("grant");
    assert!(f.tick(secs(1_000_000)).is_empty());
    assert_eq!(f.ttl(1).map(|t| t.remaining_secs), Some(FOREVER_TTL_SECS));
    assert_eq!(
        f.sm.with_lessor(|l| l.renew(1)),
        Err(RenewError::NotPrimary)
    );
}

#[test]
fn a_lease_expires_one_ttl_after_the_tick_that_follows_its_grant() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    f.grant(1, 5).expect("grant");
    assert!(f.tick(secs(10)).is_empty(), "the TTL starts at this tick");
    assert!(f.tick(secs(15) - Duration::from_nanos(1)).is_empty());
    assert_eq!(f.tick(secs(15)), vec![1]);
}

#[test]
fn renewing_restarts_the_full_ttl() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    f.grant(1, 5).expect("grant");
    f.tick(secs(0));
    f.tick(secs(4));
    assert_eq!(f.sm.with_lessor(|l| l.renew(1)), Ok(5));
    assert!(f.tick(secs(4) + Duration::from_millis(100)).is_empty());
    assert!(
        f.tick(secs(9)).is_empty(),
        "5 s from the renewal's tick, not from the grant"
    );
    assert_eq!(f.tick(secs(9) + Duration::from_millis(100)), vec![1]);
}

#[test]
fn expired_leases_come_soonest_first_up_to_the_limit() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    for (id, ttl) in [(1, 30), (2, 10), (3, 20), (4, 100)] {
        f.grant(id, ttl).expect("grant");
    }
    f.tick(secs(0));
    let first = f.sm.with_lessor(|l| {
        l.tick(secs(50));
        l.expired(2, 10 * SEC)
    });
    assert_eq!(first, vec![2, 3]);
    assert_eq!(f.sm.with_lessor(|l| l.expired(10, 10 * SEC)), vec![1]);
}

#[test]
fn an_expired_lease_is_reported_again_only_after_the_retry_interval() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    f.grant(1, 5).expect("grant");
    f.tick(secs(0));
    assert_eq!(f.tick(secs(5)), vec![1]);
    assert!(f.tick(secs(6)).is_empty(), "its revoke is under way");
    assert_eq!(
        f.tick(secs(15)),
        vec![1],
        "the revoke was lost: report it again"
    );
    f.revoke(1).0.expect("revoke");
    assert!(f.tick(secs(100)).is_empty());
}

#[test]
fn renewing_an_expired_lease_waits_for_its_revoke() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    f.grant(1, 5).expect("grant");
    f.tick(secs(0));
    f.tick(secs(6));
    assert_eq!(f.sm.with_lessor(|l| l.renew(1)), Err(RenewError::Expired));
    f.revoke(1).0.expect("revoke");
    assert_eq!(f.sm.with_lessor(|l| l.renew(1)), Err(RenewError::NotFound));
}

#[test]
fn promote_gives_every_lease_its_full_ttl_plus_an_election_timeout() {
    let mut f = Fixture::new();
    f.grant(1, 5).expect("granted while a follower");
    f.promote(secs(0));
    f.grant(2, 5).expect("grant");
    f.tick(secs(0));
    f.tick(secs(3));
    // The leader changes: the new one knows nothing of the last renewals.
    f.sm.with_lessor(|l| l.demote());
    f.promote(secs(4));
    assert!(
        f.tick(secs(9)).is_empty(),
        "no lease expires before TTL + election timeout"
    );
    assert!(f.tick(secs(10) - Duration::from_nanos(1)).is_empty());
    assert_eq!(f.tick(secs(10)), vec![1, 2]);
}

#[test]
fn promote_spreads_piled_up_expiries_to_three_quarters_of_the_revoke_rate() {
    let mut f = Fixture::new();
    let count = 2 * LEASE_REVOKE_RATE_PER_SEC as i64;
    for id in 1..=count {
        f.grant(id, 10).expect("grant");
    }
    f.promote(secs(0));
    let first_expiry = secs(10) + ELECTION;
    let mut per_second = std::collections::BTreeMap::new();
    let mut last = Duration::ZERO;
    for step in 0..200 {
        let now = first_expiry + Duration::from_millis(100 * step);
        let expired = f.sm.with_lessor(|l| {
            l.tick(now);
            l.expired(usize::MAX, secs(1000)).len()
        });
        *per_second.entry(step / 10).or_insert(0) += expired;
        if expired > 0 {
            last = now;
        }
    }
    assert_eq!(
        per_second.values().sum::<usize>(),
        count as usize,
        "every lease expires"
    );
    assert!(
        per_second.values().all(|&n| n <= 751),
        "at most 750 per second: {per_second:?}"
    );
    assert!(last > first_expiry + secs(1), "some were delayed");
}

#[test]
fn time_to_live_reports_whole_seconds_strictly_below_the_time_left() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    f.grant(1, 10).expect("grant");
    let ttl = |f: &Fixture| f.ttl(1).map(|t| (t.remaining_secs, t.granted_ttl_secs));
    assert_eq!(
        ttl(&f),
        Some((9, 10)),
        "just granted: a little under 10 s left"
    );
    f.tick(secs(100));
    assert_eq!(ttl(&f), Some((9, 10)));
    f.tick(secs(100) + Duration::from_millis(500));
    assert_eq!(ttl(&f), Some((9, 10)));
    f.tick(secs(101));
    assert_eq!(ttl(&f), Some((8, 10)));
    f.tick(secs(110) + Duration::from_millis(1500));
    assert_eq!(
        ttl(&f),
        Some((-1, 10)),
        "expired, its revoke not yet applied"
    );
    assert_eq!(f.ttl(2), None);
}

#[test]
fn leases_are_listed_soonest_expiry_first() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    for (id, ttl) in [(1, 30), (2, 10), (3, 20)] {
        f.grant(id, ttl).expect("grant");
    }
    f.tick(secs(0));
    assert_eq!(f.sm.with_lessor(|l| l.leases()), vec![2, 3, 1]);
    f.tick(secs(8));
    f.sm.with_lessor(|l| l.renew(2)).expect("renew");
    assert_eq!(
        f.sm.with_lessor(|l| l.leases()),
        vec![2, 3, 1],
        "pending: expires 10 s from now"
    );
    f.tick(secs(15));
    assert_eq!(f.sm.with_lessor(|l| l.leases()), vec![3, 2, 1]);
}

#[test]
fn a_revoked_lease_is_no_longer_timed() {
    let mut f = Fixture::new();
    f.promote(secs(0));
    f.grant(1, 5).expect("grant");
    f.grant(2, 5).expect("grant");
    f.tick(secs(0));
    f.revoke(1).0.expect("revoke");
    f.sm.with_lessor(|l| l.renew(2)).expect("renew");
    f.revoke(2).0.expect("revoke");
    assert!(f.tick(secs(100)).is_empty());
}
