//! What one simulated run does: seed, cluster size, workloads, faults and injected bugs,
//! and the command line that replays it.
//!
//! A run is a pure function of [`RunOptions`]: printing them back as a command
//! ([`RunOptions::replay_command`]) is how a failing seed is replayed exactly.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

pub use cairn_core::buggify::Bug;

/// A kind of client operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// Register put/get/CAS on a few contended keys, plus put-once keys for the
    /// acknowledged-writes check.
    Kv,
    /// Multi-key transactions: conditional multi-key writes and multi-key reads.
    Txn,
    /// Deletes of one key and of the whole register range.
    Delete,
    /// Compactions of recent revisions.
    Compact,
    /// Watchers on the written ranges, resumed across broken streams, checked by the watch
    /// checker.
    Watch,
    /// Leases with short TTLs, some kept alive, checked for lease safety.
    Lease,
}

impl Workload {
    /// Every workload, in a fixed order.
    pub const ALL: [Workload; 6] = [
        Workload::Kv,
        Workload::Txn,
        Workload::Delete,
        Workload::Compact,
        Workload::Watch,
        Workload::Lease,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Kv => "kv",
            Workload::Txn => "txn",
            Workload::Delete => "delete",
            Workload::Compact => "compact",
            Workload::Watch => "watch",
            Workload::Lease => "lease",
        }
    }
}

/// A kind of fault the nemesis injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Network partitions: halves, isolated leader, one-way, bridge.
    Partition,
    /// Loss, duplication, reordering and delay of Raft batches.
    Loss,
    /// A process crash and restart (unsynced writes survive in the page cache).
    Kill,
    /// Power loss of one member, a majority or all (unsynced writes are lost, maybe torn).
    Power,
    /// An fsync error (the member must stop; the simulator restarts it after a crash).
    Fsync,
    /// A member stalls for seconds (its timers jump when it resumes).
    Pause,
    /// The clock of the whole simulation jumps forward, or one member's clock runs fast or
    /// slow.
    Clock,
    /// A member (the leader half of the time) is removed and later added back as a new
    /// member on an empty disk, as a voter or a learner then promoted, while another fault
    /// may be in force.
    Member,
}

impl Fault {
    /// Every fault, in a fixed order.
    pub const ALL: [Fault; 8] = [
        Fault::Partition,
        Fault::Loss,
        Fault::Kill,
        Fault::Power,
        Fault::Fsync,
        Fault::Pause,
        Fault::Clock,
        Fault::Member,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Loss => "loss",
            Fault::Kill => "kill",
            Fault::Power => "power",
            Fault::Fsync => "fsync",
            Fault::Pause => "pause",
            Fault::Clock => "clock",
            Fault::Member => "member",
        }
    }
}

/// Everything that determines a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The madsim seed: every choice of the run follows from it.
    pub seed: u64,
    /// Cluster members.
    pub nodes: usize,
    /// Concurrent client processes.
    pub clients: usize,
    /// Length of the safety phase (faults on), in simulated time.
    pub duration: Duration,
    /// Operation kinds the clients draw from.
    pub workloads: BTreeSet<Workload>,
    /// Fault kinds the nemesis draws from (empty: a fault-free run).
    pub faults: BTreeSet<Fault>,
    /// Injected bugs switched on for the run.
    pub bugs: BTreeSet<Bug>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 1,
            nodes: 3,
            clients: 4,
            duration: Duration::from_secs(60),
            workloads: Workload::ALL.into_iter().collect(),
            faults: Fault::ALL.into_iter().collect(),
            bugs: BTreeSet::new(),
        }
    }
}

impl RunOptions {
    /// The same options for another seed.
    pub fn with_seed(&self, seed: u64) -> RunOptions {
        RunOptions {
            seed,
            ..self.clone()
        }
    }

    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut command = format!(
            "./scripts/sim run --seed {} --nodes {} --clients {} --duration {} --workload {} --faults {}",
            self.seed,
            self.nodes,
            self.clients,
            format_duration(self.duration),
            names(&self.workloads, Workload::ALL.len(), Workload::name),
            names(&self.faults, Fault::ALL.len(), Fault::name),
        );
        if !self.bugs.is_empty() {
            command.push_str(" --bug ");
            command.push_str(&names(&self.bugs, usize::MAX, Bug::name));
        }
        command
    }
}

impl fmt::Display for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.replay_command())
    }
}

/// `a,b,c`, `all` when every one of `total` is in, `none` when the set is empty.
fn names<T: Copy>(set: &BTreeSet<T>, total: usize, name: fn(T) -> &'static str) -> String {
    if set.is_empty() {
        return "none".to_string();
    }
    if set.len() == total {
        return "all".to_string();
    }
    set.iter().map(|&x| name(x)).collect::<Vec<_>>().join(",")
}

/// Parses `kv,txn`, `all` or `none` against the names of `all`.
pub fn parse_set<T: Copy + Ord>(
    text: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<BTreeSet<T>, String> {
    match text.trim() {
        "all" => return Ok(all.iter().copied().collect()),
        "none" | "" => return Ok(BTreeSet::new()),
        _ => {}
    }
    text.split(',')
        .map(str::trim)
        .map(|word| {
            all.iter()
                .copied()
                .find(|&x| name(x) == word)
                .ok_or_else(|| {
                    let known: Vec<_> = all.iter().map(|&x| name(x)).collect();
                    format!(
                        "unknown name {word:?} (expected all, none or a list of {})",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// Parses `60s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 60s, 500ms, 2m)"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        _ => Err(format!(
            "invalid duration unit in {text:?} (expected ms, s or m)"
        )),
    }
}

/// The shortest of `2m`, `60s`, `500ms` that says `duration` exactly.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(60_000) && millis > 0 {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// Parses `1..1000` (end excluded), `1..=1000` or a single seed.
pub fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let bad = || format!("invalid seed range {text:?} (expected e.g. 1..1000 or 1..=1000)");
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    if let Some((start, end)) = text.split_once("..=") {
        return Ok(number(start)?..number(end)? + 1);
    }
    if let Some((start, end)) = text.split_once("..") {
        return Ok(number(start)?..number(end)?);
    }
    let seed = number(text)?;
    Ok(seed..seed + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_command_round_trips_through_the_parsers() {
        let options = RunOptions {
            seed: 42,
            duration: Duration::from_millis(1500),
            workloads: parse_set("kv,delete", &Workload::ALL, Workload::name).unwrap(),
            bugs: [Bug::LocalReads].into_iter().collect(),
            ..RunOptions::default()
        };
        let command = options.replay_command();
        assert_eq!(
            command,
            "./scripts/sim run --seed 42 --nodes 3 --clients 4 --duration 1500ms \
             --workload kv,delete --faults all --bug local-reads"
        );
        assert_eq!(parse_duration("1500ms"), Ok(options.duration));
    }

    #[test]
    fn seed_ranges_exclude_or_include_the_end() {
        assert_eq!(parse_seed_range("1..4"), Ok(1..4));
        assert_eq!(parse_seed_range("1..=4"), Ok(1..5));
        assert_eq!(parse_seed_range("7"), Ok(7..8));
        assert!(parse_seed_range("x..3").is_err());
    }

    #[test]
    fn unknown_fault_name_is_refused_with_the_known_ones() {
        let err = parse_set("partition,flood", &Fault::ALL, Fault::name).unwrap_err();
        assert!(err.contains("flood") && err.contains("partition"), "{err}");
    }
}
