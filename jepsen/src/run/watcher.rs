//! The watch workload: the shared watch clients ([`crate::watch::client`]) over the
//! register keys, drawing from the run's seeded [`Rng`].

use crate::watch::client::{Draw, RangeDraw, prefix_range};
pub use crate::watch::client::{WatchClient, WatchLog, WatchTarget};

use super::register::{KEY_PREFIX, key};
use super::rng::Rng;

impl Draw for Rng {
    fn chance(&mut self, p: f64) -> bool {
        Rng::chance(self, p)
    }

    fn below(&mut self, n: u64) -> u64 {
        Rng::below(self, n)
    }
}

/// Watch client `id` of a run with `seed`, watching ranges of `keys` register keys and
/// recording into `log`.
pub fn watch_client(
    id: u64,
    endpoints: Vec<String>,
    keys: u64,
    seed: u64,
    log: WatchLog,
) -> WatchClient {
    let draw = Box::new(Rng::fork(seed, 2000 + id));
    WatchClient::new(id, endpoints, log, draw, ranges(keys))
}

/// A watch range the register workload writes: every register key, one of them, or every
/// key.
fn ranges(keys: u64) -> RangeDraw {
    Box::new(move |draw: &mut dyn Draw| match draw.below(3) {
        0 => prefix_range(KEY_PREFIX),
        1 => (key(draw.below(keys)).into_bytes(), Vec::new()),
        _ => (vec![0], vec![0]),
    })
}
