//! The edge core: a Greengrass-style core that lets local devices (the cars) talk to each other
//! and keep working while the cloud is unreachable. A local broker (`iot-broker-core` under the
//! Standard profile) with client-device auth, a bridge to the cloud over the device session, a
//! durable spool for cloud-bound messages, shadow sync, and local handlers.
//!
//! May import: `net/`, `engine/`, `store/`, `config/`, `device/` (the session the core reaches
//! the cloud with). Never `broker/`.

pub mod spool;
