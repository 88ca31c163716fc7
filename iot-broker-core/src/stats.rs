//! Counters the broker keeps for metrics and for the note of what it dropped and why.

/// A session's slot in the broker (the router's subscriber id): small, so each subscription costs
/// a few bytes rather than a copy of the client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SessionKey(pub(crate) u32);

/// What the broker has done since it started. Nothing it drops goes uncounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// CONNECTs accepted.
    pub connects_accepted: u64,
    /// CONNECTs refused (bad client id, authorizer, protocol level).
    pub connects_refused: u64,
    /// Connections closed, for any reason.
    pub disconnects: u64,
    /// PUBLISH packets received from clients.
    pub publishes_received: u64,
    /// PUBLISH packets sent to clients.
    pub publishes_sent: u64,
    /// Payload bytes received in PUBLISH packets.
    pub payload_bytes_received: u64,
    /// Payload bytes sent in PUBLISH packets.
    pub payload_bytes_sent: u64,
    /// Queued QoS 0 messages dropped to make room in a full queue.
    pub dropped_qos0_evicted: u64,
    /// QoS 1/2 messages dropped because a session's queue was full of them.
    pub dropped_queue_full: u64,
    /// Inbound messages discarded, or outbound QoS 0 messages skipped, over the publish rate.
    pub dropped_rate_limited: u64,
    /// QoS 0 deliveries dropped because the receiver's connection was congested (its output
    /// buffer over budget, see [`Broker::output_congested`](crate::Broker::output_congested)).
    pub dropped_congested: u64,
    /// Unacknowledged deliveries dropped after the retry period.
    pub dropped_expired: u64,
    /// Deliveries skipped because the receiver may not receive on that topic.
    pub receive_denied: u64,
    /// Connects, publishes and subscribes the authorizer refused.
    pub auth_failures: u64,
    /// Requests handed to the reserved-topic service (shadows, Basic Ingest).
    pub reserved_requests: u64,
    /// Persistent sessions discarded after their expiry.
    pub sessions_expired: u64,
}
