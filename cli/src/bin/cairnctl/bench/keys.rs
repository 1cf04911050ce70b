//! Keys and values as etcd's benchmark tool makes them: a key is a buffer of `--key-size`
//! zero bytes with the key number written at its start as a Go `binary.PutVarint` (zigzag
//! varint), so `put --key-space-size 100` writes the same 100 keys etcd's tool writes.
//! Random choices come from a seeded SplitMix64 ([`Mix`]): the same run picks the same keys.

/// The bytes of Go's `binary.PutVarint(n)`: zigzag, then 7 bits per byte, low first.
pub fn varint(n: i64) -> Vec<u8> {
    let mut zigzag = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::with_capacity(10);
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
    out
}

/// Key number `n` in a key of `key_size` bytes; `None` when the number does not fit (Go's
/// tool panics there).
pub fn key(n: i64, key_size: usize) -> Option<Vec<u8>> {
    let encoded = varint(n);
    if encoded.len() > key_size {
        return None;
    }
    let mut key = vec![0u8; key_size];
    key[..encoded.len()].copy_from_slice(&encoded);
    Some(key)
}

/// Checks that every key number below `key_space_size` fits in `key_size` bytes.
pub fn check_key_space(key_size: i64, key_space_size: i64) -> Result<(), String> {
    if key_space_size <= 0 {
        return Err(format!(
            "expected positive --key-space-size, got ({key_space_size})"
        ));
    }
    let size = usize::try_from(key_size)
        .map_err(|_negative| format!("expected non-negative --key-size, got ({key_size})"))?;
    match key(key_space_size - 1, size) {
        Some(_) => Ok(()),
        None => Err(format!(
            "--key-size {key_size} is too small for --key-space-size {key_space_size} \
             (key numbers are varint-encoded)"
        )),
    }
}

/// A SplitMix64 generator: tiny, fast, and the same sequence for the same seed.
#[derive(Debug, Clone)]
pub struct Mix(u64);

impl Mix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Mix {
        Mix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        self.next_u64() % bound.max(1)
    }

    /// `n` random bytes (etcd's `mustRandBytes`).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// The key number of request `index`: `index % key_space_size` with `--sequential-keys`,
/// otherwise a random number below `key_space_size`, fixed by `index` and `seed`.
pub fn key_number(index: u64, key_space_size: u64, sequential: bool, seed: u64) -> i64 {
    let n = match sequential {
        true => index % key_space_size.max(1),
        false => Mix::new(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d)).below(key_space_size),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_gos_put_varint() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x02]);
        assert_eq!(varint(-1), [0x01]);
        assert_eq!(varint(63), [0x7e]);
        assert_eq!(varint(64), [0x80, 0x01]);
        assert_eq!(varint(300), [0xd8, 0x04]);
    }

    #[test]
    fn keys_are_padded_to_key_size_and_refused_when_too_short() {
        assert_eq!(key(64, 4), Some(vec![0x80, 0x01, 0, 0]));
        assert_eq!(key(64, 1), None);
        assert!(check_key_space(8, 1_000_000).is_ok());
        assert!(check_key_space(1, 1000).is_err());
        assert!(check_key_space(8, 0).is_err());
    }

    #[test]
    fn key_numbers_stay_in_the_key_space_and_are_reproducible() {
        let picks: Vec<i64> = (0..1000).map(|i| key_number(i, 10, false, 7)).collect();
        assert!(picks.iter().all(|n| (0..10).contains(n)));
        assert!((0..10).all(|n| picks.contains(&n)), "every key is used");
        let again: Vec<i64> = (0..1000).map(|i| key_number(i, 10, false, 7)).collect();
        assert_eq!(picks, again);
        assert_eq!(key_number(13, 10, true, 7), 3);
    }

    #[test]
    fn random_bytes_have_the_requested_length() {
        let mut mix = Mix::new(1);
        assert_eq!(mix.bytes(0).len(), 0);
        assert_eq!(mix.bytes(13).len(), 13);
        assert_ne!(mix.bytes(8), mix.bytes(8));
    }
}
