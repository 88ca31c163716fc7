//! The heart of the broker as a sans-IO state machine: topic names and filters, the subscription
//! router, sessions (QoS 0/1/2, persistent sessions, retained messages, wills, keep-alive) and
//! lifecycle events, under an AWS IoT Core profile and a standard MQTT 3.1.1 profile.
//!
//! Connections are ids, time is an argument, and what must be sent, stored or closed comes out as
//! values. It is filled in by its own issue; for now it re-exports the codec profile it builds on.
//!
//! ```
//! use iot_broker_core::codec::Limits;
//! assert_eq!(Limits::aws_iot().max_filters_per_subscribe, 8);
//! ```

pub use mqtt_codec as codec;
