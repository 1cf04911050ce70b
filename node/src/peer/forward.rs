//! Requests a follower forwards to the leader over the peer URLs: lease keep-alives and
//! time-to-live queries, which only the leader's lessor can answer (etcd forwards them over
//! its peer HTTP transport, `leasehttp`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::api::cairnpb::{
    ForwardRenewRequest, ForwardTimeToLiveRequest, ForwardTimeToLiveResponse,
};
use tonic::Status;
use tonic::transport::Channel;

use crate::config::TlsSettings;

use super::pb::raft_client::RaftClient;

/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections to leaders, one per peer URL, made when first needed and shared by every
/// forwarded request.
#[derive(Clone, Default)]
pub struct LeaderClient {
    cluster_id: u64,
    tls: Option<Arc<TlsSettings>>,
    channels: Arc<Mutex<BTreeMap<String, Channel>>>,
}

impl LeaderClient {
    /// A client forwarding on behalf of a member of `cluster_id`, dialling `https://` peer
    /// URLs with `tls`.
    pub fn new(cluster_id: u64, tls: Option<Arc<TlsSettings>>) -> Self {
        LeaderClient {
            cluster_id,
            tls,
            channels: Arc::default(),
        }
    }

    /// Renews lease `id` on the leader at `url`: its TTL, 0 if it does not exist.
    pub async fn renew(&self, url: &str, id: i64) -> Result<i64, Status> {
        let request = ForwardRenewRequest {
            cluster_id: self.cluster_id,
            id,
        };
        let mut client = self.client(url).await?;
        let answer = client.forward_renew(request).await;
        Ok(self.forget_on_error(url, answer)?.into_inner().ttl)
    }

    /// Asks the leader at `url` how long lease `id` has left (TTL -1 if it does not exist).
    pub async fn time_to_live(
        &self,
        url: &str,
        id: i64,
        keys: bool,
    ) -> Result<ForwardTimeToLiveResponse, Status> {
        let request = ForwardTimeToLiveRequest {
            cluster_id: self.cluster_id,
            id,
            keys,
        };
        let mut client = self.client(url).await?;
        let answer = client.forward_time_to_live(request).await;
        Ok(self.forget_on_error(url, answer)?.into_inner())
    }

    async fn client(&self, url: &str) -> Result<RaftClient<Channel>, Status> {
        let cached = self.lock().get(url).cloned();
        let channel = match cached {
            Some(channel) => channel,
            None => {
                let endpoint = crate::tls::peer_endpoint(url, self.tls.as_deref())
                    .map_err(|e| Status::unavailable(format!("bad peer URL {url}: {e}")))?
                    .connect_timeout(CONNECT_TIMEOUT);
                let channel = endpoint.connect().await.map_err(|e| {
                    Status::unavailable(format!("leader at {url} unreachable: {e}"))
                })?;
                self.lock().insert(url.to_owned(), channel.clone());
                channel
            }
        };
        Ok(RaftClient::new(channel))
    }

    /// Passes `answer` on; a transport failure drops the cached connection to `url`.
    fn forget_on_error<T>(&self, url: &str, answer: Result<T, Status>) -> Result<T, Status> {
        if answer
            .as_ref()
            .is_err_and(|s| s.code() == tonic::Code::Unavailable)
        {
            self.lock().remove(url);
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Channel>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
