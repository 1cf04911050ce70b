//! The [`Lessor`]: the granted leases and, on the leader, when each expires (etcd's
//! `lessor`, minus its goroutine: the node ticks it and acts on what it decides).
//!
//! Invariants (checked by `check_invariants` in tests):
//! * not primary: every lease's expiry is `Forever`, nothing is scheduled;
//! * primary: a lease is `Pending` (granted or renewed since the last tick; its expiry is
//!   set by the next tick) exactly when it is in `pending`, and `At(t)` exactly when it has
//!   one entry `(due, id)` in `due`, with `due >= t` (`due > t` once it was reported expired
//!   and waits for its revoke to apply, as etcd's `expiredLeaseRetryInterval`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::keys;
use super::{
    DEFAULT_MIN_TTL_SECS, FOREVER_TTL_SECS, LEASE_REVOKE_RATE_PER_SEC, MAX_LEASE_TTL_SECS,
};
use crate::Error;
use crate::api::cairnpb::LeaseRecord;
use crate::mvcc::LeaseLookup;
use crate::storage::{Engine, StorageError, WriteBatch};

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// When a lease expires, as this member knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Not timed here (a follower, or a leader before `promote`).
    Forever,
    /// Granted or renewed since the last tick: expires one TTL after the next tick.
    Pending,
    /// At this clock reading.
    At(Duration),
}

#[derive(Debug, Clone)]
struct Lease {
    ttl_secs: i64,
    expiry: Expiry,
    /// The `due` entry of an `At` lease.
    due: Option<Duration>,
}

impl Lease {
    fn ttl(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.ttl_secs).unwrap_or(0))
    }
}

/// Why a renewal (a keep-alive) was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenewError {
    /// This lessor does not time leases (not the leader, or not yet promoted): the renewal
    /// belongs to the leader (etcd's `ErrNotPrimary`).
    #[error("not the primary lessor")]
    NotPrimary,
    /// No such lease.
    #[error("lease not found")]
    NotFound,
    /// The lease expired and its revoke is under way: once it is applied the lease is not
    /// found (etcd's `Renew` waits for `revokec`).
    #[error("lease expired")]
    Expired,
}

/// A lease's time to live, as `LeaseTimeToLive` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeToLive {
    /// Whole seconds left (etcd: `int64(Remaining().Seconds())`).
    pub remaining_secs: i64,
    /// The TTL the lease was granted (after raising it to the minimum).
    pub granted_ttl_secs: i64,
}

/// The granted leases and, when primary, their expiries.
pub struct Lessor {
    engine: Arc<dyn Engine>,
    leases: BTreeMap<i64, Lease>,
    /// `(due, id)` of every `At` lease, soonest first.
    due: BTreeSet<(Duration, i64)>,
    /// The `Pending` leases.
    pending: BTreeSet<i64>,
    primary: bool,
    /// The latest `now` given to `tick` or `promote`.
    clock: Duration,
    min_ttl_secs: i64,
}

impl std::fmt::Debug for Lessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lessor")
            .field("leases", &self.leases.len())
            .field("primary", &self.primary)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl LeaseLookup for Lessor {
    fn lease_exists(&self, id: i64) -> bool {
        self.contains(id)
    }
}

impl Lessor {
    /// Opens the leases stored in `engine`: not primary, every lease timed "forever"
    /// (etcd's `initAndRecover`). The minimum TTL is etcd's default (2 s) until set.
    pub fn open(engine: Arc<dyn Engine>) -> Result<Lessor, StorageError> {
        let records = keys::load_records(engine.as_ref())?;
        let min_ttl_secs = DEFAULT_MIN_TTL_SECS;
        let leases = records
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    Lease {
                        ttl_secs: r.ttl.max(min_ttl_secs),
                        expiry: Expiry::Forever,
                        due: None,
                    },
                )
            })
            .collect();
        Ok(Lessor {
            engine,
            leases,
            due: BTreeSet::new(),
            pending: BTreeSet::new(),
            primary: false,
            clock: Duration::ZERO,
            min_ttl_secs,
        })
    }

    /// Sets the minimum TTL (see [`super::min_ttl_secs`]); leases granted shorter are raised
    /// to it, as etcd does when it loads them.
    pub fn set_min_ttl_secs(&mut self, secs: i64) {
        self.min_ttl_secs = secs;
        for lease in self.leases.values_mut() {
            lease.ttl_secs = lease.ttl_secs.max(secs);
        }
    }

    /// The minimum TTL, in seconds.
    pub fn min_ttl_secs(&self) -> i64 {
        self.min_ttl_secs
    }

    /// Whether lease `id` is granted.
    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// Whether this lessor times leases (it was promoted and not demoted since).
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// The latest clock reading given.
    pub fn clock(&self) -> Duration {
        self.clock
    }

    /// Advances the clock to `now` (a monotonic reading; an earlier one is ignored) and
    /// starts the TTL of every lease granted or renewed since the last tick.
    pub fn tick(&mut self, now: Duration) {
        self.clock = self.clock.max(now);
        for id in std::mem::take(&mut self.pending) {
            if let Some(lease) = self.leases.get(&id) {
                let expiry = self.clock.saturating_add(lease.ttl());
                self.schedule(id, expiry, expiry);
            }
        }
    }

    /// Becomes the primary lessor at `now`: every lease expires its full TTL plus `extend`
    /// from now, with piled-up expiries spread out (etcd's `Promote(extend)`).
    pub fn promote(&mut self, now: Duration, extend: Duration) {
        self.clock = self.clock.max(now);
        self.primary = true;
        self.pending.clear();
        self.due.clear();
        let ids: Vec<i64> = self.leases.keys().copied().collect();
        for id in ids {
            self.refresh(id, extend);
        }
        self.spread_expiries(extend);
    }

    /// Stops timing leases: each lives "forever" here until a later `promote` (etcd's
    /// `Demote`).
    pub fn demote(&mut self) {
        self.primary = false;
        self.pending.clear();
        self.due.clear();
        for lease in self.leases.values_mut() {
            lease.expiry = Expiry::Forever;
            lease.due = None;
        }
    }

    /// Renews lease `id` (a keep-alive): its full TTL starts again at the next tick. Returns
    /// the TTL (etcd's `Renew`).
    pub fn renew(&mut self, id: i64) -> Result<i64, RenewError> {
        if !self.primary {
            return Err(RenewError::NotPrimary);
        }
        let clock = self.clock;
        let lease = self.leases.get_mut(&id).ok_or(RenewError::NotFound)?;
        if matches!(lease.expiry, Expiry::At(at) if at <= clock) {
            return Err(RenewError::Expired);
        }
        let ttl_secs = lease.ttl_secs;
        self.unschedule(id);
        self.set_pending(id);
        Ok(ttl_secs)
    }

    /// Up to `limit` leases that expired by the clock, soonest first, for the node to propose
    /// revoking. Each is reported again `retry_after` later if its revoke has not applied by
    /// then (etcd's `findExpiredLeases` with `expiredLeaseRetryInterval`). Nothing when not
    /// primary.
    pub fn expired(&mut self, limit: usize, retry_after: Duration) -> Vec<i64> {
        let mut expired = Vec::new();
        while expired.len() < limit {
            let Some(&(due, id)) = self.due.first() else {
                break;
            };
            if due > self.clock {
                break;
            }
            let Some(Expiry::At(at)) = self.leases.get(&id).map(|l| l.expiry) else {
                debug_assert!(false, "scheduled lease {id} is not timed");
                self.due.remove(&(due, id));
                continue;
            };
            debug_assert!(at <= due, "lease {id} due before it expires");
            expired.push(id);
            self.schedule(id, at, self.clock.saturating_add(retry_after));
        }
        expired
    }

    /// Lease `id`'s time to live, or `None` if it is not granted (etcd's `LeaseTimeToLive`).
    ///
    /// The clock is the last tick's, a little behind real time, so the time left is
    /// reported as the whole seconds strictly below what the clock says: never more than
    /// etcd would report, and at most one tick less.
    pub fn time_to_live(&self, id: i64) -> Option<TimeToLive> {
        let lease = self.leases.get(&id)?;
        let remaining_secs = match lease.expiry {
            Expiry::Forever => FOREVER_TTL_SECS,
            Expiry::Pending => secs_below(i128::from(lease.ttl_secs) * NANOS_PER_SEC),
            Expiry::At(at) => secs_below(at.as_nanos() as i128 - self.clock.as_nanos() as i128),
        };
        Some(TimeToLive {
            remaining_secs,
            granted_ttl_secs: lease.ttl_secs,
        })
    }

    /// The keys attached to lease `id`, in key order (empty for an unknown lease).
    pub fn keys(&self, id: i64) -> Result<Vec<Vec<u8>>, StorageError> {
        keys::attached_keys(self.engine.as_ref(), id)
    }

    /// The IDs of every lease, soonest expiry first, then by ID (etcd's `Leases`).
    pub fn leases(&self) -> Vec<i64> {
        let mut order: Vec<(Duration, i64)> = self
            .leases
            .iter()
            .map(|(&id, lease)| (self.expiry_estimate(lease), id))
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, id)| id).collect()
    }

    /// Grants lease `id` with `ttl_secs` (raised to the minimum) and stages its record;
    /// returns the granted TTL. The applier calls it (etcd's `Grant`).
    pub(crate) fn grant(
        &mut self,
        id: i64,
        ttl_secs: i64,
        batch: &mut WriteBatch,
    ) -> Result<i64, Error> {
        if id == 0 {
            return Err(Error::LeaseNotFound);
        }
        if ttl_secs > MAX_LEASE_TTL_SECS {
            return Err(Error::LeaseTtlTooLarge);
        }
        if self.contains(id) {
            return Err(Error::LeaseExists);
        }
        let ttl_secs = ttl_secs.max(self.min_ttl_secs);
        keys::stage_record(batch, &LeaseRecord { id, ttl: ttl_secs });
        self.leases.insert(
            id,
            Lease {
                ttl_secs,
                expiry: Expiry::Forever,
                due: None,
            },
        );
        if self.primary {
            self.set_pending(id);
        }
        Ok(ttl_secs)
    }

    /// Forgets lease `id` and stages the removal of its record. The applier deletes its keys
    /// first (etcd's `Revoke`).
    pub(crate) fn remove(&mut self, id: i64, batch: &mut WriteBatch) -> Result<(), Error> {
        if !self.contains(id) {
            return Err(Error::LeaseNotFound);
        }
        self.unschedule(id);
        self.pending.remove(&id);
        self.leases.remove(&id);
        keys::stage_record_removal(batch, id);
        Ok(())
    }

    fn expiry_estimate(&self, lease: &Lease) -> Duration {
        match lease.expiry {
            Expiry::Forever => Duration::MAX,
            Expiry::Pending => self.clock.saturating_add(lease.ttl()),
            Expiry::At(at) => at,
        }
    }

    /// Expires lease `id` its TTL plus `extend` from the clock (etcd's `refresh`).
    fn refresh(&mut self, id: i64, extend: Duration) {
        let Some(lease) = self.leases.get(&id) else {
            return;
        };
        let expiry = self
            .clock
            .saturating_add(extend)
            .saturating_add(lease.ttl());
        self.unschedule(id);
        self.schedule(id, expiry, expiry);
    }

    fn set_pending(&mut self, id: i64) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.expiry = Expiry::Pending;
            lease.due = None;
            self.pending.insert(id);
        }
    }

    fn schedule(&mut self, id: i64, expiry: Duration, due: Duration) {
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        if let Some(old) = lease.due.replace(due) {
            self.due.remove(&(old, id));
        }
        lease.expiry = Expiry::At(expiry);
        self.due.insert((due, id));
    }

    fn unschedule(&mut self, id: i64) {
        if let Some(old) = self.leases.get_mut(&id).and_then(|lease| lease.due.take()) {
            self.due.remove(&(old, id));
        }
    }

    /// With `LEASE_REVOKE_RATE_PER_SEC` leases or more, delays expiries so that no second
    /// holds more than three quarters of the revoke rate (the second half of etcd's
    /// `Promote`, same arithmetic).
    fn spread_expiries(&mut self, extend: Duration) {
        if self.leases.len() < LEASE_REVOKE_RATE_PER_SEC {
            return;
        }
        let now = self.clock;
        let mut order: Vec<(Duration, i64)> = self.due.iter().copied().collect();
        order.sort_unstable();
        let Some(&(first, _)) = order.first() else {
            return;
        };
        let target_per_sec = (3 * LEASE_REVOKE_RATE_PER_SEC / 4) as f64;
        let mut base = first.saturating_sub(now);
        let mut next = base + Duration::from_secs(1);
        let mut expires = 0usize;
        for (expiry, id) in order {
            let remaining = expiry.saturating_sub(now);
            if remaining > next {
                base = remaining;
                next = base + Duration::from_secs(1);
                expires = 1;
                continue;
            }
            expires += 1;
            if expires as f64 <= target_per_sec {
                continue;
            }
            let rate_delay = expires as f64 / target_per_sec - (remaining - base).as_secs_f64();
            let delay = Duration::from_secs_f64(rate_delay.max(0.0));
            next = base + delay;
            self.refresh(id, delay + extend);
        }
    }

    /// Asserts the invariants of the module doc.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut scheduled = 0;
        for (&id, lease) in &self.leases {
            match (self.primary, lease.expiry) {
                (false, Expiry::Forever) => assert!(lease.due.is_none()),
                (false, other) => panic!("lease {id} is {other:?} on a non-primary lessor"),
                (true, Expiry::Forever) => panic!("lease {id} is not timed on the primary"),
                (true, Expiry::Pending) => {
                    assert!(
                        self.pending.contains(&id) && lease.due.is_none(),
                        "lease {id}"
                    )
                }
                (true, Expiry::At(at)) => {
                    let due = lease.due.expect("an At lease is scheduled");
                    assert!(due >= at && self.due.contains(&(due, id)), "lease {id}");
                    assert!(!self.pending.contains(&id));
                    scheduled += 1;
                }
            }
        }
        assert_eq!(self.due.len(), scheduled, "stray schedule entries");
        assert!(self.pending.iter().all(|id| self.leases.contains_key(id)));
    }
}

/// The largest whole number of seconds strictly below `nanos` when positive; otherwise
/// `nanos` in seconds truncated toward zero (Go's `int64(d.Seconds())`).
fn secs_below(nanos: i128) -> i64 {
    let secs = if nanos > 0 {
        (nanos - 1) / NANOS_PER_SEC
    } else {
        nanos / NANOS_PER_SEC
    };
    i64::try_from(secs).unwrap_or(i64::MAX)
}
