//! The committed history the watch checker judges watchers against, rebuilt from the
//! committed Raft entries after the run.
//!
//! The watchers under test see events through the watch fan-out and catch-up; checking them
//! against anything those paths produced would be circular. Instead, once every member has
//! applied the same log, the committed entries (from the [`crate::archive::LogArchive`],
//! which outlives the members' log compactions) are applied again, entry by entry, to a
//! fresh state machine on a fresh `mem` disk: the events each entry produces there (the
//! same code that computes a revision's MVCC changes, but no watch code) are the committed
//! history, one [`Commit`] per revision, and the compactions that applied without error are
//! the recorded compactions.

use std::sync::Arc;

use cairn_core::api::cairnpb::{InternalRequest, internal_request::Request};
use cairn_core::api::mvccpb;
use cairn_core::apply::{Response, StateMachine};
use cairn_core::storage::mem::MemEngine;
use cairn_jepsen::watch::client::event_of;
use cairn_jepsen::watch::{Commit, Event, Revision};
use prost::Message as _;
use raft::eraftpb::{Entry, EntryType};

/// The committed history up to an applied index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// One commit per revision that wrote something, revisions increasing.
    pub commits: Vec<Commit>,
    /// Revisions of the compactions that applied without error, in log order.
    pub compactions: Vec<Revision>,
}

/// Rebuilds the committed history from the committed `entries` (1, 2, … in order).
pub fn from_entries(entries: &[Entry]) -> Result<Committed, String> {
    let replica = StateMachine::open(Arc::new(MemEngine::new()))
        .map_err(|e| format!("cannot open a state machine to replay the log: {e}"))?;
    let mut committed = Committed::default();
    for entry in entries {
        replay(&replica, entry, &mut committed)?;
    }
    Ok(committed)
}

/// Applies one entry to `replica` and notes its events and a successful compaction.
fn replay(replica: &StateMachine, entry: &Entry, committed: &mut Committed) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("replaying entry {}: {e}", entry.index);
    if entry.get_entry_type() != EntryType::EntryNormal {
        return replica.mark_applied(entry.index).map_err(|e| failed(&e));
    }
    let applied = replica
        .apply(entry.index, &entry.data)
        .map_err(|e| failed(&e))?;
    let Some(applied) = applied else {
        return Ok(());
    };
    if let Ok(Response::Compaction(_)) = applied.result {
        committed.compactions.push(compacted_revision(&entry.data));
    }
    let Some(first) = applied.events.first() else {
        return Ok(());
    };
    let revision = first.kv.as_ref().map_or(0, |kv| kv.mod_revision);
    committed.commits.push(Commit {
        revision,
        events: applied.events.iter().map(commit_event).collect(),
        line: None,
    });
    Ok(())
}

/// The revision a compaction entry compacted at.
fn compacted_revision(data: &[u8]) -> Revision {
    match InternalRequest::decode(data).map(|r| r.request) {
        Ok(Some(Request::Compaction(compaction))) => compaction.revision,
        _ => 0,
    }
}

/// A committed event for the checker, without `prev_kv`: the checker derives each key's
/// previous state from the history itself, which starts at revision 1.
fn commit_event(event: &mvccpb::Event) -> Event {
    Event {
        prev_kv: None,
        ..event_of(event)
    }
}
