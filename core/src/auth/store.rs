//! The auth store: users, roles, the enabled flag and the auth revision, with etcd 3.4's
//! semantics (`auth/store.go`). Changed only by applied log entries, so every member holds
//! the same store; kept in memory (ordered maps) and written through to `Space::Meta` in the
//! entry's batch, so it survives a restart and travels in state-machine snapshots.
//!
//! Storage layout (Meta space): [`ENABLED_KEY`] (one byte), [`REVISION_KEY`] (u64 BE),
//! `auth/user/<name>` -> `authpb.User`, `auth/role/<name>` -> `authpb.Role`.
//!
//! Every successful change bumps the revision, except AuthEnable (etcd's `AuthEnable` does
//! not commit a revision) and no-op grants. Like every applier function, these leave the
//! batch untouched on error.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use prost::Message as _;

use super::permission::{self, Access};
use super::{ROOT_ROLE, ROOT_USER};
use crate::api::authpb::{Permission, Role, User, UserAddOptions};
use crate::api::cairnpb::RequestAuth;
use crate::error::Error;
use crate::storage::{Engine, Order, Space, StorageError, WriteBatch};

/// Meta key of the enabled flag.
pub const ENABLED_KEY: &[u8] = b"auth/enabled";
/// Meta key of the auth revision.
pub const REVISION_KEY: &[u8] = b"auth/revision";
const USER_PREFIX: &[u8] = b"auth/user/";
const USER_END: &[u8] = b"auth/user0";
const ROLE_PREFIX: &[u8] = b"auth/role/";
const ROLE_END: &[u8] = b"auth/role0";

/// Users, roles and whether auth is enabled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthStore {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
}

fn corrupt(reason: String) -> StorageError {
    StorageError::Corrupt {
        space: Space::Meta.name(),
        reason,
    }
}

fn user_key(name: &str) -> Vec<u8> {
    [USER_PREFIX, name.as_bytes()].concat()
}

fn role_key(name: &str) -> Vec<u8> {
    [ROLE_PREFIX, name.as_bytes()].concat()
}

fn load_all<M: prost::Message + Default>(
    engine: &dyn Engine,
    prefix: &[u8],
    end: &[u8],
) -> Result<BTreeMap<String, M>, StorageError> {
    let mut found = BTreeMap::new();
    let mut failure = None;
    engine.scan(
        Space::Meta,
        prefix,
        Some(end),
        Order::Ascending,
        &mut |key, value| {
            let name = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            match M::decode(value) {
                Ok(message) => {
                    found.insert(name, message);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(corrupt(format!("undecodable auth record {name:?}: {e}")));
                    ControlFlow::Break(())
                }
            }
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

impl AuthStore {
    /// Loads the store kept in `engine`. A store never written has revision 1, as etcd's
    /// `NewAuthStore` commits revision 1 at creation.
    pub fn open(engine: &dyn Engine) -> Result<AuthStore, StorageError> {
        let enabled = engine.get(Space::Meta, ENABLED_KEY)?.as_deref() == Some(&[1][..]);
        let revision = match engine.get(Space::Meta, REVISION_KEY)? {
            None => 1,
            Some(bytes) => {
                let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    corrupt(format!(
                        "auth revision has {} bytes, expected 8",
                        bytes.len()
                    ))
                })?;
                u64::from_be_bytes(array)
            }
        };
        Ok(AuthStore {
            enabled,
            revision,
            users: load_all(engine, USER_PREFIX, USER_END)?,
            roles: load_all(engine, ROLE_PREFIX, ROLE_END)?,
        })
    }

    /// Whether auth is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    fn commit_revision(&mut self, batch: &mut WriteBatch) {
        self.revision += 1;
        batch.put(
            Space::Meta,
            REVISION_KEY.to_vec(),
            self.revision.to_be_bytes().to_vec(),
        );
    }

    fn put_user(&mut self, user: User, batch: &mut WriteBatch) {
        let name = String::from_utf8_lossy(&user.name).into_owned();
        batch.put(Space::Meta, user_key(&name), user.encode_to_vec());
        self.users.insert(name, user);
    }

    fn put_role(&mut self, role: Role, batch: &mut WriteBatch) {
        let name = String::from_utf8_lossy(&role.name).into_owned();
        batch.put(Space::Meta, role_key(&name), role.encode_to_vec());
        self.roles.insert(name, role);
    }

    /// Turns auth on: user `root` must exist and have role `root`. Already on: no change.
    pub fn enable(&mut self, batch: &mut WriteBatch) -> Result<(), Error> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT_USER).ok_or(Error::RootUserNotExist)?;
        if !has_root_role(root) {
            return Err(Error::RootRoleNotExist);
        }
        self.enabled = true;
        batch.put(Space::Meta, ENABLED_KEY.to_vec(), vec![1]);
        Ok(())
    }

    /// Turns auth off. Already off: no change.
    pub fn disable(&mut self, batch: &mut WriteBatch) {
        if !self.enabled {
            return;
        }
        self.enabled = false;
        batch.put(Space::Meta, ENABLED_KEY.to_vec(), vec![0]);
        self.commit_revision(batch);
    }

    /// Apply's half of Authenticate (the password was checked before proposing): the simple
    /// token `<prefix>.<index>` for user `name`.
    pub fn authenticate(&self, name: &str, prefix: &str, index: u64) -> Result<String, Error> {
        if !self.enabled {
            return Err(Error::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(Error::AuthFailed)?;
        if is_no_password(user) {
            return Err(Error::AuthFailed);
        }
        Ok(format!("{prefix}.{index}"))
    }

    /// The serving member's half of Authenticate (etcd's `CheckPassword` before the hash
    /// comparison): the stored hash of `name` and the revision it was read at.
    pub fn password_hash(&self, name: &str) -> Result<(Vec<u8>, u64), Error> {
        if !self.enabled {
            return Err(Error::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(Error::AuthFailed)?;
        if is_no_password(user) {
            return Err(Error::NoPasswordUser);
        }
        Ok((user.password.clone(), self.revision))
    }

    /// Adds a user with an already hashed password (empty for a no-password user).
    pub fn user_add(
        &mut self,
        name: &str,
        hashed_password: &[u8],
        options: Option<UserAddOptions>,
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::UserEmpty);
        }
        if self.users.contains_key(name) {
            return Err(Error::UserAlreadyExist);
        }
        let options = options.unwrap_or_default();
        let password = if options.no_password {
            Vec::new()
        } else {
            hashed_password.to_vec()
        };
        let user = User {
            name: name.as_bytes().to_vec(),
            password,
            roles: Vec::new(),
            options: Some(options),
        };
        self.put_user(user, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Deletes a user (never `root` while auth is enabled).
    pub fn user_delete(&mut self, name: &str, batch: &mut WriteBatch) -> Result<(), Error> {
        if self.enabled && name == ROOT_USER {
            return Err(Error::InvalidAuthMgmt);
        }
        if self.users.remove(name).is_none() {
            return Err(Error::UserNotFound);
        }
        batch.delete(Space::Meta, user_key(name));
        self.commit_revision(batch);
        Ok(())
    }

    /// Replaces a user's password hash.
    pub fn user_change_password(
        &mut self,
        name: &str,
        hashed_password: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        let mut user = self.users.get(name).cloned().ok_or(Error::UserNotFound)?;
        user.password = hashed_password.to_vec();
        self.put_user(user, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Grants `role` to `name` (role `root` need not exist as a role). Granting a role the
    /// user has changes nothing.
    pub fn user_grant_role(
        &mut self,
        name: &str,
        role: &str,
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        let mut user = self.users.get(name).cloned().ok_or(Error::UserNotFound)?;
        if role != ROOT_ROLE && !self.roles.contains_key(role) {
            return Err(Error::RoleNotFound);
        }
        let Err(at) = user.roles.binary_search_by(|r| r.as_str().cmp(role)) else {
            return Ok(());
        };
        user.roles.insert(at, role.to_string());
        self.put_user(user, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Revokes `role` from `name` (never `root` from `root` while auth is enabled).
    pub fn user_revoke_role(
        &mut self,
        name: &str,
        role: &str,
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        if self.enabled && name == ROOT_USER && role == ROOT_ROLE {
            return Err(Error::InvalidAuthMgmt);
        }
        let mut user = self.users.get(name).cloned().ok_or(Error::UserNotFound)?;
        let before = user.roles.len();
        user.roles.retain(|r| r != role);
        if user.roles.len() == before {
            return Err(Error::RoleNotGranted);
        }
        self.put_user(user, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// The roles of `name`.
    pub fn user_get(&self, name: &str) -> Result<Vec<String>, Error> {
        self.users
            .get(name)
            .map(|u| u.roles.clone())
            .ok_or(Error::UserNotFound)
    }

    /// Every user name, in byte order.
    pub fn user_list(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// Adds an empty role.
    pub fn role_add(&mut self, name: &str, batch: &mut WriteBatch) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(Error::RoleAlreadyExist);
        }
        let role = Role {
            name: name.as_bytes().to_vec(),
            key_permission: Vec::new(),
        };
        self.put_role(role, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// The permissions of role `name`.
    pub fn role_get(&self, name: &str) -> Result<Vec<Permission>, Error> {
        self.roles
            .get(name)
            .map(|r| r.key_permission.clone())
            .ok_or(Error::RoleNotFound)
    }

    /// Every role name, in byte order.
    pub fn role_list(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// Deletes a role (never `root` while auth is enabled) and revokes it from every user.
    pub fn role_delete(&mut self, name: &str, batch: &mut WriteBatch) -> Result<(), Error> {
        if self.enabled && name == ROOT_ROLE {
            return Err(Error::InvalidAuthMgmt);
        }
        if self.roles.remove(name).is_none() {
            return Err(Error::RoleNotFound);
        }
        batch.delete(Space::Meta, role_key(name));
        let holders: Vec<User> = self
            .users
            .values()
            .filter(|u| u.roles.iter().any(|r| r == name))
            .cloned()
            .collect();
        for mut user in holders {
            user.roles.retain(|r| r != name);
            self.put_user(user, batch);
        }
        self.commit_revision(batch);
        Ok(())
    }

    /// Grants `perm` to role `name`: a permission on the same `[key, range_end)` as the first
    /// one at or after `perm.key` has its type replaced; otherwise it is added, and the
    /// permissions stay sorted by key (etcd's `RoleGrantPermission`).
    pub fn role_grant_permission(
        &mut self,
        name: &str,
        perm: Permission,
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        let mut role = self.roles.get(name).cloned().ok_or(Error::RoleNotFound)?;
        let perms = &mut role.key_permission;
        let at = perms.partition_point(|p| p.key < perm.key);
        match perms.get_mut(at) {
            Some(existing) if existing.key == perm.key && existing.range_end == perm.range_end => {
                existing.perm_type = perm.perm_type;
            }
            _ => {
                perms.push(perm);
                perms.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        self.put_role(role, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Revokes every permission of role `name` on exactly `[key, range_end)`.
    pub fn role_revoke_permission(
        &mut self,
        name: &str,
        key: &[u8],
        range_end: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), Error> {
        let mut role = self.roles.get(name).cloned().ok_or(Error::RoleNotFound)?;
        let before = role.key_permission.len();
        role.key_permission
            .retain(|p| p.key != key || p.range_end != range_end);
        if role.key_permission.len() == before {
            return Err(Error::PermissionNotGranted);
        }
        self.put_role(role, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Whether `name` has role `role`.
    pub fn has_role(&self, name: &str, role: &str) -> bool {
        self.users
            .get(name)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    /// etcd's `isOpPermitted`: with auth enabled, the request must carry a user checked at
    /// the current auth revision, and that user's roles must grant `access` to the range.
    pub fn check(
        &self,
        auth: Option<&RequestAuth>,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let auth = match auth {
            Some(auth) if auth.revision != 0 => auth,
            _ => return Err(Error::UserEmpty),
        };
        if auth.revision < self.revision {
            return Err(Error::AuthOldRevision);
        }
        let user = self
            .users
            .get(&auth.username)
            .ok_or(Error::PermissionDenied)?;
        if has_root_role(user) {
            return Ok(());
        }
        let roles = user.roles.iter().filter_map(|r| self.roles.get(r));
        if permission::permitted(roles, key, range_end, access) {
            Ok(())
        } else {
            Err(Error::PermissionDenied)
        }
    }

    /// etcd's `IsAdminPermitted`: with auth enabled, the request's user must have role root.
    pub fn check_admin(&self, auth: Option<&RequestAuth>) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let name = match auth {
            Some(auth) if !auth.username.is_empty() => &auth.username,
            _ => return Err(Error::UserEmpty),
        };
        let user = self.users.get(name).ok_or(Error::UserNotFound)?;
        if has_root_role(user) {
            Ok(())
        } else {
            Err(Error::PermissionDenied)
        }
    }
}

fn has_root_role(user: &User) -> bool {
    user.roles.iter().any(|r| r == ROOT_ROLE)
}

fn is_no_password(user: &User) -> bool {
    user.options.as_ref().is_some_and(|o| o.no_password)
}
