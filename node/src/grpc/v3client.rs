//! The member's own KV, Lease and Watch services as a client (etcd's
//! `etcdserver/api/v3client`): what the Election and Lock services are built on, as etcd
//! builds them on `clientv3/concurrency` over an in-process client.
//!
//! Requests go through the same [`KvService`] and [`LeaseService`] handlers as a remote
//! client's (same checks, same limits, same headers). Their errors come back as clientv3
//! returns them to etcd's election and lock servers: `toErr` turns every error etcd knows by
//! its message into a plain Go error, which gRPC then sends with code `Unknown` and the
//! same message ([`status::through_client`]).
//!
//! Watching is a one-watcher [`WatchStream`] fed from the member's applied events, with
//! catch-up from storage, exactly as a Watch stream's task drives it.

use std::collections::VecDeque;
use std::sync::Arc;

use cairn_core::api::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse, RangeRequest,
    RangeResponse, TxnRequest, TxnResponse, WatchCreateRequest, WatchResponse,
};
use cairn_core::watch::{WatchLimits, WatchStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch as signal;
use tonic::{Request, Status};

use super::kv::KvService;
use super::lease::LeaseService;
use super::pb::kv_server::Kv;
use super::pb::lease_server::Lease;
use super::status::{self, from_core, from_server};
use crate::server::{AppliedEvents, Handle, ServerError};

/// An in-process client of one member.
#[derive(Clone)]
pub struct LocalClient {
    handle: Handle,
    kv: KvService,
    lease: LeaseService,
    stop: signal::Receiver<bool>,
}

impl LocalClient {
    /// A client of the member behind `handle`, answering through its KV and Lease services;
    /// its watches end once `stop` turns true.
    pub fn new(
        handle: Handle,
        kv: KvService,
        lease: LeaseService,
        stop: signal::Receiver<bool>,
    ) -> LocalClient {
        LocalClient {
            handle,
            kv,
            lease,
            stop,
        }
    }

    /// `KV.Range`.
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Status> {
        let answer = self.kv.range(Request::new(request)).await;
        answer
            .map(tonic::Response::into_inner)
            .map_err(status::through_client)
    }

    /// `KV.Txn`.
    pub async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, Status> {
        let answer = self.kv.txn(Request::new(request)).await;
        answer
            .map(tonic::Response::into_inner)
            .map_err(status::through_client)
    }

    /// `KV.DeleteRange` of one key.
    pub async fn delete(&self, key: Vec<u8>) -> Result<DeleteRangeResponse, Status> {
        let request = DeleteRangeRequest {
            key,
            ..DeleteRangeRequest::default()
        };
        let answer = self.kv.delete_range(Request::new(request)).await;
        answer
            .map(tonic::Response::into_inner)
            .map_err(status::through_client)
    }

    /// `Lease.LeaseGrant` of a lease with `ttl` seconds and an id chosen by the server.
    pub async fn grant(&self, ttl: i64) -> Result<LeaseGrantResponse, Status> {
        let request = LeaseGrantRequest { ttl, id: 0 };
        let answer = self.lease.lease_grant(Request::new(request)).await;
        answer
            .map(tonic::Response::into_inner)
            .map_err(status::through_client)
    }

    /// Starts a watcher of `create`'s key range from its start revision.
    pub fn watch(&self, create: &WatchCreateRequest) -> LocalWatch {
        // Subscribe first, then read the revision: no entry falls between the two.
        let events = self.handle.subscribe_events();
        let current = self.handle.state_machine().current_revision();
        if create.prev_kv {
            self.handle.state_machine().set_prev_values(true);
        }
        let mut registry = WatchStream::new(WatchLimits::default(), self.handle.header(0), current);
        let created = registry.create(create, current);
        let pending = match created.canceled {
            true => VecDeque::from([created]),
            false => VecDeque::new(),
        };
        LocalWatch {
            handle: self.handle.clone(),
            stop: self.stop.clone(),
            events,
            registry,
            pending,
        }
    }
}

/// One watcher of a [`LocalClient`].
pub struct LocalWatch {
    handle: Handle,
    stop: signal::Receiver<bool>,
    events: broadcast::Receiver<Arc<AppliedEvents>>,
    registry: WatchStream,
    pending: VecDeque<WatchResponse>,
}

impl LocalWatch {
    /// The next response with events, or the one that cancels the watcher (compaction);
    /// `etcdserver: server stopped` once the member shuts down.
    pub async fn next(&mut self) -> Result<WatchResponse, Status> {
        loop {
            if let Some(response) = self.pending.pop_front() {
                return Ok(response);
            }
            let out = match self.registry.has_unsynced() {
                true => self
                    .registry
                    .catch_up(self.handle.state_machine())
                    .map_err(|e| from_core(&e))?,
                false => self.live().await?,
            };
            self.registry.set_raft_term(self.handle.raft_status().term);
            self.pending.extend(
                out.into_iter()
                    .filter(|r| !r.events.is_empty() || r.canceled),
            );
        }
    }

    /// Waits for the next applied entry and hands it to the registry.
    async fn live(&mut self) -> Result<Vec<WatchResponse>, Status> {
        let entry = select! {
            _ = self.stop.wait_for(|stopped| *stopped) => return Err(stopped()),
            entry = self.events.recv() => entry,
        };
        match entry {
            Ok(entry) => Ok(entry.feed(&mut self.registry)),
            Err(RecvError::Lagged(_)) => {
                self.registry.lagged();
                Ok(Vec::new())
            }
            Err(RecvError::Closed) => Err(stopped()),
        }
    }
}

fn stopped() -> Status {
    from_server(&ServerError::Stopped)
}
