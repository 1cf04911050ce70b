//! A simulated cluster: one madsim host per member, each with a `MemEngine` that survives
//! kill/restart (and is cut back to its synced state on power loss).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use cairn_core::storage::mem::MemEngine;
use cairn_node::config::Config;
use madsim::runtime::{Handle, NodeHandle};

/// Client port of every simulated member.
pub const CLIENT_PORT: u16 = 2379;
/// Peer port of every simulated member.
pub const PEER_PORT: u16 = 2380;

/// One simulated member.
pub struct SimMember {
    /// Member name (`n1`, `n2`, …).
    pub name: String,
    /// The host's address.
    pub ip: IpAddr,
    host: NodeHandle,
    engine: Arc<Mutex<MemEngine>>,
}

/// A simulated cluster of `cairn` members.
pub struct SimCluster {
    handle: Handle,
    members: Vec<SimMember>,
}

fn member_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + index as u8))
}

fn member_config(index: usize, size: usize) -> Config {
    let url = |i: usize, port: u16| format!("http://{}:{port}", member_ip(i));
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
    ];
    let flags = Config::from_args(args).expect("simulated member flags are valid");
    Config::from_flags(flags).expect("simulated member config is valid")
}

impl SimCluster {
    /// Starts `size` members on hosts 10.0.0.1, 10.0.0.2, …
    pub fn start(size: usize) -> SimCluster {
        let handle = Handle::current();
        let members = (0..size)
            .map(|index| start_member(&handle, index, size))
            .collect();
        SimCluster { handle, members }
    }

    /// The members.
    pub fn members(&self) -> &[SimMember] {
        &self.members
    }

    /// Client endpoints of every member (`http://ip:2379`).
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://{}", SocketAddr::new(m.ip, CLIENT_PORT)))
            .collect()
    }

    /// The madsim node id of member `index` (for network faults).
    pub fn node_id(&self, index: usize) -> madsim::task::NodeId {
        self.members[index].host.id()
    }

    /// Stops member `index` (a crash: unsynced writes stay in the engine, as in the page
    /// cache of a live machine).
    pub fn kill(&self, index: usize) {
        self.handle.kill(self.members[index].host.id());
    }

    /// Starts a killed member again.
    pub fn start_again(&self, index: usize) {
        self.handle.restart(self.members[index].host.id());
    }

    /// Kills member `index` and starts it again on the same (unsynced writes included) state:
    /// a process crash, not a power loss.
    pub fn restart(&self, index: usize) {
        self.handle.restart(self.members[index].host.id());
    }

    /// Cuts the power of member `index`: its storage keeps only what was synced; then it
    /// starts again.
    pub fn power_cycle(&self, index: usize) {
        let member = &self.members[index];
        self.handle.kill(member.host.id());
        {
            let mut engine = member.engine.lock().expect("engine lock");
            *engine = engine.crash();
        }
        self.handle.restart(member.host.id());
    }
}

fn start_member(handle: &Handle, index: usize, size: usize) -> SimMember {
    let config = member_config(index, size);
    let engine = Arc::new(Mutex::new(MemEngine::new()));
    let name = config.name.clone();
    let ip = member_ip(index);
    let init_engine = engine.clone();
    let host = handle
        .create_node()
        .name(name.clone())
        .ip(ip)
        .init(move || {
            let config = config.clone();
            let engine = init_engine.lock().expect("engine lock").clone();
            async move {
                let mut node = match cairn_node::start(&config, Arc::new(engine)).await {
                    Ok(node) => node,
                    Err(e) => panic!("member {} failed to start: {e}", config.name),
                };
                if let Err(e) = node.wait().await {
                    panic!("member {} stopped: {e}", config.name);
                }
            }
        })
        .build();
    SimMember {
        name,
        ip,
        host,
        engine,
    }
}
