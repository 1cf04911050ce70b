//! The multi-version key-value store, with etcd 3.4's semantics (etcd's `mvcc` package and
//! the KV appliers of `etcdserver/apply.go`).
//!
//! A store-wide revision increases by one per write transaction that changes something;
//! changes inside one transaction get sub revisions 0, 1, 2, ... Each key has a create
//! revision, a mod revision and a version (1 on creation, +1 per put, reset by a delete).
//! Every version is kept, keyed by `(key, revision)`, until compaction; reads at any
//! revision at or above the compacted one see the state of that revision.
//!
//! Files, one concept each: `revision` (positions in history), `keys` (storage encodings),
//! `history` (which version is visible at a revision), `latest` (indexing each key's newest
//! version for a store written without that index), `view` (read-your-writes inside a
//! transaction), `range` (Range), `write` (Put, DeleteRange), `txn` (Txn), `compact`
//! (Compaction), `events` (watch catch-up), `hash` (HashKV), [`check`] (request
//! validation), `store` (the [`Mvcc`] entry points).

pub mod check;
mod compact;
mod events;
mod hash;
mod history;
pub mod keys;
mod latest;
mod range;
mod revision;
mod store;
mod txn;
mod view;
mod write;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use hash::Crc32c;
pub use store::{LeaseLookup, Mvcc};
