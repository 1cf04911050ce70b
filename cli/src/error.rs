//! [`ClientError`]: every way a call through [`crate::Client`] can fail. A server answer
//! keeps its gRPC code and etcd's message verbatim; [`ClientError::etcd_error`] recognises
//! etcd's known errors by message, as clientv3 does, so callers never match on strings.

use std::time::Duration;

use tonic::Code;

use crate::endpoint::EndpointError;
use crate::etcd_error::EtcdError;

/// Why a call through [`crate::Client`] failed. New variants may come with new services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// [`crate::Client::connect`] was given no endpoints.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint string cannot be dialled.
    #[error(transparent)]
    InvalidEndpoint(#[from] EndpointError),
    /// The TLS files cannot be used.
    #[error("{0}")]
    Tls(String),
    /// No endpoint accepted a connection; one `(endpoint, reason)` per endpoint tried.
    #[error("cannot connect to any endpoint: {}", describe_failures(.failures))]
    Unreachable {
        /// Each endpoint tried, with the reason it failed.
        failures: Vec<(String, String)>,
    },
    /// The server, or the transport, answered with a gRPC error status.
    ///
    /// Displayed as clientv3 does: etcd's message alone for one of etcd's known errors,
    /// `rpc error: code = <Code> desc = <message>` otherwise.
    #[error("{}", display_rpc(*.code, .message))]
    Rpc {
        /// The gRPC status code.
        code: Code,
        /// The status message, e.g. `etcdserver: mvcc: required revision has been compacted`.
        message: String,
    },
    /// The call did not complete within the client's request timeout. Displayed as Go's
    /// `context deadline exceeded`, which is what etcd's tools print.
    #[error("context deadline exceeded")]
    Timeout(Duration),
    /// A watch or keep-alive stream ended, or could not take another request.
    #[error("the stream was closed")]
    StreamClosed,
    /// A token that cannot be sent as gRPC metadata.
    #[error("invalid auth token {0:?}")]
    InvalidToken(String),
}

impl ClientError {
    /// The gRPC code of this error (`DeadlineExceeded` for a timeout, `Unavailable` when no
    /// endpoint could be reached, `InvalidArgument` for bad endpoints).
    pub fn code(&self) -> Code {
        match self {
            ClientError::Rpc { code, .. } => *code,
            ClientError::Timeout(_) => Code::DeadlineExceeded,
            ClientError::Unreachable { .. } => Code::Unavailable,
            ClientError::NoEndpoints | ClientError::InvalidEndpoint(_) | ClientError::Tls(_) => {
                Code::InvalidArgument
            }
            ClientError::StreamClosed => Code::Cancelled,
            ClientError::InvalidToken(_) => Code::Unauthenticated,
        }
    }

    /// The server's status message, for an [`ClientError::Rpc`].
    pub fn rpc_message(&self) -> Option<&str> {
        match self {
            ClientError::Rpc { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Which of etcd's known errors this is, if the server sent one.
    pub fn etcd_error(&self) -> Option<EtcdError> {
        self.rpc_message().and_then(EtcdError::from_message)
    }

    /// Whether this error came from a server (or transport) status, not from the client.
    pub fn is_rpc(&self) -> bool {
        matches!(self, ClientError::Rpc { .. })
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Rpc {
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

/// Go's name of a gRPC code (`codes.Code.String()`), as in `rpc error: code = OutOfRange`.
pub fn go_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Go's text of a gRPC status error: `rpc error: code = <Code> desc = <message>`.
pub fn go_status_text(code: Code, message: &str) -> String {
    format!("rpc error: code = {} desc = {message}", go_code_name(code))
}

fn display_rpc(code: Code, message: &str) -> String {
    match EtcdError::from_message(message) {
        Some(known) => known.message().to_string(),
        None => go_status_text(code, message),
    }
}

fn describe_failures(failures: &[(String, String)]) -> String {
    let parts: Vec<String> = failures
        .iter()
        .map(|(ep, why)| format!("{ep}: {why}"))
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_etcd_error_displays_as_its_message() {
        let e = ClientError::from(tonic::Status::new(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        ));
        assert_eq!(
            e.to_string(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(e.etcd_error(), Some(EtcdError::Compacted));
        assert_eq!(e.code(), Code::OutOfRange);
    }

    #[test]
    fn unknown_status_displays_like_grpc_go() {
        let e = ClientError::from(tonic::Status::new(Code::Unavailable, "connection reset"));
        assert_eq!(
            e.to_string(),
            "rpc error: code = Unavailable desc = connection reset"
        );
        assert_eq!(e.etcd_error(), None);
    }

    #[test]
    fn timeout_displays_as_gos_deadline_error() {
        let e = ClientError::Timeout(Duration::from_secs(5));
        assert_eq!(e.to_string(), "context deadline exceeded");
        assert_eq!(e.code(), Code::DeadlineExceeded);
    }
}
