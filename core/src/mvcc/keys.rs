//! Storage key encodings of the MVCC spaces.
//!
//! * [`Space::History`]: `escape(user key) ++ 00 01 ++ main(u64 BE) ++ sub(u64 BE)` ->
//!   prost-encoded `cairnpb::StoredVersion`. `escape` turns each `00` byte into `00 FF`, and
//!   the terminator `00 01` sorts below any escaped continuation (`00 FF` or a byte >= 01),
//!   so a scan in storage order visits user keys in etcd's byte order and each key's
//!   versions in revision order. `escape(k)` alone is a scan bound: every version of a key
//!   `>= k` sorts at or after it, every version of a key `< k` before it.
//! * [`Space::Revisions`]: `main(u64 BE) ++ sub(u64 BE)` -> user key, one entry per version
//!   still stored (watch catch-up, compaction, HashKV walk history in revision order).
//! * [`Space::Latest`]: `user key` -> `main(u64 BE) ++ sub(u64 BE)` of the key's newest
//!   stored version (live or tombstone), for every key with a stored version, followed by
//!   that version's `create_revision`, `version` and `lease` (`i64` BE each) and a
//!   tombstone byte (0 or 1). It turns "the key's current version" into two point lookups,
//!   which the engine answers from its bloom filters when the key is new, instead of a
//!   reverse scan of the key's history; and a write that needs only the metadata of the
//!   key's current version (not its value) into one. An entry written before the metadata
//!   was added holds the revision alone: its reader falls back to History. Written in the
//!   same batch as the version it names; removed when compaction drops that version (a
//!   tombstone). Derived data: [`META_LATEST_INDEX`] marks it complete.
//! * [`Space::Meta`]: [`META_CURRENT_REVISION`] and [`META_COMPACTED_REVISION`], each an
//!   `i64` big-endian. Absent means a new store (revision 1, compacted -1, as etcd's
//!   `NewStore`). [`META_LATEST_INDEX`] is present once [`Space::Latest`] names the newest
//!   version of every key (a store written before that space existed is indexed on open).
//!
//! [`Space::History`]: crate::storage::Space::History
//! [`Space::Revisions`]: crate::storage::Space::Revisions
//! [`Space::Meta`]: crate::storage::Space::Meta
//! [`Space::Latest`]: crate::storage::Space::Latest

use super::revision::{REVISION_BYTES, Revision};
use crate::api::cairnpb::StoredVersion;
use crate::storage::StorageError;

/// Meta key of the store's current revision (the last write transaction that changed something).
pub const META_CURRENT_REVISION: &[u8] = b"mvcc/current_revision";
/// Meta key of the last compaction's revision.
pub const META_COMPACTED_REVISION: &[u8] = b"mvcc/compacted_revision";
/// Meta key present once the Latest space indexes every key (its value is empty).
pub const META_LATEST_INDEX: &[u8] = b"mvcc/latest_index";

/// Ends an escaped user key; sorts below every escaped byte that can follow.
const TERMINATOR: [u8; 2] = [0x00, 0x01];
/// Sorts just above [`TERMINATOR`] and below every escaped continuation: the first byte
/// string after all versions of one key.
const PAST_TERMINATOR: [u8; 2] = [0x00, 0x02];
/// The escaped form of a `00` byte inside a user key.
const ESCAPED_ZERO: [u8; 2] = [0x00, 0xFF];

const HISTORY: &str = "history";

fn corrupt(reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        space: HISTORY,
        reason: reason.into(),
    }
}

/// `escape(key)`: a scan bound below every version of every key `>= key`.
pub(crate) fn escaped(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + REVISION_BYTES + 4);
    for &byte in key {
        if byte == 0 {
            out.extend_from_slice(&ESCAPED_ZERO);
        } else {
            out.push(byte);
        }
    }
    out
}

/// `escape(key) ++ terminator`: the common prefix of every version of `key`.
pub(crate) fn key_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = escaped(key);
    out.extend_from_slice(&TERMINATOR);
    out
}

/// The History key of `key` at `rev`.
pub(crate) fn history_key(key: &[u8], rev: Revision) -> Vec<u8> {
    let mut out = key_prefix(key);
    out.extend_from_slice(&rev.to_bytes());
    out
}

/// The first byte string after every version of the key whose [`key_prefix`] is `prefix`.
pub(crate) fn past_prefix(prefix: &[u8]) -> Vec<u8> {
    debug_assert!(prefix.ends_with(&TERMINATOR));
    let mut out = prefix[..prefix.len() - TERMINATOR.len()].to_vec();
    out.extend_from_slice(&PAST_TERMINATOR);
    out
}

/// Splits a History key into its key prefix (escaped key and terminator) and revision,
/// without unescaping.
pub(crate) fn split_history_key(stored: &[u8]) -> Result<(&[u8], Revision), StorageError> {
    let Some(prefix_len) = stored.len().checked_sub(REVISION_BYTES) else {
        return Err(corrupt(format!(
            "history key of {} bytes is too short",
            stored.len()
        )));
    };
    let (prefix, rev) = stored.split_at(prefix_len);
    if !prefix.ends_with(&TERMINATOR) {
        return Err(corrupt("history key without terminator"));
    }
    Ok((prefix, Revision::from_bytes(rev, HISTORY)?))
}

/// The user key of a key prefix returned by [`split_history_key`].
pub(crate) fn unescape_prefix(prefix: &[u8]) -> Result<Vec<u8>, StorageError> {
    let Some(body) = prefix.strip_suffix(&TERMINATOR) else {
        return Err(corrupt("history key without terminator"));
    };
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.iter();
    while let Some(&byte) = bytes.next() {
        if byte != 0 {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(0xFF) => out.push(0),
            _ => return Err(corrupt("bad escape in history key")),
        }
    }
    Ok(out)
}

/// The Revisions key of `rev`.
pub(crate) fn revision_key(rev: Revision) -> [u8; REVISION_BYTES] {
    rev.to_bytes()
}

/// Decodes a Revisions key.
pub(crate) fn decode_revision_key(stored: &[u8]) -> Result<Revision, StorageError> {
    Revision::from_bytes(stored, "revisions")
}

/// A key's newest stored version as the Latest space names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LatestEntry {
    /// Where the version sits in History.
    pub rev: Revision,
    /// The version's metadata; `None` in an entry written before it was stored there.
    pub meta: Option<VersionMeta>,
}

/// What a stored version says besides its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionMeta {
    pub create_revision: i64,
    pub version: i64,
    pub lease: i64,
    pub tombstone: bool,
}

/// Bytes of a Latest value with metadata: the revision, three `i64` and the tombstone byte.
const LATEST_BYTES: usize = REVISION_BYTES + 3 * 8 + 1;

/// The Latest value naming version `rev` of a key, stored as `stored`.
pub(crate) fn encode_latest(rev: Revision, stored: &StoredVersion) -> Vec<u8> {
    let mut out = Vec::with_capacity(LATEST_BYTES);
    out.extend_from_slice(&rev.to_bytes());
    for field in [stored.create_revision, stored.version, stored.lease] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.push(u8::from(stored.tombstone));
    out
}

/// Decodes a Latest value: a revision alone (an entry of an older store) or a revision
/// with metadata.
pub(crate) fn decode_latest(stored: &[u8]) -> Result<LatestEntry, StorageError> {
    if stored.len() == REVISION_BYTES {
        let rev = Revision::from_bytes(stored, "latest")?;
        return Ok(LatestEntry { rev, meta: None });
    }
    let corrupt = || StorageError::Corrupt {
        space: "latest",
        reason: format!(
            "a value of {} bytes (expected {REVISION_BYTES} or {LATEST_BYTES})",
            stored.len()
        ),
    };
    if stored.len() != LATEST_BYTES {
        return Err(corrupt());
    }
    let (rev, rest) = stored.split_at(REVISION_BYTES);
    let field = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&rest[i * 8..(i + 1) * 8]);
        i64::from_be_bytes(bytes)
    };
    let tombstone = match rest[24] {
        0 => false,
        1 => true,
        _ => return Err(corrupt()),
    };
    Ok(LatestEntry {
        rev: Revision::from_bytes(rev, "latest")?,
        meta: Some(VersionMeta {
            create_revision: field(0),
            version: field(1),
            lease: field(2),
            tombstone,
        }),
    })
}

/// Encodes a Meta revision value.
pub(crate) fn encode_meta_revision(rev: i64) -> [u8; 8] {
    rev.to_be_bytes()
}

/// Decodes a Meta revision value stored under `name`.
pub(crate) fn decode_meta_revision(name: &[u8], stored: &[u8]) -> Result<i64, StorageError> {
    let bytes: [u8; 8] = stored.try_into().map_err(|_| StorageError::Corrupt {
        space: "meta",
        reason: format!(
            "{} holds {} bytes, want 8",
            String::from_utf8_lossy(name),
            stored.len()
        ),
    })?;
    Ok(i64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_keys() -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\x00".to_vec(),
            b"\x00\x00".to_vec(),
            b"\x00\x01".to_vec(),
            b"\x00\xff".to_vec(),
            b"\x01".to_vec(),
            b"a".to_vec(),
            b"a\x00".to_vec(),
            b"a\x00b".to_vec(),
            b"a\x01".to_vec(),
            b"ab".to_vec(),
            b"b".to_vec(),
            b"\xff".to_vec(),
            b"\xff\x00".to_vec(),
        ];
        keys.sort();
        keys
    }

    #[test]
    fn history_keys_sort_by_user_key_then_revision() {
        let revs = [
            Revision::new(1, 0),
            Revision::new(1, 3),
            Revision::new(2, 0),
            Revision::new(300, 1),
        ];
        let mut encoded = Vec::new();
        for key in sample_keys() {
            for rev in revs {
                encoded.push(history_key(&key, rev));
            }
        }
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn escaped_key_bounds_exactly_the_keys_at_or_above_it() {
        let keys = sample_keys();
        for bound in &keys {
            let lower = escaped(bound);
            for key in &keys {
                let first = history_key(key, Revision::new(0, 0));
                let last = history_key(key, Revision::new(i64::MAX, i64::MAX));
                if key >= bound {
                    assert!(first >= lower, "{key:?} vs bound {bound:?}");
                } else {
                    assert!(last < lower, "{key:?} vs bound {bound:?}");
                }
            }
        }
    }

    #[test]
    fn past_prefix_is_after_the_key_and_before_every_greater_key() {
        let keys = sample_keys();
        for key in &keys {
            let past = past_prefix(&key_prefix(key));
            assert!(history_key(key, Revision::new(i64::MAX, i64::MAX)) < past);
            for other in keys.iter().filter(|other| *other > key) {
                assert!(
                    history_key(other, Revision::new(0, 0)) > past,
                    "{other:?} after {key:?}"
                );
            }
        }
    }

    #[test]
    fn history_key_round_trips() {
        for key in sample_keys() {
            let rev = Revision::new(7, 2);
            let stored = history_key(&key, rev);
            let (prefix, decoded) = split_history_key(&stored).expect("valid key");
            assert_eq!(decoded, rev);
            assert_eq!(prefix, key_prefix(&key).as_slice());
            assert_eq!(unescape_prefix(prefix).expect("valid prefix"), key);
        }
    }

    #[test]
    fn malformed_history_keys_are_corrupt() {
        assert!(split_history_key(b"short").is_err());
        let mut no_terminator = b"abc".to_vec();
        no_terminator.extend_from_slice(&Revision::new(1, 0).to_bytes());
        assert!(split_history_key(&no_terminator).is_err());
        assert!(unescape_prefix(b"a\x00\x05\x00\x01").is_err());
    }

    #[test]
    fn latest_values_carry_the_versions_metadata_and_older_ones_the_revision_alone() {
        let rev = Revision::new(7, 2);
        let stored = StoredVersion {
            create_revision: 3,
            version: 4,
            value: b"not in Latest".to_vec(),
            lease: -5,
            tombstone: false,
        };
        let entry = decode_latest(&encode_latest(rev, &stored)).expect("decodes");
        assert_eq!(entry.rev, rev);
        let meta = VersionMeta {
            create_revision: 3,
            version: 4,
            lease: -5,
            tombstone: false,
        };
        assert_eq!(entry.meta, Some(meta));
        let tombstone = StoredVersion {
            tombstone: true,
            ..StoredVersion::default()
        };
        let entry = decode_latest(&encode_latest(rev, &tombstone)).expect("decodes");
        assert_eq!(entry.meta.map(|m| m.tombstone), Some(true));
        let older = decode_latest(&revision_key(rev)).expect("decodes");
        assert_eq!((older.rev, older.meta), (rev, None));
        let mut bad_flag = encode_latest(rev, &stored);
        *bad_flag.last_mut().expect("not empty") = 2;
        for bad in [&b"short"[..], &bad_flag, &[0u8; 40][..]] {
            assert!(matches!(
                decode_latest(bad),
                Err(StorageError::Corrupt {
                    space: "latest",
                    ..
                })
            ));
        }
    }
}
