//! The edge core's configuration (`edge-core.example.toml` documents each field): who the core is
//! in the cloud, where it listens for its client devices, which devices may do what (Greengrass's
//! `deviceGroups`), the bridge's topic mappings, the spool, shadow sync and the local handlers.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::ConfigError;

/// The whole edge core configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Where the core keeps its store (local shadows, sessions, retained messages, the spool,
    /// sync records) and its own CA and server certificate.
    pub data_dir: PathBuf,
    /// The core's thing name in the cloud: its MQTT client id there, and its Greengrass core
    /// device name.
    pub thing_name: String,
    /// How the core reaches the cloud.
    pub cloud: CloudLink,
    /// The local broker for client devices.
    pub local: LocalBroker,
    /// Greengrass's client device auth `deviceGroups` document (JSON shape, written as TOML or
    /// JSON): `formatVersion`, `definitions` (groups with `selectionRule` and `policyName`) and
    /// `policies`.
    pub device_groups: Value,
    /// The bridge's topic mappings.
    pub mappings: Vec<TopicMappingConfig>,
    /// The spool of cloud-bound messages.
    pub spool: SpoolSettings,
    /// Shadow sync.
    pub shadow_sync: ShadowSyncSettings,
    /// The fleet summary handler.
    pub fleet_summary: FleetSummarySettings,
    /// The prediction handler (a machine-learning model on the cars' telemetry).
    pub predictions: PredictionsSettings,
}

/// The prediction handler: remaining range and an anomaly score per telemetry message.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PredictionsSettings {
    /// Whether it runs.
    pub enabled: bool,
    /// The ONNX model file (the contract is in `examples/ml/README.md`); empty: the model built
    /// into the program. A file is watched: replace it (write beside it, then rename over it)
    /// and the core swaps the new model in, or refuses it and keeps the running one.
    pub model: PathBuf,
    /// How often the model file is checked for a new version, seconds.
    pub reload_check_secs: u64,
    /// The telemetry it reads.
    pub telemetry_filter: String,
    /// An alert (`cars/{thing}/alerts`) at or above this anomaly score (0 to 1).
    pub anomaly_threshold: f32,
    /// Report `predictedRangeKm` in the car's shadow when it moved by this many km ...
    pub report_min_change_km: f32,
    /// ... or when the last report is this many seconds old.
    pub report_every_secs: u64,
}

impl Default for PredictionsSettings {
    fn default() -> Self {
        PredictionsSettings {
            enabled: true,
            model: PathBuf::new(),
            reload_check_secs: 2,
            telemetry_filter: "cars/+/telemetry".into(),
            anomaly_threshold: 0.5,
            report_min_change_km: 1.0,
            report_every_secs: 60,
        }
    }
}

/// The core's link to the cloud: MQTT over TLS with the core's own certificate.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CloudLink {
    /// The cloud endpoint's host name (also the TLS server name).
    pub host: String,
    /// Its MQTT over TLS port.
    pub mqtts_port: u16,
    /// Its HTTPS port (the Greengrass data plane: connectivity info and CA upload).
    pub https_port: u16,
    /// The CA that signs the cloud's server certificate.
    pub ca: PathBuf,
    /// The core's certificate (PEM).
    pub certificate: PathBuf,
    /// The core's private key (PEM).
    pub private_key: PathBuf,
    /// Keep-alive towards the cloud, seconds (the nucleus uses 60).
    pub keep_alive_secs: u16,
    /// Cloud-bound QoS 1 messages on the wire at once (the nucleus' `maxInFlightPublishes`: 5).
    pub max_inflight: usize,
    /// PUBLISH packets per second towards the cloud at most (AWS IoT allows 100 per
    /// connection; raise both together).
    pub max_publishes_per_second: u32,
    /// Publish the core's connectivity and CA to the cloud at start, so devices discover it.
    pub register_connectivity: bool,
}

impl Default for CloudLink {
    fn default() -> Self {
        CloudLink {
            host: "localhost".into(),
            mqtts_port: 8883,
            https_port: 8443,
            ca: PathBuf::from("aws-iot-data/ca/ca.pem"),
            certificate: PathBuf::from("edge-data/core/core.cert.pem"),
            private_key: PathBuf::from("edge-data/core/core.private.key"),
            keep_alive_secs: 60,
            max_inflight: 5,
            max_publishes_per_second: 90,
            register_connectivity: true,
        }
    }
}

/// The local broker (Greengrass's Moquette on 8883; here 8884 by default so it can share a
/// machine with the cloud broker).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LocalBroker {
    /// The address the listener binds.
    pub bind: IpAddr,
    /// MQTT over TLS for client devices (0 picks a free port).
    pub mqtts_port: u16,
    /// Host names and addresses devices reach the core by: the server certificate covers them
    /// and they are the connectivity info published for discovery.
    pub host_addresses: Vec<String>,
    /// The CA(s) that sign client devices' certificates (PEM; the cloud's device CA).
    pub client_device_ca: PathBuf,
    /// Validity of the core's server certificate, seconds (Greengrass: 604800, 172800–864000).
    pub server_certificate_validity_secs: u64,
    /// Messages queued per client session beyond its in-flight window.
    pub max_queued: usize,
}

impl Default for LocalBroker {
    fn default() -> Self {
        LocalBroker {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mqtts_port: 8884,
            host_addresses: vec!["localhost".into(), "127.0.0.1".into()],
            client_device_ca: PathBuf::from("aws-iot-data/ca/ca.pem"),
            server_certificate_validity_secs: 604_800,
            max_queued: 1000,
        }
    }
}

/// Where a bridged message comes from or goes to (Greengrass's names).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BridgeEndpoint {
    /// The local broker.
    LocalMqtt,
    /// The in-process handlers (Greengrass's local publish/subscribe).
    Pubsub,
    /// The cloud.
    IotCore,
}

/// One bridge mapping, as Greengrass's `mqttTopicMapping` entries.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TopicMappingConfig {
    /// The topic filter (`+` and `#` allowed).
    pub topic: String,
    /// Where matching messages come from.
    pub source: BridgeEndpoint,
    /// Where they go.
    pub target: BridgeEndpoint,
    /// Put in front of the topic at the target.
    #[serde(default)]
    pub target_topic_prefix: Option<String>,
}

impl TopicMappingConfig {
    fn new(topic: &str, source: BridgeEndpoint, target: BridgeEndpoint) -> Self {
        TopicMappingConfig {
            topic: topic.into(),
            source,
            target,
            target_topic_prefix: None,
        }
    }
}

/// The spool (Greengrass nucleus `mqtt.spooler`, durable here).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolSettings {
    /// Topic and payload bytes held at most (Greengrass: 2621440).
    pub max_bytes: u64,
    /// Keep QoS 0 messages while the cloud is away (Greengrass: false, they are dropped).
    pub keep_qos0_when_offline: bool,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            max_bytes: 2_621_440,
            keep_qos0_when_offline: false,
        }
    }
}

/// Which way shadows sync (Greengrass's `direction`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum SyncDirection {
    /// Both ways (`desired` conflicts take the cloud's value, `reported` the local one).
    #[serde(rename = "betweenDeviceAndCloud")]
    BetweenDeviceAndCloud,
    /// Local to cloud only.
    #[serde(rename = "deviceToCloud")]
    DeviceToCloud,
    /// Cloud to local only.
    #[serde(rename = "cloudToDevice")]
    CloudToDevice,
}

/// Shadow sync settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowSyncSettings {
    /// The direction.
    pub direction: SyncDirection,
    /// 0: real time (every change syncs at once); otherwise changes sync every this many
    /// seconds (Greengrass's periodic strategy).
    pub period_secs: u64,
    /// Things whose classic shadow is synced; `"*"`: every thing whose devices connect to
    /// the core or whose local shadow changes.
    pub things: Vec<String>,
    /// Outbound sync requests per second at most (Greengrass: 100).
    pub max_outbound_per_second: u32,
}

impl Default for ShadowSyncSettings {
    fn default() -> Self {
        ShadowSyncSettings {
            direction: SyncDirection::BetweenDeviceAndCloud,
            period_secs: 0,
            things: vec!["*".into()],
            max_outbound_per_second: 100,
        }
    }
}

/// The fleet summary handler: per-minute aggregates of the cars' telemetry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FleetSummarySettings {
    /// Whether it runs.
    pub enabled: bool,
    /// The telemetry it reads (on the handlers' local publish/subscribe).
    pub telemetry_filter: String,
    /// Where it publishes (on local publish/subscribe; a mapping sends it on).
    pub topic: String,
    /// The window, seconds.
    pub every_secs: u64,
}

impl Default for FleetSummarySettings {
    fn default() -> Self {
        FleetSummarySettings {
            enabled: true,
            telemetry_filter: "cars/+/telemetry".into(),
            topic: "fleet/{core}/summary".into(),
            every_secs: 60,
        }
    }
}

/// The filters a car may subscribe to: its commands, the core's predictions and alerts about it,
/// each shadow answer topic the device-side
/// shadow helper uses, and the `+` forms (`get/+`, `update/+`, `delete/+`).
fn subscribe_resources(me: &str) -> Vec<String> {
    let mut filters = vec![
        format!("mqtt:topicfilter:cars/{me}/commands"),
        format!("mqtt:topicfilter:cars/{me}/predictions"),
        format!("mqtt:topicfilter:cars/{me}/alerts"),
    ];
    for suffix in [
        "update/delta",
        "update/documents",
        "update/accepted",
        "update/rejected",
        "get/accepted",
        "get/rejected",
        "delete/accepted",
        "delete/rejected",
        "get/+",
        "update/+",
        "delete/+",
    ] {
        filters.push(format!("mqtt:topicfilter:$aws/things/{me}/shadow/{suffix}"));
    }
    filters
}

/// The device groups of the default configuration: every thing named `car-*` may connect as
/// itself, publish its telemetry, command results and shadow requests, and subscribe to its
/// commands and shadow answers.
pub fn default_device_groups() -> Value {
    let me = "${iot:Connection.Thing.ThingName}";
    json!({
        "formatVersion": "2021-03-05",
        "definitions": {
            "cars": {"selectionRule": "thingName: car-*", "policyName": "car"}
        },
        "policies": {
            "car": {
                "connect": {
                    "statementDescription": "connect as itself",
                    "operations": ["mqtt:connect"],
                    "resources": [format!("mqtt:clientId:{me}")]
                },
                "publish": {
                    "statementDescription": "its telemetry, command results and shadow",
                    "operations": ["mqtt:publish"],
                    "resources": [
                        format!("mqtt:topic:cars/{me}/telemetry"),
                        format!("mqtt:topic:cars/{me}/commands/result"),
                        format!("mqtt:topic:$aws/things/{me}/shadow/get"),
                        format!("mqtt:topic:$aws/things/{me}/shadow/update"),
                        format!("mqtt:topic:$aws/things/{me}/shadow/delete")
                    ]
                },
                "subscribe": {
                    "statementDescription": "its commands, predictions and alerts, and shadow answers (a topic filter resource names the filter exactly)",
                    "operations": ["mqtt:subscribe"],
                    "resources": subscribe_resources(me)
                }
            }
        }
    })
}

/// The mappings of the default configuration: cars' telemetry and command results to the cloud
/// and to the handlers, commands from the cloud to the cars, the fleet summary to the cloud, the
/// handlers' predictions and alerts to the local broker and to the cloud.
pub fn default_mappings() -> Vec<TopicMappingConfig> {
    use BridgeEndpoint::{IotCore, LocalMqtt, Pubsub};
    vec![
        TopicMappingConfig::new("cars/+/telemetry", LocalMqtt, IotCore),
        TopicMappingConfig::new("cars/+/telemetry", LocalMqtt, Pubsub),
        TopicMappingConfig::new("cars/+/commands/result", LocalMqtt, IotCore),
        TopicMappingConfig::new("cars/+/commands", IotCore, LocalMqtt),
        TopicMappingConfig::new("fleet/#", Pubsub, IotCore),
        TopicMappingConfig::new("cars/+/predictions", Pubsub, LocalMqtt),
        TopicMappingConfig::new("cars/+/predictions", Pubsub, IotCore),
        TopicMappingConfig::new("cars/+/alerts", Pubsub, LocalMqtt),
        TopicMappingConfig::new("cars/+/alerts", Pubsub, IotCore),
    ]
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            data_dir: PathBuf::from("edge-data"),
            thing_name: "edge-core-1".into(),
            cloud: CloudLink::default(),
            local: LocalBroker::default(),
            device_groups: default_device_groups(),
            mappings: default_mappings(),
            spool: SpoolSettings::default(),
            shadow_sync: ShadowSyncSettings::default(),
            fleet_summary: FleetSummarySettings::default(),
            predictions: PredictionsSettings::default(),
        }
    }
}

impl EdgeConfig {
    /// An edge core on the same machine as the cloud broker of `cloud`: its data in
    /// `{cloud data_dir}/edge`, trusting the cloud's development CA (for the cloud's server and
    /// for client devices' certificates), the cloud's ports, its local broker on a free port.
    pub fn beside(cloud: &super::BrokerConfig) -> Self {
        let data_dir = cloud.data_dir.join("edge");
        let ca = cloud.data_dir.join("ca").join("ca.pem");
        let mut edge = EdgeConfig {
            cloud: CloudLink {
                mqtts_port: cloud.listeners.mqtts_port,
                https_port: cloud.listeners.alpn_port.unwrap_or(8443),
                ca: ca.clone(),
                certificate: data_dir.join("core").join("core.cert.pem"),
                private_key: data_dir.join("core").join("core.private.key"),
                ..CloudLink::default()
            },
            data_dir,
            ..EdgeConfig::default()
        };
        edge.local.client_device_ca = ca;
        edge.local.mqtts_port = 0;
        edge
    }

    /// Reads `path`, or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(
            || Ok(EdgeConfig::default()),
            |path| super::read(path, Self::parse),
        )
    }

    /// Parses TOML text.
    ///
    /// ```
    /// use iot_examples::config::edge::EdgeConfig;
    /// let config = EdgeConfig::parse("thing_name = 'core-7'\n[local]\nmqtts_port = 0").unwrap();
    /// assert_eq!(config.thing_name, "core-7");
    /// assert_eq!(config.mappings.len(), 9); // the defaults
    /// assert!(EdgeConfig::parse("[spool]\nmax_bytes = 0").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: EdgeConfig = super::parse_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The fleet summary's topic for this core.
    pub fn fleet_summary_topic(&self) -> String {
        self.fleet_summary.topic.replace("{core}", &self.thing_name)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |text: &str| Err(ConfigError::Invalid(text.to_owned()));
        if self.thing_name.is_empty() || self.thing_name.len() > 128 {
            return invalid("thing_name must be 1 to 128 characters");
        }
        if self.spool.max_bytes == 0 {
            return invalid("spool.max_bytes must be positive");
        }
        if !(1..=100).contains(&self.cloud.max_inflight) {
            return invalid("cloud.max_inflight must be 1 to 100 (the nucleus allows 100)");
        }
        if !(172_800..=864_000).contains(&self.local.server_certificate_validity_secs) {
            return invalid("local.server_certificate_validity_secs must be 172800 to 864000");
        }
        if self.local.host_addresses.is_empty() {
            return invalid("local.host_addresses must not be empty");
        }
        if !(0.0..=1.0).contains(&self.predictions.anomaly_threshold) {
            return invalid("predictions.anomaly_threshold must be 0 to 1");
        }
        if self.predictions.reload_check_secs == 0 {
            return invalid("predictions.reload_check_secs must be positive");
        }
        if self.fleet_summary.every_secs == 0 {
            return invalid("fleet_summary.every_secs must be positive");
        }
        for mapping in &self.mappings {
            if mapping.source == mapping.target {
                return Err(ConfigError::Invalid(format!(
                    "mapping {:?}: source and target must differ",
                    mapping.topic
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let example = include_str!("../../edge-core.example.toml");
        let parsed = EdgeConfig::parse(example);
        assert!(
            matches!(&parsed, Ok(c) if *c == EdgeConfig::default()),
            "{parsed:?}"
        );
    }

    #[test]
    fn a_mapping_back_to_its_source_is_refused() {
        let bad = "[[mappings]]\ntopic = 'a'\nsource = 'LocalMqtt'\ntarget = 'LocalMqtt'";
        assert!(matches!(
            EdgeConfig::parse(bad),
            Err(ConfigError::Invalid(_))
        ));
    }
}
