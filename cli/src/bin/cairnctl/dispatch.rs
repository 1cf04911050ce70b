//! Finding the command a command line names and parsing its flags, the way cobra does for
//! etcdctl: flags may come before or after command names; a unique prefix selects a command
//! (`mem li` is `member list`); unknown commands are refused with cobra's message and its
//! "Did you mean this?" suggestions; flag errors print the message, the usage, and the
//! message again, exactly as etcdctl's output shows.

use crate::commands::{Action, Command, HELP_FLAG, PROGRAM, REGISTRATION_ORDER, ROOT};
use crate::console::Console;
use crate::exit;
use crate::flags::{self, FlagDef, FlagKind, FlagValues};
use crate::usage;

/// A command line resolved to one command with its parsed flags.
#[derive(Debug)]
pub struct Invocation {
    /// The command and its ancestors, root first.
    pub path: Vec<&'static Command>,
    /// Every flag in scope for the command, parsed.
    pub values: FlagValues,
    /// The positional arguments.
    pub args: Vec<String>,
    /// How many positional arguments came before a `--`, if there was one.
    pub args_at_dash: Option<usize>,
}

impl Invocation {
    /// The command itself.
    pub fn command(&self) -> &'static Command {
        self.path.last().copied().unwrap_or(&ROOT)
    }

    /// The flags the command inherits (for `ETCDCTL_*` variables).
    pub fn inherited_flags(&self) -> Vec<FlagDef> {
        let ancestors = &self.path[..self.path.len().saturating_sub(1)];
        usage::inherited_flags(ancestors)
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Dispatch {
    /// Run this command.
    Run(Invocation),
    /// Already handled (help shown, or an error reported); exit with this code.
    Exit(i32),
}

/// Resolves `argv` (without the program name), reporting errors and help on `console`.
pub fn dispatch(argv: &[String], console: &mut Console<'_>) -> Dispatch {
    let (path, rest) = find(argv);
    if let Err(message) = check_unknown_command(&path, &rest) {
        console.err(&format!(
            "Error: {message}\nRun '{PROGRAM} --help' for usage.\n"
        ));
        console.err(&format!("Error: {message}\n"));
        return Dispatch::Exit(exit::ERROR);
    }
    let command = path.last().copied().unwrap_or(&ROOT);
    if command.action == Action::NotYet {
        let name = path
            .iter()
            .skip(1)
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(" ");
        console.err(&format!(
            "Error: \"{name}\" is not implemented by {PROGRAM} yet\n"
        ));
        return Dispatch::Exit(exit::ERROR);
    }
    let parsed = match flags::parse(&flag_scope(&path), &rest) {
        Ok(parsed) => parsed,
        Err(message) => return flag_error(&path, &message, console),
    };
    if parsed.values.bool("help") || command.action == Action::Group {
        console.out(&usage::render(&path));
        return Dispatch::Exit(exit::SUCCESS);
    }
    if command.action == Action::Help {
        return help_command(&parsed.args, console);
    }
    Dispatch::Run(Invocation {
        path,
        values: parsed.values,
        args: parsed.args,
        args_at_dash: parsed.args_at_dash,
    })
}

/// cobra's flag-error report: the error, the usage (on stdout), a blank line, the error.
fn flag_error(path: &[&'static Command], message: &str, console: &mut Console<'_>) -> Dispatch {
    console.err(&format!("Error: {message}\n"));
    console.out(&usage::render(path));
    console.err("\n");
    console.err(&format!("Error: {message}\n"));
    Dispatch::Exit(exit::ERROR)
}

/// cobra's `help [command]`.
fn help_command(topic: &[String], console: &mut Console<'_>) -> Dispatch {
    let (path, rest) = find(topic);
    if check_unknown_command(&path, &rest).is_err() {
        let quoted: Vec<String> = topic.iter().map(|t| format!("`{t}`")).collect();
        console.err(&format!("Unknown help topic [{}]\n", quoted.join(" ")));
        console.out(&usage::render(&[&ROOT]));
    } else {
        console.out(&usage::render(&path));
    }
    Dispatch::Exit(exit::SUCCESS)
}

/// Every flag a command accepts: its own, its ancestors' persistent ones, and `--help`.
pub fn flag_scope(path: &[&Command]) -> Vec<FlagDef> {
    let mut defs: Vec<FlagDef> = path
        .iter()
        .flat_map(|c| c.persistent.iter().copied())
        .collect();
    if let Some(command) = path.last() {
        defs.extend(command.flags.iter().copied());
    }
    defs.push(HELP_FLAG);
    defs
}

fn find(argv: &[String]) -> (Vec<&'static Command>, Vec<String>) {
    find_in(&ROOT, argv)
}

/// cobra's `Find`: walks down the tree from `root` by the non-flag words of `argv`; returns
/// the path and the arguments left once the command names are removed.
pub fn find_in(root: &'static Command, argv: &[String]) -> (Vec<&'static Command>, Vec<String>) {
    let mut path: Vec<&'static Command> = vec![root];
    let mut args = argv.to_vec();
    loop {
        let words = strip_flags(&args, &flag_scope(&path));
        let current = path.last().copied().unwrap_or(root);
        let Some(next) = words
            .first()
            .and_then(|w| find_next(current, w).map(|c| (w.clone(), c)))
        else {
            return (path, args);
        };
        if let Some(i) = args.iter().position(|a| *a == next.0) {
            args.remove(i);
        }
        path.push(next.1);
    }
}

/// cobra's `legacyArgs`: at the root, a leftover word is an unknown command.
pub fn check_unknown_command(path: &[&'static Command], rest: &[String]) -> Result<(), String> {
    if path.len() > 1 {
        return Ok(());
    }
    let words = strip_flags(rest, &flag_scope(path));
    match words.first() {
        None => Ok(()),
        Some(word) => Err(format!(
            "unknown command \"{word}\" for \"{PROGRAM}\"{}",
            suggestions(word)
        )),
    }
}

/// cobra's `stripFlags`: the words of `args` that are not flags or flag values. A flag
/// without `=` that is not boolean is assumed to take the next word.
fn strip_flags(args: &[String], scope: &[FlagDef]) -> Vec<String> {
    let takes_value = |def: Option<&FlagDef>| def.is_none_or(|d| d.kind != FlagKind::Bool);
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s == "--" {
            break;
        }
        let long_with_value = s.starts_with("--")
            && !s.contains('=')
            && takes_value(scope.iter().find(|d| d.name == &s[2..]));
        let short_with_value = s.starts_with('-')
            && !s.contains('=')
            && s.chars().count() == 2
            && takes_value(
                scope
                    .iter()
                    .find(|d| s[1..].starts_with(d.shorthand.unwrap_or('\0'))),
            );
        if long_with_value || short_with_value {
            if args.len() - i <= 1 {
                break;
            }
            i += 1;
            continue;
        }
        if !s.is_empty() && !s.starts_with('-') {
            words.push(s.clone());
        }
    }
    words
}

/// cobra's `findNext` with prefix matching on: an exact name, or the only name with this
/// prefix.
fn find_next(command: &'static Command, word: &str) -> Option<&'static Command> {
    if let Some(exact) = command.children.iter().find(|c| c.name == word) {
        return Some(exact);
    }
    let mut matches = command.children.iter().filter(|c| c.name.starts_with(word));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// cobra's suggestions: commands within edit distance 2, or that start with the word.
fn suggestions(word: &str) -> String {
    let lower = word.to_lowercase();
    let names: Vec<&str> = REGISTRATION_ORDER
        .iter()
        .filter_map(|name| ROOT.children.iter().find(|c| c.name == *name))
        .filter(|c| c.action != Action::Help)
        .filter(|c| levenshtein(&lower, c.name) <= 2 || c.name.to_lowercase().starts_with(&lower))
        .map(|c| c.name)
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let mut text = String::from("\n\nDid you mean this?\n");
    for name in names {
        text.push_str(&format!("\t{name}\n"));
    }
    text
}

/// Byte-wise edit distance, as cobra's `ld`.
fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            current[j + 1] = if ca == cb {
                previous[j]
            } else {
                1 + previous[j].min(previous[j + 1]).min(current[j])
            };
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn names(path: &[&Command]) -> Vec<&'static str> {
        path.iter().skip(1).map(|c| c.name).collect()
    }

    #[test]
    fn flags_may_precede_the_command() {
        let (path, rest) = find(&words("--endpoints x:1 -w json get k --prefix"));
        assert_eq!(names(&path), ["get"]);
        assert_eq!(rest, words("--endpoints x:1 -w json k --prefix"));
    }

    #[test]
    fn unique_prefixes_select_commands() {
        let (path, _) = find(&words("mem li"));
        assert_eq!(names(&path), ["member", "list"]);
        let (path, rest) = find(&words("e status"));
        assert!(
            names(&path).is_empty(),
            "endpoint and elect share the prefix"
        );
        assert_eq!(
            check_unknown_command(&path, &rest).unwrap_err(),
            "unknown command \"e\" for \"cairnctl\"\n\nDid you mean this?\n\tget\n\tdel\n\tendpoint\n\telect\n"
        );
    }

    #[test]
    fn unknown_flag_swallows_the_next_word_like_cobra() {
        let (path, rest) = find(&words("--bogus get a"));
        assert!(names(&path).is_empty());
        assert!(
            check_unknown_command(&path, &rest)
                .unwrap_err()
                .starts_with("unknown command \"a\"")
        );
    }

    #[test]
    fn suggestions_use_edit_distance_and_prefix() {
        assert_eq!(suggestions("gte"), "\n\nDid you mean this?\n\tget\n");
        assert_eq!(
            suggestions("a"),
            "\n\nDid you mean this?\n\talarm\n\tauth\n"
        );
        assert_eq!(suggestions("zzzzzz"), "");
    }
}
