//! A point in the store's history: `(main, sub)`, as etcd's `mvcc/revision.go`.
//!
//! `main` is the store-wide revision of one write transaction; `sub` numbers the changes
//! inside it (0, 1, 2, ...). Revisions order first by `main`, then by `sub`. On disk a
//! revision is 16 bytes: `main` then `sub`, each big-endian `u64`, so byte order is revision
//! order (both parts are never negative once stored).

use crate::storage::StorageError;

/// Bytes of an encoded [`Revision`].
pub(crate) const REVISION_BYTES: usize = 16;

/// One change's position in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Revision {
    /// The write transaction's revision.
    pub main: i64,
    /// The change's index inside that transaction.
    pub sub: i64,
}

impl Revision {
    /// The revision `(main, sub)`.
    pub fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// The 16-byte big-endian encoding.
    pub fn to_bytes(self) -> [u8; REVISION_BYTES] {
        debug_assert!(
            self.main >= 0 && self.sub >= 0,
            "stored revisions are never negative"
        );
        let mut out = [0u8; REVISION_BYTES];
        out[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        out[8..].copy_from_slice(&(self.sub as u64).to_be_bytes());
        out
    }

    /// Decodes [`Revision::to_bytes`]; `space` names where the bytes came from.
    pub fn from_bytes(bytes: &[u8], space: &'static str) -> Result<Self, StorageError> {
        let corrupt = |reason: String| StorageError::Corrupt { space, reason };
        if bytes.len() != REVISION_BYTES {
            return Err(corrupt(format!(
                "revision of {} bytes, want {REVISION_BYTES}",
                bytes.len()
            )));
        }
        let mut main = [0u8; 8];
        let mut sub = [0u8; 8];
        main.copy_from_slice(&bytes[..8]);
        sub.copy_from_slice(&bytes[8..]);
        let main = u64::from_be_bytes(main);
        let sub = u64::from_be_bytes(sub);
        match (i64::try_from(main), i64::try_from(sub)) {
            (Ok(main), Ok(sub)) => Ok(Revision { main, sub }),
            _ => Err(corrupt(format!("revision ({main}, {sub}) out of range"))),
        }
    }

    /// The first revision of main revision `main` (used as a scan bound).
    pub fn first_of(main: i64) -> Self {
        Revision { main, sub: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_bytes_order_like_revisions() {
        let revs = [
            Revision::new(0, 0),
            Revision::new(1, 0),
            Revision::new(1, 1),
            Revision::new(1, 256),
            Revision::new(2, 0),
            Revision::new(256, 0),
            Revision::new(i64::MAX, i64::MAX),
        ];
        for pair in revs.windows(2) {
            assert!(pair[0].to_bytes() < pair[1].to_bytes());
        }
        for rev in revs {
            assert_eq!(Revision::from_bytes(&rev.to_bytes(), "test"), Ok(rev));
        }
    }

    #[test]
    fn revision_of_wrong_length_is_corrupt() {
        assert!(matches!(
            Revision::from_bytes(&[0; 15], "revisions"),
            Err(StorageError::Corrupt {
                space: "revisions",
                ..
            })
        ));
    }
}
