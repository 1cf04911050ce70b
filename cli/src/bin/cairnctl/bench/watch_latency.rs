//! `bench watch-latency` (etcd's `benchmark watch-latency`): one watcher per client on one
//! random key of `--key-size` bytes, then `--total` puts of a `--val-size` value at
//! `--put-rate` puts per second; for each put, the time from the put's answer until each
//! watcher has received its event is one sample, as etcd's tool measures it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{PutRequest, WatchCreateRequest, WatchRequest, watch_request};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::keys::Mix;
use super::pool::Pool;
use super::progress::Progress;
use super::report::Report;
use super::{BenchOptions, Outcome, SEED, non_negative, setup_error, unimplemented};
use crate::exit::CliError;
use crate::flags::FlagValues;

/// Runs `bench watch-latency`.
pub async fn run(options: &BenchOptions, values: &FlagValues) -> Result<Outcome, CliError> {
    let total = non_negative(values, "total")?;
    let rate = non_negative(values, "put-rate")?;
    let mut mix = Mix::new(SEED);
    let key = mix.bytes(usize::try_from(non_negative(values, "key-size")?).unwrap_or(0));
    let value = mix.bytes(usize::try_from(non_negative(values, "val-size")?).unwrap_or(0));
    let pool = Pool::connect(options).await?;
    // Each watcher's task reports when each event arrived.
    let mut arrivals = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        let create = WatchCreateRequest {
            key: key.clone(),
            ..Default::default()
        };
        let first = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        };
        let opened = pool.client(i).watch(first).await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                return match unimplemented(&e, "Watch") {
                    Some(why) => Ok(Outcome::Skipped(why)),
                    None => Err(setup_error("creating the watchers", &e)),
                };
            }
        };
        match stream.message().await {
            Ok(Some(created)) if created.created => {}
            Ok(_) => return Err(CliError::error("creating the watchers: no confirmation")),
            Err(e) => return Err(setup_error("creating the watchers", &e)),
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(response)) = stream.message().await {
                for _ in &response.events {
                    if sender.send(Instant::now()).is_err() {
                        return;
                    }
                }
            }
        });
        arrivals.push(receiver);
    }
    let putter = pool.client(0);
    let progress = Progress::start("watch-latency", total);
    let done = progress.counter();
    let mut report = Report::new("watch-latency");
    let started = Instant::now();
    for n in 0..total {
        if rate > 0 {
            tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / rate as f64))
                .await;
        }
        let put = PutRequest {
            key: key.clone(),
            value: value.clone(),
            ..Default::default()
        };
        if let Err(e) = putter.kv_put(put).await {
            progress.finish();
            return Err(CliError::error(format!(
                "Failed to Put for watch latency benchmark: {e}"
            )));
        }
        let put_answered = Instant::now();
        for receiver in &mut arrivals {
            match receiver.recv().await {
                Some(at) => report
                    .latencies
                    .push(at.saturating_duration_since(put_answered).as_secs_f64()),
                None => *report.errors.entry("watch ended".to_string()).or_insert(0) += 1,
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    report.finish(started.elapsed());
    progress.finish();
    Ok(Outcome::single(report))
}
