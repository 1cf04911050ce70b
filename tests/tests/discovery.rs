//! `--discovery-srv`: cairnctl and the reference etcdctl find a running server through
//! DNS SRV records, and fail alike when there are none.
//!
//! Both clients read the system's `/etc/resolv.conf`, as etcdctl's Go resolver does. Each
//! command runs in a mount namespace of its own (`unshare -m`, root) where a resolv.conf
//! naming this test's DNS server is bind-mounted over `/etc/resolv.conf`; the machine's
//! own file is never touched. The DNS server is a few lines of UDP below, on port 53 of a
//! loopback address of its own (resolv.conf cannot name another port), answering SRV
//! queries from a fixed table, A queries for the SRV target [`HOST`] with 127.0.0.1 (both
//! clients resolve the target through it too), and NXDOMAIN to anything else.

#![cfg(not(madsim))]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_tests::{Kind, Server, installed, workspace_bin};

/// The DNS server's address: port 53 (resolv.conf has no port syntax) on a loopback
/// address in this test's range, so it clashes with no other resolver.
const DNS_ADDR: &str = "127.0.44.53:53";

/// The SRV records' target, which the DNS server resolves to 127.0.0.1.
const HOST: &str = "node1.example.test";

/// DNS record type A.
const TYPE_A: u16 = 1;

/// DNS record type SRV.
const TYPE_SRV: u16 = 33;

/// One SRV record the server gives for `name`.
struct Srv {
    name: String,
    port: u16,
    target: &'static str,
}

/// A UDP DNS server answering from `records`, until dropped.
struct DnsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    fn start(records: Vec<Srv>) -> DnsServer {
        let socket = UdpSocket::bind(DNS_ADDR).expect("bind the test DNS server (needs root)");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("socket timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = answer(&buf[..len], &records) {
                    let _sent = socket.send_to(&reply, from);
                }
            }
        });
        DnsServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _joined = thread.join();
        }
    }
}

/// The reply to one query: the matching SRV records, [`HOST`]'s address, no record for
/// [`HOST`]'s other types, or NXDOMAIN.
fn answer(query: &[u8], records: &[Srv]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let (name, question_end) = read_name(query, 12)?;
    let qtype = u16::from_be_bytes([*query.get(question_end)?, *query.get(question_end + 1)?]);
    let question = query.get(12..question_end + 4)?;
    let found: Vec<&Srv> = records
        .iter()
        .filter(|r| qtype == TYPE_SRV && r.name.eq_ignore_ascii_case(&name))
        .collect();
    let host = name.eq_ignore_ascii_case(HOST);
    let rcode = if found.is_empty() && !host { 3 } else { 0 };
    let address = usize::from(host && qtype == TYPE_A);
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[0..2]);
    // QR, opcode 0, AA, RD copied; RA; rcode.
    reply.push(0x84 | (query[2] & 0x01));
    reply.push(0x80 | rcode);
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&((found.len() + address) as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for srv in found {
        let mut rdata = Vec::new();
        rdata.extend_from_slice(&0u16.to_be_bytes()); // priority
        rdata.extend_from_slice(&0u16.to_be_bytes()); // weight
        rdata.extend_from_slice(&srv.port.to_be_bytes());
        write_name(&mut rdata, srv.target);
        reply.extend_from_slice(&[0xC0, 12]); // the question's name
        reply.extend_from_slice(&TYPE_SRV.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes()); // class IN
        reply.extend_from_slice(&0u32.to_be_bytes()); // TTL: no caching
        reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        reply.extend_from_slice(&rdata);
    }
    if address == 1 {
        reply.extend_from_slice(&[0xC0, 12]);
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes());
        reply.extend_from_slice(&0u32.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&[127, 0, 0, 1]);
    }
    Some(reply)
}

/// The dotted name at `offset` (no compression in queries) and the offset after it.
fn read_name(message: &[u8], mut offset: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*message.get(offset)?);
        offset += 1;
        if len == 0 {
            return Some((labels.join("."), offset));
        }
        let label = message.get(offset..offset + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        offset += len;
    }
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// `program args...` with `/etc/resolv.conf` replaced by `resolv_conf` for it alone.
fn with_resolv_conf(resolv_conf: &Path, program: &Path, args: &[&str]) -> Output {
    Command::new(installed("unshare"))
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
        ])
        .arg(resolv_conf)
        .arg(program)
        .args(args)
        .env_remove("ETCDCTL_API")
        .output()
        .expect("run under unshare")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stderr without clientv3's JSON log lines (they carry a time and a random client id).
fn messages(stderr: &[u8]) -> String {
    text(stderr)
        .lines()
        .filter(|l| !l.starts_with('{'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `args` with both clients and returns (cairnctl, etcdctl) outputs.
fn both(resolv_conf: &Path, args: &[&str]) -> (Output, Output) {
    let cairnctl = with_resolv_conf(resolv_conf, &workspace_bin("cairnctl"), args);
    let etcdctl = with_resolv_conf(resolv_conf, &installed("etcdctl"), args);
    (cairnctl, etcdctl)
}

fn assert_same(args: &[&str], cairnctl: &Output, etcdctl: &Output) {
    assert_eq!(
        (
            cairnctl.status.code(),
            text(&cairnctl.stdout),
            messages(&cairnctl.stderr)
        ),
        (
            etcdctl.status.code(),
            text(&etcdctl.stdout),
            messages(&etcdctl.stderr)
        ),
        "cairnctl vs etcdctl for {args:?}"
    );
}

#[test]
fn discovery_srv_finds_the_server_or_fails_as_etcdctl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(Kind::Cairn, &dir.path().join("data"));
    let port: u16 = server
        .endpoint()
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("endpoint port");
    let resolv_conf = dir.path().join("resolv.conf");
    let nameserver = DNS_ADDR.parse::<SocketAddr>().expect("address").ip();
    std::fs::write(&resolv_conf, format!("nameserver {nameserver}\n")).expect("resolv.conf");
    let _dns = DnsServer::start(vec![
        Srv {
            name: "_etcd-client._tcp.example.test".to_string(),
            port,
            target: HOST,
        },
        Srv {
            name: "_etcd-client-blue._tcp.named.test".to_string(),
            port,
            target: HOST,
        },
    ]);

    let put = with_resolv_conf(
        &resolv_conf,
        &workspace_bin("cairnctl"),
        &["--discovery-srv", "example.test", "put", "foo", "bar"],
    );
    assert_eq!(text(&put.stdout), "OK\n", "{}", text(&put.stderr));

    let cases: [&[&str]; 5] = [
        &["--discovery-srv", "example.test", "get", "foo"],
        &[
            "--discovery-srv",
            "named.test",
            "--discovery-srv-name",
            "blue",
            "get",
            "foo",
        ],
        &["--discovery-srv", "nope.test", "get", "foo"],
        &["--discovery-srv", "named.test", "get", "foo"],
        &[
            "--discovery-srv",
            "example.test",
            "--insecure-discovery=false",
            "--endpoints",
            &server.endpoint(),
            "get",
            "foo",
        ],
    ];
    for args in cases {
        let (cairnctl, etcdctl) = both(&resolv_conf, args);
        assert_same(args, &cairnctl, &etcdctl);
    }

    let (found, _) = both(
        &resolv_conf,
        &["--discovery-srv", "example.test", "get", "foo"],
    );
    assert_eq!(text(&found.stdout), "foo\nbar\n");
    let (missing, _) = both(
        &resolv_conf,
        &["--discovery-srv", "nope.test", "get", "foo"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr),
        "Error: dns lookup errors: lookup _etcd-client-ssl._tcp.nope.test on 127.0.44.53:53: \
         no such host and lookup _etcd-client._tcp.nope.test on 127.0.44.53:53: no such host\n"
    );
}
