//! `cairnctl`: an etcdctl 3.4-compatible command line client for cairn (and any etcd v3
//! server). Commands, flags, environment variables, output formats, error messages and exit
//! codes follow etcdctl's so that scripts written for etcdctl run unchanged; the
//! differential test in `cli/tests` holds it to that against the real etcdctl.
//!
//! Deliberate differences from etcdctl 3.4:
//! * it names itself `cairnctl` (usage, errors, `version`);
//! * `get` also has etcd 3.5's `--count-only` and `--min/max-mod/create-rev` (so its usage
//!   text lists five more flags);
//! * in `txn`, `lease("k") = "<hex id>"` compares work, an unknown operator or a `--help`
//!   in a request line is invalid input, and single-quoted words are kept whole (etcdctl
//!   3.4 panics, deadlocks, and truncates them respectively); the transaction itself is
//!   bounded by `--command-timeout` (etcdctl waits forever);
//! * a malformed endpoint is refused at once (etcdctl waits out the command timeout);
//! * `--discovery-srv` orders SRV records of equal priority by weight (Go shuffles them);
//! * `endpoint health` lists endpoints in the order given (etcdctl: as checks finish);
//! * `bench` (etcd's separate `benchmark` tool, as a subcommand) is cairnctl's own;
//! * `watch` does not send clientv3's `hasleader` metadata, and `watch -i` serves all its
//!   watchers on one stream (clientv3 does too, per context);
//! * `snapshot status` and `snapshot restore` read cairn's snapshot format, not etcd's bolt
//!   files; `status`'s hash is CRC-32C over the snapshot's records, not over bolt buckets;
//!   `restore` has no `--wal-dir`, refuses only a non-empty data dir, and leaves nothing
//!   behind when it fails (etcdctl leaves a partial data dir);
//! * `snapshot save` also checks the downloaded SHA-256 trailer (etcdctl only its length).

/// mimalloc, as the server: `bench` allocates and frees several small buffers per request
/// (HTTP/2 frames, protobuf messages), and glibc's malloc took about 14% of its CPU under
/// a put load, CPU the servers it measures share on a small machine.
#[cfg(not(madsim))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod command;
mod commands;
mod console;
mod discovery;
mod dispatch;
mod exit;
mod flags;
mod globals;
mod go_duration;
mod go_log;
mod go_strconv;
mod interrupt;
mod output;
mod session;
mod tabwriter;
mod txn_parse;
mod usage;

use std::io::Write;

use crate::commands::Action;
use crate::console::Console;
use crate::dispatch::Dispatch;
use crate::exit::CliError;

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .filter(|(k, _)| k != "ETCDCTL_API")
        .collect();
    let code = run_process(&argv, &env).await;
    std::process::exit(code);
}

/// Runs cairnctl on the process's standard streams; returns the exit code.
async fn run_process(argv: &[String], env: &[(String, String)]) -> i32 {
    // stderr is not locked for the whole run: background tasks (the bench progress
    // indicator) write to it too, and a task blocked on the lock would hold a runtime
    // worker (and the task in its LIFO slot) hostage.
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
    // Nor is stdin: `watch -i` reads it on a thread of its own.
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut console = Console::new(&mut stdout, &mut stderr, &mut stdin);
    if let Some(code) = check_api_version(&mut console) {
        return code;
    }
    let code = run(argv, env, &mut console).await;
    let _flushed = std::io::stdout().flush();
    code
}

/// etcdctl's `ETCDCTL_API` switch: only the v3 API exists here.
fn check_api_version(console: &mut Console<'_>) -> Option<i32> {
    let api = std::env::var("ETCDCTL_API").unwrap_or_default();
    if api.is_empty() || api == "3" {
        return None;
    }
    console.err(&format!("unsupported API version {api}\n"));
    Some(exit::ERROR)
}

/// Runs one command line; returns the exit code.
async fn run(argv: &[String], env: &[(String, String)], console: &mut Console<'_>) -> i32 {
    let mut invocation = match dispatch::dispatch(argv, console) {
        Dispatch::Run(invocation) => invocation,
        Dispatch::Exit(code) => return code,
    };
    let Action::Run(id) = invocation.command().action else {
        return exit::ERROR;
    };
    match command::run(id, &mut invocation, env, console).await {
        Ok(()) => exit::SUCCESS,
        Err(error) => report(error, console),
    }
}

/// etcdctl's `ExitWithError`: `Error: <message>` on stderr, then the exit code.
fn report(error: CliError, console: &mut Console<'_>) -> i32 {
    if let Some(message) = &error.message {
        console.err(&format!("Error: {message}\n"));
    }
    error.code
}
