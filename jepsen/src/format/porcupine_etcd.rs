//! Porcupine's etcd log format: Jepsen console lines of a single CAS register.
//!
//! `INFO  jepsen.util - <process> <type> <f> <value>`, fields separated by runs of whitespace,
//! lines in real-time order, no timestamps. `<type>` is `:invoke` / `:ok` / `:fail` / `:info`,
//! `<f>` is `:read` / `:write` / `:cas`, `<value>` is `nil`, an integer, `[a b]` (cas) or
//! `:timed-out`. `:ok :read nil` read the absent (initial) value. Failed ops and timed-out
//! ones pair with their invocation like any completion; the checker gives them their meaning.
//! See shared/corpus/jepsen-etcd/README.md.

use super::ParseError;
use crate::history::{Call, Clock, Completion, Function, History, HistoryBuilder, Stamp, Value};

const PREFIX: [&str; 3] = ["INFO", "jepsen.util", "-"];
const SHAPE: &str =
    "`INFO jepsen.util - <process> <:invoke|:ok|:fail|:info> <:read|:write|:cas> <value>`";

/// A `<value>` token (or the two tokens of `[a b]`).
#[derive(Debug, PartialEq)]
enum Token {
    Nil,
    Int(i64),
    Pair(i64, i64),
    TimedOut,
}

enum Kind {
    Invoke,
    Done(Completion),
}

/// Parses a porcupine etcd log; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<History, ParseError> {
    let mut builder = HistoryBuilder::new(Clock::EventOrder);
    let mut ordinal = 0u64;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Stamp::at_line(ordinal, index + 1);
        ordinal += 1;
        parse_line(&mut builder, line, at).map_err(|m| ParseError::new(file, index + 1, m))?;
    }
    Ok(builder.finish())
}

fn parse_line(builder: &mut HistoryBuilder, line: &str, at: Stamp) -> Result<(), String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.len() < 7 || tokens[..3] != PREFIX {
        return Err(format!("expected {SHAPE}"));
    }
    let process: u64 = tokens[3].parse().map_err(|_| {
        format!(
            "expected a process id (non-negative integer), found {:?}",
            tokens[3]
        )
    })?;
    let function = function(tokens[5])?;
    let value = value(&tokens[6..])?;
    let error = |e: crate::history::HistoryError| e.message;
    match kind(tokens[4], function, &value)? {
        Kind::Invoke => builder
            .invoke(process, call(function, value)?, at)
            .map_err(error)?,
        Kind::Done(completion) => builder.complete(process, completion, at).map_err(error)?,
    };
    Ok(())
}

fn function(token: &str) -> Result<Function, String> {
    match token {
        ":read" => Ok(Function::Read),
        ":write" => Ok(Function::Write),
        ":cas" => Ok(Function::Cas),
        other => Err(format!("expected :read, :write or :cas, found {other:?}")),
    }
}

fn value(tokens: &[&str]) -> Result<Token, String> {
    match tokens {
        ["nil"] => Ok(Token::Nil),
        [":timed-out"] => Ok(Token::TimedOut),
        [n] if !n.starts_with('[') => n.parse().map(Token::Int).map_err(|_| bad_value(tokens)),
        [a, b] => {
            let a = a.strip_prefix('[').and_then(|a| a.parse().ok());
            let b = b.strip_suffix(']').and_then(|b| b.parse().ok());
            a.zip(b)
                .map(|(a, b)| Token::Pair(a, b))
                .ok_or_else(|| bad_value(tokens))
        }
        _ => Err(bad_value(tokens)),
    }
}

fn bad_value(tokens: &[&str]) -> String {
    format!(
        "expected a value: nil, an integer, [a b] or :timed-out, found {:?}",
        tokens.join(" ")
    )
}

fn kind(token: &str, function: Function, value: &Token) -> Result<Kind, String> {
    let completion = match token {
        ":invoke" => return Ok(Kind::Invoke),
        ":ok" => ok(function, value)?,
        ":fail" => Completion::fail(),
        ":info" => Completion::info(),
        other => {
            return Err(format!(
                "expected :invoke, :ok, :fail or :info, found {other:?}"
            ));
        }
    };
    Ok(Kind::Done(completion.of(function)))
}

fn ok(function: Function, value: &Token) -> Result<Completion, String> {
    match (function, value) {
        (Function::Read, Token::Nil) => Ok(Completion::read_ok(Value::Nil)),
        (Function::Read, Token::Int(n)) => Ok(Completion::read_ok(Value::Int(*n))),
        (Function::Read, other) => Err(format!(
            "expected the value read (nil or an integer), found {other:?}"
        )),
        _ => Ok(Completion::ok()),
    }
}

fn call(function: Function, value: Token) -> Result<Call, String> {
    match (function, value) {
        (Function::Read, _) => Ok(Call::read(None)),
        (Function::Write, Token::Int(v)) => Ok(Call::write(None, Value::Int(v))),
        (Function::Cas, Token::Pair(a, b)) => Ok(Call::cas(None, Value::Int(a), Value::Int(b))),
        (Function::Write, other) => Err(format!("expected an integer to write, found {other:?}")),
        (_, other) => Err(format!(
            "expected [expected new] for a cas, found {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn parses_all_line_shapes() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 0\t:ok\t:read\tnil\n\
                    INFO  jepsen.util - 2   :invoke  :write  4\n\
                    INFO  jepsen.util - 1\t:fail\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n";
        let h = parse("e.log", text).unwrap();
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.ops[0].output, Some(Value::Nil));
        assert_eq!(h.ops[1].call, Call::cas(None, Value::Int(3), Value::Int(0)));
        assert_eq!(h.ops[1].outcome, Outcome::Fail);
        assert_eq!(h.ops[2].outcome, Outcome::Info);
    }

    #[test]
    fn malformed_line_names_file_line_and_shape() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO jepsen.util - x :ok :read 1\n";
        let err = parse("e.log", text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.to_string()
                .starts_with("e.log:2: expected a process id"),
            "{err}"
        );
        let err = parse("e.log", "garbage\n").unwrap_err();
        assert!(err.message.contains("INFO jepsen.util"), "{err}");
    }

    #[test]
    fn mismatched_completion_is_malformed() {
        let text = "INFO  jepsen.util - 0 :invoke :read nil\nINFO  jepsen.util - 0 :ok :write 1\n";
        let err = parse("e.log", text).unwrap_err();
        assert_eq!(err.line, 2);
    }
}
