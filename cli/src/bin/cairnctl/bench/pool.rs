//! The benchmark's connections: `--conns` clients of [`cairn_client::Client`], each its
//! own HTTP/2 connection, dialled to the endpoints in turn (etcd's `mustCreateConn`), or
//! all to the leader's client URL with `--target-leader`. Benchmark clients share them:
//! client `i` uses connection `i % conns`.

use std::sync::Arc;

use cairn_client::pb::etcdserverpb::{MemberListRequest, StatusRequest};
use cairn_client::{Client, ConnectOptions};

use super::BenchOptions;
use crate::exit::CliError;

/// The connections of one benchmark run.
pub struct Pool {
    conns: Vec<Arc<Client>>,
}

impl Pool {
    /// Dials `options.conns` connections.
    pub async fn connect(options: &BenchOptions) -> Result<Pool, CliError> {
        let connect = ConnectOptions {
            dial_timeout: options.dial_timeout,
            request_timeout: None,
            tls: options.tls.clone(),
        };
        let endpoints = match options.target_leader {
            true => leader_endpoints(&options.endpoints, &connect).await?,
            false => options.endpoints.clone(),
        };
        if endpoints.is_empty() {
            return Err(CliError::error("no endpoints to benchmark"));
        }
        let mut conns = Vec::with_capacity(options.conns);
        for i in 0..options.conns {
            let endpoint = endpoints[i % endpoints.len()].clone();
            let client = Client::connect_with(&[endpoint], connect.clone())
                .await
                .map_err(|e| CliError::error(format!("dial error: {e}")))?;
            conns.push(Arc::new(client));
        }
        Ok(Pool { conns })
    }

    /// The connection benchmark client `i` uses.
    pub fn client(&self, i: usize) -> Arc<Client> {
        self.conns[i % self.conns.len()].clone()
    }
}

/// The client URLs of the current leader (etcd's `mustFindLeaderEndpoints`).
async fn leader_endpoints(
    endpoints: &[String],
    connect: &ConnectOptions,
) -> Result<Vec<String>, CliError> {
    let fail = |why: String| CliError::error(format!("failed to find a leader endpoint: {why}"));
    let client = Client::connect_with(endpoints, connect.clone())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = client
        .maintenance_status(StatusRequest::default())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let members = client
        .cluster_member_list(MemberListRequest::default())
        .await
        .map_err(|e| fail(e.to_string()))?;
    members
        .members
        .into_iter()
        .find(|m| m.id == status.leader)
        .map(|m| m.client_ur_ls)
        .filter(|urls| !urls.is_empty())
        .ok_or_else(|| {
            fail(format!(
                "no member with the leader's ID {:x}",
                status.leader
            ))
        })
}
