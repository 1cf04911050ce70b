//! The self-contained HTML page of a violation: inline CSS and SVG, no scripts, no fetches.
//!
//! The timeline has one row per process of the smallest failing partition; each op is a bar
//! from invocation to completion (ops of unknown outcome run to the right edge, dashed).
//! Times are drawn by rank, not to scale, so bursts stay readable. Bars of the longest
//! linearizable prefix are green and numbered in linearization order; the ops that cannot be
//! ordered after it are red. Every bar has a tooltip with the op's details.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Mark, key_name, mark, op_line};
use crate::history::{Call, History, Op, Time};
use crate::linearizability::{CheckResult, Violation};

const LEFT_PX: usize = 110;
const TOP_PX: usize = 30;
const ROW_PX: usize = 28;
const BAR_PX: usize = 18;
const TIMELINE_TARGET_PX: usize = 1600;
const MIN_STEP_PX: usize = 14;
const MAX_STEP_PX: usize = 40;
const LABEL_CHAR_PX: usize = 6;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\
th{background:#f3f3f3}.legend span{display:inline-block;padding:1px 8px;margin-right:8px;border:1px solid #888}\
svg text{font-size:10px;font-family:monospace}svg .proc{font-size:11px;font-family:sans-serif}\
.lin{fill:#a8dab5;stroke:#2e7d32}.bad{fill:#f28b82;stroke:#b71c1c;stroke-width:2.5}\
.fail{fill:#eeeeee;stroke:#aaa;stroke-dasharray:3 2}.pending{fill:#fde293;stroke:#b08800;stroke-dasharray:5 3}\
.other{fill:#c6dafc;stroke:#1a56c4}span.lin{background:#a8dab5}span.bad{background:#f28b82}\
span.fail{background:#eee}span.pending{background:#fde293}span.other{background:#c6dafc}\
tr.bad td{background:#fde7e5}";

/// The page for `result`'s violation (a short page if the history has none).
pub fn html(file: &str, history: &History, result: &CheckResult) -> String {
    let mut page = String::new();
    let title = format!("{file}: {}", result.verdict);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&format!("cairn-jepsen: {title}")),
        escape(&title)
    );
    match &result.violation {
        Some(v) => violation_body(&mut page, history, result, v),
        None => page.push_str("<p>No violation to show.</p>\n"),
    }
    page.push_str("</body></html>\n");
    page
}

fn violation_body(page: &mut String, history: &History, result: &CheckResult, v: &Violation) {
    let _ = writeln!(
        page,
        "<p>Smallest failing partition: <b>{}</b>, {} of the history's {} ops \
         (partitions checked: {}). Longest linearizable prefix: <b>{} ops</b>. \
         Ops that cannot be ordered after it: <b>{}</b>.</p>",
        escape(&key_name(v.key.as_deref())),
        v.ops.len(),
        history.ops.len(),
        result.partitions.len(),
        v.prefix.len(),
        v.unorderable.len()
    );
    page.push_str(
        "<h2>Timeline</h2>\n<p class=\"legend\"><span class=\"lin\">linearized (prefix order)</span>\
         <span class=\"bad\">cannot be ordered</span><span class=\"other\">not reached</span>\
         <span class=\"pending\">unknown outcome</span><span class=\"fail\">failed</span></p>\n",
    );
    timeline(page, history, v);
    prefix_table(page, history, v);
    unorderable_table(page, history, v);
}

/// Time ranks of the partition's events; the extra last rank is "the end" for pending ops.
fn time_ranks(history: &History, ops: &[usize]) -> BTreeMap<Time, usize> {
    let mut times: Vec<Time> = ops
        .iter()
        .flat_map(|&i| {
            [
                Some(history.ops[i].invoke_time),
                history.ops[i].complete_time,
            ]
        })
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    times
        .into_iter()
        .enumerate()
        .map(|(rank, t)| (t, rank))
        .collect()
}

fn timeline(page: &mut String, history: &History, v: &Violation) {
    let ranks = time_ranks(history, &v.ops);
    let end_rank = ranks.len();
    let step = (TIMELINE_TARGET_PX / (end_rank + 1)).clamp(MIN_STEP_PX, MAX_STEP_PX);
    let mut rows: Vec<u64> = v.ops.iter().map(|&i| history.ops[i].process).collect();
    rows.sort_unstable();
    rows.dedup();
    let width = LEFT_PX + (end_rank + 1) * step + 20;
    let height = TOP_PX + rows.len() * ROW_PX + 10;
    let _ = writeln!(
        page,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">"
    );
    for (row, process) in rows.iter().enumerate() {
        let y = TOP_PX + row * ROW_PX;
        let _ = writeln!(
            page,
            "<text class=\"proc\" x=\"4\" y=\"{}\">process {process}</text>\
             <line x1=\"{LEFT_PX}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#eee\"/>",
            y + BAR_PX - 5,
            width - 10,
            y + BAR_PX / 2,
            y + BAR_PX / 2
        );
    }
    let scale = Scale {
        ranks: &ranks,
        step,
        end_rank,
        width,
    };
    for bar in bars(history, v, &rows, &scale) {
        draw_bar(page, history, v, &bar);
    }
    page.push_str("</svg>\n");
}

/// Maps times to x positions.
struct Scale<'a> {
    ranks: &'a BTreeMap<Time, usize>,
    step: usize,
    end_rank: usize,
    width: usize,
}

impl Scale<'_> {
    fn x(&self, time: Option<Time>) -> usize {
        let rank = time
            .and_then(|t| self.ranks.get(&t).copied())
            .unwrap_or(self.end_rank);
        LEFT_PX + rank * self.step
    }
}

/// One op's bar, and how far right its label may run before the row's next bar.
struct Bar {
    op: usize,
    x1: usize,
    x2: usize,
    y: usize,
    label_room: usize,
}

fn bars(history: &History, v: &Violation, rows: &[u64], scale: &Scale) -> Vec<Bar> {
    let mut bars: Vec<Bar> = v
        .ops
        .iter()
        .map(|&i| {
            let op = &history.ops[i];
            let row = rows.binary_search(&op.process).unwrap_or(0);
            let x1 = scale.x(Some(op.invoke_time));
            let end = match op.outcome {
                crate::Outcome::Info => None,
                _ => op.complete_time,
            };
            let x2 = scale.x(end).max(x1 + 4);
            Bar {
                op: i,
                x1,
                x2,
                y: TOP_PX + row * ROW_PX,
                label_room: 0,
            }
        })
        .collect();
    bars.sort_by_key(|b| (b.y, b.x1, b.op));
    for i in 0..bars.len() {
        let next = bars
            .get(i + 1)
            .filter(|n| n.y == bars[i].y)
            .map_or(scale.width, |n| n.x1);
        bars[i].label_room = next.saturating_sub(bars[i].x1);
    }
    bars
}

fn draw_bar(page: &mut String, history: &History, v: &Violation, bar: &Bar) {
    let op = &history.ops[bar.op];
    let m = mark(history, v, bar.op);
    let (class, number) = match m {
        Mark::Linearized(pos) => ("lin", Some(pos + 1)),
        Mark::Unorderable => ("bad", None),
        Mark::Failed => ("fail", None),
        Mark::Pending => ("pending", None),
        Mark::Other => ("other", None),
    };
    let label = match number {
        Some(n) => format!("{n}: {}", short_label(op)),
        None => short_label(op),
    };
    let _ = write!(
        page,
        "<g><title>{}</title><rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{BAR_PX}\" rx=\"3\"/>",
        escape(&tooltip(v, bar.op, op, m)),
        bar.x1,
        bar.y,
        bar.x2 - bar.x1
    );
    if label.len() * LABEL_CHAR_PX + 6 <= bar.label_room {
        let _ = write!(
            page,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            bar.x1 + 3,
            bar.y + BAR_PX - 5,
            escape(&label)
        );
    }
    page.push_str("</g>\n");
}

fn tooltip(v: &Violation, i: usize, op: &Op, m: Mark) -> String {
    let mut text = op_line(i, op);
    match m {
        Mark::Linearized(pos) => {
            let _ = write!(
                text,
                "\nlinearized #{}, state after: {}",
                pos + 1,
                v.prefix[pos].state
            );
        }
        Mark::Unorderable => {
            text.push_str("\ncannot be ordered after the longest linearizable prefix")
        }
        Mark::Failed => text.push_str("\nfailed: never took effect"),
        Mark::Pending => {
            text.push_str("\nunknown outcome: may take effect any time after its call, or never")
        }
        Mark::Other => {}
    }
    text
}

/// `w 3`, `r 2`, `cas 1>4`, `app "a"`, `r ?`.
fn short_label(op: &Op) -> String {
    match &op.call {
        Call::Read { .. } => match &op.output {
            Some(v) => format!("r {v}"),
            None => "r ?".to_owned(),
        },
        Call::Write { value, .. } => format!("w {value}"),
        Call::Cas { expected, new, .. } => format!("cas {expected}>{new}"),
        Call::Append { value, .. } => format!("app {value}"),
    }
}

fn prefix_table(page: &mut String, history: &History, v: &Violation) {
    page.push_str("<h2>Longest linearizable prefix</h2>\n<table><tr><th>#</th><th>op</th><th>state after</th></tr>\n");
    for (pos, step) in v.prefix.iter().enumerate() {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            pos + 1,
            escape(&op_line(step.op, &history.ops[step.op])),
            escape(&step.state.to_string())
        );
    }
    page.push_str("</table>\n");
}

fn unorderable_table(page: &mut String, history: &History, v: &Violation) {
    let state = v.prefix.last().map_or_else(
        || "the initial state".to_owned(),
        |s| format!("state {}", s.state),
    );
    let _ = writeln!(
        page,
        "<h2>Cannot be ordered after the prefix</h2>\n<p>After the prefix, in {}, none of these can be linearized next, \
         and the first to complete had to be.</p>\n<table><tr><th>op</th></tr>",
        escape(&state)
    );
    for &i in &v.unorderable {
        let _ = writeln!(
            page,
            "<tr class=\"bad\"><td>{}</td></tr>",
            escape(&op_line(i, &history.ops[i]))
        );
    }
    page.push_str("</table>\n");
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
