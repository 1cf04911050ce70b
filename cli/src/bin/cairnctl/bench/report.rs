//! The benchmark report, computed and printed as etcd's `pkg/report` does: a summary
//! (total, slowest, fastest, average, stddev, requests/sec), a ten-bucket response time
//! histogram, the latency distribution at p10 … p99.9 (etcd's percentile rule: the first
//! sample at or past each rank), and the errors by message. Times are seconds, printed
//! with `%4.4f` (or Go's `%g` with `--precise`). [`Report::json`] is the same content for
//! machines, with every number present (nothing omitted when zero).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// The percentiles etcd's report prints.
pub const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// Buckets in the response time histogram (plus one for the slowest request).
const HISTOGRAM_BUCKETS: usize = 10;

/// The longest histogram bar, in characters.
const BAR_WIDTH_CHARS: usize = 40;

/// What one benchmark phase measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// What was measured ("put", "watch creation", …).
    pub name: String,
    /// Wall time of the phase.
    pub total: Duration,
    /// Latency of each successful request, in seconds.
    pub latencies: Vec<f64>,
    /// Failed requests by error message.
    pub errors: BTreeMap<String, u64>,
}

/// The summary numbers of a [`Report`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Wall time in seconds.
    pub total: f64,
    /// Slowest successful request.
    pub slowest: f64,
    /// Fastest successful request.
    pub fastest: f64,
    /// Mean latency.
    pub average: f64,
    /// Population standard deviation of the latency.
    pub stddev: f64,
    /// Successful requests per second of wall time.
    pub rps: f64,
}

impl Report {
    /// An empty report named `name`.
    pub fn new(name: &str) -> Report {
        Report {
            name: name.to_string(),
            ..Report::default()
        }
    }

    /// Adds another report's samples (wall time is kept as is).
    pub fn merge(&mut self, other: Report) {
        self.latencies.extend(other.latencies);
        for (message, count) in other.errors {
            *self.errors.entry(message).or_insert(0) += count;
        }
    }

    /// Sorts the latencies, as the summary and percentiles need.
    pub fn finish(&mut self, total: Duration) {
        self.total = total;
        self.latencies.sort_by(f64::total_cmp);
    }

    /// The summary numbers (all zero without samples).
    pub fn summary(&self) -> Summary {
        let n = self.latencies.len() as f64;
        let total = self.total.as_secs_f64();
        if self.latencies.is_empty() {
            return Summary {
                total,
                slowest: 0.0,
                fastest: 0.0,
                average: 0.0,
                stddev: 0.0,
                rps: 0.0,
            };
        }
        let average = self.latencies.iter().sum::<f64>() / n;
        let variance = self
            .latencies
            .iter()
            .map(|l| (l - average) * (l - average))
            .sum::<f64>()
            / n;
        Summary {
            total,
            slowest: self.latencies.last().copied().unwrap_or(0.0),
            fastest: self.latencies.first().copied().unwrap_or(0.0),
            average,
            stddev: variance.sqrt(),
            rps: if total > 0.0 { n / total } else { 0.0 },
        }
    }

    /// etcd's `percentiles`: walking the sorted samples, each sample whose rank
    /// (`i * 100 / n`) reaches the next of [`PERCENTILES`] is that percentile (one
    /// percentile per sample, as etcd's loop does); 0 where no sample is left.
    pub fn percentiles(&self) -> Vec<(f64, f64)> {
        let n = self.latencies.len();
        let mut values = vec![0.0; PERCENTILES.len()];
        let mut j = 0;
        for (i, latency) in self.latencies.iter().enumerate() {
            if j >= PERCENTILES.len() {
                break;
            }
            let rank = i as f64 * 100.0 / n as f64;
            if rank >= PERCENTILES[j] {
                values[j] = *latency;
                j += 1;
            }
        }
        PERCENTILES.iter().copied().zip(values).collect()
    }

    /// etcd's histogram: ten equal buckets from fastest to slowest, plus the slowest;
    /// `(upper bound, count)` each.
    pub fn histogram(&self) -> Vec<(f64, u64)> {
        let summary = self.summary();
        let width = (summary.slowest - summary.fastest) / HISTOGRAM_BUCKETS as f64;
        let mut bounds: Vec<f64> = (0..HISTOGRAM_BUCKETS)
            .map(|i| summary.fastest + width * i as f64)
            .collect();
        bounds.push(summary.slowest);
        let mut counts = vec![0u64; bounds.len()];
        let mut bucket = 0;
        for latency in &self.latencies {
            while *latency > bounds[bucket] && bucket < bounds.len() - 1 {
                bucket += 1;
            }
            counts[bucket] += 1;
        }
        bounds.into_iter().zip(counts).collect()
    }

    /// The report as etcd's benchmark tool prints it (empty without samples or errors).
    pub fn text(&self, precise: bool) -> String {
        let f = |v: f64| seconds(v, precise);
        let mut text = String::new();
        if !self.latencies.is_empty() {
            let s = self.summary();
            text.push_str("\nSummary:\n");
            text.push_str(&format!("  Total:\t{} secs.\n", f(s.total)));
            text.push_str(&format!("  Slowest:\t{} secs.\n", f(s.slowest)));
            text.push_str(&format!("  Fastest:\t{} secs.\n", f(s.fastest)));
            text.push_str(&format!("  Average:\t{} secs.\n", f(s.average)));
            text.push_str(&format!("  Stddev:\t{} secs.\n", f(s.stddev)));
            text.push_str(&format!("  Requests/sec:\t{}\n", f(s.rps)));
            text.push_str(&self.histogram_text(precise));
            text.push_str(&self.percentiles_text(precise));
        }
        if !self.errors.is_empty() {
            text.push_str("\nError distribution:\n");
            for (message, count) in &self.errors {
                text.push_str(&format!("  [{count}]\t{message}\n"));
            }
        }
        text
    }

    fn histogram_text(&self, precise: bool) -> String {
        let buckets = self.histogram();
        let max = buckets.iter().map(|(_, c)| *c).max().unwrap_or(0);
        let mut text = String::from("\nResponse time histogram:\n");
        for (bound, count) in buckets {
            let bar = match max {
                0 => 0,
                _ => (count as usize * BAR_WIDTH_CHARS) / max as usize,
            };
            text.push_str(&format!(
                "  {} [{count}]\t|{}\n",
                seconds(bound, precise),
                "∎".repeat(bar)
            ));
        }
        text
    }

    fn percentiles_text(&self, precise: bool) -> String {
        let mut text = String::from("\nLatency distribution:\n");
        for (percentile, value) in self.percentiles() {
            if value > 0.0 {
                text.push_str(&format!(
                    "  {percentile}% in {} secs.\n",
                    seconds(value, precise)
                ));
            }
        }
        text
    }

    /// The report for machines.
    pub fn json(&self) -> Value {
        let s = self.summary();
        let histogram: Vec<Value> = self
            .histogram()
            .into_iter()
            .map(|(upper, count)| json!({"upper_secs": upper, "count": count}))
            .collect();
        let percentiles: Vec<Value> = self
            .percentiles()
            .into_iter()
            .map(|(percentile, secs)| json!({"percentile": percentile, "secs": secs}))
            .collect();
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|(message, count)| json!({"error": message, "count": count}))
            .collect();
        json!({
            "name": self.name,
            "requests": self.latencies.len(),
            "errors": self.errors.values().sum::<u64>(),
            "total_secs": s.total,
            "slowest_secs": s.slowest,
            "fastest_secs": s.fastest,
            "average_secs": s.average,
            "stddev_secs": s.stddev,
            "requests_per_sec": s.rps,
            "histogram": histogram,
            "percentiles": percentiles,
            "error_distribution": errors,
        })
    }
}

/// A number as etcd's report prints it: `%4.4f`, or Go's `%g` with `--precise`.
pub fn seconds(value: f64, precise: bool) -> String {
    match precise {
        true => go_g(value),
        false => format!("{value:.4}"),
    }
}

/// Go's `%g` of a float64: the shortest digits that read back the same, in exponent form
/// when the exponent is below -4 or at least 21 (Go's limit for the shortest form).
fn go_g(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let exponent = value.abs().log10().floor() as i32;
    if (-4..21).contains(&exponent) {
        return format!("{value}");
    }
    let scientific = format!("{value:e}");
    match scientific.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => scientific,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(latencies_ms: &[u64], total_ms: u64) -> Report {
        let mut r = Report::new("put");
        r.latencies = latencies_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
        r.finish(Duration::from_millis(total_ms));
        r
    }

    #[test]
    fn summary_is_etcds_arithmetic() {
        let s = report(&[4, 2, 6, 8], 2000).summary();
        assert_eq!((s.fastest, s.slowest), (0.002, 0.008));
        assert!((s.average - 0.005).abs() < 1e-12);
        assert!((s.stddev - 5f64.sqrt() / 1000.0).abs() < 1e-12);
        assert_eq!(s.rps, 2.0);
    }

    #[test]
    fn percentiles_take_the_first_sample_at_each_rank() {
        let r = report(&(1..=100).collect::<Vec<_>>(), 1000);
        let p: Vec<f64> = r.percentiles().into_iter().map(|(_, v)| v).collect();
        assert_eq!(p, [0.011, 0.026, 0.051, 0.076, 0.091, 0.096, 0.1, 0.0]);
        let one = report(&[7], 1000);
        assert_eq!(one.percentiles()[0], (10.0, 0.0), "rank 0 is below p10");
    }

    #[test]
    fn histogram_spans_fastest_to_slowest_and_counts_every_sample() {
        let r = report(&[1, 1, 2, 5, 11], 1000);
        let h = r.histogram();
        assert_eq!(h.len(), 11);
        assert_eq!(h[0], (0.001, 2));
        assert_eq!(h[10].0, 0.011);
        assert_eq!(h.iter().map(|(_, c)| c).sum::<u64>(), 5);
    }

    #[test]
    fn text_reads_like_etcds_report() {
        let mut r = report(&[1, 2, 3, 4], 1000);
        r.errors.insert("etcdserver: too many requests".into(), 2);
        let text = r.text(false);
        assert!(text.starts_with(
            "\nSummary:\n  Total:\t1.0000 secs.\n  Slowest:\t0.0040 secs.\n  Fastest:\t0.0010 secs.\n"
        ), "{text}");
        assert!(text.contains("  Requests/sec:\t4.0000\n\nResponse time histogram:\n  0.0010 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n"), "{text}");
        assert!(
            text.contains("\nLatency distribution:\n  10% in 0.0020 secs.\n  25% in 0.0030 secs.\n  50% in 0.0040 secs.\n\n"),
            "one percentile per sample, as etcd: {text}"
        );
        assert!(text.ends_with("\nError distribution:\n  [2]\tetcdserver: too many requests\n"));
    }

    #[test]
    fn json_has_every_number_even_when_zero() {
        let r = report(&[], 500);
        let j = r.json();
        assert_eq!(j["requests"], 0);
        assert_eq!(j["errors"], 0);
        assert_eq!(j["total_secs"], 0.5);
        assert_eq!(j["requests_per_sec"], 0.0);
        assert_eq!(r.text(false), "", "nothing to print without samples");
    }

    #[test]
    fn precise_numbers_use_gos_g_format() {
        assert_eq!(seconds(0.00123, true), "0.00123");
        assert_eq!(seconds(0.0000123, true), "1.23e-05");
        assert_eq!(seconds(1234.5, true), "1234.5");
        assert_eq!(seconds(0.00123, false), "0.0012");
    }
}
