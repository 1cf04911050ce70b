//! `lease grant|revoke|timetolive|list|keep-alive`: the Lease service, with etcdctl's
//! argument checks, messages and exit codes (`ctlv3/command/lease_command.go`). Lease IDs
//! are hexadecimal on the command line and in the simple output.

use cairn_client::etcd_error::EtcdError;
use cairn_client::pb::etcdserverpb::{
    LeaseGrantRequest, LeaseLeasesRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
};
use cairn_client::{ClientError, KeepAliveStream};

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::go_strconv;
use crate::output::Format;
use crate::session::{self, Env, Session};

/// Runs `lease grant TTL`.
pub async fn grant(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [ttl] = invocation.args.as_slice() else {
        return Err(CliError::bad_args("lease grant command needs TTL argument"));
    };
    let ttl =
        go_strconv::parse_int(ttl, 10).map_err(|e| CliError::bad_args(format!("bad TTL ({e})")))?;
    let session = Session::open(invocation, env, console).await?;
    let request = LeaseGrantRequest { ttl, id: 0 };
    let response = session
        .call_quiet(session.client().lease_grant(request))
        .await
        .map_err(|e| failed(console, &session, "failed to grant lease", &e))?;
    session.printer().lease_grant(&response, console)
}

/// Runs `lease revoke ID`.
pub async fn revoke(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [arg] = invocation.args.as_slice() else {
        return Err(CliError::bad_args("lease revoke command needs 1 argument"));
    };
    let id = lease_id(arg)?;
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call_quiet(session.client().lease_revoke(LeaseRevokeRequest { id }))
        .await
        .map_err(|e| failed(console, &session, "failed to revoke lease", &e))?;
    session.printer().lease_revoke(id, &response, console)
}

/// Runs `lease timetolive ID [--keys]`.
pub async fn time_to_live(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [arg] = invocation.args.as_slice() else {
        return Err(CliError::bad_args(
            "lease timetolive command needs lease ID as argument",
        ));
    };
    let id = lease_id(arg)?;
    let keys = invocation.values.bool("keys");
    let session = Session::open(invocation, env, console).await?;
    let request = LeaseTimeToLiveRequest { id, keys };
    let response = session
        .call(console, session.client().lease_time_to_live(request))
        .await?;
    session
        .printer()
        .lease_time_to_live(&response, keys, console)
}

/// Runs `lease list`.
pub async fn list(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    if !invocation.args.is_empty() {
        return Err(CliError::bad_args(
            "lease list command does not accept argument",
        ));
    }
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call_quiet(session.client().lease_leases(LeaseLeasesRequest::default()))
        .await
        .map_err(|e| failed(console, &session, "failed to list leases", &e))?;
    session.printer().lease_list(&response, console)
}

/// Runs `lease keep-alive ID [--once]`: with `--once` one keep-alive; otherwise one every
/// third of the TTL (clientv3's schedule) until the lease is gone, printing each answer.
pub async fn keep_alive(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [arg] = invocation.args.as_slice() else {
        return Err(CliError::bad_args(
            "lease keep-alive command needs lease ID as argument",
        ));
    };
    let id = lease_id(arg)?;
    let once = invocation.values.bool("once");
    let session = Session::open(invocation, env, console).await?;
    let printer = session.printer();
    let bad_connection =
        |e: ClientError| CliError::new(exit::BAD_CONNECTION, session::etcdctl_message(&e));
    if once {
        let response = session
            .client()
            .lease_keep_alive_once(id)
            .await
            .and_then(|r| match r.ttl {
                ttl if ttl <= 0 => Err(lease_not_found()),
                _ => Ok(r),
            })
            .map_err(bad_connection)?;
        return printer.lease_keep_alive(&response, console);
    }
    let mut stream = session
        .client()
        .lease_keep_alive(id)
        .await
        .map_err(bad_connection)?;
    keep_alive_loop(&mut stream, id, printer, console).await?;
    if printer.format == Format::Simple {
        console.out(&format!("lease {id:016x} expired or revoked.\n"));
    }
    Ok(())
}

/// Sends a keep-alive every third of the TTL and prints each answer until the lease is
/// gone (TTL 0) or the stream ends.
async fn keep_alive_loop(
    stream: &mut KeepAliveStream,
    id: i64,
    printer: crate::output::Printer,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    loop {
        let response = match stream.message().await {
            Ok(Some(response)) => response,
            Ok(None) | Err(_) => return Ok(()),
        };
        if response.ttl <= 0 {
            return Ok(());
        }
        printer.lease_keep_alive(&response, console)?;
        let pause =
            std::time::Duration::from_secs(u64::try_from(response.ttl / 3).unwrap_or(0).max(1));
        tokio::time::sleep(pause).await;
        if stream.keep_alive(id).await.is_err() {
            return Ok(());
        }
    }
}

fn lease_not_found() -> ClientError {
    ClientError::Rpc {
        code: cairn_client::Code::NotFound,
        message: EtcdError::LeaseNotFound.message().to_string(),
    }
}

/// etcdctl's `ExitWithError(ExitError, fmt.Errorf("<what> (%v)", err))` after clientv3's
/// retry warning.
fn failed(
    console: &mut Console<'_>,
    session: &Session,
    what: &str,
    error: &ClientError,
) -> CliError {
    let reported = session.report(console, error);
    let why = reported.message.unwrap_or_default();
    CliError::error(format!("{what} ({why})"))
}

/// A hexadecimal lease ID argument (etcdctl's `leaseFromArgs`).
pub fn lease_id(arg: &str) -> Result<i64, CliError> {
    go_strconv::parse_int(arg, 16)
        .map_err(|e| CliError::bad_args(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_are_hexadecimal() {
        assert_eq!(lease_id("694d77aa9e38260f"), Ok(0x694d_77aa_9e38_260f));
        assert_eq!(
            lease_id("zz").unwrap_err(),
            CliError::bad_args(
                r#"bad lease ID arg (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex"#
            )
        );
    }
}
