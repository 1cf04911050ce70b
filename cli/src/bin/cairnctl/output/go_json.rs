//! A JSON writer that produces what Go's `encoding/json` produces for etcd's generated
//! structs: fields in declaration order, `omitempty` (zero numbers, false, empty strings,
//! slices and nil pointers left out), `[]byte` as standard base64, and Go's HTML-safe
//! string escaping (`<` as `\u003c`, invalid UTF-8 as `\ufffd`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// An object being written; fields are added in order.
#[derive(Debug, Default)]
pub struct Object {
    fields: Vec<(&'static str, String)>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object::default()
    }

    /// A field with an already-encoded JSON value, always present.
    pub fn raw(mut self, key: &'static str, json: String) -> Object {
        self.fields.push((key, json));
        self
    }

    /// A nested object or other encoded value, omitted when `None` (a nil pointer).
    pub fn opt(self, key: &'static str, json: Option<String>) -> Object {
        match json {
            Some(j) => self.raw(key, j),
            None => self,
        }
    }

    /// A signed number, omitted when zero.
    pub fn int(self, key: &'static str, v: i64) -> Object {
        if v == 0 {
            self
        } else {
            self.raw(key, v.to_string())
        }
    }

    /// An unsigned number, omitted when zero.
    pub fn uint(self, key: &'static str, v: u64) -> Object {
        if v == 0 {
            self
        } else {
            self.raw(key, v.to_string())
        }
    }

    /// A boolean, omitted when false.
    pub fn bool(self, key: &'static str, v: bool) -> Object {
        if v {
            self.raw(key, "true".to_string())
        } else {
            self
        }
    }

    /// A string, omitted when empty.
    pub fn str(self, key: &'static str, v: &str) -> Object {
        if v.is_empty() {
            self
        } else {
            self.raw(key, string(v.as_bytes()))
        }
    }

    /// Bytes as base64, omitted when empty.
    pub fn bytes(self, key: &'static str, v: &[u8]) -> Object {
        if v.is_empty() {
            self
        } else {
            self.raw(key, format!("\"{}\"", BASE64.encode(v)))
        }
    }

    /// A list of encoded values, omitted when empty.
    pub fn list(self, key: &'static str, items: Vec<String>) -> Object {
        if items.is_empty() {
            self
        } else {
            self.raw(key, array(items))
        }
    }

    /// The encoded object.
    pub fn finish(self) -> String {
        let fields: Vec<String> = self
            .fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// An array of encoded values.
pub fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

/// A JSON string with Go's escaping, from bytes that may not be UTF-8.
pub fn string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        if !chunk.invalid().is_empty() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_are_omitted_and_order_kept() {
        let json = Object::new()
            .int("b", 0)
            .uint("z", 7)
            .bool("f", false)
            .str("s", "")
            .int("a", -1)
            .finish();
        assert_eq!(json, r#"{"z":7,"a":-1}"#);
        assert_eq!(Object::new().finish(), "{}");
    }

    #[test]
    fn bytes_are_base64() {
        assert_eq!(
            Object::new().bytes("key", b"foo").finish(),
            r#"{"key":"Zm9v"}"#
        );
    }

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(
            string(b"a<b>&\"\\\n\x01"),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001""#
        );
        assert_eq!(string(b"\xffok"), r#""\ufffdok""#);
        assert_eq!(string("µs".as_bytes()), "\"µs\"");
    }
}
