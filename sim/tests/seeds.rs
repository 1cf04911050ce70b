//! The fixed seeds CI runs: every workload under every fault, each history checked, and
//! every run must pass (safety, then liveness and convergence after healing).

#![cfg(madsim)]

use std::time::Duration;

use cairn_sim::options::RunOptions;
use cairn_sim::sweep;

/// The seeds CI runs.
const CI_SEEDS: std::ops::Range<u64> = 1..13;

#[test]
fn fixed_seeds_pass_under_every_fault() {
    let options = RunOptions {
        duration: Duration::from_secs(20),
        ..RunOptions::default()
    };
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let summary = sweep::sweep(&options, CI_SEEDS, jobs, false, |_, _| {});
    assert!(summary.failures.is_empty(), "{}", summary.text(jobs));
}
