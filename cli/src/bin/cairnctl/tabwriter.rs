//! Go's `text/tabwriter` as etcdctl configures it for help text (minwidth 0, tabwidth 8,
//! padding 1, padchar '\t', no flags): tab-terminated cells in consecutive lines form
//! columns, each padded with tabs to a common width, so `cairnctl --help` lines up exactly
//! as `etcdctl --help` does.

const TAB_WIDTH: usize = 8;
const PADDING: usize = 1;

/// One line split into cells; every cell but the last was terminated by a tab.
type Line = Vec<String>;

/// Aligns `text` as Go's tabwriter would.
pub fn align(text: &str) -> String {
    let mut lines: Vec<Line> = text
        .split('\n')
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    // `split` yields a last empty line after a final '\n'; it holds no cells.
    let ends_with_newline = text.ends_with('\n');
    if ends_with_newline {
        lines.pop();
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    if !ends_with_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Go's `Writer.format`: lays out lines `[line0, line1)` given the widths of the columns
/// to the left, discovering column blocks recursively.
fn format_block(
    lines: &[Line],
    line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if lines[this].len() <= column + 1 {
            write_line(&lines[this], widths, out);
            this += 1;
            continue;
        }
        // A block of consecutive lines that all have a cell in this column.
        let start = this;
        let mut width = 0;
        while this < line1 && lines[this].len() > column + 1 {
            width = width.max(cell_width(&lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, start, this, widths, out);
        widths.pop();
    }
}

fn write_line(line: &Line, widths: &[usize], out: &mut String) {
    for (j, cell) in line.iter().enumerate() {
        out.push_str(cell);
        if j + 1 < line.len() {
            let width = widths.get(j).copied().unwrap_or(0);
            push_tabs(out, cell_width(cell), width);
        }
    }
    out.push('\n');
}

/// Tab padding: the cell is widened to the next multiple of the tab width.
fn push_tabs(out: &mut String, text_width: usize, cell_width: usize) {
    let cell_width = cell_width.div_ceil(TAB_WIDTH) * TAB_WIDTH;
    let padding = cell_width.saturating_sub(text_width);
    for _ in 0..padding.div_ceil(TAB_WIDTH) {
        out.push('\t');
    }
}

fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_lines_align_to_the_widest_cell() {
        let text = "OPTIONS:\n      --consistency=\"l\"\tLinearizable\n      --print-value-only[=false]\tOnly\n";
        let want = "OPTIONS:\n      --consistency=\"l\"\t\t\tLinearizable\n      --print-value-only[=false]\tOnly\n";
        assert_eq!(align(text), want);
    }

    #[test]
    fn leading_tab_lines_indent_by_one_tab() {
        assert_eq!(
            align("NAME:\n\tget - Gets\n\nUSAGE:\n"),
            "NAME:\n\tget - Gets\n\nUSAGE:\n"
        );
    }

    #[test]
    fn nested_columns_align_within_their_block() {
        let text = "\thashkv\tPrints\n\thealth\tChecks\n";
        assert_eq!(align(text), "\thashkv\tPrints\n\thealth\tChecks\n");
    }
}
