//! An application message as the broker holds it: topic and payload are `Bytes` slices of the
//! frame they arrived in, shared by every delivery rather than copied. A retained one also carries
//! the time it was set.

use bytes::Bytes;
use mqtt_codec::{QoS, Utf8Bytes};

/// A message to route, queue, retain or deliver.
///
/// ```
/// use iot_broker_core::message::Message;
/// use iot_broker_core::codec::QoS;
/// let m = Message::new("cars/1/gps", &b"52.1,4.3"[..], QoS::AtLeastOnce, false);
/// assert_eq!(m.topic.as_str(), "cars/1/gps");
/// assert_eq!(&m.payload[..], b"52.1,4.3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The topic name.
    pub topic: Utf8Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The QoS: as published when routed, as delivered when queued for a session.
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
}

impl Message {
    /// A message from owned or static parts (copies `topic` unless it is already `Utf8Bytes`).
    pub fn new(
        topic: impl Into<Utf8Bytes>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
        }
    }
}

/// A retained message and when the PUBLISH that set it arrived: what AWS's `GetRetainedMessage`
/// returns (`lastModifiedTime`), and what [`Persistence`](crate::persist::Persistence) stores.
///
/// ```
/// use iot_broker_core::message::{Message, RetainedMessage};
/// use iot_broker_core::codec::QoS;
/// let retained = RetainedMessage {
///     message: Message::new("cars/1/status", &b"online"[..], QoS::AtLeastOnce, true),
///     modified_ms: 1_700_000_000_000,
/// };
/// assert_eq!(retained.message.topic.as_str(), "cars/1/status");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RetainedMessage {
    /// The message as retained (RETAIN=1, the QoS it was published with).
    pub message: Message,
    /// When the PUBLISH that set it arrived (Unix epoch milliseconds): the `now_ms` the broker was
    /// given with it.
    pub modified_ms: u64,
}
