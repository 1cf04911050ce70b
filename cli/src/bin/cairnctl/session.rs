//! A command's connection, made the way etcdctl's `mustClientFromCmd` makes it: apply the
//! `ETCDCTL_*` environment, pick the output format, then connect within the command's
//! deadline (`--command-timeout`), retrying unreachable endpoints until it passes, as
//! clientv3's non-blocking dial effectively does. Failed calls are reported as etcdctl
//! reports them: clientv3's retry-interceptor warning, then `Error: <etcd message>`.
//! Reads are retried as clientv3 retries its "repeatable" calls: after an `Unavailable`
//! answer (`etcdserver: no leader`), every 25ms until the deadline; writes never are.

use std::future::Future;
use std::time::Duration;

use cairn_client::etcd_error::EtcdError;
use cairn_client::{Client, ClientError, ConnectOptions};
use tokio::time::Instant;

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::globals::{self, Globals};
use crate::go_log;
use crate::output::Printer;

/// clientv3's pause between attempts of a repeatable call (`defaultBackoffWaitBetween`).
const RETRY_BACKOFF_MS: u64 = 25;
/// clientv3's attempt limit for a repeatable call (`defaultUnaryMaxRetries`).
const MAX_UNARY_ATTEMPTS: u32 = 100;

/// How long to wait before trying unreachable endpoints again.
const REDIAL_INTERVAL_MS: u64 = 100;

/// What etcdctl's client logs when no endpoint could be reached before the deadline.
pub const BALANCER_FAILURE: &str = "latest balancer error: all SubConns are in TransientFailure";

/// The process environment, as read at start (in order).
pub type Env = [(String, String)];

/// A connected client with the command's output format and deadline.
pub struct Session {
    client: Client,
    printer: Printer,
    globals: Globals,
    target: String,
    deadline: Instant,
}

impl Session {
    /// Resolves the global options (environment included) for `invocation`, as etcdctl does
    /// before creating its client.
    pub fn globals(
        invocation: &mut Invocation,
        env: &Env,
        console: &mut Console<'_>,
    ) -> Result<Globals, CliError> {
        let mut globals = Session::local_globals(invocation, env, console)?;
        crate::discovery::apply(&mut globals, &invocation.values, console)?;
        Ok(globals)
    }

    /// The global options without DNS discovery, for commands that connect to nothing
    /// (etcdctl's `snapshot status` reads only the output flags).
    pub fn local_globals(
        invocation: &mut Invocation,
        env: &Env,
        console: &mut Console<'_>,
    ) -> Result<Globals, CliError> {
        let inherited = invocation.inherited_flags();
        globals::apply_env(&mut invocation.values, &inherited, env, console)?;
        Globals::from_flags(&invocation.values)
    }

    /// Resolves options and output format, then connects to the first reachable endpoint.
    pub async fn open(
        invocation: &mut Invocation,
        env: &Env,
        console: &mut Console<'_>,
    ) -> Result<Session, CliError> {
        let globals = Session::globals(invocation, env, console)?;
        let printer = Printer::new(&globals.write_out, globals.hex)?;
        Session::connect(globals, printer, console).await
    }

    /// Connects to `globals.endpoints` within the command deadline.
    pub async fn connect(
        globals: Globals,
        printer: Printer,
        console: &mut Console<'_>,
    ) -> Result<Session, CliError> {
        let target = go_log::balancer_target(&globals.endpoints);
        let credentials = credentials(&globals, console)?;
        let deadline = Instant::now() + globals.command_timeout();
        match connect_until(&globals.endpoints, globals.connect_options(), deadline).await {
            Ok(client) => {
                let mut session = Session {
                    client,
                    printer,
                    globals,
                    target,
                    deadline,
                };
                if let Some((name, password)) = credentials {
                    session.authenticate(&name, &password, console).await?;
                }
                Ok(session)
            }
            // A malformed endpoint is the user's to fix: say so at once, without the wait
            // and the transport warning etcdctl gives it.
            Err(error @ (ClientError::InvalidEndpoint(_) | ClientError::NoEndpoints)) => {
                Err(CliError::error(error.to_string()))
            }
            Err(error) => Err(report(console, &target, &unreachable_as_etcdctl(error))),
        }
    }

    /// clientv3's `getToken` at client creation: a refused password fails the command as a
    /// connection failure (exit 2); auth not enabled is not an error, the client just sends
    /// no token.
    async fn authenticate(
        &mut self,
        name: &str,
        password: &str,
        console: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self
            .call_quiet(self.client.authenticate(name, password))
            .await
        {
            Ok(client) => {
                self.client = client;
                Ok(())
            }
            Err(e) if e.etcd_error() == Some(EtcdError::AuthNotEnabled) => Ok(()),
            Err(e) => {
                let reported = self.report(console, &e);
                Err(CliError {
                    code: exit::BAD_CONNECTION,
                    ..reported
                })
            }
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The output printer.
    pub fn printer(&self) -> Printer {
        self.printer
    }

    /// Runs one call under the command deadline and returns its failure unreported.
    pub async fn call_quiet<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        within(self.deadline, call).await
    }

    /// Reports a failed call as etcdctl does (clientv3's warning on stderr) and returns the
    /// error to exit with.
    pub fn report(&self, console: &mut Console<'_>, error: &ClientError) -> CliError {
        report(console, &self.target, error)
    }

    /// Starts a fresh command deadline (for `txn`, whose input is read after connecting).
    pub fn restart_deadline(&mut self) {
        self.deadline = Instant::now() + self.globals.command_timeout();
    }

    /// Runs a read under the command deadline, retrying it while the server answers
    /// `Unavailable`; a failure is reported as etcdctl reports it and becomes exit code 1.
    pub async fn call_repeatable<T, F, Fut>(
        &self,
        console: &mut Console<'_>,
        call: F,
    ) -> Result<T, CliError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let (result, warnings) = repeat(self.deadline, &self.target, call).await;
        for warning in warnings {
            console.err(&warning);
        }
        result.map_err(|e| CliError::error(etcdctl_message(&e)))
    }

    /// Runs one call under the command deadline; a failure is reported as etcdctl reports
    /// it and becomes exit code 1.
    pub async fn call<T>(
        &self,
        console: &mut Console<'_>,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, CliError> {
        within(self.deadline, call)
            .await
            .map_err(|e| report(console, &self.target, &e))
    }
}

/// The user name and password to authenticate with (etcdctl's `authCfgFromCmd`): `--user
/// name:password`, or `--user name --password password`, or `--user name` and the password
/// asked for on the console.
fn credentials(
    globals: &Globals,
    console: &mut Console<'_>,
) -> Result<Option<(String, String)>, CliError> {
    if globals.user.is_empty() {
        return Ok(None);
    }
    if !globals.password.is_empty() {
        return Ok(Some((globals.user.clone(), globals.password.clone())));
    }
    if let Some((name, password)) = globals.user.split_once(':') {
        return Ok(Some((name.to_string(), password.to_string())));
    }
    console.out("Password: ");
    let mut line = String::new();
    console
        .input()
        .read_line(&mut line)
        .map_err(|e| CliError::error(e.to_string()))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    Ok(Some((globals.user.clone(), password)))
}

/// clientv3's retry loop for a repeatable call: each failure logs a warning; an
/// `Unavailable` one is tried again after [`RETRY_BACKOFF_MS`] while the deadline allows.
/// Returns the outcome and the warnings to print.
pub async fn repeat<T, F, Fut>(
    deadline: Instant,
    target: &str,
    mut call: F,
) -> (Result<T, ClientError>, Vec<String>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut warnings = Vec::new();
    for attempt in 0..MAX_UNARY_ATTEMPTS {
        let error = match within(deadline, call()).await {
            Ok(value) => return (Ok(value), warnings),
            Err(error) => error,
        };
        warnings.push(go_log::retry_warning(
            target,
            attempt,
            &warning_text(&error),
        ));
        let retryable = error.is_rpc() && error.code() == cairn_client::Code::Unavailable;
        if !retryable || attempt + 1 == MAX_UNARY_ATTEMPTS {
            return (Err(error), warnings);
        }
        let wake = Instant::now() + Duration::from_millis(RETRY_BACKOFF_MS);
        if wake >= deadline {
            tokio::time::sleep_until(deadline).await;
            return (Err(ClientError::Timeout(Duration::ZERO)), warnings);
        }
        tokio::time::sleep_until(wake).await;
    }
    (Err(ClientError::Timeout(Duration::ZERO)), warnings)
}

/// `call` bounded by `deadline`; past it, a [`ClientError::Timeout`].
pub async fn within<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, call).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ClientError::Timeout(remaining)),
    }
}

/// Connects to the first reachable endpoint, trying all of them again every
/// [`REDIAL_INTERVAL_MS`] until `deadline`.
pub async fn connect_until(
    endpoints: &[String],
    options: ConnectOptions,
    deadline: Instant,
) -> Result<Client, ClientError> {
    loop {
        let options = options.clone();
        let error = match within(deadline, Client::connect_with(endpoints, options)).await {
            Ok(client) => return Ok(client),
            Err(error @ ClientError::Unreachable { .. }) => error,
            Err(other) => return Err(other),
        };
        let retry_at = Instant::now() + Duration::from_millis(REDIAL_INTERVAL_MS);
        if retry_at >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Err(error);
        }
        tokio::time::sleep_until(retry_at).await;
    }
}

/// etcdctl never sees a dial error: its calls wait for a connection until the deadline
/// and then fail with `DeadlineExceeded` and the balancer's last error.
fn unreachable_as_etcdctl(error: ClientError) -> ClientError {
    match error {
        ClientError::Unreachable { .. } | ClientError::Timeout(_) => ClientError::Rpc {
            code: cairn_client::Code::DeadlineExceeded,
            message: BALANCER_FAILURE.to_string(),
        },
        other => other,
    }
}

/// Writes clientv3's warning for a failed call and returns etcdctl's error for it.
pub fn report(console: &mut Console<'_>, target: &str, error: &ClientError) -> CliError {
    console.err(&go_log::retry_warning(target, 0, &warning_text(error)));
    CliError::error(etcdctl_message(error))
}

/// The error text in the warning: gRPC-go's `rpc error: code = ... desc = ...`.
pub fn warning_text(error: &ClientError) -> String {
    match error {
        ClientError::Rpc { code, message } => cairn_client::go_status_text(*code, message),
        ClientError::Timeout(_) => cairn_client::go_status_text(
            cairn_client::Code::DeadlineExceeded,
            "context deadline exceeded",
        ),
        other => other.to_string(),
    }
}

/// The message after `Error: `: etcd's message for its known errors; for a call that ran out
/// of time, Go's `context deadline exceeded` (as clientv3's `toErr` turns it into).
pub fn etcdctl_message(error: &ClientError) -> String {
    match error {
        ClientError::Rpc {
            code: cairn_client::Code::DeadlineExceeded,
            ..
        } => "context deadline exceeded".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn unavailable() -> ClientError {
        ClientError::Rpc {
            code: cairn_client::Code::Unavailable,
            message: "etcdserver: no leader".into(),
        }
    }

    #[tokio::test]
    async fn reads_are_retried_while_the_server_is_unavailable() {
        let calls = Cell::new(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (result, warnings) = repeat(deadline, "t", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n < 3 { Err(unavailable()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(warnings.len(), 2);
        assert!(warnings[1].contains(
            "\"attempt\":1,\"error\":\"rpc error: code = Unavailable desc = etcdserver: no leader\""
        ));
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let compacted = ClientError::Rpc {
            code: cairn_client::Code::OutOfRange,
            message: "etcdserver: mvcc: required revision has been compacted".into(),
        };
        let (result, warnings) =
            repeat(deadline, "t", || async { Err::<(), _>(compacted.clone()) }).await;
        assert_eq!(result, Err(compacted));
        assert_eq!(warnings.len(), 1);
    }

    #[tokio::test]
    async fn retrying_stops_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(100);
        let (result, warnings) =
            repeat(deadline, "t", || async { Err::<(), _>(unavailable()) }).await;
        assert!(matches!(result, Err(ClientError::Timeout(_))));
        assert!(!warnings.is_empty());
        assert_eq!(
            etcdctl_message(&ClientError::Timeout(Duration::ZERO)),
            "context deadline exceeded"
        );
    }
}
