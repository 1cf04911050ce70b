//! The Watch service of a real cairn process, driven by real clients: the `etcd-client`
//! crate for behaviour (order, `prev_kv`, history replay, compaction, cancel, progress,
//! resuming after SIGKILL), and the reference etcd side by side with cairn for exactness
//! (the raw responses of one watch stream, and etcdctl's `watch` output, must be identical
//! once cluster/member ids and the raft term are masked).

#![cfg(not(madsim))]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cairn_tests::{Kind, Server, etcdctl, installed};
use etcd_client::{
    Client, EventType, Txn, TxnOp, WatchFilterType, WatchOptions, WatchResponse, WatchStream,
};

/// How long a stream must stay silent before a step's responses count as complete (etcd
/// syncs watchers that read history every 100 ms).
const QUIET: Duration = Duration::from_millis(700);
/// How long a test waits for a response it expects.
const EXPECT_WITHIN: Duration = Duration::from_secs(10);

fn runtime() -> real_tokio::runtime::Runtime {
    real_tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(server: &Server) -> Client {
    Client::connect([server.endpoint()], None)
        .await
        .expect("connect")
}

/// The next response, failing the test if none comes in time.
async fn next(stream: &mut WatchStream) -> WatchResponse {
    match real_tokio::time::timeout(EXPECT_WITHIN, stream.message()).await {
        Ok(Ok(Some(response))) => response,
        other => panic!("expected a watch response, got {other:?}"),
    }
}

/// Every response that arrives until the stream is quiet for [`QUIET`].
async fn drain(stream: &mut WatchStream) -> Vec<WatchResponse> {
    let mut responses = Vec::new();
    while let Ok(message) = real_tokio::time::timeout(QUIET, stream.message()).await {
        match message {
            Ok(Some(response)) => responses.push(response),
            other => panic!("watch stream ended: {other:?}"),
        }
    }
    responses
}

/// Reads responses until `count` events arrived; returns `(key, value, mod_revision)`.
async fn events(stream: &mut WatchStream, count: usize) -> Vec<(String, String, i64)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let response = next(stream).await;
        for event in response.events() {
            let kv = event.kv().expect("event kv");
            seen.push((
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
                kv.mod_revision(),
            ));
        }
    }
    seen
}

fn revision(response: &WatchResponse) -> i64 {
    response.header().map_or(-100, |h| h.revision())
}

#[test]
fn watch_on_key_and_prefix_sees_puts_and_deletes_in_order_with_prev_kv() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.put("w/a", "0", None).await.unwrap();
        let (_key_watcher, mut on_key) = client.watch("w/a", None).await.unwrap();
        let options = WatchOptions::new().with_prefix().with_prev_key();
        let (_prefix_watcher, mut on_prefix) = client.watch("w/", Some(options)).await.unwrap();
        client.put("w/a", "1", None).await.unwrap();
        client.put("w/b", "2", None).await.unwrap();
        client.delete("w/a", None).await.unwrap();
        client.put("x", "outside", None).await.unwrap();

        let response = next(&mut on_key).await;
        assert_eq!(
            revision(&response),
            3,
            "a live event's header is its own revision"
        );
        let event = &response.events()[0];
        assert_eq!(
            (event.event_type(), event.kv().unwrap().value()),
            (EventType::Put, &b"1"[..])
        );
        assert!(event.prev_kv().is_none(), "prev_kv only when asked");
        let deleted = next(&mut on_key).await;
        assert_eq!(deleted.events()[0].event_type(), EventType::Delete);
        assert_eq!(deleted.events()[0].kv().unwrap().mod_revision(), 5);

        let mut seen = Vec::new();
        while seen.len() < 3 {
            let response = next(&mut on_prefix).await;
            for event in response.events() {
                let kv = event.kv().unwrap();
                let prev = event
                    .prev_kv()
                    .map(|p| String::from_utf8_lossy(p.value()).into_owned());
                seen.push((
                    event.event_type(),
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    prev,
                ));
            }
        }
        assert_eq!(
            seen,
            vec![
                (EventType::Put, "w/a".to_string(), Some("0".to_string())),
                (EventType::Put, "w/b".to_string(), None),
                (EventType::Delete, "w/a".to_string(), Some("1".to_string())),
            ]
        );
        assert!(
            drain(&mut on_prefix).await.is_empty(),
            "nothing outside the prefix"
        );
    });
}

#[test]
fn watch_from_a_past_revision_replays_history_then_continues_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        for i in 0..5 {
            client
                .put(format!("h/{i}"), i.to_string(), None)
                .await
                .unwrap();
        }
        let txn =
            Txn::new().and_then([TxnOp::put("h/t1", "a", None), TxnOp::put("h/t2", "b", None)]);
        client.txn(txn).await.unwrap();
        let options = WatchOptions::new().with_prefix().with_start_revision(3);
        let (_watcher, mut stream) = client.watch("h/", Some(options)).await.unwrap();
        let replay = next(&mut stream).await;
        assert_eq!(
            revision(&replay),
            7,
            "a replayed batch carries the revision it was read at"
        );
        let revisions: Vec<i64> = replay
            .events()
            .iter()
            .map(|e| e.kv().unwrap().mod_revision())
            .collect();
        assert_eq!(
            revisions,
            vec![3, 4, 5, 6, 7, 7],
            "both events of the txn, in one response"
        );
        client.put("h/live", "x", None).await.unwrap();
        assert_eq!(
            events(&mut stream, 1).await,
            vec![("h/live".to_string(), "x".to_string(), 8)]
        );
    });
}

#[test]
fn watch_from_a_compacted_revision_is_canceled_with_compact_revision() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        for i in 0..5 {
            client.put("c", i.to_string(), None).await.unwrap();
        }
        client.compact(4, None).await.unwrap();
        let options = WatchOptions::new().with_start_revision(2);
        let (watcher, mut stream) = client.watch("c", Some(options)).await.unwrap();
        let canceled = next(&mut stream).await;
        assert!(canceled.canceled());
        assert_eq!(canceled.watch_id(), watcher.watch_id());
        assert_eq!(canceled.compact_revision(), 4);
        assert_eq!(canceled.cancel_reason(), "");
        assert_eq!(
            revision(&canceled),
            0,
            "etcd sends a compaction cancel with revision 0"
        );
    });
}

#[test]
fn a_canceled_watcher_gets_no_more_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let (mut watcher, mut stream) = client.watch("k", None).await.unwrap();
        client.put("k", "1", None).await.unwrap();
        assert_eq!(events(&mut stream, 1).await.len(), 1);
        watcher.cancel().await.unwrap();
        let canceled = next(&mut stream).await;
        assert!(canceled.canceled() && !canceled.created());
        assert_eq!(
            (canceled.watch_id(), revision(&canceled)),
            (watcher.watch_id(), 2)
        );
        client.put("k", "2", None).await.unwrap();
        assert!(drain(&mut stream).await.is_empty());
    });
}

#[test]
fn a_progress_request_reports_the_revision_every_watcher_has_seen() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let (mut watcher, mut stream) = client.watch("p", None).await.unwrap();
        client.put("elsewhere", "1", None).await.unwrap();
        client.put("elsewhere", "2", None).await.unwrap();
        watcher.request_progress().await.unwrap();
        let progress = next(&mut stream).await;
        assert_eq!((progress.watch_id(), revision(&progress)), (-1, 3));
        assert!(progress.events().is_empty() && !progress.created() && !progress.canceled());
    });
}

#[test]
fn progress_notify_arrives_at_the_configured_interval() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--experimental-watch-progress-notify-interval", "300ms"];
    let server = Server::start_with(Kind::Cairn, dir.path(), &args);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.put("n", "1", None).await.unwrap();
        let options = WatchOptions::new().with_progress_notify();
        let (watcher, mut stream) = client.watch("n", Some(options)).await.unwrap();
        let started = std::time::Instant::now();
        let progress = next(&mut stream).await;
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            (progress.watch_id(), revision(&progress)),
            (watcher.watch_id(), 2)
        );
        assert!(progress.events().is_empty());
    });
}

#[test]
fn watch_resumed_after_a_kill9_restart_delivers_each_later_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Kind::Cairn, dir.path());
    let rt = runtime();
    let (before, last_seen) = rt.block_on(async {
        let mut client = connect(&server).await;
        let (_watcher, mut stream) = client
            .watch("r/", Some(WatchOptions::new().with_prefix()))
            .await
            .unwrap();
        for i in 0..10 {
            client
                .put(format!("r/{i:02}"), i.to_string(), None)
                .await
                .unwrap();
        }
        // The watcher reads only part of what was written before the crash.
        let seen = events(&mut stream, 4).await;
        let last = seen.last().map(|e| e.2).unwrap();
        (seen, last)
    });
    server.kill9();
    server.restart();
    let after = rt.block_on(async {
        let mut client = connect(&server).await;
        for i in 10..15 {
            client
                .put(format!("r/{i:02}"), i.to_string(), None)
                .await
                .unwrap();
        }
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(last_seen + 1);
        let (_watcher, mut stream) = client.watch("r/", Some(options)).await.unwrap();
        for i in 15..20 {
            client
                .put(format!("r/{i:02}"), i.to_string(), None)
                .await
                .unwrap();
        }
        let seen = events(&mut stream, 16).await;
        assert!(drain(&mut stream).await.is_empty(), "no event twice");
        seen
    });
    let all: Vec<_> = before.into_iter().chain(after).collect();
    let keys: Vec<String> = all.iter().map(|e| e.0.clone()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("r/{i:02}")).collect();
    assert_eq!(keys, expected);
    let revisions: Vec<i64> = all.iter().map(|e| e.2).collect();
    assert_eq!(revisions, (2..22).collect::<Vec<_>>());
}

#[test]
fn a_watcher_that_stops_reading_holds_up_nobody_and_later_gets_every_event_once() {
    const WRITERS: usize = 16;
    const PUTS_PER_WRITER: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let client = connect(&server).await;
        let options = || Some(WatchOptions::new().with_prefix());
        let (_slow_watcher, mut slow) = client.clone().watch("s/", options()).await.unwrap();
        let (_fast_watcher, mut fast) = client.clone().watch("s/", options()).await.unwrap();
        // Far more than the server buffers for one stream (applied entries and responses),
        // in responses far larger than a gRPC flow-control window.
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let mut client = client.clone();
                real_tokio::spawn(async move {
                    for i in 0..PUTS_PER_WRITER {
                        let value = "v".repeat(2048);
                        client
                            .put(format!("s/{w:02}/{i:03}"), value, None)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        let total = WRITERS * PUTS_PER_WRITER;
        let fast_events = events(&mut fast, total).await;
        for writer in writers {
            writer.await.unwrap();
        }
        let slow_events = events(&mut slow, total).await;
        let revisions: Vec<i64> = fast_events.iter().map(|e| e.2).collect();
        assert_eq!(revisions, (2..2 + total as i64).collect::<Vec<_>>());
        assert_eq!(slow_events, fast_events);
        assert!(drain(&mut slow).await.is_empty(), "no event twice");
    });
}

// ---- Side by side with the reference etcd ----

fn mask_after(text: &str, needle: &str) -> String {
    cairn_tests::mask_number_after(text, needle, "N")
}

/// Masks what differs between two clusters by construction: ids and the raft term, in
/// Debug (`cluster_id: 1`), JSON (`"cluster_id":1`) and etcdctl's fields output.
fn mask(text: &str) -> String {
    let needles = [
        "cluster_id: ",
        "member_id: ",
        "raft_term: ",
        "\"cluster_id\":",
        "\"member_id\":",
        "\"raft_term\":",
        "\"ClusterID\" : ",
        "\"MemberID\" : ",
        "\"RaftTerm\" : ",
    ];
    needles
        .iter()
        .fold(text.to_string(), |text, needle| mask_after(&text, needle))
}

/// One step of a scripted watch session.
enum Action {
    Put(&'static str, &'static str),
    Delete(&'static str, bool),
    TxnPuts(&'static [(&'static str, &'static str)]),
    Compact(i64),
    Watch(&'static str, WatchOptions),
    Cancel(i64),
    Progress,
}

fn all_keys() -> WatchOptions {
    WatchOptions::new().with_all_keys()
}

fn session() -> Vec<Action> {
    use Action::*;
    vec![
        Put("a", "1"),
        Put("b", "2"),
        Put("a", "3"),
        Delete("b", false),
        Put("c/1", "x"),
        TxnPuts(&[("c/3", "z"), ("c/2", "y")]),
        Watch("", all_keys().with_start_revision(1).with_prev_key()),
        Watch(
            "c/",
            WatchOptions::new()
                .with_prefix()
                .with_watch_id(7)
                .with_start_revision(6),
        ),
        Watch(
            "c/",
            WatchOptions::new()
                .with_prefix()
                .with_filters([WatchFilterType::NoDelete]),
        ),
        Watch("x", WatchOptions::new().with_watch_id(7)),
        Watch("b", WatchOptions::new().with_range("a")),
        Watch("b", WatchOptions::new().with_range("b")),
        Watch("a", WatchOptions::new().with_start_revision(100)),
        Watch("a", WatchOptions::new().with_start_revision(-1)),
        Watch("a", WatchOptions::new().with_start_revision(-2)),
        Watch(
            "a",
            WatchOptions::new().with_from_key().with_start_revision(3),
        ),
        Put("a", "4"),
        Delete("a", false),
        Progress,
        Cancel(1),
        Cancel(42),
        Put("c/4", "w"),
        Delete("c/", true),
        Compact(6),
        Watch("", all_keys().with_start_revision(3)),
        Watch("a", WatchOptions::new().with_start_revision(-1)),
        Watch(
            "c/",
            WatchOptions::new()
                .with_prefix()
                .with_start_revision(7)
                .with_prev_key(),
        ),
        Watch(
            "c/",
            WatchOptions::new()
                .with_prefix()
                .with_filters([WatchFilterType::NoPut]),
        ),
        Put("c/5", "v"),
        Delete("c/5", false),
        Cancel(0),
        Put("a", "5"),
        Progress,
    ]
}

/// Runs the session on one server over one watch stream; one line per step: the step's
/// responses (Debug, masked, sorted because etcd orders responses of different watchers
/// to the same event arbitrarily).
async fn run_session(server: &Server) -> Vec<String> {
    let mut client = connect(server).await;
    let (mut watcher, mut stream) = client.watch("a", None).await.unwrap();
    let mut transcript = Vec::new();
    for (i, action) in session().into_iter().enumerate() {
        let label = perform(&mut client, &mut watcher, action).await;
        let mut responses: Vec<String> = drain(&mut stream)
            .await
            .iter()
            .map(|r| mask(&format!("{r:?}")))
            .collect();
        responses.sort();
        transcript.push(format!("step {i} {label}: {responses:#?}"));
    }
    transcript
}

async fn perform(
    client: &mut Client,
    watcher: &mut etcd_client::Watcher,
    action: Action,
) -> String {
    match action {
        Action::Put(key, value) => {
            client.put(key, value, None).await.unwrap();
            format!("put {key}")
        }
        Action::Delete(key, prefix) => {
            let options = prefix.then(|| etcd_client::DeleteOptions::new().with_prefix());
            client.delete(key, options).await.unwrap();
            format!("delete {key}")
        }
        Action::TxnPuts(pairs) => {
            let ops: Vec<TxnOp> = pairs
                .iter()
                .map(|(k, v)| TxnOp::put(*k, *v, None))
                .collect();
            client.txn(Txn::new().and_then(ops)).await.unwrap();
            "txn".to_string()
        }
        Action::Compact(revision) => {
            client.compact(revision, None).await.unwrap();
            format!("compact {revision}")
        }
        Action::Watch(key, options) => {
            let label = format!("watch {key:?} {options:?}");
            watcher.watch(key, Some(options)).await.unwrap();
            label
        }
        Action::Cancel(id) => {
            watcher.cancel_by_id(id).await.unwrap();
            format!("cancel {id}")
        }
        Action::Progress => {
            watcher.request_progress().await.unwrap();
            "progress".to_string()
        }
    }
}

fn differences(want: &[String], got: &[String]) -> Vec<String> {
    want.iter()
        .zip(got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("--- etcd\n{w}\n--- cairn\n{g}"))
        .collect()
}

#[test]
fn one_watch_stream_answers_exactly_as_etcd() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    let rt = runtime();
    let (want, got) =
        rt.block_on(async { futures_join(run_session(&etcd), run_session(&cairn)).await });
    assert_eq!(want.len(), got.len());
    let diffs = differences(&want, &got);
    assert!(
        diffs.is_empty(),
        "{} of {} steps differ:\n{}",
        diffs.len(),
        want.len(),
        diffs.join("\n\n")
    );
}

/// Runs two futures concurrently on the test runtime.
async fn futures_join<A, B>(a: impl Future<Output = A>, b: impl Future<Output = B>) -> (A, B) {
    real_tokio::join!(a, b)
}

#[test]
fn fragmented_responses_are_split_exactly_as_etcd_splits_them() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    let shape = |server: &Server| {
        let endpoint = server.endpoint();
        async move {
            let mut client = Client::connect([endpoint], None).await.expect("connect");
            for i in 0..5 {
                client
                    .put(format!("f/{i}"), "v".repeat(700_000), None)
                    .await
                    .unwrap();
            }
            let options = WatchOptions::new()
                .with_prefix()
                .with_start_revision(1)
                .with_fragment();
            let (_watcher, mut stream) = client.watch("f/", Some(options)).await.unwrap();
            let responses = drain(&mut stream).await;
            // (events per response, whether more fragments follow), from the raw response.
            responses
                .iter()
                .map(|r| {
                    (
                        r.events().len(),
                        format!("{r:?}").contains("fragment: true"),
                        revision(r),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let (want, got) = runtime().block_on(async { futures_join(shape(&etcd), shape(&cairn)).await });
    assert!(want.len() > 1, "the scenario must fragment: {want:?}");
    assert_eq!(want, got);
}

/// `timeout <seconds> etcdctl --endpoints <endpoint> <args>`: a watch runs until killed.
fn timed_etcdctl(endpoint: &str, seconds: u32, args: &[&str]) -> std::process::Child {
    Command::new("timeout")
        .arg(seconds.to_string())
        .arg(installed("etcdctl"))
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etcdctl")
}

fn render(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}stderr:\n{}",
        output.status.code(),
        mask(&String::from_utf8_lossy(&output.stdout)),
        mask(&String::from_utf8_lossy(&output.stderr))
    )
}

fn write_history(endpoint: &str) {
    let steps: &[&[&str]] = &[
        &["put", "a", "1"],
        &["put", "b", "2"],
        &["put", "a", "3"],
        &["del", "b"],
        &["put", "foo/1", "x"],
        &["put", "foo/2", "y"],
        &["del", "--prefix", "foo/"],
        &["put", "sp ace", "va lue"],
        &["put", "a", "4"],
        &["compaction", "3"],
    ];
    for args in steps {
        let output = etcdctl(endpoint, args);
        assert!(output.status.success(), "{args:?}: {}", render(&output));
    }
}

fn watch_invocations() -> Vec<Vec<&'static str>> {
    vec![
        vec!["watch", "--rev", "4", "--prefix", ""],
        vec!["watch", "--rev", "4", "--prefix", "", "--prev-kv"],
        vec!["watch", "--rev", "4", "--prefix", "", "-w", "json"],
        vec![
            "watch",
            "--rev",
            "4",
            "--prefix",
            "",
            "--prev-kv",
            "-w",
            "json",
        ],
        vec!["watch", "--rev", "5", "--prefix", "", "-w", "fields"],
        vec!["watch", "--rev", "4", "a"],
        vec!["watch", "--rev", "4", "a", "foo/2"],
        vec!["watch", "--rev", "4", "--prefix", "foo/"],
        vec!["watch", "--rev", "4", "--prefix", "", "--hex"],
        vec!["watch", "--rev", "1", "--prefix", ""],
        vec!["watch", "--rev", "2", "a", "-w", "json"],
        vec!["watch", "--rev=-1", "a"],
        vec!["watch", "--rev=-5", "a", "-w", "json"],
        vec!["watch", "--rev", "100", "a"],
        vec!["watch", "b", "a"],
        vec!["watch", "a", "a"],
        vec![
            "watch",
            "--rev",
            "4",
            "a",
            "--",
            "sh",
            "-c",
            "echo $ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE",
        ],
    ]
}

#[test]
fn etcdctl_watch_prints_exactly_what_it_prints_against_etcd() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    write_history(&etcd.endpoint());
    write_history(&cairn.endpoint());
    let mut diffs = Vec::new();
    let invocations = watch_invocations();
    for args in &invocations {
        let on_etcd = timed_etcdctl(&etcd.endpoint(), 2, args);
        let on_cairn = timed_etcdctl(&cairn.endpoint(), 2, args);
        let want = render(&on_etcd.wait_with_output().expect("etcdctl output"));
        let got = render(&on_cairn.wait_with_output().expect("etcdctl output"));
        if want != got {
            diffs.push(format!("{args:?}\n--- etcd\n{want}\n--- cairn\n{got}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} differ:\n{}",
        diffs.len(),
        invocations.len(),
        diffs.join("\n\n")
    );
}

#[test]
fn etcdctl_interactive_watch_and_progress_print_exactly_what_they_print_against_etcd() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    let run = |endpoint: String| {
        std::thread::spawn(move || {
            etcdctl(&endpoint, &["put", "i", "0"]);
            etcdctl(&endpoint, &["put", "j", "1"]);
            let mut child = Command::new(installed("etcdctl"))
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &endpoint, "watch", "-i"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start etcdctl");
            let mut stdin = child.stdin.take().expect("stdin");
            let pause = || std::thread::sleep(Duration::from_millis(700));
            use std::io::Write as _;
            for line in ["watch i\n", "progress\n", "watch --prev-kv j\n"] {
                stdin.write_all(line.as_bytes()).unwrap();
                pause();
            }
            etcdctl(&endpoint, &["put", "i", "1"]);
            pause();
            etcdctl(&endpoint, &["put", "j", "2"]);
            pause();
            stdin.write_all(b"progress\n").unwrap();
            pause();
            drop(stdin);
            render(&child.wait_with_output().expect("etcdctl output"))
        })
    };
    let (on_etcd, on_cairn) = (run(etcd.endpoint()), run(cairn.endpoint()));
    let (want, got) = (on_etcd.join().unwrap(), on_cairn.join().unwrap());
    assert_eq!(want, got);
}

/// etcd serves a watch that starts exactly at the compacted revision (it cancels only below
/// it), with what compaction kept of that revision.
#[test]
fn watch_at_the_compacted_revision_answers_as_etcd() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    write_history(&etcd.endpoint());
    write_history(&cairn.endpoint());
    let invocations: [&[&str]; 2] = [
        &[
            "watch",
            "--rev",
            "3",
            "--prefix",
            "",
            "--prev-kv",
            "-w",
            "json",
        ],
        &["watch", "--rev", "3", "a", "--prev-kv", "-w", "json"],
    ];
    for args in invocations {
        let want = render(
            &timed_etcdctl(&etcd.endpoint(), 2, args)
                .wait_with_output()
                .unwrap(),
        );
        let got = render(
            &timed_etcdctl(&cairn.endpoint(), 2, args)
                .wait_with_output()
                .unwrap(),
        );
        assert_eq!(want, got, "{args:?}");
    }
}
