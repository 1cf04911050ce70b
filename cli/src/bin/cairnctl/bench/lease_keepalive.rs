//! `bench lease-keepalive` (etcd's `benchmark lease-keepalive`): each client grants itself
//! a lease (TTL 100s), then `--total` keep-alives are sent, each on a stream of its own
//! (clientv3's `KeepAliveOnce`, as etcd's tool does). The leases are revoked afterwards.
//! Skipped when the server does not serve the Lease service.

use std::sync::Arc;

use cairn_client::pb::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest};

use super::pool::Pool;
use super::runner::{self, MakeCall, Plan};
use super::{BenchOptions, Outcome, non_negative, setup_error, unimplemented};
use crate::exit::CliError;
use crate::flags::FlagValues;

/// The TTL of the benchmark's leases, in seconds (etcd's tool uses 100).
const LEASE_TTL_SECS: i64 = 100;

/// Runs `bench lease-keepalive`.
pub async fn run(options: &BenchOptions, values: &FlagValues) -> Result<Outcome, CliError> {
    let plan = Plan {
        total: non_negative(values, "total")?,
        rate: 0,
        clients: options.clients,
    };
    let pool = Pool::connect(options).await?;
    let mut leases = Vec::with_capacity(options.clients);
    for worker in 0..options.clients {
        let grant = LeaseGrantRequest {
            ttl: LEASE_TTL_SECS,
            id: 0,
        };
        match pool.client(worker).lease_grant(grant).await {
            Ok(granted) => leases.push(granted.id),
            Err(e) => {
                revoke(&pool, &leases).await;
                return match unimplemented(&e, "Lease") {
                    Some(why) => Ok(Outcome::Skipped(why)),
                    None => Err(setup_error("granting the benchmark's leases", &e)),
                };
            }
        }
    }
    let leases = Arc::new(leases);
    let ids = leases.clone();
    let make_call: MakeCall = Arc::new(move |client, worker, _n| {
        let id = ids.get(worker).copied().unwrap_or(0);
        Box::pin(async move { client.lease_keep_alive_once(id).await.map(|_| ()) })
    });
    let report = runner::closed_loop("lease-keepalive", &pool, plan, make_call).await;
    revoke(&pool, &leases).await;
    Ok(Outcome::single(report))
}

/// Revokes the benchmark's leases (best effort: they expire anyway).
async fn revoke(pool: &Pool, leases: &[i64]) {
    for id in leases {
        let _ignored = pool
            .client(0)
            .lease_revoke(LeaseRevokeRequest { id: *id })
            .await;
    }
}
