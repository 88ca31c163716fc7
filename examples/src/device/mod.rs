//! The device side: what a car (or any AWS IoT device) runs. [`ClientSession`] is its MQTT
//! session, sans-IO; the transports, the reconnecting client and the simulated cars build on it.
//! [`greengrass`] finds a car's Greengrass core devices (cloud discovery) and lets a core report
//! itself to the cloud.
//!
//! May import: `net/`, `config/`, `store/`, `admin/` (provisioning). Never another program
//! folder; the edge core reuses this session to reach the cloud.

mod backoff;
pub mod car;
mod client;
pub mod greengrass;
mod options;
mod session;
mod transport;

pub use backoff::Backoff;
pub use client::{DeviceApp, Discovery, DiscoveryError, ReconnectPolicy, run};
pub use greengrass::{DeviceIdentity, DiscoverySource, GreengrassDiscovery, GreengrassError};
pub use transport::{
    ByteStream, CONNECT_TIMEOUT, Endpoint, SigV4Credentials, TlsConfigError, Transport,
    TransportError, client_tls_config,
};

pub use options::{SessionOptions, WillMessage};
pub use session::{
    AckToken, ClientSession, CloseReason, InboundMessage, PublishId, PublishOutcome, SessionError,
    SessionEvent, SessionState, SessionStats,
};
