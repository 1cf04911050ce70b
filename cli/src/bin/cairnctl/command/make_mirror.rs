//! `make-mirror [options] <destination>` (etcdctl 3.4's `make_mirror_command.go` with
//! clientv3's `mirror.Syncer`): copies the keys under `--prefix` as of the current revision
//! to the destination cluster in batches of 1000, then watches the source from the next
//! revision and replays every change there, one transaction per source revision. Keys are
//! renamed by replacing the first occurrence of `--prefix` with `--dest-prefix` (the prefix
//! itself by default; nothing with `--no-dest-prefix`). Every 30 seconds the number of keys
//! mirrored so far is printed. It runs until stopped; a failure ends it with `Error: ...`
//! and exit 1, as etcdctl.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest,
    WatchRequest, request_op, watch_request,
};
use cairn_client::pb::mvccpb::event::EventType;
use cairn_client::{Client, ClientError, Code, ConnectOptions, TlsOptions};

use super::range_end;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::output::Printer;
use crate::session::{self, Env, Session};

/// How many keys one range request of the initial copy reads (`mirror.batchLimit`).
const BATCH_LIMIT: i64 = 1000;

/// How often the count of mirrored keys is printed.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// etcd's error for a watch from a compacted revision (`rpctypes.ErrCompacted`).
const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";

/// How source keys are renamed at the destination (etcdctl's `modifyPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// `--prefix`.
    pub prefix: Vec<u8>,
    /// `--dest-prefix`, or what it defaults to.
    pub dest_prefix: Vec<u8>,
}

impl Rename {
    /// etcdctl's rule: `--dest-prefix` and `--no-dest-prefix` exclude each other; without
    /// either the destination prefix is the source prefix.
    pub fn new(prefix: &str, dest_prefix: &str, no_dest_prefix: bool) -> Result<Rename, CliError> {
        if no_dest_prefix && !dest_prefix.is_empty() {
            return Err(CliError::bad_args(
                "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one",
            ));
        }
        let dest = match (no_dest_prefix, dest_prefix.is_empty()) {
            (false, true) => prefix,
            _ => dest_prefix,
        };
        Ok(Rename {
            prefix: prefix.as_bytes().to_vec(),
            dest_prefix: dest.as_bytes().to_vec(),
        })
    }

    /// Go's `strings.Replace(key, prefix, destPrefix, 1)`.
    pub fn apply(&self, key: &[u8]) -> Vec<u8> {
        let at = match self.prefix.is_empty() {
            true => Some(0),
            false => key
                .windows(self.prefix.len())
                .position(|w| w == self.prefix.as_slice()),
        };
        let Some(at) = at else {
            return key.to_vec();
        };
        let mut out = key[..at].to_vec();
        out.extend_from_slice(&self.dest_prefix);
        out.extend_from_slice(&key[at + self.prefix.len()..]);
        out
    }
}

/// Runs `make-mirror`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [destination] = invocation.args.as_slice() else {
        return Err(CliError::bad_args(
            "make-mirror takes one destination argument",
        ));
    };
    let destination = destination.clone();
    let values = &invocation.values;
    let prefix = values.str("prefix").to_string();
    let dest_prefix = values.str("dest-prefix").to_string();
    let no_dest_prefix = values.bool("no-dest-prefix");
    let path = |name: &str| {
        let value = values.str(name);
        (!value.is_empty()).then(|| std::path::PathBuf::from(value))
    };
    let dest_tls = TlsOptions {
        ca_file: path("dest-cacert"),
        cert_file: path("dest-cert"),
        key_file: path("dest-key"),
        skip_verify: false,
        server_name: None,
    };
    // As etcdctl: TLS when a file is given or --dest-insecure-transport=false.
    let secure = dest_tls != TlsOptions::default() || !values.bool("dest-insecure-transport");
    let dest_tls = secure.then_some(dest_tls);
    let globals = Session::globals(invocation, env, console)?;
    let printer = Printer::new(&globals.write_out, globals.hex)?;
    let deadline = tokio::time::Instant::now() + globals.command_timeout();
    let dest_options = ConnectOptions {
        dial_timeout: globals.dial_timeout(),
        request_timeout: None,
        tls: dest_tls,
    };
    let session = Session::connect(globals, printer, console).await?;
    let source = session.client().clone();
    // etcdctl reads the starting revision before it checks the prefix flags.
    let revision = session
        .call(console, source.kv_range(revision_probe()))
        .await?
        .header
        .map(|h| h.revision)
        .unwrap_or_default();
    let rename = Rename::new(&prefix, &dest_prefix, no_dest_prefix)?;
    // etcdctl's destination client dials in the background and its puts wait for it
    // forever; cairnctl says within the dial timeout that the destination is unreachable.
    let dest = session::connect_until(&[destination], dest_options, deadline)
        .await
        .map_err(|e| CliError::error(format!("destination: {}", session::etcdctl_message(&e))))?;
    let total = Arc::new(AtomicI64::new(0));
    let mirror = mirror(source, dest, rename, revision, total.clone());
    tokio::pin!(mirror);
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + REPORT_EVERY, REPORT_EVERY);
    loop {
        tokio::select! {
            ended = &mut mirror => {
                return Err(CliError::error(match ended {
                    Ok(()) => "<nil>".to_string(),
                    Err(e) => session::etcdctl_message(&e),
                }));
            }
            _ = ticker.tick() => console.out(&format!("{}\n", total.load(Ordering::Relaxed))),
        }
    }
}

/// clientv3's `mirror.Syncer` start: a read of `foo` for the current revision.
fn revision_probe() -> RangeRequest {
    RangeRequest {
        key: b"foo".to_vec(),
        ..Default::default()
    }
}

/// The initial copy at `revision`, then the replay of later changes; returns only when the
/// watch ends.
async fn mirror(
    source: Client,
    dest: Client,
    rename: Rename,
    revision: i64,
    total: Arc<AtomicI64>,
) -> Result<(), ClientError> {
    let (mut key, range_end) = match rename.prefix.is_empty() {
        true => (vec![0], vec![0]),
        false => (rename.prefix.clone(), range_end::prefix_end(&rename.prefix)),
    };
    loop {
        let request = RangeRequest {
            key: key.clone(),
            range_end: range_end.clone(),
            limit: BATCH_LIMIT,
            revision,
            ..Default::default()
        };
        let batch = source.kv_range(request).await?;
        for kv in &batch.kvs {
            let put = PutRequest {
                key: rename.apply(&kv.key),
                value: kv.value.clone(),
                ..Default::default()
            };
            dest.kv_put(put).await?;
            total.fetch_add(1, Ordering::Relaxed);
        }
        match (batch.more, batch.kvs.last()) {
            (true, Some(last)) => {
                key = last.key.clone();
                key.push(0);
            }
            _ => break,
        }
    }
    let create = WatchCreateRequest {
        key: rename.prefix.clone(),
        range_end: range_end::prefix_end(&rename.prefix),
        start_revision: revision + 1,
        ..Default::default()
    };
    let mut watch = source
        .watch(WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        })
        .await?;
    while let Some(response) = watch.message().await? {
        if response.compact_revision != 0 {
            return Err(ClientError::Rpc {
                code: Code::OutOfRange,
                message: COMPACTED.to_string(),
            });
        }
        let mut ops = Vec::new();
        let mut last_revision = 0;
        for event in response.events {
            let Some(kv) = event.kv else { continue };
            if last_revision != 0 && kv.mod_revision > last_revision {
                commit(&dest, std::mem::take(&mut ops)).await?;
            }
            last_revision = kv.mod_revision;
            let key = rename.apply(&kv.key);
            let op = match EventType::try_from(event.r#type) {
                Ok(EventType::Delete) => {
                    request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                        key,
                        ..Default::default()
                    })
                }
                _ => request_op::Request::RequestPut(PutRequest {
                    key,
                    value: kv.value,
                    ..Default::default()
                }),
            };
            ops.push(RequestOp { request: Some(op) });
            total.fetch_add(1, Ordering::Relaxed);
        }
        if !ops.is_empty() {
            commit(&dest, ops).await?;
        }
    }
    Ok(())
}

/// The changes of one source revision, applied at the destination at once.
async fn commit(dest: &Client, ops: Vec<RequestOp>) -> Result<(), ClientError> {
    let txn = TxnRequest {
        success: ops,
        ..Default::default()
    };
    dest.kv_txn(txn).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    #[test]
    fn renames_as_etcdctl() {
        let same = Rename::new("/a/", "", false).unwrap();
        assert_eq!(same.apply(b"/a/k"), b"/a/k");
        let moved = Rename::new("/a/", "/b/", false).unwrap();
        assert_eq!(moved.apply(b"/a/k"), b"/b/k");
        let root = Rename::new("/a/", "", true).unwrap();
        assert_eq!(root.apply(b"/a/k"), b"k");
        let everything = Rename::new("", "/copy", false).unwrap();
        assert_eq!(everything.apply(b"k"), b"/copyk");
        let e = Rename::new("/a/", "/b/", true).unwrap_err();
        assert_eq!(e.code, exit::BAD_ARGS);
    }
}
