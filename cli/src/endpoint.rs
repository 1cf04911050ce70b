//! Endpoint strings as users write them (`host:port`, `http://host:port`) turned into the
//! URI tonic dials. etcdctl accepts both forms; a bare `host:port` means plain HTTP/2.

/// Why an endpoint string cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The string is empty (after trimming spaces).
    #[error("empty endpoint")]
    Empty,
    /// A scheme other than `http` or `https` (`unix`/`unixs` are not supported).
    #[error(
        "endpoint {0:?}: unsupported scheme (expected host:port, http://host:port or \
         https://host:port)"
    )]
    UnsupportedScheme(String),
    /// No port, or a port that is not a number.
    #[error("endpoint {0:?}: expected host:port")]
    MissingPort(String),
    /// The transport rejected the URI built from the endpoint.
    #[error("endpoint {0:?}: {1}")]
    InvalidUri(String, String),
}

/// The URI for an endpoint written as `host:port`, `http://host:port` or
/// `https://host:port`: `http://host:port` for the first two, `https://host:port` for TLS.
pub fn endpoint_uri(endpoint: &str) -> Result<String, EndpointError> {
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(EndpointError::Empty);
    }
    let (scheme, authority) = match trimmed.split_once("://") {
        None => ("http", trimmed),
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some(_) => return Err(EndpointError::UnsupportedScheme(trimmed.to_string())),
    };
    let authority = authority.trim_end_matches('/');
    if !has_port(authority) {
        return Err(EndpointError::MissingPort(trimmed.to_string()));
    }
    Ok(format!("{scheme}://{}", relative_host(authority)))
}

/// `authority` without the trailing dot of a fully qualified host name (as DNS discovery
/// returns them, `node1.example.com.:2379`): Go dials those as they are, but the system
/// resolver cannot find `localhost.` in /etc/hosts.
fn relative_host(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port)) if host.len() > 1 && host.ends_with('.') => {
            format!("{}:{port}", &host[..host.len() - 1])
        }
        _ => authority.to_string(),
    }
}

/// Whether `authority` ends in `:<digits>` (after an IPv6 literal's `]`, if any).
fn has_port(authority: &str) -> bool {
    let Some((host, port)) = authority.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty() && (!host.contains(':') || host.ends_with(']'));
    host_ok && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_gets_http_scheme() {
        assert_eq!(
            endpoint_uri("127.0.0.1:2379").as_deref(),
            Ok("http://127.0.0.1:2379")
        );
    }

    #[test]
    fn http_url_is_kept_and_trailing_slash_dropped() {
        assert_eq!(
            endpoint_uri(" http://node1:2379/ ").as_deref(),
            Ok("http://node1:2379")
        );
    }

    #[test]
    fn ipv6_literal_needs_brackets() {
        assert_eq!(
            endpoint_uri("[::1]:2379").as_deref(),
            Ok("http://[::1]:2379")
        );
        assert!(endpoint_uri("::1").is_err());
    }

    #[test]
    fn missing_port_and_other_schemes_are_rejected() {
        assert_eq!(
            endpoint_uri("localhost"),
            Err(EndpointError::MissingPort("localhost".into()))
        );
        assert_eq!(endpoint_uri("https://h:1/").as_deref(), Ok("https://h:1"));
        assert_eq!(
            endpoint_uri("http://localhost.:1").as_deref(),
            Ok("http://localhost:1")
        );
        assert!(matches!(
            endpoint_uri("unix://x:1"),
            Err(EndpointError::UnsupportedScheme(_))
        ));
        assert_eq!(endpoint_uri(""), Err(EndpointError::Empty));
    }
}
