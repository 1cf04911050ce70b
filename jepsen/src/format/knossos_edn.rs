//! Knossos' EDN histories of a CAS register.
//!
//! The file is one EDN vector or list of operation maps in real-time order:
//! `{:process 7, :type :invoke, :f :cas, :value [2 3]}`. Keys: `:process` (integer, or
//! `:nemesis` for fault events, which are skipped), `:type` (`:invoke`/`:ok`/`:fail`/`:info`),
//! `:f` (`:read`/`:write`/`:cas`), `:value` (nil, integer, string, or `[old new]` for cas);
//! `:time`, `:error` and other keys are informational and ignored (Knossos orders by position).
//! Knossos' own reading is kept: **`:ok :read nil` means the value is unknown**, so it becomes
//! a read with no output. See shared/corpus/knossos/README.md.

use super::ParseError;
use super::edn::{self, Edn, Node};
use crate::history::{Call, Clock, Completion, Function, History, HistoryBuilder, Stamp, Value};

/// One client operation map.
struct Entry {
    process: u64,
    kind: &'static str,
    function: Function,
    value: Value,
    pair: Option<(Value, Value)>,
}

/// Parses a Knossos EDN history; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<History, ParseError> {
    let root = edn::read_one(text).map_err(|e| ParseError::new(file, e.line, e.message))?;
    let mut builder = HistoryBuilder::new(Clock::EventOrder);
    let Some(root) = root else {
        return Ok(builder.finish());
    };
    let items = match root.edn {
        Edn::Vector(items) | Edn::List(items) => items,
        _ => {
            return Err(ParseError::new(
                file,
                root.line,
                "expected the history: one vector [...] or list (...) of operation maps",
            ));
        }
    };
    for (ordinal, node) in (0u64..).zip(&items) {
        let entry = entry(node).map_err(|m| ParseError::new(file, node.line, m))?;
        let Some(entry) = entry else { continue };
        let at = Stamp::at_line(ordinal, node.line);
        record(&mut builder, entry, at).map_err(|m| ParseError::new(file, node.line, m))?;
    }
    Ok(builder.finish())
}

fn record(builder: &mut HistoryBuilder, entry: Entry, at: Stamp) -> Result<(), String> {
    let f = entry.function;
    let result = match entry.kind {
        "invoke" => builder.invoke(entry.process, call(&entry)?, at),
        "ok" if f == Function::Read => {
            let read = match entry.value {
                Value::Nil => Completion::ok(),
                value => Completion::read_ok(value),
            };
            builder.complete(entry.process, read.of(f), at)
        }
        "ok" => builder.complete(entry.process, Completion::ok().of(f), at),
        "fail" => builder.complete(entry.process, Completion::fail().of(f), at),
        _ => builder.complete(entry.process, Completion::info().of(f), at),
    };
    result.map(drop).map_err(|e| e.message)
}

fn call(entry: &Entry) -> Result<Call, String> {
    match (entry.function, &entry.pair) {
        (Function::Read, _) => Ok(Call::read(None)),
        (Function::Write, _) => Ok(Call::write(None, entry.value.clone())),
        (Function::Cas, Some((a, b))) => Ok(Call::cas(None, a.clone(), b.clone())),
        _ => Err("expected :value [old new] for a :cas invocation".into()),
    }
}

/// The operation a map describes; `None` for nemesis events.
fn entry(node: &Node) -> Result<Option<Entry>, String> {
    let Edn::Map(pairs) = &node.edn else {
        return Err("expected an operation map {:process .. :type .. :f .. :value ..}".into());
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| matches!(&k.edn, Edn::Keyword(n) if n == name))
            .map(|(_, v)| v)
    };
    let process = match get("process").map(|n| &n.edn) {
        Some(Edn::Keyword(name)) if name == "nemesis" => return Ok(None),
        Some(Edn::Int(p)) if *p >= 0 => *p as u64,
        _ => return Err("expected :process to be a non-negative integer or :nemesis".into()),
    };
    let kind = match get("type").map(|n| &n.edn) {
        Some(Edn::Keyword(k)) => type_name(k)?,
        _ => return Err("expected :type to be :invoke, :ok, :fail or :info".into()),
    };
    let function = match get("f").map(|n| &n.edn) {
        Some(Edn::Keyword(f)) => function(f)?,
        _ => return Err("expected :f to be :read, :write or :cas".into()),
    };
    let value_node = get("value");
    let value = value_node.map_or(Ok(Value::Nil), |n| scalar(&n.edn))?;
    let pair = value_node.and_then(|n| pair(&n.edn));
    Ok(Some(Entry {
        process,
        kind,
        function,
        value,
        pair,
    }))
}

fn type_name(name: &str) -> Result<&'static str, String> {
    match name {
        "invoke" => Ok("invoke"),
        "ok" => Ok("ok"),
        "fail" => Ok("fail"),
        "info" => Ok("info"),
        other => Err(format!(
            "expected :type to be :invoke, :ok, :fail or :info, found :{other}"
        )),
    }
}

fn function(name: &str) -> Result<Function, String> {
    match name {
        "read" => Ok(Function::Read),
        "write" => Ok(Function::Write),
        "cas" => Ok(Function::Cas),
        other => Err(format!(
            "expected :f to be :read, :write or :cas, found :{other}"
        )),
    }
}

/// A scalar value; a cas pair reads as `Nil` here and is taken by [`pair`].
fn scalar(edn: &Edn) -> Result<Value, String> {
    match edn {
        Edn::Nil | Edn::Vector(_) | Edn::Keyword(_) => Ok(Value::Nil),
        Edn::Int(n) => Ok(Value::Int(*n)),
        Edn::Str(s) => Ok(Value::Str(s.clone())),
        other => Err(format!(
            "expected :value to be nil, an integer, a string or [old new], found {other:?}"
        )),
    }
}

fn pair(edn: &Edn) -> Option<(Value, Value)> {
    match edn {
        Edn::Vector(items) if items.len() == 2 => {
            Some((scalar(&items[0].edn).ok()?, scalar(&items[1].edn).ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn parses_ops_and_skips_nemesis_events() {
        let text = "[{:process 7, :type :invoke, :f :cas, :value [2 3]}\n\
                    {:process :nemesis, :type :info, :f :start, :value \"cut\"}\n\
                    {:process 7, :type :fail, :f :cas, :value [2 3]}\n\
                    {:process 1, :type :invoke, :f :read, :value nil}\n\
                    {:process 1, :type :ok, :f :read, :value 2}]";
        let h = parse("k.edn", text).unwrap();
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[0].call, Call::cas(None, Value::Int(2), Value::Int(3)));
        assert_eq!(h.ops[0].outcome, Outcome::Fail);
        assert_eq!(h.ops[1].output, Some(Value::Int(2)));
        assert_eq!(h.ops[1].complete_line, Some(5));
    }

    #[test]
    fn ok_read_of_nil_has_unknown_value() {
        let text = "({:process 1, :type :invoke, :f :read, :value nil}\n {:process 1, :type :ok, :f :read, :value nil})";
        let h = parse("k.edn", text).unwrap();
        assert_eq!(
            (h.ops[0].outcome, h.ops[0].output.clone()),
            (Outcome::Ok, None)
        );
    }

    #[test]
    fn bad_map_names_its_line() {
        let text = "[{:process 1, :type :invoke, :f :read, :value nil}\n {:process 1, :type :done, :f :read}]";
        let err = parse("k.edn", text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "k.edn:2: expected :type to be :invoke, :ok, :fail or :info, found :done"
        );
        let err = parse("k.edn", "{:a 1}").unwrap_err();
        assert!(err.message.contains("vector"), "{err}");
    }

    #[test]
    fn empty_history_has_no_ops() {
        assert!(parse("k.edn", "[]").unwrap().ops.is_empty());
    }
}
