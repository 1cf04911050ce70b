//! The record of a run, shared by every client task: the jepsen history of register
//! operations (times from madsim's simulated clock), the put-once keys and what became of
//! them, and the invariant breaches seen while the run went on.
//!
//! Each client owns one jepsen process per register key (`client * PROCESSES_PER_CLIENT +
//! key`), so that a multi-key transaction is recorded as one operation per key, invoked and
//! completed at the same instants: its projection on each key, which is linearizable if the
//! transaction is (P-compositionality), with no false alarm possible.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_jepsen::{Call, Clock, Completion, History, HistoryBuilder, Outcome, Stamp};

/// Jepsen process ids reserved per client (one per register key).
pub const PROCESSES_PER_CLIENT: u64 = 100;

/// Nanoseconds of simulated time since the run began.
pub fn now_nanos() -> u64 {
    let elapsed = madsim::time::TimeHandle::current().elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Client calls that succeeded.
    pub ok: u64,
    /// Client calls that definitely had no effect.
    pub fail: u64,
    /// Client calls whose effect is unknown.
    pub info: u64,
}

#[derive(Debug)]
struct State {
    history: HistoryBuilder,
    put_once: BTreeMap<String, Outcome>,
    revisions: BTreeMap<u64, (i64, String)>,
    breaches: Vec<String>,
    counts: Counts,
}

/// A cloneable handle to the run's record.
#[derive(Debug, Clone)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
}

/// What was recorded, once the run is over.
#[derive(Debug)]
pub struct Record {
    /// Register operations.
    pub history: History,
    /// Put-once keys and the outcome of their put.
    pub put_once: BTreeMap<String, Outcome>,
    /// Invariant breaches seen during the run (revisions going backwards).
    pub breaches: Vec<String>,
    /// Call counters.
    pub counts: Counts,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty record.
    pub fn new() -> Self {
        Recorder {
            state: Arc::new(Mutex::new(State {
                history: HistoryBuilder::new(Clock::Nanos),
                put_once: BTreeMap::new(),
                revisions: BTreeMap::new(),
                breaches: Vec::new(),
                counts: Counts::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the invocation of `calls` (one per process) now.
    pub fn invoke(&self, calls: Vec<(u64, Call)>) {
        let at = Stamp::at(now_nanos());
        let mut state = self.lock();
        for (process, call) in calls {
            if let Err(e) = state.history.invoke(process, call, at) {
                panic!("the simulator recorded an impossible history: {e}");
            }
        }
    }

    /// Records the completion of each process's outstanding call now.
    pub fn complete(&self, completions: Vec<(u64, Completion)>) {
        let at = Stamp::at(now_nanos());
        let mut state = self.lock();
        if let Some((_, first)) = completions.first() {
            count(&mut state.counts, first.outcome);
        }
        for (process, completion) in completions {
            if let Err(e) = state.history.complete(process, completion, at) {
                panic!("the simulator recorded an impossible history: {e}");
            }
        }
    }

    /// Counts a call that is not part of the register history.
    pub fn count(&self, outcome: Outcome) {
        count(&mut self.lock().counts, outcome);
    }

    /// Records what became of the put of put-once key `key`.
    pub fn put_once(&self, key: String, outcome: Outcome) {
        let mut state = self.lock();
        count(&mut state.counts, outcome);
        state.put_once.insert(key, outcome);
    }

    /// The put-once keys so far and the outcome of their put.
    pub fn put_once_snapshot(&self) -> BTreeMap<String, Outcome> {
        self.lock().put_once.clone()
    }

    /// Notes that `client` got a response at `revision` for `what`; a revision lower than
    /// one the client saw before is a breach (etcd's revisions never go backwards).
    pub fn observe_revision(&self, client: u64, revision: i64, what: &str) {
        let mut state = self.lock();
        let seen = state.revisions.get(&client).cloned();
        match seen {
            Some((before, ref earlier)) if revision < before => {
                let breach = format!(
                    "client {client}: {what} answered at revision {revision} after {earlier} \
                     answered at revision {before}"
                );
                state.breaches.push(breach);
            }
            _ => {
                let at = format!("{what} at {:.3}s", now_nanos() as f64 / 1e9);
                state.revisions.insert(client, (revision, at));
            }
        }
    }

    /// Everything recorded; calls still outstanding become `info` ops.
    pub fn finish(self) -> Record {
        let state = match Arc::try_unwrap(self.state) {
            Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
            Err(shared) => {
                let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
                State {
                    history: std::mem::replace(
                        &mut state.history,
                        HistoryBuilder::new(Clock::Nanos),
                    ),
                    put_once: std::mem::take(&mut state.put_once),
                    revisions: BTreeMap::new(),
                    breaches: std::mem::take(&mut state.breaches),
                    counts: state.counts,
                }
            }
        };
        Record {
            history: state.history.finish(),
            put_once: state.put_once,
            breaches: state.breaches,
            counts: state.counts,
        }
    }
}

fn count(counts: &mut Counts, outcome: Outcome) {
    match outcome {
        Outcome::Ok => counts.ok += 1,
        Outcome::Fail => counts.fail += 1,
        Outcome::Info => counts.info += 1,
    }
}
