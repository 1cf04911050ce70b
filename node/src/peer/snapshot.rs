//! Raft snapshots between members as a stream of chunks (etcd's rafthttp snapshot sender and
//! receiver).
//!
//! A snapshot carries the whole state machine, so it never travels inside a [`RaftBatch`]:
//! the sending link hands it to a task of its own on a connection of its own, which streams
//! it in [`CHUNK_BYTES`] pieces while heartbeats and appends to the same member go on. The
//! receiver reassembles the data, refuses it if it is longer than announced, larger than the
//! member accepts, or fails its checksum, and only then gives the message to Raft. Either
//! way the sender reports the outcome to Raft (`report_snapshot`), which sends a new one
//! after a failure.
//!
//! [`RaftBatch`]: cairn_core::api::cairnpb::RaftBatch

use std::time::Duration;

use cairn_core::api::cairnpb::SnapshotChunk;
use protobuf::Message as _;
use raft::eraftpb::Message;

use crate::config::TlsSettings;
use tonic::{Status, Streaming};

use super::pb::raft_client::RaftClient;

/// Snapshot bytes per streamed chunk.
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Time allowed to connect, plus this much per MiB of snapshot, before a send counts as lost.
const BASE_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT_PER_MIB: Duration = Duration::from_millis(250);

/// Who sends a snapshot to whom.
#[derive(Debug, Clone, Copy)]
pub(super) struct Route {
    pub cluster_id: u64,
    pub from: u64,
    pub to: u64,
}

/// Splits a `MsgSnapshot` into the chunks that carry it.
pub(super) fn chunks(route: Route, mut message: Message) -> Vec<SnapshotChunk> {
    let data = message.mut_snapshot().take_data();
    let header = message.write_to_bytes().unwrap_or_default();
    let total_bytes = data.len() as u64;
    let mut pieces: Vec<SnapshotChunk> = data
        .chunks(CHUNK_BYTES)
        .map(|piece| SnapshotChunk {
            data: piece.to_vec(),
            ..SnapshotChunk::default()
        })
        .collect();
    if pieces.is_empty() {
        pieces.push(SnapshotChunk::default());
    }
    let first = &mut pieces[0];
    first.cluster_id = route.cluster_id;
    first.from = route.from;
    first.to = route.to;
    first.message = header;
    first.total_bytes = total_bytes;
    pieces
}

/// Streams `message` (a `MsgSnapshot`) to the member at `url`; whether it was accepted.
pub(super) async fn send(
    route: Route,
    url: String,
    message: Message,
    max_message_bytes: usize,
    tls: Option<&TlsSettings>,
) -> bool {
    #[cfg(madsim)]
    if super::sim_faults::lose_snapshot() {
        return false;
    }
    let pieces = chunks(route, message);
    let mib = pieces.iter().map(|c| c.data.len()).sum::<usize>() / (1024 * 1024);
    let timeout = BASE_TIMEOUT + TIMEOUT_PER_MIB * u32::try_from(mib).unwrap_or(u32::MAX);
    let attempt = async {
        let endpoint = crate::tls::peer_endpoint(&url, tls)
            .ok()?
            .connect_timeout(BASE_TIMEOUT);
        let channel = endpoint.connect().await.ok()?;
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(CHUNK_BYTES * 2);
        match client.send_snapshot(futures::stream::iter(pieces)).await {
            Ok(_) => Some(()),
            Err(status) => {
                tracing::warn!(to = format_args!("{:x}", route.to), %status, "snapshot refused");
                None
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Some(())) => {
            tracing::info!(to = format_args!("{:x}", route.to), "sent a raft snapshot");
            true
        }
        Ok(None) => false,
        Err(_) => {
            tracing::warn!(
                to = format_args!("{:x}", route.to),
                ?timeout,
                "snapshot send timed out"
            );
            false
        }
    }
}

/// Reassembles a streamed snapshot addressed to `member_id` of `cluster_id`: the
/// `MsgSnapshot` with its data, checksum verified.
pub(super) async fn receive(
    cluster_id: u64,
    member_id: u64,
    max_bytes: usize,
    mut stream: Streaming<SnapshotChunk>,
) -> Result<Message, Status> {
    let Some(first) = stream.message().await? else {
        return Err(Status::invalid_argument("empty snapshot stream"));
    };
    super::check_route(
        cluster_id,
        member_id,
        first.cluster_id,
        first.from,
        first.to,
    )?;
    let from = first.from;
    let total = usize::try_from(first.total_bytes).unwrap_or(usize::MAX);
    if total > max_bytes {
        return Err(Status::resource_exhausted(format!(
            "snapshot of {total} bytes exceeds this member's limit of {max_bytes} bytes"
        )));
    }
    let mut message = Message::parse_from_bytes(&first.message)
        .map_err(|e| Status::invalid_argument(format!("undecodable snapshot message: {e}")))?;
    if message.get_msg_type() != raft::eraftpb::MessageType::MsgSnapshot {
        return Err(Status::invalid_argument(
            "snapshot stream without a snapshot message",
        ));
    }
    let mut data = Vec::with_capacity(total);
    let mut next = Some(first);
    while let Some(chunk) = next {
        if data.len() + chunk.data.len() > total {
            return Err(Status::invalid_argument(format!(
                "snapshot stream longer than the announced {total} bytes"
            )));
        }
        data.extend_from_slice(&chunk.data);
        next = stream.message().await?;
    }
    if data.len() != total {
        return Err(Status::invalid_argument(format!(
            "snapshot stream ended after {} of {total} bytes",
            data.len()
        )));
    }
    message.mut_snapshot().set_data(data.into());
    super::check_snapshot(&message, from)?;
    tracing::info!(
        from = format_args!("{from:x}"),
        index = message.get_snapshot().get_metadata().index,
        bytes = total,
        "received a raft snapshot"
    );
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    fn snapshot_message(len: usize) -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgSnapshot);
        message.from = 1;
        message.to = 2;
        message.mut_snapshot().mut_metadata().index = 42;
        message.mut_snapshot().set_data(
            (0..len)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>()
                .into(),
        );
        message
    }

    fn route() -> Route {
        Route {
            cluster_id: 7,
            from: 1,
            to: 2,
        }
    }

    #[test]
    fn chunks_carry_the_data_in_order_and_the_header_once() {
        let message = snapshot_message(CHUNK_BYTES * 2 + 10);
        let expected = message.get_snapshot().data.clone();
        let pieces = chunks(route(), message);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0].total_bytes, expected.len() as u64);
        assert!(!pieces[0].message.is_empty());
        assert!(
            pieces[1..]
                .iter()
                .all(|c| c.message.is_empty() && c.cluster_id == 0)
        );
        let joined: Vec<u8> = pieces.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, expected.to_vec());
        let header = Message::parse_from_bytes(&pieces[0].message).unwrap();
        assert!(header.get_snapshot().data.is_empty());
        assert_eq!(header.get_snapshot().get_metadata().index, 42);
    }

    #[test]
    fn an_empty_snapshot_is_one_chunk() {
        let pieces = chunks(route(), snapshot_message(0));
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].total_bytes, 0);
        assert_eq!(pieces[0].to, 2);
    }
}
