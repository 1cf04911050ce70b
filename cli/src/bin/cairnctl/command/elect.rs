//! `elect [options] <election-name> [proposal]`, as etcdctl's `elect_command.go`: with a
//! proposal, campaigns on a session of its own (a 60 s lease kept alive), prints the
//! elected key and value once it leads, and resigns on SIGINT or SIGTERM; with `-l`,
//! prints the leader and every change of it until interrupted. Both use clientv3's
//! concurrency recipes (`cairn_client::concurrency`), not the Election service, so keys
//! and output are etcdctl's.

use cairn_client::Client;
use cairn_client::concurrency::{self, Candidacy, ConcurrencyError, DEFAULT_SESSION_TTL_SECS};

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::interrupt::Interrupt;
use crate::session::{Env, Session};

/// Go's `context.Canceled` text: what a campaign or lock interrupted while waiting fails
/// with.
pub const CONTEXT_CANCELED: &str = "context canceled";

/// Runs `elect`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let args = invocation.args.clone();
    if args.is_empty() || args.len() > 2 {
        return Err(CliError::bad_args(
            "elect takes one election name argument and an optional proposal argument",
        ));
    }
    let listen = invocation.values.bool("listen");
    let session = Session::open(invocation, env, console).await?;
    match (args.get(1), listen) {
        (None, false) => Err(CliError::bad_args("no proposal argument but -l not set")),
        (Some(_), true) => Err(CliError::bad_args("proposal given but -l is set")),
        (None, true) => observe(&session, &args[0], console).await,
        (Some(proposal), false) => campaign(&session, &args[0], proposal, console).await,
    }
}

/// etcdctl's `observe`.
async fn observe(session: &Session, name: &str, console: &mut Console<'_>) -> Result<(), CliError> {
    let client = session.client();
    let lease = concurrency::Session::new(client, DEFAULT_SESSION_TTL_SECS)
        .await
        .map_err(|e| session.report(console, &e))?;
    let mut interrupt = Interrupt::catch();
    let mut leaders = concurrency::observe(client, name.as_bytes());
    loop {
        let leader = tokio::select! {
            leader = leaders.recv() => leader,
            () = interrupt.wait() => return Ok(()),
        };
        match leader {
            Some(leader) => session.printer().get(&leader, false, console)?,
            None => {
                lease.orphan();
                return Err(CliError::error("elect: observer lost"));
            }
        }
    }
}

/// etcdctl's `campaign`.
async fn campaign(
    session: &Session,
    name: &str,
    proposal: &str,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let client = session.client();
    let lease = concurrency::Session::new(client, DEFAULT_SESSION_TTL_SECS)
        .await
        .map_err(|e| session.report(console, &e))?;
    let mut interrupt = Interrupt::catch();
    let entered = tokio::select! {
        entered = Candidacy::enter(client, lease.lease(), name.as_bytes(), proposal.as_bytes()) => entered,
        () = interrupt.wait() => return Err(CliError::error(CONTEXT_CANCELED)),
    };
    let candidacy = entered.map_err(|e| failed(session, console, e))?;
    let waited = tokio::select! {
        waited = candidacy.wait(client) => waited,
        () = interrupt.wait() => {
            // etcd resigns a campaign whose context is cancelled while it waits.
            let _ = candidacy.abandon(client).await;
            return Err(CliError::error(CONTEXT_CANCELED));
        }
    };
    let elected = waited.map_err(|e| failed(session, console, e))?;
    let found = read_key(session, client, &elected.key, console).await?;
    session.printer().get(&found, false, console)?;
    tokio::select! {
        () = interrupt.wait() => {}
        () = lease.done() => return Err(CliError::error("elect: session expired")),
    }
    elected
        .resign(client)
        .await
        .map_err(|e| failed(session, console, e))
}

/// A `Get` of the key etcdctl prints once elected or locked.
pub async fn read_key(
    session: &Session,
    client: &Client,
    key: &[u8],
    console: &mut Console<'_>,
) -> Result<cairn_client::pb::etcdserverpb::RangeResponse, CliError> {
    client
        .kv_range(concurrency::get_key(key))
        .await
        .map_err(|e| session.report(console, &e))
}

/// A failed recipe step reported as etcdctl reports it: a call's error after clientv3's
/// warning, the recipe's own error as is.
pub fn failed(session: &Session, console: &mut Console<'_>, error: ConcurrencyError) -> CliError {
    match error {
        ConcurrencyError::Client(e) => session.report(console, &e),
        other => CliError::error(other.to_string()),
    }
}
