//! The search's memo of visited configurations, with dominance.
//!
//! A configuration is (set of linearized ops, model state). Lowe's memoisation skips a
//! configuration already visited. This cache goes one step further for ops of unknown outcome
//! (`info`): such an op may also never take effect, and no op has to follow it in real time,
//! so a configuration that linearized *more* of them, with the same definite ops and the same
//! state, has no continuation the smaller one lacks. It is skipped too ("dominated").
//!
//! Layout: op bits are split into a definite part and a pending (`info`) part. Entries with
//! the same key (Zobrist hash of the definite part mixed with the state) form a chain in one
//! arena; their bits live in one `u64` pool, so recording a configuration allocates nothing
//! but pool growth. Entries dominated by a newer one are unlinked to keep chains short.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::StateId;

const NIL: u32 = u32::MAX;

/// The keys are already well-mixed 64-bit hashes: pass them through.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Clone, Copy)]
struct Entry {
    next: u32,
    state: StateId,
    offset: usize,
}

/// Visited configurations of one search.
pub(crate) struct Cache {
    heads: HashMap<u64, u32, BuildHasherDefault<Passthrough>>,
    entries: Vec<Entry>,
    pool: Vec<u64>,
    definite_words: usize,
    words: usize,
}

impl Cache {
    /// A cache for bitsets of `words` words, the first `definite_words` of them definite ops.
    pub(crate) fn new(definite_words: usize, words: usize) -> Self {
        debug_assert!(definite_words <= words);
        Cache {
            heads: HashMap::default(),
            entries: Vec::new(),
            pool: Vec::new(),
            definite_words,
            words,
        }
    }

    /// The key of (definite bits with Zobrist hash `bits_hash`, `state`).
    #[inline]
    pub(crate) fn key(bits_hash: u64, state: StateId) -> u64 {
        bits_hash ^ (u64::from(state) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// Records the configuration unless a recorded one dominates it; returns whether recorded.
    pub(crate) fn insert(&mut self, key: u64, state: StateId, bits: &[u64]) -> bool {
        debug_assert_eq!(bits.len(), self.words);
        let Cache {
            heads,
            entries,
            pool,
            definite_words,
            words,
        } = self;
        let (definite, pending) = bits.split_at(*definite_words);
        let head = heads.entry(key).or_insert(NIL);
        let mut prev = NIL;
        let mut cur = *head;
        while cur != NIL {
            let entry = entries[cur as usize];
            let stored = &pool[entry.offset..entry.offset + *words];
            if entry.state == state && stored[..*definite_words] == *definite {
                let stored_pending = &stored[*definite_words..];
                if is_subset(stored_pending, pending) {
                    return false;
                }
                if is_subset(pending, stored_pending) {
                    unlink(entries, head, prev, cur);
                    cur = entry.next;
                    continue;
                }
            }
            prev = cur;
            cur = entry.next;
        }
        let index = u32::try_from(entries.len()).unwrap_or(NIL - 1);
        entries.push(Entry {
            next: *head,
            state,
            offset: pool.len(),
        });
        pool.extend_from_slice(bits);
        *head = index;
        true
    }
}

fn unlink(entries: &mut [Entry], head: &mut u32, prev: u32, cur: u32) {
    let next = entries[cur as usize].next;
    if prev == NIL {
        *head = next;
    } else {
        entries[prev as usize].next = next;
    }
}

#[inline]
fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_configuration_is_recorded_once() {
        let mut c = Cache::new(1, 1);
        assert!(c.insert(Cache::key(5, 0), 0, &[0b101]));
        assert!(!c.insert(Cache::key(5, 0), 0, &[0b101]));
        assert!(c.insert(Cache::key(5, 1), 1, &[0b101]));
    }

    #[test]
    fn more_pending_ops_with_same_definite_ops_and_state_are_dominated() {
        let mut c = Cache::new(1, 2);
        let k = Cache::key(9, 3);
        assert!(c.insert(k, 3, &[0b11, 0b01]));
        assert!(!c.insert(k, 3, &[0b11, 0b11]));
        assert!(c.insert(k, 3, &[0b11, 0b10]));
        // The empty pending set dominates both, which are unlinked.
        assert!(c.insert(k, 3, &[0b11, 0b00]));
        assert!(!c.insert(k, 3, &[0b11, 0b10]));
        assert!(c.insert(k, 3, &[0b01, 0b00]));
    }
}
