//! The `cairn-sim` command line: `run` one seed, `sweep` many.
//!
//! `run` prints a summary, writes the history (JSONL), the fault log and a report (HTML too
//! when the history is not linearizable) to a directory, and on failure the command that
//! replays the seed. `sweep` runs seeds on parallel threads, shows progress, writes the
//! files of each failing seed, and ends with a summary. Both exit 1 if any seed failed.

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::options::{
    Bug, Fault, RunOptions, Workload, parse_duration, parse_seed_range, parse_set,
};
use crate::run::{self, RunReport};
use crate::sweep::{self, SweepSummary};

/// Deterministic simulation of cairn clusters under faults, every history checked.
#[derive(Debug, Parser)]
#[command(name = "cairn-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print the members' logs at this level (e.g. info, debug; default: none).
    #[arg(long, global = true)]
    log: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one seed and check its history.
    Run {
        /// The seed: every choice of the run follows from it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        run: RunArgs,
        /// Where to write the history and reports (default: target/cairn-sim/seed-<S>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run many seeds in parallel; print a summary and the replay command of each failure.
    Sweep {
        /// Seeds to run: `1..1000` (end excluded), `1..=1000`, or one seed.
        #[arg(long, default_value = "1..100", value_parser = parse_seed_range)]
        seeds: Range<u64>,
        /// Parallel jobs (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Stop at the first failing seed.
        #[arg(long)]
        stop_at_first_failure: bool,
        #[command(flatten)]
        run: RunArgs,
        /// Where failing seeds' files go, one directory per seed (default: target/cairn-sim).
        #[arg(long, default_value = "target/cairn-sim")]
        out: PathBuf,
    },
}

/// What every run of the command does.
#[derive(Debug, Args)]
struct RunArgs {
    /// Cluster members.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Simulated length of the safety phase (faults on): 60s, 500ms, 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Workloads: all, or a list of kv, txn, delete, compact, watch, lease.
    #[arg(long, default_value = "all", value_parser = parse_workloads)]
    workload: std::collections::BTreeSet<Workload>,
    /// Faults: all, none, or a list of partition, loss, kill, power, fsync, pause, clock, member.
    #[arg(long, default_value = "all", value_parser = parse_faults)]
    faults: std::collections::BTreeSet<Fault>,
    /// Injected bugs to switch on: ack-before-fsync, local-reads, drop-watch-event,
    /// lease-expiry-on-follower, compaction-without-log (default: none).
    #[arg(long, default_value = "none", value_parser = parse_bugs)]
    bug: std::collections::BTreeSet<Bug>,
}

fn parse_workloads(text: &str) -> Result<std::collections::BTreeSet<Workload>, String> {
    parse_set(text, &Workload::ALL, Workload::name)
}

fn parse_faults(text: &str) -> Result<std::collections::BTreeSet<Fault>, String> {
    parse_set(text, &Fault::ALL, Fault::name)
}

fn parse_bugs(text: &str) -> Result<std::collections::BTreeSet<Bug>, String> {
    parse_set(text, &Bug::ALL, Bug::name)
}

impl RunArgs {
    fn options(&self, seed: u64) -> Result<RunOptions, String> {
        if self.nodes == 0 || self.nodes > 9 {
            return Err(format!("--nodes must be 1..=9, not {}", self.nodes));
        }
        if self.clients == 0 || self.clients > 50 {
            return Err(format!("--clients must be 1..=50, not {}", self.clients));
        }
        Ok(RunOptions {
            seed,
            nodes: self.nodes,
            clients: self.clients,
            duration: self.duration,
            workloads: self.workload.clone(),
            faults: self.faults.clone(),
            bugs: self.bug.clone(),
        })
    }
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(level) = &cli.log {
        init_logging(level);
    }
    let result = match cli.command {
        Command::Run { seed, run, out } => run_one(seed, &run, out),
        Command::Sweep {
            seeds,
            jobs,
            stop_at_first_failure,
            run,
            out,
        } => run_sweep(seeds, jobs, stop_at_first_failure, &run, &out),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cairn-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run_one(seed: u64, args: &RunArgs, out: Option<PathBuf>) -> Result<bool, String> {
    let options = args.options(seed)?;
    eprintln!("running {}", options.replay_command());
    let report = run::run(&options);
    print!("{}", report.summary());
    let dir = out.unwrap_or_else(|| seed_dir(Path::new("target/cairn-sim"), seed));
    write_report(&report, &dir)?;
    Ok(report.passed())
}

fn seed_dir(root: &Path, seed: u64) -> PathBuf {
    root.join(format!("seed-{seed}"))
}

fn write_report(report: &RunReport, dir: &Path) -> Result<(), String> {
    let written = report
        .write_to(dir)
        .map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("  wrote {}", names.join(", "));
    Ok(())
}

fn run_sweep(
    seeds: Range<u64>,
    jobs: Option<usize>,
    stop_at_first_failure: bool,
    args: &RunArgs,
    out: &Path,
) -> Result<bool, String> {
    let options = args.options(seeds.start)?;
    let jobs = jobs.unwrap_or_else(default_jobs).max(1);
    let total = seeds.end.saturating_sub(seeds.start);
    eprintln!(
        "sweeping {total} seeds ({}..{}) on {jobs} jobs: {}",
        seeds.start,
        seeds.end,
        options
            .replay_command()
            .replace(" run --seed ", " run --seed S #")
    );
    let mut progress = Progress::new(total);
    let summary = sweep::sweep(
        &options,
        seeds,
        jobs,
        stop_at_first_failure,
        |report, done| {
            progress.update(report, done);
            if !report.passed() {
                progress.failure(report, out);
            }
        },
    );
    progress.finish();
    print!("{}", summary.text(jobs));
    Ok(summary_passed(&summary))
}

fn summary_passed(summary: &SweepSummary) -> bool {
    summary.failures.is_empty()
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The sweep's progress line (redrawn on a terminal, every tenth on a pipe).
struct Progress {
    total: u64,
    failed: u64,
    started: std::time::Instant,
    terminal: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            failed: 0,
            started: std::time::Instant::now(),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, report: &RunReport, done: u64) {
        if !report.passed() {
            self.failed += 1;
        }
        let step = (self.total / 10).max(1);
        if !self.terminal && !done.is_multiple_of(step) && done != self.total {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        let left = self.total.saturating_sub(done) as f64 / rate.max(1e-9);
        let line = format!(
            "[{done:>5}/{}] {} failed, {rate:.2} seeds/s, {elapsed:.0}s elapsed, ~{left:.0}s left",
            self.total, self.failed
        );
        if self.terminal {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
    }

    fn failure(&self, report: &RunReport, out: &Path) {
        if self.terminal {
            eprintln!();
        }
        eprint!("{}", report.summary());
        let dir = seed_dir(out, report.options.seed);
        if let Err(e) = report.write_to(&dir) {
            eprintln!("  cannot write to {}: {e}", dir.display());
        } else {
            eprintln!("  files in {}", dir.display());
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
