//! What the engine tells about its work: conflicts, rejections and counters.

use std::collections::VecDeque;

use serde_json::Value;

use crate::topic::{Operation, ShadowKey};

use super::merge::Side;

/// A change discarded by the conflict rule, for the log: nothing is lost silently.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Which shadow.
    pub key: ShadowKey,
    /// A JSON Pointer into the state (`/reported/speed`); `""` for the whole shadow (a delete
    /// against an edit).
    pub path: String,
    /// The local value (`null`: deleted, or no shadow).
    pub local: Value,
    /// The cloud's value (`null`: deleted, or no shadow).
    pub cloud: Value,
    /// Whose value both sides now have.
    pub kept: Side,
}

/// A request refused for a reason retrying will not cure, or a shadow given up on after
/// [`max_retries`](super::SyncConfig::max_retries). The shadow is parked until something new
/// happens to it (a change on either side, a reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which shadow.
    pub key: ShadowKey,
    /// Where the request went.
    pub side: Side,
    /// Which request.
    pub operation: Operation,
    /// The service's code (400, 403, 413, …); `None` for a local write that was not applied (the
    /// engine sees only the result) and for giving up after retries.
    pub code: Option<u16>,
    /// The service's message, or the engine's account.
    pub message: String,
}

/// Counters and gauges, from [`ShadowSync::stats`](super::ShadowSync::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncStats {
    /// Shadows being synced.
    pub shadows: usize,
    /// Syncs completed (both sides brought to the same state, or found so).
    pub synced: u64,
    /// Conflicts met (each logged as a [`Conflict`]).
    pub conflicts: u64,
    /// Retries: after a 409, a 429 or 5xx, a lost answer, a local write not applied.
    pub retries: u64,
    /// Requests refused for good (each logged as a [`Rejection`]), and shadows given up on.
    pub rejected: u64,
    /// Shadows with a cloud request in flight.
    pub in_flight: usize,
    /// Shadows with changes not yet synced, or a sync waiting for its turn or a retry.
    pub pending: usize,
    /// Shadows parked after a rejection or too many retries.
    pub parked: usize,
    /// Cloud `get` requests sent.
    pub cloud_gets: u64,
    /// Cloud `update` requests sent.
    pub cloud_updates: u64,
    /// Cloud `delete` requests sent.
    pub cloud_deletes: u64,
    /// Local writes asked for (`LocalUpdate`, `LocalDelete`).
    pub local_writes: u64,
    /// Cloud messages older than what the engine knew (a stale `documents` or tombstone), ignored.
    pub stale_ignored: u64,
    /// Cloud answers that could not be read (their request is retried at its timeout).
    pub malformed: u64,
    /// Conflicts and rejections dropped from full logs before being drained.
    pub log_dropped: u64,
}

/// A log that keeps the newest `max` entries; older ones are dropped and counted.
#[derive(Debug, Clone)]
pub(crate) struct BoundedLog<T> {
    entries: VecDeque<T>,
    max: usize,
}

impl<T> BoundedLog<T> {
    pub(crate) fn new(max: usize) -> BoundedLog<T> {
        BoundedLog {
            entries: VecDeque::new(),
            max,
        }
    }

    /// Add `entry`; whether an older one was dropped to make room (or this one, if `max` is 0).
    pub(crate) fn push(&mut self, entry: T) -> bool {
        if self.max == 0 {
            return true;
        }
        let dropped = if self.entries.len() >= self.max {
            self.entries.pop_front();
            true
        } else {
            false
        };
        self.entries.push_back(entry);
        dropped
    }

    pub(crate) fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, T> {
        self.entries.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_drops_the_oldest() {
        let mut log = BoundedLog::new(2);
        assert!(!log.push(1));
        assert!(!log.push(2));
        assert!(log.push(3));
        assert_eq!(log.drain().collect::<Vec<_>>(), [2, 3]);
        let mut none = BoundedLog::new(0);
        assert!(none.push(1));
        assert_eq!(none.drain().count(), 0);
    }
}
