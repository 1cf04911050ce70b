//! The Auth service (etcd's `api/v3rpc/auth.go` over `EtcdServer`'s auth methods in
//! `etcdserver/v3_server.go`), and [`request_auth`]: which user a request's token names.
//!
//! Every management request goes through Raft carrying its user and the auth revision its
//! token was checked at; apply checks the admin permission (etcd's `authApplierV3`).
//! Passwords are hashed with bcrypt by the member that receives UserAdd or
//! UserChangePassword, before proposing (as etcd 3.5 does), and an Authenticate's password
//! is checked by the member that receives it; only the name and a random token prefix go
//! through Raft. etcd 3.4 has no lockout after failed attempts, and neither has cairn: each
//! attempt costs a bcrypt comparison on a blocking thread, which bounds the rate per member.

use cairn_core::Error;
use cairn_core::api::cairnpb::{self, RequestAuth, internal_request::Request};
use cairn_core::api::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest,
    AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthUserAddRequest,
    AuthUserAddResponse, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse,
    AuthUserDeleteRequest, AuthUserDeleteResponse, AuthUserGetRequest, AuthUserGetResponse,
    AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, AuthUserListRequest, AuthUserListResponse,
    AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, AuthenticateRequest,
    AuthenticateResponse, ResponseHeader,
};
use cairn_core::apply::{AuthResponse, Response as Applied};
use tonic::metadata::MetadataMap;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::pb::auth_server::Auth;
use super::status::{from_core, from_server};
use crate::server::Handle;
use crate::tokens::Tokens;

/// The metadata key clientv3 sends its token under (`rpctypes.TokenFieldNameGRPC`).
pub const TOKEN_METADATA_KEY: &str = "token";
/// The alternative key of the gRPC gateway (`rpctypes.TokenFieldNameSwagger`).
pub const AUTHORIZATION_METADATA_KEY: &str = "authorization";
/// Authenticate retries at most this many times when the auth store changed between the
/// password check and the apply of the token (etcd retries without bound).
pub const MAX_AUTHENTICATE_ATTEMPTS: usize = 8;

/// The metadata key under which a verified client certificate's common name reaches
/// [`request_auth`]. Only [`certificate_user`] sets it, after removing any a client sent.
pub const CERT_USER_METADATA_KEY: &str = "x-cairn-cert-user";

/// The gRPC interceptor of etcd's `AuthInfoFromTLS`: with `--client-cert-auth`, the
/// verified client certificate's CN is the user of a request that carries no token. It
/// passes the CN on in metadata under [`CERT_USER_METADATA_KEY`] (a value a client sent
/// under that key is dropped first, so it cannot be forged).
#[cfg(not(madsim))]
pub fn certificate_user(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
    request.metadata_mut().remove(CERT_USER_METADATA_KEY);
    let common_name = request
        .extensions()
        .get::<crate::tls::ClientConnectInfo>()
        .and_then(|info| info.common_name.clone());
    if let Some(value) = common_name.and_then(|cn| cn.parse().ok()) {
        request.metadata_mut().insert(CERT_USER_METADATA_KEY, value);
    }
    Ok(request)
}

/// The user a request's token names, with the auth revision it was checked at (etcd's
/// `AuthInfoFromCtx`). No token: `None`. A token this member does not honour (unknown,
/// expired, malformed, or naming an index not applied within the request timeout):
/// `etcdserver: invalid auth token`.
pub async fn request_auth(
    handle: &Handle,
    metadata: &MetadataMap,
) -> Result<Option<RequestAuth>, Status> {
    let Some(value) = metadata
        .get(TOKEN_METADATA_KEY)
        .or_else(|| metadata.get(AUTHORIZATION_METADATA_KEY))
    else {
        // No token: the client certificate's CN, if one was verified (etcd's
        // `AuthInfoFromTLS`, checked at the current auth revision).
        let user = metadata
            .get(CERT_USER_METADATA_KEY)
            .and_then(|value| value.to_str().ok());
        return Ok(user.map(|username| RequestAuth {
            username: username.to_string(),
            revision: handle.state_machine().auth_revision(),
        }));
    };
    let invalid = || from_core(&Error::InvalidAuthToken);
    let token = value.to_str().map_err(|_| invalid())?;
    let index = Tokens::index_of(token).ok_or_else(invalid)?;
    if handle.raft_status().applied_index < index && !handle.wait_applied(index).await {
        return Err(invalid());
    }
    let username = handle.tokens().user(token).ok_or_else(invalid)?;
    Ok(Some(RequestAuth {
        username,
        revision: handle.state_machine().auth_revision(),
    }))
}

/// etcd's `IsAdminPermitted` for a request served without Raft (maintenance, membership).
pub async fn require_admin(handle: &Handle, metadata: &MetadataMap) -> Result<(), Status> {
    let auth = request_auth(handle, metadata).await?;
    handle
        .state_machine()
        .check_admin(auth.as_ref())
        .map_err(|e| from_core(&e))
}

/// The Auth service of one member.
#[derive(Clone)]
pub struct AuthService {
    handle: Handle,
    bcrypt_cost: u32,
}

impl AuthService {
    /// An Auth service answering through `handle`, hashing with `bcrypt_cost`.
    pub fn new(handle: Handle, bcrypt_cost: u32) -> Self {
        AuthService {
            handle,
            bcrypt_cost,
        }
    }

    async fn propose<T>(
        &self,
        metadata: &MetadataMap,
        request: Request,
        pick: impl FnOnce(AuthResponse) -> Option<(T, Option<ResponseHeader>)>,
    ) -> Result<GrpcResponse<T>, Status>
    where
        T: WithHeader,
    {
        let auth = request_auth(&self.handle, metadata).await?;
        let applied = self
            .handle
            .propose_as(request, auth)
            .await
            .map_err(|e| from_server(&e))?;
        let Applied::Auth(response) = applied else {
            return Err(unexpected());
        };
        let (mut message, header) = pick(response).ok_or_else(unexpected)?;
        let revision = header.map_or(0, |h| h.revision);
        message.set_header(self.handle.header(revision));
        Ok(GrpcResponse::new(message))
    }

    async fn hash(&self, password: String) -> Result<Vec<u8>, Status> {
        let cost = self.bcrypt_cost;
        let salt: [u8; 16] = {
            use madsim::rand::{Rng, thread_rng};
            thread_rng().r#gen()
        };
        let hashed = blocking(move || {
            bcrypt::hash_with_salt(password.as_bytes(), cost, salt)
                .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
        })
        .await
        .ok_or_else(|| Status::internal("etcdserver: hashing failed"))?
        .map_err(|e| Status::internal(format!("etcdserver: hashing failed: {e}")))?;
        Ok(hashed.into_bytes())
    }

    /// etcd's `CheckPassword`: the stored hash of `name` and the auth revision it was read
    /// at, if `password` matches it.
    async fn check_password(&self, name: &str, password: String) -> Result<u64, Status> {
        let (hash, revision) = self
            .handle
            .state_machine()
            .password_hash(name)
            .map_err(|e| from_core(&e))?;
        let matches = blocking(move || {
            let hash = String::from_utf8_lossy(&hash).into_owned();
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !matches {
            tracing::info!(user = name, "invalid authentication was requested");
            return Err(from_core(&Error::AuthFailed));
        }
        Ok(revision)
    }
}

/// Runs slow CPU work (bcrypt) off the async workers; `None` if it panicked. Simulation has
/// no blocking threads, so there it runs in place.
async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    #[cfg(madsim)]
    {
        Some(work())
    }
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(work).await.ok()
    }
}

fn unexpected() -> Status {
    Status::internal("etcdserver: unexpected response to an auth request")
}

/// Auth responses all carry a header.
pub trait WithHeader {
    /// Replaces the header.
    fn set_header(&mut self, header: ResponseHeader);
}

macro_rules! with_header {
    ($($t:ty),* $(,)?) => {
        $(impl WithHeader for $t {
            fn set_header(&mut self, header: ResponseHeader) {
                self.header = Some(header);
            }
        })*
    };
}

with_header!(
    AuthEnableResponse,
    AuthDisableResponse,
    AuthenticateResponse,
    AuthUserAddResponse,
    AuthUserGetResponse,
    AuthUserListResponse,
    AuthUserDeleteResponse,
    AuthUserChangePasswordResponse,
    AuthUserGrantRoleResponse,
    AuthUserRevokeRoleResponse,
    AuthRoleAddResponse,
    AuthRoleGetResponse,
    AuthRoleListResponse,
    AuthRoleDeleteResponse,
    AuthRoleGrantPermissionResponse,
    AuthRoleRevokePermissionResponse,
);

/// Picks the variant `$v` of an [`AuthResponse`] with its header.
macro_rules! pick {
    ($v:ident) => {
        |r| match r {
            AuthResponse::$v(m) => {
                let h = m.header.clone();
                Some((m, h))
            }
            _ => None,
        }
    };
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        request: GrpcRequest<AuthEnableRequest>,
    ) -> Result<GrpcResponse<AuthEnableResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthEnable(req), pick!(Enable))
            .await
    }

    async fn auth_disable(
        &self,
        request: GrpcRequest<AuthDisableRequest>,
    ) -> Result<GrpcResponse<AuthDisableResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthDisable(req), pick!(Disable))
            .await
    }

    async fn authenticate(
        &self,
        request: GrpcRequest<AuthenticateRequest>,
    ) -> Result<GrpcResponse<AuthenticateResponse>, Status> {
        let req = request.into_inner();
        self.handle
            .read_barrier()
            .await
            .map_err(|e| from_server(&e))?;
        let no_token = MetadataMap::new();
        for _ in 0..MAX_AUTHENTICATE_ATTEMPTS {
            let checked = self.check_password(&req.name, req.password.clone()).await?;
            let internal = cairnpb::AuthenticateRequest {
                name: req.name.clone(),
                simple_token: Tokens::prefix(),
            };
            let response = self
                .propose(
                    &no_token,
                    Request::Authenticate(internal),
                    pick!(Authenticate),
                )
                .await?;
            if checked == self.handle.state_machine().auth_revision() {
                return Ok(response);
            }
        }
        Err(from_server(&crate::server::ServerError::Timeout))
    }

    async fn user_add(
        &self,
        request: GrpcRequest<AuthUserAddRequest>,
    ) -> Result<GrpcResponse<AuthUserAddResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        let no_password = req.options.as_ref().is_some_and(|o| o.no_password);
        let hashed_password = if no_password {
            Vec::new()
        } else {
            self.hash(req.password).await?
        };
        let internal = cairnpb::UserAddRequest {
            name: req.name,
            hashed_password,
            options: req.options,
        };
        self.propose(&metadata, Request::AuthUserAdd(internal), pick!(UserAdd))
            .await
    }

    async fn user_get(
        &self,
        request: GrpcRequest<AuthUserGetRequest>,
    ) -> Result<GrpcResponse<AuthUserGetResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthUserGet(req), pick!(UserGet))
            .await
    }

    async fn user_list(
        &self,
        request: GrpcRequest<AuthUserListRequest>,
    ) -> Result<GrpcResponse<AuthUserListResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthUserList(req), pick!(UserList))
            .await
    }

    async fn user_delete(
        &self,
        request: GrpcRequest<AuthUserDeleteRequest>,
    ) -> Result<GrpcResponse<AuthUserDeleteResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthUserDelete(req), pick!(UserDelete))
            .await
    }

    async fn user_change_password(
        &self,
        request: GrpcRequest<AuthUserChangePasswordRequest>,
    ) -> Result<GrpcResponse<AuthUserChangePasswordResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        let internal = cairnpb::UserChangePasswordRequest {
            name: req.name,
            hashed_password: self.hash(req.password).await?,
        };
        self.propose(
            &metadata,
            Request::AuthUserChangePassword(internal),
            pick!(UserChangePassword),
        )
        .await
    }

    async fn user_grant_role(
        &self,
        request: GrpcRequest<AuthUserGrantRoleRequest>,
    ) -> Result<GrpcResponse<AuthUserGrantRoleResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(
            &metadata,
            Request::AuthUserGrantRole(req),
            pick!(UserGrantRole),
        )
        .await
    }

    async fn user_revoke_role(
        &self,
        request: GrpcRequest<AuthUserRevokeRoleRequest>,
    ) -> Result<GrpcResponse<AuthUserRevokeRoleResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(
            &metadata,
            Request::AuthUserRevokeRole(req),
            pick!(UserRevokeRole),
        )
        .await
    }

    async fn role_add(
        &self,
        request: GrpcRequest<AuthRoleAddRequest>,
    ) -> Result<GrpcResponse<AuthRoleAddResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthRoleAdd(req), pick!(RoleAdd))
            .await
    }

    async fn role_get(
        &self,
        request: GrpcRequest<AuthRoleGetRequest>,
    ) -> Result<GrpcResponse<AuthRoleGetResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthRoleGet(req), pick!(RoleGet))
            .await
    }

    async fn role_list(
        &self,
        request: GrpcRequest<AuthRoleListRequest>,
    ) -> Result<GrpcResponse<AuthRoleListResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthRoleList(req), pick!(RoleList))
            .await
    }

    async fn role_delete(
        &self,
        request: GrpcRequest<AuthRoleDeleteRequest>,
    ) -> Result<GrpcResponse<AuthRoleDeleteResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(&metadata, Request::AuthRoleDelete(req), pick!(RoleDelete))
            .await
    }

    async fn role_grant_permission(
        &self,
        request: GrpcRequest<AuthRoleGrantPermissionRequest>,
    ) -> Result<GrpcResponse<AuthRoleGrantPermissionResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(
            &metadata,
            Request::AuthRoleGrantPermission(req),
            pick!(RoleGrantPermission),
        )
        .await
    }

    async fn role_revoke_permission(
        &self,
        request: GrpcRequest<AuthRoleRevokePermissionRequest>,
    ) -> Result<GrpcResponse<AuthRoleRevokePermissionResponse>, Status> {
        let (metadata, req) = (request.metadata().clone(), request.into_inner());
        self.propose(
            &metadata,
            Request::AuthRoleRevokePermission(req),
            pick!(RoleRevokePermission),
        )
        .await
    }
}
