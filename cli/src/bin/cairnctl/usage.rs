//! Usage text in etcdctl's format (`etcdctl/ctlv3/help.go`: NAME, USAGE, VERSION,
//! COMMANDS, DESCRIPTION, OPTIONS, GLOBAL OPTIONS), aligned by Go's tabwriter rules, so
//! `cairnctl put --help` reads exactly like `etcdctl put --help` apart from the program name.

use crate::commands::{Command, HELP_FLAG};
use crate::flags::{FlagDef, FlagKind};
use crate::go_strconv;
use crate::tabwriter;

/// The API version etcdctl 3.4 reports, which cairnctl speaks.
pub const API_VERSION: &str = "3.4";

/// The usage text of the last command of `path` (root first).
pub fn render(path: &[&Command]) -> String {
    let Some((command, ancestors)) = path.split_last() else {
        return String::new();
    };
    let mut text = String::new();
    text.push_str(&format!(
        "NAME:\n\t{} - {}\n\n",
        relative_name(path, 1),
        command.short
    ));
    text.push_str(&format!("USAGE:\n\t{}\n", use_line(path)));
    if ancestors.is_empty() {
        text.push_str(&format!("\nVERSION:\n\t{}\n", env!("CARGO_PKG_VERSION")));
    }
    if !command.children.is_empty() {
        text.push_str(&format!("\nAPI VERSION:\n\t{API_VERSION}\n"));
        text.push_str("\n\nCOMMANDS:\n");
        push_subcommands(&mut text, command, &mut Vec::new());
    }
    push_description(&mut text, command.long);
    text.push_str("\nOPTIONS:\n");
    text.push_str(&flag_lines(&local_flags(command), command));
    let inherited = inherited_flags(ancestors);
    if !inherited.is_empty() {
        text.push_str("\nGLOBAL OPTIONS:\n");
        text.push_str(&flag_lines(&inherited, command));
    }
    text.push('\n');
    tabwriter::align(&text)
}

/// The command's name as cobra's `CommandPath` from `path[skip]` on, joined by spaces.
fn relative_name(path: &[&Command], skip: usize) -> String {
    let names: Vec<&str> = path.iter().skip(skip).map(|c| c.name).collect();
    match names.is_empty() {
        true => path.first().map_or(String::new(), |c| c.name.to_string()),
        false => names.join(" "),
    }
}

/// cobra's `UseLine`: the parents' path, the command's `Use`, and `[flags]`.
fn use_line(path: &[&Command]) -> String {
    let Some((command, ancestors)) = path.split_last() else {
        return String::new();
    };
    let mut line = ancestors
        .iter()
        .map(|c| c.name)
        .chain([command.use_line])
        .collect::<Vec<_>>()
        .join(" ");
    if !line.contains("[flags]") {
        line.push_str(" [flags]");
    }
    line
}

/// Every runnable descendant, depth first, as `\t<path below command>\t<short>`.
fn push_subcommands<'a>(text: &mut String, command: &'a Command, below: &mut Vec<&'a str>) {
    for child in command.children {
        below.push(child.name);
        if child.runnable() {
            text.push_str(&format!("\t{}\t{}\n", below.join(" "), child.short));
        }
        push_subcommands(text, child, below);
        below.pop();
    }
}

fn push_description(text: &mut String, long: &str) {
    if long.is_empty() {
        return;
    }
    text.push_str("\nDESCRIPTION:\n");
    for line in long.trim_matches(['\n', '\t', ' ']).split('\n') {
        text.push_str(&format!("\t{line}\n"));
    }
}

/// The command's own flags and the ones it passes down, plus `--help`, sorted by name.
pub fn local_flags(command: &Command) -> Vec<FlagDef> {
    let mut flags: Vec<FlagDef> = command
        .flags
        .iter()
        .chain(command.persistent)
        .copied()
        .collect();
    flags.push(HELP_FLAG);
    flags.sort_by_key(|f| f.name);
    flags
}

/// Flags passed down from the ancestors, sorted by name.
pub fn inherited_flags(ancestors: &[&Command]) -> Vec<FlagDef> {
    let mut flags: Vec<FlagDef> = ancestors
        .iter()
        .flat_map(|c| c.persistent.iter().copied())
        .collect();
    flags.sort_by_key(|f| f.name);
    flags
}

/// etcdctl's `etcdFlagUsages`: one tab-separated line per flag.
fn flag_lines(flags: &[FlagDef], command: &Command) -> String {
    flags.iter().map(|f| flag_line(f, command)).collect()
}

fn flag_line(flag: &FlagDef, command: &Command) -> String {
    let names = match flag.shorthand {
        Some(s) => format!("  -{s}, --{}", flag.name),
        None => format!("      --{}", flag.name),
    };
    let default = match flag.kind {
        FlagKind::Str => go_strconv::quote(flag.default),
        _ => flag.default.to_string(),
    };
    let value = match flag.kind {
        FlagKind::Bool => format!("[={default}]"),
        _ => format!("={default}"),
    };
    let usage = match flag.name {
        "help" => format!("help for {}", command.name),
        _ => flag.usage.to_string(),
    };
    format!("{names}{value}\t{usage}\n")
}

/// cobra's default usage template for a command under a nameless root, as etcdctl prints
/// it (to stderr) when a `txn` request line has a bad flag: `Usage:`, the use line, and the
/// `Flags:` block in pflag's `FlagUsages` layout.
pub fn cobra_default_usage(command: &Command) -> String {
    let mut text = format!("Usage:\n   {} [flags]\n", command.use_line);
    text.push_str("\nFlags:\n");
    text.push_str(pflag_usages(&local_flags(command), command).trim_end());
    text.push('\n');
    text
}

/// pflag's `FlagUsages`: names and value types padded to a common width, then the help and
/// any non-zero default.
fn pflag_usages(flags: &[FlagDef], command: &Command) -> String {
    let heads: Vec<String> = flags.iter().map(pflag_head).collect();
    let width = heads.iter().map(String::len).max().unwrap_or(0);
    let mut text = String::new();
    for (flag, head) in flags.iter().zip(&heads) {
        let usage = match flag.name {
            "help" => format!("help for {}", command.name),
            _ => flag.usage.to_string(),
        };
        let padding = " ".repeat(width - head.len() + 1);
        text.push_str(&format!(
            "{head} {padding} {usage}{}\n",
            pflag_default(flag)
        ));
    }
    text
}

fn pflag_head(flag: &FlagDef) -> String {
    let names = match flag.shorthand {
        Some(s) => format!("  -{s}, --{}", flag.name),
        None => format!("      --{}", flag.name),
    };
    let type_name = match flag.kind {
        FlagKind::Bool => "",
        FlagKind::Str => " string",
        FlagKind::Int64 => " int",
        FlagKind::Duration => " duration",
        FlagKind::StrList => " strings",
    };
    format!("{names}{type_name}")
}

fn pflag_default(flag: &FlagDef) -> String {
    let zero = match flag.kind {
        FlagKind::Bool => flag.default == "false",
        FlagKind::Str => flag.default.is_empty(),
        FlagKind::Int64 => flag.default == "0",
        FlagKind::Duration => flag.default == "0s" || flag.default == "0",
        FlagKind::StrList => flag.default == "[]",
    };
    match (zero, flag.kind) {
        (true, _) => String::new(),
        (false, FlagKind::Str) => format!(" (default {})", go_strconv::quote(flag.default)),
        (false, _) => format!(" (default {})", flag.default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::ROOT;

    fn path(names: &[&str]) -> Vec<&'static Command> {
        let mut path = vec![&ROOT];
        for name in names {
            let parent = path[path.len() - 1];
            let child = parent
                .children
                .iter()
                .find(|c| c.name == *name)
                .expect("test names exist");
            path.push(child);
        }
        path
    }

    #[test]
    fn put_usage_matches_etcdctl_layout() {
        let text = render(&path(&["put"]));
        let expected_head = "NAME:\n\tput - Puts the given key into the store\n\nUSAGE:\n\tcairnctl put [options] <key> <value> (<value> can also be given from stdin) [flags]\n\nDESCRIPTION:\n\tPuts the given key into the store.\n\t\n";
        assert!(text.starts_with(expected_head), "{text}");
        assert!(text.contains("OPTIONS:\n  -h, --help[=false]\t\thelp for put\n      --ignore-lease[=false]\tupdates the key using its current lease\n"));
        assert!(
            text.contains(
                "      --lease=\"0\"\t\tlease ID (in hexadecimal) to attach to the key\n"
            )
        );
        assert!(text.contains("  -w, --write-out=\"simple\"\t\t\tset the output format (fields, json, protobuf, simple, table)\n\n"));
    }

    #[test]
    fn txn_request_usage_is_cobras_default_layout() {
        let get = crate::commands::TXN_REQUESTS
            .children
            .iter()
            .find(|c| c.name == "get")
            .expect("get exists");
        let text = cobra_default_usage(get);
        assert!(text.starts_with("Usage:\n   get [options] <key> [range_end] [flags]\n\nFlags:\n      --consistency string   Linearizable(l) or Serializable(s) (default \"l\")\n"), "{text}");
        assert!(
            text.ends_with(
                "      --sort-by string       Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn group_usage_lists_subcommands() {
        let text = render(&path(&["endpoint"]));
        assert!(text.contains("API VERSION:\n\t3.4\n\n\nCOMMANDS:\n\thashkv\tPrints the KV history hash for each endpoint in --endpoints\n\thealth\t"));
        assert!(text.contains("OPTIONS:\n      --cluster[=false]\tuse all endpoints from the cluster member list\n  -h, --help[=false]\thelp for endpoint\n"));
    }

    #[test]
    fn subcommand_inherits_the_groups_persistent_flags() {
        let text = render(&path(&["endpoint", "status"]));
        assert!(text.starts_with("NAME:\n\tendpoint status - Prints out the status"));
        assert!(text.contains("USAGE:\n\tcairnctl endpoint status [flags]\n"));
        let global = text.split("GLOBAL OPTIONS:\n").nth(1).unwrap_or_default();
        assert!(global.contains("--cluster[=false]"));
    }
}
