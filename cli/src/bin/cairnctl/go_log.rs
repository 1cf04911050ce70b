//! The two log formats etcdctl 3.4 writes to stderr, reproduced so scripts that read
//! stderr see the same lines: capnslog's (`2006-01-02 15:04:05.000000 W | pkg/flags: ...`,
//! from the `ETCDCTL_*` environment checks) and zap's JSON warning that clientv3's retry
//! interceptor logs for every failed unary call. Times are UTC.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// capnslog's levels as etcdctl uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `W`.
    Warning,
    /// `C` (the process then exits).
    Critical,
}

/// A capnslog line from package `pkg/flags`.
pub fn capnslog_line(level: Level, message: &str) -> String {
    let letter = match level {
        Level::Warning => 'W',
        Level::Critical => 'C',
    };
    let t = UtcTime::now();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06} {letter} | pkg/flags: {message}\n",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.nanos / 1_000
    )
}

/// zap's warning for a failed unary call, as clientv3's retry interceptor logs it
/// (`attempt` counts from 0).
pub fn retry_warning(target: &str, attempt: u32, error: &str) -> String {
    let t = UtcTime::now();
    let ts = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.nanos / 1_000_000
    );
    format!(
        "{{\"level\":\"warn\",\"ts\":\"{ts}\",\"caller\":\"clientv3/retry_interceptor.go:62\",\
         \"msg\":\"retrying of unary invoker failed\",\"target\":\"{}\",\"attempt\":{attempt},\"error\":\"{}\"}}\n",
        zap_escape(target),
        zap_escape(error)
    )
}

/// A zap production-logger info line (`zap.NewProduction`, as `snapshot` commands log):
/// `ts` in seconds since the epoch; `fields` are `(name, already-encoded JSON value)`.
pub fn zap_info(caller: &str, msg: &str, fields: &[(&str, String)]) -> String {
    let ts = UtcTime::nanos_since_epoch() as f64 / 1e9;
    let mut line = format!(
        "{{\"level\":\"info\",\"ts\":{ts},\"caller\":\"{}\",\"msg\":\"{}\"",
        zap_escape(caller),
        zap_escape(msg)
    );
    for (name, value) in fields {
        line.push_str(&format!(",\"{}\":{value}", zap_escape(name)));
    }
    line.push_str("}\n");
    line
}

/// A string as a zap JSON field value.
pub fn zap_string(s: &str) -> String {
    format!("\"{}\"", zap_escape(s))
}

/// The gRPC target clientv3 names in its logs for a client over `endpoints`:
/// `endpoint://client-<uuid>/<first endpoint without scheme>`.
pub fn balancer_target(endpoints: &[String]) -> String {
    let first = endpoints.first().map_or("", |e| e.trim());
    let host = first.split_once("://").map_or(first, |(_, rest)| rest);
    format!("endpoint://client-{}/{host}", random_uuid())
}

/// The target of a call pinned to one endpoint (as `endpoint status` makes).
pub fn passthrough_target(endpoint: &str) -> String {
    format!("passthrough:///{endpoint}")
}

/// zap's JSON string escaping: quotes, backslashes and control characters only.
fn zap_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A version-4 UUID from the standard library's per-process random hasher keys: clientv3
/// names each client instance with one; it only has to differ between runs.
fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(UtcTime::nanos_since_epoch());
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A UTC calendar time.
struct UtcTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    nanos: u32,
}

impl UtcTime {
    fn now() -> UtcTime {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs();
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let of_day = secs % 86_400;
        UtcTime {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            nanos: since.subsec_nanos(),
        }
    }

    fn nanos_since_epoch() -> u128 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_correct() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn retry_warning_has_zaps_shape() {
        let line = retry_warning(
            "passthrough:///h:1",
            0,
            "rpc error: code = Unavailable desc = \"x\"",
        );
        assert!(line.starts_with("{\"level\":\"warn\",\"ts\":\""));
        assert!(line.ends_with(
            "\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary invoker failed\",\"target\":\"passthrough:///h:1\",\"attempt\":0,\"error\":\"rpc error: code = Unavailable desc = \\\"x\\\"\"}\n"
        ));
    }

    #[test]
    fn balancer_target_strips_the_scheme() {
        let t = balancer_target(&["http://127.0.0.1:2379".to_string()]);
        assert!(t.starts_with("endpoint://client-"));
        assert!(t.ends_with("/127.0.0.1:2379"));
        assert_eq!(
            t.len(),
            "endpoint://client-".len() + 36 + "/127.0.0.1:2379".len()
        );
    }

    #[test]
    fn capnslog_line_has_its_shape() {
        let line = capnslog_line(
            Level::Warning,
            "unrecognized environment variable ETCDCTL_X=1",
        );
        assert_eq!(line.len(), "2006-01-02 15:04:05.000000 W | pkg/flags: unrecognized environment variable ETCDCTL_X=1\n".len());
        assert!(line.ends_with(" W | pkg/flags: unrecognized environment variable ETCDCTL_X=1\n"));
    }
}
