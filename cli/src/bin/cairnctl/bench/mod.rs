//! `cairnctl bench`: the scenarios of etcd's benchmark tool (`tools/benchmark`) — `put`,
//! `range`, `txn-put`, `watch`, `lease-keepalive` — with its flags and defaults and its
//! report (see [`report`]), so the same command measures cairn and the reference etcd.
//!
//! Like etcd's tool, `--clients` concurrent clients share `--conns` gRPC connections
//! (client `i` uses connection `i % conns`; connection `j` dials endpoint `j % endpoints`),
//! and each client sends its next request as soon as its previous one is answered (a
//! closed loop, [`runner`]), optionally paced to `--rate` requests per second overall.
//! A scenario whose service the server does not serve (it answers `Unimplemented`) is
//! skipped with a message instead of failing.

pub mod keys;
pub mod lease_keepalive;
pub mod pool;
pub mod progress;
pub mod put;
pub mod range;
pub mod report;
pub mod runner;
pub mod txn_mixed;
pub mod txn_put;
pub mod watch;
pub mod watch_latency;

use std::time::Duration;

use cairn_client::{ClientError, Code};
use serde_json::json;

use crate::commands::CommandId;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::session::{Env, Session};
use report::Report;

/// The seed of every random choice (keys, values): runs are reproducible.
pub const SEED: u64 = 0x00ca_1127;

/// The options every scenario shares (etcd's benchmark root flags plus cairnctl's
/// global ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// `--endpoints`.
    pub endpoints: Vec<String>,
    /// `--clients`: concurrent clients.
    pub clients: usize,
    /// `--conns`: gRPC connections shared by the clients.
    pub conns: usize,
    /// `--precise`: full float precision in the text report.
    pub precise: bool,
    /// `-w json`.
    pub json: bool,
    /// `--target-leader`: connect only to the leader's client URLs.
    pub target_leader: bool,
    /// `--dial-timeout`.
    pub dial_timeout: Option<Duration>,
    /// `--cacert`, `--cert`, `--key`.
    pub tls: Option<cairn_client::TlsOptions>,
}

impl BenchOptions {
    /// The options of `invocation` (with `ETCDCTL_*` variables applied).
    pub fn resolve(
        invocation: &mut Invocation,
        env: &Env,
        console: &mut Console<'_>,
    ) -> Result<BenchOptions, CliError> {
        let globals = Session::globals(invocation, env, console)?;
        let json = match globals.write_out.as_str() {
            "simple" => false,
            "json" => true,
            other => {
                return Err(CliError::bad_feature(format!(
                    "bench prints its report as simple or json, not {other}"
                )));
            }
        };
        let values = &invocation.values;
        Ok(BenchOptions {
            clients: positive(values, "clients")?,
            conns: positive(values, "conns")?,
            precise: values.bool("precise"),
            target_leader: values.bool("target-leader"),
            dial_timeout: globals.dial_timeout(),
            tls: globals.tls.clone(),
            endpoints: globals.endpoints,
            json,
        })
    }
}

/// A flag that must be at least 1.
pub fn positive(values: &FlagValues, name: &str) -> Result<usize, CliError> {
    let value = values.int(name);
    usize::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| CliError::bad_args(format!("expected positive --{name}, got ({value})")))
}

/// A flag that must not be negative.
pub fn non_negative(values: &FlagValues, name: &str) -> Result<u64, CliError> {
    let value = values.int(name);
    u64::try_from(value).map_err(|_negative| {
        CliError::bad_args(format!("expected non-negative --{name}, got ({value})"))
    })
}

/// What a scenario produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Reports, each with the heading etcd's tool prints before it (if any); `preamble`
    /// is printed first (`bench with linearizable range`).
    Measured {
        /// A line printed before the reports, in the text format.
        preamble: Option<String>,
        /// `(heading, report)` pairs.
        reports: Vec<(Option<String>, Report)>,
    },
    /// The server does not serve what the scenario needs.
    Skipped(String),
}

impl Outcome {
    /// One report without heading.
    pub fn single(report: Report) -> Outcome {
        Outcome::Measured {
            preamble: None,
            reports: vec![(None, report)],
        }
    }
}

/// Runs a `bench` scenario.
pub async fn run(
    id: CommandId,
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let options = BenchOptions::resolve(invocation, env, console)?;
    let (values, args) = (&invocation.values, &invocation.args);
    let (name, outcome) = match id {
        CommandId::BenchPut => ("put", put::run(&options, values).await?),
        CommandId::BenchRange => ("range", range::run(&options, values, args).await?),
        CommandId::BenchTxnPut => ("txn-put", txn_put::run(&options, values).await?),
        CommandId::BenchTxnMixed => ("txn-mixed", txn_mixed::run(&options, values, args).await?),
        CommandId::BenchWatch => ("watch", watch::run(&options, values).await?),
        CommandId::BenchWatchLatency => {
            ("watch-latency", watch_latency::run(&options, values).await?)
        }
        CommandId::BenchLeaseKeepalive => (
            "lease-keepalive",
            lease_keepalive::run(&options, values).await?,
        ),
        _ => return Err(CliError::error("not a bench command")),
    };
    print(name, &options, &outcome, console);
    Ok(())
}

/// Prints an outcome in the chosen format; a skip is explained on stderr.
fn print(name: &str, options: &BenchOptions, outcome: &Outcome, console: &mut Console<'_>) {
    match (outcome, options.json) {
        (Outcome::Skipped(why), false) => console.err(&format!("bench {name} skipped: {why}\n")),
        (Outcome::Skipped(why), true) => {
            console.err(&format!("bench {name} skipped: {why}\n"));
            console.out(&format!("{}\n", json!({"benchmark": name, "skipped": why})));
        }
        (Outcome::Measured { preamble, reports }, false) => {
            if let Some(line) = preamble {
                console.out(&format!("{line}\n"));
            }
            for (heading, report) in reports {
                if let Some(heading) = heading {
                    console.out(&format!("{heading}\n"));
                }
                console.out(&report.text(options.precise));
            }
        }
        (Outcome::Measured { reports, .. }, true) => {
            let reports: Vec<_> = reports.iter().map(|(_, r)| r.json()).collect();
            let document = json!({
                "benchmark": name,
                "endpoints": options.endpoints,
                "clients": options.clients,
                "conns": options.conns,
                "reports": reports,
            });
            console.out(&format!("{document}\n"));
        }
    }
}

/// Why a scenario must be skipped, when `error` says the server lacks its service.
pub fn unimplemented(error: &ClientError, service: &str) -> Option<String> {
    (error.code() == Code::Unimplemented).then(|| {
        format!(
            "the server does not serve the {service} service (it answered Unimplemented: {})",
            error.rpc_message().unwrap_or_default()
        )
    })
}

/// A failed setup step, as an error of the command.
pub fn setup_error(step: &str, error: &ClientError) -> CliError {
    CliError::error(format!("{step}: {error}"))
}
