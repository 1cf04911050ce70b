//! The version of cairn's on-disk layout, recorded in every member's store so that a
//! data dir written by a newer cairn is refused instead of misread (etcd records its
//! `storageVersion` in the backend's meta bucket for the same reason).
//!
//! The marker lives in [`Space::RaftState`], the member's own space, so a snapshot (which
//! carries only state-machine spaces) never moves it between members. A store without a
//! marker is either new or was written before the marker existed; both are this version's
//! layout, and get the marker when a member opens them.

use crate::storage::{Durability, Engine, Space, StorageError, WriteBatch};

/// The layout this build reads and writes. Raise it when a change makes older builds
/// misread the data; teach [`check_and_record`] to upgrade from the older ones.
pub const FORMAT_VERSION: u32 = 1;

/// The key of the marker in [`Space::RaftState`]: a big-endian u32.
pub const FORMAT_VERSION_KEY: &[u8] = b"storage_format_version";

/// The format version recorded in `engine`, if any.
pub fn recorded(engine: &dyn Engine) -> Result<Option<u32>, StorageError> {
    let Some(bytes) = engine.get(Space::RaftState, FORMAT_VERSION_KEY)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| StorageError::Corrupt {
            space: Space::RaftState.name(),
            reason: format!(
                "{}: expected 4 bytes, found {}",
                String::from_utf8_lossy(FORMAT_VERSION_KEY),
                bytes.len()
            ),
        })?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

/// Refuses a store of a newer format ([`StorageError::NewerFormat`]); records
/// [`FORMAT_VERSION`] (synced) in a store that has no marker yet.
pub fn check_and_record(engine: &dyn Engine) -> Result<(), StorageError> {
    match recorded(engine)? {
        Some(found) if found > FORMAT_VERSION => Err(StorageError::NewerFormat {
            found,
            supported: FORMAT_VERSION,
        }),
        Some(_) => Ok(()),
        None => {
            let mut batch = WriteBatch::new();
            batch.put(
                Space::RaftState,
                FORMAT_VERSION_KEY,
                FORMAT_VERSION.to_be_bytes().to_vec(),
            );
            engine.write(batch, Durability::Sync)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemEngine;

    fn set(engine: &dyn Engine, value: &[u8]) {
        let mut batch = WriteBatch::new();
        batch.put(Space::RaftState, FORMAT_VERSION_KEY, value.to_vec());
        engine.write(batch, Durability::Sync).unwrap();
    }

    #[test]
    fn a_store_without_a_marker_gets_this_version() {
        let engine = MemEngine::new();
        assert_eq!(recorded(&engine).unwrap(), None);
        check_and_record(&engine).unwrap();
        assert_eq!(recorded(&engine).unwrap(), Some(FORMAT_VERSION));
        check_and_record(&engine).unwrap();
    }

    #[test]
    fn a_newer_format_is_refused() {
        let engine = MemEngine::new();
        set(&engine, &(FORMAT_VERSION + 1).to_be_bytes());
        assert_eq!(
            check_and_record(&engine),
            Err(StorageError::NewerFormat {
                found: FORMAT_VERSION + 1,
                supported: FORMAT_VERSION
            })
        );
    }

    #[test]
    fn a_damaged_marker_is_corrupt_data() {
        let engine = MemEngine::new();
        set(&engine, b"v1");
        assert!(matches!(
            check_and_record(&engine),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
