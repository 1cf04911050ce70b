//! The JSONL watch-history format: one JSON object per line, lines in the order things
//! happened (a `compact` line before a `watch` line means the compaction completed before the
//! watch was issued). Four kinds of line:
//!
//! ```text
//! {"kind":"commit","revision":5,"events":[EVENT,...]}
//! {"kind":"compact","revision":3}
//! {"kind":"watch","watcher":1,"request":{"key":"a","range_end":"b","start_revision":2,
//!                                        "filters":["NOPUT","NODELETE"],"prev_kv":true}}
//! {"kind":"response","watcher":1,"header_revision":7,"events":[EVENT,...],
//!  "created":false,"canceled":false,"compact_revision":0,"fragment":false}
//! ```
//!
//! An `EVENT` is mvccpb's `Event` with its `kv` flattened:
//! `{"type":"PUT","key":"a","value":"1","create_revision":5,"mod_revision":5,"version":1,
//! "lease":0,"prev_kv":KV}` where `type` is `PUT` or `DELETE`, `mod_revision` is required and
//! every other field defaults to empty / 0, and `prev_kv` (a `KV`: the same fields without
//! `type`/`prev_kv`) is absent or null for none.
//!
//! Bytes (`key`, `value`, `range_end`) are UTF-8 strings; a field named with the suffix
//! `_b64` instead (`key_b64`, `value_b64`, `range_end_b64`) holds standard base64 (padding
//! optional) for bytes that are not UTF-8. Giving both forms is an error.
//!
//! In a request, `range_end` follows etcd: absent/empty = the single key, `"\u0000"` = every
//! key from `key` on, else `[key, range_end)`; `start_revision` 0 (the default) = from now.
//! In a response every field but `watcher` is optional; an empty response that is not
//! `created`, `canceled` or a `fragment` is a progress notification. A watcher id appears on one `watch`
//! line, before its responses. Errors name the file and line and say what was expected.
//!
//! [`write`] produces the format (the simulator and runners record with it); [`parse`] of its
//! output gives back the same [`WatchHistory`] (input lines aside) when watchers appear in
//! the order they were issued and each one's `compacted_before` is 0 or a recorded compaction.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value as Json, json};

use super::{
    Commit, Event, EventType, KeyValue, Revision, WatchHistory, WatchRequest, WatchResponse,
    Watcher,
};
use crate::format::{LoadError, ParseError};

type Obj = Map<String, Json>;

/// Reads and parses the watch history in `path`.
pub fn load(path: &Path) -> Result<WatchHistory, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        file: file.clone(),
        source,
    })?;
    Ok(parse(&file, &text)?)
}

/// Parses a JSONL watch history; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<WatchHistory, ParseError> {
    let mut history = WatchHistory::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        parse_line(&mut history, index + 1, line)
            .map_err(|message| ParseError::new(file, index + 1, message))?;
    }
    Ok(history)
}

fn parse_line(history: &mut WatchHistory, line: usize, text: &str) -> Result<(), String> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| format!("expected one JSON object per line: {e}"))?;
    let Json::Object(obj) = json else {
        return Err("expected a JSON object {\"kind\":..}".into());
    };
    let kind = obj
        .get("kind")
        .and_then(Json::as_str)
        .ok_or("expected \"kind\": one of commit, compact, watch, response")?;
    match kind {
        "commit" => history.commits.push(Commit {
            revision: int(&obj, "revision", None)?,
            events: events(&obj)?,
            line: Some(line),
        }),
        "compact" => history.compactions.push(int(&obj, "revision", None)?),
        "watch" => watch(history, line, &obj)?,
        "response" => response(history, line, &obj)?,
        other => {
            return Err(format!(
                "expected \"kind\" to be one of commit, compact, watch, response, found {other:?}"
            ));
        }
    }
    Ok(())
}

fn watch(history: &mut WatchHistory, line: usize, obj: &Obj) -> Result<(), String> {
    let id = watcher_id(obj)?;
    if let Some(other) = history.watchers.iter().find(|w| w.id == id) {
        return Err(format!(
            "watcher {id} was already issued on line {}",
            other.line.unwrap_or(0)
        ));
    }
    let request = match obj.get("request") {
        Some(Json::Object(request)) => request,
        _ => return Err("expected \"request\": an object".into()),
    };
    history.watchers.push(Watcher {
        id,
        request: watch_request(request)?,
        compacted_before: history.compactions.iter().copied().max().unwrap_or(0),
        responses: Vec::new(),
        line: Some(line),
    });
    Ok(())
}

fn watch_request(obj: &Obj) -> Result<WatchRequest, String> {
    let mut request = WatchRequest {
        key: bytes(obj, "key")?,
        range_end: bytes(obj, "range_end")?,
        start_revision: int(obj, "start_revision", Some(0))?,
        prev_kv: boolean(obj, "prev_kv")?,
        ..WatchRequest::default()
    };
    let filters = match obj.get("filters") {
        None | Some(Json::Null) => &Vec::new(),
        Some(Json::Array(filters)) => filters,
        Some(_) => return Err("expected \"filters\" to be an array of NOPUT/NODELETE".into()),
    };
    for filter in filters {
        match filter.as_str() {
            Some("NOPUT") => request.no_put = true,
            Some("NODELETE") => request.no_delete = true,
            _ => {
                return Err(format!(
                    "expected a filter NOPUT or NODELETE, found {filter}"
                ));
            }
        }
    }
    Ok(request)
}

fn response(history: &mut WatchHistory, line: usize, obj: &Obj) -> Result<(), String> {
    let id = watcher_id(obj)?;
    let response = WatchResponse {
        header_revision: int(obj, "header_revision", Some(0))?,
        events: events(obj)?,
        canceled: boolean(obj, "canceled")?,
        compact_revision: int(obj, "compact_revision", Some(0))?,
        fragment: boolean(obj, "fragment")?,
        created: boolean(obj, "created")?,
        line: Some(line),
    };
    let watcher = history
        .watchers
        .iter_mut()
        .find(|w| w.id == id)
        .ok_or_else(|| {
            format!("expected a \"watch\" line for watcher {id} before its responses")
        })?;
    watcher.responses.push(response);
    Ok(())
}

fn watcher_id(obj: &Obj) -> Result<u64, String> {
    obj.get("watcher")
        .and_then(Json::as_u64)
        .ok_or_else(|| "expected \"watcher\": a non-negative integer id".into())
}

fn events(obj: &Obj) -> Result<Vec<Event>, String> {
    match obj.get("events") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| event(item).map_err(|e| format!("events[{i}]: {e}")))
            .collect(),
        Some(_) => Err("expected \"events\" to be an array".into()),
    }
}

fn event(json: &Json) -> Result<Event, String> {
    let Json::Object(obj) = json else {
        return Err("expected an event object {\"type\":..,\"key\":..}".into());
    };
    let kind = match obj.get("type").and_then(Json::as_str) {
        Some("PUT") => EventType::Put,
        Some("DELETE") => EventType::Delete,
        _ => return Err("expected \"type\": PUT or DELETE".into()),
    };
    let prev_kv = match obj.get("prev_kv") {
        None | Some(Json::Null) => None,
        Some(Json::Object(prev)) => Some(key_value(prev).map_err(|e| format!("prev_kv: {e}"))?),
        Some(_) => return Err("expected \"prev_kv\" to be an object or null".into()),
    };
    Ok(Event {
        kind,
        kv: key_value(obj)?,
        prev_kv,
    })
}

fn key_value(obj: &Obj) -> Result<KeyValue, String> {
    Ok(KeyValue {
        key: bytes(obj, "key")?,
        value: bytes(obj, "value")?,
        create_revision: int(obj, "create_revision", Some(0))?,
        mod_revision: int(obj, "mod_revision", None)?,
        version: int(obj, "version", Some(0))?,
        lease: int(obj, "lease", Some(0))?,
    })
}

fn int(obj: &Obj, name: &str, default: Option<Revision>) -> Result<i64, String> {
    match (obj.get(name), default) {
        (None | Some(Json::Null), Some(default)) => Ok(default),
        (None, None) => Err(format!("expected a \"{name}\" field (an integer)")),
        (Some(json), _) => json
            .as_i64()
            .ok_or_else(|| format!("expected \"{name}\" to be an integer, found {json}")),
    }
}

fn boolean(obj: &Obj, name: &str) -> Result<bool, String> {
    match obj.get(name) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "expected \"{name}\" to be true or false, found {other}"
        )),
    }
}

/// `name` as a UTF-8 string, or `name_b64` as base64; neither is empty.
fn bytes(obj: &Obj, name: &str) -> Result<Vec<u8>, String> {
    let b64_name = format!("{name}_b64");
    match (obj.get(name), obj.get(&b64_name)) {
        (Some(_), Some(_)) => Err(format!("expected \"{name}\" or \"{b64_name}\", not both")),
        (None | Some(Json::Null), None) => Ok(Vec::new()),
        (Some(Json::String(text)), None) => Ok(text.as_bytes().to_vec()),
        (None, Some(Json::String(b64))) => {
            decode_base64(b64).map_err(|e| format!("\"{b64_name}\": {e}"))
        }
        _ => Err(format!(
            "expected \"{name}\" (UTF-8) or \"{b64_name}\" (base64) to be a string"
        )),
    }
}

/// Writes `history`: the commits, then each watcher's request (after the compactions at or
/// below its `compacted_before`) and responses, then the remaining compactions.
pub fn write(history: &WatchHistory, out: &mut impl Write) -> io::Result<()> {
    for commit in &history.commits {
        let line = json!({
            "kind": "commit",
            "revision": commit.revision,
            "events": commit.events.iter().map(event_json).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
    }
    let mut compactions = history.compactions.clone();
    compactions.sort_unstable();
    let mut compactions = compactions.into_iter().peekable();
    for watcher in &history.watchers {
        while let Some(revision) = compactions.next_if(|&r| r <= watcher.compacted_before) {
            writeln!(out, "{}", json!({"kind": "compact", "revision": revision}))?;
        }
        write_watcher(watcher, out)?;
    }
    for revision in compactions {
        writeln!(out, "{}", json!({"kind": "compact", "revision": revision}))?;
    }
    Ok(())
}

fn write_watcher(watcher: &Watcher, out: &mut impl Write) -> io::Result<()> {
    let request = &watcher.request;
    let filters: Vec<&str> = [(request.no_put, "NOPUT"), (request.no_delete, "NODELETE")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    let mut fields = Map::new();
    put_bytes(&mut fields, "key", &request.key);
    put_bytes(&mut fields, "range_end", &request.range_end);
    fields.insert("start_revision".into(), request.start_revision.into());
    fields.insert("filters".into(), filters.into());
    fields.insert("prev_kv".into(), request.prev_kv.into());
    let line = json!({"kind": "watch", "watcher": watcher.id, "request": fields});
    writeln!(out, "{line}")?;
    for response in &watcher.responses {
        let line = json!({
            "kind": "response",
            "watcher": watcher.id,
            "header_revision": response.header_revision,
            "events": response.events.iter().map(event_json).collect::<Vec<_>>(),
            "created": response.created,
            "canceled": response.canceled,
            "compact_revision": response.compact_revision,
            "fragment": response.fragment,
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn event_json(event: &Event) -> Json {
    let mut fields = key_value_json(&event.kv);
    let kind = match event.kind {
        EventType::Put => "PUT",
        EventType::Delete => "DELETE",
    };
    fields.insert("type".into(), kind.into());
    if let Some(prev) = &event.prev_kv {
        fields.insert("prev_kv".into(), Json::Object(key_value_json(prev)));
    }
    Json::Object(fields)
}

fn key_value_json(kv: &KeyValue) -> Obj {
    let mut fields = Map::new();
    put_bytes(&mut fields, "key", &kv.key);
    put_bytes(&mut fields, "value", &kv.value);
    fields.insert("create_revision".into(), kv.create_revision.into());
    fields.insert("mod_revision".into(), kv.mod_revision.into());
    fields.insert("version".into(), kv.version.into());
    fields.insert("lease".into(), kv.lease.into());
    fields
}

/// `name` as UTF-8 text when the bytes are UTF-8, else `name_b64`.
fn put_bytes(fields: &mut Obj, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => fields.insert(name.into(), text.into()),
        Err(_) => fields.insert(format!("{name}_b64"), encode_base64(bytes).into()),
    };
}

const BASE64_DIGITS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    BASE64_DIGITS[(group >> (18 - 6 * i)) as usize & 63],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (RFC 4648 alphabet), `=` padding optional.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in digits.bytes() {
        let digit = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("expected base64, found {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(digit);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("expected base64, found a truncated final group".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for bytes in [&b""[..], b"h", b"hi", b"hi!", &[0xff, 0x00, 0xfe, 0x7f]] {
            let text = encode_base64(bytes);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(decode_base64(&text).unwrap(), bytes);
        }
        assert_eq!(encode_base64(b"hi"), "aGk=");
    }

    #[test]
    fn written_history_parses_back_to_itself() {
        let text = r#"{"kind":"commit","revision":2,"events":[{"type":"PUT","key_b64":"/w==","value":"v","create_revision":2,"mod_revision":2,"version":1,"lease":7}]}
{"kind":"commit","revision":3,"events":[{"type":"DELETE","key_b64":"/w==","mod_revision":3,"prev_kv":{"key_b64":"/w==","value":"v","create_revision":2,"mod_revision":2,"version":1,"lease":7}}]}
{"kind":"watch","watcher":1,"request":{"key":"","range_end":"\u0000","start_revision":1,"filters":["NOPUT"],"prev_kv":true}}
{"kind":"response","watcher":1,"header_revision":3,"created":true}
{"kind":"compact","revision":2}
{"kind":"watch","watcher":2,"request":{"key":"a","start_revision":1}}
{"kind":"response","watcher":2,"header_revision":3,"canceled":true,"compact_revision":2,"fragment":true}
{"kind":"compact","revision":3}
"#;
        let history = parse("h.jsonl", text).unwrap();
        let mut written = Vec::new();
        write(&history, &mut written).unwrap();
        let again = parse("w.jsonl", std::str::from_utf8(&written).unwrap()).unwrap();
        let strip = |mut h: WatchHistory| {
            h.commits.iter_mut().for_each(|c| c.line = None);
            for w in &mut h.watchers {
                w.line = None;
                w.responses.iter_mut().for_each(|r| r.line = None);
            }
            h
        };
        assert_eq!(history.watchers[0].request.range_end, vec![0]);
        assert_eq!(strip(again), strip(history));
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("/w==").unwrap(), vec![0xff]);
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a").is_err());
        assert!(decode_base64("a*").is_err());
    }

    #[test]
    fn parses_every_kind_of_line() {
        let text = r#"{"kind":"commit","revision":2,"events":[{"type":"PUT","key_b64":"/w==","value":"v","create_revision":2,"mod_revision":2,"version":1}]}
{"kind":"compact","revision":2}

{"kind":"watch","watcher":7,"request":{"key":"a","range_end":"\u0000","start_revision":1,"filters":["NODELETE"],"prev_kv":true}}
{"kind":"response","watcher":7,"header_revision":2,"canceled":true,"compact_revision":2}
"#;
        let history = parse("h.jsonl", text).unwrap();
        assert_eq!(history.commits[0].events[0].kv.key, vec![0xff]);
        assert_eq!(history.commits[0].line, Some(1));
        assert_eq!(history.compactions, vec![2]);
        let watcher = &history.watchers[0];
        assert_eq!(watcher.compacted_before, 2);
        assert_eq!(watcher.request.range_end, vec![0]);
        assert!(watcher.request.no_delete && !watcher.request.no_put && watcher.request.prev_kv);
        assert_eq!(watcher.responses[0].compact_revision, 2);
        assert_eq!(watcher.responses[0].line, Some(5));
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let err = parse("h.jsonl", "{\"kind\":\"response\",\"watcher\":1}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.jsonl:1: expected a \"watch\" line for watcher 1 before its responses"
        );
        let text =
            "\n{\"kind\":\"commit\",\"revision\":1,\"events\":[{\"type\":\"PUT\",\"key\":\"a\"}]}";
        let err = parse("h.jsonl", text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.jsonl:2: events[0]: expected a \"mod_revision\" field (an integer)"
        );
    }
}
