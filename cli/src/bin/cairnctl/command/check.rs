//! `check perf` and `check datascale` (etcdctl 3.4's `check.go`): a write load of a fixed
//! model (`--load s|m|l|xl`) under `--prefix`, then etcdctl's verdict. `perf` writes at the
//! model's rate for its duration and passes when the throughput reaches 90% of the rate,
//! the slowest write took at most 0.5 s and the standard deviation is at most 0.1 s.
//! `datascale` writes the model's number of keys and reports how much the resident memory of
//! the first endpoint grew, read from its `/metrics` (`process_resident_memory_bytes`), as
//! etcdctl does. Both refuse a prefix that already has keys, delete their keys at the end,
//! and compact and defragment with `--auto-compact` and `--auto-defrag`.
//!
//! The load runs on the benchmark's closed loop ([`crate::bench::runner`]) over one
//! connection per client, as etcdctl makes one client per worker.

use std::sync::Arc;
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::range_end;
use crate::bench::pool::Pool;
use crate::bench::report::Report;
use crate::bench::runner::{self, MakeCall, Plan};
use crate::bench::{BenchOptions, SEED, keys};
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::globals::Globals;
use crate::output::Printer;
use crate::session::{self, Env, Session};

/// A `check perf` workload model (etcdctl's `checkPerfCfg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfModel {
    /// Writes per second.
    pub limit: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds the load runs.
    pub duration: u64,
}

/// A `check datascale` workload model (etcdctl's `checkDatascaleCfg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatascaleModel {
    /// Keys written.
    pub limit: u64,
    /// Bytes per key-value pair (as printed).
    pub kv_size: u64,
    /// Concurrent clients.
    pub clients: usize,
}

/// etcdctl's load aliases: `s`/`small`, `m`/`medium`, `l`/`large`, `xl`/`xLarge`.
pub fn model_name(load: &str) -> Result<&'static str, CliError> {
    match load {
        "s" | "small" => Ok("s"),
        "m" | "medium" => Ok("m"),
        "l" | "large" => Ok("l"),
        "xl" | "xLarge" => Ok("xl"),
        other => Err(CliError::bad_feature(format!(
            "unknown load option {other}"
        ))),
    }
}

/// The `check perf` model of `--load`.
pub fn perf_model(load: &str) -> Result<PerfModel, CliError> {
    let (limit, clients) = match model_name(load)? {
        "s" => (150, 50),
        "m" => (1000, 200),
        "l" => (8000, 500),
        _ => (15000, 1000),
    };
    Ok(PerfModel {
        limit,
        clients,
        duration: 60,
    })
}

/// The `check datascale` model of `--load`.
pub fn datascale_model(load: &str) -> Result<DatascaleModel, CliError> {
    let (limit, clients) = match model_name(load)? {
        "s" => (10_000, 50),
        "m" => (100_000, 200),
        "l" => (1_000_000, 500),
        _ => (3_000_000, 1000),
    };
    Ok(DatascaleModel {
        limit,
        kv_size: 1024,
        clients,
    })
}

/// The flags both checks share.
struct CheckFlags {
    prefix: String,
    auto_compact: bool,
    auto_defrag: bool,
}

impl CheckFlags {
    fn of(invocation: &Invocation) -> CheckFlags {
        CheckFlags {
            prefix: invocation.values.str("prefix").to_string(),
            auto_compact: invocation.values.bool("auto-compact"),
            auto_defrag: invocation.values.bool("auto-defrag"),
        }
    }
}

/// Runs `check perf`.
pub async fn perf(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let model = perf_model(invocation.values.str("load"))?;
    let flags = CheckFlags::of(invocation);
    let (session, globals) = open(invocation, env, console).await?;
    refuse_used_prefix(&session, &flags.prefix, console).await?;
    let pool = Pool::connect(&pool_options(&globals, model.clients)).await?;
    let plan = Plan {
        total: model.limit * model.duration,
        rate: model.limit,
        clients: model.clients,
    };
    let report = runner::closed_loop("perf", &pool, plan, writes(&flags.prefix, 256, 1024)).await;
    clean_up(&session, &globals, &flags, console).await?;
    let summary = report.summary();
    let mut ok = print_errors(&report, console);
    let throughput = summary.rps as i64 + 1;
    if summary.rps / model.limit as f64 <= 0.9 {
        console.out(&format!(
            "FAIL: Throughput too low: {throughput} writes/s\n"
        ));
        ok = false;
    } else {
        console.out(&format!("PASS: Throughput is {throughput} writes/s\n"));
    }
    if summary.slowest > 0.5 {
        console.out(&format!(
            "Slowest request took too long: {:.6}s\n",
            summary.slowest
        ));
        ok = false;
    } else {
        console.out(&format!(
            "PASS: Slowest request took {:.6}s\n",
            summary.slowest
        ));
    }
    if summary.stddev > 0.1 {
        console.out(&format!("Stddev too high: {:.6}s\n", summary.stddev));
        ok = false;
    } else {
        console.out(&format!("PASS: Stddev is {:.6}s\n", summary.stddev));
    }
    match ok {
        true => {
            console.out("PASS\n");
            Ok(())
        }
        false => {
            console.out("FAIL\n");
            Err(CliError::silent(exit::ERROR))
        }
    }
}

/// Runs `check datascale`.
pub async fn datascale(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let model = datascale_model(invocation.values.str("load"))?;
    let flags = CheckFlags::of(invocation);
    let (session, globals) = open(invocation, env, console).await?;
    refuse_used_prefix(&session, &flags.prefix, console).await?;
    let endpoint = globals.endpoints.first().cloned().unwrap_or_default();
    let before = resident_memory(&endpoint, &globals, console).await;
    if before == 0.0 {
        console
            .out("FAIL: Could not read process_resident_memory_bytes before the put operations.\n");
        return Err(CliError::silent(exit::ERROR));
    }
    console.out(&format!(
        "Start data scale check for work load [{} key-value pairs, {} bytes per key-value, {} concurrent clients].\n",
        model.limit, model.kv_size, model.clients
    ));
    let pool = Pool::connect(&pool_options(&globals, model.clients)).await?;
    let plan = Plan {
        total: model.limit,
        rate: 0,
        clients: model.clients,
    };
    let report =
        runner::closed_loop("datascale", &pool, plan, writes(&flags.prefix, 512, 512)).await;
    let after = resident_memory(&endpoint, &globals, console).await;
    if after == 0.0 {
        console
            .out("FAIL: Could not read process_resident_memory_bytes after the put operations.\n");
        return Err(CliError::silent(exit::ERROR));
    }
    clean_up(&session, &globals, &flags, console).await?;
    if !print_errors(&report, console) {
        return Err(CliError::silent(exit::ERROR));
    }
    let mb_used = (after - before) / (1024.0 * 1024.0);
    console.out(&format!(
        "PASS: Approximate system memory used : {mb_used:.2} MB.\n"
    ));
    Ok(())
}

/// The command's session (for the prefix check and the clean-up) and its options.
async fn open(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(Session, Globals), CliError> {
    let globals = Session::globals(invocation, env, console)?;
    let printer = Printer::new(&globals.write_out, globals.hex)?;
    let session = Session::connect(globals.clone(), printer, console).await?;
    Ok((session, globals))
}

/// The connections of a check: one per client, to the endpoints in turn.
fn pool_options(globals: &Globals, clients: usize) -> BenchOptions {
    BenchOptions {
        endpoints: globals.endpoints.clone(),
        clients,
        conns: clients,
        precise: false,
        json: false,
        target_leader: false,
        dial_timeout: globals.dial_timeout(),
        tls: globals.tls.clone(),
    }
}

/// Puts of `value_size` zero bytes to `prefix` + a `key_size`-byte key holding a random
/// number as a Go varint (etcdctl's `binary.PutVarint(k, rand.Int63n(math.MaxInt64))`).
fn writes(prefix: &str, key_size: usize, value_size: usize) -> MakeCall {
    let prefix = prefix.as_bytes().to_vec();
    let value = Arc::new(vec![0u8; value_size]);
    Arc::new(move |client, _worker, n| {
        let number = keys::key_number(n, i64::MAX as u64, false, SEED);
        let mut key = prefix.clone();
        key.extend(keys::key(number, key_size).unwrap_or_default());
        let request = PutRequest {
            key,
            value: value.to_vec(),
            ..Default::default()
        };
        Box::pin(async move { client.kv_put(request).await.map(|_| ()) })
    })
}

/// etcdctl's check that the prefix is unused (exit 3 otherwise).
async fn refuse_used_prefix(
    session: &Session,
    prefix: &str,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let (key, range_end) = range_end::with_prefix(prefix.as_bytes().to_vec());
    let request = RangeRequest {
        key,
        range_end,
        limit: 1,
        ..Default::default()
    };
    let response = session
        .call(console, session.client().kv_range(request))
        .await?;
    match response.kvs.is_empty() {
        true => Ok(()),
        false => Err(CliError::invalid_input(format!(
            "prefix {prefix:?} has keys. Delete with etcdctl del --prefix {prefix} first"
        ))),
    }
}

/// Deletes the check's keys, then compacts and defragments as asked (etcdctl's `compact`
/// and `defrag`, with their lines).
async fn clean_up(
    session: &Session,
    globals: &Globals,
    flags: &CheckFlags,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let long = Duration::from_secs(30);
    let fail = |e: cairn_client::ClientError| CliError::error(session::etcdctl_message(&e));
    let (key, range_end) = range_end::with_prefix(flags.prefix.as_bytes().to_vec());
    let request = DeleteRangeRequest {
        key,
        range_end,
        ..Default::default()
    };
    let deleted = within(long, session.client().kv_delete_range(request))
        .await
        .map_err(fail)?;
    if flags.auto_compact {
        let revision = deleted.header.map(|h| h.revision).unwrap_or_default();
        console.out(&format!("Compacting with revision {revision}\n"));
        let request = CompactionRequest {
            revision,
            physical: true,
        };
        within(long, session.client().kv_compact(request))
            .await
            .map_err(fail)?;
        console.out(&format!("Compacted with revision {revision}\n"));
    }
    if flags.auto_defrag {
        for endpoint in &globals.endpoints {
            console.out(&format!("Defragmenting {endpoint:?}\n"));
            let deadline = tokio::time::Instant::now() + long;
            let client = super::endpoint::connect_one(endpoint, globals, deadline)
                .await
                .map_err(fail)?;
            session::within(deadline, client.maintenance_defragment())
                .await
                .map_err(fail)?;
            console.out(&format!("Defragmented {endpoint:?}\n"));
        }
    }
    Ok(())
}

/// `call` within `limit`.
async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, cairn_client::ClientError>>,
) -> Result<T, cairn_client::ClientError> {
    session::within(tokio::time::Instant::now() + limit, call).await
}

/// etcdctl's error lines; whether there were none.
fn print_errors(report: &Report, console: &mut Console<'_>) -> bool {
    if report.errors.is_empty() {
        return true;
    }
    console.out("FAIL: too many errors\n");
    for (message, count) in &report.errors {
        console.out(&format!("FAIL: ERROR({message}) -> {count}\n"));
    }
    false
}

/// etcdctl's `endpointMemoryMetrics`: `process_resident_memory_bytes` from the endpoint's
/// `/metrics` over HTTP/1.1, or 0 with etcdctl's line saying why.
async fn resident_memory(endpoint: &str, globals: &Globals, console: &mut Console<'_>) -> f64 {
    const KEY: &str = "process_resident_memory_bytes";
    let host = match endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        true => endpoint.to_string(),
        false => format!("http://{endpoint}"),
    };
    let url = format!("{host}/metrics");
    let body = match fetch(&url, globals).await {
        Ok(body) => body,
        Err(why) => {
            console.out(&format!("fetch error: Get {url:?}: {why}\n"));
            return 0.0;
        }
    };
    let Some(value) = body
        .lines()
        .find_map(|line| line.strip_prefix(KEY))
        .map(str::trim)
    else {
        console.out(&format!("could not find: {KEY}\n"));
        return 0.0;
    };
    match value.parse::<f64>() {
        Ok(bytes) => bytes,
        Err(e) => {
            console.out(&format!("parse error: {e}\n"));
            0.0
        }
    }
}

/// The body of a plain-HTTP GET of `url` (HTTPS metrics are not supported).
async fn fetch(url: &str, globals: &Globals) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("metrics over https are not supported by cairnctl".to_string());
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let timeout = globals
        .dial_timeout()
        .unwrap_or(Duration::from_secs(2))
        .max(Duration::from_secs(5));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("dial tcp {authority}: {e}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        // A server that does not speak HTTP/1.1 may reset the connection after its
        // answer: what it sent still says what it is.
        match stream.read_to_end(&mut answer).await {
            Err(e) if answer.is_empty() => Err(e.to_string()),
            _ => Ok::<_, String>(answer),
        }
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_elapsed| "context deadline exceeded".to_string())??;
    parse_http_response(&answer)
}

/// The body of an HTTP/1.1 response with status 200 (chunked or not).
fn parse_http_response(answer: &[u8]) -> Result<String, String> {
    if !answer.starts_with(b"HTTP/1.") {
        let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
        return Err(format!(
            "net/http: HTTP/1.x transport connection broken: malformed HTTP response \"{}\"",
            go_quote(&line[..line.len().min(27)])
        ));
    }
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err("malformed HTTP response".to_string());
    };
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("unexpected status {status:?}"));
    }
    let chunked = head.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    if !chunked {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    Ok(out)
}

/// Bytes quoted as Go's `%q` quotes a string of them (printable ASCII kept).
fn go_quote(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'"' => "\\\"".to_string(),
            b'\\' => "\\\\".to_string(),
            0x20..=0x7e => char::from(*b).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_aliases_as_etcdctl() {
        assert_eq!(perf_model("small").unwrap(), perf_model("s").unwrap());
        assert_eq!(perf_model("xLarge").unwrap().limit, 15000);
        assert_eq!(datascale_model("m").unwrap().limit, 100_000);
        let e = perf_model("x").unwrap_err();
        assert_eq!(e, CliError::bad_feature("unknown load option x"));
        assert_eq!(e.code, exit::BAD_FEATURE);
        assert!(datascale_model("XL").is_err());
    }

    #[test]
    fn metrics_bodies_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\na 1\nb";
        assert_eq!(parse_http_response(plain).unwrap(), "a 1\nb");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\nc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_http_response(chunked).unwrap(), "ab\ncde");
        assert_eq!(
            parse_http_response(b"\x00\x00\x12\x04\x00@\"").unwrap_err(),
            r#"net/http: HTTP/1.x transport connection broken: malformed HTTP response "\x00\x00\x12\x04\x00@\"""#
        );
        assert!(parse_http_response(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
    }
}
