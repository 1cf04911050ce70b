//! The commands. Each module turns arguments and flags into one etcd request exactly as
//! etcdctl's `get*Op` functions do (same checks, same messages, same exit codes, in the
//! same order: arguments first, then the client), sends it, and prints the answer.

pub mod compaction;
pub mod del;
pub mod endpoint;
pub mod get;
pub mod member;
pub mod put;
pub mod range_end;
pub mod txn;
pub mod version;

use crate::commands::CommandId;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::session::Env;

/// Runs an implemented command.
pub async fn run(
    id: CommandId,
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match id {
        CommandId::Get => get::run(invocation, env, console).await,
        CommandId::Put => put::run(invocation, env, console).await,
        CommandId::Del => del::run(invocation, env, console).await,
        CommandId::Txn => txn::run(invocation, env, console).await,
        CommandId::Compaction => compaction::run(invocation, env, console).await,
        CommandId::EndpointHealth => endpoint::health(invocation, env, console).await,
        CommandId::EndpointStatus => endpoint::status(invocation, env, console).await,
        CommandId::MemberList => member::list(invocation, env, console).await,
        CommandId::Version => {
            version::run(console);
            Ok(())
        }
        CommandId::BenchPut
        | CommandId::BenchRange
        | CommandId::BenchTxnPut
        | CommandId::BenchWatch
        | CommandId::BenchLeaseKeepalive => crate::bench::run(id, invocation, env, console).await,
    }
}
