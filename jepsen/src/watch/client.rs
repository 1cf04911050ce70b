//! The watch clients of a fault run (cairn-sim's simulated one, `cairn-jepsen run`'s real
//! one): they watch key ranges the workloads write, resume after every broken stream on
//! another member, and record every response for the watch checker ([`super::check`]).
//!
//! A *chain* is what one application-level watcher sees: a watch request, then the
//! responses of each session that carried it. A session is one `Watch` stream to one member;
//! it ends when the stream fails, the member goes quiet (no answer to a progress request for
//! [`STALL_TIMEOUT`]), or after a drawn lifetime, and the chain resumes on another member at
//! the revision after the last one it is known to have every event of (its last event, or
//! its last progress notification), as clientv3 does. The checker then judges the chain as
//! one watcher: every committed event in range from the start exactly once, in order, with
//! no gap across the resumptions. A compaction cancel ends a chain (legally); a new chain
//! starts at the compacted revision.
//!
//! Sessions ask for progress every [`PROGRESS_INTERVAL`], so the record carries
//! notifications that promise "every event up to here was sent" (checked), and a watcher
//! knows when it has caught up: once the run sets a target revision (the one every member
//! agreed on), each watcher runs until it has everything up to it.
//!
//! Time is tokio's (madsim's under simulation) and every choice comes from the caller's
//! [`Draw`], so a simulated run stays a function of its seed.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    WatchCreateRequest, WatchProgressRequest, WatchRequest as PbWatchRequest,
    WatchResponse as PbWatchResponse, watch_create_request::FilterType, watch_request,
};
use cairn_client::pb::mvccpb;
use cairn_client::{Client, ConnectOptions, WatchStream};
use tokio::time::Instant;

use super::{Event, EventType, KeyValue, Revision, WatchRequest, WatchResponse, Watcher};

/// How often a session asks for a progress notification.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// A session that hears nothing for this long is abandoned for another member.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Bounds of a session's drawn lifetime (then it resumes elsewhere).
const SESSION_LIFETIME: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(15));
/// How long dialling a member may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause before dialling again after a failed session.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Chain ids reserved per watch client.
const CHAINS_PER_CLIENT: u64 = 1_000_000;

/// The recorded watchers of a run, shared by every watch client.
#[derive(Debug, Clone, Default)]
pub struct WatchLog {
    watchers: Arc<Mutex<Vec<Watcher>>>,
}

impl WatchLog {
    /// An empty log.
    pub fn new() -> Self {
        WatchLog::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Watcher>> {
        self.watchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a new chain; returns its index.
    fn start(&self, id: u64, request: WatchRequest) -> usize {
        let mut watchers = self.lock();
        watchers.push(Watcher {
            id,
            request,
            compacted_before: 0,
            responses: Vec::new(),
            line: None,
        });
        watchers.len() - 1
    }

    fn respond(&self, chain: usize, response: WatchResponse) {
        if let Some(watcher) = self.lock().get_mut(chain) {
            watcher.responses.push(response);
        }
    }

    /// Every chain so far, in the order they were started.
    pub fn snapshot(&self) -> Vec<Watcher> {
        self.lock().clone()
    }
}

/// What the run tells the watch clients: the revision to catch up to (0: not yet known).
#[derive(Debug, Default)]
pub struct WatchTarget {
    revision: AtomicI64,
}

impl WatchTarget {
    /// No target yet: watch until one is set.
    pub fn new() -> Arc<Self> {
        Arc::new(WatchTarget::default())
    }

    /// Every watcher is to catch up to `revision`, then stop.
    pub fn set(&self, revision: Revision) {
        self.revision.store(revision, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Revision> {
        let revision = self.revision.load(Ordering::Relaxed);
        (revision > 0).then_some(revision)
    }
}

/// The current chain of a watch client.
#[derive(Debug)]
struct Chain {
    /// Its index in the log.
    index: usize,
    request: WatchRequest,
    /// The revision to resume at: every event below it has been delivered (0: from now,
    /// nothing delivered or promised yet).
    next: Revision,
}

/// How a session ended.
enum SessionEnd {
    /// The stream broke, went quiet or reached its lifetime: resume elsewhere.
    Resume,
    /// The watch was canceled; the chain is over. A new one starts at this revision.
    Canceled(Revision),
    /// The target revision is reached.
    Done,
}

/// The random choices of a watch client: the simulator's seeded rng, or a runner's.
pub trait Draw: Send {
    /// `true` with probability `p`.
    fn chance(&mut self, p: f64) -> bool;
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64;
}

/// Draws the key range of a new chain, as `(key, range_end)` of a watch request.
pub type RangeDraw = Box<dyn FnMut(&mut dyn Draw) -> (Vec<u8>, Vec<u8>) + Send>;

/// The range of every key with `prefix`, as `(key, range_end)`.
pub fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    (prefix.as_bytes().to_vec(), end)
}

/// One watch client process.
pub struct WatchClient {
    id: u64,
    endpoints: Vec<String>,
    member: usize,
    log: WatchLog,
    chains: u64,
    draw: Box<dyn Draw>,
    ranges: RangeDraw,
}

impl WatchClient {
    /// Watch client `id` over `endpoints` (not empty), recording into `log`, making its
    /// choices with `draw` and its chains' ranges with `ranges`.
    pub fn new(
        id: u64,
        endpoints: Vec<String>,
        log: WatchLog,
        draw: Box<dyn Draw>,
        ranges: RangeDraw,
    ) -> Self {
        let member = id as usize % endpoints.len().max(1);
        WatchClient {
            id,
            endpoints,
            member,
            log,
            chains: 0,
            draw,
            ranges,
        }
    }

    /// Watches until `target` is set and reached; returns the revision it got to.
    pub async fn run(mut self, target: Arc<WatchTarget>) -> Revision {
        let mut chain = self.new_chain(None);
        loop {
            match self.session(&mut chain, &target).await {
                SessionEnd::Done => return chain.next,
                SessionEnd::Resume => self.switch_member(),
                SessionEnd::Canceled(from) => chain = self.new_chain(Some(from)),
            }
        }
    }

    /// A chain over a drawn range, from `start` (drawn: from now or from revision 1, when
    /// `None`).
    fn new_chain(&mut self, start: Option<Revision>) -> Chain {
        let draw = self.draw.as_mut();
        let start = start.unwrap_or_else(|| if draw.chance(0.5) { 0 } else { 1 });
        let (key, range_end) = (self.ranges)(draw);
        let filter = draw.below(10);
        let request = WatchRequest {
            key,
            range_end,
            start_revision: start,
            no_put: filter == 0,
            no_delete: filter == 1,
            prev_kv: draw.chance(0.5),
        };
        let id = self.id * CHAINS_PER_CLIENT + self.chains;
        self.chains += 1;
        let index = self.log.start(id, request.clone());
        Chain {
            index,
            request,
            next: start,
        }
    }

    fn switch_member(&mut self) {
        self.member = self.draw.below(self.endpoints.len().max(1) as u64) as usize;
    }

    /// One stream to one member, carrying `chain` from `chain.next` on.
    async fn session(&mut self, chain: &mut Chain, target: &WatchTarget) -> SessionEnd {
        let Some(mut stream) = self.open(chain).await else {
            tokio::time::sleep(RETRY_PAUSE).await;
            return SessionEnd::Resume;
        };
        let (shortest, longest) = (
            SESSION_LIFETIME.0.as_millis() as u64,
            SESSION_LIFETIME.1.as_millis() as u64,
        );
        let lifetime = Duration::from_millis(shortest + self.draw.below(longest - shortest + 1));
        let ends = Instant::now() + lifetime;
        let mut heard = Instant::now();
        loop {
            if target.get().is_some_and(|t| chain.next > t) {
                return SessionEnd::Done;
            }
            let now = Instant::now();
            if now >= ends && target.get().is_none() {
                return SessionEnd::Resume;
            }
            match tokio::time::timeout(PROGRESS_INTERVAL, stream.message()).await {
                Ok(Ok(Some(response))) => {
                    heard = Instant::now();
                    if let Some(end) = self.received(chain, &response) {
                        return end;
                    }
                }
                Ok(Ok(None) | Err(_)) => return SessionEnd::Resume,
                Err(_elapsed) => {
                    if heard.elapsed() >= STALL_TIMEOUT || stream.send(progress()).await.is_err() {
                        return SessionEnd::Resume;
                    }
                }
            }
        }
    }

    /// Dials the current member and asks for the chain's watch from where it is.
    async fn open(&mut self, chain: &Chain) -> Option<WatchStream> {
        let options = ConnectOptions {
            dial_timeout: Some(DIAL_TIMEOUT),
            request_timeout: Some(STALL_TIMEOUT),
            tls: None,
        };
        let endpoint = self.endpoints.get(self.member)?.clone();
        let client = Client::connect_with(&[endpoint], options).await.ok()?;
        let request = create_request(&chain.request, chain.next);
        client.watch(request).await.ok()
    }

    /// Records `response` in the chain and moves its resume point; says how the session
    /// ends if it does.
    fn received(&mut self, chain: &mut Chain, response: &PbWatchResponse) -> Option<SessionEnd> {
        let recorded = response_of(response);
        let header_revision = recorded.header_revision;
        let progress = recorded.is_progress_notify();
        self.log.respond(chain.index, recorded);
        if response.canceled {
            let from = if response.compact_revision != 0 {
                response.compact_revision
            } else {
                chain.next
            };
            return Some(SessionEnd::Canceled(from));
        }
        if let Some(last) = response.events.last().and_then(|e| e.kv.as_ref()) {
            chain.next = chain.next.max(last.mod_revision + 1);
        }
        if progress || (response.created && chain.next == 0) {
            chain.next = chain.next.max(header_revision + 1);
        }
        None
    }
}

fn create_request(request: &WatchRequest, start_revision: Revision) -> PbWatchRequest {
    let mut filters = Vec::new();
    if request.no_put {
        filters.push(FilterType::Noput as i32);
    }
    if request.no_delete {
        filters.push(FilterType::Nodelete as i32);
    }
    let create = WatchCreateRequest {
        key: request.key.clone(),
        range_end: request.range_end.clone(),
        start_revision,
        prev_kv: request.prev_kv,
        filters,
        ..Default::default()
    };
    PbWatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
    }
}

fn progress() -> PbWatchRequest {
    PbWatchRequest {
        request_union: Some(watch_request::RequestUnion::ProgressRequest(
            WatchProgressRequest {},
        )),
    }
}

/// A watch response as the checker reads it.
fn response_of(response: &PbWatchResponse) -> WatchResponse {
    WatchResponse {
        header_revision: response.header.as_ref().map_or(0, |h| h.revision),
        events: response.events.iter().map(event_of).collect(),
        canceled: response.canceled,
        compact_revision: response.compact_revision,
        fragment: response.fragment,
        created: response.created,
        line: None,
    }
}

/// mvccpb's `Event` as the watch checker reads it.
pub fn event_of(event: &mvccpb::Event) -> Event {
    let kind = if event.r#type == mvccpb::event::EventType::Delete as i32 {
        EventType::Delete
    } else {
        EventType::Put
    };
    Event {
        kind,
        kv: event.kv.as_ref().map(key_value_of).unwrap_or_default(),
        prev_kv: event.prev_kv.as_ref().map(key_value_of),
    }
}

/// mvccpb's `KeyValue` as the watch checker reads it.
pub fn key_value_of(kv: &mvccpb::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key.clone(),
        value: kv.value.clone(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}
