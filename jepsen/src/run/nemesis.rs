//! The nemesis: a seeded schedule of faults on the member processes and the peer links,
//! one at a time, each held for a bounded time and then undone.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cairn_client::{Client, ConnectOptions};

use super::cluster::Processes;
use super::proxy::Faults;
use super::rng::Rng;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a member (the leader half of the time), restart it later.
    Kill,
    /// SIGSTOP a member (the leader half of the time), SIGCONT it later.
    Pause,
    /// Cut the members into two random halves.
    Partition,
    /// Cut the leader off from every other member.
    IsolateLeader,
    /// Cut one direction of one link.
    OneWay,
    /// Delay the bytes of one link.
    Delay,
    /// Close the connections of one link with some probability per chunk.
    Drop,
}

impl Fault {
    /// Every fault, in the order `--nemesis` lists them.
    pub const ALL: [Fault; 7] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Partition,
        Fault::IsolateLeader,
        Fault::OneWay,
        Fault::Delay,
        Fault::Drop,
    ];

    /// The name `--nemesis` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::IsolateLeader => "isolate-leader",
            Fault::OneWay => "one-way",
            Fault::Delay => "delay",
            Fault::Drop => "drop",
        }
    }

    /// The fault named `name`.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The nemesis's log: one line per action, with the time since the run began.
#[derive(Clone)]
pub struct NemesisLog {
    start: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl NemesisLog {
    /// An empty log whose clock starts at `start`.
    pub fn new(start: Instant) -> Self {
        NemesisLog {
            start,
            lines: Arc::default(),
        }
    }

    /// Records (and prints on stderr) `what`.
    pub fn note(&self, what: impl fmt::Display) {
        let line = format!("{:9.3}s {what}", self.start.elapsed().as_secs_f64());
        eprintln!("nemesis {line}");
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the nemesis acts on.
pub struct Nemesis {
    /// The member processes.
    pub processes: Arc<Mutex<Processes>>,
    /// The link faults.
    pub faults: Faults,
    /// The faults to draw from.
    pub kinds: Vec<Fault>,
    /// Drawing the schedule.
    pub rng: Rng,
    /// Where actions are recorded.
    pub log: NemesisLog,
}

/// The leader's index among `endpoints`, by asking each member's `Maintenance.Status`.
pub async fn find_leader(endpoints: &[String]) -> Option<usize> {
    let options = ConnectOptions {
        dial_timeout: Some(Duration::from_millis(500)),
        request_timeout: Some(Duration::from_millis(500)),
        tls: None,
    };
    let mut ids = Vec::new();
    let mut leader = None;
    for endpoint in endpoints {
        let status =
            match Client::connect_with(std::slice::from_ref(endpoint), options.clone()).await {
                Ok(client) => client
                    .maintenance_status(cairn_client::pb::etcdserverpb::StatusRequest {})
                    .await
                    .ok(),
                Err(_) => None,
            };
        ids.push(
            status
                .as_ref()
                .and_then(|s| s.header.as_ref())
                .map(|h| h.member_id),
        );
        if let Some(status) = status.filter(|s| s.leader != 0) {
            leader = Some(status.leader);
        }
    }
    let leader = leader?;
    ids.iter().position(|id| *id == Some(leader))
}

impl Nemesis {
    fn processes(&self) -> MutexGuard<'_, Processes> {
        self.processes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs faults until `deadline`, then undoes the last one.
    pub async fn run(mut self, deadline: Instant) {
        if self.kinds.is_empty() {
            return;
        }
        let members = self.processes().len();
        let endpoints = self.processes().endpoints();
        self.log.note(format!(
            "nemesis faults: {}",
            self.kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        ));
        loop {
            let quiet = Duration::from_millis(self.rng.between(1000, 3000));
            if !sleep_until_before(quiet, deadline).await {
                break;
            }
            if let Some((i, status)) = self.processes().crashed() {
                self.log
                    .note(format!("n{i} exited by itself ({status}); restarting it"));
                if let Err(e) = self.processes().start(i) {
                    self.log.note(format!("cannot restart n{i}: {e}"));
                }
            }
            let kind = self.kinds[self.rng.below(self.kinds.len() as u64) as usize];
            let hold = Duration::from_millis(self.rng.between(1000, 4000));
            // Every draw is made whatever the fault, so the schedule follows from the seed
            // alone (not from whether the leader could be found).
            let target_leader = self.rng.chance(0.5);
            let drawn = self.rng.below(members as u64) as usize;
            let offset = 1 + self.rng.below(members.max(2) as u64 - 1) as usize;
            let victim = if matches!(kind, Fault::IsolateLeader)
                || (target_leader && matches!(kind, Fault::Kill | Fault::Pause))
            {
                find_leader(&endpoints).await.unwrap_or(drawn)
            } else {
                drawn
            };
            let other = (victim + offset) % members;
            match kind {
                Fault::Kill => {
                    self.processes().kill(victim);
                    self.log.note(format!("kill n{victim}"));
                }
                Fault::Pause => {
                    self.processes().pause(victim);
                    self.log.note(format!("pause n{victim}"));
                }
                Fault::Partition => {
                    let order = self.rng.shuffled(members);
                    let (left, right) = order.split_at(members / 2);
                    let groups = vec![left.to_vec(), right.to_vec()];
                    self.faults.partition(&groups);
                    self.log.note(format!("partition {left:?} | {right:?}"));
                }
                Fault::IsolateLeader => {
                    let rest: Vec<usize> = (0..members).filter(|&m| m != victim).collect();
                    self.faults.partition(&[vec![victim], rest]);
                    self.log.note(format!("isolate leader n{victim}"));
                }
                Fault::OneWay => {
                    self.faults.cut_one_way(victim, other);
                    self.log.note(format!("cut n{victim} -> n{other}"));
                }
                Fault::Delay => {
                    let ms = self.rng.between(20, 300);
                    self.faults.delay(victim, other, Duration::from_millis(ms));
                    self.log
                        .note(format!("delay n{victim} <-> n{other} by {ms}ms"));
                }
                Fault::Drop => {
                    let percent = self.rng.between(5, 30);
                    self.faults
                        .drop_chunks(victim, other, percent as f64 / 100.0);
                    self.log.note(format!(
                        "drop n{victim} <-> n{other} at {percent}% per chunk"
                    ));
                }
            }
            sleep_until_before(hold, deadline).await;
            match kind {
                Fault::Kill => match self.processes().start(victim) {
                    Ok(()) => self.log.note(format!("restart n{victim}")),
                    Err(e) => self.log.note(format!("cannot restart n{victim}: {e}")),
                },
                Fault::Pause => {
                    self.processes().resume(victim);
                    self.log.note(format!("resume n{victim}"));
                }
                _ => {
                    self.faults.heal();
                    self.log.note("heal");
                }
            }
        }
    }
}

/// Sleeps `duration`, or until `deadline` if that is sooner; whether the full duration
/// fitted before the deadline.
async fn sleep_until_before(duration: Duration, deadline: Instant) -> bool {
    let now = Instant::now();
    let left = deadline.saturating_duration_since(now);
    tokio::time::sleep(duration.min(left)).await;
    duration < left
}
