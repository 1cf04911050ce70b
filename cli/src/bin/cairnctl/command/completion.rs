//! `completion bash` and `completion zsh`: shell completion scripts generated from the
//! command tree ([`crate::commands::ROOT`]), so they offer exactly the commands and flags
//! cairnctl parses. The bash script walks the words typed so far down the tree (flags are
//! skipped, and so is the value of a flag that takes one), then offers the subcommands and
//! flags of the command reached; after a command without subcommands it falls back to file
//! names. The zsh script is the same function loaded through zsh's `bashcompinit`.

use crate::commands::{Action, Command, PROGRAM, ROOT};
use crate::console::Console;
use crate::dispatch;
use crate::flags::FlagKind;

/// Prints the bash completion script.
pub fn bash(console: &mut Console<'_>) {
    console.out(&bash_script());
}

/// Prints the zsh completion script.
pub fn zsh(console: &mut Console<'_>) {
    console.out(&format!(
        "#compdef {PROGRAM}\n# zsh completion for {PROGRAM}: the bash completion through bashcompinit.\n\
         autoload -U +X bashcompinit && bashcompinit\n{}",
        bash_script()
    ));
}

/// One command of the tree with the words that lead to it.
struct Node {
    path: Vec<&'static str>,
    command: &'static Command,
    ancestors: Vec<&'static Command>,
}

/// Every command of the tree, depth first, root first.
fn nodes() -> Vec<Node> {
    let mut out = Vec::new();
    let mut stack = vec![Node {
        path: Vec::new(),
        command: &ROOT,
        ancestors: Vec::new(),
    }];
    while let Some(node) = stack.pop() {
        for child in node.command.children.iter().rev() {
            let mut path = node.path.clone();
            path.push(child.name);
            let mut ancestors = node.ancestors.clone();
            ancestors.push(node.command);
            stack.push(Node {
                path,
                command: child,
                ancestors,
            });
        }
        out.push(node);
    }
    out
}

/// The bash script.
pub fn bash_script() -> String {
    let nodes = nodes();
    let mut steps = String::new();
    let mut offers = String::new();
    let mut value_flags: Vec<String> = Vec::new();
    for node in &nodes {
        let key = node.path.join(" ");
        for child in node.command.children {
            let next = match key.is_empty() {
                true => child.name.to_string(),
                false => format!("{key} {}", child.name),
            };
            steps.push_str(&format!(
                "            \"{key}/{}\") path=\"{next}\" ;;\n",
                child.name
            ));
        }
        let mut path = node.ancestors.clone();
        path.push(node.command);
        let mut words: Vec<String> = node
            .command
            .children
            .iter()
            .filter(|c| c.action != Action::NotYet)
            .map(|c| c.name.to_string())
            .collect();
        for flag in dispatch::flag_scope(&path) {
            let long = format!("--{}", flag.name);
            if flag.kind != FlagKind::Bool && !value_flags.contains(&long) {
                value_flags.push(long.clone());
                if let Some(short) = flag.shorthand {
                    value_flags.push(format!("-{short}"));
                }
            }
            words.push(long);
            if let Some(short) = flag.shorthand {
                words.push(format!("-{short}"));
            }
        }
        let files = match node.command.children.is_empty() {
            true => "1",
            false => "0",
        };
        offers.push_str(&format!(
            "        \"{key}\") words=\"{}\"; files={files} ;;\n",
            words.join(" ")
        ));
    }
    format!(
        r#"# bash completion for {PROGRAM}
# To load it in the current shell: source <({PROGRAM} completion bash)

_{PROGRAM}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}"
    local prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local path="" word i skip=0 words="" files=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if [[ $skip -eq 1 ]]; then
            skip=0
            continue
        fi
        case "$word" in
            --*=*) continue ;;
            -*)
                case " {value_flags} " in
                    *" $word "*) skip=1 ;;
                esac
                continue
                ;;
        esac
        case "$path/$word" in
{steps}        esac
    done
    case " {value_flags} " in
        *" $prev "*)
            COMPREPLY=( $(compgen -f -- "$cur") )
            return 0
            ;;
    esac
    case "$path" in
{offers}    esac
    if [[ $cur == -* || $files -eq 0 ]]; then
        COMPREPLY=( $(compgen -W "$words" -- "$cur") )
    else
        COMPREPLY=( $(compgen -f -- "$cur") )
    fi
    return 0
}}

complete -o default -F _{PROGRAM} {PROGRAM}
"#,
        value_flags = value_flags.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_knows_every_command_path() {
        let script = bash_script();
        for node in nodes().iter().skip(1) {
            let key = node.path.join(" ");
            assert!(script.contains(&format!("\"{key}\")")), "{key}");
        }
        assert!(script.contains("\"member/list\") path=\"member list\""));
        assert!(script.contains("complete -o default -F _cairnctl cairnctl"));
    }
}
