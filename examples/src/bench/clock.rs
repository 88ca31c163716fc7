//! The one wall clock of the load generator: Unix microseconds, the same on the publishing and
//! the subscribing side (one machine), so a stamp's send time can be subtracted from an arrival.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in microseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_is_after_2020() {
        assert!(super::unix_us() > 1_577_836_800_000_000);
    }
}
