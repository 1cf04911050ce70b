//! Why a partition is not linearizable, in terms a person can check.
//!
//! Starting from the deepest partial linearization the search found (the longest linearizable
//! prefix), it names the op that had to be linearized next at the latest (the first definite
//! op to complete among those not placed) and every definite op that could have gone next but
//! that the model rejects in the prefix's final state: the ops that cannot be ordered. This is
//! the picture porcupine's visualisation gives.

use super::search::SearchOp;
use crate::model::{Machine, StateId};

/// The prefix with the state after each op, and the ops that cannot be ordered after it.
pub(crate) struct Explanation {
    pub(crate) prefix: Vec<(u32, StateId)>,
    pub(crate) unorderable: Vec<u32>,
}

/// Explains a failed search of `ops` (`ops[..definite]` definite) that reached `prefix`.
pub(crate) fn explain(
    ops: &[SearchOp],
    definite: usize,
    machine: &mut Machine,
    prefix: &[u32],
) -> Explanation {
    let mut placed = vec![false; ops.len()];
    let mut state = machine.initial();
    let mut steps = Vec::with_capacity(prefix.len());
    for &op in prefix {
        let next = machine.step(state, ops[op as usize].action);
        debug_assert!(next.is_some(), "the search only records legal prefixes");
        state = next.unwrap_or(state);
        placed[op as usize] = true;
        steps.push((op, state));
    }
    let unorderable = blocked_ops(ops, definite, machine, &placed, state);
    Explanation {
        prefix: steps,
        unorderable,
    }
}

/// The first definite op to complete among those not placed, and the definite ops that could
/// precede it but are illegal in `state`.
fn blocked_ops(
    ops: &[SearchOp],
    definite: usize,
    machine: &mut Machine,
    placed: &[bool],
    state: StateId,
) -> Vec<u32> {
    let waiting = (0..definite).filter(|&i| !placed[i]);
    let Some(deadline_op) = waiting.min_by_key(|&i| (ops[i].ret, i)) else {
        return Vec::new();
    };
    let deadline = ops[deadline_op].ret;
    let mut blocked: Vec<u32> = (0..definite)
        .filter(|&i| !placed[i] && Some(ops[i].invoke) <= deadline)
        .filter(|&i| i == deadline_op || machine.step(state, ops[i].action).is_none())
        .map(|i| i as u32)
        .collect();
    blocked.sort_unstable();
    blocked
}
