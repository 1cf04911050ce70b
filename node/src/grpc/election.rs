//! The Election service: Campaign, Proclaim, Leader, Observe, Resign (etcd
//! `etcdserver/api/v3election/election.go` over `clientv3/concurrency/election.go`), built
//! on the member's own KV, Lease and Watch exactly as etcd builds it.
//!
//! A contender's key is `<name>/<lease id in hex>`, attached to its lease (a lease of 60 s
//! is granted when the request names none, and nothing keeps it alive). The leader is the
//! key under the prefix with the lowest create revision. Campaign returns once every key
//! created before the contender's is gone; if the client goes away first, the contender
//! resigns (its key is deleted). Every error reaches the client as etcd's election server
//! sends it: code `Unknown` and etcd's message.

use std::pin::Pin;

use cairn_core::api::etcdserverpb::{ResponseHeader, WatchCreateRequest};
use cairn_core::api::mvccpb::KeyValue;
use cairn_core::api::mvccpb::event::EventType;
use cairn_core::api::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use cairn_core::concurrency as recipe;
use futures::Stream;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::concurrency::{
    RecipeError, Requester, detached, recipe_error, session_lease, wait_deletes,
};
use super::election_pb::election_server::Election;
use super::v3client::LocalClient;
use crate::server::Handle;

/// Leader changes queued per Observe stream for the client.
pub const OBSERVE_SEND_QUEUE_LEN: usize = 16;

/// The stream of an Observe call.
pub type ObserveStream =
    Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send + 'static>>;

/// The Election service of one member.
#[derive(Clone)]
pub struct ElectionService {
    handle: Handle,
    client: LocalClient,
}

impl ElectionService {
    /// An Election service answering through `client`, the member's own client.
    pub fn new(handle: Handle, client: LocalClient) -> ElectionService {
        ElectionService { handle, client }
    }
}

/// A contender's key, as `ResumeElection` knows it.
struct Contender {
    key: Vec<u8>,
    revision: i64,
    lease: i64,
}

impl Contender {
    /// `Election.Proclaim`: a new value, if the key is still the one created at `revision`.
    async fn proclaim(&self, client: &LocalClient, value: &[u8]) -> Result<ResponseHeader, Status> {
        let txn = recipe::proclaim(&self.key, self.revision, value, self.lease);
        let answer = client.txn(txn).await?;
        if !answer.succeeded {
            return Err(recipe_error(RecipeError::NotLeader));
        }
        Ok(answer.header.unwrap_or_default())
    }

    /// `Election.Resign`: deletes the key if it is still the one created at `revision`.
    async fn resign(&self, client: &LocalClient) -> Result<ResponseHeader, Status> {
        let answer = client.txn(recipe::resign(&self.key, self.revision)).await?;
        Ok(answer.header.unwrap_or_default())
    }
}

/// `Election.Campaign` on a task of its own (see [`super::concurrency`]).
async fn campaign(
    client: LocalClient,
    req: CampaignRequest,
    mut requester: Requester<CampaignResponse>,
) {
    let (contender, header) = match enter(&client, &req).await {
        Ok(entered) => entered,
        Err(status) => return requester.answer(Err(status)),
    };
    let prefix = recipe::key_prefix(&req.name);
    let waited = requester
        .unless_gone(wait_deletes(&client, &prefix, contender.revision - 1))
        .await;
    match waited {
        Some(Ok(_)) => requester.answer(Ok(CampaignResponse {
            header: Some(header),
            leader: Some(LeaderKey {
                name: req.name,
                key: contender.key,
                rev: contender.revision,
                lease: contender.lease,
            }),
        })),
        Some(Err(status)) => requester.answer(Err(status)),
        // etcd resigns when the campaign's context is cancelled while it waits.
        None => {
            if let Err(status) = contender.resign(&client).await {
                tracing::debug!(%status, "resigning an abandoned campaign failed");
            }
        }
    }
}

/// The first half of a campaign: creates the contender's key (or takes it over, with the
/// new value, when the lease already has one) and returns it with the header of the
/// transaction.
async fn enter(
    client: &LocalClient,
    req: &CampaignRequest,
) -> Result<(Contender, ResponseHeader), Status> {
    let lease = session_lease(client, req.lease).await?;
    let key = recipe::session_key(&recipe::key_prefix(&req.name), lease);
    let answer = client
        .txn(recipe::campaign(&key, &req.value, lease))
        .await?;
    let found = recipe::campaigned(&answer).map_err(recipe_error)?;
    let contender = Contender {
        key,
        revision: found.revision,
        lease,
    };
    if found.existing_value.is_some_and(|v| v != req.value)
        && let Err(status) = contender.proclaim(client, &req.value).await
    {
        let _ = contender.resign(client).await;
        return Err(status);
    }
    Ok((contender, answer.header.unwrap_or_default()))
}

/// `ResumeElection` from a request's leader key.
async fn resume(client: &LocalClient, leader: Option<LeaderKey>) -> Result<Contender, Status> {
    let leader = leader.ok_or_else(|| recipe_error(RecipeError::MissingLeaderKey))?;
    Ok(Contender {
        lease: session_lease(client, leader.lease).await?,
        key: leader.key,
        revision: leader.rev,
    })
}

/// The current leader's key of the election with `prefix`, with the read's header.
async fn leader(
    client: &LocalClient,
    prefix: &[u8],
) -> Result<(ResponseHeader, Option<KeyValue>), Status> {
    let found = client.range(recipe::first_created(prefix)).await?;
    Ok((
        found.header.unwrap_or_default(),
        found.kvs.into_iter().next(),
    ))
}

/// clientv3's `Election.observe`: sends the leader, every new value it proclaims, and each
/// next leader, until a read or a watch fails (the stream then ends) or the client goes.
async fn observe(
    client: LocalClient,
    prefix: Vec<u8>,
    out: mpsc::Sender<Result<LeaderResponse, Status>>,
) {
    let following = async {
        loop {
            let Ok((header, found)) = leader(&client, &prefix).await else {
                return;
            };
            let (header, kv) = match found {
                Some(kv) => (header, kv),
                None => match first_put(&client, &prefix, header.revision).await {
                    Some(first) => first,
                    None => return,
                },
            };
            if !follow(&client, header, kv, &out).await {
                return;
            }
        }
    };
    select! {
        _ = out.closed() => {}
        _ = following => {}
    }
}

/// Waits for the first key put under `prefix` from `revision` on: the header (at the put's
/// revision) and the key.
async fn first_put(
    client: &LocalClient,
    prefix: &[u8],
    revision: i64,
) -> Option<(ResponseHeader, KeyValue)> {
    let (key, range_end) = recipe::prefix_range(prefix);
    let mut watch = client.watch(&WatchCreateRequest {
        key,
        range_end,
        start_revision: revision,
        ..WatchCreateRequest::default()
    });
    loop {
        let response = watch.next().await.ok()?;
        if response.canceled {
            return None;
        }
        let put = response
            .events
            .into_iter()
            .find(|e| e.r#type == EventType::Put as i32)
            .and_then(|e| e.kv);
        if let Some(kv) = put {
            let header = ResponseHeader {
                revision: kv.mod_revision,
                ..response.header.unwrap_or_default()
            };
            return Some((header, kv));
        }
    }
}

/// Sends leader `kv` and then each new value of its key until the key is deleted (true) or
/// the watch or the client fails (false).
async fn follow(
    client: &LocalClient,
    header: ResponseHeader,
    kv: KeyValue,
    out: &mpsc::Sender<Result<LeaderResponse, Status>>,
) -> bool {
    let start_revision = header.revision + 1;
    let key = kv.key.clone();
    let first = LeaderResponse {
        header: Some(header),
        kv: Some(kv),
    };
    if out.send(Ok(first)).await.is_err() {
        return false;
    }
    let mut watch = client.watch(&WatchCreateRequest {
        key,
        start_revision,
        ..WatchCreateRequest::default()
    });
    loop {
        let Ok(response) = watch.next().await else {
            return false;
        };
        if response.canceled {
            return false;
        }
        for event in response.events {
            if event.r#type == EventType::Delete as i32 {
                return true;
            }
            let update = LeaderResponse {
                header: response.header,
                kv: event.kv,
            };
            if out.send(Ok(update)).await.is_err() {
                return false;
            }
        }
    }
}

/// The responses of a queue, until its sender is gone.
fn queue_stream(
    responses: mpsc::Receiver<Result<LeaderResponse, Status>>,
) -> impl Stream<Item = Result<LeaderResponse, Status>> + Send + 'static {
    futures::stream::unfold(responses, |mut responses| async move {
        responses.recv().await.map(|item| (item, responses))
    })
}

#[tonic::async_trait]
impl Election for ElectionService {
    type ObserveStream = ObserveStream;

    async fn campaign(
        &self,
        request: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let (requester, answer) = detached();
        tokio::spawn(campaign(
            self.client.clone(),
            request.into_inner(),
            requester,
        ));
        Ok(Response::new(answer.wait().await?))
    }

    async fn proclaim(
        &self,
        request: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let req = request.into_inner();
        let contender = resume(&self.client, req.leader).await?;
        let header = contender.proclaim(&self.client, &req.value).await?;
        Ok(Response::new(ProclaimResponse {
            header: Some(header),
        }))
    }

    async fn leader(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let prefix = recipe::key_prefix(&request.into_inner().name);
        match leader(&self.client, &prefix).await? {
            (header, Some(kv)) => Ok(Response::new(LeaderResponse {
                header: Some(header),
                kv: Some(kv),
            })),
            (_, None) => Err(recipe_error(RecipeError::NoLeader)),
        }
    }

    async fn observe(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        super::require_leader(&self.handle, &request)?;
        let prefix = recipe::key_prefix(&request.into_inner().name);
        let (out, responses) = mpsc::channel(OBSERVE_SEND_QUEUE_LEN);
        tokio::spawn(observe(self.client.clone(), prefix, out));
        Ok(Response::new(Box::pin(queue_stream(responses))))
    }

    async fn resign(
        &self,
        request: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let contender = resume(&self.client, request.into_inner().leader).await?;
        let header = contender.resign(&self.client).await?;
        Ok(Response::new(ResignResponse {
            header: Some(header),
        }))
    }
}
