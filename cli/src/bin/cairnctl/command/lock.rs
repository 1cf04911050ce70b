//! `lock <lockname> [exec-command arg1 arg2 ...]`, as etcdctl's `lock_command.go`: waits
//! for the lock on a session of its own (a lease of `--ttl` seconds kept alive), then either
//! prints the lock's key and value and holds the lock until SIGINT or SIGTERM, or runs the
//! command with `ETCD_LOCK_KEY` and `ETCD_LOCK_REV` set and releases the lock when it ends
//! (a failing command is `Error: exit status <n>`, exit code 1, as etcdctl). It uses
//! clientv3's mutex recipe (`cairn_client::concurrency`), not the Lock service, so keys and
//! output are etcdctl's.

use cairn_client::concurrency::{self, DEFAULT_SESSION_TTL_SECS, Mutex};

use super::elect::{CONTEXT_CANCELED, failed, read_key};
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::interrupt::Interrupt;
use crate::session::{Env, Session};

/// Runs `lock`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let Some((name, command)) = invocation.args.split_first() else {
        return Err(CliError::bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    };
    let (name, command) = (name.clone(), command.to_vec());
    // clientv3's `WithTTL` keeps the default for a TTL that is not positive.
    let ttl = match invocation.values.int("ttl") {
        ttl if ttl > 0 => ttl,
        _ => DEFAULT_SESSION_TTL_SECS,
    };
    let session = Session::open(invocation, env, console).await?;
    let client = session.client();
    let lease = concurrency::Session::new(client, ttl)
        .await
        .map_err(|e| session.report(console, &e))?;
    let mut interrupt = Interrupt::catch();
    let enqueued = tokio::select! {
        enqueued = Mutex::enqueue(client, lease.lease(), name.as_bytes()) => enqueued,
        () = interrupt.wait() => return Err(CliError::error(CONTEXT_CANCELED)),
    };
    let mutex = enqueued.map_err(|e| failed(&session, console, e))?;
    let waited = tokio::select! {
        waited = mutex.wait(client) => Some(waited),
        () = interrupt.wait() => None,
    };
    // etcd's `Mutex.Lock` deletes its key when waiting fails for any reason.
    let header = match waited {
        Some(Ok(header)) => header,
        Some(Err(error)) => {
            let _ = mutex.unlock(client).await;
            return Err(failed(&session, console, error));
        }
        None => {
            let _ = mutex.unlock(client).await;
            return Err(CliError::error(CONTEXT_CANCELED));
        }
    };
    if !command.is_empty() {
        let ran = run_command(&command, mutex.key(), header.revision);
        let unlocked = mutex.unlock(client).await;
        ran?;
        return unlocked.map_err(|e| failed(&session, console, e));
    }
    let found = read_key(&session, client, mutex.key(), console).await?;
    if found.kvs.is_empty() {
        return Err(CliError::error("lock lost on init"));
    }
    session.printer().get(&found, false, console)?;
    tokio::select! {
        () = interrupt.wait() => mutex.unlock(client).await.map_err(|e| failed(&session, console, e)),
        () = lease.done() => Err(CliError::error("session expired")),
    }
}

/// Runs the exec command with the lock's key and revision in its environment, on this
/// process's standard streams; fails as Go's `exec.Cmd.Run` does.
fn run_command(command: &[String], key: &[u8], revision: i64) -> Result<(), CliError> {
    let status = std::process::Command::new(&command[0])
        .args(&command[1..])
        .env("ETCD_LOCK_KEY", String::from_utf8_lossy(key).as_ref())
        .env("ETCD_LOCK_REV", revision.to_string())
        .stdin(std::process::Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(CliError::error(exit_text(status))),
        Err(e) => Err(CliError::error(spawn_error(&command[0], &e))),
    }
}

/// Go's text for a command that could not be started: looked up in `$PATH` when its name
/// has no `/`, started directly otherwise.
fn spawn_error(program: &str, error: &std::io::Error) -> String {
    if error.kind() != std::io::ErrorKind::NotFound {
        return format!("fork/exec {program}: {error}");
    }
    match program.contains('/') {
        true => format!("fork/exec {program}: no such file or directory"),
        false => format!(
            "exec: {}: executable file not found in $PATH",
            crate::go_strconv::quote(program)
        ),
    }
}

/// Go's `ExitError` text: `exit status <n>`, or `signal: <name>` for a killed command.
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {}", signal_name(signal)),
        (None, None) => "exit status -1".to_string(),
    }
}

/// Go's `syscall.Signal.String` for the signals a command usually dies of.
fn signal_name(signal: i32) -> String {
    match signal {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        3 => "quit".into(),
        6 => "aborted".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_reads_like_gos_exec_error() {
        let err = run_command(&["false".to_string()], b"l/1", 3).unwrap_err();
        assert_eq!(err, CliError::error("exit status 1"));
        let missing = run_command(&["/nonexistent/cairn-test".to_string()], b"l/1", 3);
        assert_eq!(
            missing.unwrap_err(),
            CliError::error("fork/exec /nonexistent/cairn-test: no such file or directory")
        );
        let unknown = run_command(&["cairn-no-such-command".to_string()], b"l/1", 3);
        assert_eq!(
            unknown.unwrap_err(),
            CliError::error("exec: \"cairn-no-such-command\": executable file not found in $PATH")
        );
    }

    #[test]
    fn the_command_sees_the_lock_key_and_revision() {
        let script = "test \"$ETCD_LOCK_KEY\" = l/694d && test \"$ETCD_LOCK_REV\" = 7";
        let command = ["sh".to_string(), "-c".to_string(), script.to_string()];
        assert_eq!(run_command(&command, b"l/694d", 7), Ok(()));
    }
}
