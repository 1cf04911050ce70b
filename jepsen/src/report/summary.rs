//! The short text report of a check, for the terminal.

use super::{key_name, op_line};
use crate::history::History;
use crate::linearizability::{CheckResult, Verdict};

const PREFIX_TAIL_OPS: usize = 5;

/// A few lines saying what the verdict is and, for a violation, where it is.
pub fn summary(file: &str, history: &History, result: &CheckResult) -> String {
    let Some(v) = &result.violation else {
        return format!(
            "{file}: {} ({} ops, {} partitions checked, {} search steps)\n",
            result.verdict,
            history.ops.len(),
            result.partitions.len(),
            result.steps
        );
    };
    debug_assert_eq!(result.verdict, Verdict::Violation);
    let mut out = format!(
        "{file}: violation on {} ({} ops in the smallest failing partition)\n",
        key_name(v.key.as_deref()),
        v.ops.len()
    );
    out.push_str(&format!(
        "  longest linearizable prefix: {} ops",
        v.prefix.len()
    ));
    let skipped = v.prefix.len().saturating_sub(PREFIX_TAIL_OPS);
    if skipped > 0 {
        out.push_str(&format!(", the last {PREFIX_TAIL_OPS}:"));
    }
    out.push('\n');
    for step in &v.prefix[skipped..] {
        let op = &history.ops[step.op];
        out.push_str(&format!(
            "    {}  => state {}\n",
            op_line(step.op, op),
            step.state
        ));
    }
    out.push_str("  cannot be ordered after it:\n");
    for &i in &v.unorderable {
        out.push_str(&format!("    {}\n", op_line(i, &history.ops[i])));
    }
    out
}
