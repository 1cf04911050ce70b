//! Applies auth management requests and checks the permissions of KV and lease requests
//! (etcd's `authApplierV3` in `etcdserver/apply_auth.go` and the auth appliers of
//! `etcdserver/apply.go`).
//!
//! Every management request but Authenticate, UserGet and RoleGet needs the admin (root)
//! permission; UserGet is also allowed for oneself and RoleGet for a role one has.

use crate::api::cairnpb::{RequestAuth, internal_request::Request};
use crate::api::etcdserverpb::{
    AuthDisableResponse, AuthEnableResponse, AuthRoleAddResponse, AuthRoleDeleteResponse,
    AuthRoleGetResponse, AuthRoleGrantPermissionResponse, AuthRoleListResponse,
    AuthRoleRevokePermissionResponse, AuthUserAddResponse, AuthUserChangePasswordResponse,
    AuthUserDeleteResponse, AuthUserGetResponse, AuthUserGrantRoleResponse, AuthUserListResponse,
    AuthUserRevokeRoleResponse, AuthenticateResponse, DeleteRangeRequest, PutRequest, RequestOp,
    ResponseHeader, TxnRequest, request_op,
};
use crate::auth::{Access, AuthStore};
use crate::error::Error;
use crate::lease::Lessor;
use crate::storage::WriteBatch;

/// The answer to an applied auth management request.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthResponse {
    /// AuthEnable.
    Enable(AuthEnableResponse),
    /// AuthDisable.
    Disable(AuthDisableResponse),
    /// Authenticate.
    Authenticate(AuthenticateResponse),
    /// UserAdd.
    UserAdd(AuthUserAddResponse),
    /// UserDelete.
    UserDelete(AuthUserDeleteResponse),
    /// UserChangePassword.
    UserChangePassword(AuthUserChangePasswordResponse),
    /// UserGrantRole.
    UserGrantRole(AuthUserGrantRoleResponse),
    /// UserRevokeRole.
    UserRevokeRole(AuthUserRevokeRoleResponse),
    /// UserGet.
    UserGet(AuthUserGetResponse),
    /// UserList.
    UserList(AuthUserListResponse),
    /// RoleAdd.
    RoleAdd(AuthRoleAddResponse),
    /// RoleGet.
    RoleGet(AuthRoleGetResponse),
    /// RoleList.
    RoleList(AuthRoleListResponse),
    /// RoleDelete.
    RoleDelete(AuthRoleDeleteResponse),
    /// RoleGrantPermission.
    RoleGrantPermission(AuthRoleGrantPermissionResponse),
    /// RoleRevokePermission.
    RoleRevokePermission(AuthRoleRevokePermissionResponse),
}

/// What an applied auth request means for the member-local tokens (etcd's token provider
/// calls in `auth/store.go`). Every member applies it alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenChange {
    /// Authenticate issued `token` for `user`.
    Assign {
        /// The token.
        token: String,
        /// Its user.
        user: String,
    },
    /// The user's password changed or the user is gone: its tokens are void.
    InvalidateUser(String),
    /// Auth was disabled: every token is void.
    InvalidateAll,
}

/// Whether `request` is an auth management request (applied by [`execute`]).
pub(super) fn is_auth(request: &Request) -> bool {
    matches!(
        request,
        Request::AuthEnable(_)
            | Request::AuthDisable(_)
            | Request::Authenticate(_)
            | Request::AuthUserAdd(_)
            | Request::AuthUserDelete(_)
            | Request::AuthUserChangePassword(_)
            | Request::AuthUserGrantRole(_)
            | Request::AuthUserRevokeRole(_)
            | Request::AuthUserGet(_)
            | Request::AuthUserList(_)
            | Request::AuthRoleAdd(_)
            | Request::AuthRoleGet(_)
            | Request::AuthRoleList(_)
            | Request::AuthRoleDelete(_)
            | Request::AuthRoleGrantPermission(_)
            | Request::AuthRoleRevokePermission(_)
    )
}

/// etcd's `needAdminPermission`.
fn needs_admin(request: &Request) -> bool {
    is_auth(request)
        && !matches!(
            request,
            Request::Authenticate(_) | Request::AuthUserGet(_) | Request::AuthRoleGet(_)
        )
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    })
}

/// Applies one auth management request at Raft `index`; `revision` is the store revision
/// for the response header.
pub(super) fn execute(
    store: &mut AuthStore,
    auth: Option<&RequestAuth>,
    request: Request,
    index: u64,
    revision: i64,
    batch: &mut WriteBatch,
) -> Result<(AuthResponse, Option<TokenChange>), Error> {
    if needs_admin(&request) {
        store.check_admin(auth)?;
    }
    let h = header(revision);
    let mut staged = WriteBatch::new();
    let outcome = match request {
        Request::AuthEnable(_) => store
            .enable(&mut staged)
            .map(|()| (AuthResponse::Enable(AuthEnableResponse { header: h }), None)),
        Request::AuthDisable(_) => {
            store.disable(&mut staged);
            Ok((
                AuthResponse::Disable(AuthDisableResponse { header: h }),
                Some(TokenChange::InvalidateAll),
            ))
        }
        Request::Authenticate(req) => {
            store
                .authenticate(&req.name, &req.simple_token, index)
                .map(|token| {
                    let change = TokenChange::Assign {
                        token: token.clone(),
                        user: req.name.clone(),
                    };
                    let response = AuthenticateResponse { header: h, token };
                    (AuthResponse::Authenticate(response), Some(change))
                })
        }
        Request::AuthUserAdd(req) => store
            .user_add(&req.name, &req.hashed_password, req.options, &mut staged)
            .map(|()| {
                (
                    AuthResponse::UserAdd(AuthUserAddResponse { header: h }),
                    None,
                )
            }),
        Request::AuthUserDelete(req) => store.user_delete(&req.name, &mut staged).map(|()| {
            (
                AuthResponse::UserDelete(AuthUserDeleteResponse { header: h }),
                Some(TokenChange::InvalidateUser(req.name)),
            )
        }),
        Request::AuthUserChangePassword(req) => store
            .user_change_password(&req.name, &req.hashed_password, &mut staged)
            .map(|()| {
                (
                    AuthResponse::UserChangePassword(AuthUserChangePasswordResponse { header: h }),
                    Some(TokenChange::InvalidateUser(req.name)),
                )
            }),
        Request::AuthUserGrantRole(req) => store
            .user_grant_role(&req.user, &req.role, &mut staged)
            .map(|()| {
                let response = AuthUserGrantRoleResponse { header: h };
                (AuthResponse::UserGrantRole(response), None)
            }),
        Request::AuthUserRevokeRole(req) => store
            .user_revoke_role(&req.name, &req.role, &mut staged)
            .map(|()| {
                let response = AuthUserRevokeRoleResponse { header: h };
                (AuthResponse::UserRevokeRole(response), None)
            }),
        Request::AuthUserGet(req) => {
            let own = auth.is_some_and(|a| a.username == req.name);
            if !own {
                store.check_admin(auth)?;
            }
            store.user_get(&req.name).map(|roles| {
                let response = AuthUserGetResponse { header: h, roles };
                (AuthResponse::UserGet(response), None)
            })
        }
        Request::AuthUserList(_) => {
            let users = store.user_list();
            let response = AuthUserListResponse { header: h, users };
            Ok((AuthResponse::UserList(response), None))
        }
        Request::AuthRoleAdd(req) => store.role_add(&req.name, &mut staged).map(|()| {
            (
                AuthResponse::RoleAdd(AuthRoleAddResponse { header: h }),
                None,
            )
        }),
        Request::AuthRoleGet(req) => {
            let holds = auth.is_some_and(|a| store.has_role(&a.username, &req.role));
            if !holds {
                store.check_admin(auth)?;
            }
            store.role_get(&req.role).map(|perm| {
                let response = AuthRoleGetResponse { header: h, perm };
                (AuthResponse::RoleGet(response), None)
            })
        }
        Request::AuthRoleList(_) => {
            let roles = store.role_list();
            let response = AuthRoleListResponse { header: h, roles };
            Ok((AuthResponse::RoleList(response), None))
        }
        Request::AuthRoleDelete(req) => store.role_delete(&req.role, &mut staged).map(|()| {
            (
                AuthResponse::RoleDelete(AuthRoleDeleteResponse { header: h }),
                None,
            )
        }),
        Request::AuthRoleGrantPermission(req) => store
            .role_grant_permission(&req.name, req.perm.unwrap_or_default(), &mut staged)
            .map(|()| {
                let response = AuthRoleGrantPermissionResponse { header: h };
                (AuthResponse::RoleGrantPermission(response), None)
            }),
        Request::AuthRoleRevokePermission(req) => store
            .role_revoke_permission(&req.role, &req.key, &req.range_end, &mut staged)
            .map(|()| {
                let response = AuthRoleRevokePermissionResponse { header: h };
                (AuthResponse::RoleRevokePermission(response), None)
            }),
        _ => Err(Error::Storage("not an auth request".into())),
    };
    if outcome.is_ok() {
        batch.append(&mut staged);
    }
    outcome
}

/// The permission checks of a write request before it is applied (`authApplierV3.Put`,
/// `DeleteRange`, `Txn`, `LeaseRevoke`). Requests of other kinds pass.
pub(super) fn check_write(
    store: &AuthStore,
    lessor: &Lessor,
    auth: Option<&RequestAuth>,
    request: &Request,
) -> Result<(), Error> {
    if !store.enabled() {
        return Ok(());
    }
    match request {
        Request::Put(req) => check_put(store, lessor, auth, req),
        Request::DeleteRange(req) => check_delete(store, auth, req),
        Request::Txn(req) => check_txn(store, auth, req),
        Request::LeaseRevoke(req) => check_lease_keys(store, lessor, auth, req.id),
        _ => Ok(()),
    }
}

fn check_put(
    store: &AuthStore,
    lessor: &Lessor,
    auth: Option<&RequestAuth>,
    req: &PutRequest,
) -> Result<(), Error> {
    store.check(auth, &req.key, &[], Access::Write)?;
    check_lease_keys(store, lessor, auth, req.lease)?;
    if req.prev_kv {
        store.check(auth, &req.key, &[], Access::Read)?;
    }
    Ok(())
}

fn check_delete(
    store: &AuthStore,
    auth: Option<&RequestAuth>,
    req: &DeleteRangeRequest,
) -> Result<(), Error> {
    store.check(auth, &req.key, &req.range_end, Access::Write)?;
    if req.prev_kv {
        store.check(auth, &req.key, &req.range_end, Access::Read)?;
    }
    Ok(())
}

/// A lease may be attached to or revoked by a user only if that user may write every key
/// already attached to it (`checkLeasePuts`).
fn check_lease_keys(
    store: &AuthStore,
    lessor: &Lessor,
    auth: Option<&RequestAuth>,
    lease: i64,
) -> Result<(), Error> {
    if lease == 0 || !lessor.contains(lease) {
        return Ok(());
    }
    for key in lessor.keys(lease)? {
        store.check(auth, &key, &[], Access::Write)?;
    }
    Ok(())
}

/// `checkTxnAuth`: every compare needs read access, every operation of both branches its
/// own access. Nested txns are checked too (etcd 3.4 skips them; 3.5 checks them).
pub fn check_txn(
    store: &AuthStore,
    auth: Option<&RequestAuth>,
    txn: &TxnRequest,
) -> Result<(), Error> {
    for compare in &txn.compare {
        store.check(auth, &compare.key, &compare.range_end, Access::Read)?;
    }
    check_ops(store, auth, &txn.success)?;
    check_ops(store, auth, &txn.failure)
}

fn check_ops(
    store: &AuthStore,
    auth: Option<&RequestAuth>,
    ops: &[RequestOp],
) -> Result<(), Error> {
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                store.check(auth, &r.key, &r.range_end, Access::Read)?;
            }
            Some(request_op::Request::RequestPut(p)) => {
                store.check(auth, &p.key, &[], Access::Write)?;
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                if d.prev_kv {
                    store.check(auth, &d.key, &d.range_end, Access::Read)?;
                }
                store.check(auth, &d.key, &d.range_end, Access::Write)?;
            }
            Some(request_op::Request::RequestTxn(inner)) => check_txn(store, auth, inner)?,
            None => {}
        }
    }
    Ok(())
}
