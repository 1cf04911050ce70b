//! One outbound link: drains a member's queue into batches written one after another on a
//! long-lived stream (no waiting for an answer per batch, as etcd's rafthttp streams), and
//! reconnects with backoff when the stream breaks. An empty unary batch now and then measures
//! the round trip (etcd's prober) for `etcd_network_peer_round_trip_time_seconds`.

use std::time::Duration;

use cairn_core::api::cairnpb::RaftBatch;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use std::sync::Arc;
use tokio::sync::mpsc;

use tonic::transport::Channel;

use crate::config::TlsSettings;

use super::pb::raft_client::RaftClient;
use super::{MAX_MESSAGES_PER_BATCH, snapshot};

/// First retry delay after a failed connection; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a connection attempt, a probe, or a stalled stream may take before the link
/// counts the peer as unreachable.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Batches written to a stream ahead of the transport before the link waits.
const STREAM_QUEUE_LEN: usize = 64;
/// How often the round trip to the peer is measured.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// What a link tells the event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFeedback {
    /// Messages to this member could not be delivered.
    Unreachable(u64),
    /// A snapshot sent to this member arrived (`true`) or was lost (`false`).
    Snapshot(u64, bool),
    /// This member refused our traffic because we were removed from the cluster.
    Removed(u64),
}

pub(super) struct Link {
    cluster_id: u64,
    from: u64,
    to: u64,
    url: String,
    max_message_bytes: usize,
    tls: Option<Arc<TlsSettings>>,
    feedback: mpsc::UnboundedSender<PeerFeedback>,
    client: Option<RaftClient<Channel>>,
    /// The open stream's input, if one is open.
    stream: Option<mpsc::Sender<RaftBatch>>,
    last_probe: Option<tokio::time::Instant>,
    backoff: Duration,
}

impl Link {
    pub(super) fn new(
        cluster_id: u64,
        from: u64,
        to: u64,
        url: String,
        max_message_bytes: usize,
        tls: Option<Arc<TlsSettings>>,
        feedback: mpsc::UnboundedSender<PeerFeedback>,
    ) -> Link {
        Link {
            cluster_id,
            from,
            to,
            url,
            max_message_bytes,
            tls,
            feedback,
            client: None,
            stream: None,
            last_probe: None,
            backoff: MIN_BACKOFF,
        }
    }

    pub(super) async fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        let mut snapshot_in_flight: Option<tokio::task::JoinHandle<()>> = None;
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_MESSAGES_PER_BATCH {
                match queue.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            let (snapshots, batch): (Vec<Message>, Vec<Message>) = batch
                .into_iter()
                .partition(|m| m.get_msg_type() == MessageType::MsgSnapshot);
            for message in snapshots {
                if snapshot_in_flight
                    .as_ref()
                    .is_some_and(|t| !t.is_finished())
                {
                    // One snapshot at a time per member; Raft sends another after the failure.
                    let _ = self.feedback.send(PeerFeedback::Snapshot(self.to, false));
                    continue;
                }
                snapshot_in_flight = Some(tokio::spawn(self.stream_snapshot(message)));
            }
            if batch.is_empty() {
                continue;
            }
            let delivered = self.deliver(&batch).await;
            self.report(delivered);
            if !delivered {
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Streams a snapshot on a connection of its own and reports the outcome.
    fn stream_snapshot(&self, message: Message) -> impl std::future::Future<Output = ()> + use<> {
        let route = snapshot::Route {
            cluster_id: self.cluster_id,
            from: self.from,
            to: self.to,
        };
        let (url, max, feedback, tls) = (
            self.url.clone(),
            self.max_message_bytes,
            self.feedback.clone(),
            self.tls.clone(),
        );
        async move {
            let delivered = snapshot::send(route, url, message, max, tls.as_deref()).await;
            if !delivered {
                let _ = feedback.send(PeerFeedback::Unreachable(route.to));
            }
            let _ = feedback.send(PeerFeedback::Snapshot(route.to, delivered));
        }
    }

    async fn deliver(&mut self, batch: &[Message]) -> bool {
        let request = RaftBatch {
            cluster_id: self.cluster_id,
            from: self.from,
            to: self.to,
            messages: batch
                .iter()
                .filter_map(|m| m.write_to_bytes().ok())
                .map(prost::bytes::Bytes::from)
                .collect(),
        };
        #[cfg(madsim)]
        if let Some(delivered) = super::sim_faults::intercept(&self.url, &request).await {
            return delivered;
        }
        let Some(stream) = self.open_stream().await else {
            return false;
        };
        match tokio::time::timeout(SEND_TIMEOUT, stream.send(request)).await {
            Ok(Ok(())) => {
                self.backoff = MIN_BACKOFF;
                self.maybe_probe();
                true
            }
            // The stream ended (the peer went away or refused a batch), or the transport has
            // not taken a batch for SEND_TIMEOUT: start over on a new connection.
            Ok(Err(_)) | Err(_) => {
                self.stream = None;
                self.client = None;
                false
            }
        }
    }

    /// The open stream, or a new one on the (re)connected channel; `None` if the peer cannot
    /// be reached.
    async fn open_stream(&mut self) -> Option<mpsc::Sender<RaftBatch>> {
        if let Some(stream) = &self.stream {
            if !stream.is_closed() {
                return Some(stream.clone());
            }
            self.stream = None;
            self.client = None;
        }
        let mut client = self.connect().await?.clone();
        let (input, queued) = mpsc::channel::<RaftBatch>(STREAM_QUEUE_LEN);
        let batches = futures::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|batch| (batch, queued))
        });
        let (to, feedback) = (self.to, self.feedback.clone());
        // Ends when the link drops `input` or the stream breaks; dropping `queued` then
        // closes `input`, which the link notices on its next batch.
        tokio::spawn(async move {
            if let Err(status) = client.stream(batches).await {
                tracing::debug!(to = format_args!("{to:x}"), %status, "raft stream ended");
                if super::is_member_removed(&status) {
                    let _ = feedback.send(PeerFeedback::Removed(to));
                }
            }
        });
        self.stream = Some(input.clone());
        Some(input)
    }

    /// Measures the round trip to the peer with an empty batch, at most every
    /// [`PROBE_INTERVAL`], without holding up the link.
    fn maybe_probe(&mut self) {
        let now = tokio::time::Instant::now();
        if self
            .last_probe
            .is_some_and(|last| now.duration_since(last) < PROBE_INTERVAL)
        {
            return;
        }
        self.last_probe = Some(now);
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let probe = RaftBatch {
            cluster_id: self.cluster_id,
            from: self.from,
            to: self.to,
            messages: Vec::new(),
        };
        let to = format!("{:x}", self.to);
        tokio::spawn(async move {
            if let Ok(Ok(_)) = tokio::time::timeout(SEND_TIMEOUT, client.send(probe)).await {
                crate::metrics::metrics()
                    .peer_round_trip
                    .with_label_values(&[to.as_str()])
                    .observe(now.elapsed().as_secs_f64());
            }
        });
    }

    async fn connect(&mut self) -> Option<&mut RaftClient<Channel>> {
        if self.client.is_none() {
            let endpoint = match crate::tls::peer_endpoint(&self.url, self.tls.as_deref()) {
                Ok(endpoint) => endpoint.connect_timeout(SEND_TIMEOUT),
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e, "cannot dial peer");
                    return None;
                }
            };
            match endpoint.connect().await {
                Ok(channel) => {
                    let client = RaftClient::new(channel)
                        .max_decoding_message_size(self.max_message_bytes)
                        .max_encoding_message_size(self.max_message_bytes);
                    self.client = Some(client);
                }
                Err(e) => {
                    tracing::debug!(to = format_args!("{:x}", self.to), url = %self.url, error = %e, "peer unreachable");
                    return None;
                }
            }
        }
        self.client.as_mut()
    }

    fn report(&self, delivered: bool) {
        if !delivered {
            let _ = self.feedback.send(PeerFeedback::Unreachable(self.to));
        }
    }
}
