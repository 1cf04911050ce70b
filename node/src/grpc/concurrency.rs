//! etcd's `clientv3/concurrency` sessions and waiting (`session.go`, `key.go`) over the
//! member's [`LocalClient`], for the Election and Lock services; the requests themselves are
//! [`cairn_core::concurrency`]'s.
//!
//! etcd serves a blocking Campaign or Lock on the request's context and cleans up when that
//! context is cancelled (the client went away): Campaign resigns, Lock deletes its key.
//! Here the work runs on a task of its own that answers through a [`Requester`]; the task
//! sees the requester go away (the handler future was dropped) and cleans up the same way.

use std::future::Future;

use cairn_core::api::etcdserverpb::{ResponseHeader, WatchCreateRequest};
use cairn_core::api::mvccpb::event::EventType;
use cairn_core::concurrency::{self as recipe, DEFAULT_SESSION_TTL_SECS};
use tokio::sync::oneshot;
use tonic::Status;

use super::status::{from_core, from_recipe, from_server, through_client};
use super::v3client::LocalClient;
use crate::server::ServerError;

/// Why an election or lock request failed in the recipe itself (clientv3/concurrency's
/// and etcd's election server's own errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    /// Proclaim by a contender whose key is gone or was re-created (`ErrElectionNotLeader`).
    #[error("election: not leader")]
    NotLeader,
    /// No key under the election's prefix (`ErrElectionNoLeader`).
    #[error("election: no leader")]
    NoLeader,
    /// Proclaim or Resign without a leader key (`ErrMissingLeaderKey`).
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
    /// A transaction answered in a shape its request cannot produce.
    #[error("unexpected transaction response")]
    Malformed(#[from] recipe::Malformed),
}

/// The lease of a session: `lease` itself, or a new lease of the default TTL when it is 0
/// (clientv3's `NewSession` with `WithLease`; the server orphans the session at once, so
/// nothing keeps the lease alive).
pub async fn session_lease(client: &LocalClient, lease: i64) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    Ok(client.grant(DEFAULT_SESSION_TTL_SECS).await?.id)
}

/// `waitDeletes`: waits until no key under `prefix` created at or before
/// `max_create_revision` is left; the header of the read that found none.
pub async fn wait_deletes(
    client: &LocalClient,
    prefix: &[u8],
    max_create_revision: i64,
) -> Result<ResponseHeader, Status> {
    loop {
        let found = client
            .range(recipe::last_created_at_most(prefix, max_create_revision))
            .await?;
        let header = found.header.unwrap_or_default();
        let Some(last) = found.kvs.into_iter().next() else {
            return Ok(header);
        };
        wait_delete(client, last.key, header.revision).await?;
    }
}

/// `waitDelete`: waits for a delete of `key` at or after `revision`.
async fn wait_delete(client: &LocalClient, key: Vec<u8>, revision: i64) -> Result<(), Status> {
    let mut watch = client.watch(&WatchCreateRequest {
        key,
        start_revision: revision,
        ..WatchCreateRequest::default()
    });
    loop {
        let response = watch.next().await?;
        let deleted = response
            .events
            .iter()
            .any(|e| e.r#type == EventType::Delete as i32);
        if deleted {
            return Ok(());
        }
        if response.canceled {
            return Err(watch_error(
                &response.cancel_reason,
                response.compact_revision,
            ));
        }
    }
}

/// clientv3's `WatchResponse.Err` for a cancelled watcher, as the recipe returns it.
pub fn watch_error(cancel_reason: &str, compact_revision: i64) -> Status {
    if compact_revision != 0 {
        return through_client(from_core(&cairn_core::Error::Compacted));
    }
    Status::failed_precondition(cancel_reason)
}

/// The status of a recipe error.
pub fn recipe_error(error: impl Into<RecipeError>) -> Status {
    from_recipe(&error.into())
}

/// The side of a detached request that answers it.
pub struct Requester<R> {
    reply: oneshot::Sender<Result<R, Status>>,
}

/// The side of a detached request that waits for the answer.
pub struct Answer<R> {
    answer: oneshot::Receiver<Result<R, Status>>,
}

/// A request answered by a task of its own.
pub fn detached<R>() -> (Requester<R>, Answer<R>) {
    let (reply, answer) = oneshot::channel();
    (Requester { reply }, Answer { answer })
}

impl<R> Requester<R> {
    /// Runs `work` unless the requester goes away first (`None` then).
    pub async fn unless_gone<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.reply.closed() => None,
            done = work => Some(done),
        }
    }

    /// Answers the request (nobody hears it if the requester went away).
    pub fn answer(self, result: Result<R, Status>) {
        let _ = self.reply.send(result);
    }
}

impl<R> Answer<R> {
    /// The answer; `etcdserver: server stopped` if the task ended without one.
    pub async fn wait(self) -> Result<R, Status> {
        self.answer
            .await
            .unwrap_or_else(|_| Err(from_server(&ServerError::Stopped)))
    }
}
