//! The broker's rules as data: AWS IoT Core's behaviour and plain MQTT 3.1.1's, side by side
//! (spec/aws-iot.md, "Two profiles"). Every limit is a public field, so a program can start from
//! one profile and adjust what its configuration says.

use mqtt_codec::Limits;

use crate::router::MultiLevelRule;

/// How a CONNECT's keep-alive becomes the interval the broker enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlivePolicy {
    /// As sent; 0 disables the timeout (MQTT 3.1.1).
    AsSent,
    /// Clamped into `min..=max` seconds, and 0 becomes `max` (AWS IoT: 30–1200 s, 0 → 1200 s).
    Clamp {
        /// Smallest interval, in seconds.
        min: u16,
        /// Largest interval, in seconds, and the one used for 0.
        max: u16,
    },
}

impl KeepAlivePolicy {
    /// The interval in seconds the broker enforces for a CONNECT's `keep_alive`, 0 meaning none.
    ///
    /// ```
    /// use iot_broker_core::profile::KeepAlivePolicy;
    /// let aws = KeepAlivePolicy::Clamp { min: 30, max: 1200 };
    /// assert_eq!((aws.effective(0), aws.effective(5), aws.effective(60), aws.effective(4000)), (1200, 30, 60, 1200));
    /// assert_eq!((KeepAlivePolicy::AsSent.effective(0), KeepAlivePolicy::AsSent.effective(5)), (0, 5));
    /// ```
    pub fn effective(self, keep_alive: u16) -> u16 {
        match self {
            KeepAlivePolicy::AsSent => keep_alive,
            KeepAlivePolicy::Clamp { min, max } if keep_alive == 0 => max.max(min),
            KeepAlivePolicy::Clamp { min, max } => keep_alive.clamp(min, max.max(min)),
        }
    }
}

/// What a client gets when one PUBLISH matches several of its filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// One copy at the highest matching granted QoS (MQTT 3.1.1).
    HighestQos,
    /// One copy per matching filter, each at its own QoS (AWS IoT; the spec's choice where AWS's
    /// documentation is silent).
    CopyPerFilter,
}

/// What happens to a PUBLISH the authorizer denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedPublish {
    /// The connection is closed (AWS IoT with MQTT 3.1.1).
    Disconnect,
    /// The message is dropped but acknowledged, so the client does not retransmit it forever
    /// (what Mosquitto does).
    DropAndAcknowledge,
}

/// What happens to a SUBSCRIBE filter the authorizer denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedSubscribe {
    /// The connection is closed without a SUBACK (AWS IoT with MQTT 3.1.1, as observed).
    Disconnect,
    /// That filter's return code is 0x80 (MQTT 3.1.1).
    Failure,
}

/// What happens to a CONNECT the authorizer refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedConnect {
    /// The connection is closed without a CONNACK (AWS IoT, as observed), with a `connect_failed`
    /// lifecycle event.
    CloseWithoutConnAck,
    /// CONNACK 0x04 or 0x05, then close (MQTT 3.1.1).
    ConnAckCode,
}

/// The broker's rules: codec limits plus how sessions, authorization and delivery behave.
///
/// ```
/// use iot_broker_core::profile::Profile;
/// let aws = Profile::aws_iot();
/// assert_eq!(aws.max_subscriptions_per_connection, Some(50));
/// assert_eq!(aws.session_expiry_ms, Some(3_600_000));
/// let mut edge = Profile::standard();
/// assert!(edge.limits.qos2);
/// edge.max_inflight = 20; // a configuration may change any field
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// What the codec accepts (payload size, topic length and levels, QoS 2, filters per
    /// SUBSCRIBE); a decode error closes the connection.
    pub limits: Limits,
    /// Whether `a/#` matches `a`.
    pub multi_level_rule: MultiLevelRule,
    /// Keep-alive handling.
    pub keep_alive: KeepAlivePolicy,
    /// Overlapping filters of one client.
    pub overlap: OverlapPolicy,
    /// Whether retained messages go to new wildcard subscriptions (MQTT 3.1.1) or only to a filter
    /// equal to the topic (AWS IoT).
    pub retained_to_wildcards: bool,
    /// Whether a redelivered PUBLISH carries DUP=1 (MQTT 3.1.1; AWS never sets it).
    pub redelivery_sets_dup: bool,
    /// Whether `$aws/...` is AWS's reserved namespace (publish and subscribe rules, the shadow and
    /// Basic Ingest hooks, `$` client ids refused).
    pub reserved_namespace: bool,
    /// Whether lifecycle events are published on `$aws/events/...`.
    pub lifecycle_events: bool,
    /// A refused CONNECT.
    pub denied_connect: DeniedConnect,
    /// A denied PUBLISH.
    pub denied_publish: DeniedPublish,
    /// A denied SUBSCRIBE filter.
    pub denied_subscribe: DeniedSubscribe,
    /// How long a persistent session outlives its connection, in ms; `None` keeps it until a
    /// clean-session CONNECT.
    pub session_expiry_ms: Option<u64>,
    /// Most QoS 1/2 deliveries awaiting acknowledgement per session; further messages wait in the
    /// session's queue.
    pub max_inflight: usize,
    /// Most messages waiting in one session's queue (beyond the in-flight window). When full, the
    /// oldest queued QoS 0 message is dropped; with none, the new message is dropped. Both counted.
    pub max_queued: usize,
    /// Most subscriptions one session holds; excess filters get 0x80 and the connection is closed.
    pub max_subscriptions_per_connection: Option<usize>,
    /// Most PUBLISH packets per second per connection, in and out together. Excess inbound
    /// messages are discarded unacknowledged; excess outbound QoS 0 is discarded, QoS 1/2 waits.
    pub max_publishes_per_second: Option<u32>,
    /// How long an unacknowledged delivery is kept for retry before it is dropped, in ms.
    pub max_inflight_age_ms: Option<u64>,
    /// How long a new connection may take to send CONNECT, in ms.
    pub connect_timeout_ms: u64,
}

impl Profile {
    /// AWS IoT Core as a device sees it (spec/aws-iot.md).
    pub fn aws_iot() -> Profile {
        Profile {
            limits: Limits::aws_iot(),
            multi_level_rule: MultiLevelRule::ExcludesParent,
            keep_alive: KeepAlivePolicy::Clamp { min: 30, max: 1200 },
            overlap: OverlapPolicy::CopyPerFilter,
            retained_to_wildcards: false,
            redelivery_sets_dup: false,
            reserved_namespace: true,
            lifecycle_events: true,
            denied_connect: DeniedConnect::CloseWithoutConnAck,
            denied_publish: DeniedPublish::Disconnect,
            denied_subscribe: DeniedSubscribe::Disconnect,
            session_expiry_ms: Some(3_600_000),
            max_inflight: 100,
            max_queued: 1000,
            max_subscriptions_per_connection: Some(50),
            max_publishes_per_second: Some(100),
            max_inflight_age_ms: Some(3_600_000),
            connect_timeout_ms: 10_000,
        }
    }

    /// Plain MQTT 3.1.1, as the edge core's local broker runs it: QoS 2, retained messages to
    /// wildcard subscriptions, keep-alive as sent, sessions kept until a clean start.
    pub fn standard() -> Profile {
        Profile {
            limits: Limits::mqtt_3_1_1(),
            multi_level_rule: MultiLevelRule::IncludesParent,
            keep_alive: KeepAlivePolicy::AsSent,
            overlap: OverlapPolicy::HighestQos,
            retained_to_wildcards: true,
            redelivery_sets_dup: true,
            reserved_namespace: false,
            lifecycle_events: false,
            denied_connect: DeniedConnect::ConnAckCode,
            denied_publish: DeniedPublish::DropAndAcknowledge,
            denied_subscribe: DeniedSubscribe::Failure,
            session_expiry_ms: None,
            max_inflight: 100,
            max_queued: 1000,
            max_subscriptions_per_connection: None,
            max_publishes_per_second: None,
            max_inflight_age_ms: None,
            connect_timeout_ms: 10_000,
        }
    }
}
