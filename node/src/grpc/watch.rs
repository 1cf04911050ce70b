//! The Watch service (etcd `etcdserver/api/v3rpc/watch.go`): one bidirectional stream per
//! call, many watchers per stream, driven by one task per stream around a
//! [`cairn_core::watch::WatchStream`].
//!
//! The task subscribes to applied events before it reads any revision, then handles, one at
//! a time: client requests (create, cancel, progress), applied entries, catch-up steps for
//! watchers reading history, periodic progress ticks (`progress_notify`, etcd's
//! `--experimental-watch-progress-notify-interval`, at least 100 ms, no jitter) and, for
//! clients that require a leader (`hasleader` metadata, as etcdctl sends), etcd's leader
//! monitor: no leader at the start is `etcdserver: no leader`, and three election timeouts
//! in a row without one end the stream with it.
//!
//! Nothing here can hold up apply: applied entries reach the task through a bounded
//! broadcast that never waits for receivers. Responses go to the client through a queue of
//! [`WATCH_SEND_QUEUE_LEN`] responses; while the client does not read, the task waits, the
//! broadcast drops the oldest entries for this stream only, and the stream's watchers catch
//! up from storage afterwards (a slow client costs bounded memory and storage reads).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::api::etcdserverpb::watch_request::RequestUnion;
use cairn_core::api::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use cairn_core::watch::{WatchLimits, WatchStream};
use futures::Stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, watch as signal};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::GRPC_OVERHEAD_BYTES;
use super::pb::watch_server::Watch;
use super::status::{from_core, from_server};
use crate::config::Config;
use crate::server::{AppliedEvents, EVENT_QUEUE_LEN, Handle, ServerError};

/// Responses queued per stream for the client (etcd's `chanBufLen`).
pub const WATCH_SEND_QUEUE_LEN: usize = 128;
/// Watchers one stream may hold.
pub const MAX_WATCHERS_PER_STREAM: usize = 10_000;
/// etcd's default progress notification interval.
pub const DEFAULT_PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(600);
/// The shortest progress notification interval (etcd's `minWatchProgressInterval`).
pub const MIN_PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_millis(100);
/// Election timeouts without a leader after which a leader-requiring stream ends (etcd's
/// `maxNoLeaderCnt`).
pub const MAX_NO_LEADER_CHECKS: u32 = 3;

/// The metadata key and value by which a client asks for streams that need a leader.
const REQUIRE_LEADER_KEY: &str = "hasleader";
const REQUIRE_LEADER_VALUE: &str = "true";

/// The stream of watch responses.
pub type WatchResponseStream =
    Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send + 'static>>;

/// What the Watch service takes from the member's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// Interval of `progress_notify` notifications.
    pub progress_notify_interval: Duration,
    /// The election timeout (leader monitor period).
    pub election_timeout: Duration,
    /// Per-stream bounds.
    pub limits: WatchLimits,
}

impl WatchConfig {
    /// The Watch settings of `config`, with etcd's adjustments of the progress interval.
    pub fn from_config(config: &Config) -> WatchConfig {
        WatchConfig {
            progress_notify_interval: progress_interval(config.watch_progress_notify_interval),
            election_timeout: config.tick * config.election_ticks as u32,
            limits: WatchLimits {
                max_watchers: MAX_WATCHERS_PER_STREAM,
                fragment_bytes: config.max_request_bytes + GRPC_OVERHEAD_BYTES,
                ..WatchLimits::default()
            },
        }
    }
}

/// etcd's `NewWatchServer`: 0 keeps the default, anything below the minimum is raised to it.
fn progress_interval(configured: Duration) -> Duration {
    if configured.is_zero() {
        return DEFAULT_PROGRESS_NOTIFY_INTERVAL;
    }
    if configured < MIN_PROGRESS_NOTIFY_INTERVAL {
        tracing::warn!(
            configured = ?configured,
            minimum = ?MIN_PROGRESS_NOTIFY_INTERVAL,
            "adjusting watch progress notify interval to minimum period"
        );
        return MIN_PROGRESS_NOTIFY_INTERVAL;
    }
    configured
}

/// The Watch service of one member.
#[derive(Clone)]
pub struct WatchService {
    handle: Handle,
    config: WatchConfig,
    stop: signal::Receiver<bool>,
}

impl WatchService {
    /// A Watch service answering through `handle`; every stream ends (`etcdserver: server
    /// stopped`) once `stop` turns true.
    pub fn new(handle: Handle, config: WatchConfig, stop: signal::Receiver<bool>) -> Self {
        WatchService {
            handle,
            config,
            stop,
        }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchResponseStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let require_leader = requires_leader(request.metadata());
        let metadata = request.metadata().clone();
        if require_leader && self.handle.raft_status().leader == 0 {
            return Err(from_server(&ServerError::NoLeader));
        }
        let (out, responses) = mpsc::channel(WATCH_SEND_QUEUE_LEN);
        // Subscribe first, then read the revision: no entry falls between the two.
        let events = self.handle.subscribe_events();
        let current = self.handle.state_machine().current_revision();
        let task = StreamTask {
            events,
            registry: WatchStream::new(self.config.limits, self.handle.header(0), current),
            handle: self.handle.clone(),
            config: self.config,
            stop: self.stop.clone(),
            inbound: request.into_inner(),
            inbound_open: true,
            out,
            require_leader,
            metadata,
        };
        tokio::spawn(task.run());
        Ok(Response::new(Box::pin(queue_stream(responses))))
    }
}

fn requires_leader(metadata: &MetadataMap) -> bool {
    metadata
        .get(REQUIRE_LEADER_KEY)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == REQUIRE_LEADER_VALUE)
}

/// etcd's `isWatchPermitted`: the stream's user must be allowed to read the watched range;
/// the refusal reason is etcd's error message. A range end of `"\0"` is checked as the
/// open-ended range it is (etcd 3.4 checks only the first key then).
async fn watch_permitted(
    handle: &Handle,
    metadata: &MetadataMap,
    create: &WatchCreateRequest,
) -> Result<(), String> {
    // etcd's reasons are gRPC errors' `Error()` texts (`rpctypes.ErrGRPC*`).
    let auth = super::auth::request_auth(handle, metadata)
        .await
        .map_err(|status| go_status_text(&status))?;
    let key: &[u8] = if create.key.is_empty() {
        &[0]
    } else {
        &create.key
    };
    handle
        .state_machine()
        .check_read(auth.as_ref(), key, &create.range_end)
        .map_err(|e| match e {
            cairn_core::Error::InvalidAuthToken
            | cairn_core::Error::AuthOldRevision
            | cairn_core::Error::UserEmpty => go_status_text(&from_core(&e)),
            _ => go_status_text(&from_core(&cairn_core::Error::PermissionDenied)),
        })
}

/// grpc-go's `Error()` of a status: `rpc error: code = Unauthenticated desc = ...`.
fn go_status_text(status: &Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

/// The responses of a queue, until every sender is gone.
fn queue_stream(
    responses: mpsc::Receiver<Result<WatchResponse, Status>>,
) -> impl Stream<Item = Result<WatchResponse, Status>> + Send + 'static {
    futures::stream::unfold(responses, |mut responses| async move {
        responses.recv().await.map(|item| (item, responses))
    })
}

/// Why a stream task stopped.
enum Ended {
    /// The client went away (its response stream was dropped).
    ClientGone,
    /// The stream ends with this status.
    Failed(Status),
}

/// The next thing a stream task handles.
enum Step {
    ClientGone,
    Stopped,
    Request(Result<Option<WatchRequest>, Status>),
    Applied(Result<Arc<AppliedEvents>, RecvError>),
    ProgressTick,
    LeaderCheck,
    CatchUp,
}

/// One client stream.
struct StreamTask {
    handle: Handle,
    config: WatchConfig,
    stop: signal::Receiver<bool>,
    inbound: Streaming<WatchRequest>,
    /// Whether the client may still send requests (etcd keeps serving a half-closed stream).
    inbound_open: bool,
    events: broadcast::Receiver<Arc<AppliedEvents>>,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    registry: WatchStream,
    require_leader: bool,
    /// The stream's metadata, for the auth token of each watch created on it.
    metadata: MetadataMap,
}

impl StreamTask {
    async fn run(mut self) {
        if let Ended::Failed(status) = self.serve().await {
            // Best effort: a client that does not read any more would never take it.
            let _ = self.out.try_send(Err(status));
        }
    }

    async fn serve(&mut self) -> Ended {
        let mut progress = ticker(self.config.progress_notify_interval);
        let mut leader = ticker(self.config.election_timeout);
        let mut no_leader_checks = 0;
        let mut caught_up_last = false;
        loop {
            // Catch-up alternates with everything else, so a busy stream still catches up.
            let step = if self.registry.has_unsynced() && !caught_up_last {
                Step::CatchUp
            } else {
                self.next_step(&mut progress, &mut leader).await
            };
            caught_up_last = matches!(step, Step::CatchUp);
            self.registry.set_raft_term(self.handle.raft_status().term);
            let handled = match step {
                Step::ClientGone => Err(Ended::ClientGone),
                Step::Stopped => Err(stopped()),
                Step::Request(request) => self.on_request(request).await,
                Step::Applied(entry) => self.on_applied(entry).await,
                Step::ProgressTick => self.on_progress_tick().await,
                Step::LeaderCheck => self.check_leader(&mut no_leader_checks),
                Step::CatchUp => self.catch_up().await,
            };
            if let Err(ended) = handled {
                return ended;
            }
        }
    }

    async fn next_step(&mut self, progress: &mut Interval, leader: &mut Interval) -> Step {
        let catching_up = self.registry.has_unsynced();
        tokio::select! {
            biased;
            _ = self.out.closed() => Step::ClientGone,
            _ = self.stop.wait_for(|stopped| *stopped) => Step::Stopped,
            request = self.inbound.message(), if self.inbound_open => Step::Request(request),
            entry = self.events.recv() => Step::Applied(entry),
            _ = progress.tick() => Step::ProgressTick,
            _ = leader.tick(), if self.require_leader => Step::LeaderCheck,
            _ = std::future::ready(()), if catching_up => Step::CatchUp,
        }
    }

    async fn on_request(
        &mut self,
        request: Result<Option<WatchRequest>, Status>,
    ) -> Result<(), Ended> {
        let request = match request {
            Ok(Some(request)) => request,
            Ok(None) => {
                self.inbound_open = false;
                return Ok(());
            }
            Err(status) => {
                tracing::debug!(%status, "watch stream receive failed");
                return Err(Ended::Failed(status));
            }
        };
        let current = self.current_revision();
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => {
                let (handle, metadata) = (self.handle.clone(), self.metadata.clone());
                if let Err(reason) = watch_permitted(&handle, &metadata, &create).await {
                    let refused = WatchResponse {
                        header: Some(self.handle.header(current)),
                        watch_id: -1,
                        created: true,
                        canceled: true,
                        cancel_reason: reason,
                        ..WatchResponse::default()
                    };
                    return self.send(vec![refused]).await;
                }
                if create.prev_kv {
                    // From the next applied entry on; earlier ones go through history.
                    self.handle.state_machine().set_prev_values(true);
                }
                let created = self.registry.create(&create, current);
                self.send(vec![created]).await
            }
            Some(RequestUnion::CancelRequest(cancel)) => {
                let canceled = self.registry.cancel(cancel.watch_id, current);
                self.send(canceled).await
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                let mut out = self.drain_applied();
                out.extend(self.registry.request_progress(self.current_revision()));
                self.send(out).await
            }
            // etcd ignores a request it does not understand rather than ending the stream.
            None => Ok(()),
        }
    }

    /// etcd's `isWatchPermitted`: the stream's user must be allowed to read the watched
    /// range; the refusal reason is etcd's error message. A range end of `"\0"` is checked
    /// as the open-ended range it is (etcd 3.4 checks only the first key then).
    async fn on_applied(
        &mut self,
        entry: Result<Arc<AppliedEvents>, RecvError>,
    ) -> Result<(), Ended> {
        match entry {
            Ok(entry) => {
                let out = entry.feed(&mut self.registry);
                self.send(out).await
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "watch stream fell behind; catching up from storage");
                self.registry.lagged();
                Ok(())
            }
            Err(RecvError::Closed) => Err(stopped()),
        }
    }

    /// Hands every applied entry already queued for this stream to the registry (so that a
    /// progress answer is as fresh as the store allows).
    fn drain_applied(&mut self) -> Vec<WatchResponse> {
        let mut out = Vec::new();
        for _ in 0..EVENT_QUEUE_LEN {
            match self.events.try_recv() {
                Ok(entry) => out.extend(entry.feed(&mut self.registry)),
                Err(TryRecvError::Lagged(_)) => self.registry.lagged(),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        out
    }

    async fn on_progress_tick(&mut self) -> Result<(), Ended> {
        let out = self.registry.progress_tick(self.current_revision());
        self.send(out).await
    }

    async fn catch_up(&mut self) -> Result<(), Ended> {
        let out = self
            .registry
            .catch_up(self.handle.state_machine())
            .map_err(|e| Ended::Failed(from_core(&e)))?;
        self.send(out).await
    }

    /// etcd's `monitorLeader`: a leader-requiring stream ends after
    /// [`MAX_NO_LEADER_CHECKS`] election timeouts in a row without a leader.
    fn check_leader(&self, no_leader_checks: &mut u32) -> Result<(), Ended> {
        if self.handle.raft_status().leader != 0 {
            *no_leader_checks = 0;
            return Ok(());
        }
        *no_leader_checks += 1;
        if *no_leader_checks >= MAX_NO_LEADER_CHECKS {
            return Err(Ended::Failed(from_server(&ServerError::NoLeader)));
        }
        Ok(())
    }

    fn current_revision(&self) -> i64 {
        self.handle.state_machine().current_revision()
    }

    /// Sends `responses` in order, waiting while the client's queue is full.
    async fn send(&mut self, responses: Vec<WatchResponse>) -> Result<(), Ended> {
        for response in responses {
            if self.out.send(Ok(response)).await.is_err() {
                return Err(Ended::ClientGone);
            }
        }
        Ok(())
    }
}

fn stopped() -> Ended {
    Ended::Failed(from_server(&ServerError::Stopped))
}

/// An interval whose first tick is one period from now and that does not burst after a
/// stall.
fn ticker(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}
