//! The closed loop every request-per-call scenario runs (etcd's benchmark workers): each
//! of `--clients` tasks takes the next request number from a shared counter, waits for its
//! slot when `--rate` is set (request `n` starts no earlier than `n / rate` seconds after
//! the start), sends it, and records how long the answer took. Each task keeps its own
//! samples; they are merged once at the end, so recording costs no locking.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_client::{Client, ClientError};
use tokio::time::Instant;

use super::pool::Pool;
use super::progress::Progress;
use super::report::Report;

/// The future of one request.
pub type Call = Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send>>;

/// Builds request number `n` for benchmark client `worker` on connection `client`.
pub type MakeCall = Arc<dyn Fn(Arc<Client>, usize, u64) -> Call + Send + Sync>;

/// How many requests, how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Requests in all.
    pub total: u64,
    /// Requests per second over all clients; 0 is no limit.
    pub rate: u64,
    /// Concurrent clients.
    pub clients: usize,
}

/// Runs `plan` with `make_call` over `pool`; the report is named `name`.
pub async fn closed_loop(name: &str, pool: &Pool, plan: Plan, make_call: MakeCall) -> Report {
    let progress = Progress::start(name, plan.total);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..plan.clients)
        .map(|worker| {
            let task = Worker {
                client: pool.client(worker),
                index: worker,
                next: next.clone(),
                done: progress.counter(),
                plan,
                started,
                make_call: make_call.clone(),
            };
            tokio::spawn(task.run())
        })
        .collect();
    let mut report = Report::new(name);
    for worker in workers {
        match worker.await {
            Ok(samples) => report.merge(samples),
            Err(e) => {
                *report
                    .errors
                    .entry(format!("client task failed: {e}"))
                    .or_insert(0) += 1
            }
        }
    }
    report.finish(started.elapsed());
    progress.finish();
    report
}

/// One benchmark client.
struct Worker {
    client: Arc<Client>,
    index: usize,
    next: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    plan: Plan,
    started: Instant,
    make_call: MakeCall,
}

impl Worker {
    async fn run(self) -> Report {
        let mut samples = Report::new("");
        let share = self.plan.total / self.plan.clients.max(1) as u64 + 1;
        samples
            .latencies
            .reserve(usize::try_from(share).unwrap_or(0));
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if n >= self.plan.total {
                return samples;
            }
            if self.plan.rate > 0 {
                let offset = Duration::from_secs_f64(n as f64 / self.plan.rate as f64);
                tokio::time::sleep_until(self.started + offset).await;
            }
            let call = (self.make_call)(self.client.clone(), self.index, n);
            let sent = Instant::now();
            let outcome = call.await;
            let took = sent.elapsed();
            match outcome {
                Ok(()) => samples.latencies.push(took.as_secs_f64()),
                Err(e) => *samples.errors.entry(e.to_string()).or_insert(0) += 1,
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}
