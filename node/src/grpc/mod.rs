//! The client-facing gRPC services (etcd's v3 API). Generated server traits come from
//! node's build script; the same handler code compiles against tonic and madsim-tonic.

pub mod auth;
pub mod cluster;
pub mod concurrency;
#[cfg(not(madsim))]
pub mod dispatch;
pub mod election;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod quota;
pub mod status;
pub mod v3client;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;

/// The generated etcd v3 service code.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

/// The generated election service code.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod election_pb {
    tonic::include_proto!("v3electionpb");
}

/// The generated lock service code.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod lock_pb {
    tonic::include_proto!("v3lockpb");
}

use crate::server::Handle;

/// clientv3's `WithRequireLeader` sets this metadata: such a request fails at once with
/// "no leader" instead of waiting while the member has no leader (etcd's interceptors).
pub fn require_leader<T>(
    handle: &Handle,
    request: &tonic::Request<T>,
) -> Result<(), tonic::Status> {
    let wants_leader = request
        .metadata()
        .get("hasleader")
        .is_some_and(|v| v.as_bytes() == b"true");
    if wants_leader && handle.raft_status().leader == 0 {
        return Err(status::from_server(&crate::server::ServerError::NoLeader));
    }
    Ok(())
}

/// gRPC overhead allowed on top of `--max-request-bytes` (etcd's `grpcOverheadBytes`).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Serves every client service on `addr` until `shutdown` completes.
pub async fn serve_clients(
    handle: Handle,
    addr: SocketAddr,
    config: crate::config::Config,
    tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (max_request_bytes, max_txn_ops) = (config.max_request_bytes, config.max_txn_ops);
    let watch_config = watch::WatchConfig::from_config(&config);
    let max_decoding = max_request_bytes + GRPC_OVERHEAD_BYTES;
    let kv_service = kv::KvService::new(handle.clone(), max_request_bytes, max_txn_ops)
        .with_quota(config.quota_backend_bytes);
    let kv = pb::kv_server::KvServer::new(kv_service.clone())
        .max_decoding_message_size(max_decoding)
        .max_encoding_message_size(usize::MAX);
    let maintenance_service = maintenance::MaintenanceService::new(handle.clone());
    let maintenance = pb::maintenance_server::MaintenanceServer::new(maintenance_service.clone())
        .max_decoding_message_size(max_decoding);
    let cluster_service =
        cluster::ClusterService::new(handle.clone(), config.initial_cluster_token.clone());
    let cluster = pb::cluster_server::ClusterServer::new(cluster_service.clone())
        .max_decoding_message_size(max_decoding);
    let lease_service = lease::LeaseService::new(
        handle.clone(),
        config.peer_tls.clone().map(std::sync::Arc::new),
    )
    .with_quota(config.quota_backend_bytes);
    let lease = pb::lease_server::LeaseServer::new(lease_service.clone())
        .max_decoding_message_size(max_decoding);
    // Watch streams, observers and blocked campaigns and locks never end by themselves:
    // they end when `stop` turns true, so that the server can shut down.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Election and Lock are built on the member's own KV, Lease and Watch (etcd's v3client).
    let local = v3client::LocalClient::new(
        handle.clone(),
        kv_service.clone(),
        lease_service.clone(),
        stopped.clone(),
    );
    let election_service = election::ElectionService::new(handle.clone(), local.clone());
    let election = election_pb::election_server::ElectionServer::new(election_service.clone())
        .max_decoding_message_size(max_decoding);
    let lock_service = lock::LockService::new(handle.clone(), local);
    let lock = lock_pb::lock_server::LockServer::new(lock_service.clone())
        .max_decoding_message_size(max_decoding);
    let watch_service = watch::WatchService::new(handle.clone(), watch_config, stopped);
    let watch = pb::watch_server::WatchServer::new(watch_service.clone())
        .max_decoding_message_size(max_decoding)
        .max_encoding_message_size(usize::MAX);
    let auth_service = auth::AuthService::new(handle.clone(), config.bcrypt_cost);
    let auth = pb::auth_server::AuthServer::new(auth_service.clone())
        .max_decoding_message_size(max_decoding);
    // etcd's gRPC gateway (HTTP/JSON) calls the same services.
    #[cfg(not(madsim))]
    let gateway = crate::gateway::Services {
        kv: kv_service,
        watch: watch_service,
        lease: lease_service,
        cluster: cluster_service,
        maintenance: maintenance_service,
        auth: auth_service,
        election: election_service,
        lock: lock_service,
    };
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    #[cfg(madsim)]
    let router = tonic::transport::Server::builder()
        .add_service(with_cert_user(kv))
        .add_service(with_cert_user(maintenance))
        .add_service(with_cert_user(cluster))
        .add_service(with_cert_user(lease))
        .add_service(with_cert_user(watch))
        .add_service(with_cert_user(election))
        .add_service(with_cert_user(lock))
        .add_service(with_cert_user(auth));
    // As etcd, the client port also serves HTTP/1.1 and HTTP/2 requests for the HTTP
    // endpoints (/health, /metrics...) and the gateway; every other path goes to the gRPC
    // service it names, and gRPC calls are counted for /metrics.
    #[cfg(not(madsim))]
    let router = {
        let grpc = dispatch::GrpcServices::default()
            .with(with_cert_user(kv))
            .with(with_cert_user(maintenance))
            .with(with_cert_user(cluster))
            .with(with_cert_user(lease))
            .with(with_cert_user(watch))
            .with(with_cert_user(election))
            .with(with_cert_user(lock))
            .with(with_cert_user(auth));
        let routes = crate::http::router(handle.clone())
            .merge(crate::gateway::router(gateway, max_request_bytes))
            .fallback_service(grpc);
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(tonic::service::Routes::from(routes))
    };
    crate::tls::serve(router, addr, tls, shutdown).await
}

/// A gRPC interceptor's signature.
#[cfg(not(madsim))]
type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// `service` with the client certificate's CN passed to the auth checks
/// ([`auth::certificate_user`]).
#[cfg(not(madsim))]
fn with_cert_user<S>(
    service: S,
) -> tonic::service::interceptor::InterceptedService<S, Interceptor> {
    tonic::service::interceptor::InterceptedService::new(service, auth::certificate_user)
}

/// The simulation has no TLS, hence no client certificates.
#[cfg(madsim)]
fn with_cert_user<S>(service: S) -> S {
    service
}
