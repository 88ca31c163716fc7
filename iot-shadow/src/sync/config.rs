//! How a shadow is synced: direction, strategy, rate limit, retries.

/// Greengrass's default for [`SyncConfig::max_outbound_per_second`]: 100 cloud requests a second.
pub const DEFAULT_MAX_OUTBOUND_PER_SECOND: u32 = 100;

/// Which way changes flow, and who wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways (Greengrass's default). A field changed on both sides to different values takes
    /// the cloud's value in `desired` and the local one in `reported`.
    #[default]
    BetweenDeviceAndCloud,
    /// The local shadow is the truth: a sync makes the cloud's shadow a copy of it (fields the
    /// cloud changed are overwritten, a local delete deletes the cloud's shadow). Cloud changes
    /// are never brought down and do not start a sync.
    DeviceToCloud,
    /// The cloud's shadow is the truth: a sync makes the local shadow a copy of it. Local changes
    /// are never sent up and do not start a sync.
    CloudToDevice,
}

/// When changes are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Every local change and every cloud `update/documents` starts a sync at once.
    #[default]
    RealTime,
    /// Changes are collected and the changed shadows synced together, `every_ms` after the first
    /// change of a batch. A reconnect's full sync and the retries of a sync under way do not wait.
    Periodic {
        /// The period, in milliseconds (at least 1 is used).
        every_ms: u64,
    },
}

/// The engine's settings. [`Default`] gives Greengrass's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Which way changes flow.
    pub direction: Direction,
    /// When they are synced.
    pub strategy: Strategy,
    /// Cloud requests (`get`, `update`, `delete`) per second over all shadows, a token bucket
    /// holding one second's worth (at least 1 is used). Shadows over the budget wait their turn.
    pub max_outbound_per_second: u32,
    /// How long a cloud answer may take before its request counts as lost and is retried.
    pub answer_timeout_ms: u64,
    /// Failed attempts in a row (409, 429, 5xx, lost answers, local writes not applied) before a
    /// shadow is parked until something new happens to it (a change, a reconnect).
    pub max_retries: u32,
    /// The delay before the second retry; it doubles for each one after. The first retry of a
    /// failure (the `get` after a 409, say) goes at once, since it fetches new information.
    pub retry_backoff_ms: u64,
    /// The longest delay between retries.
    pub max_backoff_ms: u64,
    /// `clientToken`s are `{prefix}-{counter}`; give each run its own (a boot counter) so a
    /// previous run's late answers are not taken for this run's. Cut to
    /// [`MAX_TOKEN_PREFIX_BYTES`](crate::MAX_TOKEN_PREFIX_BYTES).
    pub client_token_prefix: String,
    /// Conflicts and rejections kept until drained, each; when full the oldest is dropped and
    /// counted in [`SyncStats::log_dropped`](super::SyncStats::log_dropped).
    pub max_logged: usize,
}

impl Default for SyncConfig {
    fn default() -> SyncConfig {
        SyncConfig {
            direction: Direction::BetweenDeviceAndCloud,
            strategy: Strategy::RealTime,
            max_outbound_per_second: DEFAULT_MAX_OUTBOUND_PER_SECOND,
            answer_timeout_ms: crate::DEFAULT_ANSWER_TIMEOUT_MS,
            max_retries: 10,
            retry_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            client_token_prefix: "shadow-sync".to_string(),
            max_logged: 1_024,
        }
    }
}

impl SyncConfig {
    /// The delay before retry number `attempt` (1 for the first): none for the first, then
    /// `retry_backoff_ms` doubling, at most `max_backoff_ms`.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        if attempt <= 1 {
            return 0;
        }
        let factor = 1u64.checked_shl(attempt - 2).unwrap_or(u64::MAX);
        self.retry_backoff_ms
            .saturating_mul(factor)
            .min(self.max_backoff_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_once_then_doubles_to_the_cap() {
        let config = SyncConfig::default();
        let delays: Vec<u64> = (1..=9).map(|n| config.backoff_ms(n)).collect();
        assert_eq!(
            delays,
            [
                0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000
            ]
        );
        assert_eq!(config.backoff_ms(u32::MAX), 60_000);
    }
}
