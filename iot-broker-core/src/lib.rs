//! The heart of the broker as a sans-IO state machine: topic names and filters, the subscription
//! router, sessions (QoS 0/1/2, persistent sessions, retained messages, wills, keep-alive) and
//! lifecycle events, under an AWS IoT Core profile and a standard MQTT 3.1.1 profile.
//!
//! Connections are ids, time is an argument (Unix epoch milliseconds), and what must be sent,
//! stored or closed comes out as values: [`Output`]s to carry out and [`Persistence`] calls to
//! make durable. Nothing here does I/O, reads a clock or spawns a thread. Time-driven work
//! (CONNECT and keep-alive timeouts, session expiry, in-flight age, the publish rate's next
//! second) is a set of deadlines: [`Broker::poll_timeout`] says when the next is due and
//! [`Broker::tick`] handles what is due, costing what is due rather than what is held.
//!
//! Durability and bounds: every change that must survive a crash goes through [`Persistence`]
//! before the packet that acknowledges it is emitted (see [`Broker`]). Every queue is bounded
//! with a stated policy: the in-flight window and session queue per session (the profile's
//! `max_inflight`, `max_queued`), 64 cached authorization answers per connection, a constant
//! number of timer entries per connection and session, and the program's output byte budget per
//! connection, which it reports with [`Broker::output_congested`] and
//! [`Broker::output_ready`]: while congested a connection gets no PUBLISH, its QoS 0 deliveries
//! are dropped and counted, its QoS 1/2 ones wait in its session queue, and acknowledgements
//! still flow.
//!
//! What a program composes is public: the [`Broker`] and its [`BrokerBuilder`], [`Output`] and
//! [`ConnectionId`] (handed out by [`Broker::open`], never made by the program), the [`profile`],
//! the traits it plugs in ([`auth::Authorizer`], [`service::ReservedTopicService`],
//! [`Persistence`]) with their ready implementations, [`message`], [`topic`] names, the
//! [`lifecycle::DisconnectReason`] of a closed connection, [`stats`], and the [`router`] and
//! [`retained`] stores the broker is built on. Sessions, connections, reserved-topic rules and
//! the lifecycle event JSON stay inside.
//!
//! ```
//! use iot_broker_core::{Broker, Output, auth::TransportInfo, profile::Profile};
//! use iot_broker_core::codec::{Connect, Packet, PacketId, Publish, QoS, QosPid, Subscribe, SubscribeFilters};
//!
//! let mut broker = Broker::builder(Profile::aws_iot()).build(0);
//! let connect = |id: &'static str| Packet::Connect(Connect {
//!     client_id: id.into(), clean_session: true, keep_alive: 60, will: None, username: None, password: None,
//! });
//! let (dashboard, car) = (broker.open(TransportInfo::default(), 0), broker.open(TransportInfo::default(), 0));
//! broker.handle_packet(dashboard, connect("dashboard"), 0);
//! broker.handle_packet(car, connect("car1"), 0);
//! broker.handle_packet(dashboard, Packet::Subscribe(Subscribe {
//!     packet_id: PacketId::new(1).unwrap(),
//!     filters: SubscribeFilters::from_list(&[("cars/+/speed", QoS::AtLeastOnce)]).unwrap(),
//! }), 1);
//! broker.handle_packet(car, Packet::Publish(Publish {
//!     dup: false, qos_pid: QosPid::AtMostOnce, retain: false,
//!     topic: "cars/car1/speed".into(), payload: "88".into(),
//! }), 2);
//! let delivered: Vec<_> = std::iter::from_fn(|| broker.poll_output())
//!     .filter_map(|out| match out {
//!         Output::Send { conn, packet: Packet::Publish(p) } if conn == dashboard => Some(p),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(delivered.len(), 1);
//! assert_eq!(&delivered[0].payload[..], b"88");
//! ```

pub use mqtt_codec as codec;

pub mod auth;
mod auth_cache;
mod broker;
mod connection;
mod inflight;
pub mod lifecycle;
pub mod message;
pub mod persist;
pub mod profile;
mod reserved;
pub mod retained;
pub mod router;
pub mod service;
mod session;
pub mod stats;
pub mod topic;

pub use broker::{Broker, BrokerBuilder};
pub use connection::{ConnectionId, Output};
pub use persist::Persistence;
