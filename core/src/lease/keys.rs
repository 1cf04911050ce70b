//! How leases are laid out in [`Space::Leases`].
//!
//! * `b'r' ++ id` -> `LeaseRecord` (the granted TTL): one per granted lease, as etcd's
//!   `lease` bucket keeps `leasepb.Lease` under the big-endian ID.
//! * `b'k' ++ id ++ key` -> empty: `key` is attached to lease `id`.
//!
//! `id` is the lease ID's two's-complement bits, big-endian, so all keys of one lease are one
//! contiguous prefix: revoke and `TimeToLive(keys)` read exactly the lease's keys (in key
//! order) and a restart needs no scan of the key-value store to rebuild them, where etcd
//! re-attaches every key to its lease while recovering its in-memory index.

use prost::Message;

use crate::api::cairnpb::LeaseRecord;
use crate::storage::{Engine, Order, Space, StorageError, WriteBatch};

const RECORD_TAG: u8 = b'r';
const KEY_TAG: u8 = b'k';
const ID_BYTES: usize = 8;

fn record_key(id: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ID_BYTES);
    out.push(RECORD_TAG);
    out.extend_from_slice(&id.to_be_bytes());
    out
}

fn keys_prefix(id: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ID_BYTES);
    out.push(KEY_TAG);
    out.extend_from_slice(&id.to_be_bytes());
    out
}

fn attachment_key(id: i64, key: &[u8]) -> Vec<u8> {
    let mut out = keys_prefix(id);
    out.extend_from_slice(key);
    out
}

/// The first key after every key starting with `prefix` (`prefix` never ends in 0xff here:
/// it is a tag and an ID, and the tags are not 0xff).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX]
}

fn corrupt(reason: String) -> StorageError {
    StorageError::Corrupt {
        space: Space::Leases.name(),
        reason,
    }
}

/// Stages the record of a granted lease.
pub(crate) fn stage_record(batch: &mut WriteBatch, record: &LeaseRecord) {
    batch.put(Space::Leases, record_key(record.id), record.encode_to_vec());
}

/// Stages the removal of lease `id`'s record.
pub(crate) fn stage_record_removal(batch: &mut WriteBatch, id: i64) {
    batch.delete(Space::Leases, record_key(id));
}

/// Stages "`key` is attached to lease `id`".
pub(crate) fn stage_attach(batch: &mut WriteBatch, id: i64, key: &[u8]) {
    batch.put(Space::Leases, attachment_key(id, key), Vec::new());
}

/// Stages "`key` is no longer attached to lease `id`".
pub(crate) fn stage_detach(batch: &mut WriteBatch, id: i64, key: &[u8]) {
    batch.delete(Space::Leases, attachment_key(id, key));
}

/// Every stored lease record, in ID byte order.
pub(crate) fn load_records(engine: &dyn Engine) -> Result<Vec<LeaseRecord>, StorageError> {
    let start = [RECORD_TAG];
    let end = prefix_end(&start);
    let mut records = Vec::new();
    let mut failure = None;
    engine.scan(
        Space::Leases,
        &start,
        Some(&end),
        Order::Ascending,
        &mut |key, value| match decode_record(key, value) {
            Ok(record) => {
                records.push(record);
                std::ops::ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e);
                std::ops::ControlFlow::Break(())
            }
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok(records),
    }
}

fn decode_record(key: &[u8], value: &[u8]) -> Result<LeaseRecord, StorageError> {
    let id_bytes: [u8; ID_BYTES] = key[1..].try_into().map_err(|_| {
        corrupt(format!(
            "lease record key has {} bytes, expected 9",
            key.len()
        ))
    })?;
    let record = LeaseRecord::decode(value)
        .map_err(|e| corrupt(format!("undecodable lease record {key:?}: {e}")))?;
    let id = i64::from_be_bytes(id_bytes);
    if record.id != id {
        return Err(corrupt(format!(
            "lease record under ID {id} names ID {}",
            record.id
        )));
    }
    Ok(record)
}

/// The keys attached to lease `id`, in key order.
pub(crate) fn attached_keys(engine: &dyn Engine, id: i64) -> Result<Vec<Vec<u8>>, StorageError> {
    let start = keys_prefix(id);
    let end = prefix_end(&start);
    let mut keys = Vec::new();
    engine.scan(
        Space::Leases,
        &start,
        Some(&end),
        Order::Ascending,
        &mut |stored, _| {
            keys.push(stored[start.len()..].to_vec());
            std::ops::ControlFlow::Continue(())
        },
    )?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leases_keys_sort_together_and_apart_from_other_leases() {
        let a = attachment_key(1, b"\xff\xff");
        let b = attachment_key(2, b"");
        assert!(a < b);
        assert!(a.starts_with(&keys_prefix(1)));
        assert!(a < prefix_end(&keys_prefix(1)));
        assert!(prefix_end(&keys_prefix(1)) <= b);
    }

    #[test]
    fn negative_ids_have_their_own_prefix() {
        assert_ne!(keys_prefix(-1), keys_prefix(1));
        assert!(prefix_end(&keys_prefix(-1)) > keys_prefix(-1));
    }
}
