//! The requests that await an answer, in the order they were sent.

use std::collections::VecDeque;

use crate::topic::Operation;

/// One request sent and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingRequest {
    pub(super) client_token: String,
    pub(super) operation: Operation,
    pub(super) sent_at_ms: u64,
}

/// Pending requests, oldest first. Sends happen in time order, so the oldest request's deadline is
/// the earliest: the next timeout is read from the front, without a scan.
#[derive(Debug, Clone, Default)]
pub(super) struct PendingRequests {
    queue: VecDeque<PendingRequest>,
}

impl PendingRequests {
    /// Add a request; if `max` are already pending, the oldest is dropped first and returned.
    pub(super) fn push(&mut self, request: PendingRequest, max: usize) -> Option<PendingRequest> {
        let evicted = if self.queue.len() >= max.max(1) {
            self.queue.pop_front()
        } else {
            None
        };
        self.queue.push_back(request);
        evicted
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn clear(&mut self) {
        self.queue.clear();
    }

    /// Where the request with `token` and `operation` is.
    pub(super) fn position(&self, token: &str, operation: Operation) -> Option<usize> {
        self.queue
            .iter()
            .position(|p| p.operation == operation && p.client_token == token)
    }

    pub(super) fn remove(&mut self, index: usize) {
        self.queue.remove(index);
    }

    /// Forget the request at `index` and every one sent before it.
    pub(super) fn settle_through(&mut self, index: usize) {
        self.queue
            .drain(..=index.min(self.queue.len().saturating_sub(1)));
    }

    /// Whether a `get` sent after the request at `index` is pending (its answer will show
    /// whatever became of that request).
    pub(super) fn get_after(&self, index: usize) -> bool {
        self.queue
            .iter()
            .skip(index.saturating_add(1))
            .any(|p| p.operation == Operation::Get)
    }

    /// Whether any `get` is pending.
    pub(super) fn has_get(&self) -> bool {
        self.queue.iter().any(|p| p.operation == Operation::Get)
    }

    /// Pending updates.
    pub(super) fn updates(&self) -> usize {
        self.queue
            .iter()
            .filter(|p| p.operation == Operation::Update)
            .count()
    }

    /// When the oldest request counts as lost.
    pub(super) fn deadline(&self, timeout_ms: u64) -> Option<u64> {
        self.queue
            .front()
            .map(|p| p.sent_at_ms.saturating_add(timeout_ms))
    }

    /// Drop every request unanswered `timeout_ms` after it was sent; whether there was one.
    pub(super) fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> bool {
        let mut any = false;
        while self
            .queue
            .front()
            .is_some_and(|p| p.sent_at_ms.saturating_add(timeout_ms) <= now_ms)
        {
            self.queue.pop_front();
            any = true;
        }
        any
    }
}
