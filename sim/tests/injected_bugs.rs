//! The simulator has teeth: each injected bug (`cairn_core::buggify`) is caught within 200
//! seeds, by the invariant that bug breaks. Each test stops at the first catch.

#![cfg(madsim)]

use std::time::Duration;

use cairn_sim::failure::Kind;
use cairn_sim::options::{Bug, RunOptions};
use cairn_sim::run;

/// Seeds a bug must be caught within.
const SEEDS: u64 = 200;

/// The first seed whose run finds a failure of one of `kinds` with `bug` on.
fn first_catch(bug: Bug, kinds: &[Kind]) -> Option<u64> {
    let options = RunOptions {
        duration: Duration::from_secs(20),
        bugs: [bug].into_iter().collect(),
        ..RunOptions::default()
    };
    (1..=SEEDS).find(|&seed| {
        let report = run::run(&options.with_seed(seed));
        let caught = kinds.iter().any(|&kind| report.found(kind));
        if caught {
            eprint!("{} caught by {}", bug.name(), report.summary());
        }
        caught
    })
}

#[test]
fn acknowledging_before_fsync_is_caught_within_200_seeds() {
    let caught = first_catch(
        Bug::AckBeforeFsync,
        &[Kind::Durability, Kind::Linearizability, Kind::Convergence],
    );
    assert!(
        caught.is_some(),
        "ack-before-fsync went unnoticed for {SEEDS} seeds"
    );
}

#[test]
fn serving_reads_without_read_index_is_caught_within_200_seeds() {
    let caught = first_catch(Bug::LocalReads, &[Kind::Linearizability, Kind::Revisions]);
    assert!(
        caught.is_some(),
        "local-reads went unnoticed for {SEEDS} seeds"
    );
}

#[test]
fn dropping_watch_events_is_caught_within_200_seeds() {
    let caught = first_catch(Bug::DropWatchEvent, &[Kind::Watch]);
    assert!(
        caught.is_some(),
        "drop-watch-event went unnoticed for {SEEDS} seeds"
    );
}

#[test]
fn leases_expired_by_followers_are_caught_within_200_seeds() {
    let caught = first_catch(Bug::LeaseExpiryOnFollower, &[Kind::Lease]);
    assert!(
        caught.is_some(),
        "lease-expiry-on-follower went unnoticed for {SEEDS} seeds"
    );
}

#[test]
fn compactions_applied_without_the_log_are_caught_within_200_seeds() {
    let caught = first_catch(Bug::CompactionWithoutLog, &[Kind::Convergence]);
    assert!(
        caught.is_some(),
        "compaction-without-log went unnoticed for {SEEDS} seeds"
    );
}
