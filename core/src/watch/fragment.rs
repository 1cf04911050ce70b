//! Splitting one large watch response into fragments, for watchers created with
//! `fragment = true` (etcd's `sendFragments` in `etcdserver/api/v3rpc/watch.go`).
//!
//! A response is sent whole when its encoded size is below the limit or it has fewer than
//! two events. Otherwise events are packed in order into fragments: an event that takes a
//! fragment of two or more events to `>= max_bytes` starts the next fragment (so a fragment
//! holds at least one event, even one larger than the limit). Every fragment but the last
//! has `fragment = true`; all carry the original header and watch id, and the client
//! reassembles them into one response.

use prost::Message as _;

use crate::api::etcdserverpb::WatchResponse;
use crate::api::mvccpb::Event;

/// The field number of `WatchResponse.events`.
const EVENTS_FIELD: u32 = 11;

/// `response` as the fragments etcd would send for a limit of `max_bytes`.
pub fn split(response: WatchResponse, max_bytes: usize) -> Vec<WatchResponse> {
    if response.encoded_len() < max_bytes || response.events.len() < 2 {
        return vec![response];
    }
    let mut template = response;
    let events = std::mem::take(&mut template.events);
    template.fragment = true;
    let empty_bytes = template.encoded_len();
    let mut fragments = Vec::new();
    let mut current = template.clone();
    let mut current_bytes = empty_bytes;
    for event in events {
        let event_bytes = event_field_len(&event);
        let overflows = !current.events.is_empty() && current_bytes + event_bytes >= max_bytes;
        if overflows {
            fragments.push(std::mem::replace(&mut current, template.clone()));
            current_bytes = empty_bytes;
        }
        current_bytes += event_bytes;
        current.events.push(event);
    }
    current.fragment = false;
    fragments.push(current);
    fragments
}

/// The bytes one event adds to an encoded response (tag, length prefix, body).
fn event_field_len(event: &Event) -> usize {
    prost::encoding::message::encoded_len(EVENTS_FIELD, event)
}
