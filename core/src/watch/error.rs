//! Why a watcher could not be created. The messages are the `cancel_reason` etcd puts in the
//! create response (`err.Error()` of `mvcc/watcher.go`'s errors), byte for byte, except
//! [`WatchError::TooManyWatchers`], a bound etcd does not have.

use thiserror::Error;

/// A create request the stream refuses; the response has `created` and `canceled` set,
/// `watch_id = -1` and this message as `cancel_reason`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WatchError {
    /// `range_end` is at or before `key`.
    #[error("mvcc: watcher range is empty")]
    EmptyRange,
    /// The client chose a `watch_id` already in use on this stream.
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateId,
    /// The stream already holds its maximum number of watchers.
    #[error("cairn: too many watchers on one watch stream (limit {limit})")]
    TooManyWatchers {
        /// The bound.
        limit: usize,
    },
}
