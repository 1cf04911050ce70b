//! The leader's lease clock: ticks the lessor with the monotonic clock and proposes a
//! LeaseRevoke for every lease it finds expired (etcd's `lessor.runLoop` +
//! `EtcdServer.revokeExpiredLeases`).
//!
//! Only the leader times leases. When this member becomes leader (or is leader of a new
//! term) the lessor is promoted: every lease gets its full TTL plus an election timeout from
//! now (etcd's `Promote(electionTimeout)`), so no lease expires early because the member
//! that renewed it lost leadership. When it stops being leader the lessor is demoted and
//! times nothing. Expiry is never applied here: the revoke goes through the log, and a lease
//! whose revoke did not apply is reported again after a request timeout.
//!
//! The clock is the member's monotonic clock ([`MemberClock`]), which madsim simulates.

use std::time::Duration;

use cairn_core::api::cairnpb::internal_request::Request;
use cairn_core::api::etcdserverpb::LeaseRevokeRequest;
use cairn_core::lease::min_ttl_secs;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;

use crate::clock::MemberClock;

use crate::config::Config;
use crate::server::{Handle, ServerError};

/// How often the leader looks for expired leases (etcd: every 500 ms). Renewals take effect
/// at the next check, so this also bounds how late a lease may expire.
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Revoke proposals in flight at most (etcd's `maxPendingRevokes`).
pub const MAX_PENDING_REVOKES: usize = 16;

/// The expiry task of one member.
pub struct LeaseExpiry {
    handle: Handle,
    /// What a new leader adds to every lease (etcd: the election timeout).
    extend: Duration,
    /// When a lease whose revoke has not applied is reported again (etcd: the request timeout).
    retry_after: Duration,
    clock: MemberClock,
    /// The term in which the lessor was last promoted.
    promoted_term: Option<u64>,
}

impl LeaseExpiry {
    /// The expiry task for the member behind `handle`. Sets the lessor's minimum TTL from
    /// the election timeout now, before any entry is applied.
    pub fn new(handle: Handle, config: &Config) -> Self {
        let election_timeout =
            config.tick * u32::try_from(config.election_ticks).unwrap_or(u32::MAX);
        let min_ttl = min_ttl_secs(config.election_ticks, config.tick);
        handle
            .state_machine()
            .with_lessor(|lessor| lessor.set_min_ttl_secs(min_ttl));
        let clock = MemberClock::new(handle.identity().member_id);
        LeaseExpiry {
            handle,
            extend: election_timeout,
            retry_after: config.request_timeout(),
            clock,
            promoted_term: None,
        }
    }

    /// Checks every `EXPIRY_CHECK_INTERVAL` until `shutdown` fires.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(EXPIRY_CHECK_INTERVAL);
        let mut revoking = FuturesUnordered::new();
        loop {
            select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {
                    for id in self.check(MAX_PENDING_REVOKES.saturating_sub(revoking.len())) {
                        revoking.push(revoke(self.handle.clone(), id));
                    }
                }
                Some(()) = revoking.next(), if !revoking.is_empty() => {}
            }
        }
    }

    /// Follows leadership, ticks the lessor, and returns up to `limit` expired leases.
    /// The lessor is promoted on each new term of leadership, and also whenever it is found
    /// not primary on the leader (a snapshot restore reloads it demoted).
    fn check(&mut self, limit: usize) -> Vec<i64> {
        let status = self.handle.raft_status();
        let leader = status.leader == self.handle.identity().member_id;
        let previous_term =
            std::mem::replace(&mut self.promoted_term, leader.then_some(status.term));
        let (now, extend, retry_after) = (self.clock.elapsed(), self.extend, self.retry_after);
        self.handle.state_machine().with_lessor(|lessor| {
            if !leader && cairn_core::buggify::lease_expiry_on_follower() {
                return follower_expiry(lessor, now, limit, retry_after);
            }
            if !leader {
                if lessor.is_primary() {
                    tracing::info!("no longer leader: lessor demoted");
                    lessor.demote();
                }
                return Vec::new();
            }
            if previous_term != Some(status.term) || !lessor.is_primary() {
                tracing::info!(term = status.term, "leader: lessor promoted");
                lessor.promote(now, extend);
            }
            lessor.tick(now);
            lessor.expired(limit, retry_after)
        })
    }
}

/// The injected bug [`cairn_core::buggify::Bug::LeaseExpiryOnFollower`]: a follower times
/// leases as if it were primary (it never sees renewals, which the leader alone handles)
/// and reports the ones it finds expired.
fn follower_expiry(
    lessor: &mut cairn_core::lease::Lessor,
    now: Duration,
    limit: usize,
    retry_after: Duration,
) -> Vec<i64> {
    if !lessor.is_primary() {
        lessor.promote(now, Duration::ZERO);
    }
    lessor.tick(now);
    lessor.expired(limit, retry_after)
}

/// Proposes revoking expired lease `id`. A lease revoked meanwhile is not an error; other
/// failures are retried when the lessor reports the lease again.
async fn revoke(handle: Handle, id: i64) {
    // With auth enabled the leader revokes as root (etcd's `WithRoot`).
    let state_machine = handle.state_machine();
    let auth = state_machine
        .auth_enabled()
        .then(|| cairn_core::api::cairnpb::RequestAuth {
            username: cairn_core::auth::ROOT_USER.to_string(),
            revision: state_machine.auth_revision(),
        });
    let request = Request::LeaseRevoke(LeaseRevokeRequest { id });
    let proposed = if cairn_core::buggify::lease_expiry_on_follower() {
        // The injected bug revokes from a follower: through the leader, as any write.
        handle.propose_as(request, auth).await
    } else {
        handle.propose_as_leader(request, auth).await
    };
    match proposed {
        Ok(_) | Err(ServerError::Apply(cairn_core::Error::LeaseNotFound)) => {
            tracing::debug!(lease = format_args!("{id:016x}"), "expired lease revoked");
        }
        Err(ServerError::NotLeader) => {
            // The next leader's lessor decides about this lease.
            tracing::debug!(
                lease = format_args!("{id:016x}"),
                "not revoked: no longer the leader"
            );
        }
        Err(e) => {
            tracing::warn!(lease = format_args!("{id:016x}"), error = %e, "failed to revoke expired lease")
        }
    }
}
