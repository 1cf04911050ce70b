//! A simulated cluster: one madsim host per member, each with a `MemEngine` that survives
//! kill/restart (and is cut back to its synced state on power loss).
//!
//! Every member runs the unchanged `cairn_node::start`. The cluster keeps, per member, the
//! engine (the simulated disk), the server [`Handle`] of its current incarnation (so the
//! simulator can see Raft status without the network) and the error a member stopped with:
//! a member whose event loop ends (a failed fsync is fatal) stays down until the simulator
//! restarts it, as a process supervisor would.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_core::storage::mem::MemEngine;
use cairn_node::config::Config;
use cairn_node::server::Handle as NodeHandleApi;
use madsim::runtime::{Handle, NodeHandle};

/// Client port of every simulated member.
pub const CLIENT_PORT: u16 = 2379;
/// Peer port of every simulated member.
pub const PEER_PORT: u16 = 2380;

/// What the simulator knows about one member's current incarnation.
#[derive(Default)]
struct Incarnation {
    /// The running member's server handle (`None` before it started).
    handle: Option<NodeHandleApi>,
    /// Why its event loop ended, if it did.
    stopped: Option<String>,
    /// Killed or powered off by the simulator, not started again yet.
    down: bool,
    /// Paused by the simulator.
    paused: bool,
}

/// One simulated member.
pub struct SimMember {
    /// Member name (`n1`, `n2`, …).
    pub name: String,
    /// The host's address.
    pub ip: IpAddr,
    host: NodeHandle,
    /// The flags of the next incarnation (a member added back joins the existing cluster).
    config: Arc<Mutex<Config>>,
    engine: Arc<Mutex<MemEngine>>,
    incarnation: Arc<Mutex<Incarnation>>,
}

/// A simulated cluster of `cairn` members.
pub struct SimCluster {
    handle: Handle,
    members: Vec<SimMember>,
}

/// How often a simulated member compacts its Raft log, and how much of it it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCompaction {
    /// `--snapshot-count`: applied entries between compactions.
    pub snapshot_count: u64,
    /// `--experimental-snapshot-catchup-entries`: entries kept behind a compaction.
    pub catch_up_entries: u64,
}

impl LogCompaction {
    /// etcd's defaults: far more entries than a simulated run writes, so the log keeps its
    /// first entry (the watch check replays it from there).
    pub const DEFAULT: LogCompaction = LogCompaction {
        snapshot_count: 100_000,
        catch_up_entries: 5_000,
    };

    /// Compacting often and keeping little, so that members that were down or cut off
    /// catch up by snapshot.
    pub const AGGRESSIVE: LogCompaction = LogCompaction {
        snapshot_count: 200,
        catch_up_entries: 20,
    };
}

fn member_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + index as u8))
}

fn member_url(index: usize, port: u16) -> String {
    format!("http://{}:{port}", member_ip(index))
}

fn member_config(index: usize, size: usize, compaction: LogCompaction) -> Config {
    let url = member_url;
    let cluster: Vec<String> = (0..size)
        .map(|i| format!("n{}={}", i + 1, url(i, PEER_PORT)))
        .collect();
    let args = vec![
        "cairn".to_string(),
        format!("--name=n{}", index + 1),
        format!("--listen-client-urls={}", url(index, CLIENT_PORT)),
        format!("--advertise-client-urls={}", url(index, CLIENT_PORT)),
        format!("--listen-peer-urls={}", url(index, PEER_PORT)),
        format!("--initial-advertise-peer-urls={}", url(index, PEER_PORT)),
        format!("--initial-cluster={}", cluster.join(",")),
        format!("--snapshot-count={}", compaction.snapshot_count),
        format!(
            "--experimental-snapshot-catchup-entries={}",
            compaction.catch_up_entries
        ),
    ];
    let flags = Config::from_args(args).expect("simulated member flags are valid");
    Config::from_flags(flags).expect("simulated member config is valid")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimCluster {
    /// Starts `size` members on hosts 10.0.0.1, 10.0.0.2, …
    pub fn start(size: usize) -> SimCluster {
        SimCluster::start_with(size, LogCompaction::DEFAULT)
    }

    /// Starts `size` members that compact their Raft logs as `compaction` says.
    pub fn start_with(size: usize, compaction: LogCompaction) -> SimCluster {
        let handle = Handle::current();
        let members = (0..size)
            .map(|index| start_member(&handle, index, size, compaction))
            .collect();
        SimCluster { handle, members }
    }

    /// The members.
    pub fn members(&self) -> &[SimMember] {
        &self.members
    }

    /// How many members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Client endpoints of every member (`http://ip:2379`).
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://{}", SocketAddr::new(m.ip, CLIENT_PORT)))
            .collect()
    }

    /// The peer URL member `index` advertises (`http://ip:2380`).
    pub fn peer_url(&self, index: usize) -> String {
        member_url(index, PEER_PORT)
    }

    /// Starts member `index` again as a new member on an empty disk, joining the existing
    /// cluster whose members (name, peer URL) are `initial_cluster` (etcd's procedure after
    /// `member add`). Whatever runs in the slot now is stopped first.
    pub fn rejoin(&self, index: usize, initial_cluster: Vec<(String, String)>) {
        let member = &self.members[index];
        self.handle.kill(member.host.id());
        {
            let mut config = lock(&member.config);
            config.new_cluster = false;
            config.initial_cluster = initial_cluster;
        }
        *lock(&member.engine) = MemEngine::new();
        *lock(&member.incarnation) = Incarnation::default();
        self.handle.restart(member.host.id());
    }

    /// The madsim node id of member `index` (for network faults).
    pub fn node_id(&self, index: usize) -> madsim::task::NodeId {
        self.members[index].host.id()
    }

    /// Stops member `index` (a crash: unsynced writes stay in the engine, as in the page
    /// cache of a live machine).
    pub fn kill(&self, index: usize) {
        self.handle.kill(self.node_id(index));
        let mut incarnation = lock(&self.members[index].incarnation);
        incarnation.down = true;
        incarnation.paused = false;
    }

    /// Starts a killed (or stopped) member again.
    pub fn start_again(&self, index: usize) {
        // Killed first: madsim's restart alone leaves a member that stopped by itself
        // bound to its old sockets, and peers dialing it then get connection resets.
        self.handle.kill(self.node_id(index));
        *lock(&self.members[index].incarnation) = Incarnation::default();
        self.handle.restart(self.node_id(index));
    }

    /// Kills member `index` and starts it again on the same (unsynced writes included) state:
    /// a process crash, not a power loss.
    pub fn restart(&self, index: usize) {
        self.kill(index);
        self.start_again(index);
    }

    /// Cuts the power of member `index`: it stops, and its disk keeps what was synced plus
    /// the first `keep_unsynced_batches` unsynced batches (a torn tail). It stays down until
    /// [`SimCluster::start_again`].
    pub fn power_off(&self, index: usize, keep_unsynced_batches: usize) {
        self.kill(index);
        let mut engine = lock(&self.members[index].engine);
        *engine = engine.crash_torn(keep_unsynced_batches);
    }

    /// Cuts the power of member `index` (only synced data survives), then starts it again.
    pub fn power_cycle(&self, index: usize) {
        self.power_off(index, 0);
        self.start_again(index);
    }

    /// Batches member `index` would lose in a power cut now.
    pub fn unsynced_batches(&self, index: usize) -> usize {
        lock(&self.members[index].engine).unsynced_batches()
    }

    /// Member `index`'s disk (a handle sharing its state).
    pub fn engine(&self, index: usize) -> MemEngine {
        lock(&self.members[index].engine).clone()
    }

    /// Makes the next fsync of member `index` fail.
    pub fn fail_next_sync(&self, index: usize) {
        lock(&self.members[index].engine).fail_next_sync();
    }

    /// Clears an fsync failure armed on member `index` that has not fired yet (the disk
    /// recovered) by syncing its disk once from outside: what it had written becomes
    /// durable, as if the OS had flushed it.
    pub fn disarm_sync_failure(&self, index: usize) {
        // An error here is the armed failure being consumed; success means none was armed.
        let _ = cairn_core::storage::Engine::sync(&*lock(&self.members[index].engine));
    }

    /// Freezes every task of member `index` (a stalled process: its clock jumps when it
    /// resumes).
    pub fn pause(&self, index: usize) {
        self.handle.pause(self.node_id(index));
        lock(&self.members[index].incarnation).paused = true;
    }

    /// Lets a paused member run again.
    pub fn resume(&self, index: usize) {
        self.handle.resume(self.node_id(index));
        lock(&self.members[index].incarnation).paused = false;
    }

    /// Whether member `index` is running (not killed, powered off, stopped or paused).
    pub fn is_up(&self, index: usize) -> bool {
        let incarnation = lock(&self.members[index].incarnation);
        !incarnation.down && !incarnation.paused && incarnation.stopped.is_none()
    }

    /// Whether member `index` was killed or powered off and not started again.
    pub fn is_down(&self, index: usize) -> bool {
        lock(&self.members[index].incarnation).down
    }

    /// Whether member `index` is paused.
    pub fn is_paused(&self, index: usize) -> bool {
        lock(&self.members[index].incarnation).paused
    }

    /// Members whose event loop ended by itself, with the error; each is reported once.
    pub fn take_stopped(&self) -> Vec<(usize, String)> {
        let mut stopped = Vec::new();
        for (index, member) in self.members.iter().enumerate() {
            let mut incarnation = lock(&member.incarnation);
            if incarnation.down {
                continue;
            }
            if let Some(error) = incarnation.stopped.take() {
                incarnation.down = true;
                stopped.push((index, error));
            }
        }
        stopped
    }

    /// The server handle of member `index` if it is running.
    pub fn node_handle(&self, index: usize) -> Option<NodeHandleApi> {
        if !self.is_up(index) {
            return None;
        }
        lock(&self.members[index].incarnation).handle.clone()
    }

    /// The member that running members agree leads: a running member that sees itself as
    /// leader, the one with the highest term if a deposed leader has not noticed yet.
    pub fn leader(&self) -> Option<usize> {
        (0..self.size())
            .filter_map(|i| self.node_handle(i).map(|h| (i, h)))
            .filter(|(_, h)| h.raft_status().leader == h.identity().member_id)
            .max_by_key(|(i, h)| (h.raft_status().term, usize::MAX - i))
            .map(|(i, _)| i)
    }
}

fn start_member(
    handle: &Handle,
    index: usize,
    size: usize,
    compaction: LogCompaction,
) -> SimMember {
    let config = Arc::new(Mutex::new(member_config(index, size, compaction)));
    let engine = Arc::new(Mutex::new(MemEngine::new()));
    let incarnation = Arc::new(Mutex::new(Incarnation::default()));
    let name = lock(&config).name.clone();
    let ip = member_ip(index);
    let init_config = config.clone();
    let init_engine = engine.clone();
    let init_incarnation = incarnation.clone();
    let host = handle
        .create_node()
        .name(name.clone())
        .ip(ip)
        .init(move || {
            let config = lock(&init_config).clone();
            let engine = lock(&init_engine).clone();
            let incarnation = init_incarnation.clone();
            async move { run_member(config, engine, incarnation).await }
        })
        .build();
    SimMember {
        name,
        ip,
        host,
        config,
        engine,
        incarnation,
    }
}

/// Why a member whose event loop ended without an error stopped: it was removed from the
/// cluster (it applied its removal, or a member refused its traffic).
pub const REMOVED_STOP: &str = "removed from the cluster";

/// One incarnation of a member: starts it, then waits for its event loop to end. A member
/// that cannot start on its own disk is a bug the run must report, hence the panic; a new
/// member that finds no existing member to join (cut off, or they are down) stops, to be
/// started again like any member that stopped.
async fn run_member(config: Config, engine: MemEngine, incarnation: Arc<Mutex<Incarnation>>) {
    let mut node = match cairn_node::start(&config, Arc::new(engine)).await {
        Ok(node) => node,
        Err(e @ cairn_node::NodeError::Join(_)) => {
            tracing::warn!(member = %config.name, error = %e, "member could not join");
            lock(&incarnation).stopped = Some(e.to_string());
            return std::future::pending::<()>().await;
        }
        Err(e) => panic!("member {} failed to start: {e}", config.name),
    };
    lock(&incarnation).handle = Some(node.handle.clone());
    let stopped = match node.wait().await {
        Ok(()) => REMOVED_STOP.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(member = %config.name, error = %stopped, "member stopped");
    lock(&incarnation).stopped = Some(stopped);
    std::future::pending::<()>().await;
}
