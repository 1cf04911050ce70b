//! The fault-injecting TCP proxy on the peer links.
//!
//! Every member advertises a proxy port as its peer URL; the proxy forwards each accepted
//! connection to the member's real peer listener. A connection's *source* member (the one
//! that dialled) is found by [`SourceResolver`]: for real processes, [`ProcOwners`] maps the
//! connection's peer address to the child process that owns the socket through
//! `/proc/net/tcp` and `/proc/<pid>/fd`. Faults are per ordered pair `(from, to)`:
//!
//! - a **cut** `from -> to` refuses (and closes) connections `from` dials to `to`. cairn's
//!   peer transport sends each member's Raft messages on connections it dials itself, the
//!   other side answering only with transport acks, so cutting `from -> to` is a one-way cut
//!   of the Raft messages `from` sends to `to`; both directions cut is a partition;
//! - a **delay** holds every chunk of bytes on connections between the pair, both ways;
//! - a **drop** closes such a connection with the given probability per chunk forwarded.
//!
//! [`Faults::heal`] clears them all. Connections whose source cannot be resolved are
//! forwarded without faults (and counted).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
#[cfg(test)]
use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::rng::Rng;

/// Maps an accepted connection's peer address to the index of the member that dialled it.
pub type SourceResolver = Arc<dyn Fn(SocketAddr, SocketAddr) -> Option<usize> + Send + Sync>;

/// Bytes forwarded per read.
const CHUNK: usize = 16 * 1024;

#[derive(Default)]
struct State {
    /// `(from, to)`: connections dialled by `from` to `to` are refused.
    cut: BTreeSet<(usize, usize)>,
    /// Delay per unordered pair (stored both ways).
    delay: BTreeMap<(usize, usize), Duration>,
    /// Probability per chunk of closing a connection, per pair (stored both ways).
    drop: BTreeMap<(usize, usize), f64>,
    /// Open connections: id -> (from, to, handle of the task forwarding it).
    open: BTreeMap<u64, (usize, usize, AbortHandle)>,
}

/// The faults in force on every proxied link, shared by all proxies of a run.
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
    next_id: Arc<AtomicU64>,
    unresolved: Arc<AtomicU64>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Faults::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cuts `from -> to` (one way): its connections close, new ones are refused.
    pub fn cut_one_way(&self, from: usize, to: usize) {
        let mut state = self.lock();
        state.cut.insert((from, to));
        close_cut(&mut state);
    }

    /// Cuts `a` and `b` apart, both ways.
    pub fn cut(&self, a: usize, b: usize) {
        let mut state = self.lock();
        state.cut.insert((a, b));
        state.cut.insert((b, a));
        close_cut(&mut state);
    }

    /// Cuts every link between members of different `groups`, both ways.
    pub fn partition(&self, groups: &[Vec<usize>]) {
        let mut state = self.lock();
        for (i, left) in groups.iter().enumerate() {
            for right in groups.iter().skip(i + 1) {
                for &a in left {
                    for &b in right {
                        state.cut.insert((a, b));
                        state.cut.insert((b, a));
                    }
                }
            }
        }
        close_cut(&mut state);
    }

    /// Delays every chunk between `a` and `b`, both ways, by `delay`.
    pub fn delay(&self, a: usize, b: usize, delay: Duration) {
        let mut state = self.lock();
        state.delay.insert((a, b), delay);
        state.delay.insert((b, a), delay);
    }

    /// Closes connections between `a` and `b` with probability `p` per chunk forwarded.
    pub fn drop_chunks(&self, a: usize, b: usize, p: f64) {
        let mut state = self.lock();
        state.drop.insert((a, b), p);
        state.drop.insert((b, a), p);
    }

    /// Lifts every fault.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.cut.clear();
        state.delay.clear();
        state.drop.clear();
    }

    /// Whether `from -> to` is cut.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.lock().cut.contains(&(from, to))
    }

    /// Connections accepted whose source member could not be resolved.
    pub fn unresolved(&self) -> u64 {
        self.unresolved.load(Ordering::Relaxed)
    }

    fn link(&self, from: usize, to: usize) -> (Option<Duration>, f64) {
        let state = self.lock();
        (
            state.delay.get(&(from, to)).copied(),
            state.drop.get(&(from, to)).copied().unwrap_or(0.0),
        )
    }

    fn register(&self, id: u64, from: usize, to: usize, handle: AbortHandle) {
        let mut state = self.lock();
        if state.cut.contains(&(from, to)) {
            handle.abort();
        } else if !handle.is_finished() {
            state.open.insert(id, (from, to, handle));
        }
    }

    fn forget(&self, id: u64) {
        self.lock().open.remove(&id);
    }
}

/// Aborts the open connections of every cut pair.
fn close_cut(state: &mut State) {
    let State { cut, open, .. } = state;
    open.retain(|_, (from, to, handle)| {
        let keep = !cut.contains(&(*from, *to));
        if !keep {
            handle.abort();
        }
        keep
    });
}

/// One member's proxy: listens on `listen` and forwards to `target`, member `to`.
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
}

impl Proxy {
    /// Binds `listen` and starts forwarding connections to member `to` at `target`.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        to: usize,
        faults: Faults,
        resolve: SourceResolver,
        seed: u64,
    ) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, target, to, faults, resolve, seed));
        Ok(Proxy { task, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    to: usize,
    faults: Faults,
    resolve: SourceResolver,
    seed: u64,
) {
    let local = listener.local_addr().ok();
    loop {
        let Ok((inbound, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let from = local.and_then(|local| resolve(peer, local));
        let id = faults.next_id.fetch_add(1, Ordering::Relaxed);
        let Some(from) = from else {
            faults.unresolved.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                if let Ok(outbound) = TcpStream::connect(target).await {
                    let _ = forward(inbound, outbound, None, Rng::fork(seed, id)).await;
                }
            });
            continue;
        };
        if faults.is_cut(from, to) {
            drop(inbound);
            continue;
        }
        let link = Some((faults.clone(), from, to));
        let forwarding = {
            let faults = faults.clone();
            tokio::spawn(async move {
                if let Ok(outbound) = TcpStream::connect(target).await {
                    let _ = forward(inbound, outbound, link, Rng::fork(seed, id)).await;
                }
                faults.forget(id);
            })
        };
        faults.register(id, from, to, forwarding.abort_handle());
    }
}

type Link = Option<(Faults, usize, usize)>;

/// Forwards both ways until either side closes or a drop fault fires.
async fn forward(inbound: TcpStream, outbound: TcpStream, link: Link, rng: Rng) -> io::Result<()> {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let mut rng_back = rng.clone();
    rng_back.next_u64();
    tokio::select! {
        r = pump(in_read, out_write, &link, rng) => r,
        r = pump(out_read, in_write, &link, rng_back) => r,
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: &Link,
    mut rng: Rng,
) -> io::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        if let Some((faults, a, b)) = link {
            let (delay, drop) = faults.link(*a, *b);
            if drop > 0.0 && rng.chance(drop) {
                return Err(io::Error::other("dropped by the nemesis"));
            }
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
        }
        to.write_all(&buffer[..n]).await?;
    }
}

/// Resolves connection sources to member processes through `/proc` (Linux).
#[derive(Clone, Default)]
pub struct ProcOwners {
    pids: Arc<Mutex<Vec<Option<u32>>>>,
}

impl ProcOwners {
    /// Owners of `members` members, none running yet.
    pub fn new(members: usize) -> Self {
        ProcOwners {
            pids: Arc::new(Mutex::new(vec![None; members])),
        }
    }

    /// Member `member` now runs as `pid` (`None`: not running).
    pub fn set(&self, member: usize, pid: Option<u32>) {
        let mut pids = self.pids.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = pids.get_mut(member) {
            *slot = pid;
        }
    }

    /// The member whose process owns the socket at `peer` connected to `local`.
    pub fn owner(&self, peer: SocketAddr, local: SocketAddr) -> Option<usize> {
        let inode = socket_inode(peer, local)?;
        let pids = self.pids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let wanted = format!("socket:[{inode}]");
        pids.iter().position(|pid| {
            pid.is_some_and(|pid| {
                let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                    return false;
                };
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.as_os_str() == wanted.as_str())
                })
            })
        })
    }

    /// This resolver as a [`SourceResolver`].
    pub fn resolver(&self) -> SourceResolver {
        let owners = self.clone();
        Arc::new(move |peer, local| owners.owner(peer, local))
    }
}

/// The inode of the socket whose local address is `peer` and remote address `local`, from
/// `/proc/net/tcp` (IPv4) or `/proc/net/tcp6`.
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (socket_local, socket_remote, inode) =
                    (fields.get(1)?, fields.get(2)?, fields.get(9)?);
                (port_of(socket_local) == Some(peer.port())
                    && port_of(socket_remote) == Some(local.port())
                    && is_loopback(socket_local))
                .then(|| inode.parse().ok())
                .flatten()
            })
        })
}

/// The port of a `/proc/net/tcp` address (`0100007F:1F90`).
fn port_of(address: &str) -> Option<u16> {
    let (_, port) = address.split_once(':')?;
    u16::from_str_radix(port, 16).ok()
}

/// Whether a `/proc/net/tcp{,6}` address is 127.0.0.1 (or its v4-mapped IPv6 form).
fn is_loopback(address: &str) -> bool {
    let ip = address.split(':').next().unwrap_or("");
    ip == "0100007F" || ip == "0000000000000000FFFF00000100007F"
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;

    use tokio::net::TcpSocket;

    #[test]
    fn proc_net_tcp_addresses() {
        assert_eq!(port_of("0100007F:1F90"), Some(8080));
        assert!(is_loopback("0100007F:1F90"));
        assert!(!is_loopback("0200007F:1F90"));
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// An echo server standing in for member 1's peer listener.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// The test's connections, by local port, as the members that "dialled" them.
    #[derive(Clone, Default)]
    struct Sources(Arc<Mutex<BTreeMap<u16, usize>>>);

    impl Sources {
        fn resolver(&self) -> SourceResolver {
            let map = self.0.clone();
            Arc::new(move |peer, _| map.lock().unwrap().get(&peer.port()).copied())
        }

        /// Connects to `proxy` as member `from`.
        async fn connect(&self, proxy: SocketAddr, from: usize) -> TcpStream {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let port = socket.local_addr().unwrap().port();
            self.0.lock().unwrap().insert(port, from);
            socket.connect(proxy).await.unwrap()
        }
    }

    /// Whether `stream` echoes a message back (within a second); `false` if it was closed.
    async fn echoes(stream: &mut TcpStream) -> bool {
        let message = b"raft batch";
        if stream.write_all(message).await.is_err() {
            return false;
        }
        let mut back = [0u8; 10];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut back)).await,
            Ok(Ok(_)) if &back == message
        )
    }

    /// A proxy for member 1 in front of an echo server.
    async fn setup() -> (Faults, Sources, Proxy) {
        let target = echo_server().await;
        let faults = Faults::new();
        let sources = Sources::default();
        let proxy = Proxy::start(
            "127.0.0.1:0".parse().unwrap(),
            target,
            1,
            faults.clone(),
            sources.resolver(),
            7,
        )
        .await
        .unwrap();
        (faults, sources, proxy)
    }

    #[test]
    fn cut_closes_and_refuses_connections_until_healed() {
        block_on(async {
            let (faults, sources, proxy) = setup().await;
            let mut open = sources.connect(proxy.addr(), 0).await;
            assert!(echoes(&mut open).await, "bytes flow before any fault");
            faults.cut(0, 1);
            assert!(
                !echoes(&mut open).await,
                "the open connection is closed by the cut"
            );
            let mut new = sources.connect(proxy.addr(), 0).await;
            assert!(!echoes(&mut new).await, "a new connection is refused");
            let mut third = sources.connect(proxy.addr(), 2).await;
            assert!(echoes(&mut third).await, "other members' links are not cut");
            faults.heal();
            let mut healed = sources.connect(proxy.addr(), 0).await;
            assert!(echoes(&mut healed).await, "bytes flow again after heal");
        });
    }

    #[test]
    fn one_way_cut_blocks_only_its_direction() {
        block_on(async {
            let (faults, sources, proxy) = setup().await;
            // 1 -> 0 is cut: member 0 still reaches member 1.
            faults.cut_one_way(1, 0);
            let mut from_0 = sources.connect(proxy.addr(), 0).await;
            assert!(echoes(&mut from_0).await);
            // 0 -> 1 is cut: member 0's connections to member 1 close.
            faults.cut_one_way(0, 1);
            assert!(!echoes(&mut from_0).await);
            let mut again = sources.connect(proxy.addr(), 0).await;
            assert!(!echoes(&mut again).await);
            faults.heal();
            let mut healed = sources.connect(proxy.addr(), 0).await;
            assert!(echoes(&mut healed).await);
        });
    }

    #[test]
    fn partition_cuts_across_groups_only() {
        block_on(async {
            let (faults, sources, proxy) = setup().await;
            faults.partition(&[vec![0], vec![1, 2]]);
            let mut across = sources.connect(proxy.addr(), 0).await;
            assert!(!echoes(&mut across).await);
            let mut within = sources.connect(proxy.addr(), 2).await;
            assert!(echoes(&mut within).await);
        });
    }

    #[test]
    fn certain_drop_closes_the_connection_and_delay_holds_bytes() {
        block_on(async {
            let (faults, sources, proxy) = setup().await;
            faults.delay(0, 1, Duration::from_millis(200));
            let mut delayed = sources.connect(proxy.addr(), 0).await;
            let begun = Instant::now();
            assert!(echoes(&mut delayed).await);
            // One hold each way.
            assert!(begun.elapsed() >= Duration::from_millis(400));
            faults.heal();
            faults.drop_chunks(0, 1, 1.0);
            let mut dropped = sources.connect(proxy.addr(), 0).await;
            assert!(!echoes(&mut dropped).await);
        });
    }

    #[test]
    fn proc_owners_find_the_process_owning_a_connection() {
        block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let local = listener.local_addr().unwrap();
            let owners = ProcOwners::new(2);
            owners.set(1, Some(std::process::id()));
            let _client = TcpStream::connect(local).await.unwrap();
            let (_accepted, peer) = listener.accept().await.unwrap();
            assert_eq!(owners.owner(peer, local), Some(1));
            owners.set(1, None);
            assert_eq!(owners.owner(peer, local), None);
        });
    }
}
