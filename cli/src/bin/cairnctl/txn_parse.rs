//! The `txn` input language, parsed exactly as etcdctl 3.4 parses it
//! (`ctlv3/command/txn_command.go`): three sections (compares, success requests, failure
//! requests), each ended by an empty line.
//!
//! A compare is `<target>("<key>") <op> "<value>"`, scanned like Go's
//! `fmt.Sscanf(rest, "%q) %s %q")` so that malformed input gets etcdctl's messages; targets
//! are `ver`/`version`, `c`/`create`, `m`/`mod`, `val`/`value` and `lease` (a hexadecimal
//! lease ID, as in etcd 3.5; etcdctl 3.4 panics on it). A request is a `get`, `put` or `del`
//! command line with its usual flags, split into words like etcdctl's `argify` (double-quoted
//! words take Go escapes, single-quoted ones are literal).
//!
//! Where etcdctl 3.4 crashes (an unknown operator, a `--help` in a request line) cairnctl
//! reports invalid input instead; where it truncates single-quoted words (it slices them by
//! the number of words, not their length) cairnctl keeps them whole.

use std::io::BufRead;

use cairn_client::pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use cairn_client::pb::etcdserverpb::request_op::Request;
use cairn_client::pb::etcdserverpb::{Compare, RequestOp};

use crate::command::{del, get, put};
use crate::commands::{Action, CommandId, TXN_REQUESTS};
use crate::dispatch;
use crate::exit::CliError;
use crate::flags;
use crate::go_strconv::{self, quote, quote_bytes};
use crate::usage;

/// A request line that could not be parsed, with the usage text etcdctl writes to stderr
/// before its error (for flag errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// cobra's usage of the request's command, when etcdctl prints it.
    pub usage: Option<String>,
    /// The error and exit code.
    pub error: CliError,
}

impl From<CliError> for RequestError {
    fn from(error: CliError) -> Self {
        RequestError { usage: None, error }
    }
}

/// Reads one section: trimmed lines up to an empty one. End of input before the empty line
/// is Go's `EOF` error, as in etcdctl.
pub fn read_section(input: &mut dyn BufRead) -> Result<Vec<String>, CliError> {
    let mut lines = Vec::new();
    loop {
        let mut raw = Vec::new();
        let read = input
            .read_until(b'\n', &mut raw)
            .map_err(|e| CliError::invalid_input(e.to_string()))?;
        if read == 0 || raw.last() != Some(&b'\n') {
            return Err(CliError::invalid_input("EOF"));
        }
        let line = String::from_utf8_lossy(&raw).trim().to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Parses one compare line.
pub fn parse_compare(line: &str) -> Result<Compare, CliError> {
    let malformed =
        |detail: String| CliError::invalid_input(format!("malformed comparison: {line}{detail}"));
    let Some((target, rest)) = line.split_once('(') else {
        return Err(malformed(String::new()));
    };
    let scan = scan_compare(rest);
    if scan.count != 3 {
        return Err(malformed(format!(
            "; got {target}({}) {} {}",
            quote_bytes(&scan.key),
            scan.op,
            quote_bytes(&scan.value)
        )));
    }
    let invalid = || CliError::invalid_input(format!("invalid txn compare request: {line}"));
    let number = |base| {
        go_strconv::parse_int(&String::from_utf8_lossy(&scan.value), base).map_err(|_| invalid())
    };
    let (target, union) = match target {
        "ver" | "version" => (CompareTarget::Version, TargetUnion::Version(number(10)?)),
        "c" | "create" => (
            CompareTarget::Create,
            TargetUnion::CreateRevision(number(10)?),
        ),
        "m" | "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(number(10)?)),
        "val" | "value" => (CompareTarget::Value, TargetUnion::Value(scan.value.clone())),
        "lease" => (CompareTarget::Lease, TargetUnion::Lease(number(16)?)),
        other => return Err(malformed(format!(" (unknown target {other})"))),
    };
    let result = match scan.op.as_str() {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        ">" => CompareResult::Greater,
        "<" => CompareResult::Less,
        other => return Err(malformed(format!(" (unknown operator {})", quote(other)))),
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key: scan.key,
        target_union: Some(union),
        range_end: Vec::new(),
    })
}

/// What `fmt.Sscanf(rest, "%q) %s %q", &key, &op, &value)` assigned before it stopped.
#[derive(Debug, Default)]
struct CompareScan {
    count: usize,
    key: Vec<u8>,
    op: String,
    value: Vec<u8>,
}

fn scan_compare(rest: &str) -> CompareScan {
    let mut scan = CompareScan::default();
    let mut s = Scanner::new(rest);
    let Some(key) = s.quoted() else { return scan };
    scan.key = key;
    scan.count = 1;
    if !s.literal(')') || !s.format_space() {
        return scan;
    }
    let Some(op) = s.word() else { return scan };
    scan.op = op;
    scan.count = 2;
    if !s.format_space() {
        return scan;
    }
    let Some(value) = s.quoted() else { return scan };
    scan.value = value;
    scan.count = 3;
    scan
}

/// The subset of Go's `fmt` scanning the compare syntax uses.
struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    fn new(input: &'a str) -> Scanner<'a> {
        Scanner { rest: input }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest.chars().next()?;
        self.rest = &self.rest[c.len_utf8()..];
        Some(c)
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(is_go_scan_space);
    }

    /// A literal format character: must be the next input character.
    fn literal(&mut self, expected: char) -> bool {
        self.next() == Some(expected)
    }

    /// A space in the format: one or more spaces in the input, or the end of input.
    fn format_space(&mut self) -> bool {
        match self.rest.chars().next() {
            None => true,
            Some(c) if is_go_scan_space(c) => {
                self.skip_spaces();
                true
            }
            Some(_) => false,
        }
    }

    /// `%s`: the next space-delimited word (there must be one).
    fn word(&mut self) -> Option<String> {
        self.skip_spaces();
        let end = self.rest.find(is_go_scan_space).unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(word.to_string())
    }

    /// `%q`: a double-quoted (Go escapes) or back-quoted string.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.skip_spaces();
        match self.next()? {
            '`' => {
                let end = self.rest.find('`')?;
                let raw = self.rest.as_bytes()[..end].to_vec();
                self.rest = &self.rest[end + 1..];
                Some(raw)
            }
            '"' => {
                let mut literal = String::from("\"");
                loop {
                    let c = self.next()?;
                    literal.push(c);
                    match c {
                        '\\' => literal.push(self.next()?),
                        '"' => break,
                        _ => {}
                    }
                }
                go_strconv::unquote(&literal).ok()
            }
            _ => None,
        }
    }
}

/// Go `fmt`'s notion of a space when scanning.
fn is_go_scan_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Parses one request line (`get ...`, `put ...`, `del ...`).
pub fn parse_request(line: &str) -> Result<RequestOp, RequestError> {
    let invalid = || CliError::invalid_input(format!("invalid txn request: {line}"));
    let args = argify(line)?;
    if args.len() < 2 {
        return Err(CliError::invalid_input(format!("invalid txn compare request: {line}")).into());
    }
    let (path, rest) = dispatch::find_in(&TXN_REQUESTS, &args);
    let command = path.last().copied().unwrap_or(&TXN_REQUESTS);
    let Action::Run(id) = command.action else {
        return Err(invalid().into());
    };
    let parsed = flags::parse(&dispatch::flag_scope(&path), &rest).map_err(|_| RequestError {
        usage: Some(usage::cobra_default_usage(command) + "\n"),
        error: invalid(),
    })?;
    if parsed.values.bool("help") {
        return Err(invalid().into());
    }
    let request = match id {
        CommandId::Get => Request::RequestRange(get::request(&parsed.args, &parsed.values)?),
        CommandId::Put => Request::RequestPut(put::request(&parsed.args, &parsed.values, None)?),
        CommandId::Del => Request::RequestDeleteRange(del::request(&parsed.args, &parsed.values)?),
        _ => return Err(invalid().into()),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

/// etcdctl's `argify`: words, `"double quoted"` (Go escapes) or `'single quoted'` (literal).
/// It is the regular expression `"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`, applied
/// left to right; characters no alternative matches (an unpaired quote) are skipped.
pub fn argify(line: &str) -> Result<Vec<String>, CliError> {
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let matched = match c {
            '"' => double_quoted(rest),
            '\'' => rest[1..].find('\'').map(|end| end + 2),
            c if c.is_whitespace() => None,
            _ => Some(bare_word(rest)),
        };
        let Some(len) = matched else {
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let token = &rest[..len];
        rest = &rest[len..];
        words.push(unquote_word(token)?);
    }
    Ok(words)
}

/// The length of a `"..."` word with backslash escapes, if it is closed.
fn double_quoted(s: &str) -> Option<usize> {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next()?;
            }
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// `[^'"\s]\S*[^'"\s]?`: a non-quote start, then everything up to whitespace.
fn bare_word(s: &str) -> usize {
    s.find(char::is_whitespace).unwrap_or(s.len())
}

fn unquote_word(token: &str) -> Result<String, CliError> {
    if token.starts_with('\'') {
        return Ok(token[1..token.len() - 1].to_string());
    }
    if token.starts_with('"') {
        let bytes =
            go_strconv::unquote(token).map_err(|e| CliError::invalid_input(e.to_string()))?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;
    use cairn_client::pb::etcdserverpb::{PutRequest, RangeRequest};

    #[test]
    fn compare_on_value() {
        let c = parse_compare(r#"value("a") = "1""#).unwrap();
        assert_eq!(c.target, CompareTarget::Value as i32);
        assert_eq!(c.result, CompareResult::Equal as i32);
        assert_eq!(c.key, b"a");
        assert_eq!(c.target_union, Some(TargetUnion::Value(b"1".to_vec())));
    }

    #[test]
    fn compare_targets_and_operators() {
        let c = parse_compare(r#"mod("k") > "5""#).unwrap();
        assert_eq!(
            (c.target, c.result),
            (CompareTarget::Mod as i32, CompareResult::Greater as i32)
        );
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(5)));
        let c = parse_compare(r#"ver("k") != "0""#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::Version(0)));
        assert_eq!(c.result, CompareResult::NotEqual as i32);
        let c = parse_compare(r#"c("k") < "10""#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::CreateRevision(10)));
        let c = parse_compare(r#"lease("k") = "694d77aa9e38260f""#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::Lease(0x694d77aa9e38260f)));
    }

    #[test]
    fn compare_strings_take_go_escapes_and_raw_strings() {
        let c = parse_compare(r#"value("a\x00b") = "tab\there""#).unwrap();
        assert_eq!(c.key, b"a\0b");
        assert_eq!(
            c.target_union,
            Some(TargetUnion::Value(b"tab\there".to_vec()))
        );
        let c = parse_compare(r#"value(`raw\n`) = "x""#).unwrap();
        assert_eq!(c.key, b"raw\\n");
    }

    #[test]
    fn trailing_text_after_a_compare_is_ignored_as_sscanf_does() {
        assert!(parse_compare(r#"mod("a") = "5" junk"#).is_ok());
    }

    #[test]
    fn malformed_compares_report_what_was_scanned() {
        let e = |line: &str| parse_compare(line).unwrap_err();
        assert_eq!(
            e("bad"),
            CliError::invalid_input("malformed comparison: bad")
        );
        assert_eq!(
            e(r#"value("a")="1""#),
            CliError::invalid_input(r#"malformed comparison: value("a")="1"; got value("a")  """#)
        );
        assert_eq!(
            e(r#"value(a) = "1""#),
            CliError::invalid_input(r#"malformed comparison: value(a) = "1"; got value("")  """#)
        );
        assert_eq!(
            e(r#"value("a") = 1"#),
            CliError::invalid_input(r#"malformed comparison: value("a") = 1; got value("a") = """#)
        );
        assert_eq!(
            e(r#"foo("a") = "1""#),
            CliError::invalid_input(r#"malformed comparison: foo("a") = "1" (unknown target foo)"#)
        );
        assert_eq!(
            e(r#"mod("a") > "x""#),
            CliError::invalid_input(r#"invalid txn compare request: mod("a") > "x""#)
        );
        assert_eq!(e(r#"mod("a") >= "5""#).code, exit::INVALID_INPUT);
    }

    #[test]
    fn argify_splits_quotes_like_etcdctl() {
        assert_eq!(
            argify(r#"put "sp ace" "v\tx""#).unwrap(),
            ["put", "sp ace", "v\tx"]
        );
        assert_eq!(
            argify("put q 'hi there'").unwrap(),
            ["put", "q", "hi there"]
        );
        assert_eq!(argify(r#"get a"b c""#).unwrap(), ["get", "a\"b", "c\""]);
        assert_eq!(argify(r#"get " a"#).unwrap(), ["get", "a"]);
        assert_eq!(
            argify(r#"put k "\q""#).unwrap_err(),
            CliError::invalid_input("invalid syntax")
        );
    }

    #[test]
    fn request_lines_use_the_commands_flags() {
        let op = parse_request("put k v --prev-kv").unwrap();
        let want = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            prev_kv: true,
            ..Default::default()
        };
        assert_eq!(op.request, Some(Request::RequestPut(want)));
        let op = parse_request("g a --prefix --limit 1").unwrap();
        let Some(Request::RequestRange(RangeRequest {
            key,
            range_end,
            limit,
            ..
        })) = op.request
        else {
            panic!("expected a range request");
        };
        assert_eq!((key, range_end, limit), (b"a".to_vec(), b"b".to_vec(), 1));
    }

    #[test]
    fn bad_request_lines_read_like_etcdctl() {
        let e = parse_request("bogus a b").unwrap_err();
        assert_eq!(
            e,
            RequestError {
                usage: None,
                error: CliError::invalid_input("invalid txn request: bogus a b")
            }
        );
        let e = parse_request("get").unwrap_err();
        assert_eq!(
            e.error,
            CliError::invalid_input("invalid txn compare request: get")
        );
        let e = parse_request("get a -w json").unwrap_err();
        assert_eq!(
            e.error,
            CliError::invalid_input("invalid txn request: get a -w json")
        );
        assert!(
            e.usage
                .unwrap_or_default()
                .starts_with("Usage:\n   get [options] <key> [range_end] [flags]\n")
        );
        assert_eq!(
            parse_request("put a").unwrap_err().error.code,
            exit::BAD_ARGS
        );
    }

    #[test]
    fn sections_end_at_an_empty_line_and_need_one() {
        let mut input: &[u8] = b"  value(\"a\") = \"1\"  \n\nrest\n";
        assert_eq!(read_section(&mut input).unwrap(), [r#"value("a") = "1""#]);
        let mut input: &[u8] = b"put a b\n";
        assert_eq!(
            read_section(&mut input).unwrap_err(),
            CliError::invalid_input("EOF")
        );
        let mut input: &[u8] = b"no newline";
        assert_eq!(
            read_section(&mut input).unwrap_err(),
            CliError::invalid_input("EOF")
        );
    }
}
