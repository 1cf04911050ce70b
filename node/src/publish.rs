//! Publishing this member's name and client URLs to the cluster (etcd's `publishV3`): until
//! the replicated member record carries them, other members list this one without client
//! URLs (`unstarted` for a member that joined). The attributes travel as a configuration
//! change that re-adds the member in its current role, which changes nothing in Raft.

use std::time::Duration;

use cairn_core::api::cairnpb::MemberRecord;
use cairn_core::replica::single_change;
use raft::eraftpb::ConfChangeType;
use tokio::sync::watch;

use crate::server::Handle;

/// Pause between attempts (no leader yet, or another change was in flight).
const RETRY: Duration = Duration::from_millis(200);
/// How long one attempt may wait for its change to apply.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes `name` and `client_urls` until the applied membership shows them, or shutdown.
pub async fn run(
    handle: Handle,
    name: String,
    client_urls: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = handle.identity().member_id;
    loop {
        let cluster = handle.cluster();
        let Some(current) = cluster.member(id) else {
            return;
        };
        if current.name == name && current.client_urls == client_urls {
            return;
        }
        if handle.raft_status().leader != 0 {
            let kind = if current.is_learner {
                ConfChangeType::AddLearnerNode
            } else {
                ConfChangeType::AddNode
            };
            let record = MemberRecord {
                id,
                name: name.clone(),
                client_urls: client_urls.clone(),
                ..Default::default()
            };
            // Raft takes one membership change at a time and silently drops a second one;
            // a short wait and a retry cover that.
            let attempt = handle.change_membership(single_change(kind, id), record);
            match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "publishing member attributes failed; retrying")
                }
                Err(_) => tracing::debug!("publishing member attributes timed out; retrying"),
            }
        }
        select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}
