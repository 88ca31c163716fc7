//! What a device session is configured with: its CONNECT fields and the bounds of its queues.

use bytes::Bytes;
use iot_broker_core::codec::{Limits, QoS};

/// A will: what the broker publishes for the device if its connection ends without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillMessage {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// QoS 0 or 1.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
}

/// How a [`ClientSession`](super::ClientSession) connects and what it may hold.
///
/// ```
/// use iot_examples::device::SessionOptions;
/// let options = SessionOptions::new("car-1").persistent().keep_alive_secs(60);
/// assert!(!options.clean_session);
/// assert_eq!(options.max_inflight, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// The MQTT client id (on AWS IoT the thing name, by convention).
    pub client_id: String,
    /// `false`: ask the broker to keep the session (subscriptions and QoS 1 messages) while away.
    pub clean_session: bool,
    /// Keep-alive in seconds (AWS IoT clamps it to 30–1200); 0 disables PINGREQ.
    pub keep_alive_secs: u16,
    /// How long to wait for a PINGRESP, or for the CONNACK, before the connection is declared dead.
    pub response_timeout_ms: u64,
    /// The will.
    pub will: Option<WillMessage>,
    /// The user name (AWS's SDKs put metrics here: `?SDK=…&Version=…`; ignored with certificates).
    pub username: Option<String>,
    /// The password (custom authorizers; unused with certificates or SigV4).
    pub password: Option<Bytes>,
    /// QoS 1 publishes on the wire awaiting PUBACK at once (AWS IoT: 100).
    pub max_inflight: usize,
    /// QoS 1 publishes held beyond the in-flight window, while offline included. When full,
    /// [`publish`](super::ClientSession::publish) refuses with `QueueFull` (back-pressure).
    pub max_queued: usize,
    /// PUBLISH packets written per second at most (0: no limit). AWS IoT discards publishes over
    /// 100 per second on a connection (in and out together) without a PUBACK, so the default
    /// stays under it; QoS 1 waits for the next second, QoS 0 over it is dropped and counted.
    pub max_publishes_per_second: u32,
    /// A QoS 1 publish unacknowledged this long is written again with DUP on the same
    /// connection (a broker that throttled it sent no PUBACK); 0: only after a reconnect.
    pub retry_interval_ms: u64,
    /// Limits for decoding what the broker sends (AWS IoT's by default).
    pub limits: Limits,
}

impl SessionOptions {
    /// A clean session for `client_id` with keep-alive 30 s, the AWS IoT limits and no will.
    pub fn new(client_id: impl Into<String>) -> Self {
        SessionOptions {
            client_id: client_id.into(),
            clean_session: true,
            keep_alive_secs: 30,
            response_timeout_ms: 10_000,
            will: None,
            username: None,
            password: None,
            max_inflight: 100,
            max_queued: 1000,
            max_publishes_per_second: 90,
            retry_interval_ms: 15_000,
            limits: Limits::aws_iot(),
        }
    }

    /// Ask the broker to keep the session (clean session 0).
    pub fn persistent(mut self) -> Self {
        self.clean_session = false;
        self
    }

    /// Set the keep-alive in seconds.
    pub fn keep_alive_secs(mut self, secs: u16) -> Self {
        self.keep_alive_secs = secs;
        self
    }

    /// Set the will.
    pub fn will(mut self, will: WillMessage) -> Self {
        self.will = Some(will);
        self
    }

    /// Set the user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
}
