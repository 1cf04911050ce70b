//! `endpoint health` and `endpoint status`: one check per endpoint in `--endpoints` (or,
//! with `--cluster`, per client URL in the member list), each over its own connection, as
//! etcdctl does. Health is a linearizable read of the key `health` (a permission-denied
//! answer still proves the cluster commits); status is `Maintenance.Status`.

use cairn_client::etcd_error::EtcdError;
use cairn_client::pb::etcdserverpb::{
    MemberListRequest, RangeRequest, StatusRequest, StatusResponse,
};
use cairn_client::{Client, ClientError, Code};
use tokio::time::Instant;

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::globals::Globals;
use crate::go_duration;
use crate::go_log;
use crate::output::{EpHealth, EpStatus, Printer};
use crate::session::{self, Env, Session};

/// Runs `endpoint health`: all endpoints are checked at once; results are printed in the
/// order the endpoints were given.
pub async fn health(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let globals = Session::globals(invocation, env, console)?;
    let printer = Printer::new(&globals.write_out, globals.hex)?;
    let endpoints = endpoints(invocation, &globals, console).await?;
    let checks: Vec<_> = endpoints
        .into_iter()
        .map(|ep| tokio::spawn(check_health(ep, globals.clone())))
        .collect();
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        let (health, warnings) = check
            .await
            .map_err(|e| CliError::error(format!("health check failed: {e}")))?;
        for warning in warnings {
            console.err(&warning);
        }
        results.push(health);
    }
    printer.endpoint_health(&results, console)?;
    match results.iter().any(|h| !h.error.is_empty()) {
        true => Err(CliError::error("unhealthy cluster")),
        false => Ok(()),
    }
}

/// One endpoint's health, and the warnings clientv3 would have logged on the way.
async fn check_health(endpoint: String, globals: Globals) -> (EpHealth, Vec<String>) {
    let target = go_log::balancer_target(std::slice::from_ref(&endpoint));
    let start = Instant::now();
    let deadline = start + globals.command_timeout();
    let (answer, warnings) = match connect_one(&endpoint, &globals, deadline).await {
        Ok(client) => session::repeat(deadline, &target, || read_health_key(&client)).await,
        Err(error) => failed_dial(&target, error),
    };
    let took = go_duration::format(go_duration::from_std(start.elapsed()));
    let mut health = EpHealth {
        endpoint,
        health: false,
        took,
        error: String::new(),
    };
    match answer {
        Ok(()) => health.health = true,
        Err(e) if e.etcd_error() == Some(EtcdError::PermissionDenied) => health.health = true,
        Err(e) => health.error = session::etcdctl_message(&e),
    }
    (health, warnings)
}

async fn read_health_key(client: &Client) -> Result<(), ClientError> {
    let request = RangeRequest {
        key: b"health".to_vec(),
        ..Default::default()
    };
    client.kv_range(request).await.map(|_| ())
}

/// Runs `endpoint status`: a failed endpoint is reported and skipped, and the command then
/// exits 1 without a further message, as etcdctl does.
pub async fn status(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let globals = Session::globals(invocation, env, console)?;
    let printer = Printer::new(&globals.write_out, globals.hex)?;
    let endpoints = endpoints(invocation, &globals, console).await?;
    let mut results = Vec::with_capacity(endpoints.len());
    let mut failed = false;
    for endpoint in endpoints {
        match status_of(&endpoint, &globals, console).await {
            Ok(status) => results.push(EpStatus { endpoint, status }),
            Err(message) => {
                console.err(&format!(
                    "Failed to get the status of endpoint {endpoint} ({message})\n"
                ));
                failed = true;
            }
        }
    }
    printer.endpoint_status(&results, console)?;
    match failed {
        true => Err(CliError::silent(exit::ERROR)),
        false => Ok(()),
    }
}

/// `Maintenance.Status` of one endpoint, or etcdctl's message for why not.
async fn status_of(
    endpoint: &str,
    globals: &Globals,
    console: &mut Console<'_>,
) -> Result<StatusResponse, String> {
    let target = go_log::passthrough_target(endpoint);
    let deadline = Instant::now() + globals.command_timeout();
    let (answer, warnings) = match connect_one(endpoint, globals, deadline).await {
        Ok(client) => {
            let status = || client.maintenance_status(StatusRequest::default());
            session::repeat(deadline, &target, status).await
        }
        Err(ClientError::Unreachable { failures }) => {
            let reason = failures
                .first()
                .map(|(_, why)| why.as_str())
                .unwrap_or_default();
            failed_dial(&target, pinned_dial_failure(endpoint, reason))
        }
        Err(error) => failed_dial(&target, error),
    };
    for warning in warnings {
        console.err(&warning);
    }
    answer.map_err(|e| session::etcdctl_message(&e))
}

/// A client of `endpoint` alone, connected before `deadline`.
pub(crate) async fn connect_one(
    endpoint: &str,
    globals: &Globals,
    deadline: Instant,
) -> Result<Client, ClientError> {
    session::connect_until(&[endpoint.to_string()], globals.connect_options(), deadline).await
}

/// The outcome of a call that never found a connection: a malformed endpoint is reported
/// as such; an unreachable one as clientv3 reports it, after waiting out the deadline.
fn failed_dial<T>(target: &str, error: ClientError) -> (Result<T, ClientError>, Vec<String>) {
    let error = match error {
        ClientError::Unreachable { .. } | ClientError::Timeout(_) => ClientError::Rpc {
            code: Code::DeadlineExceeded,
            message: session::BALANCER_FAILURE.to_string(),
        },
        other => other,
    };
    let warnings = match error {
        ClientError::InvalidEndpoint(_) | ClientError::NoEndpoints => Vec::new(),
        _ => vec![go_log::retry_warning(
            target,
            0,
            &session::warning_text(&error),
        )],
    };
    (Err(error), warnings)
}

/// gRPC-go's last error for an endpoint dialled on its own (as `endpoint status` does).
fn pinned_dial_failure(endpoint: &str, reason: &str) -> ClientError {
    let reason = if reason.contains("refused") {
        "connect: connection refused"
    } else {
        reason
    };
    let address = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    ClientError::Rpc {
        code: Code::DeadlineExceeded,
        message: format!(
            "latest balancer error: connection error: desc = \"transport: Error while dialing dial tcp {address}: {reason}\""
        ),
    }
}

/// The endpoints to check: `--endpoints`, or every client URL of every member with
/// `--cluster`.
pub(crate) async fn endpoints(
    invocation: &Invocation,
    globals: &Globals,
    console: &mut Console<'_>,
) -> Result<Vec<String>, CliError> {
    if !invocation.values.bool("cluster") {
        return Ok(globals.endpoints.clone());
    }
    let printer = Printer::new("simple", false)?;
    let session = Session::connect(globals.clone(), printer, console)
        .await
        .map_err(cluster_fetch_error)?;
    let list = || {
        session
            .client()
            .cluster_member_list(MemberListRequest::default())
    };
    let members = session
        .call_repeatable(console, list)
        .await
        .map_err(cluster_fetch_error)?;
    Ok(members
        .members
        .into_iter()
        .flat_map(|m| m.client_ur_ls)
        .collect())
}

fn cluster_fetch_error(e: CliError) -> CliError {
    let why = e.message.unwrap_or_default();
    CliError::error(format!(
        "failed to fetch endpoints from etcd cluster member list: {why}"
    ))
}
