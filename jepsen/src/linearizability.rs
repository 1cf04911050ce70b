//! The linearizability checker: is there one total order of a history's operations, consistent
//! with real time, that the model accepts?
//!
//! It owns the reading of outcomes and the composition of per-key results:
//! - `fail` ops did not happen and are dropped (Jepsen/Knossos semantics). Reads whose value is
//!   unknown (`info`, or Knossos' `:ok :read nil`) constrain nothing and are dropped too.
//! - `info` writes/cas/appends may take effect at any time after their invocation, or never.
//! - P-compositionality (Herlihy & Wing; Horn & Kroening): a history is linearizable iff each
//!   key's sub-history is, so each key is searched alone ([`search`]), smallest first. The first
//!   violating key is the smallest failing partition and is explained ([`explain`]).
//! - A [`Budget`] of steps and/or wall time bounds the whole check; when it runs out the verdict
//!   is `Unknown`, never a guess.

mod cache;
mod explain;
mod search;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::history::{Call, History, Op, Outcome, Value};
use crate::model::{Machine, ModelError, ModelKind};
use search::{Meter, SearchOp};

/// The default step budget of [`Budget::default`]: seconds of work, deterministic.
pub const DEFAULT_MAX_STEPS: u64 = 200_000_000;

/// How much work a check may do before it answers `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Search steps over all partitions (deterministic: use this in simulation).
    pub max_steps: Option<u64>,
    /// Wall-clock time for the whole check.
    pub max_duration: Option<Duration>,
}

impl Default for Budget {
    /// [`DEFAULT_MAX_STEPS`] steps, no time limit.
    fn default() -> Self {
        Budget {
            max_steps: Some(DEFAULT_MAX_STEPS),
            max_duration: None,
        }
    }
}

impl Budget {
    /// No limit at all: the check may run for ever on a pathological history.
    pub fn unlimited() -> Self {
        Budget {
            max_steps: None,
            max_duration: None,
        }
    }
}

/// The answer for a history or a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists.
    Violation,
    /// The budget ran out before the search finished.
    Unknown,
}

impl Verdict {
    /// `linearizable`, `violation` or `unknown`, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::Violation => "violation",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict of one key's sub-history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionResult {
    /// The key (`None`: the single register).
    pub key: Option<String>,
    /// Indices into [`History::ops`] of the ops on this key.
    pub ops: Vec<usize>,
    /// Its verdict.
    pub verdict: Verdict,
}

/// One op of the longest linearizable prefix and the model state after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixStep {
    /// Index into [`History::ops`].
    pub op: usize,
    /// The state after the op.
    pub state: Value,
}

/// The explanation of the smallest failing partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key (`None`: the single register).
    pub key: Option<String>,
    /// Indices into [`History::ops`] of all ops on this key, in invocation order.
    pub ops: Vec<usize>,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<PrefixStep>,
    /// Ops that cannot be ordered after the prefix: the first op due to complete, and each op
    /// that could go next but that the model rejects.
    pub unorderable: Vec<usize>,
}

/// The result of checking a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// `Violation` if any partition is one, else `Unknown` if any is, else `Linearizable`.
    pub verdict: Verdict,
    /// The partitions checked, smallest first (checking stops at the first violation).
    pub partitions: Vec<PartitionResult>,
    /// The smallest failing partition, explained.
    pub violation: Option<Violation>,
    /// Search steps taken.
    pub steps: u64,
}

/// Checks `history` against `model` within `budget`.
///
/// Errors only if the history uses an operation the model lacks (e.g. append on a register).
pub fn check(
    history: &History,
    model: ModelKind,
    budget: &Budget,
) -> Result<CheckResult, ModelError> {
    let deadline = budget.max_duration.map(|d| Instant::now() + d);
    let mut meter = Meter::new(budget.max_steps, deadline);
    let mut result = CheckResult {
        verdict: Verdict::Linearizable,
        partitions: Vec::new(),
        violation: None,
        steps: 0,
    };
    for (key, ops) in partitions(history) {
        let mut partition = Partition::new(history, &ops, model)?;
        let (verdict, violation) = partition.check(&mut meter, key.clone(), ops.clone());
        result
            .partitions
            .push(PartitionResult { key, ops, verdict });
        if verdict == Verdict::Unknown {
            result.verdict = Verdict::Unknown;
        }
        if verdict == Verdict::Violation {
            result.verdict = Verdict::Violation;
            result.violation = violation;
            break;
        }
    }
    result.steps = meter.steps;
    Ok(result)
}

/// The op indices of each key, smallest partition first (ties by key).
fn partitions(history: &History) -> Vec<(Option<String>, Vec<usize>)> {
    let mut by_key: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        by_key.entry(op.call.key()).or_default().push(i);
    }
    let mut parts: Vec<(Option<String>, Vec<usize>)> = by_key
        .into_iter()
        .map(|(k, ops)| (k.map(str::to_owned), ops))
        .collect();
    parts.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.0.cmp(&b.0)));
    parts
}

/// How an op takes part in the search.
enum Role {
    /// It did not happen, or constrains nothing.
    Dropped,
    /// It took effect between invocation and completion.
    Definite,
    /// It may take effect any time after invocation, or never.
    Pending,
}

fn role(op: &Op) -> Role {
    match (op.outcome, &op.call) {
        (Outcome::Fail, _) => Role::Dropped,
        (Outcome::Info, Call::Read { .. }) => Role::Dropped,
        (Outcome::Ok, Call::Read { .. }) if op.output.is_none() => Role::Dropped,
        (Outcome::Ok, _) if op.complete_time.is_some() => Role::Definite,
        _ => Role::Pending,
    }
}

/// One key's ops in the search's form: definite ops first, then pending ones.
struct Partition {
    machine: Machine,
    ops: Vec<SearchOp>,
    origin: Vec<usize>,
    definite: usize,
}

impl Partition {
    fn new(history: &History, indices: &[usize], model: ModelKind) -> Result<Self, ModelError> {
        let mut machine = Machine::new(model);
        let mut definite = Vec::new();
        let mut pending = Vec::new();
        for &i in indices {
            let op = &history.ops[i];
            let role = role(op);
            if matches!(role, Role::Dropped) && op.call.function() == crate::Function::Read {
                continue;
            }
            let action = machine.compile(op)?;
            let search_op = SearchOp {
                action,
                invoke: op.invoke_time,
                ret: op.complete_time,
            };
            match role {
                Role::Dropped => {}
                Role::Definite => definite.push((i, search_op)),
                Role::Pending => pending.push((
                    i,
                    SearchOp {
                        ret: None,
                        ..search_op
                    },
                )),
            }
        }
        let count = definite.len();
        let (origin, ops) = definite.into_iter().chain(pending).unzip();
        Ok(Partition {
            machine,
            ops,
            origin,
            definite: count,
        })
    }

    fn check(
        &mut self,
        meter: &mut Meter,
        key: Option<String>,
        ops: Vec<usize>,
    ) -> (Verdict, Option<Violation>) {
        match search::search(&self.ops, self.definite, &mut self.machine, meter) {
            search::Outcome::Linearizable => (Verdict::Linearizable, None),
            search::Outcome::Unknown => (Verdict::Unknown, None),
            search::Outcome::Violation { prefix } => {
                (Verdict::Violation, Some(self.explain(&prefix, key, ops)))
            }
        }
    }

    fn explain(&mut self, prefix: &[u32], key: Option<String>, ops: Vec<usize>) -> Violation {
        let e = explain::explain(&self.ops, self.definite, &mut self.machine, prefix);
        let prefix = e
            .prefix
            .iter()
            .map(|&(op, state)| PrefixStep {
                op: self.origin[op as usize],
                state: self.machine.value(state).clone(),
            })
            .collect();
        let mut unorderable: Vec<usize> = e
            .unorderable
            .iter()
            .map(|&op| self.origin[op as usize])
            .collect();
        unorderable.sort_unstable();
        Violation {
            key,
            ops,
            prefix,
            unorderable,
        }
    }
}

#[cfg(test)]
mod tests;
