//! go-humanize's `Bytes` (SI units: `20 kB`, `1.5 MB`), which etcdctl uses for the DB size
//! in `endpoint status`, with its float arithmetic reproduced so rounding matches.

const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// `humanize.Bytes(size)`.
pub fn bytes(size: u64) -> String {
    if size < 10 {
        return format!("{size} B");
    }
    let exponent = exponent_of(size);
    let suffix = SIZES[exponent.min(SIZES.len() - 1)];
    let scaled = size as f64 / 1000f64.powi(exponent as i32);
    let tenths = (scaled * 10.0 + 0.5).floor();
    let value = tenths / 10.0;
    if value < 10.0 {
        return format!("{value:.1} {suffix}");
    }
    format!("{} {suffix}", round_half_even(value))
}

/// `floor(log(size) / log(1000))`, computed exactly.
fn exponent_of(size: u64) -> usize {
    let mut exponent = 0;
    let mut rest = size;
    while rest >= 1000 {
        rest /= 1000;
        exponent += 1;
    }
    exponent
}

/// Go's `%.0f`: round to nearest, ties to even (the value has one decimal at most).
fn round_half_even(value: f64) -> u64 {
    let floor = value.floor();
    let diff = value - floor;
    let whole = floor as u64;
    if diff > 0.5 || (diff == 0.5 && whole % 2 == 1) {
        whole + 1
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_humanize() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(9), "9 B");
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB");
        assert_eq!(bytes(16384), "16 kB");
        assert_eq!(bytes(20480), "20 kB");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(21_500), "22 kB");
        assert_eq!(bytes(25_000_000), "25 MB");
    }
}
