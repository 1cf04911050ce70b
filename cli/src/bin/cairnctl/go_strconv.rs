//! The parts of Go's `strconv` that etcdctl's behaviour and messages depend on: `Quote`
//! (what `%q` prints), `Unquote` (what `%q` scans), `ParseInt` and `ParseBool`, with Go's
//! exact error texts (`strconv.ParseInt: parsing "x": invalid syntax`), because etcdctl
//! prints them verbatim.

use std::fmt;

/// A failed `ParseInt`/`ParseBool`, displayed as Go's `*strconv.NumError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumError {
    /// The Go function name, e.g. `ParseInt`.
    pub func: &'static str,
    /// The input.
    pub input: String,
    /// `invalid syntax` or `value out of range`.
    pub reason: NumErrorReason,
}

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumErrorReason {
    /// Go's `strconv.ErrSyntax`.
    Syntax,
    /// Go's `strconv.ErrRange`.
    Range,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason {
            NumErrorReason::Syntax => "invalid syntax",
            NumErrorReason::Range => "value out of range",
        };
        write!(
            f,
            "strconv.{}: parsing {}: {reason}",
            self.func,
            quote(&self.input)
        )
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, NumError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(NumError {
            func: "ParseBool",
            input: s.to_string(),
            reason: NumErrorReason::Syntax,
        }),
    }
}

/// Go's `strconv.ParseInt(s, base, 64)` for base 0 (prefixes `0x`, `0o`, `0b`, a leading
/// `0` for octal, and `_` separators) or an explicit base 2..=36.
pub fn parse_int(s: &str, base: u32) -> Result<i64, NumError> {
    let err = |reason| NumError {
        func: "ParseInt",
        input: s.to_string(),
        reason,
    };
    let (negative, unsigned) = match s.as_bytes().first() {
        None => return Err(err(NumErrorReason::Syntax)),
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        Some(_) => (false, s),
    };
    let magnitude = parse_uint(unsigned, base).map_err(err)?;
    let limit = 1u64 << 63;
    match (negative, magnitude) {
        (false, m) if m < limit => Ok(m as i64),
        (true, m) if m <= limit => Ok((m as i64).wrapping_neg()),
        _ => Err(err(NumErrorReason::Range)),
    }
}

/// Go's `strconv.ParseUint(s, base, 64)` (no sign allowed).
pub fn parse_uint_base(s: &str, base: u32) -> Result<u64, NumError> {
    parse_uint(s, base).map_err(|reason| NumError {
        func: "ParseUint",
        input: s.to_string(),
        reason,
    })
}

/// Go's `ParseUint` core: the magnitude, or why it failed.
fn parse_uint(s0: &str, base: u32) -> Result<u64, NumErrorReason> {
    if s0.is_empty() {
        return Err(NumErrorReason::Syntax);
    }
    let base0 = base == 0;
    let (digits, base) = if base0 {
        split_base_prefix(s0)
    } else {
        (s0, base)
    };
    let mut value: u64 = 0;
    let mut underscores = false;
    for c in digits.chars() {
        if c == '_' && base0 {
            underscores = true;
            continue;
        }
        let d = c
            .to_digit(36)
            .filter(|d| *d < base)
            .ok_or(NumErrorReason::Syntax)?;
        value = value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(NumErrorReason::Range)?;
    }
    if underscores && !underscore_ok(s0) {
        return Err(NumErrorReason::Syntax);
    }
    Ok(value)
}

/// Base 0: the digits after any prefix and the base they are in (`0x`, `0o`, `0b` need a
/// digit after them; a lone leading `0` means octal).
fn split_base_prefix(s: &str) -> (&str, u32) {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'0') {
        return (s, 10);
    }
    match bytes.get(1).map(u8::to_ascii_lowercase) {
        Some(b'b') if bytes.len() >= 3 => (&s[2..], 2),
        Some(b'o') if bytes.len() >= 3 => (&s[2..], 8),
        Some(b'x') if bytes.len() >= 3 => (&s[2..], 16),
        _ => (&s[1..], 8),
    }
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscore_ok(s: &str) -> bool {
    // saw: '^' start, '0' digit or prefix, '_' underscore, '!' other.
    let mut saw = '^';
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut hex = false;
    if bytes.len() >= 2 && bytes[0] == b'0' {
        let p = bytes[1].to_ascii_lowercase();
        if p == b'x' || p == b'o' || p == b'b' {
            hex = p == b'x';
            i = 2;
            saw = '0';
        }
    }
    for &b in &bytes[i..] {
        let is_digit = b.is_ascii_digit() || (hex && b.is_ascii_hexdigit());
        if is_digit {
            saw = '0';
        } else if b == b'_' {
            if saw != '0' {
                return false;
            }
            saw = '_';
        } else {
            if saw == '_' {
                return false;
            }
            saw = '!';
        }
    }
    saw != '_'
}

/// Go's `strconv.Quote`: a double-quoted Go string literal.
pub fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

/// Go's `strconv.Quote` of arbitrary bytes (`%q` of `string(b)`): invalid UTF-8 as `\xNN`.
pub fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_quoted_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

fn push_quoted_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// An approximation of Go's `strconv.IsPrint` without Unicode tables: exact for ASCII;
/// beyond it, controls, spaces other than U+0020, common format characters, private use
/// and non-characters are not printable.
pub fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    let format_chars = [0xad, 0x61c, 0x180e, 0xfeff];
    !(c.is_control()
        || c.is_whitespace()
        || format_chars.contains(&u)
        || (0x200b..=0x200f).contains(&u)
        || (0x2028..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || u >= 0xf0000
        || (u & 0xfffe) == 0xfffe)
}

/// Go's `strconv.ErrSyntax` from `Unquote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnquoteError;

impl fmt::Display for UnquoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid syntax")
    }
}

/// Go's `strconv.Unquote` for double-quoted and back-quoted literals (the two forms `%q`
/// scans). The result may hold arbitrary bytes (`\xff`), hence `Vec<u8>`.
pub fn unquote(s: &str) -> Result<Vec<u8>, UnquoteError> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 || bytes[0] != bytes[bytes.len() - 1] {
        return Err(UnquoteError);
    }
    let inner = &s[1..s.len() - 1];
    match bytes[0] {
        b'`' if !inner.contains('`') => Ok(inner.replace('\r', "").into_bytes()),
        b'"' => unquote_double(inner),
        _ => Err(UnquoteError),
    }
}

fn unquote_double(inner: &str) -> Result<Vec<u8>, UnquoteError> {
    if inner.contains('\n') {
        return Err(UnquoteError);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(c) = rest.chars().next() {
        match c {
            '"' => return Err(UnquoteError),
            '\\' => rest = unescape(&rest[1..], &mut out)?,
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Ok(out)
}

/// Decodes one escape (after its backslash) into `out`; returns the rest of the input.
fn unescape<'a>(s: &'a str, out: &mut Vec<u8>) -> Result<&'a str, UnquoteError> {
    let c = s.chars().next().ok_or(UnquoteError)?;
    let simple = match c {
        'a' => Some(7u8),
        'b' => Some(8),
        'f' => Some(12),
        'n' => Some(b'\n'),
        'r' => Some(b'\r'),
        't' => Some(b'\t'),
        'v' => Some(11),
        '\\' => Some(b'\\'),
        '"' => Some(b'"'),
        _ => None,
    };
    if let Some(b) = simple {
        out.push(b);
        return Ok(&s[1..]);
    }
    match c {
        '0'..='7' => {
            let v = digits_value(s.get(..3).ok_or(UnquoteError)?, 8)?;
            out.push(u8::try_from(v).map_err(|_| UnquoteError)?);
            Ok(&s[3..])
        }
        'x' => {
            let v = digits_value(s.get(1..3).ok_or(UnquoteError)?, 16)?;
            out.push(u8::try_from(v).map_err(|_| UnquoteError)?);
            Ok(&s[3..])
        }
        'u' | 'U' => {
            let n = if c == 'u' { 4 } else { 8 };
            let v = digits_value(s.get(1..1 + n).ok_or(UnquoteError)?, 16)?;
            let ch = char::from_u32(v).ok_or(UnquoteError)?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            Ok(&s[1 + n..])
        }
        _ => Err(UnquoteError),
    }
}

fn digits_value(digits: &str, radix: u32) -> Result<u32, UnquoteError> {
    digits.chars().try_fold(0u32, |acc, c| {
        let d = c.to_digit(radix).ok_or(UnquoteError)?;
        Ok(acc * radix + d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_base0_accepts_go_literals() {
        assert_eq!(parse_int("42", 0), Ok(42));
        assert_eq!(parse_int("-0x10", 0), Ok(-16));
        assert_eq!(parse_int("010", 0), Ok(8));
        assert_eq!(parse_int("0b101", 0), Ok(5));
        assert_eq!(parse_int("1_000", 0), Ok(1000));
        assert_eq!(parse_int("-9223372036854775808", 0), Ok(i64::MIN));
    }

    #[test]
    fn parse_int_errors_read_like_go() {
        let e = parse_int("abc", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        let e = parse_int("9223372036854775808", 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"strconv.ParseInt: parsing "9223372036854775808": value out of range"#
        );
        assert!(parse_int("", 10).is_err());
        assert!(parse_int("1__0", 0).is_err());
        assert!(parse_int("0x", 0).is_err());
        assert!(parse_int("1_0", 10).is_err());
    }

    #[test]
    fn parse_int_hex_is_what_lease_ids_use() {
        assert_eq!(parse_int("694d77aa9e38260f", 16), Ok(0x694d77aa9e38260f));
        assert!(parse_int("0x10", 16).is_err());
        assert_eq!(
            parse_int("zz", 16).unwrap_err().to_string(),
            r#"strconv.ParseInt: parsing "zz": invalid syntax"#
        );
    }

    #[test]
    fn parse_bool_accepts_gos_spellings() {
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_bool("False"), Ok(false));
        assert_eq!(
            parse_bool("maybe").unwrap_err().to_string(),
            r#"strconv.ParseBool: parsing "maybe": invalid syntax"#
        );
    }

    #[test]
    fn quote_escapes_like_go() {
        assert_eq!(quote("a\"b\\c\n\t\u{7f}é"), r#""a\"b\\c\n\t\x7fé""#);
        assert_eq!(quote_bytes(b"\xff\x00"), r#""\xff\x00""#);
        assert_eq!(quote("\u{200b}"), r#""\u200b""#);
    }

    #[test]
    fn unquote_handles_escapes_and_raw_strings() {
        assert_eq!(
            unquote(r#""a\tb\x41\101\u00e9""#),
            Ok("a\tbAAé".as_bytes().to_vec())
        );
        assert_eq!(unquote("`raw\\n`"), Ok(b"raw\\n".to_vec()));
        assert_eq!(unquote(r#""\xff""#), Ok(vec![0xff]));
        assert!(unquote(r#""a"b""#).is_err());
        assert!(unquote(r#""\q""#).is_err());
        assert!(unquote(r#""\'""#).is_err());
        assert!(unquote("\"abc").is_err());
    }
}
