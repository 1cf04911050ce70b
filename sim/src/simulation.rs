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

use crate::cluster::SimCluster;
use crate::convergence::{self, Agreement};
use crate::failure::{Failure, Kind};
use crate::nemesis::Nemesis;
use crate::options::{RunOptions, Workload};
use crate::recorder::{Record, Recorder};
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

/// What a run leaves behind for checking.
#[derive(Debug)]
pub struct Outcome {
    /// The record of every client call.
    pub record: Record,
    /// The nemesis's log of faults.
    pub fault_log: String,
    /// Liveness and convergence failures, and data lost at the end.
    pub failures: Vec<Failure>,
    /// Simulated time the run took.
    pub simulated: Duration,
}

/// Runs the whole simulation for `options` (call inside a madsim runtime).
pub async fn simulate(options: RunOptions) -> Outcome {
    for bug in &options.bugs {
        cairn_core::buggify::set(*bug, true);
    }
    sim_faults::set(MessageFaults::default());
    let cluster = SimCluster::start(options.nodes);
    let recorder = Recorder::new();
    let client_host = Handle::current()
        .create_node()
        .name("clients")
        .ip(CLIENT_IP)
        .build();
    let mut run = Run {
        options,
        cluster: &cluster,
        recorder: recorder.clone(),
        client_host,
        failures: Vec::new(),
    };
    let fault_log = run.phases().await;
    let failures = std::mem::take(&mut run.failures);
    drop(run);
    Outcome {
        record: recorder.finish(),
        fault_log,
        failures,
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
}

impl Run<'_> {
    /// Runs every phase; returns the fault log.
    async fn phases(&mut self) -> String {
        let mut nemesis = Nemesis::new(self.cluster, self.options.faults.iter().copied());
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
        nemesis.run_for(self.options.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut clients = Vec::with_capacity(tasks.len());
        for task in tasks {
            clients.push(task.await.expect("client task"));
        }
        clients
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
                if let crate::workload::Progress::Stalled(why) = last_read {
                    self.failures.push(Failure::new(
                        Kind::Liveness,
                        format!("the final read got no answer: {why}"),
                    ));
                }
            }
        }
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
