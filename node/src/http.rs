//! The HTTP endpoints etcd serves beside gRPC on its client URLs (HTTP/1.1 and HTTP/2 on the
//! same port) and alone on `--listen-metrics-urls`: `/health` (etcd 3.5's JSON with a
//! reason), `/livez` and `/readyz` (3.5), `/version` and `/metrics` (Prometheus text).
//!
//! Not built under madsim: the simulation has no HTTP clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_core::api::etcdserverpb::AlarmType;
use cairn_core::apply::alarm::alarm_name;

use crate::config::ETCD_COMPAT_VERSION;
use crate::metrics::{TEXT_FORMAT, metrics};
use crate::server::Handle;

/// The cluster version `/version` reports (etcd's cluster version is major.minor.0).
pub const CLUSTER_VERSION: &str = "3.5.0";

/// How long `/health`'s read may take (etcd: one second).
const HEALTH_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The HTTP endpoints of a member.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/metrics", get(metrics_text))
        .with_state(handle)
}

/// The values of `name` in a URL query string.
fn query_values<'a>(uri: &'a Uri, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
}

/// etcd's health check: no active alarm (but those `excluded`), a leader, and a read that
/// completes (linearizable unless `serializable`). `Err` carries etcd's reason.
async fn check(handle: &Handle, excluded: &[&str], serializable: bool) -> Result<(), String> {
    for alarm in handle.state_machine().alarms(AlarmType::None) {
        let name = alarm_name(alarm.alarm);
        if !excluded.contains(&name.as_str()) {
            return Err(format!("ALARM {name}"));
        }
    }
    if handle.raft_status().leader == 0 {
        return Err("RAFT NO LEADER".to_string());
    }
    if !serializable {
        match tokio::time::timeout(HEALTH_READ_TIMEOUT, handle.read_barrier()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("RANGE ERROR:{e}")),
            Err(_) => return Err("RANGE ERROR:context deadline exceeded".to_string()),
        }
    }
    Ok(())
}

/// `GET /health[?exclude=ALARM][&serializable=true]`: `{"health":"true","reason":""}` with
/// 200, or `"false"` with the reason and 503 (written as Go's `http.Error` does).
async fn health(State(handle): State<Handle>, uri: Uri) -> Response {
    let excluded: Vec<&str> = query_values(&uri, "exclude").collect();
    let serializable = query_values(&uri, "serializable").any(|v| v == "true");
    let result = check(&handle, &excluded, serializable).await;
    let (success, failures) = &metrics().health_checks;
    let body = serde_json::json!({
        "health": result.is_ok().to_string(),
        "reason": result.as_ref().err().cloned().unwrap_or_default(),
    })
    .to_string();
    match result {
        Ok(()) => {
            success.inc();
            (StatusCode::OK, body).into_response()
        }
        Err(reason) => {
            failures.inc();
            tracing::warn!(%reason, "/health error (status code 503)");
            go_http_error(StatusCode::SERVICE_UNAVAILABLE, &body)
        }
    }
}

/// Go's `http.Error`: plain text, the message and a newline.
fn go_http_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

/// A 3.5 `/livez` or `/readyz` answer over named checks: `ok` (each check listed with
/// `?verbose`), or 503 naming the failed checks.
fn probe(path: &str, uri: &Uri, checks: &[(&str, Result<(), String>)]) -> Response {
    let verbose = query_values(uri, "verbose").next().is_some();
    let mut report = String::new();
    let mut failed = false;
    for (name, result) in checks {
        match result {
            Ok(()) => report.push_str(&format!("[+]{name} ok\n")),
            Err(reason) => {
                failed = true;
                report.push_str(&format!("[-]{name} failed: {reason}\n"));
            }
        }
    }
    if failed {
        return go_http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{report}{path} check failed"),
        );
    }
    let body = if verbose {
        format!("{report}{path} check passed\n")
    } else {
        "ok\n".to_string()
    };
    (StatusCode::OK, body).into_response()
}

/// `GET /livez`: the member serves reads from its own state.
async fn livez(State(handle): State<Handle>, uri: Uri) -> Response {
    let read = check_serializable_read(&handle);
    probe("livez", &uri, &[("serializable_read", read)])
}

/// `GET /readyz`: no data corruption alarm, and serializable and linearizable reads work.
async fn readyz(State(handle): State<Handle>, uri: Uri) -> Response {
    let corrupt = if handle.state_machine().alarms(AlarmType::Corrupt).is_empty() {
        Ok(())
    } else {
        Err("alarm activated: CORRUPT".to_string())
    };
    let serializable = check_serializable_read(&handle);
    let linearizable = match tokio::time::timeout(HEALTH_READ_TIMEOUT, handle.read_barrier()).await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("context deadline exceeded".to_string()),
    };
    probe(
        "readyz",
        &uri,
        &[
            ("data_corruption", corrupt),
            ("serializable_read", serializable),
            ("linearizable_read", linearizable),
        ],
    )
}

fn check_serializable_read(handle: &Handle) -> Result<(), String> {
    let probe = cairn_core::api::etcdserverpb::RangeRequest {
        key: b"health".to_vec(),
        count_only: true,
        ..Default::default()
    };
    handle
        .state_machine()
        .range(&probe)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `GET /version`: etcd's `{"etcdserver":...,"etcdcluster":...}`, and cairn's own version.
async fn version() -> Response {
    let body = serde_json::json!({
        "etcdserver": ETCD_COMPAT_VERSION,
        "etcdcluster": CLUSTER_VERSION,
        "cairn": env!("CARGO_PKG_VERSION"),
    })
    .to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /metrics`: every metric in Prometheus' text format.
async fn metrics_text(State(handle): State<Handle>) -> Response {
    let metrics = metrics();
    metrics.refresh(&handle);
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], metrics.render()).into_response()
}

/// The kind of a method of etcd's services, as go-grpc-prometheus labels it.
pub(crate) fn grpc_type(service: &str, method: &str) -> &'static str {
    match (service, method) {
        ("etcdserverpb.Watch", "Watch") | ("etcdserverpb.Lease", "LeaseKeepAlive") => "bidi_stream",
        ("etcdserverpb.Maintenance", "Snapshot") | ("v3electionpb.Election", "Observe") => {
            "server_stream"
        }
        _ => "unary",
    }
}

/// gRPC's name of a status code.
pub(crate) fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

/// Serves only the HTTP endpoints (`--listen-metrics-urls`) on `addr` until `shutdown`
/// completes, with `tls` for an `https://` URL.
pub async fn serve_metrics(
    handle: Handle,
    addr: SocketAddr,
    tls: Option<Arc<crate::tls::ServerTls>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(router(handle)));
    crate::tls::serve(router, addr, tls, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_found_by_name() {
        let uri: Uri = "/health?exclude=NOSPACE&serializable=true&exclude=CORRUPT"
            .parse()
            .unwrap();
        assert_eq!(
            query_values(&uri, "exclude").collect::<Vec<_>>(),
            ["NOSPACE", "CORRUPT"]
        );
        assert!(query_values(&uri, "serializable").any(|v| v == "true"));
        assert_eq!(query_values(&uri, "verbose").count(), 0);
    }

    #[test]
    fn stream_methods_are_labelled_as_go_grpc_prometheus_does() {
        assert_eq!(grpc_type("etcdserverpb.Watch", "Watch"), "bidi_stream");
        assert_eq!(grpc_type("etcdserverpb.KV", "Range"), "unary");
        assert_eq!(code_name(8), "ResourceExhausted");
    }
}
