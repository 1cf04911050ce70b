//! etcd's client-visible server errors as clientv3 recognises them (etcd 3.4
//! `api/v3rpc/rpctypes`, the `errStringToError` table): each has a fixed gRPC code and an
//! exact message. A client recognises them by message, as clientv3's `rpctypes.Error` does,
//! so callers match on [`EtcdError`] instead of on strings. Any other message is an "unknown"
//! gRPC error, which etcdctl prints as `rpc error: code = ... desc = ...`.

use tonic::Code;

/// One of etcd's known server errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtcdError {
    /// `etcdserver: key is not provided`
    EmptyKey,
    /// `etcdserver: key not found`
    KeyNotFound,
    /// `etcdserver: value is provided`
    ValueProvided,
    /// `etcdserver: lease is provided`
    LeaseProvided,
    /// `etcdserver: too many operations in txn request`
    TooManyOps,
    /// `etcdserver: duplicate key given in txn request`
    DuplicateKey,
    /// `etcdserver: mvcc: required revision has been compacted`
    Compacted,
    /// `etcdserver: mvcc: required revision is a future revision`
    FutureRev,
    /// `etcdserver: mvcc: database space exceeded`
    NoSpace,
    /// `etcdserver: requested lease not found`
    LeaseNotFound,
    /// `etcdserver: lease already exists`
    LeaseExist,
    /// `etcdserver: too large lease TTL`
    LeaseTTLTooLarge,
    /// `etcdserver: member ID already exist`
    MemberExist,
    /// `etcdserver: Peer URLs already exists`
    PeerURLExist,
    /// `etcdserver: re-configuration failed due to not enough started members`
    MemberNotEnoughStarted,
    /// `etcdserver: given member URLs are invalid`
    MemberBadURLs,
    /// `etcdserver: member not found`
    MemberNotFound,
    /// `etcdserver: can only promote a learner member`
    MemberNotLearner,
    /// `etcdserver: can only promote a learner member which is in sync with leader`
    LearnerNotReady,
    /// `etcdserver: too many learner members in cluster`
    TooManyLearners,
    /// `etcdserver: request is too large`
    RequestTooLarge,
    /// `etcdserver: too many requests`
    RequestTooManyRequests,
    /// `etcdserver: root user does not exist`
    RootUserNotExist,
    /// `etcdserver: root user does not have root role`
    RootRoleNotExist,
    /// `etcdserver: user name already exists`
    UserAlreadyExist,
    /// `etcdserver: user name is empty`
    UserEmpty,
    /// `etcdserver: user name not found`
    UserNotFound,
    /// `etcdserver: role name already exists`
    RoleAlreadyExist,
    /// `etcdserver: role name not found`
    RoleNotFound,
    /// `etcdserver: role name is empty`
    RoleEmpty,
    /// `etcdserver: authentication failed, invalid user ID or password`
    AuthFailed,
    /// `etcdserver: permission denied`
    PermissionDenied,
    /// `etcdserver: role is not granted to the user`
    RoleNotGranted,
    /// `etcdserver: permission is not granted to the role`
    PermissionNotGranted,
    /// `etcdserver: authentication is not enabled`
    AuthNotEnabled,
    /// `etcdserver: invalid auth token`
    InvalidAuthToken,
    /// `etcdserver: invalid auth management`
    InvalidAuthMgmt,
    /// `etcdserver: revision of auth store is old`
    AuthOldRevision,
    /// `etcdserver: no leader`
    NoLeader,
    /// `etcdserver: not leader`
    NotLeader,
    /// `etcdserver: leader changed`
    LeaderChanged,
    /// `etcdserver: not capable`
    NotCapable,
    /// `etcdserver: server stopped`
    Stopped,
    /// `etcdserver: request timed out`
    Timeout,
    /// `etcdserver: request timed out, possibly due to previous leader failure`
    TimeoutDueToLeaderFail,
    /// `etcdserver: request timed out, possibly due to connection lost`
    TimeoutDueToConnectionLost,
    /// `etcdserver: request timed out, waiting for the applied index took too long`
    TimeoutWaitAppliedIndex,
    /// `etcdserver: unhealthy cluster`
    Unhealthy,
    /// `etcdserver: corrupt cluster`
    Corrupt,
    /// `etcdserver: rpc not supported for learner`
    NotSupportedForLearner,
    /// `etcdserver: bad leader transferee`
    BadLeaderTransferee,
}

impl EtcdError {
    /// Every known error, in etcd's order.
    pub const ALL: [EtcdError; 51] = [
        EtcdError::EmptyKey,
        EtcdError::KeyNotFound,
        EtcdError::ValueProvided,
        EtcdError::LeaseProvided,
        EtcdError::TooManyOps,
        EtcdError::DuplicateKey,
        EtcdError::Compacted,
        EtcdError::FutureRev,
        EtcdError::NoSpace,
        EtcdError::LeaseNotFound,
        EtcdError::LeaseExist,
        EtcdError::LeaseTTLTooLarge,
        EtcdError::MemberExist,
        EtcdError::PeerURLExist,
        EtcdError::MemberNotEnoughStarted,
        EtcdError::MemberBadURLs,
        EtcdError::MemberNotFound,
        EtcdError::MemberNotLearner,
        EtcdError::LearnerNotReady,
        EtcdError::TooManyLearners,
        EtcdError::RequestTooLarge,
        EtcdError::RequestTooManyRequests,
        EtcdError::RootUserNotExist,
        EtcdError::RootRoleNotExist,
        EtcdError::UserAlreadyExist,
        EtcdError::UserEmpty,
        EtcdError::UserNotFound,
        EtcdError::RoleAlreadyExist,
        EtcdError::RoleNotFound,
        EtcdError::RoleEmpty,
        EtcdError::AuthFailed,
        EtcdError::PermissionDenied,
        EtcdError::RoleNotGranted,
        EtcdError::PermissionNotGranted,
        EtcdError::AuthNotEnabled,
        EtcdError::InvalidAuthToken,
        EtcdError::InvalidAuthMgmt,
        EtcdError::AuthOldRevision,
        EtcdError::NoLeader,
        EtcdError::NotLeader,
        EtcdError::LeaderChanged,
        EtcdError::NotCapable,
        EtcdError::Stopped,
        EtcdError::Timeout,
        EtcdError::TimeoutDueToLeaderFail,
        EtcdError::TimeoutDueToConnectionLost,
        EtcdError::TimeoutWaitAppliedIndex,
        EtcdError::Unhealthy,
        EtcdError::Corrupt,
        EtcdError::NotSupportedForLearner,
        EtcdError::BadLeaderTransferee,
    ];

    /// The known error whose message is exactly `message`, if any.
    pub fn from_message(message: &str) -> Option<EtcdError> {
        EtcdError::ALL.into_iter().find(|e| e.message() == message)
    }

    /// etcd's exact message, e.g. `etcdserver: mvcc: required revision has been compacted`.
    pub fn message(self) -> &'static str {
        self.code_and_message().1
    }

    /// The gRPC code etcd sends this error with.
    pub fn code(self) -> Code {
        self.code_and_message().0
    }

    fn code_and_message(self) -> (Code, &'static str) {
        match self {
            EtcdError::EmptyKey => (Code::InvalidArgument, "etcdserver: key is not provided"),
            EtcdError::KeyNotFound => (Code::InvalidArgument, "etcdserver: key not found"),
            EtcdError::ValueProvided => (Code::InvalidArgument, "etcdserver: value is provided"),
            EtcdError::LeaseProvided => (Code::InvalidArgument, "etcdserver: lease is provided"),
            EtcdError::TooManyOps => (
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            EtcdError::DuplicateKey => (
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request",
            ),
            EtcdError::Compacted => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            EtcdError::FutureRev => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            EtcdError::NoSpace => (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            EtcdError::LeaseNotFound => (Code::NotFound, "etcdserver: requested lease not found"),
            EtcdError::LeaseExist => (Code::FailedPrecondition, "etcdserver: lease already exists"),
            EtcdError::LeaseTTLTooLarge => (Code::OutOfRange, "etcdserver: too large lease TTL"),
            EtcdError::MemberExist => (
                Code::FailedPrecondition,
                "etcdserver: member ID already exist",
            ),
            EtcdError::PeerURLExist => (
                Code::FailedPrecondition,
                "etcdserver: Peer URLs already exists",
            ),
            EtcdError::MemberNotEnoughStarted => (
                Code::FailedPrecondition,
                "etcdserver: re-configuration failed due to not enough started members",
            ),
            EtcdError::MemberBadURLs => (
                Code::InvalidArgument,
                "etcdserver: given member URLs are invalid",
            ),
            EtcdError::MemberNotFound => (Code::NotFound, "etcdserver: member not found"),
            EtcdError::MemberNotLearner => (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member",
            ),
            EtcdError::LearnerNotReady => (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ),
            EtcdError::TooManyLearners => (
                Code::FailedPrecondition,
                "etcdserver: too many learner members in cluster",
            ),
            EtcdError::RequestTooLarge => {
                (Code::InvalidArgument, "etcdserver: request is too large")
            }
            EtcdError::RequestTooManyRequests => {
                (Code::ResourceExhausted, "etcdserver: too many requests")
            }
            EtcdError::RootUserNotExist => (
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            EtcdError::RootRoleNotExist => (
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
            ),
            EtcdError::UserAlreadyExist => (
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
            ),
            EtcdError::UserEmpty => (Code::InvalidArgument, "etcdserver: user name is empty"),
            EtcdError::UserNotFound => {
                (Code::FailedPrecondition, "etcdserver: user name not found")
            }
            EtcdError::RoleAlreadyExist => (
                Code::FailedPrecondition,
                "etcdserver: role name already exists",
            ),
            EtcdError::RoleNotFound => {
                (Code::FailedPrecondition, "etcdserver: role name not found")
            }
            EtcdError::RoleEmpty => (Code::InvalidArgument, "etcdserver: role name is empty"),
            EtcdError::AuthFailed => (
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            EtcdError::PermissionDenied => {
                (Code::PermissionDenied, "etcdserver: permission denied")
            }
            EtcdError::RoleNotGranted => (
                Code::FailedPrecondition,
                "etcdserver: role is not granted to the user",
            ),
            EtcdError::PermissionNotGranted => (
                Code::FailedPrecondition,
                "etcdserver: permission is not granted to the role",
            ),
            EtcdError::AuthNotEnabled => (
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            EtcdError::InvalidAuthToken => {
                (Code::Unauthenticated, "etcdserver: invalid auth token")
            }
            EtcdError::InvalidAuthMgmt => {
                (Code::InvalidArgument, "etcdserver: invalid auth management")
            }
            EtcdError::AuthOldRevision => (
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
            EtcdError::NoLeader => (Code::Unavailable, "etcdserver: no leader"),
            EtcdError::NotLeader => (Code::FailedPrecondition, "etcdserver: not leader"),
            EtcdError::LeaderChanged => (Code::Unavailable, "etcdserver: leader changed"),
            EtcdError::NotCapable => (Code::Unavailable, "etcdserver: not capable"),
            EtcdError::Stopped => (Code::Unavailable, "etcdserver: server stopped"),
            EtcdError::Timeout => (Code::Unavailable, "etcdserver: request timed out"),
            EtcdError::TimeoutDueToLeaderFail => (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure",
            ),
            EtcdError::TimeoutDueToConnectionLost => (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to connection lost",
            ),
            EtcdError::TimeoutWaitAppliedIndex => (
                Code::Unavailable,
                "etcdserver: request timed out, waiting for the applied index took too long",
            ),
            EtcdError::Unhealthy => (Code::Unavailable, "etcdserver: unhealthy cluster"),
            EtcdError::Corrupt => (Code::DataLoss, "etcdserver: corrupt cluster"),
            EtcdError::NotSupportedForLearner => (
                Code::Unavailable,
                "etcdserver: rpc not supported for learner",
            ),
            EtcdError::BadLeaderTransferee => (
                Code::FailedPrecondition,
                "etcdserver: bad leader transferee",
            ),
        }
    }
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for EtcdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_round_trips_by_message() {
        for error in EtcdError::ALL {
            assert_eq!(EtcdError::from_message(error.message()), Some(error));
        }
    }

    #[test]
    fn compacted_is_out_of_range_with_etcds_message() {
        let e = EtcdError::Compacted;
        assert_eq!(e.code(), Code::OutOfRange);
        assert_eq!(
            e.to_string(),
            "etcdserver: mvcc: required revision has been compacted"
        );
    }

    #[test]
    fn unknown_messages_are_not_etcd_errors() {
        assert_eq!(EtcdError::from_message("etcdserver: watch canceled"), None);
        assert_eq!(EtcdError::from_message("etcdserver: something new"), None);
    }
}
