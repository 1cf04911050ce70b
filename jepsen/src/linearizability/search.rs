//! The Wing–Gong / Lowe depth-first search for a linearization of one partition.
//!
//! Calls and returns are entries of one doubly linked list in real-time order (calls before
//! returns at equal times, so ops that touch are concurrent). Scanning from the head, every
//! call met before the first return is an op that may go next: if the model accepts it and the
//! resulting configuration is new (see [`super::cache`]), it is lifted out of the list and the
//! scan restarts; meeting a return means an op that had to be linearized by then was not, so
//! the search backtracks. Ops of unknown outcome have no return entry: they may take effect
//! any time after their call, and the search succeeds as soon as every definite op is placed,
//! which lets the rest take effect last or never.
//!
//! The hot loop allocates nothing: the list is index arrays, the linearized set a `u64` bitset
//! with a Zobrist hash kept incrementally, states interned `u32`s.

use std::time::Instant;

use super::cache::Cache;
use crate::history::Time;
use crate::model::{Action, Machine, StateId};

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const METER_CHECK_INTERVAL_STEPS: u64 = 1024;

/// One op as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchOp {
    /// Its effect.
    pub(crate) action: Action,
    /// Its invocation.
    pub(crate) invoke: Time,
    /// Its completion; `None` for an op of unknown outcome.
    pub(crate) ret: Option<Time>,
}

/// How a search ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every definite op was placed.
    Linearizable,
    /// No order exists; `prefix` is the deepest partial linearization found (op indices).
    Violation { prefix: Vec<u32> },
    /// The budget ran out first.
    Unknown,
}

/// Counts search steps against a budget shared by all partitions of one check.
#[derive(Debug)]
pub(crate) struct Meter {
    pub(crate) steps: u64,
    max_steps: Option<u64>,
    deadline: Option<Instant>,
}

impl Meter {
    /// A meter that runs out after `max_steps` steps or at `deadline`, whichever is first.
    pub(crate) fn new(max_steps: Option<u64>, deadline: Option<Instant>) -> Self {
        Meter {
            steps: 0,
            max_steps,
            deadline,
        }
    }

    /// Counts one step; true once the budget is spent (checked every 1024 steps).
    #[inline]
    fn exhausted(&mut self) -> bool {
        self.steps += 1;
        if !self.steps.is_multiple_of(METER_CHECK_INTERVAL_STEPS) {
            return false;
        }
        self.max_steps.is_some_and(|max| self.steps >= max)
            || self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// The call/return entries in real-time order, as a dancing-links list.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The op of each entry.
    op: Vec<u32>,
    /// For a call entry, its return entry (`NIL` if none); for a return entry, `HEAD`.
    partner: Vec<u32>,
}

impl Entries {
    fn new(ops: &[SearchOp]) -> Self {
        let mut events: Vec<(Time, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in (0u32..).zip(ops) {
            events.push((op.invoke, false, i));
            if let Some(ret) = op.ret {
                events.push((ret, true, i));
            }
        }
        events.sort_unstable();
        let len = events.len() + 1;
        let mut entries = Entries {
            next: (1..=len as u32).collect(),
            prev: (0..len as u32).map(|i| i.wrapping_sub(1)).collect(),
            op: vec![NIL; len],
            partner: vec![NIL; len],
        };
        entries.next[len - 1] = NIL;
        let mut call_entry = vec![NIL; ops.len()];
        for (node, &(_, is_return, op)) in (1u32..).zip(&events) {
            entries.op[node as usize] = op;
            if is_return {
                entries.partner[node as usize] = HEAD;
                entries.partner[call_entry[op as usize] as usize] = node;
            } else {
                call_entry[op as usize] = node;
            }
        }
        entries
    }

    #[inline]
    fn is_call(&self, node: u32) -> bool {
        self.partner[node as usize] != HEAD
    }

    #[inline]
    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    #[inline]
    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    /// Takes a call entry and its return out of the list.
    #[inline]
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.partner[call as usize];
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes the matching [`Entries::lift`] (lifts are undone in reverse order).
    #[inline]
    fn unlift(&mut self, call: u32) {
        let ret = self.partner[call as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// Where each op lives in the linearized-set bitset, and its Zobrist value.
struct Layout {
    word: Vec<u32>,
    mask: Vec<u64>,
    zobrist: Vec<u64>,
    definite_words: usize,
    words: usize,
}

impl Layout {
    /// Ops `0..definite` are definite (hashed), the rest pending; each part starts on a word.
    fn new(len: usize, definite: usize) -> Self {
        let definite_words = definite.div_ceil(64);
        let words = definite_words + (len - definite).div_ceil(64);
        let mut layout = Layout {
            word: Vec::with_capacity(len),
            mask: Vec::with_capacity(len),
            zobrist: Vec::with_capacity(len),
            definite_words,
            words,
        };
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..len {
            let (base, bit) = if i < definite {
                (0, i)
            } else {
                (definite_words, i - definite)
            };
            layout.word.push((base + bit / 64) as u32);
            layout.mask.push(1 << (bit % 64));
            let z = splitmix64(&mut seed);
            layout.zobrist.push(if i < definite { z } else { 0 });
        }
        layout
    }
}

/// For each pending op, the previous pending op (by invocation) with the same action.
fn twins(ops: &[SearchOp], definite: usize) -> Vec<u32> {
    let mut twin = vec![NIL; ops.len()];
    let mut pending: Vec<usize> = (definite..ops.len()).collect();
    pending.sort_by_key(|&i| (ops[i].invoke, i));
    let mut last: Vec<(Action, u32)> = Vec::new();
    for i in pending {
        match last.iter_mut().find(|(action, _)| *action == ops[i].action) {
            Some((_, previous)) => {
                twin[i] = *previous;
                *previous = i as u32;
            }
            None => last.push((ops[i].action, i as u32)),
        }
    }
    twin
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The mutable state of one search: current configuration and the path to it.
struct Search<'a> {
    ops: &'a [SearchOp],
    definite: usize,
    entries: Entries,
    layout: Layout,
    cache: Cache,
    bits: Vec<u64>,
    hash: u64,
    state: StateId,
    /// For a pending op, the previous pending op with the same action (`NIL` if none).
    twin: Vec<u32>,
    /// Lifted call entries with the state before each.
    stack: Vec<(u32, StateId)>,
    placed_definite: usize,
    best_prefix: Vec<u32>,
    best_placed: usize,
}

/// Searches for a linearization of `ops`, of which `ops[..definite]` completed and the rest
/// have unknown outcome (`ret: None`).
pub(crate) fn search(
    ops: &[SearchOp],
    definite: usize,
    machine: &mut Machine,
    meter: &mut Meter,
) -> Outcome {
    debug_assert!(ops[..definite].iter().all(|op| op.ret.is_some()));
    debug_assert!(ops[definite..].iter().all(|op| op.ret.is_none()));
    let layout = Layout::new(ops.len(), definite);
    let mut search = Search {
        ops,
        definite,
        entries: Entries::new(ops),
        twin: twins(ops, definite),
        cache: Cache::new(layout.definite_words, layout.words),
        bits: vec![0; layout.words],
        layout,
        hash: 0,
        state: machine.initial(),
        stack: Vec::with_capacity(ops.len()),
        placed_definite: 0,
        best_prefix: Vec::new(),
        best_placed: 0,
    };
    search.run(machine, meter)
}

impl Search<'_> {
    fn run(&mut self, machine: &mut Machine, meter: &mut Meter) -> Outcome {
        self.cache
            .insert(Cache::key(0, self.state), self.state, &self.bits);
        let mut node = self.entries.next[HEAD as usize];
        while self.placed_definite < self.definite {
            if meter.exhausted() {
                return Outcome::Unknown;
            }
            if node != NIL && self.entries.is_call(node) {
                node = self.try_place(node, machine);
                continue;
            }
            let Some((call, state)) = self.stack.pop() else {
                return Outcome::Violation {
                    prefix: std::mem::take(&mut self.best_prefix),
                };
            };
            self.undo(call, state);
            node = self.entries.next[call as usize];
        }
        Outcome::Linearizable
    }

    /// Tries to linearize the op of call entry `node` next; returns the entry to scan next.
    #[inline]
    fn try_place(&mut self, node: u32, machine: &mut Machine) -> u32 {
        let op = self.entries.op[node as usize] as usize;
        let skip = self.entries.next[node as usize];
        if self.has_unplaced_twin(op) {
            return skip;
        }
        let Some(next_state) = machine.step(self.state, self.ops[op].action) else {
            return skip;
        };
        if self.makes_last_pending_op_useless(op, next_state, machine) {
            return skip;
        }
        let (word, mask) = (self.layout.word[op] as usize, self.layout.mask[op]);
        self.bits[word] |= mask;
        let hash = self.hash ^ self.layout.zobrist[op];
        if !self
            .cache
            .insert(Cache::key(hash, next_state), next_state, &self.bits)
        {
            self.bits[word] &= !mask;
            return self.entries.next[node as usize];
        }
        self.stack.push((node, self.state));
        self.state = next_state;
        self.hash = hash;
        self.entries.lift(node);
        if op < self.definite {
            self.placed_definite += 1;
            self.note_progress();
        }
        self.entries.next[HEAD as usize]
    }

    /// A pending op waits for its earlier twin (same action, invoked before it): a
    /// linearization using it here can use the twin here instead and it in the twin's place.
    #[inline]
    fn has_unplaced_twin(&self, op: usize) -> bool {
        let twin = self.twin[op];
        twin != NIL
            && self.bits[self.layout.word[twin as usize] as usize] & self.layout.mask[twin as usize]
                == 0
    }

    /// If the top of the stack is a pending op and `op` reaches `next_state` with or without
    /// it (a write, say), that pending op did nothing useful: the same configuration minus it
    /// is reached by placing `op` one level up, and dominates this one.
    #[inline]
    fn makes_last_pending_op_useless(
        &self,
        op: usize,
        next_state: StateId,
        machine: &mut Machine,
    ) -> bool {
        let Some(&(top, before)) = self.stack.last() else {
            return false;
        };
        let top_op = self.entries.op[top as usize] as usize;
        top_op >= self.definite && machine.step(before, self.ops[op].action) == Some(next_state)
    }

    /// Takes the op of call entry `call` back out of the linearization.
    #[inline]
    fn undo(&mut self, call: u32, state: StateId) {
        let op = self.entries.op[call as usize] as usize;
        self.entries.unlift(call);
        self.bits[self.layout.word[op] as usize] &= !self.layout.mask[op];
        self.hash ^= self.layout.zobrist[op];
        self.state = state;
        if op < self.definite {
            self.placed_definite -= 1;
        }
    }

    /// Remembers the path when it places more definite ops than any before.
    fn note_progress(&mut self) {
        if self.placed_definite <= self.best_placed {
            return;
        }
        self.best_placed = self.placed_definite;
        self.best_prefix.clear();
        let entries = &self.entries;
        self.best_prefix.extend(
            self.stack
                .iter()
                .map(|&(call, _)| entries.op[call as usize]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelKind;

    fn op(action: Action, invoke: Time, ret: Option<Time>) -> SearchOp {
        SearchOp {
            action,
            invoke,
            ret,
        }
    }

    #[test]
    fn entries_unlift_restores_the_list() {
        let ops = [
            op(Action::Write(1), 0, Some(3)),
            op(Action::Read(1), 1, Some(2)),
        ];
        let mut e = Entries::new(&ops);
        let before = (e.next.clone(), e.prev.clone());
        e.lift(2);
        e.lift(1);
        e.unlift(1);
        e.unlift(2);
        assert_eq!((e.next.clone(), e.prev.clone()), before);
    }

    #[test]
    fn sequential_write_then_read_is_linearizable() {
        let mut m = Machine::new(ModelKind::Register);
        let ops = [
            op(Action::Write(0), 0, Some(1)),
            op(Action::Read(0), 2, Some(3)),
        ];
        let mut meter = Meter::new(None, None);
        assert_eq!(search(&ops, 2, &mut m, &mut meter), Outcome::Linearizable);
    }

    #[test]
    fn exhausted_budget_is_unknown() {
        let mut m = Machine::new(ModelKind::Register);
        let ops: Vec<SearchOp> = (0..4000)
            .map(|t| op(Action::Read(0), t, Some(t + 10_000)))
            .collect();
        let mut meter = Meter::new(Some(1), None);
        assert_eq!(
            search(&ops, ops.len(), &mut m, &mut meter),
            Outcome::Unknown
        );
    }
}
