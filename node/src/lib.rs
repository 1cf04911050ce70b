//! cairn-node: one cairn member. [`start`] opens the state on an engine, starts the event
//! loop and serves the client API; the `cairn` binary wraps it with etcd's flags, and the
//! simulator runs it unchanged on simulated hosts.

/// `tokio::select!`, deterministic under simulation. Outside it tokio polls the branches in
/// a random order, for fairness. Under madsim that order would come from tokio's per-thread
/// rng, which tokio seeds from a process-wide counter: a seed run after other seeds in one
/// process (a sweep, a test) would then differ from its replay. There the branches are
/// polled in the order written (`biased`), so list the rarely ready ones first.
#[cfg(madsim)]
macro_rules! select {
    ($($body:tt)*) => { tokio::select! { biased; $($body)* } };
}
#[cfg(not(madsim))]
macro_rules! select {
    ($($body:tt)*) => { tokio::select! { $($body)* } };
}

pub mod clock;
pub mod compactor;
pub mod config;
#[cfg(not(madsim))]
pub mod gateway;
pub mod grpc;
#[cfg(not(madsim))]
pub mod http;
mod join;
pub mod lease_expiry;
pub mod metrics;
pub mod peer;
mod publish;
pub mod server;
pub mod tls;
pub mod tokens;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_core::apply::StateMachine;
use cairn_core::membership::{ClusterState, cluster_id, initial_members};
use cairn_core::replica::{Replica, ReplicaConfig, ReplicaError, tracing_logger};
use cairn_core::storage::cached::Cached;
use cairn_core::storage::{Engine, StorageError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::peer::{INBOX_LEN, PeerService, Peers};
use crate::server::{Handle, Identity, PeerChannels, Timing};

/// Why a member could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The stored state could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The replica refused the stored state.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The configuration names no member for this node.
    #[error("member {0:?} is not in --initial-cluster")]
    NotAMember(String),
    /// The data dir cannot be used by this build (a newer storage format).
    #[error("data dir {data_dir}: {reason}")]
    DataDir {
        /// The data dir.
        data_dir: String,
        /// Why.
        reason: StorageError,
    },
    /// A TLS file or setting is unusable.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// Joining an existing cluster failed.
    #[error("cannot join the existing cluster: {0}")]
    Join(String),
    /// A listener failed.
    #[error("cannot serve clients on {addr}: {reason}")]
    Serve {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A running member.
pub struct Node {
    /// Handle for in-process requests (tests, simulator).
    pub handle: Handle,
    shutdown: watch::Sender<bool>,
    event_loop: JoinHandle<Result<(), StorageError>>,
    servers: Vec<JoinHandle<Result<(), NodeError>>>,
}

impl Node {
    /// Stops serving and waits for the event loop to finish.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            if let Ok(Err(e)) = server.await {
                tracing::warn!(error = %e, "client listener ended with an error");
            }
        }
        match self.event_loop.await {
            Ok(result) => Ok(result?),
            Err(_) => Ok(()),
        }
    }

    /// After the event loop ended with a fatal error: stops the listeners and gives the
    /// answers already made (etcd's `etcdserver: server stopped`, to the requests that were
    /// waiting on the loop) up to `limit` to reach their clients before the process exits.
    pub async fn close_after_fatal(self, limit: std::time::Duration) {
        let _ = self.shutdown.send(true);
        let servers = async {
            for server in self.servers {
                let _ = server.await;
            }
        };
        let _ = tokio::time::timeout(limit, servers).await;
    }

    /// Waits until the event loop ends by itself (a fatal storage error) or is stopped.
    pub async fn wait(&mut self) -> Result<(), NodeError> {
        match (&mut self.event_loop).await {
            Ok(result) => Ok(result?),
            Err(_) => Ok(()),
        }
    }
}

/// The membership `--initial-cluster` describes for a new cluster, seen from this member.
pub fn bootstrap_cluster(config: &Config) -> Result<ClusterState, NodeError> {
    // Client URLs are not set here: every member must record the same bootstrap state, and
    // each one publishes its own client URLs through Raft once it runs (`publish`).
    let mut members = initial_members(&config.initial_cluster, &config.initial_cluster_token);
    let me = members
        .iter()
        .find(|m| m.name == config.name)
        .ok_or_else(|| NodeError::NotAMember(config.name.clone()))?;
    let local_id = me.id;
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    members.sort_by_key(|m| m.id);
    Ok(ClusterState {
        cluster_id: cluster_id(&ids),
        local_id,
        members,
        removed: Vec::new(),
    })
}

/// The membership to start with, and the voters of a brand-new cluster (none otherwise):
/// the stored one on restart, the flags' one when bootstrapping, the existing cluster's
/// when joining (`--initial-cluster-state existing`).
async fn resolve_cluster(
    config: &Config,
    engine: &dyn Engine,
) -> Result<(ClusterState, Vec<u64>), NodeError> {
    if let Some(stored) = ClusterState::load(engine)? {
        // As etcd with an existing WAL: the data dir decides, the bootstrap flags are ignored.
        if config.new_cluster
            && let Ok(flags) = bootstrap_cluster(config)
            && flags.cluster_id != stored.cluster_id
        {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                stored_cluster = format_args!("{:x}", stored.cluster_id),
                flags_cluster = format_args!("{:x}", flags.cluster_id),
                "--initial-cluster/--initial-cluster-token are ignored: the data dir already \
                 belongs to a cluster"
            );
        }
        return Ok((stored, Vec::new()));
    }
    if config.new_cluster {
        let cluster = bootstrap_cluster(config)?;
        let voters = cluster.members.iter().map(|m| m.id).collect();
        return Ok((cluster, voters));
    }
    Ok((join::existing_cluster(config).await?, Vec::new()))
}

/// Opens the member stored in `engine` and starts serving clients.
pub async fn start(config: &Config, engine: Arc<dyn Engine>) -> Result<Node, NodeError> {
    // Every reader and writer of the member's storage goes through one read cache, so the
    // cache sees every change (`storage::cached`).
    let engine: Arc<dyn Engine> = Arc::new(Cached::for_member(engine));
    let client_tls = listener_tls(
        config.client_tls.as_ref(),
        &[
            config.tls_client_addrs.as_slice(),
            &config.tls_metrics_addrs,
        ]
        .concat(),
        &config.advertise_client_urls,
        "--cert-file/--key-file",
    )?;
    let peer_tls = listener_tls(
        config.peer_tls.as_ref(),
        &config.tls_peer_addrs,
        &config.advertise_peer_urls,
        "--peer-cert-file/--peer-key-file",
    )?;
    cairn_core::storage::format::check_and_record(engine.as_ref()).map_err(|reason| {
        NodeError::DataDir {
            data_dir: config.data_dir.display().to_string(),
            reason,
        }
    })?;
    let (cluster, voters) = resolve_cluster(config, engine.as_ref()).await?;
    let identity = Identity {
        cluster_id: cluster.cluster_id,
        member_id: cluster.local_id,
    };
    let member_id = identity.member_id;
    let state_machine = Arc::new(StateMachine::open(engine.clone())?);
    // A put reads only its previous version's metadata until a watcher asks for prev_kv
    // (the watch service turns previous values on then).
    state_machine.set_prev_values(false);
    let replica_config = ReplicaConfig {
        election_ticks: config.election_ticks,
        snapshot_count: config.snapshot_count,
        catch_up_entries: config.snapshot_catchup_entries,
        election_seed: request_id_base(member_id) ^ member_id,
        ..ReplicaConfig::new(member_id)
    };
    let replica = Replica::open(
        &replica_config,
        engine,
        state_machine,
        &cluster,
        &voters,
        &tracing_logger(),
    )?;
    tracing::info!(
        name = %config.name,
        member_id = format_args!("{:x}", identity.member_id),
        cluster_id = format_args!("{:x}", identity.cluster_id),
        "starting member"
    );
    let cluster_id = identity.cluster_id;
    let max_peer_message_bytes = max_peer_message_bytes(config);
    let peer_urls = server::peer_urls(replica.cluster());
    let (feedback_tx, feedback) = tokio::sync::mpsc::unbounded_channel();
    let (inbox_tx, inbox) = tokio::sync::mpsc::channel(INBOX_LEN);
    let peers = Peers::start(
        cluster_id,
        member_id,
        &peer_urls,
        max_peer_message_bytes,
        config.peer_tls.clone().map(Arc::new),
        feedback_tx,
    );
    let timing = Timing {
        tick: config.tick,
        request_timeout: config.request_timeout(),
        token_ttl: config.auth_token_ttl,
    };
    let channels = PeerChannels {
        peers,
        inbox,
        feedback,
    };
    let (event_loop, handle) = server::start(
        replica,
        identity,
        channels,
        timing,
        request_id_base(member_id),
    );
    let (shutdown, shutdown_rx) = watch::channel(false);
    // Before the event loop runs: `LeaseExpiry::new` sets the lessor's minimum TTL.
    tokio::spawn(lease_expiry::LeaseExpiry::new(handle.clone(), config).run(shutdown_rx.clone()));
    let event_loop = tokio::spawn(event_loop.run(shutdown_rx.clone()));
    let (name, client_urls) = (config.name.clone(), config.advertise_client_urls.clone());
    tokio::spawn(publish::run(
        handle.clone(),
        name,
        client_urls,
        shutdown_rx.clone(),
    ));
    let peer_service = PeerService::new(cluster_id, member_id, inbox_tx, max_peer_message_bytes)
        .with_members(handle.cluster_updates())
        .with_leases(grpc::lease::LeaseService::new(
            handle.clone(),
            config.peer_tls.clone().map(Arc::new),
        ));
    let mut servers: Vec<JoinHandle<Result<(), NodeError>>> = config
        .listen_peer_addrs
        .iter()
        .map(|&addr| {
            let service = peer_service.clone();
            let mut stop = shutdown_rx.clone();
            let tls = peer_tls
                .clone()
                .filter(|_| config.tls_peer_addrs.contains(&addr));
            tokio::spawn(async move {
                let signal = async move {
                    let _ = stop.changed().await;
                };
                tracing::info!(%addr, "serving peer traffic");
                peer::serve_peers(service, addr, max_peer_message_bytes, tls, signal)
                    .await
                    .map_err(|e| NodeError::Serve {
                        addr,
                        reason: e.to_string(),
                    })
            })
        })
        .collect();
    let client_servers = config
        .listen_client_addrs
        .iter()
        .map(|&addr| {
            let handle = handle.clone();
            let mut stop = shutdown_rx.clone();
            let config = config.clone();
            let tls = client_tls
                .clone()
                .filter(|_| config.tls_client_addrs.contains(&addr));
            tokio::spawn(async move {
                let signal = async move {
                    let _ = stop.changed().await;
                };
                tracing::info!(%addr, "serving client requests");
                grpc::serve_clients(handle, addr, config, tls, signal)
                    .await
                    .map_err(|e| NodeError::Serve {
                        addr,
                        reason: e.to_string(),
                    })
            })
        })
        .collect::<Vec<_>>();
    servers.extend(client_servers);
    #[cfg(not(madsim))]
    servers.extend(config.listen_metrics_addrs.iter().map(|&addr| {
        let handle = handle.clone();
        let mut stop = shutdown_rx.clone();
        let tls = client_tls
            .clone()
            .filter(|_| config.tls_metrics_addrs.contains(&addr));
        tokio::spawn(async move {
            let signal = async move {
                let _ = stop.changed().await;
            };
            tracing::info!(%addr, "serving metrics");
            http::serve_metrics(handle, addr, tls, signal)
                .await
                .map_err(|e| NodeError::Serve {
                    addr,
                    reason: e.to_string(),
                })
        })
    }));
    if let Some(mode) = config.auto_compaction {
        tokio::spawn(compactor::run(
            handle.clone(),
            mode,
            config.auto_compaction_check_interval,
            shutdown_rx.clone(),
        ));
    }
    Ok(Node {
        handle,
        shutdown,
        event_loop,
        servers,
    })
}

/// The TLS of the listeners given as `https://` URLs (none if there are none), checked now
/// so that a member with a missing or unusable file refuses to start, naming it.
fn listener_tls(
    settings: Option<&config::TlsSettings>,
    https_addrs: &[std::net::SocketAddr],
    advertised: &[String],
    files_flags: &str,
) -> Result<Option<Arc<tls::ServerTls>>, NodeError> {
    if https_addrs.is_empty() {
        return Ok(None);
    }
    let Some(settings) = settings else {
        return Err(tls::TlsError {
            what: files_flags.to_string(),
            reason: "a TLS key and certificate must be provided for https:// listen URLs"
                .to_string(),
        }
        .into());
    };
    let hosts: Vec<String> = advertised
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter_map(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .collect();
    Ok(Some(Arc::new(tls::ServerTls::new(settings, &hosts)?)))
}

/// The largest peer message: a Raft snapshot carries the whole state machine, so the bound
/// follows the backend quota (etcd's default quota is 2 GiB).
fn max_peer_message_bytes(config: &Config) -> usize {
    const DEFAULT_QUOTA_BYTES: usize = 2 * 1024 * 1024 * 1024;
    let quota = usize::try_from(config.quota_backend_bytes)
        .ok()
        .filter(|q| *q > 0)
        .unwrap_or(DEFAULT_QUOTA_BYTES);
    quota.saturating_add(64 * 1024 * 1024)
}

/// Request ids unique across restarts of this member (etcd's `idutil.Generator`): the low
/// 16 bits of the member id, then milliseconds since the epoch, then a counter.
fn request_id_base(member_id: u64) -> u64 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ((member_id & 0xffff) << 48) | ((millis & 0xff_ffff_ffff) << 8)
}
