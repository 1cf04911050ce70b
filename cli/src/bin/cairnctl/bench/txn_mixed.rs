//! `bench txn-mixed [key [end-range]]` (etcd's `benchmark txn-mixed`): `--total`
//! single-operation transactions, each a read with probability `rw-ratio / (1 + rw-ratio)`
//! (a range of up to `--limit` keys from the key to `--end-key`, or everything with the
//! default empty key, linearizable or serializable by `--consistency`), otherwise a put of
//! key number `i % key-space-size`. Reads and writes are reported separately, each after
//! a `Total Read Ops: N` / `Total Write Ops: N` line, as etcd's tool prints them.

use std::sync::{Arc, Mutex};

use cairn_client::pb::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest, request_op};
use tokio::time::Instant;

use super::keys::{self, Mix};
use super::pool::Pool;
use super::report::Report;
use super::runner::{self, MakeCall, Plan};
use super::{BenchOptions, Outcome, SEED, non_negative};
use crate::command::range_end;
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::go_strconv;

/// What one transaction of the mix does.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// `--rw-ratio`: reads per write.
    pub read_write_ratio: f64,
    /// The read every read transaction makes.
    pub read: RangeRequest,
    /// `--key-size`.
    pub key_size: usize,
    /// `--key-space-size`.
    pub key_space_size: u64,
}

impl Mixture {
    /// Whether transaction `n` is a read (a seeded draw, the same on every run).
    pub fn is_read(&self, n: u64) -> bool {
        let draw = Mix::new(SEED ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64();
        let uniform = (draw >> 11) as f64 / (1u64 << 53) as f64;
        uniform < self.read_write_ratio / (1.0 + self.read_write_ratio)
    }

    /// Transaction `n` with `value` for a write.
    pub fn transaction(&self, n: u64, value: &[u8]) -> TxnRequest {
        let op = match self.is_read(n) {
            true => request_op::Request::RequestRange(self.read.clone()),
            false => {
                let number = i64::try_from(n % self.key_space_size.max(1)).unwrap_or(0);
                request_op::Request::RequestPut(PutRequest {
                    key: keys::key(number, self.key_size).unwrap_or_default(),
                    value: value.to_vec(),
                    ..Default::default()
                })
            }
        };
        TxnRequest {
            success: vec![RequestOp { request: Some(op) }],
            ..Default::default()
        }
    }
}

/// The mixture of the flags and arguments, checked as etcd's tool checks them.
pub fn mixture(values: &FlagValues, args: &[String]) -> Result<Mixture, CliError> {
    let key_space_size = values.int("key-space-size");
    if key_space_size <= 0 {
        return Err(CliError::error(format!(
            "expected positive --key-space-size, got ({key_space_size})"
        )));
    }
    let serializable = match values.str("consistency") {
        "l" => false,
        "s" => true,
        other => {
            return Err(CliError::bad_feature(format!(
                "unknown consistency flag {}",
                go_strconv::quote(other)
            )));
        }
    };
    let ratio_text = values.str("rw-ratio");
    let read_write_ratio: f64 = ratio_text
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| {
            CliError::bad_args(format!(
                "invalid argument {} for \"--rw-ratio\" flag",
                go_strconv::quote(ratio_text)
            ))
        })?;
    // etcd's tool reads from key "" with --prefix: the whole keyspace unless --end-key
    // (or a key argument) narrows it.
    let key = args.first().cloned().unwrap_or_default();
    let end_key = match args.get(1) {
        Some(end) => end.clone(),
        None => values.str("end-key").to_string(),
    };
    let (key, range_end) = match end_key.is_empty() {
        true => range_end::with_prefix(key.into_bytes()),
        false => (key.into_bytes(), end_key.into_bytes()),
    };
    Ok(Mixture {
        read_write_ratio,
        read: RangeRequest {
            key,
            range_end,
            limit: values.int("limit"),
            serializable,
            ..Default::default()
        },
        key_size: usize::try_from(non_negative(values, "key-size")?).unwrap_or(0),
        key_space_size: u64::try_from(key_space_size).unwrap_or(1),
    })
}

/// Runs `bench txn-mixed`.
pub async fn run(
    options: &BenchOptions,
    values: &FlagValues,
    args: &[String],
) -> Result<Outcome, CliError> {
    let mixture = Arc::new(mixture(values, args)?);
    let preamble = match mixture.read.serializable {
        true => "bench with serializable range",
        false => "bench with linearizable range",
    };
    let value_size = usize::try_from(non_negative(values, "val-size")?).unwrap_or(0);
    let value = Arc::new(Mix::new(SEED).bytes(value_size));
    let plan = Plan {
        total: non_negative(values, "total")?,
        rate: non_negative(values, "rate")?,
        clients: options.clients,
    };
    let reads = Arc::new(Mutex::new(Report::new("txn-mixed-read")));
    let writes = Arc::new(Mutex::new(Report::new("txn-mixed-write")));
    let pool = Pool::connect(options).await?;
    let (r, w) = (reads.clone(), writes.clone());
    let make_call: MakeCall = Arc::new(move |client, _worker, n| {
        let request = mixture.transaction(n, &value);
        let into = match mixture.is_read(n) {
            true => r.clone(),
            false => w.clone(),
        };
        Box::pin(async move {
            let sent = Instant::now();
            let outcome = client.kv_txn(request).await;
            let took = sent.elapsed().as_secs_f64();
            if let Ok(mut report) = into.lock() {
                match outcome {
                    Ok(_) => report.latencies.push(took),
                    Err(e) => *report.errors.entry(e.to_string()).or_insert(0) += 1,
                }
            }
            Ok(())
        })
    });
    let all = runner::closed_loop("txn-mixed", &pool, plan, make_call).await;
    let take = |shared: &Arc<Mutex<Report>>| {
        let mut report = shared.lock().map(|r| r.clone()).unwrap_or_default();
        report.finish(all.total);
        report
    };
    let (reads, writes) = (take(&reads), take(&writes));
    let read_heading = format!(
        "Total Read Ops: {}\nDetails:",
        reads.latencies.len() as u64 + reads.errors.values().sum::<u64>()
    );
    let write_heading = format!(
        "Total Write Ops: {}\nDetails:",
        writes.latencies.len() as u64 + writes.errors.values().sum::<u64>()
    );
    Ok(Outcome::Measured {
        preamble: Some(preamble.to_string()),
        reports: vec![(Some(read_heading), reads), (Some(write_heading), writes)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{BENCH_TXN_MIXED_FLAGS, GLOBAL_FLAGS};
    use crate::flags;

    fn values(args: &[&str]) -> FlagValues {
        let mut defs = GLOBAL_FLAGS.to_vec();
        defs.extend(BENCH_TXN_MIXED_FLAGS.iter().copied());
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        flags::parse(&defs, &args).unwrap().values
    }

    #[test]
    fn the_ratio_sets_the_share_of_reads() {
        let reads_of = |ratio: &str| {
            let mix = mixture(&values(&["--rw-ratio", ratio]), &[]).unwrap();
            (0..10_000).filter(|n| mix.is_read(*n)).count()
        };
        assert_eq!(reads_of("0"), 0);
        let even = reads_of("1");
        assert!((4_500..5_500).contains(&even), "{even}");
        let mostly = reads_of("3");
        assert!((7_000..8_000).contains(&mostly), "{mostly}");
    }

    #[test]
    fn reads_cover_the_keyspace_and_writes_cycle_the_key_space() {
        let mix = mixture(&values(&["--rw-ratio", "0", "--key-space-size", "2"]), &[]).unwrap();
        assert_eq!(
            (mix.read.key.clone(), mix.read.range_end.clone()),
            (vec![0], vec![0])
        );
        assert_eq!(mix.read.limit, 1000);
        let key = |n| match &mix.transaction(n, b"v").success[0].request {
            Some(request_op::Request::RequestPut(p)) => p.key.clone(),
            _ => Vec::new(),
        };
        assert_eq!(key(0), key(2));
        assert_ne!(key(0), key(1));
        assert!(mixture(&values(&["--consistency", "x"]), &[]).is_err());
        assert!(mixture(&values(&["--key-space-size", "0"]), &[]).is_err());
        assert!(mixture(&values(&["--rw-ratio", "abc"]), &[]).is_err());
    }
}
