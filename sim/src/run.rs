//! One seed, start to verdict: the simulation on a fresh thread with its own madsim runtime,
//! then the checks of its record, then the files a user reads.
//!
//! A fresh thread per seed keeps seeds independent: madsim's runtime, std's hash seeds and
//! the thread-local switches (`cairn_core::buggify`, the peer layer's message faults) start
//! clean, so a seed behaves the same alone (`cairn-sim run`) as inside a sweep. A panic in
//! the simulation (an assertion in the node code, a member that cannot restart, madsim's
//! time limit) is a failed run, not a crashed simulator.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_jepsen::watch::{WatchHistory, WatchVerdict};
use cairn_jepsen::{Budget, CheckResult, History, ModelKind, Verdict};

use crate::failure::{Failure, Kind};
use crate::options::RunOptions;
use crate::recorder::Counts;
use crate::simulation::{self, Outcome};

/// Search steps the linearizability check may take (deterministic, unlike a time limit).
pub const CHECK_MAX_STEPS: u64 = 100_000_000;
/// Simulated time a run may take beyond its safety phase before madsim stops it.
const TIME_LIMIT_MARGIN: Duration = Duration::from_secs(600);

/// Everything known about one run.
#[derive(Debug)]
pub struct RunReport {
    /// What was run.
    pub options: RunOptions,
    /// The register history, as JSONL (byte-identical for the same options).
    pub history_jsonl: String,
    /// The history itself (empty if the simulation panicked).
    pub history: History,
    /// The watch history (committed events, compactions, every watcher's responses) as
    /// JSONL, `cairn-jepsen check-watch`'s input; empty without the watch workload.
    pub watch_jsonl: String,
    /// The linearizability check (absent if the simulation panicked).
    pub check: Option<CheckResult>,
    /// Every failure: violations, lost writes, liveness, panics. Empty: the run passed.
    pub failures: Vec<Failure>,
    /// The nemesis's log.
    pub fault_log: String,
    /// Client call counters.
    pub counts: Counts,
    /// Simulated time.
    pub simulated: Duration,
    /// Wall-clock time of the simulation (without the check).
    pub wall: Duration,
    /// Wall-clock time of the check.
    pub check_wall: Duration,
}

impl RunReport {
    /// Whether the run found a failure of `kind`.
    pub fn found(&self, kind: Kind) -> bool {
        self.failures.iter().any(|f| f.kind == kind)
    }

    /// Whether no failure was found.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Simulated seconds per wall-clock second of the simulation.
    pub fn speedup(&self) -> f64 {
        self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let mut text = format!(
            "seed {}: {verdict}  ({} calls: {} ok, {} fail, {} info; {:.1}s simulated in {:.2}s = {:.0}x; check {:.2}s)\n",
            self.options.seed,
            self.counts.ok + self.counts.fail + self.counts.info,
            self.counts.ok,
            self.counts.fail,
            self.counts.info,
            self.simulated.as_secs_f64(),
            self.wall.as_secs_f64(),
            self.speedup(),
            self.check_wall.as_secs_f64(),
        );
        for failure in &self.failures {
            text.push_str(&format!("  {failure}\n"));
        }
        if !self.passed() {
            text.push_str(&format!("  replay: {}\n", self.options.replay_command()));
        }
        text
    }

    /// Writes `history.jsonl`, `watch.jsonl` (with watchers), `faults.log`, `report.txt`
    /// and, when the history is not
    /// linearizable, `report.html` into `dir`; returns the files written.
    pub fn write_to(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut write = |name: &str, contents: &str| -> io::Result<()> {
            let path = dir.join(name);
            fs::write(&path, contents)?;
            written.push(path);
            Ok(())
        };
        write("history.jsonl", &self.history_jsonl)?;
        if !self.watch_jsonl.is_empty() {
            write("watch.jsonl", &self.watch_jsonl)?;
        }
        write("faults.log", &self.fault_log)?;
        write("report.txt", &self.text_report())?;
        if let Some(check) = self
            .check
            .as_ref()
            .filter(|c| c.verdict == Verdict::Violation)
        {
            let name = format!("seed {} history.jsonl", self.options.seed);
            write(
                "report.html",
                &cairn_jepsen::report::html(&name, &self.history, check),
            )?;
        }
        Ok(written)
    }

    fn text_report(&self) -> String {
        let mut text = self.summary();
        text.push_str(&format!("\noptions: {}\n", self.options.replay_command()));
        if let Some(check) = &self.check {
            let name = format!("seed {} history.jsonl", self.options.seed);
            text.push('\n');
            text.push_str(&cairn_jepsen::report::summary(&name, &self.history, check));
        }
        text
    }
}

/// Runs and checks the seed of `options`.
pub fn run(options: &RunOptions) -> RunReport {
    let started = Instant::now();
    let simulated = simulate_on_fresh_thread(options.clone());
    let wall = started.elapsed();
    match simulated {
        Ok(outcome) => check(options, outcome, wall),
        Err(panic) => panicked(options, panic, wall),
    }
}

fn simulate_on_fresh_thread(options: RunOptions) -> Result<Outcome, String> {
    let seed = options.seed;
    let limit = options.duration + TIME_LIMIT_MARGIN;
    let thread = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || {
            let mut runtime =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.set_time_limit(limit);
            runtime.block_on(simulation::simulate(options))
        })
        .map_err(|e| format!("cannot start a simulation thread: {e}"))?;
    thread.join().map_err(|payload| panic_message(&payload))
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

fn check(options: &RunOptions, outcome: Outcome, wall: Duration) -> RunReport {
    let started = Instant::now();
    let history = outcome.record.history;
    let budget = Budget {
        max_steps: Some(CHECK_MAX_STEPS),
        max_duration: None,
    };
    let mut failures = Vec::new();
    let check = match cairn_jepsen::check(&history, ModelKind::Register, &budget) {
        Ok(result) => Some(result),
        Err(e) => {
            failures.push(Failure::new(
                Kind::Linearizability,
                format!("the history does not fit the register model: {e}"),
            ));
            None
        }
    };
    if let Some(result) = &check {
        failures.extend(linearizability_failure(result));
    }
    failures.extend(
        outcome
            .record
            .breaches
            .into_iter()
            .map(|b| Failure::new(Kind::Revisions, b)),
    );
    failures.extend(outcome.failures);
    let watch_jsonl = outcome.watch.as_ref().map_or_else(String::new, |watch| {
        failures.extend(watch_failure(watch));
        watch_to_jsonl(watch)
    });
    failures.extend(
        outcome
            .lease_breaches
            .into_iter()
            .map(|b| Failure::new(Kind::Lease, b)),
    );
    RunReport {
        options: options.clone(),
        history_jsonl: cairn_jepsen::format::jsonl::to_string(&history),
        history,
        watch_jsonl,
        check,
        failures,
        fault_log: outcome.fault_log,
        counts: outcome.record.counts,
        simulated: outcome.simulated,
        wall,
        check_wall: started.elapsed(),
    }
}

/// The first broken watch guarantee, if any.
fn watch_failure(watch: &WatchHistory) -> Option<Failure> {
    match cairn_jepsen::watch::check(watch) {
        Ok(WatchVerdict::Ok) => None,
        Ok(WatchVerdict::Violation(violation)) => Some(Failure::new(
            Kind::Watch,
            format!("{violation} (see watch.jsonl)"),
        )),
        Err(malformed) => Some(Failure::new(
            Kind::Watch,
            format!("the committed history cannot be checked against: {malformed}"),
        )),
    }
}

fn watch_to_jsonl(watch: &WatchHistory) -> String {
    let mut bytes = Vec::new();
    // Writing to memory cannot fail.
    let _ = cairn_jepsen::watch::jsonl::write(watch, &mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn linearizability_failure(result: &CheckResult) -> Option<Failure> {
    match result.verdict {
        Verdict::Linearizable => None,
        Verdict::Violation => {
            let key = result
                .violation
                .as_ref()
                .and_then(|v| v.key.clone())
                .unwrap_or_default();
            Some(Failure::new(
                Kind::Linearizability,
                format!("the history of key {key} is not linearizable"),
            ))
        }
        Verdict::Unknown => Some(Failure::new(
            Kind::Linearizability,
            format!("unknown (the check ran out of its {CHECK_MAX_STEPS} steps)"),
        )),
    }
}

fn panicked(options: &RunOptions, panic: String, wall: Duration) -> RunReport {
    RunReport {
        options: options.clone(),
        history_jsonl: String::new(),
        watch_jsonl: String::new(),
        history: History {
            clock: cairn_jepsen::Clock::Nanos,
            ops: Vec::new(),
        },
        check: None,
        failures: vec![Failure::new(Kind::Panic, panic)],
        fault_log: String::new(),
        counts: Counts::default(),
        simulated: Duration::ZERO,
        wall,
        check_wall: Duration::ZERO,
    }
}
