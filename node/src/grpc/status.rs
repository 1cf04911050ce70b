//! The one table from cairn's typed errors to gRPC status codes and etcd's exact messages
//! (etcd: `api/v3rpc/rpctypes/error.go` and `togRPCError` in `api/v3rpc/util.go`).
//! Clients match on these strings; never build a status message anywhere else.

use cairn_core::Error;
use tonic::{Code, Status};

use super::concurrency::RecipeError;
use crate::server::{MembershipError, ServerError};

/// The gRPC status etcd answers for a state-machine error.
pub fn from_core(error: &Error) -> Status {
    let code = match error {
        Error::EmptyKey
        | Error::ValueProvided
        | Error::LeaseProvided
        | Error::KeyNotFound
        | Error::TooManyOps
        | Error::DuplicateKey
        | Error::RequestTooLarge
        | Error::InvalidSortOption
        | Error::UserEmpty
        | Error::RoleEmpty
        | Error::AuthFailed
        | Error::InvalidAuthMgmt
        | Error::AuthOldRevision => Code::InvalidArgument,
        Error::RootUserNotExist
        | Error::RootRoleNotExist
        | Error::UserAlreadyExist
        | Error::UserNotFound
        | Error::RoleAlreadyExist
        | Error::RoleNotFound
        | Error::RoleNotGranted
        | Error::PermissionNotGranted
        | Error::AuthNotEnabled => Code::FailedPrecondition,
        Error::PermissionDenied => Code::PermissionDenied,
        Error::InvalidAuthToken => Code::Unauthenticated,
        Error::NoPasswordUser => Code::Unknown,
        Error::Compacted | Error::FutureRevision | Error::LeaseTtlTooLarge => Code::OutOfRange,
        Error::LeaseNotFound => Code::NotFound,
        Error::LeaseExists | Error::NotLeader => Code::FailedPrecondition,
        Error::NoSpace => Code::ResourceExhausted,
        Error::Corrupt => Code::DataLoss,
        Error::Storage(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// The gRPC status etcd answers for a refused membership change.
pub fn from_membership(error: &MembershipError) -> Status {
    let code = match error {
        MembershipError::Server(e) => return from_server(e),
        MembershipError::MemberNotFound => Code::NotFound,
        MembershipError::BadUrls => Code::InvalidArgument,
        MembershipError::LeaderTransferTimeout => Code::DeadlineExceeded,
        MembershipError::Refused(_)
        | MembershipError::PeerUrlExists
        | MembershipError::NotLearner
        | MembershipError::NotLeader
        | MembershipError::BadLeaderTransferee => Code::FailedPrecondition,
    };
    Status::new(code, error.to_string())
}

/// The gRPC status etcd answers for a request the server could not complete.
pub fn from_server(error: &ServerError) -> Status {
    match error {
        ServerError::Apply(e) => from_core(e),
        ServerError::NoLeader
        | ServerError::NotLeader
        | ServerError::Timeout
        | ServerError::Stopped => Status::new(Code::Unavailable, error.to_string()),
    }
}

/// The gRPC status etcd's election and lock servers answer for an error of their own: a
/// plain Go error, which gRPC sends as `Unknown`.
pub fn from_recipe(error: &RecipeError) -> Status {
    let code = match error {
        RecipeError::NotLeader | RecipeError::NoLeader | RecipeError::MissingLeaderKey => {
            Code::Unknown
        }
        RecipeError::Malformed(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// A status as etcd's election and lock servers pass it on from their in-process client:
/// clientv3's `toErr` turns each error etcd knows by its message (all of [`from_core`]'s and
/// [`from_server`]'s but an internal failure) into a plain Go error, which gRPC sends as
/// `Unknown` with the same message.
pub fn through_client(status: Status) -> Status {
    match status.code() {
        Code::Internal => status,
        _ => Status::new(Code::Unknown, status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_is_out_of_range_with_etcds_message() {
        let s = from_core(&Error::Compacted);
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
    }

    #[test]
    fn alarm_errors_have_etcds_codes_and_messages() {
        let nospace = from_core(&Error::NoSpace);
        assert_eq!(
            (nospace.code(), nospace.message()),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded"
            )
        );
        let corrupt = from_core(&Error::Corrupt);
        assert_eq!(
            (corrupt.code(), corrupt.message()),
            (Code::DataLoss, "etcdserver: corrupt cluster")
        );
    }

    #[test]
    fn timeout_is_unavailable() {
        let s = from_server(&ServerError::Timeout);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "etcdserver: request timed out");
    }

    #[test]
    fn election_errors_are_unknown_with_etcds_messages() {
        let not_leader = from_recipe(&RecipeError::NotLeader);
        assert_eq!(
            (not_leader.code(), not_leader.message()),
            (Code::Unknown, "election: not leader")
        );
        let missing = from_recipe(&RecipeError::MissingLeaderKey);
        assert_eq!(missing.message(), "\"leader\" field must be provided");
        let lease = through_client(from_core(&Error::LeaseNotFound));
        assert_eq!(
            (lease.code(), lease.message()),
            (Code::Unknown, "etcdserver: requested lease not found")
        );
    }

    #[test]
    fn lease_not_found_is_not_found() {
        assert_eq!(from_core(&Error::LeaseNotFound).code(), Code::NotFound);
    }

    #[test]
    fn lease_errors_have_etcds_codes_and_messages() {
        let exists = from_core(&Error::LeaseExists);
        assert_eq!(
            (exists.code(), exists.message()),
            (Code::FailedPrecondition, "etcdserver: lease already exists")
        );
        let too_large = from_core(&Error::LeaseTtlTooLarge);
        assert_eq!(
            (too_large.code(), too_large.message()),
            (Code::OutOfRange, "etcdserver: too large lease TTL")
        );
        let not_found = from_core(&Error::LeaseNotFound);
        assert_eq!(not_found.message(), "etcdserver: requested lease not found");
    }

    #[test]
    fn auth_errors_have_etcds_codes_and_messages() {
        let cases = [
            (
                Error::PermissionDenied,
                Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            (
                Error::InvalidAuthToken,
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
            ),
            (
                Error::AuthFailed,
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            (
                Error::UserEmpty,
                Code::InvalidArgument,
                "etcdserver: user name is empty",
            ),
            (
                Error::RootUserNotExist,
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            (
                Error::PermissionNotGranted,
                Code::FailedPrecondition,
                "etcdserver: permission is not granted to the role",
            ),
            (
                Error::AuthOldRevision,
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
        ];
        for (error, code, message) in cases {
            let status = from_core(&error);
            assert_eq!((status.code(), status.message()), (code, message));
        }
    }
}
