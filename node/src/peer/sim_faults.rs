//! Simulation-only faults on Raft traffic: loss, duplication, reordering and delay of the
//! batches a [`super::link::Link`] sends. Compiled only under madsim.
//!
//! madsim's streams never lose or reorder bytes (a "clog" only stalls them), so a network
//! that loses packets has to be modelled above the transport. cairn-sim sets a
//! [`MessageFaults`] for the whole simulated cluster; every outbound batch then draws its fate
//! from madsim's seeded rng. Raft must tolerate every fate: a lost batch is a lost packet, a
//! late copy is a duplicate or a reordering, an inline delay is a slow link. A duplicate
//! never repeats a forwarded proposal (`MsgPropose`): Raft does not deduplicate proposals
//! (nor does etcd), and cairn's transport never sends a batch twice, so a repeated proposal
//! would be a fault no deployment can have. The setting is thread-local: a simulated cluster
//! runs on one thread, and parallel seeds on different ones.

use std::cell::Cell;
use std::time::Duration;

use cairn_core::api::cairnpb::RaftBatch;
use madsim::rand::Rng as _;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tonic::transport::Endpoint;

use super::pb::raft_client::RaftClient;

/// How often each fate befalls a batch, per thousand batches; the rest are delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageFaults {
    /// Lost: never arrives, and the sender believes it was delivered.
    pub drop_per_mille: u32,
    /// Delivered now and once more, later.
    pub duplicate_per_mille: u32,
    /// Delivered only later, after batches sent behind it.
    pub reorder_per_mille: u32,
    /// Held up (with every batch behind it on the link) before delivery.
    pub delay_per_mille: u32,
    /// Upper bound of a late copy's or a hold-up's delay.
    pub max_delay: Duration,
}

impl MessageFaults {
    /// Whether every batch is delivered as sent.
    pub fn is_none(&self) -> bool {
        self.drop_per_mille == 0
            && self.duplicate_per_mille == 0
            && self.reorder_per_mille == 0
            && self.delay_per_mille == 0
    }
}

thread_local! {
    static FAULTS: Cell<MessageFaults> = Cell::new(MessageFaults::default());
}

/// Sets the faults for every link of the simulation running on this thread.
pub fn set(faults: MessageFaults) {
    FAULTS.with(|f| f.set(faults));
}

/// The faults in force.
pub fn current() -> MessageFaults {
    FAULTS.with(Cell::get)
}

/// Applies this batch's fate. `None`: send it now as usual (after any hold-up).
/// `Some(delivered)`: do not send it; report `delivered` to the link.
pub(super) async fn intercept(url: &str, request: &RaftBatch) -> Option<bool> {
    let faults = current();
    if faults.is_none() {
        return None;
    }
    let mut rng = madsim::rand::thread_rng();
    let roll = rng.gen_range(0..1000);
    let delay = rng.gen_range(Duration::ZERO..=faults.max_delay);
    let mut bound = faults.drop_per_mille;
    if roll < bound {
        return Some(true);
    }
    bound += faults.duplicate_per_mille;
    if roll < bound {
        send_late(url, &without_proposals(request), delay);
        return None;
    }
    bound += faults.reorder_per_mille;
    if roll < bound {
        send_late(url, request, delay);
        return Some(true);
    }
    bound += faults.delay_per_mille;
    if roll < bound {
        tokio::time::sleep(delay).await;
    }
    None
}

/// Whether a streamed snapshot is lost on the way (as often as a batch is dropped); the
/// sender then learns of the failure, as a broken stream tells it.
pub(super) fn lose_snapshot() -> bool {
    let faults = current();
    faults.drop_per_mille > 0
        && madsim::rand::thread_rng().gen_range(0..1000) < faults.drop_per_mille
}

/// `request` without its forwarded proposals.
fn without_proposals(request: &RaftBatch) -> RaftBatch {
    let mut copy = request.clone();
    copy.messages.retain(|bytes| {
        !Message::parse_from_bytes(bytes).is_ok_and(|m| m.get_msg_type() == MessageType::MsgPropose)
    });
    copy
}

/// Sends a copy of `request` after `delay` on a connection of its own.
fn send_late(url: &str, request: &RaftBatch, delay: Duration) {
    if request.messages.is_empty() {
        return;
    }
    let (url, request) = (url.to_owned(), request.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Ok(endpoint) = Endpoint::from_shared(url) else {
            return;
        };
        if let Ok(channel) = endpoint.connect().await {
            let _ = RaftClient::new(channel).send(request).await;
        }
    });
}
