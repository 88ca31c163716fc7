//! Reconnect delays: exponential backoff with full jitter (a uniform delay between zero and
//! `min(cap, base × 2^attempt)`), so a fleet that lost its broker does not come back in lockstep.

use std::time::Duration;

/// The delay before each reconnect attempt.
///
/// ```
/// use std::time::Duration;
/// use iot_examples::device::Backoff;
/// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 7);
/// for attempt in 0..10 {
///     let ceiling = (100u64 << attempt).min(5_000);
///     assert!(backoff.next_delay() <= Duration::from_millis(ceiling));
/// }
/// backoff.reset();
/// assert!(backoff.next_delay() <= Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Delays from `base` doubling up to `cap`, jittered by a generator seeded with `seed`.
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff {
            base_ms: u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1),
            cap_ms: u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1),
            attempt: 0,
            // xorshift needs a non-zero state.
            rng: seed | 1,
        }
    }

    /// The next delay (and one more attempt counted).
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base_ms
            .saturating_mul(2u64.saturating_pow(self.attempt))
            .min(self.cap_ms);
        self.attempt = self.attempt.saturating_add(1);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        Duration::from_millis(self.rng % ceiling.saturating_add(1))
    }

    /// A connection worked: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
