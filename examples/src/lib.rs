//! Runtime glue for the example programs: tokio sockets, rustls, durable storage, configuration
//! and certificates, composing the workspace's sans-IO crates.
//!
//! The cloud broker (`cargo run --release --example broker`) is built from [`server::start`]:
//! an [`engine`] thread owns the `iot-broker-core` state machine, [`mqtt_connection`] tasks carry
//! bytes, the [`store`] (redb) makes every acknowledged change durable before the acknowledgement
//! is written, [`authorizer`] enforces AWS IoT policies, and [`shadows`] answers the Device Shadow
//! topics.
//!
//! ```
//! assert_eq!(iot_examples::DEFAULT_MQTTS_PORT, 8883);
//! ```

/// The port AWS IoT Core serves MQTT over TLS on.
pub const DEFAULT_MQTTS_PORT: u16 = 8883;

pub mod access_keys;
pub mod admin;
pub mod admin_socket;
pub mod authorizer;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod http_api;
pub mod metrics;
pub mod mqtt_connection;
pub mod server;
pub mod shadows;
pub mod store;
pub mod websocket;
