//! MVCC key-value store with etcd's semantics (placeholder until the store lands).
