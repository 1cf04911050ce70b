//! Watchers: which client gets which events, from where, in which responses (etcd's
//! `mvcc/watchable_store.go`, `mvcc/watcher_group.go`, `mvcc/watcher.go` and the stream
//! logic of `etcdserver/api/v3rpc/watch.go`), sans I/O.
//!
//! One [`WatchStream`] holds the watchers of one client stream. It never blocks and reads no
//! clock: the node feeds it client requests, the events of every applied entry, progress
//! ticks and catch-up steps, and sends the responses it returns in order. Watchers that
//! start in the past or fall behind (the node lost applied entries) read history from
//! storage through [`History`] in bounded batches, so a slow watcher costs storage reads,
//! never an unbounded queue, and never holds up apply.
//!
//! Files: `range` (which keys a watcher covers), `watcher` (one watcher's options, filters
//! and position), `registry` (the stream: ids, fan-out, catch-up, progress), `history` (the
//! storage catch-up reads), `fragment` (splitting large responses), `error` (create
//! refusals with etcd's messages).

mod error;
pub mod fragment;
mod history;
mod range;
mod registry;
mod watcher;

#[cfg(test)]
mod tests;

pub use error::WatchError;
pub use history::History;
pub use range::WatchRange;
pub use registry::{AUTO_WATCH_ID, INVALID_WATCH_ID, WatchLimits, WatchStream};
