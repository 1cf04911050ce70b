//! The Lock service: Lock, Unlock (etcd `etcdserver/api/v3lock/lock.go` over
//! `clientv3/concurrency/mutex.go`), built on the member's own KV, Lease and Watch exactly
//! as etcd builds it.
//!
//! A waiter's key is `<name>/<lease id in hex>`, empty, attached to its lease (a lease of
//! 60 s is granted when the request names none, and nothing keeps it alive). The waiter
//! whose key has the lowest create revision holds the lock; Lock returns once every key
//! created before the waiter's is gone. If waiting fails, or the client goes away first,
//! the waiter's key is deleted, as etcd's `Mutex.Lock` does. Unlock deletes the key it is
//! given. Errors reach the client as etcd's lock server sends them: code `Unknown` and
//! etcd's message.

use cairn_core::api::etcdserverpb::ResponseHeader;
use cairn_core::api::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use cairn_core::concurrency as recipe;
use tonic::{Request, Response, Status};

use super::concurrency::{Requester, detached, recipe_error, session_lease, wait_deletes};
use super::lock_pb::lock_server::Lock;
use super::v3client::LocalClient;
use crate::server::Handle;

/// The Lock service of one member.
#[derive(Clone)]
pub struct LockService {
    handle: Handle,
    client: LocalClient,
}

impl LockService {
    /// A Lock service answering through `client`, the member's own client.
    pub fn new(handle: Handle, client: LocalClient) -> LockService {
        LockService { handle, client }
    }
}

/// `Lock.Lock` on a task of its own (see [`super::concurrency`]).
async fn lock(client: LocalClient, req: LockRequest, mut requester: Requester<LockResponse>) {
    let (key, revision) = match enqueue(&client, &req).await {
        Ok(Queued::Owner { key, header }) => {
            return requester.answer(Ok(LockResponse {
                header: Some(header),
                key,
            }));
        }
        Ok(Queued::Waiting { key, revision }) => (key, revision),
        Err(status) => return requester.answer(Err(status)),
    };
    let prefix = recipe::key_prefix(&req.name);
    let waited = requester
        .unless_gone(wait_deletes(&client, &prefix, revision - 1))
        .await;
    match waited {
        Some(Ok(header)) => requester.answer(Ok(LockResponse {
            header: Some(header),
            key,
        })),
        Some(Err(status)) => {
            release(&client, key).await;
            requester.answer(Err(status));
        }
        None => release(&client, key).await,
    }
}

/// Where a waiter stands after its transaction.
enum Queued {
    /// It holds the lock already.
    Owner {
        key: Vec<u8>,
        header: ResponseHeader,
    },
    /// It waits for the keys created before `revision`.
    Waiting { key: Vec<u8>, revision: i64 },
}

/// Creates the waiter's key (or finds it, when the lease has one already) and reads the
/// lock's owner in the same transaction.
async fn enqueue(client: &LocalClient, req: &LockRequest) -> Result<Queued, Status> {
    let lease = session_lease(client, req.lease).await?;
    let prefix = recipe::key_prefix(&req.name);
    let key = recipe::session_key(&prefix, lease);
    let answer = client.txn(recipe::lock(&key, &prefix, lease)).await?;
    let found = recipe::locked(&answer).map_err(recipe_error)?;
    Ok(match found.owner {
        true => Queued::Owner {
            key,
            header: answer.header.unwrap_or_default(),
        },
        false => Queued::Waiting {
            key,
            revision: found.revision,
        },
    })
}

/// Deletes an abandoned waiter's key (`Mutex.Unlock` on the client's context).
async fn release(client: &LocalClient, key: Vec<u8>) {
    if let Err(status) = client.delete(key).await {
        tracing::debug!(%status, "deleting an abandoned lock key failed");
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, request: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let (requester, answer) = detached();
        tokio::spawn(lock(self.client.clone(), request.into_inner(), requester));
        Ok(Response::new(answer.wait().await?))
    }

    async fn unlock(
        &self,
        request: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        super::require_leader(&self.handle, &request)?;
        let deleted = self.client.delete(request.into_inner().key).await?;
        Ok(Response::new(UnlockResponse {
            header: deleted.header,
        }))
    }
}
