//! Where catch-up reads stored history: the state machine, or anything else with etcd's
//! history semantics (unit tests use the state machine on the in-memory engine).

use crate::Error;
use crate::api::mvccpb::Event;
use crate::apply::StateMachine;

/// Stored history as watch catch-up reads it.
pub trait History {
    /// The revision of the last change.
    fn current_revision(&self) -> i64;

    /// The revision of the last compaction (-1 if never compacted).
    fn compacted_revision(&self) -> i64;

    /// Events with revision `>= start_rev` in `[key, range_end)`, in revision order, each
    /// with `prev_kv` when the key existed before, whole revisions only, stopping after the
    /// revision during which `limit` events were reached; and the current revision they were
    /// read at. `Compacted` if `start_rev` is no longer readable.
    fn events_since(
        &self,
        start_rev: i64,
        key: &[u8],
        range_end: &[u8],
        limit: usize,
    ) -> Result<(Vec<Event>, i64), Error>;
}

impl History for StateMachine {
    fn current_revision(&self) -> i64 {
        StateMachine::current_revision(self)
    }

    fn compacted_revision(&self) -> i64 {
        StateMachine::compacted_revision(self)
    }

    fn events_since(
        &self,
        start_rev: i64,
        key: &[u8],
        range_end: &[u8],
        limit: usize,
    ) -> Result<(Vec<Event>, i64), Error> {
        StateMachine::events_since(self, start_rev, key, range_end, limit)
    }
}
