//! The Auth service calls of [`Client`], and [`Client::authenticate`], which turns a
//! connection into one that sends its user's token with every call (as clientv3 does when
//! given a user name and password).

use crate::client::Client;
use crate::error::ClientError;
use crate::pb::etcdserverpb as pb;

impl Client {
    /// Authenticates as `name` and returns the same connection sending the token it got
    /// with every call.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<Client, ClientError> {
        let request = pb::AuthenticateRequest {
            name: name.to_string(),
            password: password.to_string(),
        };
        let response = self.auth_authenticate(request).await?;
        self.with_token(&response.token)
    }

    /// `Auth.AuthEnable`: turns authentication on.
    pub async fn auth_enable(
        &self,
        request: pb::AuthEnableRequest,
    ) -> Result<pb::AuthEnableResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.auth_enable(self.req(request))).await
    }

    /// `Auth.AuthDisable`: turns authentication off.
    pub async fn auth_disable(
        &self,
        request: pb::AuthDisableRequest,
    ) -> Result<pb::AuthDisableResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.auth_disable(self.req(request))).await
    }

    /// `Auth.Authenticate`: checks a password and returns a token (see [`Client::authenticate`]).
    pub async fn auth_authenticate(
        &self,
        request: pb::AuthenticateRequest,
    ) -> Result<pb::AuthenticateResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.authenticate(self.req(request))).await
    }

    /// `Auth.UserAdd`: adds a user.
    pub async fn auth_user_add(
        &self,
        request: pb::AuthUserAddRequest,
    ) -> Result<pb::AuthUserAddResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_add(self.req(request))).await
    }

    /// `Auth.UserGet`: the roles of a user.
    pub async fn auth_user_get(
        &self,
        request: pb::AuthUserGetRequest,
    ) -> Result<pb::AuthUserGetResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_get(self.req(request))).await
    }

    /// `Auth.UserList`: every user.
    pub async fn auth_user_list(
        &self,
        request: pb::AuthUserListRequest,
    ) -> Result<pb::AuthUserListResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_list(self.req(request))).await
    }

    /// `Auth.UserDelete`: deletes a user.
    pub async fn auth_user_delete(
        &self,
        request: pb::AuthUserDeleteRequest,
    ) -> Result<pb::AuthUserDeleteResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_delete(self.req(request))).await
    }

    /// `Auth.UserChangePassword`: sets a user's password.
    pub async fn auth_user_change_password(
        &self,
        request: pb::AuthUserChangePasswordRequest,
    ) -> Result<pb::AuthUserChangePasswordResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_change_password(self.req(request)))
            .await
    }

    /// `Auth.UserGrantRole`: grants a role to a user.
    pub async fn auth_user_grant_role(
        &self,
        request: pb::AuthUserGrantRoleRequest,
    ) -> Result<pb::AuthUserGrantRoleResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_grant_role(self.req(request))).await
    }

    /// `Auth.UserRevokeRole`: revokes a role from a user.
    pub async fn auth_user_revoke_role(
        &self,
        request: pb::AuthUserRevokeRoleRequest,
    ) -> Result<pb::AuthUserRevokeRoleResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.user_revoke_role(self.req(request))).await
    }

    /// `Auth.RoleAdd`: adds a role.
    pub async fn auth_role_add(
        &self,
        request: pb::AuthRoleAddRequest,
    ) -> Result<pb::AuthRoleAddResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.role_add(self.req(request))).await
    }

    /// `Auth.RoleGet`: the permissions of a role.
    pub async fn auth_role_get(
        &self,
        request: pb::AuthRoleGetRequest,
    ) -> Result<pb::AuthRoleGetResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.role_get(self.req(request))).await
    }

    /// `Auth.RoleList`: every role.
    pub async fn auth_role_list(
        &self,
        request: pb::AuthRoleListRequest,
    ) -> Result<pb::AuthRoleListResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.role_list(self.req(request))).await
    }

    /// `Auth.RoleDelete`: deletes a role.
    pub async fn auth_role_delete(
        &self,
        request: pb::AuthRoleDeleteRequest,
    ) -> Result<pb::AuthRoleDeleteResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.role_delete(self.req(request))).await
    }

    /// `Auth.RoleGrantPermission`: grants a key-range permission to a role.
    pub async fn auth_role_grant_permission(
        &self,
        request: pb::AuthRoleGrantPermissionRequest,
    ) -> Result<pb::AuthRoleGrantPermissionResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.role_grant_permission(self.req(request)))
            .await
    }

    /// `Auth.RoleRevokePermission`: revokes a key-range permission from a role.
    pub async fn auth_role_revoke_permission(
        &self,
        request: pb::AuthRoleRevokePermissionRequest,
    ) -> Result<pb::AuthRoleRevokePermissionResponse, ClientError> {
        let mut auth = self.auth.clone();
        self.call(auth.role_revoke_permission(self.req(request)))
            .await
    }
}
