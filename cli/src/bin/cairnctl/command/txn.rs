//! `txn [-i]`: reads compares, success requests and failure requests from stdin (see
//! [`crate::txn_parse`]), prompting for each section in interactive mode exactly as etcdctl
//! does, then commits them as one transaction.

use cairn_client::pb::etcdserverpb::{RequestOp, TxnRequest};

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::session::{Env, Session};
use crate::txn_parse;

/// Runs `txn`. The connection is made before input is read (as etcdctl makes its client
/// first); the command timeout then starts when the transaction is sent.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    if !invocation.args.is_empty() {
        return Err(CliError::bad_args("txn command does not accept argument"));
    }
    let interactive = invocation.values.bool("interactive");
    let mut session = Session::open(invocation, env, console).await?;
    let request = read_request(interactive, console)?;
    session.restart_deadline();
    let response = session
        .call(console, session.client().kv_txn(request))
        .await?;
    session.printer().txn(&response, console)
}

/// Reads the three sections into a transaction.
fn read_request(interactive: bool, console: &mut Console<'_>) -> Result<TxnRequest, CliError> {
    prompt(interactive, console, "compares:");
    let compare = txn_parse::read_section(console.input())?
        .iter()
        .map(|line| txn_parse::parse_compare(line))
        .collect::<Result<Vec<_>, _>>()?;
    prompt(interactive, console, "success requests (get, put, del):");
    let success = read_requests(console)?;
    prompt(interactive, console, "failure requests (get, put, del):");
    let failure = read_requests(console)?;
    Ok(TxnRequest {
        compare,
        success,
        failure,
    })
}

fn read_requests(console: &mut Console<'_>) -> Result<Vec<RequestOp>, CliError> {
    let lines = txn_parse::read_section(console.input())?;
    let mut ops = Vec::with_capacity(lines.len());
    for line in lines {
        match txn_parse::parse_request(&line) {
            Ok(op) => ops.push(op),
            Err(failure) => {
                if let Some(usage) = failure.usage {
                    console.err(&usage);
                }
                return Err(failure.error);
            }
        }
    }
    Ok(ops)
}

fn prompt(interactive: bool, console: &mut Console<'_>, text: &str) {
    if interactive {
        console.out(&format!("{text}\n"));
    }
}
