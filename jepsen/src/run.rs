//! `cairn-jepsen run`: the real-process fault runner.
//!
//! It starts N `cairn` processes on 127.0.0.1 (each with its own data dir and log under the
//! run dir), puts a fault-injecting TCP proxy ([`proxy`]) in front of every member's peer
//! listener (the advertised peer URLs in `--initial-cluster` are the proxy ports), and runs
//! a seeded nemesis schedule ([`nemesis`]: SIGKILL + restart, SIGSTOP/SIGCONT, partitions,
//! leader isolation, one-way cuts, delays, drops) while client processes run the register
//! workload ([`register`]) and the watch workload ([`watcher`]) for the time limit. Then it
//! heals every fault, waits until all members have the same revision and `HashKV`
//! ([`converge`]), writes the history (`history.jsonl`, the crate's JSONL format) and the
//! watch records (`watch.jsonl`), and runs the linearizability checker and the watch
//! checker; on a violation it writes the HTML report (`history.html`).
//!
//! With [`RunOptions::endpoints`] it runs the same workload against an external cluster
//! (e.g. the reference etcd), without a nemesis; it first deletes the register keys (`r/*`)
//! an earlier run may have left there.

pub mod cluster;
pub mod converge;
pub mod nemesis;
pub mod proxy;
pub mod register;
pub mod rng;
pub mod watcher;

use std::fmt::Write as _;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::pb::etcdserverpb::{DeleteRangeRequest, RangeRequest};
use cairn_client::{Client, ConnectOptions};

use crate::linearizability::{Budget, CheckResult, Verdict};
use crate::model::ModelKind;
use crate::watch::{WatchHistory, WatchVerdict};
use crate::{History, report};

use cluster::{Ports, Processes};
use nemesis::{Fault, Nemesis, NemesisLog};
use proxy::{Faults, ProcOwners, Proxy};
use watcher::{WatchLog, WatchTarget, watch_client};

/// How long the members may take to serve after they start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the members may take to converge after the faults are healed.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the watchers may take to catch up with the converged revision.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// What `cairn-jepsen run` does.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The `cairn` binary.
    pub binary: PathBuf,
    /// How many members to start.
    pub nodes: usize,
    /// The run dir: data dirs, member logs, history, watch records, report.
    pub dir: PathBuf,
    /// How long the workload and the nemesis run.
    pub time_limit: Duration,
    /// The seed of every random choice.
    pub seed: u64,
    /// Register client processes running at once.
    pub concurrency: u64,
    /// Watch clients.
    pub watchers: u64,
    /// Register keys.
    pub keys: u64,
    /// The faults the nemesis draws from (empty: none).
    pub nemesis: Vec<Fault>,
    /// An external cluster to run against instead of starting processes (no nemesis).
    pub endpoints: Option<Vec<String>>,
    /// Ports from here on (3 per member: client, peer, proxy); `None`: ephemeral ports.
    pub base_port: Option<u16>,
    /// Limit of one client call.
    pub request_timeout: Duration,
    /// The linearizability checker's budget.
    pub budget: Budget,
}

/// What a run found.
pub struct RunReport {
    /// The history file.
    pub history_path: PathBuf,
    /// The watch record file.
    pub watch_path: PathBuf,
    /// The linearizability verdict.
    pub verdict: Verdict,
    /// The checker's result (for the summary).
    pub result: CheckResult,
    /// The history checked.
    pub history: History,
    /// The watch checker's verdict (`None`: not checked, see `converged`).
    pub watch: Option<WatchVerdict>,
    /// The revision every member agreed on, or why they did not converge.
    pub converged: Result<i64, String>,
    /// The HTML report, for a violation.
    pub html: Option<PathBuf>,
    /// Register operations by outcome: ok, fail, info.
    pub counts: (usize, usize, usize),
    /// Watch chains and the events they received.
    pub watch_counts: (usize, usize),
    /// Connections the proxies could not attribute to a member.
    pub unresolved_connections: u64,
}

impl RunReport {
    /// 0 if the history is linearizable, the watchers kept every guarantee and the members
    /// converged; 1 otherwise (as `check`).
    pub fn exit_code(&self) -> u8 {
        let watch_ok = matches!(self.watch, Some(WatchVerdict::Ok));
        if self.verdict == Verdict::Linearizable && watch_ok && self.converged.is_ok() {
            0
        } else {
            1
        }
    }
}

/// Why a run could not be carried out (not a verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file or process could not be handled.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The cluster did not come up, or the run broke down.
    #[error("{0}")]
    Setup(String),
}

/// Runs the whole thing: cluster, workload and nemesis, convergence, checks.
pub fn run(options: &RunOptions) -> Result<RunReport, RunError> {
    std::fs::create_dir_all(&options.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(options))
}

fn ports(options: &RunOptions) -> io::Result<Vec<Ports>> {
    (0..options.nodes)
        .map(|i| match options.base_port {
            Some(base) => {
                let port = |k: usize| {
                    u16::try_from(usize::from(base) + 3 * i + k)
                        .map_err(|_| io::Error::other("--base-port is too high for the members"))
                };
                Ok(Ports {
                    client: port(0)?,
                    peer: port(1)?,
                    proxy: port(2)?,
                })
            }
            None => Ok(Ports {
                client: free_port()?,
                peer: free_port()?,
                proxy: free_port()?,
            }),
        })
        .collect()
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until every endpoint answers a linearizable read.
async fn wait_serving(endpoints: &[String]) -> Result<(), RunError> {
    let options = ConnectOptions {
        dial_timeout: Some(Duration::from_millis(500)),
        request_timeout: Some(Duration::from_secs(1)),
        tls: None,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    for endpoint in endpoints {
        loop {
            let probe =
                match Client::connect_with(std::slice::from_ref(endpoint), options.clone()).await {
                    Ok(client) => client
                        .kv_range(RangeRequest {
                            key: register::key(0).into_bytes(),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                };
            match probe {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(RunError::Setup(format!(
                        "{endpoint} did not serve within {START_TIMEOUT:?}: {e}"
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}

/// Deletes the register keys an earlier run left in an external cluster: the register
/// model starts every key absent.
async fn clear_registers(endpoints: &[String]) -> Result<(), RunError> {
    let options = ConnectOptions {
        dial_timeout: Some(Duration::from_secs(1)),
        request_timeout: Some(Duration::from_secs(5)),
        tls: None,
    };
    let mut range_end = register::KEY_PREFIX.as_bytes().to_vec();
    if let Some(last) = range_end.last_mut() {
        *last += 1;
    }
    let request = DeleteRangeRequest {
        key: register::KEY_PREFIX.as_bytes().to_vec(),
        range_end,
        ..Default::default()
    };
    let client = Client::connect_with(endpoints, options)
        .await
        .map_err(|e| RunError::Setup(format!("cannot connect to {endpoints:?}: {e}")))?;
    client
        .kv_delete_range(request)
        .await
        .map_err(|e| RunError::Setup(format!("cannot clear the register keys: {e}")))?;
    Ok(())
}

/// The member processes and the proxies of a run that started its own cluster.
struct Own {
    processes: Arc<Mutex<Processes>>,
    faults: Faults,
    _proxies: Vec<Proxy>,
}

async fn start_cluster(options: &RunOptions) -> Result<(Own, Vec<String>), RunError> {
    if options.nodes == 0 {
        return Err(RunError::Setup("--nodes must be at least 1".into()));
    }
    let ports = ports(options)?;
    let owners = ProcOwners::new(options.nodes);
    let faults = Faults::new();
    let mut proxies = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let proxy = Proxy::start(
            p.proxy_addr(),
            p.peer_addr(),
            i,
            faults.clone(),
            owners.resolver(),
            options.seed,
        )
        .await
        .map_err(|e| RunError::Setup(format!("cannot listen on {}: {e}", p.proxy_addr())))?;
        proxies.push(proxy);
    }
    let mut processes = Processes::plan(&options.binary, &options.dir, &ports, owners);
    for i in 0..options.nodes {
        processes.start(i)?;
    }
    let endpoints = processes.endpoints();
    let own = Own {
        processes: Arc::new(Mutex::new(processes)),
        faults,
        _proxies: proxies,
    };
    wait_serving(&endpoints).await?;
    Ok((own, endpoints))
}

async fn run_async(options: &RunOptions) -> Result<RunReport, RunError> {
    let (own, endpoints) = match &options.endpoints {
        Some(endpoints) => {
            wait_serving(endpoints).await?;
            clear_registers(endpoints).await?;
            (None, endpoints.clone())
        }
        None => {
            let (own, endpoints) = start_cluster(options).await?;
            (Some(own), endpoints)
        }
    };
    eprintln!(
        "cairn-jepsen run: seed {}, endpoints {}",
        options.seed,
        endpoints.join(",")
    );
    let start = Instant::now();
    let deadline = start + options.time_limit;
    let log = NemesisLog::new(start);

    let recorder = register::Recorder::new(start);
    let workload = register::Workload {
        endpoints: endpoints.clone(),
        keys: options.keys.max(1),
        concurrency: options.concurrency.max(1),
        request_timeout: options.request_timeout,
        deadline,
        seed: options.seed,
    };
    let clients: Vec<_> = (0..workload.concurrency)
        .map(|c| tokio::spawn(register::client(workload.clone(), c, recorder.clone())))
        .collect();
    let watch_log = WatchLog::new();
    let target = WatchTarget::new();
    let watchers: Vec<_> = (0..options.watchers)
        .map(|w| {
            let client = watch_client(
                w,
                endpoints.clone(),
                workload.keys,
                options.seed,
                watch_log.clone(),
            );
            tokio::spawn(client.run(target.clone()))
        })
        .collect();
    let nemesis = own.as_ref().map(|own| {
        let nemesis = Nemesis {
            processes: own.processes.clone(),
            faults: own.faults.clone(),
            kinds: options.nemesis.clone(),
            rng: rng::Rng::fork(options.seed, 0),
            log: log.clone(),
        };
        tokio::spawn(nemesis.run(deadline))
    });

    for client in clients {
        let _ = client.await;
    }
    if let Some(nemesis) = nemesis {
        let _ = nemesis.await;
    }
    if let Some(own) = &own {
        own.faults.heal();
        own.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .heal()?;
        log.note("heal everything");
    }
    let converged = converge::wait_converged(&endpoints, CONVERGE_TIMEOUT).await;
    match &converged {
        Ok(revision) => log.note(format!("converged at revision {revision}")),
        Err(e) => log.note(e),
    }
    let mut watch = None;
    let mut watch_history = WatchHistory::default();
    if let Ok(revision) = converged {
        target.set(revision);
        let catch_up = Instant::now() + CATCH_UP_TIMEOUT;
        for watcher in &watchers {
            let left = catch_up.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, async {
                while !watcher.is_finished() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .is_err()
            {
                log.note("a watcher did not catch up in time");
                break;
            }
        }
        for watcher in &watchers {
            watcher.abort();
        }
        let committed = converge::committed(&endpoints[0], revision)
            .await
            .map_err(RunError::Setup)?;
        watch_history = WatchHistory {
            commits: committed,
            compactions: Vec::new(),
            watchers: watch_log.snapshot(),
        };
    } else {
        for watcher in &watchers {
            watcher.abort();
        }
    }
    let unresolved_connections = own.as_ref().map_or(0, |own| own.faults.unresolved());
    if let Some(own) = own {
        own.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .kill_all();
    }

    let history = recorder
        .take()
        .map_err(|e| RunError::Setup(format!("the runner recorded an impossible history: {e}")))?;
    let history_path = options.dir.join("history.jsonl");
    let watch_path = options.dir.join("watch.jsonl");
    write_with(&history_path, |out| {
        crate::format::jsonl::write(&history, out)
    })?;
    write_with(&watch_path, |out| {
        crate::watch::jsonl::write(&watch_history, out)
    })?;
    let mut nemesis_text = String::new();
    for line in log.lines() {
        let _ = writeln!(nemesis_text, "{line}");
    }
    std::fs::write(options.dir.join("nemesis.log"), nemesis_text)?;

    let result = crate::check(&history, ModelKind::Register, &options.budget)
        .map_err(|e| RunError::Setup(format!("the runner recorded an unusable history: {e}")))?;
    if converged.is_ok() {
        watch = Some(crate::watch::check(&watch_history).map_err(|e| {
            RunError::Setup(format!("the committed history read back is malformed: {e}"))
        })?);
    }
    let mut html = None;
    if result.verdict == Verdict::Violation {
        let file = history_path.display().to_string();
        let target = options.dir.join("history.html");
        std::fs::write(&target, report::html(&file, &history, &result))?;
        html = Some(target);
    }
    let count = |o: crate::Outcome| history.ops.iter().filter(|op| op.outcome == o).count();
    let counts = (
        count(crate::Outcome::Ok),
        count(crate::Outcome::Fail),
        count(crate::Outcome::Info),
    );
    let watch_counts = (
        watch_history.watchers.len(),
        watch_history
            .watchers
            .iter()
            .flat_map(|w| &w.responses)
            .map(|r| r.events.len())
            .sum(),
    );
    Ok(RunReport {
        history_path,
        watch_path,
        verdict: result.verdict,
        result,
        history,
        watch,
        converged,
        html,
        counts,
        watch_counts,
        unresolved_connections,
    })
}

fn write_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    write(&mut out)?;
    io::Write::flush(&mut out)
}
