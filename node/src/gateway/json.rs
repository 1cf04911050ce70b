//! The gateway's JSON: protobuf messages to and from grpc-gateway's JSON (golang/protobuf's
//! `jsonpb` with `OrigName`), and the errors of a body that does not decode, worded as Go's
//! `encoding/json` and `jsonpb` word them where cairn can tell the case apart.

use axum::body::BodyDataStream;
use base64::Engine as _;
use futures::StreamExt;
use prost::Message;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::Value;
use tonic::Status;

/// The largest JSON request a bidirectional stream buffers (one request).
const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// `message` (of type `desc`) as grpc-gateway writes it.
pub fn from_message<T: Message>(desc: &MessageDescriptor, message: &T) -> Result<String, Status> {
    let dynamic = DynamicMessage::decode(desc.clone(), message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("gateway: cannot transcode a response: {e}")))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true)
        .stringify_64_bit_integers(true);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    dynamic
        .serialize_with_options(&mut serializer, &options)
        .map_err(|e| Status::internal(format!("gateway: cannot encode a response: {e}")))?;
    String::from_utf8(out).map_err(|e| Status::internal(format!("gateway: {e}")))
}

/// The request `value` decodes to, as a message of type `T` (described by `desc`).
pub fn to_message<T: Message + Default>(
    desc: &MessageDescriptor,
    value: &Value,
) -> Result<T, String> {
    let bytes = to_message_bytes(desc, value)?;
    T::decode(bytes.as_slice()).map_err(|e| e.to_string())
}

/// The protobuf encoding of the request `value` (a message of type `desc`).
pub fn to_message_bytes(desc: &MessageDescriptor, value: &Value) -> Result<Vec<u8>, String> {
    // Go's wording first, for the mistakes it can name.
    check_message(desc, value)?;
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic = DynamicMessage::deserialize_with_options(desc.clone(), value, &options)
        .map_err(|e| e.to_string())?;
    Ok(dynamic.encode_to_vec())
}

/// The first JSON value of a request body, as Go's `json.Decoder` reads it (what follows is
/// ignored); `None` for an empty body.
pub fn first_value(body: &[u8]) -> Result<Option<Value>, String> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    if start == body.len() {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(e)) => Err(syntax_error(body, &e)),
        None => Ok(None),
    }
}

/// A stream of JSON values read from a request body as its bytes arrive.
pub struct ValueStream {
    body: BodyDataStream,
    pending: Vec<u8>,
    ended: bool,
}

impl ValueStream {
    /// The values of `body`.
    pub fn new(body: BodyDataStream) -> Self {
        ValueStream {
            body,
            pending: Vec::new(),
            ended: false,
        }
    }

    /// The next value; `None` at the end of the body; an error (Go's wording) for bytes
    /// that are not JSON.
    pub async fn next(&mut self) -> Result<Option<Value>, String> {
        loop {
            let start = self
                .pending
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.pending.len());
            self.pending.drain(..start);
            if !self.pending.is_empty() {
                let mut values =
                    serde_json::Deserializer::from_slice(&self.pending).into_iter::<Value>();
                match values.next() {
                    Some(Ok(value)) => {
                        let used = values.byte_offset();
                        self.pending.drain(..used);
                        return Ok(Some(value));
                    }
                    Some(Err(e)) if !e.is_eof() => return Err(syntax_error(&self.pending, &e)),
                    _ => {}
                }
            }
            if self.ended {
                return if self.pending.is_empty() {
                    Ok(None)
                } else {
                    Err("unexpected EOF".to_string())
                };
            }
            if self.pending.len() > MAX_PENDING_BYTES {
                return Err("request too large".to_string());
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.pending.extend_from_slice(&chunk),
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }
}

/// Bytes to a stream of [`ValueStream`] input (for tests).
#[cfg(test)]
fn body_of(chunks: Vec<&'static str>) -> BodyDataStream {
    let stream =
        futures::stream::iter(chunks.into_iter().map(|c| {
            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(c.as_bytes()))
        }));
    axum::body::Body::from_stream(stream).into_data_stream()
}

/// Go's `encoding/json` wording of a syntax error of serde_json.
fn syntax_error(input: &[u8], error: &serde_json::Error) -> String {
    if error.is_eof() {
        return "unexpected EOF".to_string();
    }
    let text = error.to_string();
    // serde_json points at the offending character (line and column, 1-based).
    let offset = offset_of(input, error.line(), error.column());
    let character = offset
        .and_then(|at| std::str::from_utf8(&input[at..]).ok())
        .and_then(|rest| rest.chars().next());
    let Some(c) = character else {
        return text;
    };
    if let Some(literal) = offset.and_then(|at| in_literal(input, at)) {
        return format!("invalid character {} {literal}", go_quote_char(c));
    }
    let context = if text.starts_with("expected `:`") {
        "after object key"
    } else if text.starts_with("expected `,` or `}`") {
        "after object key:value pair"
    } else if text.starts_with("expected `,` or `]`") {
        "after array element"
    } else if text.starts_with("key must be a string") {
        "looking for beginning of object key string"
    } else {
        "looking for beginning of value"
    };
    format!("invalid character {} {context}", go_quote_char(c))
}

/// Go's wording of a bad character at `at` inside a `null`, `true` or `false` literal:
/// `in literal null (expecting 'u')`.
fn in_literal(input: &[u8], at: usize) -> Option<String> {
    let start = input[..at]
        .iter()
        .rposition(|b| !b.is_ascii_alphabetic())
        .map_or(0, |p| p + 1);
    let literal = match input.get(start)? {
        b'n' => "null",
        b't' => "true",
        b'f' => "false",
        _ => return None,
    };
    let expected = literal.as_bytes().get(at - start)?;
    if at == start || input[start..at] != literal.as_bytes()[..at - start] {
        return None;
    }
    Some(format!(
        "in literal {literal} (expecting {})",
        go_quote_char(char::from(*expected))
    ))
}

/// The byte offset of 1-based `line` and `column` in `input`.
fn offset_of(input: &[u8], line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += input.get(start..)?.iter().position(|&b| b == b'\n')? + 1;
    }
    let at = start + column.checked_sub(1)?;
    (at < input.len()).then_some(at)
}

/// Go's `quoteChar`.
fn go_quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        c => format!("'{}'", c.escape_debug()),
    }
}

/// The JSON kind of `value` in Go's `UnmarshalTypeError`.
fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn cannot_unmarshal(what: &str, go_type: &str) -> String {
    format!("json: cannot unmarshal {what} into Go value of type {go_type}")
}

/// jsonpb's checks of a message: an object (or null) whose known fields have the right
/// JSON types. Unknown fields are ignored, as etcd's gateway does.
fn check_message(desc: &MessageDescriptor, value: &Value) -> Result<(), String> {
    let object = match value {
        Value::Null => return Ok(()),
        Value::Object(object) => object,
        other => {
            return Err(cannot_unmarshal(
                kind_name(other),
                "map[string]json.RawMessage",
            ));
        }
    };
    for field in desc.fields() {
        let Some(value) = object
            .get(field.json_name())
            .or_else(|| object.get(field.name()))
        else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        if field.is_list() {
            let Value::Array(items) = value else {
                return Err(cannot_unmarshal(kind_name(value), "[]json.RawMessage"));
            };
            for item in items {
                check_single(&field, item)?;
            }
        } else {
            check_single(&field, value)?;
        }
    }
    Ok(())
}

/// jsonpb's checks of one value of `field`.
fn check_single(field: &FieldDescriptor, value: &Value) -> Result<(), String> {
    match field.kind() {
        Kind::Message(desc) => check_message(&desc, value),
        Kind::Bytes => match value {
            Value::String(text) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|_| ())
                .map_err(|e| {
                    let at = match e {
                        base64::DecodeError::InvalidByte(at, _)
                        | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                        base64::DecodeError::InvalidLength(len) => len,
                        base64::DecodeError::InvalidPadding => text.len(),
                    };
                    format!("illegal base64 data at input byte {at}")
                }),
            other => Err(cannot_unmarshal(kind_name(other), "[]uint8")),
        },
        Kind::String => match value {
            Value::String(_) => Ok(()),
            other => Err(cannot_unmarshal(kind_name(other), "string")),
        },
        Kind::Bool => match value {
            Value::Bool(_) => Ok(()),
            other => Err(cannot_unmarshal(kind_name(other), "bool")),
        },
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            check_integer(value, "int64", |t| t.parse::<i64>().is_ok())
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            check_integer(value, "int32", |t| t.parse::<i32>().is_ok())
        }
        Kind::Uint64 | Kind::Fixed64 => {
            check_integer(value, "uint64", |t| t.parse::<u64>().is_ok())
        }
        Kind::Uint32 | Kind::Fixed32 => {
            check_integer(value, "uint32", |t| t.parse::<u32>().is_ok())
        }
        Kind::Enum(desc) => match value {
            Value::String(name) => {
                if desc.get_value_by_name(name).is_some() {
                    Ok(())
                } else {
                    Err(format!(
                        "unknown value {} for enum {}",
                        serde_json::Value::String(name.clone()),
                        go_type_name(desc.full_name(), desc.package_name()),
                    ))
                }
            }
            Value::Number(_) => Ok(()),
            other => Err(cannot_unmarshal(
                kind_name(other),
                &go_type_name(desc.full_name(), desc.package_name()),
            )),
        },
        Kind::Float | Kind::Double => Ok(()),
    }
}

/// jsonpb's integers: a JSON number, or a string holding one.
fn check_integer(value: &Value, go_type: &str, fits: impl Fn(&str) -> bool) -> Result<(), String> {
    match value {
        Value::Number(number) => {
            let text = number.to_string();
            if fits(&text) {
                Ok(())
            } else {
                Err(cannot_unmarshal(&format!("number {text}"), go_type))
            }
        }
        Value::String(text) => {
            // jsonpb unquotes the string and reads what is inside as JSON.
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Number(number)) if fits(&number.to_string()) => Ok(()),
                Ok(inner @ Value::Number(_)) => check_integer(&inner, go_type, fits),
                Ok(other) => Err(cannot_unmarshal(kind_name(&other), go_type)),
                Err(e) => Err(syntax_error(text.as_bytes(), &e)),
            }
        }
        other => Err(cannot_unmarshal(kind_name(other), go_type)),
    }
}

/// The Go type name of a nested protobuf type: `etcdserverpb.RangeRequest.SortOrder` is
/// `etcdserverpb.RangeRequest_SortOrder`.
fn go_type_name(full_name: &str, package: &str) -> String {
    match full_name
        .strip_prefix(package)
        .and_then(|n| n.strip_prefix('.'))
    {
        Some(name) => format!("{package}.{}", name.replace('.', "_")),
        None => full_name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_desc() -> MessageDescriptor {
        super::super::descriptor("etcdserverpb.RangeRequest").unwrap()
    }

    fn decode_error(body: &str) -> String {
        match first_value(body.as_bytes()) {
            Ok(Some(value)) => to_message_bytes(&range_desc(), &value).unwrap_err(),
            Ok(None) => panic!("no value"),
            Err(message) => message,
        }
    }

    #[test]
    fn go_wording_of_bad_bodies() {
        assert_eq!(decode_error("{\"key\":\"Zm9v"), "unexpected EOF");
        assert_eq!(
            decode_error("{\"key\":5}"),
            "json: cannot unmarshal number into Go value of type []uint8"
        );
        assert_eq!(
            decode_error("{\"key\":\"Zm9v\", \"limit\":\"x\"}"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(
            decode_error("{\"key\":\"Zm9v\", \"limit\":1.5}"),
            "json: cannot unmarshal number 1.5 into Go value of type int64"
        );
        assert_eq!(
            decode_error("{\"sort_order\":\"BOGUS\"}"),
            "unknown value \"BOGUS\" for enum etcdserverpb.RangeRequest_SortOrder"
        );
        assert_eq!(
            decode_error("{\"key\":\"Zm9v!\"}"),
            "illegal base64 data at input byte 4"
        );
        assert_eq!(
            decode_error("[1]"),
            "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"
        );
        assert_eq!(
            decode_error("nope"),
            "invalid character 'o' in literal null (expecting 'u')"
        );
        assert_eq!(
            decode_error("{\"count_only\":trxe}"),
            "invalid character 'x' in literal true (expecting 'u')"
        );
        assert_eq!(
            decode_error("x"),
            "invalid character 'x' looking for beginning of value"
        );
    }

    #[test]
    fn both_field_spellings_and_enum_numbers_decode() {
        use cairn_core::api::etcdserverpb::RangeRequest;
        let value = first_value(
            br#"{"key":"Zm9v","range_end":"Zm9w","countOnly":true,"sortOrder":2,"limit":"3"} junk"#,
        )
        .unwrap()
        .unwrap();
        let request: RangeRequest = to_message(&range_desc(), &value).unwrap();
        assert_eq!(request.key, b"foo");
        assert_eq!(request.range_end, b"fop");
        assert!(request.count_only);
        assert_eq!(request.sort_order, 2);
        assert_eq!(request.limit, 3);
    }

    #[test]
    fn responses_use_proto_names_and_string_integers() {
        use cairn_core::api::etcdserverpb::{LeaseTimeToLiveResponse, ResponseHeader};
        let desc = super::super::descriptor("etcdserverpb.LeaseTimeToLiveResponse").unwrap();
        let response = LeaseTimeToLiveResponse {
            header: Some(ResponseHeader {
                cluster_id: 1,
                revision: 3,
                ..ResponseHeader::default()
            }),
            id: 77,
            ttl: 29,
            granted_ttl: 30,
            keys: vec![],
        };
        assert_eq!(
            from_message(&desc, &response).unwrap(),
            r#"{"header":{"cluster_id":"1","revision":"3"},"ID":"77","TTL":"29","grantedTTL":"30"}"#
        );
    }

    #[tokio::test]
    async fn a_stream_of_values_split_anywhere() {
        let mut values = ValueStream::new(body_of(vec!["{\"a\":", "1} {\"b\"", ":2}\n", " "]));
        assert_eq!(
            values.next().await.unwrap(),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            values.next().await.unwrap(),
            Some(serde_json::json!({"b": 2}))
        );
        assert_eq!(values.next().await.unwrap(), None);
        let mut truncated = ValueStream::new(body_of(vec!["{\"a\":"]));
        assert_eq!(truncated.next().await.unwrap_err(), "unexpected EOF");
    }
}
