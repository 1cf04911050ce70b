//! etcdctl's `table` format: olekukonko/tablewriter as etcdctl configures it (borders,
//! upper-case centred headers, right-aligned cells, cells over 30 columns wrapped at spaces
//! by tablewriter's minimum-raggedness rule). Only member and endpoint commands have tables,
//! as in etcdctl.

use cairn_client::pb::etcdserverpb as pb;

use super::rows::{self, Table};
use super::{EpHealth, EpStatus};

/// tablewriter's `MAX_ROW_WIDTH`: longer cells are wrapped.
const MAX_CELL_WIDTH: usize = 30;
/// tablewriter's penalty for a line longer than the limit.
const LONG_LINE_PENALTY: i64 = 100_000;

/// The member list as a table.
pub fn member_list(r: &pb::MemberListResponse) -> String {
    render(rows::member_list(r))
}

/// Endpoint health as a table.
pub fn endpoint_health(list: &[EpHealth]) -> String {
    render(rows::endpoint_health(list))
}

/// Endpoint status as a table.
pub fn endpoint_status(list: &[EpStatus]) -> String {
    render(rows::endpoint_status(list))
}

/// `snapshot status` as a table.
pub fn db_status(table: Table) -> String {
    render(table)
}

fn render((header, rows): Table) -> String {
    let header: Vec<Vec<String>> = header.iter().map(|h| wrap_cell(h)).collect();
    let rows: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| wrap_cell(c)).collect())
        .collect();
    let widths = column_widths(&header, &rows);
    let mut out = border(&widths);
    push_header(&mut out, &header, &widths);
    out.push_str(&border(&widths));
    for row in &rows {
        push_row(&mut out, row, &widths);
    }
    out.push_str(&border(&widths));
    out
}

fn border(widths: &[usize]) -> String {
    let mut line = String::from("+");
    for w in widths {
        line.push_str(&"-".repeat(w + 2));
        line.push('+');
    }
    line.push('\n');
    line
}

fn column_widths(header: &[Vec<String>], rows: &[Vec<Vec<String>>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|lines| max_width(lines)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(max_width(cell));
            }
        }
    }
    widths
}

fn max_width(lines: &[String]) -> usize {
    lines.iter().map(|l| width(l)).max().unwrap_or(0)
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Header cells: upper case, centred (extra space on the right).
fn push_header(out: &mut String, header: &[Vec<String>], widths: &[usize]) {
    let height = header.iter().map(Vec::len).max().unwrap_or(0);
    for line in 0..height {
        out.push('|');
        for (cell, w) in header.iter().zip(widths) {
            let text = cell.get(line).map_or(String::new(), |t| t.to_uppercase());
            let gap = w.saturating_sub(width(&text));
            let left = gap / 2;
            out.push_str(&format!(
                " {}{}{} |",
                " ".repeat(left),
                text,
                " ".repeat(gap - left)
            ));
        }
        out.push('\n');
    }
}

/// Row cells: right-aligned; a cell with fewer lines than the row is padded with "  ".
fn push_row(out: &mut String, row: &[Vec<String>], widths: &[usize]) {
    let height = row.iter().map(Vec::len).max().unwrap_or(0);
    for line in 0..height {
        out.push('|');
        for (cell, w) in row.iter().zip(widths) {
            let text = cell.get(line).map_or("  ", String::as_str);
            out.push_str(&format!(
                " {}{} |",
                " ".repeat(w.saturating_sub(width(text))),
                text
            ));
        }
        out.push('\n');
    }
}

/// tablewriter's `parseDimension` with auto-wrap: the cell's lines.
fn wrap_cell(text: &str) -> Vec<String> {
    let paragraphs: Vec<&str> = text.split('\n').collect();
    let limit = max_width(&paragraphs.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        .min(MAX_CELL_WIDTH);
    let mut lines = Vec::new();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            lines.push(" ".to_string());
        }
        lines.extend(wrap_string(paragraph, limit));
    }
    lines
}

/// tablewriter's `WrapString`: words joined into lines no wider than `limit` (or the
/// longest word), breaking where the sum of squared slack is least.
fn wrap_string(s: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = s.split(' ').collect();
    let limit = words.iter().map(|w| width(w)).max().unwrap_or(0).max(limit);
    let breaks = wrap_words(&words, limit);
    let mut lines = Vec::new();
    let mut start = 0;
    while start < words.len() {
        let end = breaks[start];
        lines.push(words[start..end].join(" "));
        start = end;
    }
    lines
}

/// tablewriter's `WrapWords` (minimum raggedness): for each word, where its line ends.
fn wrap_words(words: &[&str], limit: usize) -> Vec<usize> {
    let n = words.len();
    let limit = limit as i64;
    let line_len = |i: usize, j: usize| -> i64 {
        let letters: usize = words[i..=j].iter().map(|w| width(w)).sum();
        (letters + (j - i)) as i64
    };
    let mut next_break = vec![n; n];
    let mut cost = vec![i64::from(i32::MAX); n + 1];
    cost[n] = 0;
    for i in (0..n).rev() {
        if line_len(i, n - 1) <= limit {
            cost[i] = 0;
            next_break[i] = n;
            continue;
        }
        for j in i + 1..n {
            let slack = limit - line_len(i, j - 1);
            let mut c = slack * slack + cost[j];
            if line_len(i, j - 1) > limit {
                c += LONG_LINE_PENALTY;
            }
            if c < cost[i] {
                cost[i] = c;
                next_break[i] = j;
            }
        }
    }
    next_break
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_table_matches_etcdctl() {
        let r = pb::MemberListResponse {
            header: None,
            members: vec![pb::Member {
                id: 0x2e1259d415f2a040,
                name: "default".into(),
                peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
                client_ur_ls: vec!["http://127.0.0.1:23790".into()],
                is_learner: false,
            }],
        };
        let want = "\
+------------------+---------+---------+------------------------+------------------------+------------+
|        ID        | STATUS  |  NAME   |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+---------+------------------------+------------------------+------------+
| 2e1259d415f2a040 | started | default | http://127.0.0.1:23800 | http://127.0.0.1:23790 |      false |
+------------------+---------+---------+------------------------+------------------------+------------+
";
        assert_eq!(member_list(&r), want);
    }

    #[test]
    fn long_cells_wrap_at_spaces() {
        assert_eq!(
            wrap_cell("rpc error: code = Unavailable desc = connection refused"),
            ["rpc error: code = Unavailable", "desc = connection refused"]
        );
        assert_eq!(wrap_cell("short"), ["short"]);
        assert_eq!(wrap_cell(""), [""]);
    }

    #[test]
    fn empty_tables_have_header_and_borders() {
        let out = endpoint_health(&[]);
        assert_eq!(out.lines().count(), 4);
    }
}
