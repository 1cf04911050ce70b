//! Many seeds in parallel: `jobs` worker threads take seeds in order, each seed runs on its
//! own fresh thread and runtime ([`crate::run::run`]), and the caller hears about every
//! finished seed (for progress and failures) as it happens.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::options::RunOptions;
use crate::run::{self, RunReport};

/// Totals of a sweep.
#[derive(Debug, Default)]
pub struct SweepSummary {
    /// Seeds run.
    pub runs: u64,
    /// Reports of the failed seeds, in seed order.
    pub failures: Vec<RunReport>,
    /// Simulated time over all seeds.
    pub simulated: Duration,
    /// Wall-clock time of the whole sweep.
    pub wall: Duration,
}

impl SweepSummary {
    /// The text printed at the end of a sweep.
    pub fn text(&self, jobs: usize) -> String {
        let mut text = format!(
            "{} seeds, {} failed, in {:.1}s on {jobs} jobs ({:.0}s simulated: {:.0}x per job)\n",
            self.runs,
            self.failures.len(),
            self.wall.as_secs_f64(),
            self.simulated.as_secs_f64(),
            self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9) / jobs as f64,
        );
        for report in &self.failures {
            let first = report
                .failures
                .first()
                .map_or(String::new(), ToString::to_string);
            text.push_str(&format!(
                "  seed {}: {first}\n    replay: {}\n",
                report.options.seed,
                report.options.replay_command()
            ));
        }
        text
    }
}

/// Runs every seed of `seeds` with `options` on `jobs` threads. `on_done` sees each report
/// as soon as its seed finishes; `stop_at_first_failure` ends the sweep at the first failure
/// (seeds already running finish).
pub fn sweep(
    options: &RunOptions,
    seeds: Range<u64>,
    jobs: usize,
    stop_at_first_failure: bool,
    mut on_done: impl FnMut(&RunReport, u64),
) -> SweepSummary {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(seeds.start));
    let (done_tx, done_rx) = mpsc::channel::<RunReport>();
    let workers: Vec<_> = (0..jobs.max(1))
        .map(|_| {
            let next = next.clone();
            let done = done_tx.clone();
            let options = options.clone();
            let end = seeds.end;
            std::thread::spawn(move || worker(&options, &next, end, &done))
        })
        .collect();
    drop(done_tx);
    let mut summary = SweepSummary::default();
    for report in done_rx {
        summary.runs += 1;
        summary.simulated += report.simulated;
        on_done(&report, summary.runs);
        if !report.passed() {
            summary.failures.push(report);
            if stop_at_first_failure {
                next.store(seeds.end, Ordering::SeqCst);
            }
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    summary.failures.sort_by_key(|r| r.options.seed);
    summary.wall = started.elapsed();
    summary
}

fn worker(options: &RunOptions, next: &AtomicU64, end: u64, done: &mpsc::Sender<RunReport>) {
    loop {
        let seed = next.fetch_add(1, Ordering::SeqCst);
        if seed >= end {
            return;
        }
        if done.send(run::run(&options.with_seed(seed))).is_err() {
            return;
        }
    }
}
