//! Go's `time.Duration` text forms: `ParseDuration` (what etcdctl's `--dial-timeout` and
//! `--command-timeout` accept, with Go's error messages) and `Duration.String` (how
//! `endpoint health` prints `took = 1.629586ms`).

use std::time::Duration;

/// A signed Go duration in nanoseconds.
pub type GoDuration = i64;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
pub fn parse(orig: &str) -> Result<GoDuration, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let (negative, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let (nanos, rest) = parse_component(s, orig)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= 1 << 63)
            .ok_or_else(invalid)?;
        s = rest;
    }
    match negative {
        true => Ok((total as i64).wrapping_neg()),
        false => i64::try_from(total).map_err(|_| invalid()),
    }
}

/// One `<number><unit>` component: its length in nanoseconds and the rest of the input.
fn parse_component<'a>(s: &'a str, orig: &str) -> Result<(u64, &'a str), String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let whole = leading_int(&s[..int_len]).ok_or_else(invalid)?;
    let mut rest = &s[int_len..];
    let mut fraction = (0u64, 1f64);
    let mut frac_len = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        fraction = leading_fraction(&after_dot[..frac_len]);
        rest = &after_dot[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        return Err(invalid());
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    if unit_len == 0 {
        return Err(format!("time: missing unit in duration {}", quote(orig)));
    }
    let unit_name = &rest[..unit_len];
    let unit = unit_nanos(unit_name).ok_or_else(|| {
        format!(
            "time: unknown unit {} in duration {}",
            quote(unit_name),
            quote(orig)
        )
    })?;
    let mut nanos = whole
        .checked_mul(unit)
        .filter(|v| *v <= 1 << 63)
        .ok_or_else(invalid)?;
    if fraction.0 > 0 {
        nanos += (fraction.0 as f64 * (unit as f64 / fraction.1)) as u64;
        if nanos > 1 << 63 {
            return Err(invalid());
        }
    }
    Ok((nanos, &rest[unit_len..]))
}

fn leading_int(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, b| {
        let v = acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        (v <= 1 << 63).then_some(v)
    })
}

/// The digits after the point as (value, scale), dropping digits that would overflow.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut value = 0u64;
    let mut scale = 1f64;
    let mut overflow = false;
    for b in digits.bytes() {
        if overflow {
            continue;
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) if v <= 1 << 63 => {
                value = v;
                scale *= 10.0;
            }
            _ => overflow = true,
        }
    }
    (value, scale)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    match unit {
        "ns" => Some(1),
        "us" | "\u{b5}s" | "\u{3bc}s" => Some(1_000),
        "ms" => Some(1_000_000),
        "s" => Some(NANOS_PER_SECOND),
        "m" => Some(60 * NANOS_PER_SECOND),
        "h" => Some(3600 * NANOS_PER_SECOND),
        _ => None,
    }
}

/// Go's `time` package quoting (not `strconv.Quote`): non-ASCII and control bytes as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if !c.is_ascii() || (c as u32) < 0x20 {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
            continue;
        }
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Go's `Duration.String`: `1.629586ms`, `2m3.5s`, `500µs`, `0s`.
pub fn format(nanos: GoDuration) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u == 0 {
        return "0s".to_string();
    }
    if u < NANOS_PER_SECOND {
        let (prec, unit) = match u {
            u if u < 1_000 => (0, "ns"),
            u if u < 1_000_000 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        return format!("{sign}{}{unit}", with_fraction(u, prec));
    }
    let seconds = with_fraction(u, 9);
    let whole_seconds = u / NANOS_PER_SECOND;
    let (minutes, hours) = (whole_seconds / 60 % 60, whole_seconds / 3600);
    let seconds_text = seconds_part(&seconds, whole_seconds);
    match (hours, whole_seconds / 60) {
        (0, 0) => format!("{sign}{seconds_text}s"),
        (0, _) => format!("{sign}{minutes}m{seconds_text}s"),
        _ => format!("{sign}{hours}h{minutes}m{seconds_text}s"),
    }
}

/// `v / 10^prec` with its fraction, trailing zeros (and a bare point) dropped.
fn with_fraction(v: u64, prec: u32) -> String {
    let scale = 10u64.pow(prec);
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The seconds field once minutes and hours are split off: `<s % 60>[.<fraction>]`.
fn seconds_part(with_fraction_text: &str, whole_seconds: u64) -> String {
    let fraction = with_fraction_text.split_once('.').map(|(_, f)| f);
    match fraction {
        Some(f) => format!("{}.{f}", whole_seconds % 60),
        None => (whole_seconds % 60).to_string(),
    }
}

/// A non-negative Go duration as a std `Duration` (negative ones as zero).
pub fn to_std(nanos: GoDuration) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// A std `Duration` as a Go duration, saturating.
pub fn from_std(d: Duration) -> GoDuration {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("5s"), Ok(5_000_000_000));
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("300ms"), Ok(300_000_000));
        assert_eq!(parse("1h2m3s"), Ok(3_723_000_000_000));
        assert_eq!(parse("-1.5us"), Ok(-1_500));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse(".5s"), Ok(500_000_000));
    }

    #[test]
    fn parse_errors_read_like_go() {
        assert_eq!(
            parse("3").unwrap_err(),
            r#"time: missing unit in duration "3""#
        );
        assert_eq!(
            parse("3x").unwrap_err(),
            r#"time: unknown unit "x" in duration "3x""#
        );
        assert_eq!(parse("x").unwrap_err(), r#"time: invalid duration "x""#);
        assert_eq!(parse("").unwrap_err(), r#"time: invalid duration """#);
        assert_eq!(parse(".s").unwrap_err(), r#"time: invalid duration ".s""#);
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(1_629_586), "1.629586ms");
        assert_eq!(format(1_001_286_524), "1.001286524s");
        assert_eq!(format(500_000), "500\u{b5}s");
        assert_eq!(format(999), "999ns");
        assert_eq!(format(123_500_000_000), "2m3.5s");
        assert_eq!(format(3_600_000_000_000), "1h0m0s");
        assert_eq!(format(-1_500_000), "-1.5ms");
    }
}
