//! The nemesis: faults drawn from the seed, one episode at a time, during the safety phase;
//! then [`Nemesis::heal`] undoes everything for the liveness phase.
//!
//! An episode picks a fault kind among those enabled, applies it, holds it for a drawn
//! while, and lifts it. Network faults are madsim clogs (partitions: halves, an isolated
//! leader, one-way cuts, a bridge) and the peer layer's simulated loss, duplication,
//! reordering and delay (`cairn_node::peer::sim_faults`). Process faults are crashes,
//! power cuts of one member, a majority or all (the `mem` engine keeps only synced data,
//! plus a drawn prefix of the unsynced batches: a torn tail), fsync errors, and stalls.
//! A member that stops by itself (fsync failure is fatal) is restarted from its crash
//! image a moment later, as a supervisor would. A membership episode removes a member
//! (maybe while another fault is in force) and adds it back as a new member; healing
//! repairs the membership from what the cluster committed (see [`crate::membership`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use cairn_node::clock::sim_skew;
use cairn_node::peer::sim_faults::{self, MessageFaults};
use madsim::net::NetSim;
use madsim::rand::Rng as _;
use madsim::runtime::NodeHandle;

use crate::cluster::SimCluster;
use crate::membership;
use crate::options::Fault;

/// How often the nemesis looks for members that stopped by themselves.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// How long a stopped member stays down before it is restarted.
const RESTART_DELAY: Duration = Duration::from_millis(500);
/// The most a member's clock runs fast or slow, in parts per million (5%: far beyond a
/// real oscillator's drift, which etcd's lease safety assumes small).
pub const MAX_CLOCK_SKEW_PPM: i64 = 50_000;
/// How long healing may take to bring every removed member back as a voter.
const MEMBERSHIP_REPAIR_BOUND: Duration = Duration::from_secs(60);
/// Between two steps of a membership repair.
const MEMBERSHIP_STEP: Duration = Duration::from_millis(500);

/// What is currently broken, so that it can be lifted.
#[derive(Debug, Default)]
struct Damage {
    /// Clogged links `(from, to)` by member index.
    clogged: Vec<(usize, usize)>,
    /// Members killed or powered off by an episode.
    down: Vec<usize>,
    /// Paused members.
    paused: Vec<usize>,
    /// Members with an fsync failure armed, maybe not fired yet.
    failing_disks: Vec<usize>,
    /// Members that may have been removed from the cluster, each with the id of the new
    /// member started in its slot since (a started member is never wiped again: it may
    /// have voted and acknowledged entries).
    removed: BTreeMap<usize, Option<u64>>,
}

/// The fault injector of one run.
pub struct Nemesis<'a> {
    cluster: &'a SimCluster,
    /// The host membership calls are made from.
    client_host: NodeHandle,
    faults: Vec<Fault>,
    damage: Damage,
    /// One line per fault applied, with its simulated time (the run's fault log).
    log: String,
}

impl<'a> Nemesis<'a> {
    /// A nemesis drawing from `faults` (none: it only restarts stopped members), making
    /// its membership calls from `client_host`.
    pub fn new(
        cluster: &'a SimCluster,
        client_host: NodeHandle,
        faults: impl IntoIterator<Item = Fault>,
    ) -> Self {
        Nemesis {
            cluster,
            client_host,
            faults: faults.into_iter().collect(),
            damage: Damage::default(),
            log: String::new(),
        }
    }

    /// The fault log so far.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Runs episodes until `length` of simulated time has passed.
    pub async fn run_for(&mut self, length: Duration) {
        let end = madsim::time::Instant::now() + length;
        while madsim::time::Instant::now() < end {
            let gap = draw_duration(Duration::from_millis(500), Duration::from_secs(3));
            self.watch(gap.min(end - madsim::time::Instant::now()))
                .await;
            if self.faults.is_empty() || madsim::time::Instant::now() >= end {
                continue;
            }
            let fault = self.faults[madsim::rand::thread_rng().gen_range(0..self.faults.len())];
            self.episode(fault, end).await;
        }
    }

    /// Waits `length`, restarting members that stopped by themselves meanwhile.
    pub async fn watch(&mut self, length: Duration) {
        let end = madsim::time::Instant::now() + length;
        loop {
            self.restart_stopped().await;
            let now = madsim::time::Instant::now();
            if now >= end {
                return;
            }
            madsim::time::sleep(WATCH_INTERVAL.min(end - now)).await;
        }
    }

    /// Restarts members that stop by themselves, for ever.
    pub async fn keep_restarting(&mut self) {
        loop {
            self.restart_stopped().await;
            if !self.damage.removed.is_empty() {
                // A member learned only now that a removal which seemed to fail went
                // through: bring it back as before.
                self.repair_membership().await;
            }
            madsim::time::sleep(WATCH_INTERVAL).await;
        }
    }

    /// Lifts every fault: links unclogged, messages delivered as sent, every member
    /// running again, every removed member back as a voter.
    pub async fn heal(&mut self) {
        self.note("heal everything");
        let net = NetSim::current();
        for (from, to) in std::mem::take(&mut self.damage.clogged) {
            net.unclog_link(self.cluster.node_id(from), self.cluster.node_id(to));
        }
        sim_faults::set(MessageFaults::default());
        sim_skew::clear();
        for index in std::mem::take(&mut self.damage.failing_disks) {
            self.cluster.disarm_sync_failure(index);
        }
        for index in std::mem::take(&mut self.damage.paused) {
            self.cluster.resume(index);
        }
        for index in std::mem::take(&mut self.damage.down) {
            if !self.damage.removed.contains_key(&index) {
                self.cluster.start_again(index);
            }
        }
        self.restart_stopped().await;
        self.repair_membership().await;
    }

    async fn episode(&mut self, fault: Fault, end: madsim::time::Instant) {
        let hold = draw_duration(Duration::from_millis(500), Duration::from_secs(8));
        if fault == Fault::Member {
            return self.membership_episode(hold, end).await;
        }
        self.apply(fault);
        let now = madsim::time::Instant::now();
        let hold = hold.min(end.saturating_duration_since(now));
        self.watch(hold).await;
        self.heal().await;
    }

    fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Partition => self.partition(),
            Fault::Loss => self.lossy_network(),
            Fault::Kill => self.kill(),
            Fault::Power => self.power_cut(),
            Fault::Fsync => self.fsync_error(),
            Fault::Pause => self.pause(),
            Fault::Clock => self.clock_fault(),
            Fault::Member => {}
        }
    }

    /// Removes a member, maybe under another fault; tries to add it back halfway through
    /// the hold, and heals (which finishes bringing it back).
    async fn membership_episode(&mut self, hold: Duration, end: madsim::time::Instant) {
        let others: Vec<Fault> = self
            .faults
            .iter()
            .copied()
            .filter(|&f| f != Fault::Member)
            .collect();
        if !others.is_empty() && madsim::rand::thread_rng().gen_bool(0.5) {
            let other = others[madsim::rand::thread_rng().gen_range(0..others.len())];
            self.apply(other);
        }
        self.remove_member().await;
        let now = madsim::time::Instant::now();
        let hold = hold.min(end.saturating_duration_since(now));
        self.watch(hold / 2).await;
        self.membership_step().await;
        self.watch(hold / 2).await;
        self.heal().await;
    }

    /// Removes a member through another one; half of the time the removed member is also
    /// stopped at once (else it stops by itself once it applies its removal).
    async fn remove_member(&mut self) {
        let member = self.target();
        if self.damage.removed.contains_key(&member) {
            return;
        }
        let Some(through) = self.other_member(member) else {
            return;
        };
        let endpoint = self.cluster.endpoints()[through].clone();
        let url = self.cluster.peer_url(member);
        let outcome = self.on_client(membership::remove(endpoint, url)).await;
        self.note(&format!(
            "remove n{} through n{}: {outcome}",
            member + 1,
            through + 1
        ));
        self.damage.removed.insert(member, None);
        if madsim::rand::thread_rng().gen_bool(0.5) && !self.cluster.is_down(member) {
            self.note(&format!("stop n{}", member + 1));
            self.cluster.kill(member);
        }
    }

    /// Repairs the membership until every removed member is back as a started voter, or
    /// the bound passes (the liveness phase then reports the cluster that never healed).
    async fn repair_membership(&mut self) {
        let end = madsim::time::Instant::now() + MEMBERSHIP_REPAIR_BOUND;
        while !self.damage.removed.is_empty() {
            if madsim::time::Instant::now() >= end {
                self.note("membership not repaired in time");
                return;
            }
            self.membership_step().await;
            if self.damage.removed.is_empty() {
                break;
            }
            madsim::time::sleep(MEMBERSHIP_STEP).await;
            self.restart_stopped().await;
        }
    }

    /// One repair step for every member that may have been removed.
    async fn membership_step(&mut self) {
        let slots: Vec<usize> = self.damage.removed.keys().copied().collect();
        for member in slots {
            if self.repair_step(member).await {
                self.damage.removed.remove(&member);
            }
        }
    }

    /// Takes the next step to bring `member`'s slot back as a started voter, from the
    /// membership the cluster committed; returns whether it is one.
    async fn repair_step(&mut self, member: usize) -> bool {
        let Some(through) = self.other_member(member) else {
            return false;
        };
        let endpoint = self.cluster.endpoints()[through].clone();
        let url = self.cluster.peer_url(member);
        let name = format!("n{}", member + 1);
        let members = match self.on_client(membership::members(endpoint.clone())).await {
            Ok(members) => members,
            Err(_) => return false,
        };
        let started = self.damage.removed.get(&member).copied().flatten();
        let running = self
            .cluster
            .node_handle(member)
            .map(|h| h.identity().member_id);
        let Some(current) = membership::find(&members, &url).cloned() else {
            // Removed: add a new member in the slot.
            let learner = madsim::rand::thread_rng().gen_bool(0.5);
            let kind = if learner { "learner" } else { "voter" };
            match self
                .on_client(membership::add(endpoint, url.clone(), learner))
                .await
            {
                Ok((id, members)) => {
                    self.note(&format!(
                        "add {name} back as {kind} {id:x} on an empty disk"
                    ));
                    let cluster = membership::initial_cluster(&members, &name, &url);
                    self.cluster.rejoin(member, cluster);
                    self.damage.removed.insert(member, Some(id));
                }
                Err(e) => self.note(&format!("adding {name} back as {kind}: {e}")),
            }
            return false;
        };
        if running == Some(current.id) {
            if !current.is_learner {
                return !current.name.is_empty();
            }
            if let Err(e) = self
                .on_client(membership::promote(endpoint, current.id))
                .await
            {
                self.note(&format!("promoting {name} ({:x}): {e}", current.id));
                return false;
            }
            self.note(&format!("promoted {name} ({:x})", current.id));
            return false;
        }
        if started == Some(current.id) || (started.is_none() && !current.name.is_empty()) {
            // The member in the slot (a new one started earlier, or the old one whose
            // removal never happened) is not running: start it on its disk.
            if self.cluster.node_handle(member).is_none() && !self.cluster.is_paused(member) {
                self.note(&format!("start {name} ({:x}) again", current.id));
                self.cluster.start_again(member);
            }
            return false;
        }
        if started.is_none() {
            // Added (by an add whose answer was lost), never started: start it, on an
            // empty disk.
            self.note(&format!("start {name} as added member {:x}", current.id));
            let cluster = membership::initial_cluster(&members, &name, &url);
            self.cluster.rejoin(member, cluster);
            self.damage.removed.insert(member, Some(current.id));
        }
        false
    }

    /// A member other than `member` that runs (the lowest, for determinism).
    fn other_member(&self, member: usize) -> Option<usize> {
        (0..self.cluster.size()).find(|&m| m != member && self.cluster.is_up(m))
    }

    /// Runs a membership call on the client host.
    async fn on_client<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.client_host
            .spawn(call)
            .await
            .expect("membership call task")
    }

    /// Adds a line to the fault log, with the simulated time.
    pub fn note(&mut self, what: &str) {
        let at = crate::recorder::now_nanos() as f64 / 1e9;
        let _ = writeln!(self.log, "{at:9.3}s  {what}");
    }

    /// A member: the leader with probability 1/2 (when there is one), else any.
    fn target(&self) -> usize {
        let mut rng = madsim::rand::thread_rng();
        match self.cluster.leader() {
            Some(leader) if rng.gen_bool(0.5) => leader,
            _ => rng.gen_range(0..self.cluster.size()),
        }
    }

    fn clog(&mut self, from: usize, to: usize) {
        NetSim::current().clog_link(self.cluster.node_id(from), self.cluster.node_id(to));
        self.damage.clogged.push((from, to));
    }

    /// Cuts both directions between every member of `side` and every member outside it.
    fn cut(&mut self, side: &[usize]) {
        for a in 0..self.cluster.size() {
            for b in 0..self.cluster.size() {
                if side.contains(&a) != side.contains(&b) {
                    self.clog(a, b);
                }
            }
        }
    }

    fn partition(&mut self) {
        let n = self.cluster.size();
        match madsim::rand::thread_rng().gen_range(0..4) {
            0 => {
                let side = shuffled(n)[..n / 2].to_vec();
                self.note(&format!("partition: {} | rest", names(&side)));
                self.cut(&side);
            }
            1 => {
                let leader = self.target();
                self.note(&format!("partition: isolate n{}", leader + 1));
                self.cut(&[leader]);
            }
            2 => self.one_way_partition(),
            _ => self.bridge(),
        }
    }

    /// One member cannot send to (or cannot hear from) the others.
    fn one_way_partition(&mut self) {
        let member = self.target();
        let outbound = madsim::rand::thread_rng().gen_bool(0.5);
        let direction = if outbound { "send" } else { "receive" };
        self.note(&format!("partition: n{} cannot {direction}", member + 1));
        for other in (0..self.cluster.size()).filter(|&o| o != member) {
            if outbound {
                self.clog(member, other);
            } else {
                self.clog(other, member);
            }
        }
    }

    /// Two halves that cannot talk, and one member in the middle that talks to both.
    fn bridge(&mut self) {
        let order = shuffled(self.cluster.size());
        let (bridge, rest) = order.split_first().expect("a cluster has members");
        let (left, right) = rest.split_at(rest.len() / 2);
        self.note(&format!(
            "partition: bridge n{} between {} and {}",
            bridge + 1,
            names(left),
            names(right)
        ));
        for &a in left {
            for &b in right {
                self.clog(a, b);
                self.clog(b, a);
            }
        }
    }

    fn lossy_network(&mut self) {
        let mut rng = madsim::rand::thread_rng();
        let faults = MessageFaults {
            drop_per_mille: rng.gen_range(0..=300),
            duplicate_per_mille: rng.gen_range(0..=100),
            reorder_per_mille: rng.gen_range(0..=100),
            delay_per_mille: rng.gen_range(0..=200),
            max_delay: draw_duration(Duration::from_millis(10), Duration::from_millis(1500)),
        };
        self.note(&format!(
            "raft messages: {}‰ lost, {}‰ duplicated, {}‰ reordered, {}‰ delayed (up to {:?})",
            faults.drop_per_mille,
            faults.duplicate_per_mille,
            faults.reorder_per_mille,
            faults.delay_per_mille,
            faults.max_delay
        ));
        sim_faults::set(faults);
    }

    fn kill(&mut self) {
        let member = self.target();
        if !self.cluster.is_up(member) {
            return;
        }
        self.note(&format!("kill n{}", member + 1));
        self.cluster.kill(member);
        self.damage.down.push(member);
    }

    /// Cuts the power of one member, a majority, or all of them at once.
    fn power_cut(&mut self) {
        let n = self.cluster.size();
        let count = match madsim::rand::thread_rng().gen_range(0..3) {
            0 => 1,
            1 => n / 2 + 1,
            _ => n,
        };
        let mut members = shuffled(n);
        members.truncate(count);
        members.sort_unstable();
        for member in members {
            self.power_off(member);
        }
    }

    fn power_off(&mut self, member: usize) {
        if self.cluster.is_down(member) {
            return;
        }
        if self.cluster.is_paused(member) {
            self.cluster.resume(member);
            self.damage.paused.retain(|&m| m != member);
        }
        let unsynced = self.cluster.unsynced_batches(member);
        let kept = torn_tail(unsynced);
        self.note(&format!(
            "power off n{} (keeps {kept} of {unsynced} unsynced batches)",
            member + 1
        ));
        self.cluster.power_off(member, kept);
        self.damage.down.push(member);
    }

    fn fsync_error(&mut self) {
        let member = self.target();
        self.note(&format!("next fsync of n{} fails", member + 1));
        self.cluster.fail_next_sync(member);
        self.damage.failing_disks.push(member);
    }

    fn pause(&mut self) {
        let member = self.target();
        if !self.cluster.is_up(member) {
            return;
        }
        self.note(&format!("pause n{}", member + 1));
        self.cluster.pause(member);
        self.damage.paused.push(member);
    }

    /// The clock of the whole simulation jumps forward, or one member's clock runs fast or
    /// slow (by up to [`MAX_CLOCK_SKEW_PPM`]) until healed.
    fn clock_fault(&mut self) {
        let mut rng = madsim::rand::thread_rng();
        if rng.gen_bool(0.5) {
            let jump = draw_duration(Duration::from_millis(200), Duration::from_secs(5));
            self.note(&format!("clock jumps {jump:?} forward"));
            madsim::time::advance(jump);
            return;
        }
        let member = self.target();
        let Some(handle) = self.cluster.node_handle(member) else {
            return;
        };
        let ppm = rng.gen_range(-MAX_CLOCK_SKEW_PPM..=MAX_CLOCK_SKEW_PPM);
        self.note(&format!(
            "clock of n{} runs {:+.1}% {}",
            member + 1,
            ppm as f64 / 10_000.0,
            if ppm >= 0 { "fast" } else { "slow" }
        ));
        sim_skew::set(handle.identity().member_id, ppm);
    }

    /// Restarts members whose event loop ended (after a failed fsync): the process exited,
    /// and its disk is whatever survived.
    async fn restart_stopped(&mut self) {
        let stopped = self.cluster.take_stopped();
        if stopped.is_empty() {
            return;
        }
        madsim::time::sleep(RESTART_DELAY).await;
        for (member, error) in stopped {
            if error == crate::cluster::REMOVED_STOP && !self.damage.removed.contains_key(&member) {
                // A removal the nemesis saw fail (its answer was lost) went through.
                self.damage.removed.insert(member, None);
            }
            if self.damage.removed.contains_key(&member) {
                // Removed (it stops once it applies its removal) or a member that could
                // not join yet: the membership repair decides what runs in the slot.
                self.note(&format!("n{} stopped ({error})", member + 1));
                continue;
            }
            let unsynced = self.cluster.unsynced_batches(member);
            let kept = torn_tail(unsynced);
            self.note(&format!(
                "n{} stopped ({error}); restart keeping {kept} of {unsynced} unsynced batches",
                member + 1
            ));
            self.cluster.power_off(member, kept);
            self.cluster.start_again(member);
        }
    }
}

/// How many of `unsynced` batches survive a power cut: none half of the time (the
/// disk's cache was lost), else a drawn prefix (the OS had flushed some).
fn torn_tail(unsynced: usize) -> usize {
    let mut rng = madsim::rand::thread_rng();
    if rng.gen_bool(0.5) {
        0
    } else {
        rng.gen_range(0..=unsynced)
    }
}

/// A duration drawn uniformly in `[low, high]`.
fn draw_duration(low: Duration, high: Duration) -> Duration {
    madsim::rand::thread_rng().gen_range(low..=high)
}

/// `0..n` in an order drawn by the seed.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = madsim::rand::thread_rng();
    for i in (1..n).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    order
}

/// `{n1,n3}`.
fn names(members: &[usize]) -> String {
    let names: Vec<String> = members.iter().map(|m| format!("n{}", m + 1)).collect();
    format!("{{{}}}", names.join(","))
}
