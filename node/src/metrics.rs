//! The member's Prometheus metrics, under etcd's names so that etcd's dashboards and alerts
//! work unchanged. Like etcd (which registers on Prometheus' default registry) they are
//! per process: members run in one process (tests, the simulator) share them.
//!
//! Counters and histograms are updated where the events happen (the event loop, the client
//! services); gauges that mirror stored state (database size, key count) are refreshed by
//! [`Metrics::refresh`] just before a scrape.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

use crate::server::Handle;

/// The metrics of this process.
pub struct Metrics {
    registry: Registry,
    /// `etcd_server_has_leader`: 1 while a leader is known.
    pub has_leader: IntGauge,
    /// `etcd_server_leader_changes_seen_total`.
    pub leader_changes: IntCounter,
    /// `etcd_server_proposals_committed_total` (a gauge in etcd: the commit index).
    pub proposals_committed: IntGauge,
    /// `etcd_server_proposals_applied_total` (a gauge in etcd: the applied index).
    pub proposals_applied: IntGauge,
    /// `etcd_server_proposals_pending`: proposals waiting to be applied.
    pub proposals_pending: IntGauge,
    /// `etcd_server_proposals_failed_total`.
    pub proposals_failed: IntCounter,
    /// `etcd_disk_wal_fsync_duration_seconds`: each persisting of a Raft Ready (log
    /// entries and hard state, fsynced).
    pub wal_fsync: Histogram,
    /// `etcd_disk_backend_commit_duration_seconds`: each round that applied committed
    /// entries to the state machine.
    pub backend_commit: Histogram,
    /// `etcd_mvcc_db_total_size_in_bytes`.
    pub db_total_size: IntGauge,
    /// `etcd_mvcc_db_total_size_in_use_in_bytes`.
    pub db_in_use_size: IntGauge,
    /// `etcd_network_peer_round_trip_time_seconds{To}`.
    pub peer_round_trip: HistogramVec,
    /// `etcd_debugging_mvcc_keys_total`.
    pub keys_total: IntGauge,
    /// `etcd_debugging_mvcc_current_revision`.
    pub current_revision: IntGauge,
    /// `etcd_debugging_mvcc_compact_revision`.
    pub compact_revision: IntGauge,
    /// `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`.
    pub grpc_handled: IntCounterVec,
    /// `etcd_server_health_success` / `etcd_server_health_failures`.
    pub health_checks: (IntCounter, IntCounter),
}

fn opts(subsystem: &str, name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("etcd").subsystem(subsystem)
}

fn histogram_opts(subsystem: &str, name: &str, help: &str, start: f64) -> HistogramOpts {
    HistogramOpts::new(name, help)
        .namespace("etcd")
        .subsystem(subsystem)
        .buckets(exponential_buckets(start, 2.0, 14).unwrap_or_default())
}

impl Metrics {
    // Metric definitions are constants: building or registering them fails only on a
    // programming error (a malformed or duplicate name), caught by the tests below.
    #[allow(clippy::expect_used)]
    fn new() -> Metrics {
        let registry = Registry::new();
        let gauge = |subsystem: &str, name: &str, help: &str| {
            let g = IntGauge::with_opts(opts(subsystem, name, help)).expect("metric");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };
        let counter = |subsystem: &str, name: &str, help: &str| {
            let c = IntCounter::with_opts(opts(subsystem, name, help)).expect("metric");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let histogram = |subsystem: &str, name: &str, help: &str, start: f64| {
            let h =
                Histogram::with_opts(histogram_opts(subsystem, name, help, start)).expect("metric");
            registry.register(Box::new(h.clone())).expect("register");
            h
        };
        let peer_round_trip = HistogramVec::new(
            histogram_opts(
                "network",
                "peer_round_trip_time_seconds",
                "Round-Trip-Time histogram between peers",
                0.0001,
            ),
            &["To"],
        )
        .expect("metric");
        registry
            .register(Box::new(peer_round_trip.clone()))
            .expect("register");
        let grpc_handled = IntCounterVec::new(
            Opts::new(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
            ),
            &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("metric");
        registry
            .register(Box::new(grpc_handled.clone()))
            .expect("register");
        let version = IntGaugeVec::new(
            opts(
                "server",
                "version",
                "Which version is running. 1 for 'server_version' label with current version.",
            ),
            &["server_version"],
        )
        .expect("metric");
        registry
            .register(Box::new(version.clone()))
            .expect("register");
        version
            .with_label_values(&[crate::config::ETCD_COMPAT_VERSION])
            .set(1);
        #[cfg(all(target_os = "linux", not(madsim)))]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("register");
        Metrics {
            has_leader: gauge(
                "server",
                "has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            ),
            leader_changes: counter(
                "server",
                "leader_changes_seen_total",
                "The number of leader changes seen.",
            ),
            proposals_committed: gauge(
                "server",
                "proposals_committed_total",
                "The total number of consensus proposals committed.",
            ),
            proposals_applied: gauge(
                "server",
                "proposals_applied_total",
                "The total number of consensus proposals applied.",
            ),
            proposals_pending: gauge(
                "server",
                "proposals_pending",
                "The current number of pending proposals to commit.",
            ),
            proposals_failed: counter(
                "server",
                "proposals_failed_total",
                "The total number of failed proposals seen.",
            ),
            wal_fsync: histogram(
                "disk",
                "wal_fsync_duration_seconds",
                "The latency distributions of fsync called by WAL.",
                0.001,
            ),
            backend_commit: histogram(
                "disk",
                "backend_commit_duration_seconds",
                "The latency distributions of commit called by backend.",
                0.001,
            ),
            db_total_size: gauge(
                "mvcc",
                "db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
            ),
            db_in_use_size: gauge(
                "mvcc",
                "db_total_size_in_use_in_bytes",
                "Total size of the underlying database logically in use in bytes.",
            ),
            keys_total: gauge("debugging", "mvcc_keys_total", "Total number of keys."),
            current_revision: gauge(
                "debugging",
                "mvcc_current_revision",
                "The current revision of store.",
            ),
            compact_revision: gauge(
                "debugging",
                "mvcc_compact_revision",
                "The revision of the last compaction in store.",
            ),
            health_checks: (
                counter(
                    "server",
                    "health_success",
                    "The total number of successful health checks",
                ),
                counter(
                    "server",
                    "health_failures",
                    "The total number of failed health checks",
                ),
            ),
            peer_round_trip,
            grpc_handled,
            registry,
        }
    }

    /// Refreshes the gauges that mirror the member's stored state.
    pub fn refresh(&self, handle: &Handle) {
        let state_machine = handle.state_machine();
        let size = i64::try_from(state_machine.size_bytes()).unwrap_or(i64::MAX);
        self.db_total_size.set(size);
        if let Ok(in_use) = state_machine.size_in_use_bytes() {
            self.db_in_use_size
                .set(i64::try_from(in_use).unwrap_or(i64::MAX));
        }
        self.current_revision.set(state_machine.current_revision());
        self.compact_revision
            .set(state_machine.compacted_revision());
        let all_keys = cairn_core::api::etcdserverpb::RangeRequest {
            key: vec![0],
            range_end: vec![0],
            count_only: true,
            ..Default::default()
        };
        if let Ok(response) = state_machine.range(&all_keys) {
            self.keys_total.set(response.count);
        }
    }

    /// Every metric in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into memory fails only on a malformed metric family.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The metrics of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The content type of [`Metrics::render`]'s output.
pub const TEXT_FORMAT: &str = prometheus::TEXT_FORMAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_under_etcds_name() {
        let m = metrics();
        m.has_leader.set(1);
        m.leader_changes.inc();
        m.wal_fsync.observe(0.002);
        m.peer_round_trip.with_label_values(&["2"]).observe(0.001);
        m.grpc_handled
            .with_label_values(&["unary", "etcdserverpb.KV", "Range", "OK"])
            .inc();
        let text = m.render();
        for name in [
            "etcd_server_has_leader 1",
            "etcd_server_leader_changes_seen_total 1",
            "etcd_server_proposals_committed_total",
            "etcd_server_proposals_applied_total",
            "etcd_server_proposals_pending",
            "etcd_server_proposals_failed_total",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 0",
            "etcd_disk_wal_fsync_duration_seconds_count 1",
            "etcd_disk_backend_commit_duration_seconds_count",
            "etcd_mvcc_db_total_size_in_bytes",
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "etcd_network_peer_round_trip_time_seconds_count{To=\"2\"} 1",
            "etcd_debugging_mvcc_keys_total",
            "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 1",
            "etcd_server_version{server_version=\"3.5.17\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
