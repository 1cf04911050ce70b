//! The keys one watcher covers, decoded from a create request exactly as etcd's watch server
//! does (`serverWatchStream.recvLoop` in `etcdserver/api/v3rpc/watch.go`, then the range
//! check of `watchStream.Watch` in `mvcc/watcher.go`):
//!
//! * an empty `key` becomes `"\0"`, the smallest key (so `--prefix ""` watches every key);
//! * an empty `range_end` watches `key` alone;
//! * `range_end = "\0"` watches every key `>= key`;
//! * any other `range_end` watches `[key, range_end)`, and `range_end <= key` is refused
//!   with `mvcc: watcher range is empty`.

use super::error::WatchError;

/// Where a watched range ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Only the start key.
    Single,
    /// Every key from the start key on.
    Unbounded,
    /// Up to this key, exclusive.
    Before(Vec<u8>),
}

/// A non-empty set of keys a watcher receives events for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRange {
    key: Vec<u8>,
    end: End,
}

impl WatchRange {
    /// Decodes etcd's `(key, range_end)` pair of a `WatchCreateRequest`.
    pub fn new(key: &[u8], range_end: &[u8]) -> Result<WatchRange, WatchError> {
        let key = if key.is_empty() {
            vec![0]
        } else {
            key.to_vec()
        };
        let end = match range_end {
            [] => End::Single,
            [0] => End::Unbounded,
            end if key.as_slice() >= end => return Err(WatchError::EmptyRange),
            end => End::Before(end.to_vec()),
        };
        Ok(WatchRange { key, end })
    }

    /// Whether events on `key` reach this watcher.
    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.end {
            End::Single => key == self.key.as_slice(),
            End::Unbounded => key >= self.key.as_slice(),
            End::Before(end) => key >= self.key.as_slice() && key < end.as_slice(),
        }
    }

    /// The range in the `(key, range_end)` form storage reads take (`Mvcc::events_since`).
    pub fn as_request(&self) -> (&[u8], &[u8]) {
        match &self.end {
            End::Single => (&self.key, &[]),
            End::Unbounded => (&self.key, &[0]),
            End::Before(end) => (&self.key, end),
        }
    }
}
