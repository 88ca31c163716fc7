//! A publisher's send schedule at a fixed rate: message `k` is due `k / rate` seconds after the
//! start. Sans-IO: times in, counts and times out. Open loop has no schedule.

/// When each message of one publisher is due.
///
/// ```
/// use iot_examples::bench::pacing::Schedule;
/// let schedule = Schedule::new(1_000_000, 1000.0); // starts at t = 1 s, 1000 msg/s
/// assert_eq!(schedule.due(1_000_000), 1); // message 0 is due at the start
/// assert_eq!(schedule.due(1_010_000), 11); // 10 ms later: 0..=10
/// assert_eq!(schedule.time_of(10), 1_010_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    start_us: u64,
    per_second: f64,
}

impl Schedule {
    /// A schedule starting at `start_us` (any microsecond clock) with `per_second` messages per
    /// second (at least one per hour, so times stay finite).
    pub fn new(start_us: u64, per_second: f64) -> Schedule {
        let per_second = if per_second.is_finite() {
            per_second.max(1.0 / 3600.0)
        } else {
            1.0 / 3600.0
        };
        Schedule {
            start_us,
            per_second,
        }
    }

    /// How many messages are due by `now_us` (message 0 at the start).
    pub fn due(&self, now_us: u64) -> u64 {
        if now_us < self.start_us {
            return 0;
        }
        let elapsed = (now_us - self.start_us) as f64 / 1e6;
        (elapsed * self.per_second).floor() as u64 + 1
    }

    /// When message `k` is due.
    pub fn time_of(&self, k: u64) -> u64 {
        let offset = (k as f64 / self.per_second * 1e6).round();
        self.start_us.saturating_add(offset as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nothing_is_due_before_the_start() {
        let s = Schedule::new(500, 10.0);
        assert_eq!(s.due(499), 0);
        assert_eq!(s.due(0), 0);
    }

    #[test]
    fn a_nonsense_rate_is_one_per_hour() {
        let s = Schedule::new(0, f64::NAN);
        assert_eq!(s.due(3_599_000_000), 1);
        assert_eq!(Schedule::new(0, -5.0).time_of(1), 3_600_000_000);
    }

    proptest! {
        #[test]
        fn message_k_is_due_at_its_time(start in 0u64..1 << 40, rate in 1.0f64..1e6, k in 0u64..1_000_000) {
            let s = Schedule::new(start, rate);
            let at = s.time_of(k);
            prop_assert!(s.due(at + 1) > k);
            prop_assert!(s.due(at.saturating_sub(2)) <= k + 1);
        }
    }
}
