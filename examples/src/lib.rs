//! Runtime glue for the example programs: tokio sockets, rustls, durable storage, configuration
//! and certificates, composing the workspace's sans-IO crates.
//!
//! Shared folders: [`net`] (listeners, TLS accept, HTTP plumbing, the WebSocket transport),
//! [`engine`] (the thread that owns a broker core and commits before it acknowledges), [`store`]
//! (redb, the data directory, access keys), [`config`] and [`admin`] (the AWS-CLI-style commands
//! and the admin socket). Programs: [`broker`], the cloud broker
//! (`cargo run --release --example broker`); [`bench`], the MQTT load generator
//! (`cargo run --release --example bench`). Programs import shared folders, never each other.
//!
//! ```
//! assert_eq!(iot_examples::DEFAULT_MQTTS_PORT, 8883);
//! ```

/// The port AWS IoT Core serves MQTT over TLS on.
pub const DEFAULT_MQTTS_PORT: u16 = 8883;

pub mod admin;
pub mod bench;
pub mod broker;
pub mod config;
pub mod device;
pub mod edge;
pub mod engine;
pub mod net;
pub mod store;
