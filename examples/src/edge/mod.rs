//! The edge core: a Greengrass-style core that lets local devices (the cars) talk to each other
//! and keep working while the cloud is unreachable. A local broker (`iot-broker-core` under the
//! Standard profile) with client-device auth, a bridge to the cloud over the device session, a
//! durable spool for cloud-bound messages, shadow sync, and local handlers.
//!
//! May import: `net/`, `engine/`, `store/`, `config/`, `device/` (the session the core reaches
//! the cloud with). Never `broker/`.
//!
//! The parts, each sans-IO except the tokio edges:
//! - [`bridge`]: topic mappings among `LocalMqtt`, `Pubsub` (the [`handlers`]) and `IotCore`,
//!   without loops;
//! - [`services`]: what the local broker shows the core (every accepted message; local shadow
//!   requests answered by `iot-shadow`);
//! - [`device_auth`]: Greengrass client device auth (device groups, allow-only policies);
//! - [`spool`]: the durable, bounded spool of cloud-bound messages;
//! - `iot_shadow::sync`: shadow sync decided by versions, wired in [`program`];
//! - [`handlers`] and [`fleet_summary`]: local code on matching topics;
//! - [`program`]: the engine's part (the cloud session, spool, sync and handlers in one turn);
//! - [`cloud_link`] and [`server`] (tokio): the byte pump to the cloud, the TLS listener, start
//!   and stop.

pub mod bridge;
pub mod cli;
pub mod cloud_link;
pub mod device_auth;
pub mod fleet_summary;
pub mod handlers;
pub mod predictions;
pub mod program;
pub mod provision;
pub mod server;
pub mod services;
pub mod spool;

use iot_shadow::sync::{Direction, Strategy, SyncConfig};

use crate::config::edge::{ShadowSyncSettings, SyncDirection};

/// The sync engine's configuration from the core's settings.
pub fn sync_config(settings: &ShadowSyncSettings) -> SyncConfig {
    SyncConfig {
        direction: match settings.direction {
            SyncDirection::BetweenDeviceAndCloud => Direction::BetweenDeviceAndCloud,
            SyncDirection::DeviceToCloud => Direction::DeviceToCloud,
            SyncDirection::CloudToDevice => Direction::CloudToDevice,
        },
        strategy: if settings.period_secs == 0 {
            Strategy::RealTime
        } else {
            Strategy::Periodic {
                every_ms: settings.period_secs.saturating_mul(1000),
            }
        },
        max_outbound_per_second: settings.max_outbound_per_second,
        ..SyncConfig::default()
    }
}
