//! `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]`, as
//! etcdctl's `watch_command.go`: prints each event (type, previous pair with `--prev-kv`,
//! pair) as it arrives, from `--rev` on if given; after `--`, runs the command once per
//! event with `ETCD_WATCH_REVISION`, `ETCD_WATCH_EVENT_TYPE`, `ETCD_WATCH_KEY` and
//! `ETCD_WATCH_VALUE` set. `ETCDCTL_WATCH_KEY` and `ETCDCTL_WATCH_RANGE_END` stand for the
//! key arguments. It runs until the server cancels the watch (exit 5, etcdctl's
//! `ExitInterrupted`) or the process is stopped. With `-i`, each stdin line
//! `watch [options] key [range_end] [-- command]` adds a watcher on the same stream, and
//! `progress` asks for a progress notification.

use std::collections::{BTreeMap, VecDeque};

use cairn_client::pb::etcdserverpb::{
    WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse, watch_request,
};
use cairn_client::{ClientError, WatchStream};
use tokio::sync::mpsc;

use super::range_end;
use crate::commands::WATCH_FLAGS;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::flags::{self, FlagValues};
use crate::go_strconv::{quote, quote_bytes};
use crate::output::Printer;
use crate::session::{Env, Session};
use crate::txn_parse::argify;

const BAD_ARGS_NUM: &str = "bad number of arguments";
const BAD_ARGS_CONFLICT_ENV: &str = "bad number of arguments (found conflicting environment key)";
const BAD_ARGS_SEPARATOR: &str = "bad number of arguments (found separator --, but no commands)";

/// A request to send on the stream, with the exec command of the watcher it creates.
type LineRequest = (WatchRequest, Option<Vec<String>>);

/// What one watcher watches, and the command to run per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// The create request.
    pub create: WatchCreateRequest,
    /// The command after `--` (empty: none).
    pub exec: Vec<String>,
}

/// The key arguments from `ETCDCTL_WATCH_KEY` / `ETCDCTL_WATCH_RANGE_END`.
fn env_keys(env: &Env) -> Result<Vec<String>, CliError> {
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (key, end) = (get("ETCDCTL_WATCH_KEY"), get("ETCDCTL_WATCH_RANGE_END"));
    match (key.is_empty(), end.is_empty()) {
        (true, false) => Err(CliError::bad_args(format!(
            "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
            quote(&end)
        ))),
        (true, true) => Ok(Vec::new()),
        (false, true) => Ok(vec![key]),
        (false, false) => Ok(vec![key, end]),
    }
}

/// etcdctl's `parseWatchArgs` + `getWatchChan` for the command line (or an interactive
/// line after `watch`): positional arguments, the count before `--`, the flags.
pub fn spec(
    args: &[String],
    at_dash: Option<usize>,
    flags: &FlagValues,
    env_keys: &[String],
) -> Result<WatchSpec, CliError> {
    let (mut keys, exec) = match at_dash {
        Some(at) if at >= args.len() => return Err(CliError::bad_args(BAD_ARGS_SEPARATOR)),
        Some(at) => (args[..at].to_vec(), args[at..].to_vec()),
        None => (args.to_vec(), Vec::new()),
    };
    if !env_keys.is_empty() && !keys.is_empty() {
        return Err(CliError::bad_args(BAD_ARGS_CONFLICT_ENV));
    }
    if !env_keys.is_empty() {
        keys = env_keys.to_vec();
    }
    let Some(key) = keys.first() else {
        return Err(CliError::bad_args(BAD_ARGS_NUM));
    };
    let prefix = flags.bool("prefix");
    let mut create = WatchCreateRequest {
        key: key.as_bytes().to_vec(),
        start_revision: flags.int("rev"),
        prev_kv: flags.bool("prev-kv"),
        ..Default::default()
    };
    if let Some(end) = keys.get(1) {
        if prefix {
            return Err(CliError::bad_args(
                "`range_end` and `--prefix` are mutually exclusive",
            ));
        }
        create.range_end = end.as_bytes().to_vec();
    }
    if prefix {
        (create.key, create.range_end) = range_end::with_prefix(create.key);
    }
    Ok(WatchSpec { create, exec })
}

/// Runs `watch`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let env_keys = env_keys(env)?;
    if invocation.values.bool("interactive") {
        return interactive(invocation, env, &env_keys, console).await;
    }
    let spec = spec(
        &invocation.args,
        invocation.args_at_dash,
        &invocation.values,
        &env_keys,
    )?;
    let session = Session::open(invocation, env, console).await?;
    let printer = session.printer();
    let mut stream = open(&session, console, &spec.create).await?;
    let mut watchers = Watchers::default();
    watchers.pending.push_back(spec.exec);
    loop {
        let response = stream
            .message()
            .await
            .map_err(|e| CliError::error(e.to_string()))?;
        let Some(response) = response else {
            return Err(canceled_by_server());
        };
        if watchers.show(&response, printer, console)? == Shown::AllCanceled {
            return Err(canceled_by_server());
        }
    }
}

/// Opens the stream with its first watcher.
async fn open(
    session: &Session,
    console: &mut Console<'_>,
    create: &WatchCreateRequest,
) -> Result<WatchStream, CliError> {
    let first = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(create.clone())),
    };
    session.call(console, session.client().watch(first)).await
}

fn canceled_by_server() -> CliError {
    CliError::new(exit::INTERRUPTED, "watch is canceled by the server")
}

/// The watchers of one stream: the exec command of each, by watch ID, and those whose
/// create was sent but not yet confirmed (answered in order).
#[derive(Debug, Default)]
struct Watchers {
    pending: VecDeque<Vec<String>>,
    exec: BTreeMap<i64, Vec<String>>,
    canceled: usize,
}

/// What showing a response left.
#[derive(Debug, PartialEq, Eq)]
enum Shown {
    Watching,
    AllCanceled,
}

impl Watchers {
    /// Prints one response as clientv3 delivers it to etcdctl (creation confirmations are
    /// not delivered) and runs the exec command per event.
    fn show(
        &mut self,
        response: &WatchResponse,
        printer: Printer,
        console: &mut Console<'_>,
    ) -> Result<Shown, CliError> {
        if response.created {
            let exec = self.pending.pop_front().unwrap_or_default();
            self.exec.insert(response.watch_id, exec);
            if !response.canceled {
                return Ok(Shown::Watching);
            }
        }
        if response.canceled {
            console.err(&format!(
                "watch was canceled ({})\n",
                cancel_reason(response)
            ));
            self.canceled += 1;
        }
        let header_revision = response.header.as_ref().map_or(0, |h| h.revision);
        let progress = response.events.is_empty()
            && !response.canceled
            && !response.created
            && response.compact_revision == 0
            && header_revision != 0;
        if progress {
            // clientv3 hands a progress notification to every watcher of the stream.
            let watching = self.exec.len().saturating_sub(self.canceled).max(1);
            for _ in 0..watching {
                console.out(&format!("progress notify: {header_revision}\n"));
                printer.watch(response, console)?;
            }
            return Ok(Shown::Watching);
        }
        printer.watch(response, console)?;
        let exec = self
            .exec
            .get(&response.watch_id)
            .cloned()
            .unwrap_or_default();
        if !exec.is_empty() {
            run_exec(&exec, response, console)?;
        }
        match self.canceled >= self.exec.len() && self.pending.is_empty() {
            true => Ok(Shown::AllCanceled),
            false => Ok(Shown::Watching),
        }
    }
}

/// clientv3's `WatchResponse.Err()` text for a cancelled watch.
fn cancel_reason(response: &WatchResponse) -> String {
    if response.compact_revision != 0 {
        return "etcdserver: mvcc: required revision has been compacted".to_string();
    }
    response.cancel_reason.clone()
}

/// Runs the exec command once per event, with the event in its environment; a failure
/// ends cairnctl with exit code 1, as etcdctl does.
fn run_exec(
    exec: &[String],
    response: &WatchResponse,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let revision = response.header.as_ref().map_or(0, |h| h.revision);
    for event in &response.events {
        let kv = event.kv.clone().unwrap_or_default();
        let event_type = crate::output::event_type_name(event);
        let status = std::process::Command::new(&exec[0])
            .args(&exec[1..])
            .env("ETCD_WATCH_REVISION", revision.to_string())
            .env("ETCD_WATCH_EVENT_TYPE", quote(event_type))
            .env("ETCD_WATCH_KEY", quote_bytes(&kv.key))
            .env("ETCD_WATCH_VALUE", quote_bytes(&kv.value))
            .status();
        let failure = match status {
            Ok(s) if s.success() => continue,
            Ok(s) => format!("exit status {}", s.code().unwrap_or(-1)),
            Err(e) => e.to_string(),
        };
        let quoted: Vec<String> = exec.iter().map(|a| quote(a)).collect();
        console.err(&format!(
            "command [{}] error ({failure})\n",
            quoted.join(" ")
        ));
        return Err(CliError::silent(exit::ERROR));
    }
    Ok(())
}

/// `watch -i`: reads `watch …` and `progress` lines from stdin (on a thread of its own,
/// so that events print while it waits) and serves them on one stream.
async fn interactive(
    invocation: &mut Invocation,
    env: &Env,
    env_keys: &[String],
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let session = Session::open(invocation, env, console).await?;
    let printer = session.printer();
    let mut lines = stdin_lines();
    let mut stream: Option<WatchStream> = None;
    let mut watchers = Watchers::default();
    loop {
        let message = async {
            match stream.as_mut() {
                Some(s) => s.message().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else {
                    return Err(CliError::invalid_input("Error reading watch request line: EOF"));
                };
                let request = match interactive_line(&line, env_keys, console)? {
                    Some(request) => request,
                    None => continue,
                };
                let (request, exec) = request;
                stream = send(&session, console, stream, request).await?;
                if let Some(exec) = exec {
                    watchers.pending.push_back(exec);
                }
            }
            response = message => {
                match response.map_err(|e| CliError::error(e.to_string()))? {
                    Some(response) => { watchers.show(&response, printer, console)?; }
                    None => return Err(canceled_by_server()),
                }
            }
        }
    }
}

/// Sends `request`, opening the stream with it if there is none yet.
async fn send(
    session: &Session,
    console: &mut Console<'_>,
    stream: Option<WatchStream>,
    request: WatchRequest,
) -> Result<Option<WatchStream>, CliError> {
    match stream {
        Some(mut stream) => {
            stream
                .send(request)
                .await
                .map_err(|e: ClientError| CliError::error(e.to_string()))?;
            Ok(Some(stream))
        }
        None => Ok(Some(
            session
                .call(console, session.client().watch(request))
                .await?,
        )),
    }
}

/// One interactive line: a request with, for a watch, its exec command; `None` (after a
/// message on stderr) for a line etcdctl skips.
fn interactive_line(
    line: &str,
    env_keys: &[String],
    console: &mut Console<'_>,
) -> Result<Option<LineRequest>, CliError> {
    let words = argify(line)?;
    match words.first().map(String::as_str) {
        None => {
            console.err(&format!(
                "Invalid command: {line} (watch and progress supported)\n"
            ));
            Ok(None)
        }
        Some("progress") => Ok(Some((
            WatchRequest {
                request_union: Some(watch_request::RequestUnion::ProgressRequest(
                    WatchProgressRequest {},
                )),
            },
            None,
        ))),
        Some("watch") => {
            if words.len() < 2 && env_keys.is_empty() {
                console.err(&format!(
                    "Invalid command {line} (command type or key is not provided)\n"
                ));
                return Ok(None);
            }
            let parsed = flags::parse(&WATCH_FLAGS, &words[1..]).map_err(CliError::bad_args)?;
            let spec = match spec(&parsed.args, parsed.args_at_dash, &parsed.values, env_keys) {
                Ok(spec) => spec,
                Err(e) if e.message.as_deref() == Some(BAD_ARGS_SEPARATOR) => return Err(e),
                Err(e) => {
                    let why = e.message.unwrap_or_default();
                    console.err(&format!("Invalid command {line} ({why})\n"));
                    return Ok(None);
                }
            };
            let request = WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(spec.create)),
            };
            Ok(Some((request, Some(spec.exec))))
        }
        Some(_) => {
            console.err(&format!("Invalid command {line} (only support watch)\n"));
            Ok(None)
        }
    }
}

/// stdin's lines, read on a thread of their own (reading blocks); the channel closes at
/// end of input.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut line = String::new();
        let stdin = std::io::stdin();
        loop {
            line.clear();
            match std::io::BufRead::read_line(&mut stdin.lock(), &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = line.strip_suffix('\n').unwrap_or(&line).to_string();
                    if sender.blocking_send(text).is_err() {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<WatchSpec, CliError> {
        let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let parsed = flags::parse(&WATCH_FLAGS, &argv).expect("flags parse");
        spec(&parsed.args, parsed.args_at_dash, &parsed.values, &[])
    }

    #[test]
    fn key_range_prefix_revision_and_prev_kv() {
        let s = parse("foo --rev 3 --prev-kv").unwrap();
        assert_eq!(
            (
                s.create.key.as_slice(),
                s.create.start_revision,
                s.create.prev_kv
            ),
            (&b"foo"[..], 3, true)
        );
        assert_eq!(parse("a z").unwrap().create.range_end, b"z");
        assert_eq!(parse("p/ --prefix").unwrap().create.range_end, b"p0");
        assert_eq!(
            parse("a z --prefix").unwrap_err(),
            CliError::bad_args("`range_end` and `--prefix` are mutually exclusive")
        );
    }

    #[test]
    fn exec_command_follows_the_separator() {
        let s = parse("foo -- echo hi").unwrap();
        assert_eq!(s.create.key, b"foo");
        assert_eq!(s.exec, ["echo", "hi"]);
        assert_eq!(
            parse("foo --").unwrap_err(),
            CliError::bad_args(BAD_ARGS_SEPARATOR)
        );
        assert_eq!(parse("").unwrap_err(), CliError::bad_args(BAD_ARGS_NUM));
    }

    #[test]
    fn environment_keys_replace_and_conflict_with_arguments() {
        let values = FlagValues::defaults(&WATCH_FLAGS);
        let env = ["k".to_string(), "z".to_string()];
        let s = spec(&[], None, &values, &env).unwrap();
        assert_eq!(
            (s.create.key.as_slice(), s.create.range_end.as_slice()),
            (&b"k"[..], &b"z"[..])
        );
        assert_eq!(
            spec(&["x".to_string()], None, &values, &env).unwrap_err(),
            CliError::bad_args(BAD_ARGS_CONFLICT_ENV)
        );
    }
}
