//! Typed errors of the state machine. Each variant is one of etcd's client-visible errors;
//! `node/src/grpc` maps them to gRPC status codes and etcd's exact messages in one table
//! (as etcd's `api/v3rpc/rpctypes` does), so the strings below are only for logs and tests.

use thiserror::Error;

/// An error a client request can end in. Requests that fail this way change nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// An empty key in Range, Put, DeleteRange or a compare.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value` was set and a value was given too.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` was set and a lease was given too.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A Txn with more operations (in one branch or compares) than `--max-txn-ops`.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A Txn whose branch writes the same key twice (puts, or a put inside a deleted range).
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A request larger than `--max-request-bytes`.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A sort order or target outside the enum.
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    /// A revision at or below the compacted revision.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// A revision above the current revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// A Put (or Txn put) naming a lease that does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A LeaseGrant naming the ID of a lease that exists.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A LeaseGrant with a TTL above `lease::MAX_LEASE_TTL_SECS`.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// A lease request that only the leader serves reached a follower (until followers
    /// forward them to the leader, as etcd's `LeaseRenew`/`LeaseTimeToLive` do).
    #[error("etcdserver: not leader")]
    NotLeader,
    /// A write that needs space while the NOSPACE alarm is active, or that would take the
    /// backend past `--quota-backend-bytes` (etcd's `ErrNoSpace`).
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// A write while the CORRUPT alarm is active (etcd's `ErrCorrupt`).
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    /// AuthEnable while no user `root` exists.
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    /// AuthEnable while user `root` lacks role `root`.
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    /// UserAdd of a name that exists.
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    /// UserAdd with an empty name, or a permission check without a user (auth enabled, no
    /// token given).
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// A user operation naming a user that does not exist.
    #[error("etcdserver: user name not found")]
    UserNotFound,
    /// RoleAdd of a name that exists.
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    /// A role operation naming a role that does not exist.
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    /// RoleAdd with an empty name.
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    /// Authenticate with an unknown user or a wrong password.
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// Authenticate as a user created with `no_password` (etcd answers this one with its
    /// internal message and code Unknown: `ErrNoPasswordUser` is missing from its table).
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    /// The user's roles do not grant the operation.
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    /// UserRevokeRole of a role the user does not have.
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    /// RoleRevokePermission of a permission the role does not have.
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// Authenticate while auth is disabled.
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    /// A token that is unknown to the member, expired, or malformed.
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    /// Deleting user or role `root`, or revoking role `root` from user `root`, while auth is
    /// enabled.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// A request whose token was checked at an auth revision older than the store's.
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// The storage engine failed; the request may or may not have been applied.
    #[error("etcdserver: storage failure: {0}")]
    Storage(String),
}

impl From<crate::storage::StorageError> for Error {
    fn from(e: crate::storage::StorageError) -> Self {
        Error::Storage(e.to_string())
    }
}
