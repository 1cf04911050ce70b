//! `cairn-jepsen`: checks history files for linearizability and times the checker.
//!
//! `check` prints `FILE<TAB>linearizable|violation|unknown` per file on stdout and exits 0 if
//! all are linearizable, 1 if any is a violation or unknown, 2 if any input is malformed (the
//! `file:line: what was expected` error goes to stderr). For a violation it also prints a
//! short summary on stderr and, with `--html DIR`, writes a self-contained page there.
//! `bench` times the checker over a corpus directory.
//!
//! `check-watch` checks watch histories (see `cairn_jepsen::watch::jsonl` for the format):
//! `FILE<TAB>ok` or `FILE<TAB>violation: <message>` per file on stdout; exit 0 if all are ok,
//! 1 if any has a violation, 2 if any is malformed (`file:line: ...` on stderr).
//!
//! `run` starts a cairn cluster behind fault-injecting proxies (or uses `--endpoints`), runs
//! the register and watch workloads under a nemesis, and checks what they recorded (see
//! `cairn_jepsen::run`): it prints the seed, then `HISTORY<TAB>verdict` and
//! `WATCH<TAB>ok|violation: ...`; exit 0 if linearizable, watch-correct and converged, 1
//! otherwise, 2 if the run could not be carried out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cairn_jepsen::{
    Budget, CheckResult, Format, History, ModelKind, Verdict, bench, check, report,
    watch::{self, WatchVerdict},
};
use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_VIOLATION: u8 = 1;
const EXIT_MALFORMED: u8 = 2;
const DEFAULT_BENCH_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/jepsen-etcd"
);

#[derive(Parser)]
#[command(
    name = "cairn-jepsen",
    version,
    about = "Linearizability checking of client histories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check history files; prints FILE<TAB>linearizable|violation|unknown for each.
    Check(CheckArgs),
    /// Time the checker over every history of a corpus directory.
    Bench(BenchArgs),
    /// Check watch histories against etcd's watch guarantees; prints FILE<TAB>ok or
    /// FILE<TAB>violation: MESSAGE for each.
    CheckWatch(CheckWatchArgs),
    /// Run the register and watch workloads against real cairn processes under a nemesis
    /// (or against --endpoints), then check the history.
    #[cfg(not(madsim))]
    Run(RunArgs),
}

#[cfg(not(madsim))]
#[derive(Args)]
struct RunArgs {
    /// Members to start.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The cairn binary (default: `cairn` next to this executable).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// The run dir (default: a new one under the temp dir); it must not hold a previous run.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Seconds the workload and the nemesis run.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Seed of every random choice (default: drawn from the clock, and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Register client processes running at once.
    #[arg(long, default_value_t = 5)]
    concurrency: u64,
    /// Watch clients.
    #[arg(long, default_value_t = 2)]
    watchers: u64,
    /// Register keys.
    #[arg(long, default_value_t = 3)]
    keys: u64,
    /// Faults the nemesis draws from, comma-separated: kill, pause, partition,
    /// isolate-leader, one-way, delay, drop; `all` or `none`.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    nemesis: Vec<String>,
    /// Run against this external cluster (comma-separated client endpoints), no nemesis.
    #[arg(long, value_delimiter = ',')]
    endpoints: Option<Vec<String>>,
    /// Ports from here on, 3 per member (client, peer, proxy); default: ephemeral ports.
    #[arg(long)]
    base_port: Option<u16>,
    /// Limit of one client call, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    request_timeout_ms: u64,
    /// Wall-clock budget of the linearizability check in seconds (0: none).
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

#[derive(Args)]
struct CheckWatchArgs {
    /// Watch history files (JSONL).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// Input format (default: .edn is knossos-edn, a first line starting with `{` is jsonl,
    /// anything else porcupine-etcd).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// The model to check against.
    #[arg(long, value_enum, default_value = "register")]
    model: ModelArg,
    /// Write an HTML report for each violating file into this directory.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// Wall-clock budget per file in seconds (0: none); past it the verdict is `unknown`.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Search-step budget per file; past it the verdict is `unknown`.
    #[arg(long)]
    max_steps: Option<u64>,
    /// History files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// Corpus directory (default: the shared jepsen-etcd corpus beside the repo).
    dir: Option<PathBuf>,
    /// Checks per file.
    #[arg(long, short = 'n', default_value_t = 20)]
    iterations: u32,
    /// The model to check against.
    #[arg(long, value_enum, default_value = "register")]
    model: ModelArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Jsonl,
    PorcupineEtcd,
    KnossosEdn,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::PorcupineEtcd => Format::PorcupineEtcd,
            FormatArg::KnossosEdn => Format::KnossosEdn,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Register,
    Kv,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Register => ModelKind::Register,
            ModelArg::Kv => ModelKind::Kv,
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(args) => run_check(&args),
        Command::Bench(args) => run_bench(&args),
        Command::CheckWatch(args) => run_check_watch(&args),
        #[cfg(not(madsim))]
        Command::Run(args) => run_run(&args),
    }
}

/// What became of one file, worst last (the exit code follows the worst).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileStatus {
    /// Linearizable, or a watch history that keeps every guarantee.
    Passed,
    /// A violation (or `unknown`).
    Failed,
    Malformed,
}

fn run_check(args: &CheckArgs) -> ExitCode {
    let budget = Budget {
        max_steps: args.max_steps,
        max_duration: (args.timeout_secs > 0).then(|| Duration::from_secs(args.timeout_secs)),
    };
    let mut html_names = BTreeSet::new();
    let mut worst = FileStatus::Passed;
    for path in &args.files {
        let status = check_file(path, args, &budget, &mut html_names);
        worst = worst.max(status);
    }
    match worst {
        FileStatus::Passed => ExitCode::SUCCESS,
        FileStatus::Failed => ExitCode::from(EXIT_VIOLATION),
        FileStatus::Malformed => ExitCode::from(EXIT_MALFORMED),
    }
}

fn check_file(
    path: &Path,
    args: &CheckArgs,
    budget: &Budget,
    html_names: &mut BTreeSet<String>,
) -> FileStatus {
    let file = path.display().to_string();
    let history = match cairn_jepsen::format::load(path, args.format.map(Format::from)) {
        Ok(history) => history,
        Err(e) => {
            eprintln!("{e}");
            return FileStatus::Malformed;
        }
    };
    let result = match check(&history, args.model.into(), budget) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("{file}:{}: {}", e.line.unwrap_or(0), e.message);
            return FileStatus::Malformed;
        }
    };
    println!("{file}\t{}", result.verdict);
    match result.verdict {
        Verdict::Linearizable => FileStatus::Passed,
        Verdict::Unknown => {
            eprintln!(
                "{file}: unknown: the budget ran out after {} search steps",
                result.steps
            );
            FileStatus::Failed
        }
        Verdict::Violation => {
            report_violation(&file, &history, &result, args.html.as_deref(), html_names)
        }
    }
}

fn report_violation(
    file: &str,
    history: &History,
    result: &CheckResult,
    html_dir: Option<&Path>,
    html_names: &mut BTreeSet<String>,
) -> FileStatus {
    eprint!("{}", report::summary(file, history, result));
    let Some(dir) = html_dir else {
        return FileStatus::Failed;
    };
    let target = dir.join(html_name(file, html_names));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&target, report::html(file, history, result)));
    match written {
        Ok(()) => {
            eprintln!("  report: {}", target.display());
            FileStatus::Failed
        }
        Err(e) => {
            eprintln!("{}: cannot write the HTML report: {e}", target.display());
            FileStatus::Malformed
        }
    }
}

/// `NAME.html` from the file's name, made unique within this run.
fn html_name(file: &str, used: &mut BTreeSet<String>) -> String {
    let base = Path::new(file)
        .file_name()
        .map_or_else(|| "history".into(), |n| n.to_string_lossy().into_owned());
    let mut name = format!("{base}.html");
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}-{n}.html");
        n += 1;
    }
    name
}

fn run_bench(args: &BenchArgs) -> ExitCode {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BENCH_DIR));
    match bench::run(&dir, args.iterations, args.model.into(), &Budget::default()) {
        Ok(report) => {
            print!("{report}");
            if report.disagreements().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_VIOLATION)
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_MALFORMED)
        }
    }
}

fn run_check_watch(args: &CheckWatchArgs) -> ExitCode {
    let worst = args
        .files
        .iter()
        .map(|path| check_watch_file(path))
        .max()
        .unwrap_or(FileStatus::Passed);
    match worst {
        FileStatus::Passed => ExitCode::SUCCESS,
        FileStatus::Failed => ExitCode::from(EXIT_VIOLATION),
        FileStatus::Malformed => ExitCode::from(EXIT_MALFORMED),
    }
}

fn check_watch_file(path: &Path) -> FileStatus {
    let file = path.display().to_string();
    let history = match watch::jsonl::load(path) {
        Ok(history) => history,
        Err(e) => {
            eprintln!("{e}");
            return FileStatus::Malformed;
        }
    };
    match watch::check(&history) {
        Ok(WatchVerdict::Ok) => {
            println!("{file}\tok");
            FileStatus::Passed
        }
        Ok(WatchVerdict::Violation(violation)) => {
            println!("{file}\tviolation: {violation}");
            FileStatus::Failed
        }
        Err(e) => {
            eprintln!("{file}:{}: {}", e.line.unwrap_or(0), e.message);
            FileStatus::Malformed
        }
    }
}

#[cfg(not(madsim))]
fn run_run(args: &RunArgs) -> ExitCode {
    use cairn_jepsen::run::{self, RunOptions, nemesis::Fault};

    let mut nemesis = Vec::new();
    for name in &args.nemesis {
        match name.as_str() {
            "all" => nemesis.extend(Fault::ALL),
            "none" | "" => {}
            other => match Fault::from_name(other) {
                Some(fault) => nemesis.push(fault),
                None => {
                    eprintln!(
                        "unknown nemesis fault {other:?} (expected all, none, or some of {})",
                        Fault::ALL.map(Fault::name).join(", ")
                    );
                    return ExitCode::from(EXIT_MALFORMED);
                }
            },
        }
    }
    nemesis.sort_unstable();
    nemesis.dedup();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("cairn"),
            Err(e) => {
                eprintln!("cannot locate the cairn binary (give --binary): {e}");
                return ExitCode::from(EXIT_MALFORMED);
            }
        },
    };
    if args.endpoints.is_none() && !binary.exists() {
        eprintln!(
            "{} does not exist: build it (`cargo build -p cairn-node --bin cairn`) or give --binary",
            binary.display()
        );
        return ExitCode::from(EXIT_MALFORMED);
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cairn-jepsen-{seed}-{}", std::process::id()))
    });
    if dir.join("history.jsonl").exists() || dir.join("n0.data").exists() {
        eprintln!("{} holds a previous run: give a new --dir", dir.display());
        return ExitCode::from(EXIT_MALFORMED);
    }
    let options = RunOptions {
        binary,
        nodes: args.nodes,
        dir: dir.clone(),
        time_limit: Duration::from_secs(args.time_limit),
        seed,
        concurrency: args.concurrency,
        watchers: args.watchers,
        keys: args.keys,
        nemesis: if args.endpoints.is_some() {
            Vec::new()
        } else {
            nemesis
        },
        endpoints: args.endpoints.clone(),
        base_port: args.base_port,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        budget: Budget {
            max_steps: None,
            max_duration: (args.timeout_secs > 0).then(|| Duration::from_secs(args.timeout_secs)),
        },
    };
    println!("seed {seed}");
    println!("run dir {}", dir.display());
    let report = match run::run(&options) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cairn-jepsen run: {e}");
            return ExitCode::from(EXIT_MALFORMED);
        }
    };
    let (ok, fail, info) = report.counts;
    println!(
        "ops {ok} ok, {fail} fail, {info} info; watch {} chains, {} events",
        report.watch_counts.0, report.watch_counts.1
    );
    if report.unresolved_connections > 0 {
        println!(
            "note: {} peer connections could not be attributed to a member (forwarded without faults)",
            report.unresolved_connections
        );
    }
    let history = report.history_path.display().to_string();
    println!("{history}\t{}", report.verdict);
    if report.verdict == Verdict::Violation {
        eprint!(
            "{}",
            report::summary(&history, &report.history, &report.result)
        );
    }
    if let Some(html) = &report.html {
        eprintln!("  report: {}", html.display());
    }
    let watch_file = report.watch_path.display();
    match (&report.watch, &report.converged) {
        (Some(WatchVerdict::Ok), _) => println!("{watch_file}\tok"),
        (Some(WatchVerdict::Violation(v)), _) => println!("{watch_file}\tviolation: {v}"),
        (None, Err(e)) => println!("{watch_file}\tnot checked: {e}"),
        (None, Ok(_)) => println!("{watch_file}\tnot checked"),
    }
    if let Err(e) = &report.converged {
        println!("convergence\tfailed: {e}");
    }
    ExitCode::from(report.exit_code())
}
