//! One simulated run, inside madsim: start the cluster, run the workloads under the nemesis
//! (safety phase), heal everything and demand progress and convergence (liveness phase),
//! then read every register one last time.
//!
//! Everything here happens in simulated time and draws from madsim's seeded rng, so the run
//! (and the history it records) is a function of the [`RunOptions`]. Checking the record
//! happens afterwards, outside the simulation ([`crate::run`]).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_node::peer::sim_faults::{self, MessageFaults};
use madsim::runtime::{Handle, NodeHandle};

use cairn_jepsen::watch::WatchHistory;

use crate::archive::LogArchive;
use crate::cluster::{LogCompaction, SimCluster};
use crate::convergence::{self, Agreement};
use crate::failure::{Failure, Kind};
use crate::lease::{LeaseClient, LeaseLog};
use crate::nemesis::Nemesis;
use crate::options::{RunOptions, Workload};
use crate::recorder::{Record, Recorder};
use crate::watcher::{LEASE_KEY_PREFIX, WatchLog, WatchTarget, watch_client};
use crate::workload::SimClient;

/// Address of the host the clients run on.
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
/// How long the first election may take.
const FIRST_LEADER_BOUND: Duration = Duration::from_secs(30);
/// How long the healed cluster has to elect a leader everyone follows.
const HEALED_LEADER_BOUND: Duration = Duration::from_secs(30);
/// Calls each client must get answered in the liveness phase.
const LIVENESS_CALLS: usize = 10;
/// How long the liveness calls may take, all clients together.
const LIVENESS_CALLS_BOUND: Duration = Duration::from_secs(60);
/// How long the members have to apply the same log prefix.
const AGREEMENT_BOUND: Duration = Duration::from_secs(30);
/// Watch client processes (with the watch workload).
const WATCH_CLIENTS: u64 = 2;
/// Lease client processes (with the lease workload).
const LEASE_CLIENTS: u64 = 2;
/// Client ids of the watch and lease processes start here (above any kv client's).
const OTHER_CLIENT_IDS: u64 = 1000;
/// How long every lease has to be revoked once the keep-alives stopped: the longest TTL,
/// a new leader's extension, and slack for the revokes to commit.
const LEASE_REVOKE_BOUND: Duration = Duration::from_secs(30);
/// How long the watchers have to catch up with the agreed revision.
const WATCH_CATCH_UP_BOUND: Duration = Duration::from_secs(30);

/// What a run leaves behind for checking.
#[derive(Debug)]
pub struct Outcome {
    /// The record of every client call.
    pub record: Record,
    /// The nemesis's log of faults.
    pub fault_log: String,
    /// Liveness and convergence failures, and data lost at the end.
    pub failures: Vec<Failure>,
    /// The watchers' record with the committed history (with the watch workload, when the
    /// run got as far as rebuilding the history).
    pub watch: Option<WatchHistory>,
    /// Breaches of lease safety (with the lease workload).
    pub lease_breaches: Vec<String>,
    /// Simulated time the run took.
    pub simulated: Duration,
}

/// Runs the whole simulation for `options` (call inside a madsim runtime).
pub async fn simulate(options: RunOptions) -> Outcome {
    for bug in &options.bugs {
        cairn_core::buggify::set(*bug, true);
    }
    sim_faults::set(MessageFaults::default());
    let compaction = draw_log_compaction();
    let cluster = SimCluster::start_with(options.nodes, compaction);
    let recorder = Recorder::new();
    let client_host = Handle::current()
        .create_node()
        .name("clients")
        .ip(CLIENT_IP)
        .build();
    let lease_log = LeaseLog::new();
    let mut run = Run {
        options,
        cluster: &cluster,
        recorder: recorder.clone(),
        client_host,
        failures: Vec::new(),
        watch_log: WatchLog::new(),
        watch_target: WatchTarget::new(),
        watchers: Vec::new(),
        lease_log: lease_log.clone(),
        watch: None,
        archive: LogArchive::new(),
    };
    let fault_log = run.phases(compaction).await;
    let mut failures = std::mem::take(&mut run.failures);
    failures.extend(
        run.archive
            .conflicts()
            .into_iter()
            .map(|c| Failure::new(Kind::Convergence, c)),
    );
    let watch = run.watch.take();
    drop(run);
    Outcome {
        record: recorder.finish(),
        fault_log,
        failures,
        watch,
        lease_breaches: lease_log.breaches(),
        simulated: madsim::time::TimeHandle::current().elapsed(),
    }
}

/// The state of a run in progress.
struct Run<'a> {
    options: RunOptions,
    cluster: &'a SimCluster,
    recorder: Recorder,
    client_host: NodeHandle,
    failures: Vec<Failure>,
    watch_log: WatchLog,
    watch_target: Arc<WatchTarget>,
    /// The running watch clients; each returns the revision it got to.
    watchers: Vec<madsim::task::JoinHandle<i64>>,
    lease_log: LeaseLog,
    /// The watch record and committed history, once rebuilt.
    watch: Option<WatchHistory>,
    /// Every committed entry, read from the members as they apply them.
    archive: LogArchive,
}

/// How the members compact their Raft logs, drawn from the seed: etcd's defaults (the log
/// is never compacted in a run) half of the time, else often, so that members that were
/// down or cut off catch up by snapshot.
fn draw_log_compaction() -> LogCompaction {
    use madsim::rand::Rng as _;
    let mut rng = madsim::rand::thread_rng();
    if rng.gen_bool(0.5) {
        return LogCompaction::DEFAULT;
    }
    LogCompaction {
        snapshot_count: rng.gen_range(50..=1000),
        catch_up_entries: rng.gen_range(20..=200),
    }
}

impl Run<'_> {
    /// Runs every phase while the archive reads the members' logs; returns the fault log.
    async fn phases(&mut self, compaction: LogCompaction) -> String {
        let archive = self.archive.clone();
        let cluster = self.cluster;
        // `biased`: tokio's random branch order is not reproducible across runs in one
        // process (see cairn_node's `select!`).
        tokio::select! {
            biased;
            log = self.all_phases(compaction) => log,
            () = archive.keep_collecting(cluster) => unreachable!("the archive collects for ever"),
        }
    }

    async fn all_phases(&mut self, compaction: LogCompaction) -> String {
        let mut nemesis = Nemesis::new(
            self.cluster,
            self.client_host.clone(),
            self.options.faults.iter().copied(),
        );
        if compaction != LogCompaction::DEFAULT {
            nemesis.note(&format!(
                "members compact their logs every {} entries, keeping {}",
                compaction.snapshot_count, compaction.catch_up_entries
            ));
        }
        if !self
            .bounded(
                FIRST_LEADER_BOUND,
                "electing a first leader",
                convergence::wait_for_leader(self.cluster),
            )
            .await
        {
            return nemesis.log().to_string();
        }
        let clients = self.safety_phase(&mut nemesis).await;
        nemesis.heal().await;
        // A member that stopped by itself as the safety phase ended (a failed fsync) may not
        // have been noticed yet: the supervisor keeps restarting members meanwhile.
        tokio::select! {
            biased;
            () = self.liveness_phase(clients) => {}
            () = nemesis.keep_restarting() => {}
        }
        nemesis.log().to_string()
    }

    /// Clients run while the nemesis injects faults; returns the clients.
    async fn safety_phase(&mut self, nemesis: &mut Nemesis<'_>) -> Vec<SimClient> {
        let stop = Arc::new(AtomicBool::new(false));
        let workloads: Vec<Workload> = self.options.workloads.iter().copied().collect();
        let tasks: Vec<_> = (0..self.options.clients as u64)
            .map(|id| {
                let client = SimClient::new(
                    id,
                    self.cluster.endpoints(),
                    &workloads,
                    self.recorder.clone(),
                );
                self.client_host.spawn(client.run_until(stop.clone()))
            })
            .collect();
        self.start_watchers();
        let lease_tasks = self.start_lease_clients(&stop);
        nemesis.run_for(self.options.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut clients = Vec::with_capacity(tasks.len());
        for task in tasks {
            clients.push(task.await.expect("client task"));
        }
        for task in lease_tasks {
            task.await.expect("lease client task");
        }
        clients
    }

    /// With the watch workload: the watch clients, running until the liveness phase sets
    /// their target and they reach it.
    fn start_watchers(&mut self) {
        if !self.options.workloads.contains(&Workload::Watch) {
            return;
        }
        for i in 0..WATCH_CLIENTS {
            let client = watch_client(
                OTHER_CLIENT_IDS + i,
                self.cluster.endpoints(),
                self.watch_log.clone(),
            );
            let target = self.watch_target.clone();
            self.watchers
                .push(self.client_host.spawn(client.run(target)));
        }
    }

    /// With the lease workload: the lease clients, running until `stop`.
    fn start_lease_clients(&self, stop: &Arc<AtomicBool>) -> Vec<madsim::task::JoinHandle<()>> {
        if !self.options.workloads.contains(&Workload::Lease) {
            return Vec::new();
        }
        (0..LEASE_CLIENTS)
            .map(|i| {
                let client = LeaseClient::new(
                    OTHER_CLIENT_IDS + WATCH_CLIENTS + i,
                    self.cluster.endpoints(),
                    self.lease_log.clone(),
                );
                self.client_host.spawn(client.run_until(stop.clone()))
            })
            .collect()
    }

    /// Everything is healed: a leader, answers to every client, the same state everywhere.
    async fn liveness_phase(&mut self, clients: Vec<SimClient>) {
        let cluster = self.cluster;
        let leader = convergence::wait_for_leader(cluster);
        if !self
            .bounded(
                HEALED_LEADER_BOUND,
                "electing a leader after healing",
                leader,
            )
            .await
        {
            return;
        }
        if !self.clients_progress(clients).await {
            return;
        }
        if !self.leases_revoked().await {
            return;
        }
        let final_reader = SimClient::new(
            self.options.clients as u64,
            cluster.endpoints(),
            &[],
            self.recorder.clone(),
        );
        let agreement = convergence::wait_for_agreement(cluster);
        let Some(agreement) = self
            .bounded_value(AGREEMENT_BOUND, "members applying the same log", agreement)
            .await
        else {
            return;
        };
        self.final_checks(final_reader, agreement).await;
        if !self.watchers.is_empty() {
            self.watchers_catch_up(agreement).await;
        }
    }

    /// With the keep-alives stopped, every lease is revoked within the bound.
    async fn leases_revoked(&mut self) -> bool {
        let endpoints = self.cluster.endpoints();
        let log = self.lease_log.clone();
        let task = self
            .client_host
            .spawn(crate::lease::wait_for_revocations(endpoints, log));
        let waited = self
            .bounded_value(
                LEASE_REVOKE_BOUND,
                "revoking every lease once the keep-alives stopped",
                task,
            )
            .await;
        if waited.is_none() {
            let live: Vec<String> = self
                .lease_log
                .live()
                .iter()
                .map(|id| format!("{id:x}"))
                .collect();
            self.failures.push(Failure::new(
                Kind::Liveness,
                format!("leases never revoked: {}", live.join(", ")),
            ));
        }
        waited.is_some()
    }

    /// Every watcher gets everything up to the agreed revision; then the committed history
    /// is rebuilt from the log for the watch checker.
    async fn watchers_catch_up(&mut self, agreement: Agreement) {
        self.watch_target.set(agreement.revision);
        let watchers = std::mem::take(&mut self.watchers);
        let all = async move {
            let mut reached = Vec::new();
            for task in watchers {
                reached.push(task.await.expect("watch client task"));
            }
            reached
        };
        if self
            .bounded_value(
                WATCH_CATCH_UP_BOUND,
                &format!("watchers catching up with revision {}", agreement.revision),
                all,
            )
            .await
            .is_none()
        {
            return;
        }
        // Whatever a watcher received was applied by its member, hence committed: once the
        // members agree again, their logs hold it.
        let cluster = self.cluster;
        let Some(agreement) = self
            .bounded_value(
                AGREEMENT_BOUND,
                "members applying the same log after the watchers stopped",
                convergence::wait_for_agreement(cluster),
            )
            .await
        else {
            return;
        };
        match self.committed_history(agreement) {
            Ok(committed) => {
                self.watch = Some(WatchHistory {
                    commits: committed.commits,
                    compactions: committed.compactions,
                    watchers: self.watch_log.snapshot(),
                });
            }
            Err(e) => self.failures.push(Failure::new(Kind::Watch, e)),
        }
    }

    /// The committed history, from the archive of committed entries.
    fn committed_history(
        &self,
        agreement: Agreement,
    ) -> Result<crate::committed::Committed, String> {
        self.archive.collect(self.cluster);
        let entries = self.archive.entries_to(agreement.applied_index)?;
        crate::committed::from_entries(&entries)
    }

    /// Every client gets [`LIVENESS_CALLS`] calls answered, within the bound.
    async fn clients_progress(&mut self, clients: Vec<SimClient>) -> bool {
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                self.client_host
                    .spawn(async move { client.must_progress(LIVENESS_CALLS).await })
            })
            .collect();
        let all = async move {
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.expect("client task"));
            }
            results
        };
        let Some(results) = self
            .bounded_value(
                LIVENESS_CALLS_BOUND,
                "clients making progress after healing",
                all,
            )
            .await
        else {
            return false;
        };
        let stalled: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        let ok = stalled.is_empty();
        self.failures
            .extend(stalled.into_iter().map(|s| Failure::new(Kind::Liveness, s)));
        ok
    }

    /// Same data on every member, acknowledged writes present, a last read of every key.
    async fn final_checks(&mut self, mut final_reader: SimClient, agreement: Agreement) {
        if let Err(e) = convergence::compare_hashes(self.cluster, agreement) {
            self.failures.push(Failure::new(Kind::Convergence, e));
        }
        let repeated = convergence::requests_logged_twice(self.cluster);
        self.failures.extend(
            repeated
                .into_iter()
                .map(|r| Failure::new(Kind::AppliedTwice, r)),
        );
        let endpoints = self.cluster.endpoints();
        let compared = self
            .client_host
            .spawn(async move {
                let data = convergence::compare_members(&endpoints, agreement).await;
                let last_read = final_reader.read_all().await;
                (data, last_read)
            })
            .await
            .expect("final check task");
        match compared {
            (Err(e), _) => self.failures.push(Failure::new(Kind::Convergence, e)),
            (Ok(kvs), last_read) => {
                let put_once = self.recorder.put_once_snapshot();
                let lost = convergence::check_put_once(&put_once, &kvs);
                self.failures
                    .extend(lost.into_iter().map(|l| Failure::new(Kind::Durability, l)));
                self.failures.extend(
                    self.leased_keys_left(&kvs)
                        .into_iter()
                        .map(|l| Failure::new(Kind::Lease, l)),
                );
                if let crate::workload::Progress::Stalled(why) = last_read {
                    self.failures.push(Failure::new(
                        Kind::Liveness,
                        format!("the final read got no answer: {why}"),
                    ));
                }
            }
        }
    }

    /// Keys of the lease workload still there although their lease was seen revoked.
    fn leased_keys_left(&self, kvs: &[cairn_client::pb::mvccpb::KeyValue]) -> Vec<String> {
        let leases = self.lease_log.leases();
        kvs.iter()
            .filter(|kv| kv.key.starts_with(LEASE_KEY_PREFIX.as_bytes()))
            .filter(|kv| leases.get(&kv.lease).is_some_and(|l| l.gone.is_some()))
            .map(|kv| {
                format!(
                    "key {} of lease {:x} is still there after the lease was revoked",
                    String::from_utf8_lossy(&kv.key),
                    kv.lease
                )
            })
            .collect()
    }

    /// Runs `future` for at most `bound`; a timeout is a liveness failure about `what`.
    async fn bounded(
        &mut self,
        bound: Duration,
        what: &str,
        future: impl Future<Output = ()>,
    ) -> bool {
        self.bounded_value(bound, what, future).await.is_some()
    }

    async fn bounded_value<T>(
        &mut self,
        bound: Duration,
        what: &str,
        future: impl Future<Output = T>,
    ) -> Option<T> {
        match madsim::time::timeout(bound, future).await {
            Ok(value) => Some(value),
            Err(_) => {
                self.failures.push(Failure::new(
                    Kind::Liveness,
                    format!("no progress within {bound:?} {what}"),
                ));
                None
            }
        }
    }
}
