//! Every committed Raft entry of a run, kept by the simulator as members apply them, so that
//! the committed history can be rebuilt after the members compacted their logs.
//!
//! An entry at or below a member's applied index is committed and can never change. While
//! the run goes on, the archive reads each member's disk (running or not) every
//! [`POLL_INTERVAL`] and appends the entries it has not seen yet up to that member's applied
//! index; an entry some member applied that differs from the archived one at the same index
//! breaks Raft's state machine safety and is reported. Members compact their logs only
//! entries behind what they applied, keeping `--experimental-snapshot-catchup-entries`, and
//! simulated runs apply far fewer entries per poll than that, so nothing is compacted away
//! on every member before the archive read it.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_core::apply::CONSISTENT_INDEX_KEY;
use cairn_core::storage::mem::MemEngine;
use cairn_core::storage::{Engine as _, Order, Space};
use protobuf::Message as _;
use raft::eraftpb::Entry;

use crate::cluster::SimCluster;

/// How often the members' disks are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct State {
    /// Entries 1, 2, … in order.
    entries: Vec<Entry>,
    /// Disagreements found, each once.
    conflicts: Vec<String>,
}

/// The archive of one run (cheap to clone: clones share it).
#[derive(Debug, Clone, Default)]
pub struct LogArchive {
    state: Arc<Mutex<State>>,
}

impl LogArchive {
    /// An empty archive.
    pub fn new() -> Self {
        LogArchive::default()
    }

    /// Reads every member's disk for entries it applied that the archive lacks, and checks
    /// the ones it has.
    pub fn collect(&self, cluster: &SimCluster) {
        for member in 0..cluster.size() {
            self.collect_from(&format!("n{}", member + 1), &cluster.engine(member));
        }
    }

    /// Runs [`LogArchive::collect`] every [`POLL_INTERVAL`], for ever.
    pub async fn keep_collecting(&self, cluster: &SimCluster) {
        loop {
            self.collect(cluster);
            madsim::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The archived entries up to `index`, or why there are not all of them.
    pub fn entries_to(&self, index: u64) -> Result<Vec<Entry>, String> {
        let state = self.lock();
        let have = state.entries.len() as u64;
        if have < index {
            return Err(format!(
                "the log archive holds entries up to {have} only, not up to {index}: every \
                 member compacted the rest before it was read"
            ));
        }
        Ok(state.entries[..index as usize].to_vec())
    }

    /// Entries two members applied differently at the same index.
    pub fn conflicts(&self) -> Vec<String> {
        self.lock().conflicts.clone()
    }

    fn collect_from(&self, member: &str, engine: &MemEngine) {
        let applied = match engine.get(Space::Meta, CONSISTENT_INDEX_KEY) {
            Ok(Some(bytes)) => bytes
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0),
            _ => 0,
        };
        let mut state = self.lock();
        let state = &mut *state;
        // From a little behind the archive's end: the last entries archived are compared
        // with this member's too, at a small cost.
        let from = (state.entries.len() as u64).saturating_sub(RECHECK) + 1;
        let mut visit = |_: &[u8], bytes: &[u8]| {
            let Ok(entry) = Entry::parse_from_bytes(bytes) else {
                return ControlFlow::Break(());
            };
            if entry.index > applied {
                return ControlFlow::Break(());
            }
            let have = state.entries.len() as u64;
            if entry.index <= have {
                let archived = &state.entries[entry.index as usize - 1];
                if archived != &entry {
                    let conflict = format!(
                        "{member} applied entry {} of term {} but another member applied term {} \
                         at that index (or the same term with other data)",
                        entry.index, entry.term, archived.term
                    );
                    if !state.conflicts.contains(&conflict) {
                        state.conflicts.push(conflict);
                    }
                }
                ControlFlow::Continue(())
            } else if entry.index == have + 1 {
                state.entries.push(entry);
                ControlFlow::Continue(())
            } else {
                // A gap: this member compacted entries the archive has not read yet.
                ControlFlow::Break(())
            }
        };
        // A scan of the mem engine cannot fail.
        let _ = engine.scan(
            Space::RaftLog,
            &from.to_be_bytes(),
            None,
            Order::Ascending,
            &mut visit,
        );
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Entries behind the archive's end compared again at each read.
const RECHECK: u64 = 64;

#[cfg(test)]
mod tests {
    use cairn_core::storage::{Durability, WriteBatch};

    use super::*;

    fn entry(index: u64, term: u64, data: &str) -> Entry {
        Entry {
            index,
            term,
            data: data.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }

    /// A member's disk holding `entries` (its log from the first one) and `applied`.
    fn disk(entries: &[Entry], applied: u64) -> MemEngine {
        let engine = MemEngine::new();
        let mut batch = WriteBatch::new();
        for entry in entries {
            let bytes = entry.write_to_bytes().expect("encode an entry");
            batch.put(Space::RaftLog, entry.index.to_be_bytes().to_vec(), bytes);
        }
        batch.put(
            Space::Meta,
            CONSISTENT_INDEX_KEY.to_vec(),
            applied.to_be_bytes().to_vec(),
        );
        engine
            .write(batch, Durability::Sync)
            .expect("write to a mem engine");
        engine
    }

    #[test]
    fn keeps_applied_entries_across_compaction_and_reports_disagreement() {
        let archive = LogArchive::new();
        let log: Vec<Entry> = (1..=6).map(|i| entry(i, 1, &format!("e{i}"))).collect();
        // n1 applied 4 of its 6 entries: only those are committed for sure.
        archive.collect_from("n1", &disk(&log, 4));
        assert_eq!(archive.entries_to(4).map(|e| e.len()), Ok(4));
        assert!(archive.entries_to(5).is_err());
        // n2 compacted its log up to 3 and applied 6: the archive goes on from 5.
        archive.collect_from("n2", &disk(&log[2..], 6));
        assert_eq!(archive.entries_to(6), Ok(log.clone()));
        // n3 compacted beyond the archive's end: it adds nothing, and breaks nothing.
        let later: Vec<Entry> = (8..=9).map(|i| entry(i, 2, "x")).collect();
        archive.collect_from("n3", &disk(&later, 9));
        assert!(archive.entries_to(7).is_err());
        assert!(archive.conflicts().is_empty());
        // n4 applied another entry 5: state machine safety is broken.
        let mut forked = log.clone();
        forked[4] = entry(5, 2, "other");
        archive.collect_from("n4", &disk(&forked, 6));
        let conflicts = archive.conflicts();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert!(conflicts[0].starts_with("n4 applied entry 5 of term 2"));
        // Entries beyond what a member applied are not committed: not compared.
        archive.collect_from("n5", &disk(&forked, 4));
        assert_eq!(archive.conflicts().len(), 1);
    }
}
