//! The commands. Each module turns arguments and flags into one etcd request exactly as
//! etcdctl's `get*Op` functions do (same checks, same messages, same exit codes, in the
//! same order: arguments first, then the client), sends it, and prints the answer.

pub mod alarm;
pub mod auth;
pub mod check;
pub mod compaction;
pub mod completion;
pub mod defrag;
pub mod del;
pub mod elect;
pub mod endpoint;
pub mod get;
pub mod lease;
pub mod lock;
pub mod make_mirror;
pub mod member;
pub mod move_leader;
pub mod put;
pub mod range_end;
pub mod snapshot;
pub mod txn;
pub mod version;
pub mod watch;

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
        CommandId::MemberAdd => member::add(invocation, env, console).await,
        CommandId::MemberRemove => member::remove(invocation, env, console).await,
        CommandId::MemberUpdate => member::update(invocation, env, console).await,
        CommandId::MemberPromote => member::promote(invocation, env, console).await,
        CommandId::MoveLeader => move_leader::run(invocation, env, console).await,
        CommandId::LeaseGrant => lease::grant(invocation, env, console).await,
        CommandId::LeaseRevoke => lease::revoke(invocation, env, console).await,
        CommandId::LeaseTimeToLive => lease::time_to_live(invocation, env, console).await,
        CommandId::LeaseList => lease::list(invocation, env, console).await,
        CommandId::LeaseKeepAlive => lease::keep_alive(invocation, env, console).await,
        CommandId::Watch => watch::run(invocation, env, console).await,
        CommandId::Elect => elect::run(invocation, env, console).await,
        CommandId::Lock => lock::run(invocation, env, console).await,
        CommandId::AlarmList => alarm::list(invocation, env, console).await,
        CommandId::AlarmDisarm => alarm::disarm(invocation, env, console).await,
        CommandId::Defrag => defrag::run(invocation, env, console).await,
        CommandId::MakeMirror => make_mirror::run(invocation, env, console).await,
        CommandId::CheckPerf => check::perf(invocation, env, console).await,
        CommandId::CheckDatascale => check::datascale(invocation, env, console).await,
        CommandId::SnapshotSave => snapshot::save(invocation, env, console).await,
        CommandId::SnapshotStatus => snapshot::status(invocation, env, console).await,
        CommandId::SnapshotRestore => snapshot::restore(invocation, env, console).await,
        CommandId::AuthEnable
        | CommandId::AuthDisable
        | CommandId::UserAdd
        | CommandId::UserDelete
        | CommandId::UserGet
        | CommandId::UserList
        | CommandId::UserPasswd
        | CommandId::UserGrantRole
        | CommandId::UserRevokeRole
        | CommandId::RoleAdd
        | CommandId::RoleDelete
        | CommandId::RoleGet
        | CommandId::RoleList
        | CommandId::RoleGrantPermission
        | CommandId::RoleRevokePermission => auth::run(id, invocation, env, console).await,
        CommandId::CompletionBash => {
            completion::bash(console);
            Ok(())
        }
        CommandId::CompletionZsh => {
            completion::zsh(console);
            Ok(())
        }
        CommandId::Version => {
            version::run(console);
            Ok(())
        }
        CommandId::BenchPut
        | CommandId::BenchRange
        | CommandId::BenchTxnPut
        | CommandId::BenchTxnMixed
        | CommandId::BenchWatchLatency
        | CommandId::BenchWatch
        | CommandId::BenchLeaseKeepalive => crate::bench::run(id, invocation, env, console).await,
    }
}
