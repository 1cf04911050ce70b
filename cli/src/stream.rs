//! The two bidirectional streams of etcd's API as handles that send requests and read
//! responses: [`WatchStream`] (`Watch.Watch`) and [`KeepAliveStream`]
//! (`Lease.LeaseKeepAlive`). Requests go through a bounded queue of
//! [`STREAM_REQUEST_QUEUE_LEN`] requests, so a caller that sends faster than the transport
//! drains waits instead of growing memory. Dropping a handle ends the stream. Sending takes
//! `&mut self` like reading: a handle is used by one task at a time (the simulated
//! transport's response stream is `Send` but not `Sync`). [`SnapshotStream`] reads the
//! server-streaming `Maintenance.Snapshot`.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Streaming;

use crate::error::ClientError;
use crate::pb::etcdserverpb as pb;

/// Requests queued per stream before `send` waits.
pub const STREAM_REQUEST_QUEUE_LEN: usize = 64;

/// A sender and the request stream the transport reads from.
pub(crate) fn request_channel<T>() -> (mpsc::Sender<T>, ReceiverStream<T>) {
    let (sender, receiver) = mpsc::channel(STREAM_REQUEST_QUEUE_LEN);
    (sender, ReceiverStream::new(receiver))
}

/// Reads the next message of a response stream: `None` when the server ended it.
async fn next<T>(responses: &mut Streaming<T>) -> Result<Option<T>, ClientError> {
    responses.message().await.map_err(ClientError::from)
}

/// One `Watch` stream: many watchers, created and cancelled by requests on it.
#[derive(Debug)]
pub struct WatchStream {
    requests: mpsc::Sender<pb::WatchRequest>,
    responses: Streaming<pb::WatchResponse>,
}

impl WatchStream {
    pub(crate) fn new(
        requests: mpsc::Sender<pb::WatchRequest>,
        responses: Streaming<pb::WatchResponse>,
    ) -> WatchStream {
        WatchStream {
            requests,
            responses,
        }
    }

    /// Sends a request (create, cancel or progress) on the stream.
    pub async fn send(&mut self, request: pb::WatchRequest) -> Result<(), ClientError> {
        self.requests
            .send(request)
            .await
            .map_err(|_closed| ClientError::StreamClosed)
    }

    /// Asks for a new watcher.
    pub async fn create(&mut self, create: pb::WatchCreateRequest) -> Result<(), ClientError> {
        self.send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
        })
        .await
    }

    /// Asks the server to cancel watcher `watch_id`.
    pub async fn cancel(&mut self, watch_id: i64) -> Result<(), ClientError> {
        let cancel = pb::WatchCancelRequest { watch_id };
        self.send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CancelRequest(cancel)),
        })
        .await
    }

    /// The next response; `None` once the server has ended the stream.
    pub async fn message(&mut self) -> Result<Option<pb::WatchResponse>, ClientError> {
        next(&mut self.responses).await
    }
}

/// One `Lease.LeaseKeepAlive` stream.
#[derive(Debug)]
pub struct KeepAliveStream {
    requests: mpsc::Sender<pb::LeaseKeepAliveRequest>,
    responses: Streaming<pb::LeaseKeepAliveResponse>,
}

impl KeepAliveStream {
    pub(crate) fn new(
        requests: mpsc::Sender<pb::LeaseKeepAliveRequest>,
        responses: Streaming<pb::LeaseKeepAliveResponse>,
    ) -> KeepAliveStream {
        KeepAliveStream {
            requests,
            responses,
        }
    }

    /// Sends one keep-alive of lease `id`.
    pub async fn keep_alive(&mut self, id: i64) -> Result<(), ClientError> {
        self.requests
            .send(pb::LeaseKeepAliveRequest { id })
            .await
            .map_err(|_closed| ClientError::StreamClosed)
    }

    /// The next answer; `None` once the server has ended the stream.
    pub async fn message(&mut self) -> Result<Option<pb::LeaseKeepAliveResponse>, ClientError> {
        next(&mut self.responses).await
    }
}

/// A `Maintenance.Snapshot` download: the snapshot's bytes, in order, one chunk at a time.
#[derive(Debug)]
pub struct SnapshotStream {
    responses: Streaming<pb::SnapshotResponse>,
}

impl SnapshotStream {
    pub(crate) fn new(responses: Streaming<pb::SnapshotResponse>) -> SnapshotStream {
        SnapshotStream { responses }
    }

    /// The next chunk of bytes; `None` once the server has sent the whole snapshot.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(next(&mut self.responses).await?.map(|r| r.blob))
    }
}
