//! The gRPC gateway: etcd's v3 API as HTTP/1.1 `POST` requests with JSON bodies, served on
//! the client port beside gRPC (etcd 3.4's grpc-gateway, `embed/serve.go`). Paths are those of
//! etcd's `*.pb.gw.go` (`/v3/kv/range`, `/v3/watch`, `/v3/lease/grant`...), also under
//! `/v3beta/` (which etcd rewrites to `/v3/`).
//!
//! Each request calls the member's own tonic service implementation (no logic of its own), so
//! checks, auth (an `Authorization` header carries the token, as with etcd's gateway) and
//! errors are those of gRPC. JSON is grpc-gateway's `JSONPb{OrigName: true}`: proto field
//! names, bytes as base64, 64-bit integers as strings, enums by name, default values omitted;
//! requests may use proto or lowerCamelCase names, enums by name or number. The mapping goes
//! through [`prost_reflect`] over the descriptors of the API that the build script writes.
//!
//! Streams (Watch, LeaseKeepAlive, Snapshot, Observe) answer with newline-separated
//! `{"result":{...}}` objects; a bidirectional stream's request body is a sequence of JSON
//! requests, read as they arrive.
//!
//! Not built under madsim: the simulation has no HTTP clients.

mod json;

use std::future::Future;
use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, any, on};
use cairn_core::api::etcdserverpb::{LeaseKeepAliveRequest, WatchRequest};
use futures::{Stream, StreamExt};
use prost::Message;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::grpc::election_pb::election_server::Election;
use crate::grpc::lock_pb::lock_server::Lock;
use crate::grpc::pb::auth_server::Auth;
use crate::grpc::pb::cluster_server::Cluster;
use crate::grpc::pb::kv_server::Kv;
use crate::grpc::pb::lease_server::Lease;
use crate::grpc::pb::maintenance_server::Maintenance;
use crate::grpc::pb::watch_server::Watch;
use crate::grpc::{auth, cluster, election, kv, lease, lock, maintenance, watch};

/// The serialized `FileDescriptorSet` of the etcd API (written by the build script).
const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/etcd_descriptors.bin"));

/// The descriptors of the etcd API, decoded once.
static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).ok());

/// How many parsed requests of a bidirectional stream may wait for the service.
const INBOUND_QUEUE_LEN: usize = 16;

/// The descriptor of the message named `name` (`etcdserverpb.RangeRequest`).
fn descriptor(name: &str) -> Result<MessageDescriptor, Status> {
    POOL.as_ref()
        .and_then(|pool| pool.get_message_by_name(name))
        .ok_or_else(|| Status::internal(format!("gateway: no descriptor for {name}")))
}

/// The services the gateway calls: those that serve gRPC on the same port.
#[derive(Clone)]
pub struct Services {
    /// KV.
    pub kv: kv::KvService,
    /// Watch.
    pub watch: watch::WatchService,
    /// Lease.
    pub lease: lease::LeaseService,
    /// Cluster.
    pub cluster: cluster::ClusterService,
    /// Maintenance.
    pub maintenance: maintenance::MaintenanceService,
    /// Auth.
    pub auth: auth::AuthService,
    /// Election.
    pub election: election::ElectionService,
    /// Lock.
    pub lock: lock::LockService,
}

/// The path prefixes the gateway answers under (etcd rewrites `/v3beta/` to `/v3/`).
const PREFIXES: [&str; 2] = ["/v3", "/v3beta"];

/// Adds a unary call at `paths` (each under every prefix) to `$router`: the JSON body is
/// decoded as `$req` (at most `$max` bytes once encoded, as gRPC allows), passed to
/// `$trait::$method` of `$service`, and its answer encoded as `$resp`.
macro_rules! unary {
    ($router:ident, $max:expr, $service:expr, $trait:ident :: $method:ident,
     $req:literal, $resp:literal, [$($path:literal),+ $(,)?]) => {{
        let service = $service.clone();
        let max = $max;
        let handler = move |headers: HeaderMap, body: Body| {
            let service = service.clone();
            async move {
                call_unary(max, &headers, body, $req, $resp, |request| async move {
                    $trait::$method(&service, request).await
                })
                .await
            }
        };
        for path in [$($path),+] {
            for prefix in PREFIXES {
                $router = $router.route(&format!("{prefix}/{path}"), post_only(handler.clone()));
            }
        }
    }};
}

/// Adds a server-streaming call (one JSON request, a stream of results) at `paths`.
macro_rules! server_stream {
    ($router:ident, $max:expr, $service:expr, $trait:ident :: $method:ident,
     $req:literal, $resp:literal, $path:literal) => {{
        let service = $service.clone();
        let max = $max;
        let handler = move |headers: HeaderMap, body: Body| {
            let service = service.clone();
            async move {
                call_server_stream(max, &headers, body, $req, $resp, |request| async move {
                    $trait::$method(&service, request).await
                })
                .await
            }
        };
        for prefix in PREFIXES {
            $router = $router.route(&format!("{prefix}/{}", $path), post_only(handler.clone()));
        }
    }};
}

/// Adds a bidirectional streaming call (a stream of JSON requests, a stream of results).
macro_rules! bidi_stream {
    ($router:ident, $service:expr, $trait:ident :: $method:ident, $msg:ty,
     $req:literal, $resp:literal, $path:literal) => {{
        let service = $service.clone();
        let handler = move |headers: HeaderMap, body: Body| {
            let service = service.clone();
            async move {
                call_bidi_stream::<$msg, _, _, _, _>(
                    &headers,
                    body,
                    $req,
                    $resp,
                    |request| async move { $trait::$method(&service, request).await },
                )
                .await
            }
        };
        for prefix in PREFIXES {
            $router = $router.route(&format!("{prefix}/{}", $path), post_only(handler.clone()));
        }
    }};
}

/// The gateway's routes, calling `services`; `max_request_bytes` is the member's
/// `--max-request-bytes`.
#[rustfmt::skip]
pub fn router(services: Services, max_request_bytes: usize) -> Router {
    let s = services;
    let max = max_request_bytes + crate::grpc::GRPC_OVERHEAD_BYTES;
    let mut router = Router::new();
    // KV.
    unary! { router, max, s.kv, Kv::range,
        "etcdserverpb.RangeRequest", "etcdserverpb.RangeResponse", ["kv/range"] }
    unary! { router, max, s.kv, Kv::put,
        "etcdserverpb.PutRequest", "etcdserverpb.PutResponse", ["kv/put"] }
    unary! { router, max, s.kv, Kv::delete_range,
        "etcdserverpb.DeleteRangeRequest", "etcdserverpb.DeleteRangeResponse", ["kv/deleterange"] }
    unary! { router, max, s.kv, Kv::txn,
        "etcdserverpb.TxnRequest", "etcdserverpb.TxnResponse", ["kv/txn"] }
    unary! { router, max, s.kv, Kv::compact,
        "etcdserverpb.CompactionRequest", "etcdserverpb.CompactionResponse", ["kv/compaction"] }
    // Watch.
    bidi_stream! { router, s.watch, Watch::watch, WatchRequest,
        "etcdserverpb.WatchRequest", "etcdserverpb.WatchResponse", "watch" }
    // Lease (3.4 also serves some under /v3/kv/lease/).
    unary! { router, max, s.lease, Lease::lease_grant,
        "etcdserverpb.LeaseGrantRequest", "etcdserverpb.LeaseGrantResponse", ["lease/grant"] }
    unary! { router, max, s.lease, Lease::lease_revoke,
        "etcdserverpb.LeaseRevokeRequest", "etcdserverpb.LeaseRevokeResponse",
        ["lease/revoke", "kv/lease/revoke"] }
    bidi_stream! { router, s.lease, Lease::lease_keep_alive, LeaseKeepAliveRequest,
        "etcdserverpb.LeaseKeepAliveRequest", "etcdserverpb.LeaseKeepAliveResponse",
        "lease/keepalive" }
    unary! { router, max, s.lease, Lease::lease_time_to_live,
        "etcdserverpb.LeaseTimeToLiveRequest", "etcdserverpb.LeaseTimeToLiveResponse",
        ["lease/timetolive", "kv/lease/timetolive"] }
    unary! { router, max, s.lease, Lease::lease_leases,
        "etcdserverpb.LeaseLeasesRequest", "etcdserverpb.LeaseLeasesResponse",
        ["lease/leases", "kv/lease/leases"] }
    // Cluster.
    unary! { router, max, s.cluster, Cluster::member_add,
        "etcdserverpb.MemberAddRequest", "etcdserverpb.MemberAddResponse", ["cluster/member/add"] }
    unary! { router, max, s.cluster, Cluster::member_remove,
        "etcdserverpb.MemberRemoveRequest", "etcdserverpb.MemberRemoveResponse",
        ["cluster/member/remove"] }
    unary! { router, max, s.cluster, Cluster::member_update,
        "etcdserverpb.MemberUpdateRequest", "etcdserverpb.MemberUpdateResponse",
        ["cluster/member/update"] }
    unary! { router, max, s.cluster, Cluster::member_list,
        "etcdserverpb.MemberListRequest", "etcdserverpb.MemberListResponse",
        ["cluster/member/list"] }
    unary! { router, max, s.cluster, Cluster::member_promote,
        "etcdserverpb.MemberPromoteRequest", "etcdserverpb.MemberPromoteResponse",
        ["cluster/member/promote"] }
    // Maintenance (`/v3/maintenance/hash` is Hash: etcd's gateway matches it before HashKV).
    unary! { router, max, s.maintenance, Maintenance::alarm,
        "etcdserverpb.AlarmRequest", "etcdserverpb.AlarmResponse", ["maintenance/alarm"] }
    unary! { router, max, s.maintenance, Maintenance::status,
        "etcdserverpb.StatusRequest", "etcdserverpb.StatusResponse", ["maintenance/status"] }
    unary! { router, max, s.maintenance, Maintenance::defragment,
        "etcdserverpb.DefragmentRequest", "etcdserverpb.DefragmentResponse",
        ["maintenance/defragment"] }
    unary! { router, max, s.maintenance, Maintenance::hash,
        "etcdserverpb.HashRequest", "etcdserverpb.HashResponse", ["maintenance/hash"] }
    server_stream! { router, max, s.maintenance, Maintenance::snapshot,
        "etcdserverpb.SnapshotRequest", "etcdserverpb.SnapshotResponse", "maintenance/snapshot" }
    unary! { router, max, s.maintenance, Maintenance::move_leader,
        "etcdserverpb.MoveLeaderRequest", "etcdserverpb.MoveLeaderResponse",
        ["maintenance/transfer-leadership"] }
    // Auth.
    unary! { router, max, s.auth, Auth::auth_enable,
        "etcdserverpb.AuthEnableRequest", "etcdserverpb.AuthEnableResponse", ["auth/enable"] }
    unary! { router, max, s.auth, Auth::auth_disable,
        "etcdserverpb.AuthDisableRequest", "etcdserverpb.AuthDisableResponse", ["auth/disable"] }
    unary! { router, max, s.auth, Auth::authenticate,
        "etcdserverpb.AuthenticateRequest", "etcdserverpb.AuthenticateResponse",
        ["auth/authenticate"] }
    unary! { router, max, s.auth, Auth::user_add,
        "etcdserverpb.AuthUserAddRequest", "etcdserverpb.AuthUserAddResponse", ["auth/user/add"] }
    unary! { router, max, s.auth, Auth::user_get,
        "etcdserverpb.AuthUserGetRequest", "etcdserverpb.AuthUserGetResponse", ["auth/user/get"] }
    unary! { router, max, s.auth, Auth::user_list,
        "etcdserverpb.AuthUserListRequest", "etcdserverpb.AuthUserListResponse",
        ["auth/user/list"] }
    unary! { router, max, s.auth, Auth::user_delete,
        "etcdserverpb.AuthUserDeleteRequest", "etcdserverpb.AuthUserDeleteResponse",
        ["auth/user/delete"] }
    unary! { router, max, s.auth, Auth::user_change_password,
        "etcdserverpb.AuthUserChangePasswordRequest", "etcdserverpb.AuthUserChangePasswordResponse",
        ["auth/user/changepw"] }
    unary! { router, max, s.auth, Auth::user_grant_role,
        "etcdserverpb.AuthUserGrantRoleRequest", "etcdserverpb.AuthUserGrantRoleResponse",
        ["auth/user/grant"] }
    unary! { router, max, s.auth, Auth::user_revoke_role,
        "etcdserverpb.AuthUserRevokeRoleRequest", "etcdserverpb.AuthUserRevokeRoleResponse",
        ["auth/user/revoke"] }
    unary! { router, max, s.auth, Auth::role_add,
        "etcdserverpb.AuthRoleAddRequest", "etcdserverpb.AuthRoleAddResponse", ["auth/role/add"] }
    unary! { router, max, s.auth, Auth::role_get,
        "etcdserverpb.AuthRoleGetRequest", "etcdserverpb.AuthRoleGetResponse", ["auth/role/get"] }
    unary! { router, max, s.auth, Auth::role_list,
        "etcdserverpb.AuthRoleListRequest", "etcdserverpb.AuthRoleListResponse",
        ["auth/role/list"] }
    unary! { router, max, s.auth, Auth::role_delete,
        "etcdserverpb.AuthRoleDeleteRequest", "etcdserverpb.AuthRoleDeleteResponse",
        ["auth/role/delete"] }
    unary! { router, max, s.auth, Auth::role_grant_permission,
        "etcdserverpb.AuthRoleGrantPermissionRequest",
        "etcdserverpb.AuthRoleGrantPermissionResponse",
        ["auth/role/grant"] }
    unary! { router, max, s.auth, Auth::role_revoke_permission,
        "etcdserverpb.AuthRoleRevokePermissionRequest",
        "etcdserverpb.AuthRoleRevokePermissionResponse",
        ["auth/role/revoke"] }
    // Lock and Election.
    unary! { router, max, s.lock, Lock::lock,
        "v3lockpb.LockRequest", "v3lockpb.LockResponse", ["lock/lock"] }
    unary! { router, max, s.lock, Lock::unlock,
        "v3lockpb.UnlockRequest", "v3lockpb.UnlockResponse", ["lock/unlock"] }
    unary! { router, max, s.election, Election::campaign,
        "v3electionpb.CampaignRequest", "v3electionpb.CampaignResponse", ["election/campaign"] }
    unary! { router, max, s.election, Election::proclaim,
        "v3electionpb.ProclaimRequest", "v3electionpb.ProclaimResponse", ["election/proclaim"] }
    unary! { router, max, s.election, Election::leader,
        "v3electionpb.LeaderRequest", "v3electionpb.LeaderResponse", ["election/leader"] }
    server_stream! { router, max, s.election, Election::observe,
        "v3electionpb.LeaderRequest", "v3electionpb.LeaderResponse", "election/observe" }
    unary! { router, max, s.election, Election::resign,
        "v3electionpb.ResignRequest", "v3electionpb.ResignResponse", ["election/resign"] }
    // Any other path under a gateway prefix: grpc-gateway's 404.
    for prefix in PREFIXES {
        router = router.route(&format!("{prefix}/{{*rest}}"), any(not_found));
    }
    router
}

/// A route that answers `POST` (and `OPTIONS`, as etcd's CORS handling does); any other
/// method gets grpc-gateway's 405.
fn post_only<H, T>(handler: H) -> MethodRouter
where
    H: axum::handler::Handler<T, ()>,
    T: 'static,
{
    on(MethodFilter::POST, handler)
        .options(|| async { with_cors(StatusCode::OK.into_response()) })
        .fallback(|| async { go_http_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed") })
}

/// The client port's answer to a path nothing serves: a gRPC call gets gRPC's
/// `Unimplemented` (as tonic answers), any other request Go's `404 page not found`.
pub async fn fallback(headers: HeaderMap) -> Response {
    if is_grpc(&headers) {
        let (parts, ()) = Status::unimplemented("").into_http::<()>().into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    go_http_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Whether a request with `headers` is a gRPC call (its content type is gRPC's).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// grpc-gateway's answer to a path it has no route for.
async fn not_found() -> Response {
    go_http_error(StatusCode::NOT_FOUND, "Not Found")
}

/// The CORS headers etcd adds to every gateway answer.
fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    response
}

/// Go's `http.Error`: plain text, the message and a newline.
fn go_http_error(status: StatusCode, message: &str) -> Response {
    with_cors(
        (
            status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            format!("{message}\n"),
        )
            .into_response(),
    )
}

/// grpc-gateway's `HTTPStatusFromCode`.
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// grpc-gateway's `DefaultHTTPError`: `{"error":..,"message":..,"code":..}` with the HTTP
/// status of the gRPC code.
fn error_response(status: &Status) -> Response {
    let body = format!(
        "{{\"error\":{message},\"message\":{message},\"code\":{code}}}",
        message = json_string(status.message()),
        code = status.code() as i32,
    );
    json_response(http_status(status.code()), Body::from(body), false)
}

/// A JSON answer (with grpc-gateway's header of the gRPC content type when it came from the
/// service).
fn json_response(status: StatusCode, body: Body, from_service: bool) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if from_service {
        headers.insert(
            HeaderName::from_static("grpc-metadata-content-type"),
            HeaderValue::from_static("application/grpc"),
        );
    }
    with_cors(response)
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The gRPC metadata of a gateway request: `Authorization` (etcd reads the token from it)
/// and any `Grpc-Metadata-*` header, under its name without the prefix (grpc-gateway's
/// default header matcher) — but the key that carries a verified client certificate's
/// user, which only the TLS layer sets.
fn metadata(headers: &HeaderMap) -> MetadataMap {
    let mut forwarded = HeaderMap::new();
    for (name, value) in headers {
        if name == header::AUTHORIZATION {
            forwarded.append(name.clone(), value.clone());
        } else if let Some(key) = name.as_str().strip_prefix("grpc-metadata-")
            && key != auth::CERT_USER_METADATA_KEY
            && let Ok(key) = HeaderName::from_bytes(key.as_bytes())
        {
            forwarded.append(key, value.clone());
        }
    }
    MetadataMap::from_headers(forwarded)
}

/// A gRPC request carrying `message` and the metadata of `headers`.
fn grpc_request<T>(headers: &HeaderMap, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata(headers);
    request
}

/// Reads and decodes a unary request body (an empty body is the default request, as in
/// grpc-gateway). A request larger than `max` bytes, as JSON or once encoded, fails as gRPC
/// fails a message larger than its limit.
async fn decode_body<T: Message + Default>(
    max: usize,
    name: &str,
    body: Body,
) -> Result<T, Status> {
    let desc = descriptor(name)?;
    // JSON carries bytes as base64: allow for it, and for the JSON around them.
    let json_max = max.saturating_mul(2);
    let body = axum::body::to_bytes(body, json_max)
        .await
        .map_err(|_| too_large(json_max, max))?;
    let request = match json::first_value(&body) {
        Ok(None) => T::default(),
        Ok(Some(value)) => json::to_message(&desc, &value).map_err(Status::invalid_argument)?,
        Err(message) => return Err(Status::invalid_argument(message)),
    };
    let size = request.encoded_len();
    if size > max {
        return Err(too_large(size, max));
    }
    Ok(request)
}

/// grpc-go's refusal of a message of `size` bytes over the limit `max`.
fn too_large(size: usize, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "grpc: received message larger than max ({size} vs. {max})"
    ))
}

/// A unary call: decode, call, encode.
async fn call_unary<Req, Resp, F, Fut>(
    max: usize,
    headers: &HeaderMap,
    body: Body,
    request_name: &str,
    response_name: &str,
    call: F,
) -> Response
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let result = async {
        let request = decode_body::<Req>(max, request_name, body).await?;
        let response = call(grpc_request(headers, request)).await?;
        json::from_message(&descriptor(response_name)?, response.get_ref())
    }
    .await;
    match result {
        Ok(json) => json_response(StatusCode::OK, Body::from(json), true),
        Err(status) => error_response(&status),
    }
}

/// A server-streaming call: one request, a stream of results.
async fn call_server_stream<Req, Resp, S, F, Fut>(
    max: usize,
    headers: &HeaderMap,
    body: Body,
    request_name: &str,
    response_name: &str,
    call: F,
) -> Response
where
    Req: Message + Default,
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<S>, Status>>,
{
    let result = async {
        let request = decode_body::<Req>(max, request_name, body).await?;
        let responses = call(grpc_request(headers, request)).await?;
        Ok::<_, Status>((descriptor(response_name)?, responses.into_inner()))
    }
    .await;
    match result {
        Ok((desc, responses)) => stream_response(desc, responses).await,
        Err(status) => error_response(&status),
    }
}

/// A bidirectional streaming call: the body's JSON requests go to the service as they
/// arrive; its answers stream back. A first request that does not decode fails the call
/// (grpc-gateway: with code Unknown); a later one ends the requests.
async fn call_bidi_stream<Req, Resp, S, F, Fut>(
    headers: &HeaderMap,
    body: Body,
    request_name: &str,
    response_name: &str,
    call: F,
) -> Response
where
    Req: Message + Default + Send + 'static,
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(tonic::Request<tonic::Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<S>, Status>>,
{
    let desc = match (descriptor(request_name), descriptor(response_name)) {
        (Ok(request), Ok(response)) => (request, response),
        (Err(status), _) | (_, Err(status)) => return error_response(&status),
    };
    let mut requests = json::ValueStream::new(body.into_data_stream());
    let first = match requests.next().await {
        Ok(None) => None,
        Ok(Some(value)) => match json::to_message_bytes(&desc.0, &value) {
            Ok(bytes) => Some(bytes),
            Err(message) => return error_response(&Status::unknown(message)),
        },
        Err(message) => return error_response(&Status::unknown(message)),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(INBOUND_QUEUE_LEN);
    if let Some(bytes) = first {
        let request_desc = desc.0.clone();
        tokio::spawn(async move {
            if sender.send(grpc_frame(&bytes)).await.is_err() {
                return;
            }
            // Later requests: until the body ends or one does not decode.
            while let Ok(Some(value)) = requests.next().await {
                let Ok(bytes) = json::to_message_bytes(&request_desc, &value) else {
                    break;
                };
                if sender.send(grpc_frame(&bytes)).await.is_err() {
                    break;
                }
            }
        });
    } else {
        drop(sender);
    }
    let frames = futures::stream::unfold(receiver, |mut receiver| async move {
        let frame = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), receiver))
    });
    let inbound = tonic::Streaming::new_request(
        tonic_prost::ProstDecoder::<Req>::default(),
        Body::from_stream(frames),
        None,
        None,
    );
    match call(grpc_request(headers, inbound)).await {
        Ok(responses) => stream_response(desc.1, responses.into_inner()).await,
        Err(status) => error_response(&status),
    }
}

/// A message in gRPC's length-prefixed framing (uncompressed).
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    Bytes::from(frame)
}

/// grpc-gateway's `ForwardResponseStream`: each answer as `{"result":...}` and a newline; an
/// error as `{"error":{...}}` ends the stream. Nothing is sent before the first answer; if
/// that is an error, its HTTP status is the error's.
async fn stream_response<Resp, S>(desc: MessageDescriptor, responses: S) -> Response
where
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
{
    let mut chunks = Box::pin(
        responses
            .map(move |item| {
                let result = item.and_then(|response| json::from_message(&desc, &response));
                match result {
                    Ok(json) => (format!("{{\"result\":{json}}}\n"), None),
                    Err(status) => (stream_error(&status), Some(http_status(status.code()))),
                }
            })
            .scan(false, |ended, (chunk, error)| {
                if *ended {
                    return futures::future::ready(None);
                }
                *ended = error.is_some();
                futures::future::ready(Some((chunk, error)))
            }),
    );
    match chunks.next().await {
        None => json_response(StatusCode::OK, Body::empty(), true),
        Some((chunk, Some(status))) => json_response(status, Body::from(chunk), true),
        Some((first, None)) => {
            let all = futures::stream::once(futures::future::ready(first))
                .chain(chunks.map(|(chunk, _)| chunk))
                .map(Ok::<_, std::convert::Infallible>);
            json_response(StatusCode::OK, Body::from_stream(all), true)
        }
    }
}

/// grpc-gateway's stream error chunk (`internal.StreamError`).
fn stream_error(status: &Status) -> String {
    let http = http_status(status.code());
    format!(
        "{{\"error\":{{\"grpc_code\":{},\"http_code\":{},\"message\":{},\"http_status\":{}}}}}",
        status.code() as i32,
        http.as_u16(),
        json_string(status.message()),
        json_string(http.canonical_reason().unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_takes_authorization_and_prefixed_headers_but_no_certificate_user() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("tok"));
        headers.insert("grpc-metadata-hasleader", HeaderValue::from_static("true"));
        headers.insert(
            "grpc-metadata-x-cairn-cert-user",
            HeaderValue::from_static("root"),
        );
        headers.insert("x-other", HeaderValue::from_static("1"));
        let metadata = metadata(&headers);
        assert_eq!(metadata.get("authorization").unwrap(), "tok");
        assert_eq!(metadata.get("hasleader").unwrap(), "true");
        assert!(metadata.get(auth::CERT_USER_METADATA_KEY).is_none());
        assert!(metadata.get("x-other").is_none());
        assert_eq!(metadata.len(), 2);
    }

    #[test]
    fn grpc_codes_map_to_grpc_gateway_statuses() {
        assert_eq!(http_status(tonic::Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(tonic::Code::InvalidArgument),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            http_status(tonic::Code::Unauthenticated),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            http_status(tonic::Code::FailedPrecondition),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            http_status(tonic::Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            http_status(tonic::Code::Unknown),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn every_routed_message_has_a_descriptor() {
        // The message names of the routes above, as written in this file.
        let source = include_str!("gateway.rs");
        let mut names = 0;
        for package in ["etcdserverpb.", "v3lockpb.", "v3electionpb."] {
            let opening = format!("\"{package}");
            for (at, _) in source.match_indices(&opening) {
                let rest = &source[at + 1..];
                let name = &rest[..rest.find('"').unwrap_or(rest.len())];
                if name == package {
                    continue; // The list above.
                }
                assert!(descriptor(name).is_ok(), "{name}");
                names += 1;
            }
        }
        assert!(names >= 86, "{names} names found");
    }
}
