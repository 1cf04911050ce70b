//! Joining an existing cluster (`--initial-cluster-state existing`), as etcd's documented
//! procedure: the member was first added with `member add`; at its first start it asks the
//! members named in `--initial-cluster` for the cluster id and member list, finds itself by
//! its advertised peer URLs, and starts with an empty log that the leader fills.

use std::time::Duration;

use cairn_core::api::cairnpb::MembersRequest;
use cairn_core::membership::ClusterState;

use crate::NodeError;
use crate::config::{Config, TlsSettings};
use crate::peer::pb::raft_client::RaftClient;

const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The membership of the cluster this member joins.
pub async fn existing_cluster(config: &Config) -> Result<ClusterState, NodeError> {
    let mut failures = Vec::new();
    for (name, url) in config
        .initial_cluster
        .iter()
        .filter(|(name, _)| name != &config.name)
    {
        match ask(url, config.peer_tls.as_ref()).await {
            Ok(mut cluster) => {
                let me = cluster
                    .members
                    .iter_mut()
                    .find(|m| m.peer_urls.iter().any(|u| config.advertise_peer_urls.contains(u)))
                    .ok_or_else(|| {
                        NodeError::Join(format!(
                            "peer URLs {:?} are not in the member list of cluster {:x}; add this member first \
                             (`cairnctl member add {} --peer-urls={}`)",
                            config.advertise_peer_urls,
                            cluster.cluster_id,
                            config.name,
                            config.advertise_peer_urls.join(",")
                        ))
                    })?;
                // Name and client URLs reach the cluster through `publish`, like every
                // other replicated change.
                cluster.local_id = me.id;
                return Ok(cluster);
            }
            Err(reason) => failures.push(format!("{name} ({url}): {reason}")),
        }
    }
    Err(NodeError::Join(format!(
        "no member of --initial-cluster answered: {}",
        failures.join("; ")
    )))
}

async fn ask(url: &str, tls: Option<&TlsSettings>) -> Result<ClusterState, String> {
    let endpoint = crate::tls::peer_endpoint(url, tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(ASK_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let mut client = RaftClient::new(channel);
    let response = tokio::time::timeout(ASK_TIMEOUT, client.members(MembersRequest {}))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|status| status.message().to_string())?
        .into_inner();
    let mut members = response.members;
    members.sort_by_key(|m| m.id);
    Ok(ClusterState {
        cluster_id: response.cluster_id,
        local_id: 0,
        members,
        removed: Vec::new(),
    })
}
