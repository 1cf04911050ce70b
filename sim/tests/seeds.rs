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

/// Members are removed and added back (as voters and as learners then promoted) while other
/// faults are in force, and the cluster stays linearizable and heals to full membership.
#[test]
fn membership_changes_under_faults_pass() {
    let options = RunOptions {
        duration: Duration::from_secs(30),
        faults: ["member", "partition", "kill"]
            .into_iter()
            .map(|name| {
                cairn_sim::options::Fault::ALL
                    .into_iter()
                    .find(|f| f.name() == name)
                    .expect("a fault of that name")
            })
            .collect(),
        ..RunOptions::default()
    };
    let mut log = String::new();
    for seed in 1..=3 {
        let report = cairn_sim::run::run(&options.with_seed(seed));
        assert!(report.passed(), "{}", report.summary());
        log.push_str(&report.fault_log);
    }
    for step in ["removed ", "back as voter", "back as learner", "promoted "] {
        assert!(log.contains(step), "no run did `{step}`:\n{log}");
    }
}
