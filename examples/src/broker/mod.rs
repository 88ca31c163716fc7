//! The cloud broker: AWS IoT Core's device side on one machine. [`server::start`] runs it: the
//! shared [`engine`](crate::engine) thread with the [`program::CloudBroker`] answering its
//! requests, the TLS listeners (8883 and the ALPN port), the optional plain loopback listener,
//! the [`http`] data plane and MQTT over WebSocket, the [`metrics`] endpoint and the admin
//! socket. [`authorizer`] enforces AWS IoT policies; [`services`] answers the Device Shadow
//! topics. [`cli`] is its command line.
//!
//! May import: `net/`, `engine/`, `store/`, `config/`, `admin/`. Never another program folder.

pub mod authorizer;
pub mod cli;
pub mod http;
pub mod metrics;
pub mod program;
pub mod server;
pub mod services;
