//! Network plumbing shared by every program: binding listeners, bounded accept loops, TLS accept with a handshake
//! deadline, HTTP/1.1 serving and response helpers, and the WebSocket byte-stream transport
//! (MQTT over WebSocket), and the stop signals.
//!
//! May import: nothing else of this crate. Programs (`broker/`, `device/`, `edge/`) import it.

pub mod accept;
pub mod http;
pub mod listener;
pub mod signal;
pub mod websocket;
