//! The outbound rate limit: a token bucket holding one second's worth of requests.

/// Tokens are counted in thousandths so that refilling by the millisecond loses nothing.
const MILLI: u64 = 1_000;

#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    per_second: u64,
    milli_tokens: u64,
    updated_ms: Option<u64>,
}

impl RateLimit {
    /// A full bucket of `per_second` (at least 1) requests, refilled at `per_second` a second.
    pub(crate) fn new(per_second: u32) -> RateLimit {
        let per_second = u64::from(per_second.max(1));
        RateLimit {
            per_second,
            milli_tokens: per_second.saturating_mul(MILLI),
            updated_ms: None,
        }
    }

    /// Add what has dripped in since the last refill. Time going backwards adds nothing.
    pub(crate) fn refill(&mut self, now_ms: u64) {
        let elapsed = self
            .updated_ms
            .map_or(0, |then| now_ms.saturating_sub(then));
        let cap = self.per_second.saturating_mul(MILLI);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(self.per_second))
            .min(cap);
        self.updated_ms = Some(self.updated_ms.map_or(now_ms, |then| then.max(now_ms)));
    }

    pub(crate) fn available(&self) -> bool {
        self.milli_tokens >= MILLI
    }

    /// Take one request's token if there is one.
    pub(crate) fn take(&mut self) -> bool {
        if self.available() {
            self.milli_tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// When the next token will be there; `None` if one is there now.
    pub(crate) fn next_token_at(&self) -> Option<u64> {
        if self.available() {
            return None;
        }
        let missing = MILLI - self.milli_tokens;
        let wait = missing.div_ceil(self.per_second);
        Some(self.updated_ms.unwrap_or(0).saturating_add(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_worth_then_one_per_interval() {
        let mut rate = RateLimit::new(4);
        rate.refill(1_000);
        for _ in 0..4 {
            assert!(rate.take());
        }
        assert!(!rate.take());
        assert_eq!(rate.next_token_at(), Some(1_250));
        rate.refill(1_249);
        assert!(!rate.take());
        rate.refill(1_250);
        assert!(rate.take());
        // Never more than one second's worth.
        rate.refill(100_000);
        assert_eq!((0..10).filter(|_| rate.take()).count(), 4);
    }

    #[test]
    fn zero_means_one() {
        let mut rate = RateLimit::new(0);
        rate.refill(0);
        assert!(rate.take());
        assert!(!rate.take());
        assert_eq!(rate.next_token_at(), Some(1_000));
    }
}
