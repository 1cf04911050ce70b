//! cairn-core: the replicated state machine of cairn, sans I/O.
//!
//! Time enters as `tick()` calls, messages and proposals as method calls, and disk through
//! the [`storage::Engine`] trait. Nothing here spawns a thread, reads a clock, opens a socket
//! or draws unseeded randomness, so the same code runs in production and inside madsim.

pub mod api;
pub mod apply;
pub mod auth;
pub mod buggify;
pub mod concurrency;
pub mod error;
pub mod lease;
pub mod membership;
pub mod mvcc;
pub mod replica;
pub mod snapshot;
pub mod storage;
pub mod watch;

pub use error::Error;
