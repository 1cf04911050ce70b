//! [`Client`]: one gRPC connection to one etcd-compatible member, with typed calls that take
//! and return the wire messages unchanged.
//!
//! [`Client::connect`] tries the endpoints in the order given and keeps the first that
//! accepts a connection (etcdctl's endpoint list, without its balancer). The generated
//! service stubs are cheap handles over one shared channel, so a call clones its stub and
//! `Client` methods take `&self`; a `Client` is `Clone` (a few reference-count increments,
//! no new connection) and can be shared between tasks: every clone multiplexes its calls
//! over the same HTTP/2 connection. A benchmark that wants N connections connects N times.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::endpoint::{EndpointError, endpoint_uri};
use crate::error::ClientError;
use crate::grpc::auth_client::AuthClient;
use crate::grpc::cluster_client::ClusterClient;
use crate::grpc::kv_client::KvClient;
use crate::grpc::lease_client::LeaseClient;
use crate::grpc::maintenance_client::MaintenanceClient;
use crate::grpc::watch_client::WatchClient;
use crate::pb::etcdserverpb as pb;
use crate::stream::{KeepAliveStream, SnapshotStream, WatchStream};
use crate::tls::TlsOptions;

/// How [`Client::connect_with`] dials, and how long calls may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Limit for establishing the connection to one endpoint (etcdctl's `--dial-timeout`,
    /// 2s by default). `None` waits as long as the transport does.
    pub dial_timeout: Option<Duration>,
    /// Limit for each call, after which it fails with [`ClientError::Timeout`]. `None`
    /// (the default) lets calls run until the server answers.
    pub request_timeout: Option<Duration>,
    /// TLS files: `Some` dials `host:port` endpoints with TLS too.
    pub tls: Option<TlsOptions>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            dial_timeout: Some(Duration::from_secs(2)),
            request_timeout: None,
            tls: None,
        }
    }
}

/// A connection to one member of an etcd-compatible cluster.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: String,
    channel: Channel,
    request_timeout: Option<Duration>,
    kv: KvClient<Channel>,
    maintenance: MaintenanceClient<Channel>,
    cluster: ClusterClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
    pub(crate) auth: AuthClient<Channel>,
    /// The auth token sent with every call (etcd's `token` metadata), once authenticated.
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects to the first of `endpoints` that accepts a connection, with the default
    /// [`ConnectOptions`]. Endpoints are `host:port` or `http://host:port`.
    pub async fn connect(endpoints: &[String]) -> Result<Client, ClientError> {
        Client::connect_with(endpoints, ConnectOptions::default()).await
    }

    /// Connects to the first of `endpoints` that accepts a connection. Every endpoint is
    /// checked for syntax before any is dialled.
    pub async fn connect_with(
        endpoints: &[String],
        options: ConnectOptions,
    ) -> Result<Client, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let uris = endpoints
            .iter()
            .map(|e| {
                let uri = endpoint_uri(e)?;
                Ok(match &options.tls {
                    Some(_) if !e.contains("://") => uri.replacen("http://", "https://", 1),
                    _ => uri,
                })
            })
            .collect::<Result<Vec<_>, EndpointError>>()?;
        let mut failures = Vec::with_capacity(endpoints.len());
        for (endpoint, uri) in endpoints.iter().zip(uris) {
            match dial(&uri, options.dial_timeout, options.tls.as_ref()).await {
                Ok(channel) => return Ok(Client::over(endpoint.trim(), channel, &options)),
                Err(DialError::Endpoint(e)) => return Err(e.into()),
                Err(DialError::Tls(e)) => return Err(e),
                Err(DialError::Failed(why)) => failures.push((endpoint.clone(), why)),
            }
        }
        Err(ClientError::Unreachable { failures })
    }

    fn over(endpoint: &str, channel: Channel, options: &ConnectOptions) -> Client {
        Client {
            endpoint: endpoint.to_string(),
            request_timeout: options.request_timeout,
            kv: KvClient::new(channel.clone()),
            maintenance: MaintenanceClient::new(channel.clone()),
            cluster: ClusterClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel.clone()),
            auth: AuthClient::new(channel.clone()),
            token: None,
            channel,
        }
    }

    /// The endpoint this client is connected to, as it was given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying channel, for services this client does not wrap yet.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The same connection with a different per-call limit.
    pub fn with_request_timeout(&self, request_timeout: Option<Duration>) -> Client {
        Client {
            request_timeout,
            ..self.clone()
        }
    }

    /// `KV.Range`: reads a key or a range of keys.
    pub async fn kv_range(
        &self,
        request: pb::RangeRequest,
    ) -> Result<pb::RangeResponse, ClientError> {
        let mut kv = self.kv.clone();
        self.call(kv.range(self.req(request))).await
    }

    /// `KV.Put`: writes one key.
    pub async fn kv_put(&self, request: pb::PutRequest) -> Result<pb::PutResponse, ClientError> {
        let mut kv = self.kv.clone();
        self.call(kv.put(self.req(request))).await
    }

    /// `KV.DeleteRange`: deletes a key or a range of keys.
    pub async fn kv_delete_range(
        &self,
        request: pb::DeleteRangeRequest,
    ) -> Result<pb::DeleteRangeResponse, ClientError> {
        let mut kv = self.kv.clone();
        self.call(kv.delete_range(self.req(request))).await
    }

    /// `KV.Txn`: compares, then one branch of operations, atomically.
    pub async fn kv_txn(&self, request: pb::TxnRequest) -> Result<pb::TxnResponse, ClientError> {
        let mut kv = self.kv.clone();
        self.call(kv.txn(self.req(request))).await
    }

    /// `KV.Compact`: discards history at or below a revision.
    pub async fn kv_compact(
        &self,
        request: pb::CompactionRequest,
    ) -> Result<pb::CompactionResponse, ClientError> {
        let mut kv = self.kv.clone();
        self.call(kv.compact(self.req(request))).await
    }

    /// `Maintenance.Status` of the connected member.
    pub async fn maintenance_status(
        &self,
        request: pb::StatusRequest,
    ) -> Result<pb::StatusResponse, ClientError> {
        let mut maintenance = self.maintenance.clone();
        self.call(maintenance.status(self.req(request))).await
    }

    /// `Maintenance.Alarm`: lists, raises or disarms alarms.
    pub async fn maintenance_alarm(
        &self,
        request: pb::AlarmRequest,
    ) -> Result<pb::AlarmResponse, ClientError> {
        let mut maintenance = self.maintenance.clone();
        self.call(maintenance.alarm(request)).await
    }

    /// `Maintenance.Defragment` of the connected member.
    pub async fn maintenance_defragment(&self) -> Result<pb::DefragmentResponse, ClientError> {
        let mut maintenance = self.maintenance.clone();
        self.call(maintenance.defragment(pb::DefragmentRequest {}))
            .await
    }

    /// `Maintenance.Hash` of the connected member's whole stored state.
    pub async fn maintenance_hash(&self) -> Result<pb::HashResponse, ClientError> {
        let mut maintenance = self.maintenance.clone();
        self.call(maintenance.hash(pb::HashRequest {})).await
    }

    /// `Maintenance.HashKV`: the hash of the connected member's keys up to `revision` (0:
    /// the current one), comparable between members that applied the same log.
    pub async fn maintenance_hash_kv(
        &self,
        revision: i64,
    ) -> Result<pb::HashKvResponse, ClientError> {
        let mut maintenance = self.maintenance.clone();
        self.call(maintenance.hash_kv(self.req(pb::HashKvRequest { revision })))
            .await
    }

    /// `Maintenance.Snapshot`: starts downloading the connected member's snapshot. The
    /// request timeout bounds opening the stream, not reading it.
    pub async fn maintenance_snapshot(&self) -> Result<SnapshotStream, ClientError> {
        let mut maintenance = self.maintenance.clone();
        let responses = self
            .call(maintenance.snapshot(pb::SnapshotRequest {}))
            .await?;
        Ok(SnapshotStream::new(responses))
    }

    /// `Cluster.MemberList`: the cluster's members as the connected member knows them.
    pub async fn cluster_member_list(
        &self,
        request: pb::MemberListRequest,
    ) -> Result<pb::MemberListResponse, ClientError> {
        let mut cluster = self.cluster.clone();
        self.call(cluster.member_list(self.req(request))).await
    }

    /// `Maintenance.MoveLeader`: asks the leader (the connected member must be it) to hand
    /// leadership to another voting member.
    pub async fn maintenance_move_leader(
        &self,
        request: pb::MoveLeaderRequest,
    ) -> Result<pb::MoveLeaderResponse, ClientError> {
        let mut maintenance = self.maintenance.clone();
        self.call(maintenance.move_leader(self.req(request))).await
    }

    /// `Cluster.MemberAdd`: adds a member (a voter, or a learner) by its peer URLs.
    pub async fn cluster_member_add(
        &self,
        request: pb::MemberAddRequest,
    ) -> Result<pb::MemberAddResponse, ClientError> {
        let mut cluster = self.cluster.clone();
        self.call(cluster.member_add(self.req(request))).await
    }

    /// `Cluster.MemberRemove`: removes a member by ID.
    pub async fn cluster_member_remove(
        &self,
        request: pb::MemberRemoveRequest,
    ) -> Result<pb::MemberRemoveResponse, ClientError> {
        let mut cluster = self.cluster.clone();
        self.call(cluster.member_remove(self.req(request))).await
    }

    /// `Cluster.MemberUpdate`: replaces a member's peer URLs.
    pub async fn cluster_member_update(
        &self,
        request: pb::MemberUpdateRequest,
    ) -> Result<pb::MemberUpdateResponse, ClientError> {
        let mut cluster = self.cluster.clone();
        self.call(cluster.member_update(self.req(request))).await
    }

    /// `Cluster.MemberPromote`: makes a learner that has caught up a voting member.
    pub async fn cluster_member_promote(
        &self,
        request: pb::MemberPromoteRequest,
    ) -> Result<pb::MemberPromoteResponse, ClientError> {
        let mut cluster = self.cluster.clone();
        self.call(cluster.member_promote(self.req(request))).await
    }

    /// `Lease.LeaseGrant`: creates a lease with a TTL in seconds.
    pub async fn lease_grant(
        &self,
        request: pb::LeaseGrantRequest,
    ) -> Result<pb::LeaseGrantResponse, ClientError> {
        let mut lease = self.lease.clone();
        self.call(lease.lease_grant(self.req(request))).await
    }

    /// `Lease.LeaseRevoke`: revokes a lease and deletes its keys.
    pub async fn lease_revoke(
        &self,
        request: pb::LeaseRevokeRequest,
    ) -> Result<pb::LeaseRevokeResponse, ClientError> {
        let mut lease = self.lease.clone();
        self.call(lease.lease_revoke(self.req(request))).await
    }

    /// `Lease.LeaseTimeToLive`: a lease's remaining and granted TTL (and its keys).
    pub async fn lease_time_to_live(
        &self,
        request: pb::LeaseTimeToLiveRequest,
    ) -> Result<pb::LeaseTimeToLiveResponse, ClientError> {
        let mut lease = self.lease.clone();
        self.call(lease.lease_time_to_live(self.req(request))).await
    }

    /// `Lease.LeaseLeases`: every lease the cluster knows.
    pub async fn lease_leases(
        &self,
        request: pb::LeaseLeasesRequest,
    ) -> Result<pb::LeaseLeasesResponse, ClientError> {
        let mut lease = self.lease.clone();
        self.call(lease.lease_leases(self.req(request))).await
    }

    /// Opens a `Lease.LeaseKeepAlive` stream with a first keep-alive of lease `id` queued
    /// (see [`Client::watch`] for why it is queued before the call). Each keep-alive sent
    /// on the stream is answered with the lease's new TTL (0 when the lease does not exist).
    pub async fn lease_keep_alive(&self, id: i64) -> Result<KeepAliveStream, ClientError> {
        let mut lease = self.lease.clone();
        let (sender, requests) = crate::stream::request_channel();
        sender
            .send(pb::LeaseKeepAliveRequest { id })
            .await
            .map_err(|_closed| ClientError::StreamClosed)?;
        let responses = self
            .call(lease.lease_keep_alive(self.req(requests)))
            .await?;
        Ok(KeepAliveStream::new(sender, responses))
    }

    /// clientv3's `KeepAliveOnce`: one keep-alive of `id` on a stream of its own.
    pub async fn lease_keep_alive_once(
        &self,
        id: i64,
    ) -> Result<pb::LeaseKeepAliveResponse, ClientError> {
        let mut stream = self.lease_keep_alive(id).await?;
        let answer = match self.request_timeout {
            Some(limit) => tokio::time::timeout(limit, stream.message())
                .await
                .map_err(|_elapsed| ClientError::Timeout(limit))?,
            None => stream.message().await,
        };
        answer?.ok_or(ClientError::StreamClosed)
    }

    /// Opens a `Watch` stream whose first request is `first` (usually a create). The
    /// request is queued before the call is made: etcd sends the stream's response headers
    /// only with its first message, so a call that waited for them before sending anything
    /// would never complete.
    pub async fn watch(&self, first: pb::WatchRequest) -> Result<WatchStream, ClientError> {
        let mut watch = self.watch.clone();
        let (sender, requests) = crate::stream::request_channel();
        sender
            .send(first)
            .await
            .map_err(|_closed| ClientError::StreamClosed)?;
        let responses = self.call(watch.watch(self.req(requests))).await?;
        Ok(WatchStream::new(sender, responses))
    }

    /// The same connection sending `token` with every call (as clientv3 does after
    /// `Authenticate`).
    pub fn with_token(&self, token: &str) -> Result<Client, ClientError> {
        let value = token
            .parse()
            .map_err(|_| ClientError::InvalidToken(token.to_string()))?;
        Ok(Client {
            token: Some(value),
            ..self.clone()
        })
    }

    /// `message` as a gRPC request carrying the auth token, if any.
    pub(crate) fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("token", token.clone());
        }
        request
    }

    /// Runs one unary call under the request timeout and unwraps its answer.
    pub(crate) async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ClientError> {
        let answer = match self.request_timeout {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .map_err(|_elapsed| ClientError::Timeout(limit))?,
            None => call.await,
        };
        answer
            .map(tonic::Response::into_inner)
            .map_err(ClientError::from)
    }
}

/// Why one endpoint could not be dialled.
enum DialError {
    /// The endpoint is malformed: no point trying the others.
    Endpoint(EndpointError),
    /// The TLS files cannot be used: no point trying the others.
    Tls(ClientError),
    /// The endpoint did not accept a connection.
    Failed(String),
}

/// Opens a channel to `uri`, bounded by `dial_timeout`.
async fn dial(
    uri: &str,
    dial_timeout: Option<Duration>,
    tls: Option<&TlsOptions>,
) -> Result<Channel, DialError> {
    let invalid =
        |e: &dyn std::fmt::Display| EndpointError::InvalidUri(uri.to_string(), e.to_string());
    let mut endpoint =
        Endpoint::from_shared(uri.to_string()).map_err(|e| DialError::Endpoint(invalid(&e)))?;
    let mut unverified = None;
    if let Some(authority) = uri.strip_prefix("https://") {
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
            .trim_matches(['[', ']']);
        let options = tls.cloned().unwrap_or_default();
        if options.skip_verify && cfg!(not(madsim)) {
            // tonic's own TLS always verifies: dial plain HTTP/2 through a TLS connector.
            endpoint = Endpoint::from_shared(format!("http://{authority}"))
                .map_err(|e| DialError::Endpoint(invalid(&e)))?;
            unverified = Some((options, authority.to_string(), host.to_string()));
        } else {
            let config = options.config(host).map_err(DialError::Tls)?;
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| DialError::Endpoint(invalid(&e)))?;
        }
    }
    if let Some(limit) = dial_timeout {
        endpoint = endpoint.connect_timeout(limit);
    }
    let connecting = async move {
        match unverified {
            #[cfg(not(madsim))]
            Some((options, authority, host)) => {
                crate::tls::dial_unverified(&options, &authority, &host, endpoint)
                    .await
                    .map_err(|e| DialError::Failed(e.to_string()))
            }
            _ => endpoint
                .connect()
                .await
                .map_err(|e| DialError::Failed(transport_reason(&e))),
        }
    };
    match dial_timeout {
        Some(limit) => tokio::time::timeout(limit, connecting)
            .await
            .map_err(|_elapsed| DialError::Failed(format!("no connection within {limit:?}")))?,
        None => connecting.await,
    }
}

/// The innermost cause of a transport error ("Connection refused"), which is what a user
/// can act on; tonic's outer message is only "transport error".
fn transport_reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        reason = inner.to_string();
        source = inner.source();
    }
    reason
}
