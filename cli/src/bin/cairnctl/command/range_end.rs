//! Key-range helpers with clientv3's semantics: `--prefix` (`WithPrefix`: the range end is
//! the key with its last byte below 0xff incremented) and `--from-key` (`WithFromKey`: the
//! range end `\0`); an empty key means the whole keyspace (`\0`..`\0`).

/// The range end of every key with `prefix` (`\0`, "to the end", when none exists).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// `(key, range_end)` for `--prefix` on `key`.
pub fn with_prefix(key: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    if key.is_empty() {
        return (vec![0], vec![0]);
    }
    let end = prefix_end(&key);
    (key, end)
}

/// `(key, range_end)` for `--from-key` on `key`.
pub fn with_from_key(key: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let key = if key.is_empty() { vec![0] } else { key };
    (key, vec![0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"abc"), b"abd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn empty_key_means_everything() {
        assert_eq!(with_prefix(Vec::new()), (vec![0], vec![0]));
        assert_eq!(with_from_key(Vec::new()), (vec![0], vec![0]));
        assert_eq!(with_from_key(b"k".to_vec()), (b"k".to_vec(), vec![0]));
    }
}
