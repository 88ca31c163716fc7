//! The heart of the broker as a sans-IO state machine: topic names and filters, the subscription
//! router, sessions (QoS 0/1/2, persistent sessions, retained messages, wills, keep-alive) and
//! lifecycle events, under an AWS IoT Core profile and a standard MQTT 3.1.1 profile.
//!
//! Connections are ids, time is an argument, and what must be sent, stored or closed comes out as
//! values. So far it holds the subscription [`router`]; the session state machine arrives with the
//! rest of its issue.
//!
//! ```
//! use iot_broker_core::codec::{Limits, QoS};
//! use iot_broker_core::router::{MultiLevelRule, Router};
//!
//! assert_eq!(Limits::aws_iot().max_filters_per_subscribe, 8);
//! let mut router = Router::new(MultiLevelRule::ExcludesParent); // AWS: `a/#` does not match `a`
//! router.subscribe("a/#", 1u32, QoS::AtLeastOnce).unwrap();
//! assert!(router.matches("a").is_empty());
//! assert_eq!(router.matches("a/b").len(), 1);
//! ```

pub use mqtt_codec as codec;

pub mod reserved;
pub mod retained;
pub mod router;
