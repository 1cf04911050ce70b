//! Kubernetes' storage contract: every call pattern kube-apiserver's `storage/etcd3` package
//! (store.go, compact.go, watcher.go, lease_manager.go, the feature support checker) makes,
//! reproduced with the `etcd-client` crate against the reference etcd 3.4 and against cairn,
//! side by side. Each scenario prints a transcript (revisions included: both stores start at
//! revision 1, so they must agree; lease ids and member ids are masked) and the two
//! transcripts must be identical. Two checks run on cairn alone because etcd 3.4 fails them
//! by design: `Status.version` must be a semver the apiserver trusts for `RequestProgress`
//! (>= 3.5.13), and a requested progress must never overtake a catching-up watcher's events
//! (the fix that version stands for).

#![cfg(not(madsim))]

use std::time::{Duration, Instant};

use cairn_tests::{Cluster, Kind, Server};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, Error, EventType, GetOptions, GetResponse,
    KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions, WatchResponse,
    WatchStream,
};

/// How long a test waits for a response it expects.
const EXPECT_WITHIN: Duration = Duration::from_secs(10);
/// The progress notification interval both servers run with in the progress test.
const PROGRESS_INTERVAL: &str = "200ms";
/// The key the apiserver's compactor keeps its compaction epoch in (compact.go).
const COMPACT_REV_KEY: &str = "compact_rev_key";
/// The etcd version from which kube-apiserver trusts `RequestProgress` and serves consistent
/// lists from its watch cache (its feature support checker wants 3.4.31+ or 3.5.13+: the
/// releases that fixed progress notifications on streams with unsynced watchers).
const MIN_PROGRESS_VERSION: (u64, u64, u64) = (3, 5, 13);

fn runtime() -> real_tokio::runtime::Runtime {
    real_tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(endpoint: &str) -> Client {
    Client::connect([endpoint], None).await.expect("connect")
}

/// A client that sends `hasleader` metadata on every call, as the apiserver does
/// (`clientv3.WithRequireLeader`).
async fn connect_requiring_leader(endpoint: &str) -> Client {
    let options = ConnectOptions::new().with_require_leader(true);
    Client::connect([endpoint], Some(options))
        .await
        .expect("connect")
}

/// The reference etcd and cairn, each on a fresh data dir, started with the same flags.
struct Pair {
    etcd: Server,
    cairn: Server,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Pair {
    fn start(args: &[&str]) -> Pair {
        let etcd_dir = tempfile::tempdir().unwrap();
        let cairn_dir = tempfile::tempdir().unwrap();
        let etcd = Server::start_with(Kind::Etcd, etcd_dir.path(), args);
        let cairn = Server::start_with(Kind::Cairn, cairn_dir.path(), args);
        Pair {
            etcd,
            cairn,
            _dirs: (etcd_dir, cairn_dir),
        }
    }
}

/// Runs `scenario` against etcd, then against cairn, and asserts equal transcripts.
fn same_transcript<F, Fut>(args: &[&str], scenario: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let pair = Pair::start(args);
    let rt = runtime();
    let want = rt.block_on(scenario(pair.etcd.endpoint()));
    let got = rt.block_on(scenario(pair.cairn.endpoint()));
    eprintln!("etcd's transcript:\n{}", want.join("\n"));
    assert_transcripts_equal(&want, &got);
}

fn assert_transcripts_equal(want: &[String], got: &[String]) {
    let diffs: Vec<String> = want
        .iter()
        .zip(got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("--- etcd\n{w}\n--- cairn\n{g}"))
        .collect();
    assert!(
        diffs.is_empty() && want.len() == got.len(),
        "{} of {} lines differ (etcd {} lines, cairn {}):\n{}",
        diffs.len(),
        want.len(),
        want.len(),
        got.len(),
        diffs.join("\n\n")
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A key-value as the apiserver reads it: data, revisions, version, whether it has a lease.
fn show_kv(kv: &KeyValue) -> String {
    format!(
        "{}={:?} create={} mod={} version={} lease={}",
        text(kv.key()),
        text(kv.value()),
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        if kv.lease() == 0 { "none" } else { "<lease>" }
    )
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(-100, |h| h.revision())
}

fn show_get(resp: &GetResponse) -> String {
    let kvs: Vec<String> = resp.kvs().iter().map(show_kv).collect();
    format!(
        "rev={} count={} more={} kvs={kvs:?}",
        header_revision(resp.header()),
        resp.count(),
        resp.more()
    )
}

fn show_txn(resp: &TxnResponse) -> String {
    let ops: Vec<String> = resp
        .op_responses()
        .iter()
        .map(|op| match op {
            TxnOpResponse::Put(put) => {
                format!("put(prev={:?})", put.prev_key().map(show_kv))
            }
            TxnOpResponse::Get(get) => format!("get({})", show_get(get)),
            TxnOpResponse::Delete(del) => format!(
                "delete(deleted={} prev={:?})",
                del.deleted(),
                del.prev_kvs().iter().map(show_kv).collect::<Vec<_>>()
            ),
            TxnOpResponse::Txn(_) => "txn".to_string(),
        })
        .collect();
    format!(
        "rev={} succeeded={} ops={ops:?}",
        header_revision(resp.header()),
        resp.succeeded()
    )
}

/// A gRPC error as `code: message`, independent of the tonic version etcd-client uses.
fn show_error(error: Error) -> String {
    match error {
        Error::GRpcStatus(status) => format!("{:?}: {}", status.code(), status.message()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

fn show_result<T>(result: Result<T, Error>, show: impl Fn(&T) -> String) -> String {
    match result {
        Ok(value) => show(&value),
        Err(error) => format!("error {}", show_error(error)),
    }
}

/// store.go `Create`: `If(ModRevision(key) == 0).Then(Put(key, data))`, no Else.
fn create_txn(key: &str, data: &str, lease: Option<i64>) -> Txn {
    let options = lease.map(|id| PutOptions::new().with_lease(id));
    Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, data, options)])
}

/// store.go `GuaranteedUpdate`: `If(ModRevision(key) == rev).Then(Put).Else(Get(key))`.
fn update_txn(key: &str, data: &str, rev: i64) -> Txn {
    Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::put(key, data, None)])
        .or_else([TxnOp::get(key, None)])
}

/// store.go `conditionalDelete`: `If(ModRevision(key) == rev).Then(Delete).Else(Get(key))`.
fn delete_txn(key: &str, rev: i64) -> Txn {
    Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::delete(key, None)])
        .or_else([TxnOp::get(key, None)])
}

async fn create_update_delete(endpoint: String) -> Vec<String> {
    let mut client = connect_requiring_leader(&endpoint).await;
    let key = "/registry/pods/default/web-0";
    let mut out = Vec::new();
    let created = client.txn(create_txn(key, "v1", None)).await.unwrap();
    out.push(format!("create: {}", show_txn(&created)));
    let again = client.txn(create_txn(key, "dup", None)).await.unwrap();
    out.push(format!("create existing: {}", show_txn(&again)));
    let rev = client.get(key, None).await.unwrap().kvs()[0].mod_revision();
    let updated = client.txn(update_txn(key, "v2", rev)).await.unwrap();
    out.push(format!("update current: {}", show_txn(&updated)));
    let stale = client.txn(update_txn(key, "lost", rev)).await.unwrap();
    out.push(format!("update stale: {}", show_txn(&stale)));
    let current = client.get(key, None).await.unwrap();
    out.push(format!("get: {}", show_get(&current)));
    let rev = current.kvs()[0].mod_revision();
    let stale_delete = client.txn(delete_txn(key, rev - 1)).await.unwrap();
    out.push(format!("delete stale: {}", show_txn(&stale_delete)));
    let deleted = client.txn(delete_txn(key, rev)).await.unwrap();
    out.push(format!("delete current: {}", show_txn(&deleted)));
    let gone = client.txn(delete_txn(key, rev)).await.unwrap();
    out.push(format!("delete gone: {}", show_txn(&gone)));
    let missing_update = client.txn(update_txn(key, "x", rev)).await.unwrap();
    out.push(format!("update gone: {}", show_txn(&missing_update)));
    let recreated = client.txn(create_txn(key, "v3", None)).await.unwrap();
    out.push(format!("create after delete: {}", show_txn(&recreated)));
    out.push(format!(
        "get: {}",
        show_get(&client.get(key, None).await.unwrap())
    ));
    out
}

#[test]
fn create_update_and_delete_txns_answer_as_etcd() {
    same_transcript(&[], create_update_delete);
}

/// The apiserver's range for a resource prefix: `[prefix, prefix + 1)`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// store.go `GetList` with a limit: the first page at the current revision, then pages from
/// `last key + "\0"` pinned at the first page's revision, until `more` is false.
async fn paginate(client: &mut Client, prefix: &str, limit: i64, out: &mut Vec<String>) -> i64 {
    let end = prefix_end(prefix);
    let first = client
        .get(
            prefix,
            Some(GetOptions::new().with_range(end.clone()).with_limit(limit)),
        )
        .await
        .unwrap();
    out.push(format!("page 0: {}", show_get(&first)));
    let pinned = header_revision(first.header());
    let mut more = first.more();
    let mut last = first.kvs().last().map(|kv| kv.key().to_vec());
    let mut page = 1;
    // Interleaved writes must not show up in later pages: the list is pinned.
    client
        .put(format!("{prefix}pod-00"), "changed", None)
        .await
        .unwrap();
    client
        .put(format!("{prefix}pod-99"), "new", None)
        .await
        .unwrap();
    while more && page < 20 {
        let mut from = last.take().unwrap_or_default();
        from.push(0);
        let options = GetOptions::new()
            .with_range(end.clone())
            .with_limit(limit)
            .with_revision(pinned);
        let next = client.get(from, Some(options)).await.unwrap();
        out.push(format!("page {page}: {}", show_get(&next)));
        more = next.more();
        last = next.kvs().last().map(|kv| kv.key().to_vec());
        page += 1;
    }
    pinned
}

async fn list_count_and_compaction(endpoint: String) -> Vec<String> {
    let mut client = connect_requiring_leader(&endpoint).await;
    let prefix = "/registry/pods/default/";
    let mut out = Vec::new();
    client
        .put("/registry/pods/a", "before", None)
        .await
        .unwrap();
    for i in 0..7 {
        let key = format!("{prefix}pod-{i:02}");
        client
            .txn(create_txn(&key, &format!("spec-{i}"), None))
            .await
            .unwrap();
    }
    client.put("/registry/pods/z", "after", None).await.unwrap();
    client
        .put("/registry/services/x", "other", None)
        .await
        .unwrap();
    let pinned = paginate(&mut client, prefix, 3, &mut out).await;
    // An unpaginated list at the same revision, then the current state.
    let at = GetOptions::new()
        .with_range(prefix_end(prefix))
        .with_revision(pinned);
    out.push(format!(
        "list at {pinned}: {}",
        show_get(&client.get(prefix, Some(at)).await.unwrap())
    ));
    let count = GetOptions::new()
        .with_range(prefix_end("/registry/pods/"))
        .with_count_only();
    out.push(format!(
        "count only: {}",
        show_get(&client.get("/registry/pods/", Some(count)).await.unwrap())
    ));
    // The current resource version of a resource: a count-only list with a limit.
    let count_limited = GetOptions::new()
        .with_prefix()
        .with_count_only()
        .with_limit(1);
    out.push(format!(
        "count only, limit 1: {}",
        show_get(&client.get(prefix, Some(count_limited)).await.unwrap())
    ));
    let keys = GetOptions::new()
        .with_range(prefix_end(prefix))
        .with_keys_only()
        .with_limit(4);
    out.push(format!(
        "keys only: {}",
        show_get(&client.get(prefix, Some(keys)).await.unwrap())
    ));
    let current = client.get("x", None).await.unwrap();
    let now = header_revision(current.header());
    compactor_cycle(&mut client, 0, now, &mut out).await;
    let old = GetOptions::new()
        .with_range(prefix_end(prefix))
        .with_limit(3)
        .with_revision(pinned);
    let compacted = show_result(client.get(prefix, Some(old)).await, show_get);
    assert_eq!(
        compacted,
        "error OutOfRange: etcdserver: mvcc: required revision has been compacted"
    );
    out.push(format!("list at compacted {pinned}: {compacted}"));
    // The reflector's watch from its list's revision after a compaction: canceled with the
    // compaction revision, so that it relists.
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(pinned + 1)
        .with_prev_key();
    let (watcher, mut stream) = client.watch(prefix, Some(options)).await.unwrap();
    let canceled = next(&mut stream).await;
    out.push(format!(
        "watch from compacted {}: {}",
        pinned + 1,
        show_watch_response(&canceled, watcher.watch_id())
    ));
    let at_compaction = GetOptions::new()
        .with_range(prefix_end(prefix))
        .with_revision(now);
    out.push(format!(
        "list at compaction revision {now}: {}",
        show_result(client.get(prefix, Some(at_compaction)).await, show_get)
    ));
    out
}

/// compact.go `compact(t, rev)`: bump the epoch in `compact_rev_key` if it is still `t`
/// (else read it), and compact at `rev` only if this member won.
async fn compactor_cycle(client: &mut Client, epoch: i64, rev: i64, out: &mut Vec<String>) {
    let txn = Txn::new()
        .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, epoch)])
        .and_then([TxnOp::put(COMPACT_REV_KEY, rev.to_string(), None)])
        .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
    let resp = client.txn(txn).await.unwrap();
    out.push(format!("compactor epoch {epoch}: {}", show_txn(&resp)));
    if resp.succeeded() && rev > 0 {
        let compacted = client.compact(rev, None).await;
        out.push(format!(
            "compact {rev}: {}",
            show_result(compacted, |r| format!(
                "rev={}",
                header_revision(r.header())
            ))
        ));
    }
}

#[test]
fn paginated_list_count_keys_only_and_compacted_list_answer_as_etcd() {
    same_transcript(&[], list_count_and_compaction);
}

async fn compactor(endpoint: String) -> Vec<String> {
    let mut client = connect(&endpoint).await;
    let mut out = Vec::new();
    for i in 0..4 {
        client.put("k", format!("v{i}"), None).await.unwrap();
    }
    // Two apiservers race: both start at epoch 0; the second loses and reads the epoch.
    compactor_cycle(&mut client, 0, 3, &mut out).await;
    compactor_cycle(&mut client, 0, 4, &mut out).await;
    // The next period, at epoch 1; then a compaction at a revision already compacted.
    compactor_cycle(&mut client, 1, 5, &mut out).await;
    compactor_cycle(&mut client, 2, 5, &mut out).await;
    // A compactor with a zero revision only bumps the epoch (its first tick).
    compactor_cycle(&mut client, 3, 0, &mut out).await;
    out.push(format!(
        "epoch key: {}",
        show_get(&client.get(COMPACT_REV_KEY, None).await.unwrap())
    ));
    out
}

#[test]
fn the_apiserver_compactor_pattern_answers_as_etcd() {
    same_transcript(&[], compactor);
}

fn show_watch_response(resp: &WatchResponse, own_id: i64) -> String {
    let events: Vec<String> = resp
        .events()
        .iter()
        .map(|event| {
            let kind = match event.event_type() {
                EventType::Put => "PUT",
                EventType::Delete => "DELETE",
            };
            format!(
                "{kind} {} prev={:?}",
                event.kv().map(show_kv).unwrap_or_default(),
                event.prev_kv().map(show_kv)
            )
        })
        .collect();
    let id = if resp.watch_id() == own_id {
        "own".to_string()
    } else {
        resp.watch_id().to_string()
    };
    format!(
        "watch={id} rev={} created={} canceled={} compact={} events={events:?}",
        header_revision(resp.header()),
        resp.created(),
        resp.canceled(),
        resp.compact_revision()
    )
}

/// The next response, failing the test if none comes in time.
async fn next(stream: &mut WatchStream) -> WatchResponse {
    match real_tokio::time::timeout(EXPECT_WITHIN, stream.message()).await {
        Ok(Ok(Some(response))) => response,
        other => panic!("expected a watch response, got {other:?}"),
    }
}

/// Responses until `count` events arrived.
async fn watch_events(stream: &mut WatchStream, count: usize, own: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < count {
        let resp = next(stream).await;
        seen += resp.events().len();
        out.push(show_watch_response(&resp, own));
    }
    out
}

/// watcher.go: `Watch(key, WithRev(rv+1), WithPrevKV(), WithPrefix(), WithProgressNotify())`
/// under `WithRequireLeader`, from a revision in the past, then live.
async fn watch_from_revision(endpoint: String) -> Vec<String> {
    let mut client = connect_requiring_leader(&endpoint).await;
    let prefix = "/registry/configmaps/";
    let mut out = Vec::new();
    let first = client
        .txn(create_txn(&format!("{prefix}a"), "1", None))
        .await
        .unwrap();
    let rv = header_revision(first.header());
    client
        .txn(create_txn(&format!("{prefix}b"), "1", None))
        .await
        .unwrap();
    client
        .txn(update_txn(&format!("{prefix}a"), "2", rv))
        .await
        .unwrap();
    client.put("/registry/other", "x", None).await.unwrap();
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(rv + 1)
        .with_prev_key()
        .with_progress_notify();
    let (watcher, mut stream) = client.watch(prefix, Some(options)).await.unwrap();
    let own = watcher.watch_id();
    out.extend(watch_events(&mut stream, 2, own).await);
    let b_rev = client.get(format!("{prefix}b"), None).await.unwrap().kvs()[0].mod_revision();
    client
        .txn(delete_txn(&format!("{prefix}b"), b_rev))
        .await
        .unwrap();
    client
        .txn(create_txn(&format!("{prefix}c"), "1", None))
        .await
        .unwrap();
    out.extend(watch_events(&mut stream, 2, own).await);
    out
}

#[test]
fn apiserver_watch_from_a_revision_with_prev_kv_answers_as_etcd() {
    same_transcript(&[], watch_from_revision);
}

/// Progress: periodic notifications on a quiet `progress_notify` watch, and a
/// `RequestProgress` (3.4 has it; the apiserver's consistent reads from cache use it).
async fn progress(endpoint: String) -> Vec<String> {
    let mut client = connect_requiring_leader(&endpoint).await;
    let mut out = Vec::new();
    client.put("/registry/leases/a", "1", None).await.unwrap();
    let options = WatchOptions::new().with_prefix().with_progress_notify();
    let (mut watcher, mut stream) = client.watch("/registry/", Some(options)).await.unwrap();
    let own = watcher.watch_id();
    client.put("/elsewhere", "1", None).await.unwrap();
    // A notification carries the store's revision, not the watched range's last change;
    // etcd sends one after one or two intervals of silence.
    let started = Instant::now();
    let notification = next(&mut stream).await;
    out.push(format!(
        "notification: {}",
        show_watch_response(&notification, own)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "progress notification took {:?}",
        started.elapsed()
    );
    client.put("/elsewhere", "2", None).await.unwrap();
    watcher.request_progress().await.unwrap();
    let mut progress = next(&mut stream).await;
    // A periodic notification may come first; the requested one has watch id -1.
    while progress.watch_id() != -1 {
        progress = next(&mut stream).await;
    }
    out.push(format!(
        "requested: {}",
        show_watch_response(&progress, own)
    ));
    client.put("/registry/leases/a", "2", None).await.unwrap();
    let mut event = next(&mut stream).await;
    while event.events().is_empty() {
        event = next(&mut stream).await;
    }
    out.push(format!("event: {}", show_watch_response(&event, own)));
    out
}

#[test]
fn progress_notifications_and_requested_progress_answer_as_etcd() {
    let args = [
        "--experimental-watch-progress-notify-interval",
        PROGRESS_INTERVAL,
    ];
    same_transcript(&args, progress);
}

/// lease_manager.go: events get a lease (`Grant(ttl)`), reused for many puts; a revoke
/// deletes them all.
async fn event_leases(endpoint: String) -> Vec<String> {
    let mut client = connect_requiring_leader(&endpoint).await;
    let mut out = Vec::new();
    let lease = client.lease_grant(3600, None).await.unwrap();
    out.push(format!(
        "grant: ttl={} error={:?}",
        lease.ttl(),
        lease.error()
    ));
    let id = lease.id();
    for name in ["e1", "e2"] {
        let key = format!("/registry/events/default/{name}");
        let created = client
            .txn(create_txn(&key, "event", Some(id)))
            .await
            .unwrap();
        out.push(format!("create {name}: {}", show_txn(&created)));
    }
    let listed = client
        .get("/registry/events/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    out.push(format!("list: {}", show_get(&listed)));
    let options = etcd_client::LeaseTimeToLiveOptions::new().with_keys();
    let ttl = client.lease_time_to_live(id, Some(options)).await.unwrap();
    // etcd lists a lease's keys from a Go map: in no particular order.
    let mut keys: Vec<String> = ttl.keys().iter().map(|k| text(k)).collect();
    keys.sort();
    out.push(format!(
        "ttl: granted={} remaining_ok={} keys={keys:?}",
        ttl.granted_ttl(),
        (3590..=3600).contains(&ttl.ttl())
    ));
    let bad = client
        .txn(create_txn("/registry/events/x", "e", Some(id + 1)))
        .await;
    out.push(format!(
        "create with unknown lease: {}",
        show_result(bad, show_txn)
    ));
    client.lease_revoke(id).await.unwrap();
    let after = client
        .get("/registry/events/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    out.push(format!("after revoke: {}", show_get(&after)));
    out
}

#[test]
fn event_leases_answer_as_etcd() {
    same_transcript(&[], event_leases);
}

/// A 3-member cluster reduced to one member has no leader: with `hasleader` metadata, a
/// request fails with etcd's `no leader` error instead of hanging.
async fn without_leader(endpoint: String) -> String {
    let mut client = connect_requiring_leader(&endpoint).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = real_tokio::time::timeout(
            Duration::from_secs(3),
            client.get("k", Some(GetOptions::new().with_serializable())),
        )
        .await;
        match attempt {
            Ok(Err(error)) => return show_error(error),
            _ if Instant::now() > deadline => return "still served after 20s".to_string(),
            _ => real_tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How a `hasleader` watch stream ends once its member has lost the leader.
async fn watch_end(stream: &mut WatchStream) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match real_tokio::time::timeout(Duration::from_secs(30), stream.message()).await {
            Ok(Ok(Some(resp))) if resp.canceled() => {
                return format!("canceled: {}", resp.cancel_reason());
            }
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => return "stream closed without a status".to_string(),
            Ok(Err(error)) => return format!("error {}", show_error(error)),
            Err(_) => break,
        }
    }
    "still open after 30s".to_string()
}

#[test]
fn require_leader_fails_without_a_leader_as_etcd() {
    let rt = runtime();
    let mut answers = Vec::new();
    for kind in [Kind::Etcd, Kind::Cairn] {
        let mut cluster = Cluster::start(kind, 3);
        let endpoint = cluster.members[0].endpoint();
        let (served, mut stream) = rt.block_on(async {
            let mut client = connect_requiring_leader(&endpoint).await;
            let put = client.put("k", "v", None).await;
            let options = WatchOptions::new().with_prefix();
            let (_, stream) = client.watch("/registry/", Some(options)).await.unwrap();
            let shown = show_result(put, |r| format!("rev={}", header_revision(r.header())));
            (shown, stream)
        });
        cluster.members[1].kill9();
        cluster.members[2].kill9();
        let failed = rt.block_on(without_leader(endpoint));
        let watch = rt.block_on(watch_end(&mut stream));
        answers.push(vec![
            format!("with leader: {served}"),
            format!("request without: {failed}"),
            format!("watch without: {watch}"),
        ]);
    }
    eprintln!("etcd's answers: {:#?}", answers[0]);
    assert_eq!(
        answers[0][1..],
        [
            "request without: Unavailable: etcdserver: no leader",
            "watch without: error Unavailable: etcdserver: no leader"
        ]
    );
    assert_transcripts_equal(&answers[0], &answers[1]);
}

/// A release `major.minor.patch` from a version string such as `3.5.17`.
fn semver(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(parsed)
}

#[test]
fn status_version_is_a_semver_kubernetes_trusts_for_progress_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server.endpoint()).await;
        let status = client.status().await.unwrap();
        let version = semver(status.version());
        assert!(
            version.is_some_and(|v| v >= MIN_PROGRESS_VERSION),
            "Status.version {:?} is not a semver >= 3.5.13",
            status.version()
        );
    });
}

/// Calls a unary method by path with an empty request, as a client built against a newer
/// etcd would; returns the status code.
async fn call_empty(endpoint: &str, path: &'static str) -> String {
    use real_tonic::codegen::http::uri::PathAndQuery;
    let channel = real_tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = real_tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let answer = grpc
        .unary(
            real_tonic::Request::new(()),
            PathAndQuery::from_static(path),
            codec,
        )
        .await;
    match answer {
        Ok(_) => "ok".to_string(),
        Err(status) => format!("{:?}", status.code()),
    }
}

#[test]
fn rpcs_newer_than_etcd_3_4_are_unimplemented_as_on_etcd_3_4() {
    let pair = Pair::start(&[]);
    let rt = runtime();
    let paths = [
        "/etcdserverpb.Maintenance/Downgrade",
        "/etcdserverpb.KV/NoSuchMethod",
        "/etcdserverpb.NoSuchService/Range",
    ];
    for path in paths {
        let want = rt.block_on(call_empty(&pair.etcd.endpoint(), path));
        let got = rt.block_on(call_empty(&pair.cairn.endpoint(), path));
        assert_eq!(want, "Unimplemented", "{path} on etcd");
        assert_eq!(got, want, "{path} on cairn");
    }
    // The server is still fine afterwards.
    rt.block_on(async {
        let mut client = connect(&pair.cairn.endpoint()).await;
        client.put("after", "1", None).await.unwrap();
    });
}

/// What kube-apiserver relies on when it trusts `RequestProgress` (etcd >= 3.5.13, which
/// cairn reports): the progress response of a stream comes after every event at or below
/// its revision, even while a watcher of that stream is still catching up on history.
/// etcd 3.4 does not guarantee this (etcd issue 15220), so this is checked on cairn only.
#[test]
fn requested_progress_never_overtakes_a_catching_up_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server.endpoint()).await;
        let writes = 300;
        for i in 0..writes {
            client
                .put(format!("/registry/pods/p{i:03}"), "spec", None)
                .await
                .unwrap();
        }
        let options = WatchOptions::new().with_prefix().with_start_revision(2);
        let (mut watcher, mut stream) = client.watch("/registry/", Some(options)).await.unwrap();
        watcher.request_progress().await.unwrap();
        let mut delivered = Vec::new();
        let progress = loop {
            let resp = next(&mut stream).await;
            if resp.watch_id() == -1 {
                break header_revision(resp.header());
            }
            delivered.extend(
                resp.events()
                    .iter()
                    .filter_map(|e| e.kv().map(KeyValue::mod_revision)),
            );
        };
        let owed = (2..=progress)
            .filter(|rev| !delivered.contains(rev))
            .count();
        assert_eq!(
            owed, 0,
            "progress at revision {progress} arrived before {owed} of its events"
        );
        assert_eq!(progress, writes + 1, "the progress revision is the store's");
    });
}

/// A list larger than gRPC's default 4 MiB message size: kube-apiserver raises its client's
/// receive limit (`MaxCallRecvMsgSize`), and etcd sends responses up to 2 GiB.
async fn large_list(endpoint: String) -> Vec<String> {
    let mut client = connect(&endpoint).await;
    let value = vec![b's'; 1_000_000];
    for i in 0..6 {
        let key = format!("/registry/secrets/big-{i}");
        client.put(key, value.clone(), None).await.unwrap();
    }
    let mut kv = client.kv_client().max_decoding_message_size(64 << 20);
    let listed = kv
        .get("/registry/secrets/", Some(GetOptions::new().with_prefix()))
        .await;
    let mut out = vec![show_result(listed, |r| {
        let bytes: usize = r.kvs().iter().map(|kv| kv.value().len()).sum();
        format!(
            "rev={} count={} bytes={bytes}",
            header_revision(r.header()),
            r.count()
        )
    })];
    // The watch cache's watch from the list's revision replays all of it.
    let mut watch = client.watch_client().max_decoding_message_size(64 << 20);
    let options = WatchOptions::new().with_prefix().with_start_revision(2);
    let (_, mut stream) = watch
        .watch("/registry/secrets/", Some(options))
        .await
        .unwrap();
    let mut seen = 0;
    while seen < 6 {
        let resp = next(&mut stream).await;
        seen += resp.events().len();
        let bytes: usize = resp
            .events()
            .iter()
            .filter_map(|e| e.kv().map(|kv| kv.value().len()))
            .sum();
        out.push(format!(
            "watch: rev={} events={} bytes={bytes}",
            header_revision(resp.header()),
            resp.events().len()
        ));
    }
    out
}

#[test]
fn a_list_larger_than_4_mib_answers_as_etcd() {
    same_transcript(&[], large_list);
}
