//! Auto-compaction (`--auto-compaction-mode`, `--auto-compaction-retention`), with etcd's
//! semantics (etcd 3.4 `v3compactor`). Only the leader compacts: it proposes Compaction
//! requests through Raft like a client would; other members wait.
//!
//! * `revision`: every check interval (etcd: 5 minutes) compact at the current revision
//!   minus the retention, unless that is not positive or was the last compacted.
//! * `periodic`: sample the current revision every tenth of the period (of an hour at most)
//!   and, once a period has passed since the last compaction (then every period, at most an
//!   hour), compact at the revision sampled one period ago.

use std::collections::VecDeque;
use std::time::Duration;

use cairn_core::api::cairnpb::internal_request::Request;
use cairn_core::api::etcdserverpb::CompactionRequest;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::server::{Handle, ServerError};

/// etcd's check interval of the revision compactor.
pub const REVISION_CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);

const HOUR: Duration = Duration::from_secs(3600);

/// What auto-compaction keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep the history of the last period.
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(i64),
}

impl AutoCompaction {
    /// etcd's `parseCompactionRetention`: a non-negative integer is revisions (`revision`)
    /// or hours (`periodic`), anything else a Go duration. `None`: disabled (a zero
    /// retention); `Err` names what is wrong.
    pub fn parse(mode: &str, retention: &str) -> Result<Option<AutoCompaction>, String> {
        let parsed = match retention.parse::<i64>() {
            Ok(n) if n >= 0 => match mode {
                "revision" => AutoCompaction::Revision(n),
                "periodic" => AutoCompaction::Periodic(HOUR * u32::try_from(n).unwrap_or(0)),
                other => return Err(format!("unknown auto-compaction-mode {other:?}")),
            },
            _ => {
                let period = crate::config::parse_go_duration(retention)
                    .ok_or_else(|| format!("error parsing CompactionRetention: {retention:?}"))?;
                match mode {
                    "periodic" => AutoCompaction::Periodic(period),
                    "revision" => {
                        return Err(format!(
                            "error parsing CompactionRetention: {retention:?} is not a number of revisions"
                        ));
                    }
                    other => return Err(format!("unknown auto-compaction-mode {other:?}")),
                }
            }
        };
        Ok(match parsed {
            AutoCompaction::Periodic(d) if d.is_zero() => None,
            AutoCompaction::Revision(0) => None,
            other => Some(other),
        })
    }
}

/// Runs the compactor until `shutdown` turns true. `revision_interval` is how often the
/// revision compactor checks ([`REVISION_CHECK_INTERVAL`] in etcd).
pub async fn run(
    handle: Handle,
    mode: AutoCompaction,
    revision_interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(?mode, "auto-compaction enabled");
    let mut compactor = Compactor::new(mode, revision_interval);
    loop {
        compactor.sample(handle.state_machine().current_revision());
        select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(compactor.interval()) => {}
        }
        if handle.raft_status().leader != handle.identity().member_id {
            continue;
        }
        let Some(revision) =
            compactor.due(Instant::now(), handle.state_machine().current_revision())
        else {
            continue;
        };
        tracing::info!(revision, ?mode, "starting auto compaction");
        let request = Request::Compaction(CompactionRequest {
            revision,
            physical: false,
        });
        match handle.propose(request).await {
            Ok(_) | Err(ServerError::Apply(cairn_core::Error::Compacted)) => {
                tracing::info!(revision, "completed auto compaction");
                compactor.done(revision, Instant::now());
            }
            Err(e) => tracing::warn!(revision, error = %e, "failed auto compaction"),
        }
    }
}

/// The compactor's bookkeeping, apart from time and I/O.
struct Compactor {
    mode: AutoCompaction,
    revision_interval: Duration,
    /// Revision compactor: the last revision compacted.
    previous: i64,
    /// Periodic compactor: the samples of the last period, oldest first.
    samples: VecDeque<i64>,
    last_success: Instant,
    /// Periodic compactor: how long after the last success the next compaction is due.
    base_interval: Duration,
}

impl Compactor {
    fn new(mode: AutoCompaction, revision_interval: Duration) -> Compactor {
        let base_interval = match mode {
            AutoCompaction::Periodic(period) => period,
            AutoCompaction::Revision(_) => revision_interval,
        };
        Compactor {
            mode,
            revision_interval,
            previous: 0,
            samples: VecDeque::new(),
            last_success: Instant::now(),
            base_interval,
        }
    }

    /// How long to wait between checks.
    fn interval(&self) -> Duration {
        match self.mode {
            AutoCompaction::Periodic(period) => period.min(HOUR) / 10,
            AutoCompaction::Revision(_) => self.revision_interval,
        }
    }

    /// Records the current revision (periodic: keeps one period of samples).
    fn sample(&mut self, revision: i64) {
        if let AutoCompaction::Periodic(period) = self.mode {
            self.samples.push_back(revision);
            let keep = (period.as_nanos() / self.interval().as_nanos().max(1)) as usize + 1;
            while self.samples.len() > keep {
                self.samples.pop_front();
            }
        }
    }

    /// The revision to compact at now, if a compaction is due.
    fn due(&mut self, now: Instant, current: i64) -> Option<i64> {
        match self.mode {
            AutoCompaction::Revision(retention) => {
                let revision = current - retention;
                (revision > 0 && revision != self.previous).then_some(revision)
            }
            AutoCompaction::Periodic(period) => {
                if now.duration_since(self.last_success) < self.base_interval {
                    return None;
                }
                if self.base_interval == period {
                    self.base_interval = period.min(HOUR);
                }
                self.samples.front().copied()
            }
        }
    }

    /// A compaction at `revision` succeeded (or was already done).
    fn done(&mut self, revision: i64, now: Instant) {
        self.previous = revision;
        self.last_success = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_parsed_as_etcd_does() {
        assert_eq!(
            AutoCompaction::parse("revision", "1000"),
            Ok(Some(AutoCompaction::Revision(1000)))
        );
        assert_eq!(
            AutoCompaction::parse("periodic", "1"),
            Ok(Some(AutoCompaction::Periodic(HOUR)))
        );
        assert_eq!(
            AutoCompaction::parse("periodic", "30m"),
            Ok(Some(AutoCompaction::Periodic(Duration::from_secs(1800))))
        );
        assert_eq!(AutoCompaction::parse("periodic", "0"), Ok(None));
        assert_eq!(AutoCompaction::parse("revision", "0"), Ok(None));
        assert!(AutoCompaction::parse("hourly", "1").is_err());
        assert!(AutoCompaction::parse("periodic", "soon").is_err());
    }

    #[test]
    fn revision_mode_compacts_retention_behind_and_not_twice() {
        let mut c = Compactor::new(AutoCompaction::Revision(10), Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(c.due(now, 5), None);
        assert_eq!(c.due(now, 25), Some(15));
        c.done(15, now);
        assert_eq!(c.due(now, 25), None);
        assert_eq!(c.due(now, 26), Some(16));
    }

    #[test]
    fn periodic_mode_compacts_at_the_revision_of_one_period_ago() {
        let period = Duration::from_secs(100);
        let start = Instant::now();
        let mut c = Compactor::new(AutoCompaction::Periodic(period), Duration::ZERO);
        c.last_success = start;
        assert_eq!(c.interval(), Duration::from_secs(10));
        // One sample every 10 s, the revision growing by 3 each time.
        let mut due = Vec::new();
        for step in 0..30u32 {
            c.sample(i64::from(step) * 3 + 1);
            let now = start + Duration::from_secs(10) * (step + 1);
            if let Some(revision) = c.due(now, 0) {
                due.push((step, revision));
                c.done(revision, now);
            }
        }
        // Due first after one period (step 9, 100 s), at the first sample; then every
        // period, at the sample taken a period before.
        assert_eq!(due[0], (9, 1));
        assert_eq!(due[1], (19, 9 * 3 + 1));
        assert_eq!(due[2], (29, 19 * 3 + 1));
        assert_eq!(due.len(), 3);
    }
}
