//! DNS discovery of the endpoints: etcdctl's `--discovery-srv DOMAIN`
//! (`ctlv3/command/global.go` `endpointsFromFlagValue`, `pkg/srv.GetClient`).
//!
//! Two SRV lookups through the system's resolver (`/etc/resolv.conf`, as Go's resolver):
//! `_etcd-client-ssl._tcp.DOMAIN` gives `https://target:port` endpoints and
//! `_etcd-client._tcp.DOMAIN` gives `http://target:port` ones (`--discovery-srv-name NAME`
//! appends `-NAME` to both services). Only when both lookups fail is it an error, worded
//! as Go's `net.DNSError`. With `--insecure-discovery=false` the `http://` endpoints are
//! dropped (with a note on stderr) and TLS checks server certificates against DOMAIN; when
//! nothing is left, `--endpoints` is used.
//!
//! Targets keep the trailing dot Go's resolver returns (`http://node1.example.com.:2379`),
//! so endpoint lists print as etcdctl's do; the client dials the name without it.

use crate::console::Console;
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::globals::Globals;

/// The service etcdctl looks up (`srv.GetClient("etcd-client", ...)`).
const SERVICE: &str = "etcd-client";

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is preferred.
    pub priority: u16,
    /// Among equal priorities, higher is preferred.
    pub weight: u16,
    /// The port of the service.
    pub port: u16,
    /// The host name, fully qualified (with its trailing dot).
    pub target: String,
}

/// Replaces `globals.endpoints` by the discovered ones when `--discovery-srv` is given.
pub fn apply(
    globals: &mut Globals,
    values: &FlagValues,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let domain = values.str("discovery-srv").trim().to_string();
    if domain.is_empty() {
        return Ok(());
    }
    let service_name = values.str("discovery-srv-name");
    let insecure = values.bool("insecure-discovery");
    let secure_service = srv_service(true, service_name);
    let plain_service = srv_service(false, service_name);
    let secure = lookup(&secure_service, &domain);
    let plain = lookup(&plain_service, &domain);
    let endpoints = match (secure, plain) {
        (Err(e1), Err(e2)) => {
            return Err(CliError::error(format!("dns lookup errors: {e1} and {e2}")));
        }
        (secure, plain) => {
            let mut endpoints = urls("https", &secure.unwrap_or_default());
            endpoints.extend(urls("http", &plain.unwrap_or_default()));
            endpoints
        }
    };
    let endpoints = if insecure {
        endpoints
    } else {
        secure_only(endpoints, console)
    };
    if !endpoints.is_empty() {
        globals.endpoints = endpoints;
    }
    if !insecure {
        let mut tls = globals.tls.take().unwrap_or_default();
        tls.server_name = Some(domain);
        globals.tls = Some(tls);
    }
    Ok(())
}

/// `pkg/srv.GetSRVService`: `etcd-client[-ssl][-NAME]`.
fn srv_service(ssl: bool, service_name: &str) -> String {
    let service = if ssl {
        format!("{SERVICE}-ssl")
    } else {
        SERVICE.to_string()
    };
    if service_name.is_empty() {
        service
    } else {
        format!("{service}-{service_name}")
    }
}

/// `scheme://target:port` for each record, in the resolver's order.
fn urls(scheme: &str, records: &[SrvRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let host = if r.target.contains(':') {
                format!("[{}]", r.target)
            } else {
                r.target.clone()
            };
            format!("{scheme}://{host}:{}", r.port)
        })
        .collect()
}

/// Drops the `http://` endpoints, saying so as etcdctl does.
fn secure_only(endpoints: Vec<String>, console: &mut Console<'_>) -> Vec<String> {
    endpoints
        .into_iter()
        .filter(|ep| {
            let plain = ep.starts_with("http://");
            if plain {
                console.err(&format!(
                    "ignoring discovered insecure endpoint {}\n",
                    crate::go_strconv::quote(ep)
                ));
            }
            !plain
        })
        .collect()
}

/// Go's `net.LookupSRV(service, "tcp", domain)`: the records ordered by priority, then
/// weight (Go shuffles equal priorities by weight at random; this order is its most
/// likely one, and stable). The error reads as Go's `net.DNSError`.
fn lookup(service: &str, domain: &str) -> Result<Vec<SrvRecord>, String> {
    let name = format!("_{service}._tcp.{domain}");
    let mut records = resolve::srv(&name)?;
    records.sort_by(|a, b| (a.priority, b.weight).cmp(&(b.priority, a.weight)));
    Ok(records)
}

#[cfg(not(madsim))]
mod resolve {
    //! The SRV query itself, on a runtime of its own: the callers are synchronous, and
    //! the lookup is done before any connection is made.

    use std::net::SocketAddr;

    use hickory_resolver::TokioResolver;
    use hickory_resolver::net::{DnsError, NetError};
    use hickory_resolver::proto::rr::RData;

    use super::SrvRecord;

    /// The SRV records of `name`, or Go's wording of why there are none.
    pub fn srv(name: &str) -> Result<Vec<SrvRecord>, String> {
        let name = name.to_string();
        let joined = std::thread::scope(|scope| scope.spawn(|| query(&name)).join());
        joined.unwrap_or_else(|_| Err(format!("lookup {name}: resolver failed")))
    }

    fn query(name: &str) -> Result<Vec<SrvRecord>, String> {
        let (config, options) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("lookup {name}: reading /etc/resolv.conf: {e}"))?;
        let server = config
            .name_servers()
            .first()
            .map(|ns| SocketAddr::new(ns.ip, 53).to_string())
            .unwrap_or_else(|| "127.0.0.1:53".to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("lookup {name}: {e}"))?;
        runtime.block_on(async {
            let mut builder = TokioResolver::builder_with_config(config, Default::default());
            *builder.options_mut() = options;
            let resolver = builder.build().map_err(|e| format!("lookup {name}: {e}"))?;
            // Absolute, as Go's resolver tries a name with enough dots first.
            let lookup = resolver
                .srv_lookup(format!("{name}."))
                .await
                .map_err(|e| go_dns_error(name, &server, &e))?;
            let records: Vec<SrvRecord> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::SRV(srv) => Some(SrvRecord {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: srv.target.to_string(),
                    }),
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                return Err(format!("lookup {name} on {server}: no such host"));
            }
            Ok(records)
        })
    }

    /// `lookup NAME on SERVER: REASON`, with Go's reasons.
    fn go_dns_error(name: &str, server: &str, error: &NetError) -> String {
        let reason = match error {
            NetError::Dns(DnsError::NoRecordsFound(_)) => "no such host".to_string(),
            NetError::Timeout => "i/o timeout".to_string(),
            NetError::Dns(DnsError::ResponseCode(_)) => "server misbehaving".to_string(),
            NetError::Io(e) => e.to_string(),
            other => other.to_string(),
        };
        format!("lookup {name} on {server}: {reason}")
    }
}

#[cfg(madsim)]
mod resolve {
    //! Simulated hosts have no DNS.

    use super::SrvRecord;

    /// Always an error: there is no resolver under simulation.
    pub fn srv(name: &str) -> Result<Vec<SrvRecord>, String> {
        Err(format!("lookup {name}: no DNS resolver in simulation"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.to_string(),
        }
    }

    #[test]
    fn services_follow_pkg_srv() {
        assert_eq!(srv_service(true, ""), "etcd-client-ssl");
        assert_eq!(srv_service(false, ""), "etcd-client");
        assert_eq!(srv_service(true, "blue"), "etcd-client-ssl-blue");
        assert_eq!(srv_service(false, "blue"), "etcd-client-blue");
    }

    #[test]
    fn urls_join_target_and_port_as_go() {
        let records = [record(0, 0, 2379, "a.example.com."), record(0, 0, 1, "::1")];
        assert_eq!(
            urls("https", &records),
            ["https://a.example.com.:2379", "https://[::1]:1"]
        );
    }

    #[test]
    fn insecure_endpoints_are_dropped_with_a_note() {
        let (mut out, mut err, mut input) = (Vec::new(), Vec::new(), &b""[..]);
        let mut console = Console::new(&mut out, &mut err, &mut input);
        let kept = secure_only(
            vec!["https://a.:1".to_string(), "http://b.:2".to_string()],
            &mut console,
        );
        assert_eq!(kept, ["https://a.:1"]);
        assert_eq!(
            String::from_utf8_lossy(&err),
            "ignoring discovered insecure endpoint \"http://b.:2\"\n"
        );
    }
}
