//! The watch workload: the shared watch clients ([`cairn_jepsen::watch::client`]) over the
//! key ranges the other workloads write, drawing from madsim's seeded rng, so a run's
//! watchers are a function of its seed.

use cairn_jepsen::watch::client::{Draw, RangeDraw, prefix_range};
pub use cairn_jepsen::watch::client::{WatchClient, WatchLog, WatchTarget};
use madsim::rand::Rng as _;

use crate::workload::{PUT_ONCE_PREFIX, REGISTER_KEYS, REGISTER_RANGE, register_key};

/// Prefix of the keys attached to leases by the lease workload.
pub const LEASE_KEY_PREFIX: &str = "l/";

/// madsim's seeded rng.
struct SimDraw;

impl Draw for SimDraw {
    fn chance(&mut self, p: f64) -> bool {
        madsim::rand::thread_rng().gen_bool(p)
    }

    fn below(&mut self, n: u64) -> u64 {
        madsim::rand::thread_rng().gen_range(0..n.max(1))
    }
}

/// Watch client `id` of a simulated run, recording into `log`.
pub fn watch_client(id: u64, endpoints: Vec<String>, log: WatchLog) -> WatchClient {
    WatchClient::new(id, endpoints, log, Box::new(SimDraw), ranges())
}

/// A watch range the other workloads write: the register keys, one of them, the put-once
/// keys, the leased keys, or every key.
fn ranges() -> RangeDraw {
    Box::new(|draw: &mut dyn Draw| match draw.below(5) {
        0 => (REGISTER_RANGE.0.to_vec(), REGISTER_RANGE.1.to_vec()),
        1 => (
            register_key(draw.below(REGISTER_KEYS as u64) as usize).into_bytes(),
            Vec::new(),
        ),
        2 => prefix_range(PUT_ONCE_PREFIX),
        3 => prefix_range(LEASE_KEY_PREFIX),
        _ => (vec![0], vec![0]),
    })
}
