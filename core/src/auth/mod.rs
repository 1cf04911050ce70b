//! Authentication and role-based access control, with etcd 3.4's semantics (`auth/store.go`,
//! `auth/range_perm_cache.go`, `etcdserver/apply_auth.go`).
//!
//! Only the replicated half lives here: users, roles, permissions, the enabled flag and the
//! auth revision ([`AuthStore`], changed by applied entries), and the permission checks
//! ([`permission`]). Passwords arrive already hashed (the member that receives UserAdd or
//! UserChangePassword hashes with bcrypt before proposing), and the password of an
//! Authenticate is checked by the serving member before it proposes, so apply stays
//! deterministic and cheap. Tokens (random, with a TTL) are member-local and belong to the
//! node.
//!
//! Every request carries the user its token named and the auth revision at which the token
//! was checked (`cairnpb.RequestAuth`); apply refuses one checked at an older revision
//! (`Error::AuthOldRevision`), so a permission revoked is enforced on every member at once.

pub mod permission;
mod store;

#[cfg(test)]
mod tests;

pub use permission::Access;
pub use store::{AuthStore, ENABLED_KEY, REVISION_KEY};

/// The user that may enable auth and always has every permission (with role `root`).
pub const ROOT_USER: &str = "root";
/// The role that grants every permission and every admin operation.
pub const ROOT_ROLE: &str = "root";
