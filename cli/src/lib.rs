//! cairn_client: a typed async client for etcd's v3 API, used by `cairnctl`, the simulator
//! and the real-process tests against both cairn and the reference etcd.
//!
//! [`Client`] speaks gRPC to one member at a time (chosen by [`Client::connect`], which tries
//! the endpoints in the order given) and takes and returns the wire messages of
//! [`pb`] (`etcdserverpb`, shared with cairn-core) unchanged, so callers see exactly what the
//! server sent. Every failure is a [`ClientError`] carrying the gRPC code and etcd's message.
//!
//! `tokio` and `tonic` are used by name: under `--cfg madsim` they resolve to madsim's
//! simulated runtime and network, and the same client runs inside the simulator.
//!
//! Methods are named `<service>_<rpc>` (`kv_range`, `maintenance_status`,
//! `cluster_member_list`, `lease_grant`); the two bidirectional streams, `Watch` and
//! `Lease.LeaseKeepAlive`, are [`WatchStream`] and [`KeepAliveStream`].

mod auth;
mod client;
pub mod concurrency;
mod endpoint;
mod error;
pub mod etcd_error;
mod grpc;
mod stream;
mod tls;

pub use client::{Client, ConnectOptions};
pub use endpoint::{EndpointError, endpoint_uri};
pub use error::{ClientError, go_code_name, go_status_text};
pub use stream::{KeepAliveStream, SnapshotStream, WatchStream};
pub use tls::TlsOptions;
pub use tonic::Code;

/// etcd's wire messages (re-exported from cairn-core).
pub mod pb {
    pub use cairn_core::api::{authpb, etcdserverpb, mvccpb};
}
