//! `defrag [--cluster] [--data-dir DIR]` (etcdctl's `defrag_command.go`): each endpoint
//! (or each member's client URLs with `--cluster`) is defragmented in turn over its own
//! connection; a failure is reported and the others still run, then the command exits 1.
//! `--data-dir` defragments the storage of a member that is not running instead.

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::go_log;
use crate::session::{self, Env, Session};

/// Runs `defrag`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let data_dir = invocation.values.str("data-dir").to_string();
    if !data_dir.is_empty() {
        return offline(&data_dir, console);
    }
    let globals = Session::globals(invocation, env, console)?;
    let endpoints = super::endpoint::endpoints(invocation, &globals, console).await?;
    let mut failures = 0;
    for endpoint in endpoints {
        let deadline = tokio::time::Instant::now() + globals.command_timeout();
        let connected = super::endpoint::connect_one(&endpoint, &globals, deadline).await;
        let result = match connected {
            Ok(client) => session::within(deadline, client.maintenance_defragment()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => console.out(&format!("Finished defragmenting etcd member[{endpoint}]\n")),
            Err(error) => {
                let target = go_log::passthrough_target(&endpoint);
                console.err(&go_log::retry_warning(
                    &target,
                    0,
                    &session::warning_text(&error),
                ));
                console.err(&format!(
                    "Failed to defragment etcd member[{endpoint}] ({})\n",
                    session::etcdctl_message(&error)
                ));
                failures += 1;
            }
        }
    }
    match failures {
        0 => Ok(()),
        _ => Err(CliError::silent(exit::ERROR)),
    }
}

/// Defragments the data dir of a member that is not running (it must not be: the
/// storage is locked while a member uses it).
#[cfg(not(madsim))]
fn offline(data_dir: &str, console: &mut Console<'_>) -> Result<(), CliError> {
    use cairn_core::storage::Engine as _;
    let member = std::path::Path::new(data_dir).join("member");
    let result = match member.is_dir() {
        true => cairn_core::storage::fjall::FjallEngine::open(&member)
            .and_then(|engine| engine.defragment()),
        false => Err(cairn_core::storage::StorageError::Open {
            path: member.display().to_string(),
            reason: "no such directory".to_string(),
        }),
    };
    result.map_err(|e| {
        console.err(&format!(
            "Failed to defragment etcd data[{data_dir}] ({e})\n"
        ));
        CliError::silent(exit::ERROR)
    })
}

#[cfg(madsim)]
fn offline(data_dir: &str, console: &mut Console<'_>) -> Result<(), CliError> {
    console.err(&format!(
        "Failed to defragment etcd data[{data_dir}] (not available in simulation)\n"
    ));
    Err(CliError::silent(exit::ERROR))
}
