//! The violation report: what a person reads when a history is not linearizable.
//!
//! [`summary`] is the short text for the terminal; [`html`] the self-contained page (inline
//! CSS and SVG, no scripts or external files) with a timeline per process of the smallest
//! failing partition, the longest linearizable prefix, and the ops that cannot be ordered
//! highlighted, in the spirit of porcupine's visualisation.

mod html;
mod summary;

pub use html::html;
pub use summary::summary;

use crate::history::{History, Op};
use crate::linearizability::Violation;

/// How an op of the failing partition figures in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// In the longest linearizable prefix, at this position (0-based).
    Linearized(usize),
    /// Cannot be ordered after the prefix.
    Unorderable,
    /// Failed: never took effect.
    Failed,
    /// Not placed, outcome unknown.
    Pending,
    /// Not placed.
    Other,
}

/// The mark of history op `index` in `violation`.
pub(crate) fn mark(history: &History, violation: &Violation, index: usize) -> Mark {
    if let Some(pos) = violation.prefix.iter().position(|s| s.op == index) {
        return Mark::Linearized(pos);
    }
    if violation.unorderable.contains(&index) {
        return Mark::Unorderable;
    }
    match history.ops[index].outcome {
        crate::Outcome::Fail => Mark::Failed,
        crate::Outcome::Info => Mark::Pending,
        crate::Outcome::Ok => Mark::Other,
    }
}

/// `op 12 (process 3): read x -> 1, lines 40-45`.
pub(crate) fn op_line(index: usize, op: &Op) -> String {
    let source = op.source();
    let source = if source.is_empty() {
        String::new()
    } else {
        format!(", {source}")
    };
    format!(
        "op {index} (process {}): {}{source}",
        op.process,
        op.describe()
    )
}

/// `key x` or `the register`.
pub(crate) fn key_name(key: Option<&str>) -> String {
    key.map_or_else(|| "the register".to_owned(), |k| format!("key {k:?}"))
}
