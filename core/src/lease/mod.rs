//! Leases, with etcd 3.4's semantics (`lease/lessor.go`, the lease appliers of
//! `etcdserver/apply.go`, `LeaseRenew`/`LeaseTimeToLive`/`LeaseLeases` of
//! `etcdserver/v3_server.go`).
//!
//! Two halves, kept apart on purpose:
//!
//! * The replicated half, changed only by applied log entries (`apply`): which leases exist
//!   with which granted TTL, and which keys are attached to each. Both live in
//!   `Space::Leases` and are written in the same storage batch as the entry's MVCC changes
//!   (`keys`), so a crash never separates a key from its lease and a restart rebuilds nothing.
//! * The timing half, meaningful only on the leader (etcd's *primary* lessor): when each lease
//!   expires. Time enters only as [`Lessor::tick`] (a monotonic duration the node measures);
//!   renewals take effect at the next tick, so a lease never expires before its TTL has run
//!   from the renewal. The lessor *decides* that a lease expired ([`Lessor::expired`]); the
//!   node proposes a LeaseRevoke for it, and only the applied revoke removes it and deletes
//!   its keys, on every member alike.
//!
//! A member that becomes leader calls [`Lessor::promote`], which restarts every lease's full
//! TTL plus an election timeout, as etcd's `Promote(electionTimeout)`: a lease never expires
//! early because the leader that renewed it is gone. Followers hold every lease "forever".
//!
//! Files: `lessor` (the [`Lessor`]: table and timing decisions), `keys` (storage layout).

mod keys;
mod lessor;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub(crate) use keys::{stage_attach, stage_detach};
pub use lessor::{Lessor, RenewError, TimeToLive};

/// The largest TTL a lease may be granted, in seconds (etcd's `MaxLeaseTTL`).
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;

/// Leases the leader revokes per second at most (etcd's `leaseRevokeRate`); `promote` spreads
/// the expiries of piled-up leases so that at most three quarters of it expire per second.
pub const LEASE_REVOKE_RATE_PER_SEC: usize = 1000;

/// The TTL a lease reports while no member times it (a follower's "forever"): etcd's
/// `Remaining()` of a lease with no expiry, `math.MaxInt64` nanoseconds, in seconds.
pub const FOREVER_TTL_SECS: i64 = i64::MAX / 1_000_000_000;

/// The minimum TTL until the node sets its own: etcd's for its default 100 ms heartbeat and
/// 1 s election timeout (`min_ttl_secs(10, 100 ms)`).
pub const DEFAULT_MIN_TTL_SECS: i64 = 2;

/// etcd's minimum lease TTL for a member with `election_ticks` ticks of `tick` each:
/// `ceil((3 * election_ticks / 2) * tick)` in seconds (`minTTL` in `etcdserver.NewServer`),
/// so that a lease outlives a leader election. Shorter requested TTLs are raised to it.
pub fn min_ttl_secs(election_ticks: usize, tick: Duration) -> i64 {
    let ticks = (3 * election_ticks / 2) as u128;
    let nanos = ticks.saturating_mul(tick.as_nanos());
    i64::try_from(nanos.div_ceil(1_000_000_000)).unwrap_or(i64::MAX)
}
