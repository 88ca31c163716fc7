//! Runtime glue for the example programs: tokio sockets, rustls, WebSocket, HTTP, durable storage,
//! configuration and certificates, composing the workspace's sans-IO crates.
//!
//! The programs themselves (broker, device, edge-core, demo, bench) live beside this library as
//! cargo examples and arrive with their issues.
//!
//! ```
//! assert_eq!(iot_examples::DEFAULT_MQTTS_PORT, 8883);
//! ```

/// The port AWS IoT Core serves MQTT over TLS on.
pub const DEFAULT_MQTTS_PORT: u16 = 8883;
