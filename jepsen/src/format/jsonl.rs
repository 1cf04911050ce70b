//! The plain JSONL interchange format: reading and writing.
//!
//! One JSON object per line, lines in real-time order:
//! `{"process":3,"type":"invoke","f":"write","key":"x","value":"5"}` then
//! `{"process":3,"type":"ok","f":"write","key":"x","value":"5"}`.
//! - `type`: `invoke` / `ok` / `fail` / `info`; `f`: `read` / `write` / `cas` / `append`.
//! - `key`: optional; absent (or null) = the single register.
//! - `value`: a string or null (integers are accepted too); `[expected, new]` for cas; a
//!   completed read carries the value read.
//! - `time`: optional integer nanoseconds. If one line has it, all must; the events are then
//!   ordered by it (stably), otherwise by line. Other fields are ignored.
//!
//! [`write`] produces this format from a [`History`], so cairn's recorders and
//! `cairn-jepsen check` meet here.

use std::io::{self, Write};

use serde_json::{Map, Value as Json};

use super::ParseError;
use crate::history::{
    Call, Clock, Completion, Function, History, HistoryBuilder, Op, Outcome, Stamp, Time, Value,
};

/// One parsed line.
struct Record {
    line: usize,
    process: u64,
    event: Event,
    time: Option<Time>,
}

enum Event {
    Invoke(Call),
    Complete {
        completion: Completion,
        key: Option<String>,
    },
}

/// Parses a JSONL history; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<History, ParseError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record =
            parse_line(index + 1, line).map_err(|m| ParseError::new(file, index + 1, m))?;
        records.push(record);
    }
    let clock = clock_of(file, &records)?;
    if clock == Clock::Nanos {
        records.sort_by_key(|r| r.time);
    }
    build(file, clock, records)
}

/// All lines timed, or none.
fn clock_of(file: &str, records: &[Record]) -> Result<Clock, ParseError> {
    let Some(first) = records.first() else {
        return Ok(Clock::EventOrder);
    };
    let odd = records
        .iter()
        .find(|r| r.time.is_some() != first.time.is_some());
    match odd {
        Some(r) => Err(ParseError::new(
            file,
            r.line,
            format!(
                "expected \"time\" on every line or on none, but line {} {} it and this line {}",
                first.line,
                if first.time.is_some() { "has" } else { "lacks" },
                if r.time.is_some() {
                    "has it"
                } else {
                    "does not"
                },
            ),
        )),
        None if first.time.is_some() => Ok(Clock::Nanos),
        None => Ok(Clock::EventOrder),
    }
}

fn build(file: &str, clock: Clock, records: Vec<Record>) -> Result<History, ParseError> {
    let mut builder = HistoryBuilder::new(clock);
    for (ordinal, record) in (0u64..).zip(records) {
        let at = Stamp::at_line(record.time.unwrap_or(ordinal), record.line);
        let result = match record.event {
            Event::Invoke(call) => builder.invoke(record.process, call, at),
            Event::Complete { completion, key } => {
                check_key(&builder, record.process, key.as_deref(), record.line, file)?;
                builder.complete(record.process, completion, at)
            }
        };
        result.map_err(|e| ParseError::from_history(file, e))?;
    }
    Ok(builder.finish())
}

fn check_key(
    builder: &HistoryBuilder,
    process: u64,
    key: Option<&str>,
    line: usize,
    file: &str,
) -> Result<(), ParseError> {
    match builder.open_call(process) {
        Some(call) if call.key() != key => Err(ParseError::new(
            file,
            line,
            format!(
                "completion of process {process} names key {key:?}, expected {:?} as in its invocation",
                call.key()
            ),
        )),
        _ => Ok(()),
    }
}

fn parse_line(line: usize, text: &str) -> Result<Record, String> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| format!("expected one JSON object per line: {e}"))?;
    let Json::Object(obj) = json else {
        return Err("expected a JSON object {\"process\":..,\"type\":..,\"f\":..}".into());
    };
    let process = field(&obj, "process")?
        .as_u64()
        .ok_or("expected \"process\" to be a non-negative integer")?;
    let kind = string_field(&obj, "type", "one of invoke, ok, fail, info")?;
    let f = string_field(&obj, "f", "one of read, write, cas, append")?;
    let function = Function::from_name(f).ok_or_else(|| {
        format!("expected \"f\" to be one of read, write, cas, append, found {f:?}")
    })?;
    let key = key_field(&obj)?;
    let time = time_field(&obj)?;
    let event = match kind {
        "invoke" => Event::Invoke(invocation(function, key, obj.get("value"))?),
        "ok" => Event::Complete {
            completion: ok(function, obj.get("value"))?,
            key,
        },
        "fail" => Event::Complete {
            completion: Completion::fail().of(function),
            key,
        },
        "info" => Event::Complete {
            completion: Completion::info().of(function),
            key,
        },
        other => {
            return Err(format!(
                "expected \"type\" to be one of invoke, ok, fail, info, found {other:?}"
            ));
        }
    };
    Ok(Record {
        line,
        process,
        event,
        time,
    })
}

fn field<'a>(obj: &'a Map<String, Json>, name: &str) -> Result<&'a Json, String> {
    obj.get(name)
        .ok_or_else(|| format!("expected a \"{name}\" field"))
}

fn string_field<'a>(
    obj: &'a Map<String, Json>,
    name: &str,
    expected: &str,
) -> Result<&'a str, String> {
    field(obj, name)?
        .as_str()
        .ok_or_else(|| format!("expected \"{name}\" to be a string, {expected}"))
}

fn key_field(obj: &Map<String, Json>) -> Result<Option<String>, String> {
    match obj.get("key") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(key)) => Ok(Some(key.clone())),
        Some(_) => Err("expected \"key\" to be a string (or absent for a single register)".into()),
    }
}

fn time_field(obj: &Map<String, Json>) -> Result<Option<Time>, String> {
    match obj.get("time") {
        None => Ok(None),
        Some(t) => t
            .as_u64()
            .map(Some)
            .ok_or_else(|| "expected \"time\" to be a non-negative integer (ns)".into()),
    }
}

fn invocation(
    function: Function,
    key: Option<String>,
    value: Option<&Json>,
) -> Result<Call, String> {
    Ok(match function {
        Function::Read => Call::Read { key },
        Function::Write => Call::Write {
            key,
            value: scalar(required(value, "write")?)?,
        },
        Function::Append => Call::Append {
            key,
            value: scalar(required(value, "append")?)?,
        },
        Function::Cas => {
            let (expected, new) = pair(required(value, "cas")?)?;
            Call::Cas { key, expected, new }
        }
    })
}

fn ok(function: Function, value: Option<&Json>) -> Result<Completion, String> {
    if function != Function::Read {
        return Ok(Completion::ok().of(function));
    }
    let read =
        scalar(value.ok_or("expected \"value\": the value the read returned (null if absent)")?)?;
    Ok(Completion::read_ok(read).of(function))
}

fn required<'a>(value: Option<&'a Json>, f: &str) -> Result<&'a Json, String> {
    value.ok_or_else(|| format!("expected a \"value\" for {f}"))
}

fn scalar(json: &Json) -> Result<Value, String> {
    match json {
        Json::Null => Ok(Value::Nil),
        Json::String(s) => Ok(Value::Str(s.clone())),
        Json::Number(n) => n.as_i64().map(Value::Int).ok_or_else(|| {
            format!("expected \"value\" to be a string, null or integer, found {n}")
        }),
        other => Err(format!(
            "expected \"value\" to be a string or null, found {other}"
        )),
    }
}

fn pair(json: &Json) -> Result<(Value, Value), String> {
    match json {
        Json::Array(items) if items.len() == 2 => Ok((scalar(&items[0])?, scalar(&items[1])?)),
        other => Err(format!(
            "expected the \"value\" of a cas to be [expected, new], found {other}"
        )),
    }
}

/// Writes `history` as JSONL, with `"time"` if its clock is nanoseconds.
pub fn write(history: &History, out: &mut impl Write) -> io::Result<()> {
    let mut events: Vec<(Time, usize, bool)> = Vec::with_capacity(history.ops.len() * 2);
    for (i, op) in history.ops.iter().enumerate() {
        events.push((op.invoke_time, i, false));
        if let Some(t) = op.complete_time {
            events.push((t, i, true));
        }
    }
    events.sort_unstable();
    for (time, i, is_completion) in events {
        let line = event_line(
            &history.ops[i],
            is_completion,
            (history.clock == Clock::Nanos).then_some(time),
        );
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// [`write`] into a string.
pub fn to_string(history: &History) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(history, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn event_line(op: &Op, is_completion: bool, time: Option<Time>) -> String {
    let kind = if is_completion {
        op.outcome.name()
    } else {
        "invoke"
    };
    let mut obj = Map::new();
    obj.insert("process".into(), Json::from(op.process));
    obj.insert("type".into(), Json::from(kind));
    obj.insert("f".into(), Json::from(op.call.function().name()));
    if let Some(key) = op.call.key() {
        obj.insert("key".into(), Json::from(key));
    }
    obj.insert("value".into(), event_value(op, is_completion));
    if let Some(t) = time {
        obj.insert("time".into(), Json::from(t));
    }
    // Field order as in the issue: serde_json's map is sorted, so lay the line out by hand.
    let order = ["process", "type", "f", "key", "value", "time"];
    let fields: Vec<String> = order
        .iter()
        .filter_map(|name| obj.get(*name).map(|v| format!("\"{name}\":{v}")))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn event_value(op: &Op, is_completion: bool) -> Json {
    match &op.call {
        Call::Read { .. } if is_completion && op.outcome == Outcome::Ok => {
            op.output.as_ref().map_or(Json::Null, json_value)
        }
        Call::Read { .. } => Json::Null,
        Call::Write { value, .. } | Call::Append { value, .. } => json_value(value),
        Call::Cas { expected, new, .. } => Json::Array(vec![json_value(expected), json_value(new)]),
    }
}

fn json_value(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Int(n) => Json::from(*n),
        Value::Str(s) => Json::from(s.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"process":3,"type":"invoke","f":"write","key":"x","value":"5"}
{"process":1,"type":"invoke","f":"read","key":"x","value":null}
{"process":3,"type":"ok","f":"write","key":"x","value":"5"}
{"process":1,"type":"ok","f":"read","key":"x","value":"5"}
{"process":2,"type":"invoke","f":"cas","key":"x","value":["5","6"]}
{"process":2,"type":"info","f":"cas","key":"x","value":["5","6"]}
"#;

    #[test]
    fn parses_the_issue_example() {
        let h = parse("h.jsonl", EXAMPLE).unwrap();
        assert_eq!(h.clock, Clock::EventOrder);
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.ops[0].call, Call::write(Some("x"), Value::str("5")));
        assert_eq!(h.ops[1].output, Some(Value::str("5")));
        assert_eq!(h.ops[2].outcome, Outcome::Info);
        assert_eq!(h.ops[2].invoke_line, Some(5));
    }

    #[test]
    fn round_trips_through_write() {
        let h = parse("h.jsonl", EXAMPLE).unwrap();
        let again = parse("again.jsonl", &to_string(&h)).unwrap();
        assert_eq!(
            h.ops.iter().map(Op::describe).collect::<Vec<_>>(),
            again.ops.iter().map(Op::describe).collect::<Vec<_>>()
        );
        assert_eq!(to_string(&again), to_string(&h));
    }

    #[test]
    fn time_field_orders_events() {
        let text = r#"{"process":1,"type":"ok","f":"write","value":"1","time":20}
{"process":1,"type":"invoke","f":"write","value":"1","time":10}
"#;
        let h = parse("t.jsonl", text).unwrap();
        assert_eq!(h.clock, Clock::Nanos);
        assert_eq!(
            (h.ops[0].invoke_time, h.ops[0].complete_time),
            (10, Some(20))
        );
        let back = parse("t2.jsonl", &to_string(&h)).unwrap();
        assert_eq!(back.clock, Clock::Nanos);
        assert_eq!(
            (back.ops[0].invoke_time, back.ops[0].complete_time),
            (10, Some(20))
        );
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let text = "{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":\"1\"}\n{\"process\":1,\"type\":\"done\",\"f\":\"write\"}\n";
        let err = parse("bad.jsonl", text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad.jsonl:2: expected \"type\" to be one of invoke, ok, fail, info, found \"done\""
        );
        let err = parse("bad.jsonl", "{\"process\":-1}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad.jsonl:1: expected \"process\""),
            "{err}"
        );
        let err = parse("bad.jsonl", "not json").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad.jsonl:1: expected one JSON object"),
            "{err}"
        );
    }

    #[test]
    fn completion_without_invocation_is_malformed() {
        let err = parse(
            "c.jsonl",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":null}",
        )
        .unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("no invocation outstanding"), "{err}");
    }

    #[test]
    fn mixed_timed_and_untimed_lines_are_malformed() {
        let text = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"time\":1}\n{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n";
        let err = parse("m.jsonl", text).unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn completion_naming_another_key_is_malformed() {
        let text = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"a\"}\n{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"key\":\"b\",\"value\":null}\n";
        assert_eq!(parse("k.jsonl", text).unwrap_err().line, 2);
    }
}
