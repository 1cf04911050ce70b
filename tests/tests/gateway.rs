//! The gRPC gateway (HTTP/JSON on the client port) against the reference etcd 3.4: the same
//! HTTP requests to both, the answers compared byte for byte once what differs by
//! construction (cluster and member ids, raft terms, lease ids, tokens) is masked. KV,
//! lease and txn calls; watch streaming; auth with the token in `Authorization`; grpc-gateway's
//! errors (malformed JSON, wrong types, gRPC errors as HTTP statuses, unknown paths).

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cairn_tests::{Kind, Server, mask_number_after};

/// How long a read from a server may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP answer: status code, headers (lower-case names) and body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    /// Status and body, masked: what is compared between the servers.
    fn masked(&self) -> String {
        format!("{} {}", self.status, mask(&self.body))
    }
}

/// Masks what legitimately differs between two servers.
fn mask(text: &str) -> String {
    let mut text = text.to_string();
    for field in ["cluster_id", "member_id", "raft_term", "ID"] {
        text = mask_number_after(&text, &format!("\"{field}\":\""), "N");
    }
    // Tokens: `"token":"<random>.<index>"`.
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(pos) = rest.find("\"token\":\"") {
        out.push_str(&rest[..pos + 9]);
        rest = &rest[pos + 9..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push('T');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn port_of(server: &Server) -> u16 {
    server
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("endpoint port")
}

/// Reads an HTTP/1.1 answer's status line and headers.
fn read_head(reader: &mut impl BufRead) -> (u16, BTreeMap<String, String>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            return (status, headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
}

/// Reads one chunk of a chunked body; `None` at its end.
fn read_chunk(reader: &mut impl BufRead) -> Option<String> {
    let mut size = String::new();
    reader.read_line(&mut size).expect("chunk size");
    let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
    if size == 0 {
        return None;
    }
    let mut data = vec![0; size + 2];
    reader.read_exact(&mut data).expect("chunk");
    data.truncate(size);
    Some(String::from_utf8(data).expect("utf-8 chunk"))
}

/// `method path` with `body` and extra `headers` on `127.0.0.1:port`, connection closed after.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut body = String::new();
        while let Some(chunk) = read_chunk(&mut reader) {
            body.push_str(&chunk);
        }
        body
    } else {
        // Exactly Content-Length bytes: Go may reset a connection whose request body it
        // did not read.
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .expect("content-length");
        let mut body = vec![0; length];
        if let Err(e) = reader.read_exact(&mut body) {
            panic!("{method} {path}: reading the answer: {e}");
        }
        String::from_utf8(body).expect("utf-8 answer")
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// `POST path` with a JSON body.
fn post(port: u16, path: &str, body: &str) -> Answer {
    request(port, "POST", path, &[], body)
}

/// `POST path` with a JSON body and a token in `Authorization`.
fn post_as(port: u16, token: &str, path: &str, body: &str) -> Answer {
    request(port, "POST", path, &[("Authorization", token)], body)
}

/// Runs `scenario` against a fresh etcd and a fresh cairn; returns both transcripts.
fn on_both(scenario: impl Fn(u16) -> Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut transcripts = Vec::new();
    for kind in [Kind::Etcd, Kind::Cairn] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(kind, dir.path(), &["--bcrypt-cost", "4"]);
        transcripts.push(scenario(port_of(&server)));
    }
    let cairn = transcripts.pop().unwrap();
    let etcd = transcripts.pop().unwrap();
    (etcd, cairn)
}

/// Asserts the transcripts equal line by line (a readable failure).
fn assert_same(etcd: &[String], cairn: &[String]) {
    for (i, (e, c)) in etcd.iter().zip(cairn).enumerate() {
        assert_eq!(e, c, "step {i}: etcd (left) and cairn (right) differ");
    }
    assert_eq!(etcd.len(), cairn.len());
}

/// Each call of `steps` as `path body` and the masked answer.
fn run_steps(port: u16, steps: &[(&str, &str)]) -> Vec<String> {
    steps
        .iter()
        .map(|(path, body)| format!("{path} {body} -> {}", post(port, path, body).masked()))
        .collect()
}

#[test]
fn kv_lease_and_txn_calls_answer_as_etcd() {
    let steps: &[(&str, &str)] = &[
        ("/v3/kv/put", r#"{"key":"YQ==","value":"MQ=="}"#),
        (
            "/v3/kv/put",
            r#"{"key":"Yg==","value":"Mg==","prev_kv":true}"#,
        ),
        (
            "/v3/kv/put",
            r#"{"key":"Yg==","value":"Mw==","prevKv":true}"#,
        ),
        ("/v3/kv/range", r#"{"key":"YQ==","range_end":"Yw=="}"#),
        (
            "/v3/kv/range",
            r#"{"key":"YQ==","rangeEnd":"Yw==","sort_order":"DESCEND","sortTarget":2,"limit":"1"}"#,
        ),
        (
            "/v3/kv/range",
            r#"{"key":"YQ==","range_end":"Yw==","keys_only":true}"#,
        ),
        (
            "/v3/kv/range",
            r#"{"key":"AA==","range_end":"AA==","count_only":true}"#,
        ),
        ("/v3beta/kv/range", r#"{"key":"YQ==","serializable":true}"#),
        // A txn whose compare holds, then one whose compare fails, then a nested txn.
        (
            "/v3/kv/txn",
            r#"{"compare":[{"key":"YQ==","result":"EQUAL","target":"VALUE","value":"MQ=="}],
               "success":[{"request_put":{"key":"YQ==","value":"Mg=="}},{"request_range":{"key":"YQ=="}}],
               "failure":[{"request_delete_range":{"key":"YQ=="}}]}"#,
        ),
        (
            "/v3/kv/txn",
            r#"{"compare":[{"key":"YQ==","result":"EQUAL","target":"VALUE","value":"MQ=="}],
               "success":[{"request_put":{"key":"YQ==","value":"Mg=="}}],
               "failure":[{"requestRange":{"key":"YQ=="}}]}"#,
        ),
        (
            "/v3/kv/txn",
            r#"{"compare":[{"key":"YQ==","target":"CREATE","create_revision":"0","result":"GREATER"}],
               "success":[{"request_txn":{}}]}"#,
        ),
        ("/v3/kv/deleterange", r#"{"key":"Yg==","prev_kv":true}"#),
        ("/v3/kv/deleterange", r#"{"key":"eg=="}"#),
        ("/v3/kv/compaction", r#"{"revision":"2"}"#),
        ("/v3/kv/compaction", r#"{"revision":"2"}"#),
        ("/v3/kv/compaction", r#"{"revision":"1000"}"#),
        ("/v3/kv/range", r#"{"key":"YQ==","revision":1}"#),
        ("/v3/kv/range", r#"{"bogus":1}"#),
        ("/v3/kv/put", r#"{"key":"YQ==","value":"MQ==","lease":99}"#),
        // Leases, under both the 3.4 paths.
        ("/v3/lease/grant", r#"{"TTL":60,"ID":1000}"#),
        ("/v3/lease/grant", r#"{"TTL":"60","ID":"1000"}"#),
        (
            "/v3/kv/put",
            r#"{"key":"bA==","value":"MQ==","lease":1000}"#,
        ),
        ("/v3/lease/leases", "{}"),
        ("/v3/kv/lease/timetolive", r#"{"ID":1001}"#),
        ("/v3/lease/keepalive", r#"{"ID":1000}"#),
        ("/v3/lease/keepalive", r#"{"ID":1001}"#),
        ("/v3/lease/revoke", r#"{"ID":1000}"#),
        ("/v3/kv/lease/revoke", r#"{"ID":1000}"#),
        ("/v3/kv/lease/leases", ""),
        ("/v3/kv/range", r#"{"key":"bA=="}"#),
        ("/v3/maintenance/alarm", r#"{"action":"GET"}"#),
        ("/v3/cluster/member/remove", r#"{"ID":1}"#),
        ("/v3/cluster/member/update", r#"{"ID":1}"#),
        ("/v3/cluster/member/promote", r#"{"ID":1}"#),
    ];
    let (etcd, cairn) = on_both(|port| {
        let mut transcript = run_steps(port, steps);
        // The remaining TTL is 60 or 59 depending on timing: checked apart.
        let ttl = post(port, "/v3/lease/grant", r#"{"TTL":60,"ID":2000}"#);
        assert_eq!(ttl.status, 200);
        let live = post(port, "/v3/lease/timetolive", r#"{"ID":2000,"keys":true}"#);
        let masked = mask_number_after(&live.masked(), "\"TTL\":\"", "N");
        transcript.push(masked);
        transcript
    });
    assert_same(&etcd, &cairn);
    // Not vacuous: the calls succeeded where they should.
    assert!(cairn[3].contains(r#""count":"2""#), "{}", cairn[3]);
    assert!(cairn[8].contains(r#""succeeded":true"#), "{}", cairn[8]);
    assert!(cairn.last().unwrap().contains(r#""grantedTTL":"60""#));
    // The answers are JSON, with grpc-gateway's headers.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    let answer = post(port_of(&server), "/v3/kv/range", r#"{"key":"YQ=="}"#);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(
        answer.headers["grpc-metadata-content-type"],
        "application/grpc"
    );
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
}

#[test]
fn malformed_requests_and_unknown_paths_fail_as_on_etcd() {
    let bodies = [
        r#"{"key":"YQ=="#,
        r#"{"key":5}"#,
        r#"{"key":"YQ==","limit":"x"}"#,
        r#"{"key":"YQ==","limit":1.5}"#,
        r#"{"key":"YQ==","sort_order":"BOGUS"}"#,
        r#"{"key":"YQ==","serializable":"yes"}"#,
        r#"{"key":"YQ==!"}"#,
        "nope",
        r#"{"key" "YQ=="}"#,
        r#"{"key":"YQ==" "x":1}"#,
        "{1:2}",
        "[1]",
        "",
    ];
    let (etcd, cairn) = on_both(|port| {
        let mut transcript: Vec<String> = bodies
            .iter()
            .map(|body| {
                let answer = post(port, "/v3/kv/range", body);
                format!(
                    "{body} -> {} {}",
                    answer.masked(),
                    answer.headers["content-type"]
                )
            })
            .collect();
        for (path, body) in [
            ("/v3/kv/txn", r#"{"success":{"request_put":{}}}"#),
            ("/v3/kv/txn", r#"{"success":[{"request_put":{"key":5}}]}"#),
            ("/v3/kv/put", r#"{"key":"YQ==","lease":"abc"}"#),
            ("/v3/watch", r#"{"create_request":{"key":5}}"#),
            ("/v3/lease/keepalive", r#"{"ID":"x"}"#),
            ("/v3/nothing", "{}"),
            ("/v3/kv/rangex", "{}"),
            ("/v3alpha/kv/range", "{}"),
        ] {
            let answer = post(port, path, body);
            transcript.push(format!("{path} {body} -> {}", answer.masked()));
        }
        // Over --max-request-bytes (etcd's check), and over what gRPC itself accepts.
        for value_bytes in [1600 * 1024, 3000 * 1024] {
            let value = "eHh4".repeat(value_bytes / 3);
            let body = format!(r#"{{"key":"Ymln","value":"{value}"}}"#);
            let answer = post(port, "/v3/kv/put", &body);
            transcript.push(format!("put of {value_bytes} bytes -> {}", answer.masked()));
        }
        let get = request(port, "GET", "/v3/kv/range", &[], "");
        transcript.push(format!(
            "GET -> {} {:?}",
            get.masked(),
            get.headers["content-type"]
        ));
        transcript
    });
    assert_same(&etcd, &cairn);
    assert!(cairn[0].starts_with(r#"{"key":"YQ== -> 400 {"error":"unexpected EOF""#));
}

/// A `POST /v3/watch` whose answer streams. Its request body (JSON requests one after the
/// other) is sent whole: etcd's gateway reads an HTTP/1.1 body only once it is complete.
struct WatchCall {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: BTreeMap<String, String>,
    pending: String,
}

impl WatchCall {
    /// Sends the requests of `body` (with `headers`) and reads the answer's head.
    fn open(port: u16, headers: &[(&str, &str)], body: &str) -> WatchCall {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut head = format!(
            "POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        WatchCall {
            reader,
            status,
            headers,
            pending: String::new(),
        }
    }

    /// The next newline-terminated JSON object of the answer, masked.
    fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.find('\n') {
                let line = self.pending[..end].to_string();
                self.pending.drain(..=end);
                return mask(&line);
            }
            let chunk = read_chunk(&mut self.reader).expect("the stream goes on");
            self.pending.push_str(&chunk);
        }
    }
}

#[test]
fn watch_streams_created_events_and_canceled_as_etcd() {
    let (etcd, cairn) = on_both(|port| {
        let mut transcript = Vec::new();
        post(port, "/v3/kv/put", r#"{"key":"YQ==","value":"MA=="}"#);
        let mut watch = WatchCall::open(
            port,
            &[],
            r#"{"create_request":{"key":"YQ==","prev_kv":true}}"#,
        );
        transcript.push(format!(
            "{} {}",
            watch.status, watch.headers["content-type"]
        ));
        transcript.push(watch.next());
        // Puts and a delete through other requests reach the open stream.
        post(port, "/v3/kv/put", r#"{"key":"YQ==","value":"MQ=="}"#);
        transcript.push(watch.next());
        post(port, "/v3/kv/deleterange", r#"{"key":"YQ=="}"#);
        transcript.push(watch.next());
        // A watcher from a past revision, with a filter and its own id (camelCase too).
        let mut past = WatchCall::open(
            port,
            &[],
            r#"{"createRequest":{"key":"YQ==","start_revision":"2","filters":["NODELETE"],"watch_id":7}}"#,
        );
        transcript.push(past.next());
        transcript.push(past.next());
        // Create then cancel in one body: created, then canceled.
        let mut canceled = WatchCall::open(
            port,
            &[],
            r#"{"create_request":{"key":"Yg=="}} {"cancel_request":{"watch_id":0}}"#,
        );
        transcript.push(canceled.next());
        transcript.push(canceled.next());
        transcript
    });
    assert_same(&etcd, &cairn);
    assert!(cairn[1].contains(r#""created":true"#), "{}", cairn[1]);
    assert!(cairn[2].contains(r#""events":[{"kv""#), "{}", cairn[2]);
    assert!(cairn[3].contains(r#""type":"DELETE""#), "{}", cairn[3]);
}

#[test]
fn auth_through_the_gateway_takes_the_token_in_authorization_as_etcd() {
    let (etcd, cairn) = on_both(|port| {
        let mut transcript = run_steps(
            port,
            &[
                ("/v3/kv/put", r#"{"key":"YQ==","value":"MQ=="}"#),
                ("/v3/auth/user/add", r#"{"name":"root","password":"pw"}"#),
                ("/v3/auth/user/add", r#"{"name":"root","password":"pw"}"#),
                ("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#),
                ("/v3/auth/user/add", r#"{"name":"u1","password":"p1"}"#),
                ("/v3/auth/role/add", r#"{"name":"r1"}"#),
                (
                    "/v3/auth/role/grant",
                    r#"{"name":"r1","perm":{"permType":"READWRITE","key":"YQ==","range_end":"Yg=="}}"#,
                ),
                ("/v3/auth/user/grant", r#"{"user":"u1","role":"r1"}"#),
                ("/v3/auth/role/get", r#"{"role":"r1"}"#),
                ("/v3/auth/user/get", r#"{"name":"u1"}"#),
                ("/v3/auth/user/list", "{}"),
                ("/v3/auth/enable", "{}"),
                (
                    "/v3/auth/authenticate",
                    r#"{"name":"root","password":"bad"}"#,
                ),
                (
                    "/v3/auth/authenticate",
                    r#"{"name":"root","password":"pw"}"#,
                ),
                ("/v3/kv/range", r#"{"key":"YQ=="}"#),
            ],
        );
        let token_of = |name: &str, password: &str| {
            let answer = post(
                port,
                "/v3/auth/authenticate",
                &format!(r#"{{"name":"{name}","password":"{password}"}}"#),
            );
            let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            json["token"].as_str().expect("a token").to_string()
        };
        let root = token_of("root", "pw");
        let u1 = token_of("u1", "p1");
        for (token, path, body) in [
            (root.as_str(), "/v3/kv/range", r#"{"key":"YQ=="}"#),
            ("bogus", "/v3/kv/range", r#"{"key":"YQ=="}"#),
            (
                u1.as_str(),
                "/v3/kv/put",
                r#"{"key":"YQ==","value":"OQ=="}"#,
            ),
            (
                u1.as_str(),
                "/v3/kv/put",
                r#"{"key":"eg==","value":"OQ=="}"#,
            ),
            (u1.as_str(), "/v3/auth/user/list", "{}"),
            (
                root.as_str(),
                "/v3/auth/user/changepw",
                r#"{"name":"u1","password":"p2"}"#,
            ),
            (
                root.as_str(),
                "/v3/auth/user/revoke",
                r#"{"name":"u1","role":"r1"}"#,
            ),
            (
                root.as_str(),
                "/v3/auth/role/revoke",
                r#"{"role":"r1","key":"YQ==","range_end":"Yg=="}"#,
            ),
            (root.as_str(), "/v3/auth/role/delete", r#"{"role":"r1"}"#),
            (root.as_str(), "/v3/auth/user/delete", r#"{"name":"u1"}"#),
            (root.as_str(), "/v3/auth/role/list", "{}"),
        ] {
            let answer = post_as(port, token, path, body);
            transcript.push(format!("{path} {body} -> {}", answer.masked()));
        }
        // A watch with a bad token is refused in the stream, as etcd words it.
        let mut refused = WatchCall::open(
            port,
            &[("Authorization", "bogus")],
            r#"{"create_request":{"key":"YQ=="}}"#,
        );
        let status = refused.status;
        let answer = format!("{status} {}", refused.next());
        transcript.push(answer);
        transcript.push(post_as(port, &root, "/v3/auth/disable", "{}").masked());
        transcript.push(post(port, "/v3/auth/disable", "{}").masked());
        transcript
    });
    assert_same(&etcd, &cairn);
    assert!(cairn.iter().any(|line| line.contains(r#""token":"T""#)));
    assert!(cairn.iter().any(|line| line.contains("401")));
}
