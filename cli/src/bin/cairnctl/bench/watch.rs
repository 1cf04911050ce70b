//! `bench watch` (etcd's `benchmark watch`): `--streams` watch streams, spread over the
//! connections, each with `--watch-per-stream` watchers on `--watched-key-total` keys;
//! then `--put-total` puts to those keys (paced by `--put-rate`), whose events every
//! watcher of the key must receive.
//!
//! Two reports, as etcd's tool prints: watch creation (here timed from the create request
//! to the server's `created` answer; etcd's tool times only its local call) and events
//! received (here timed from the start of the put that caused the event to the event's
//! arrival, found by the put's number, which is the value it writes; etcd's tool times
//! nothing there). A stream that sees no message for [`EVENT_IDLE_TIMEOUT_SECS`] while it
//! still expects events gives up and reports the missing ones as errors.
//! Skipped when the server does not serve the Watch service.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    PutRequest, WatchCreateRequest, WatchRequest, WatchResponse, watch_request,
};
use cairn_client::{Client, ClientError, WatchStream};
use tokio::time::Instant;

use super::keys;
use super::pool::Pool;
use super::progress::Progress;
use super::report::Report;
use super::{BenchOptions, Outcome, SEED, non_negative, positive, setup_error, unimplemented};
use crate::exit::CliError;
use crate::flags::FlagValues;

/// How long a stream waits for its next message before it gives up on missing events.
pub const EVENT_IDLE_TIMEOUT_SECS: u64 = 10;

/// The shape of a watch benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    /// `--streams`.
    pub streams: usize,
    /// `--watch-per-stream`.
    pub watch_per_stream: usize,
    /// The watched keys (`--watched-key-total` of them, maybe repeated).
    pub watched: Vec<Vec<u8>>,
    /// `--put-total`.
    pub put_total: u64,
    /// `--put-rate` (0 is no limit).
    pub put_rate: u64,
}

impl WatchPlan {
    /// The plan for the command's flags.
    pub fn from_flags(values: &FlagValues) -> Result<WatchPlan, CliError> {
        let (key_size, space) = (values.int("key-size"), values.int("key-space-size"));
        keys::check_key_space(key_size, space).map_err(CliError::error)?;
        let key_size = usize::try_from(key_size).unwrap_or(0);
        let space = u64::try_from(space).unwrap_or(1);
        let sequential = values.bool("sequential-keys");
        let watched = (0..positive(values, "watched-key-total")? as u64)
            .map(|i| keys::key(keys::key_number(i, space, sequential, SEED), key_size))
            .map(Option::unwrap_or_default)
            .collect();
        Ok(WatchPlan {
            streams: positive(values, "streams")?,
            watch_per_stream: positive(values, "watch-per-stream")?,
            watched,
            put_total: non_negative(values, "put-total")?,
            put_rate: non_negative(values, "put-rate")?,
        })
    }

    /// The key watcher `w` of stream `s` watches.
    pub fn key_of(&self, stream: usize, watcher: usize) -> &[u8] {
        let global = stream * self.watch_per_stream + watcher;
        &self.watched[global % self.watched.len()]
    }

    /// The key put `n` writes.
    pub fn put_key(&self, n: u64) -> &[u8] {
        let index = usize::try_from(n % self.watched.len() as u64).unwrap_or(0);
        &self.watched[index]
    }

    /// How many puts write each key.
    pub fn puts_per_key(&self) -> BTreeMap<Vec<u8>, u64> {
        let mut counts = BTreeMap::new();
        for n in 0..self.put_total {
            *counts.entry(self.put_key(n).to_vec()).or_insert(0) += 1;
        }
        counts
    }

    /// How many events stream `s` must receive.
    pub fn expected_events(&self, stream: usize, puts_per_key: &BTreeMap<Vec<u8>, u64>) -> u64 {
        (0..self.watch_per_stream)
            .map(|w| {
                puts_per_key
                    .get(self.key_of(stream, w))
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }
}

/// Runs `bench watch`.
pub async fn run(options: &BenchOptions, values: &FlagValues) -> Result<Outcome, CliError> {
    let plan = Arc::new(WatchPlan::from_flags(values)?);
    let pool = Pool::connect(options).await?;
    let (streams, creation) = match create_watchers(&pool, &plan).await {
        Ok(created) => created,
        Err(e) => {
            return match unimplemented(&e, "Watch") {
                Some(why) => Ok(Outcome::Skipped(why)),
                None => Err(setup_error("creating the watchers", &e)),
            };
        }
    };
    let events = deliver_events(&pool, &plan, streams, options.clients).await;
    Ok(Outcome::Measured {
        preamble: None,
        reports: vec![
            (Some("Watch creation summary:".to_string()), creation),
            (Some("Watch events received summary:".to_string()), events),
        ],
    })
}

/// Opens every stream and creates its watchers, timing each create until the server
/// confirms it. Fails as the first stream that could not be opened failed.
async fn create_watchers(
    pool: &Pool,
    plan: &Arc<WatchPlan>,
) -> Result<(Vec<WatchStream>, Report), ClientError> {
    let total = (plan.streams * plan.watch_per_stream) as u64;
    let progress = Progress::start("watch creation", total);
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.streams)
        .map(|s| {
            let (client, plan, done) = (pool.client(s), plan.clone(), progress.counter());
            tokio::spawn(async move { create_stream(client, plan, s, done).await })
        })
        .collect();
    let mut streams = Vec::with_capacity(tasks.len());
    let mut report = Report::new("watch creation");
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok((stream, samples))) => {
                streams.push(stream);
                report.merge(samples);
            }
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => {
                failure = failure.or(Some(ClientError::Rpc {
                    code: cairn_client::Code::Internal,
                    message: format!("watch stream task failed: {e}"),
                }))
            }
        }
    }
    report.finish(started.elapsed());
    progress.finish();
    match failure {
        Some(e) => Err(e),
        None => Ok((streams, report)),
    }
}

/// One stream with its watchers created in turn.
async fn create_stream(
    client: Arc<Client>,
    plan: Arc<WatchPlan>,
    s: usize,
    done: Arc<AtomicU64>,
) -> Result<(WatchStream, Report), ClientError> {
    let mut samples = Report::new("");
    let sent = Instant::now();
    let mut stream = client.watch(create_request(plan.key_of(s, 0))).await?;
    await_created(&mut stream, &mut samples, sent).await?;
    done.fetch_add(1, Ordering::Relaxed);
    for w in 1..plan.watch_per_stream {
        let sent = Instant::now();
        stream.send(create_request(plan.key_of(s, w))).await?;
        await_created(&mut stream, &mut samples, sent).await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok((stream, samples))
}

fn create_request(key: &[u8]) -> WatchRequest {
    WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: key.to_vec(),
                ..Default::default()
            },
        )),
    }
}

/// Waits for the answer to a create; a refused create counts as an error.
async fn await_created(
    stream: &mut WatchStream,
    samples: &mut Report,
    sent: Instant,
) -> Result<(), ClientError> {
    let limit = Duration::from_secs(EVENT_IDLE_TIMEOUT_SECS);
    loop {
        let response = tokio::time::timeout(limit, stream.message())
            .await
            .map_err(|_elapsed| ClientError::Timeout(limit))??
            .ok_or(ClientError::StreamClosed)?;
        if !response.created {
            continue;
        }
        match response.canceled {
            false => samples.latencies.push(sent.elapsed().as_secs_f64()),
            true => {
                let why = format!("watch refused: {}", response.cancel_reason);
                *samples.errors.entry(why).or_insert(0) += 1;
            }
        }
        return Ok(());
    }
}

/// Sends the puts and collects every watcher's events.
async fn deliver_events(
    pool: &Pool,
    plan: &Arc<WatchPlan>,
    streams: Vec<WatchStream>,
    clients: usize,
) -> Report {
    let puts_per_key = plan.puts_per_key();
    let expected: Vec<u64> = (0..streams.len())
        .map(|s| plan.expected_events(s, &puts_per_key))
        .collect();
    let progress = Progress::start("watch events", expected.iter().sum());
    let epoch = Instant::now();
    let put_started: Arc<Vec<AtomicU64>> =
        Arc::new((0..plan.put_total).map(|_| AtomicU64::new(0)).collect());
    let receivers: Vec<_> = streams
        .into_iter()
        .zip(expected)
        .map(|(stream, expected)| {
            let receiver = Receiver {
                stream,
                expected,
                epoch,
                put_started: put_started.clone(),
                done: progress.counter(),
            };
            tokio::spawn(receiver.run())
        })
        .collect();
    let next = Arc::new(AtomicU64::new(0));
    let putters: Vec<_> = (0..clients)
        .map(|c| {
            let putter = Putter {
                client: pool.client(c),
                plan: plan.clone(),
                next: next.clone(),
                epoch,
                put_started: put_started.clone(),
            };
            tokio::spawn(putter.run())
        })
        .collect();
    let mut report = Report::new("watch events");
    for task in putters.into_iter().chain(receivers) {
        match task.await {
            Ok(samples) => report.merge(samples),
            Err(e) => {
                *report
                    .errors
                    .entry(format!("task failed: {e}"))
                    .or_insert(0) += 1
            }
        }
    }
    report.finish(epoch.elapsed());
    progress.finish();
    report
}

/// A client sending puts; failed puts are its report's errors.
struct Putter {
    client: Arc<Client>,
    plan: Arc<WatchPlan>,
    next: Arc<AtomicU64>,
    epoch: Instant,
    put_started: Arc<Vec<AtomicU64>>,
}

impl Putter {
    async fn run(self) -> Report {
        let mut samples = Report::new("");
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if n >= self.plan.put_total {
                return samples;
            }
            if self.plan.put_rate > 0 {
                let offset = Duration::from_secs_f64(n as f64 / self.plan.put_rate as f64);
                tokio::time::sleep_until(self.epoch + offset).await;
            }
            let request = PutRequest {
                key: self.plan.put_key(n).to_vec(),
                value: n.to_string().into_bytes(),
                ..Default::default()
            };
            let at = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if let Some(slot) = usize::try_from(n)
                .ok()
                .and_then(|i| self.put_started.get(i))
            {
                slot.store(at, Ordering::Relaxed);
            }
            if let Err(e) = self.client.kv_put(request).await {
                *samples
                    .errors
                    .entry(format!("put failed: {e}"))
                    .or_insert(0) += 1;
            }
        }
    }
}

/// One stream's event reader.
struct Receiver {
    stream: WatchStream,
    expected: u64,
    epoch: Instant,
    put_started: Arc<Vec<AtomicU64>>,
    done: Arc<AtomicU64>,
}

impl Receiver {
    async fn run(mut self) -> Report {
        let mut samples = Report::new("");
        let mut received = 0;
        let limit = Duration::from_secs(EVENT_IDLE_TIMEOUT_SECS);
        while received < self.expected {
            let message = tokio::time::timeout(limit, self.stream.message()).await;
            let response = match message {
                Ok(Ok(Some(response))) => response,
                Ok(Ok(None)) => return self.missing(samples, received, "the stream ended"),
                Ok(Err(e)) => return self.missing(samples, received, &e.to_string()),
                Err(_elapsed) => {
                    return self.missing(samples, received, "no event within the idle timeout");
                }
            };
            received += self.record(&response, &mut samples);
        }
        samples
    }

    /// Records the events of one response; returns how many there were.
    fn record(&self, response: &WatchResponse, samples: &mut Report) -> u64 {
        let now = self.epoch.elapsed().as_secs_f64();
        for event in &response.events {
            let started = event
                .kv
                .as_ref()
                .and_then(|kv| std::str::from_utf8(&kv.value).ok())
                .and_then(|v| v.parse::<usize>().ok())
                .and_then(|n| self.put_started.get(n))
                .map(|at| at.load(Ordering::Relaxed) as f64 / 1e9);
            match started {
                Some(at) => samples.latencies.push((now - at).max(0.0)),
                None => {
                    *samples
                        .errors
                        .entry("event of an unknown put".into())
                        .or_insert(0) += 1
                }
            }
        }
        let count = response.events.len() as u64;
        self.done.fetch_add(count, Ordering::Relaxed);
        count
    }

    fn missing(&self, mut samples: Report, received: u64, why: &str) -> Report {
        let missing = self.expected.saturating_sub(received);
        *samples
            .errors
            .entry(format!("events not received ({why})"))
            .or_insert(0) += missing;
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(streams: usize, per_stream: usize, keys: usize, puts: u64) -> WatchPlan {
        WatchPlan {
            streams,
            watch_per_stream: per_stream,
            watched: (0..keys as i64)
                .map(|k| keys::key(k, 4).unwrap_or_default())
                .collect(),
            put_total: puts,
            put_rate: 0,
        }
    }

    #[test]
    fn every_watcher_expects_the_puts_of_its_key() {
        // 2 streams x 3 watchers on 2 keys: stream 0 watches k0 k1 k0, stream 1 k1 k0 k1.
        let p = plan(2, 3, 2, 5);
        let per_key = p.puts_per_key();
        assert_eq!(per_key.values().copied().collect::<Vec<_>>(), [3, 2]);
        assert_eq!(p.expected_events(0, &per_key), 3 + 2 + 3);
        assert_eq!(p.expected_events(1, &per_key), 2 + 3 + 2);
    }

    #[test]
    fn repeated_keys_are_counted_by_their_bytes() {
        let mut p = plan(1, 2, 2, 4);
        p.watched = vec![b"same".to_vec(), b"same".to_vec()];
        let per_key = p.puts_per_key();
        assert_eq!(per_key.get(b"same".as_slice()), Some(&4));
        assert_eq!(p.expected_events(0, &per_key), 8);
    }
}
