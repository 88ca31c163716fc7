//! The cloud broker's configuration: a TOML file, every field optional with a default that needs
//! no root and no other set-up. `broker.example.toml` at the package root documents each one.
//! Each program's configuration lives here, so the demo can compose them.
//!
//! May import: nothing else of this crate.

pub mod edge;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use iot_broker_core::profile::Profile;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Where the store, the development CA and the server certificate live.
    pub data_dir: PathBuf,
    /// The AWS region in resource ARNs and SigV4 scopes.
    pub region: String,
    /// The 12-digit account id in resource ARNs.
    pub account: String,
    /// Host names the server certificate covers and SNI may name (`*.domain` allowed).
    pub endpoint_names: Vec<String>,
    /// Refuse TLS clients that send no SNI or one naming no endpoint (AWS does).
    pub require_sni: bool,
    /// The listeners.
    pub listeners: Listeners,
    /// Per-connection and per-session limits (AWS IoT's quotas by default).
    pub limits: BrokerLimits,
    /// The web dashboard's login.
    pub dashboard: DashboardConfig,
}

/// The web dashboard's login (users are made with `create-login-profile`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// How long the temporary credentials a login returns are valid, in seconds (AWS STS:
    /// 900 to 43200; Cognito's default 3600).
    pub credential_ttl_secs: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            credential_ttl_secs: 3600,
        }
    }
}

/// Default `[limits] output_budget_bytes`: what each connection may have waiting to be written.
pub const DEFAULT_OUTPUT_BUDGET: usize = 256 * 1024;

/// Default `[listeners] backlog`: connections waiting for `accept` per listener, enough for a burst
/// of thousands of connects without SYN drops.
pub const DEFAULT_BACKLOG: u32 = 4096;

/// Default `[listeners] max_connections`, per listener (the process's file-descriptor limit is
/// usually lower: then that is what binds).
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// Limits on clients, AWS IoT Core's default quotas unless changed.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerLimits {
    /// How long a persistent session outlives its connection (AWS: 3600 s, at most 7 days).
    pub session_expiry_secs: u64,
    /// Largest message payload, MQTT and HTTPS (AWS: 131072 bytes).
    pub max_payload_bytes: usize,
    /// Inbound and outbound PUBLISH packets per second per connection (AWS: 100); 0: no limit.
    pub max_publishes_per_second: u32,
    /// Subscriptions per connection (AWS: 50); 0: no limit.
    pub max_subscriptions_per_connection: usize,
    /// Unacknowledged QoS 1 deliveries per session (AWS: 100).
    pub max_inflight: usize,
    /// Messages queued per session beyond the in-flight window.
    pub max_queued: usize,
    /// How long a new connection may take to send CONNECT, in seconds.
    pub connect_timeout_secs: u64,
    /// Bytes of output a connection may have waiting to be written (its socket's pace); beyond
    /// it QoS 0 deliveries to it are dropped and counted and QoS 1 wait in its session queue, and
    /// nothing more is read from it until it catches up.
    pub output_budget_bytes: usize,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        let aws = Profile::aws_iot();
        BrokerLimits {
            session_expiry_secs: aws.session_expiry_ms.unwrap_or(3_600_000) / 1000,
            max_payload_bytes: aws.limits.max_payload_size,
            max_publishes_per_second: aws.max_publishes_per_second.unwrap_or(0),
            max_subscriptions_per_connection: aws.max_subscriptions_per_connection.unwrap_or(0),
            max_inflight: aws.max_inflight,
            max_queued: aws.max_queued,
            connect_timeout_secs: aws.connect_timeout_ms / 1000,
            output_budget_bytes: DEFAULT_OUTPUT_BUDGET,
        }
    }
}

/// Addresses to listen on. A port of 0 picks a free one (printed at start).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// The address every listener binds (loopback by default; `0.0.0.0` to serve the network).
    pub bind: IpAddr,
    /// MQTT over TLS with client certificates (AWS: 8883).
    pub mqtts_port: u16,
    /// TLS port standing in for AWS's 443: ALPN `x-amzn-mqtt-ca` is MQTT with a client certificate.
    pub alpn_port: Option<u16>,
    /// Plain MQTT without authentication, for local development: off unless set, loopback only.
    pub plain_mqtt: Option<SocketAddr>,
    /// Prometheus text metrics (`GET /metrics`), loopback only.
    pub metrics: Option<SocketAddr>,
    /// Connections the kernel may hold waiting for `accept` on each listener (the kernel caps it
    /// at `net.core.somaxconn`).
    pub backlog: u32,
    /// Connections served at once per listener; one more is closed as soon as it is accepted
    /// (and counted in `/metrics`).
    pub max_connections: usize,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mqtts_port: 8883,
            alpn_port: Some(8443),
            plain_mqtt: None,
            metrics: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464)),
            backlog: DEFAULT_BACKLOG,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            data_dir: PathBuf::from("aws-iot-data"),
            region: "us-east-1".to_owned(),
            account: "123456789012".to_owned(),
            endpoint_names: vec!["localhost".to_owned(), "*.iot.localhost".to_owned()],
            require_sni: true,
            listeners: Listeners::default(),
            limits: BrokerLimits::default(),
            dashboard: DashboardConfig::default(),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The TOML is invalid or has unknown fields.
    #[error("invalid configuration {path}: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Sets up logging for a program: `tracing` to stderr, filtered by `RUST_LOG` or else
/// `default_filter` (e.g. `"info"`), colours only on a terminal.
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
}

/// Reads the file at `path` and hands its text to `parse`; a parse error names the file.
fn read<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    parse(&text).map_err(|e| match e {
        ConfigError::Parse { error, .. } => ConfigError::Parse {
            path: path.to_owned(),
            error,
        },
        other => other,
    })
}

/// TOML text into `T` (unknown fields and wrong types are a [`ConfigError::Parse`]).
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: PathBuf::new(),
        error: e.to_string(),
    })
}

impl BrokerConfig {
    /// [`load`](Self::load), then a command line's `--data-dir` (when given) over the file's.
    pub fn load_with_data_dir(
        path: Option<&Path>,
        data_dir: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let mut config = BrokerConfig::load(path)?;
        if let Some(dir) = data_dir {
            config.data_dir = dir.to_owned();
        }
        Ok(config)
    }

    /// Reads `path`, or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(
            || Ok(BrokerConfig::default()),
            |path| read(path, Self::parse),
        )
    }

    /// Parses TOML text.
    ///
    /// ```
    /// let config = iot_examples::config::BrokerConfig::parse("region = 'eu-west-1'\n[listeners]\nmqtts_port = 0").unwrap();
    /// assert_eq!(config.region, "eu-west-1");
    /// assert_eq!(config.listeners.mqtts_port, 0);
    /// assert!(iot_examples::config::BrokerConfig::parse("colour = 'red'").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: BrokerConfig = parse_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The AWS IoT broker profile with this configuration's limits.
    pub fn profile(&self) -> Profile {
        let mut profile = Profile::aws_iot();
        let l = &self.limits;
        profile.session_expiry_ms = Some(l.session_expiry_secs.saturating_mul(1000));
        profile.limits.max_payload_size = l.max_payload_bytes;
        profile.max_publishes_per_second =
            (l.max_publishes_per_second > 0).then_some(l.max_publishes_per_second);
        profile.max_subscriptions_per_connection =
            (l.max_subscriptions_per_connection > 0).then_some(l.max_subscriptions_per_connection);
        profile.max_inflight = l.max_inflight;
        profile.max_queued = l.max_queued;
        profile.connect_timeout_ms = l.connect_timeout_secs.saturating_mul(1000);
        profile
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.limits.session_expiry_secs > 7 * 24 * 3600 {
            return Err(ConfigError::Invalid(
                "limits.session_expiry_secs is at most 604800 (7 days), as on AWS".into(),
            ));
        }
        if !(1..=65_535).contains(&self.limits.max_inflight) {
            return Err(ConfigError::Invalid(
                "limits.max_inflight must be 1 to 65535 (packet ids)".into(),
            ));
        }
        if self.limits.output_budget_bytes < 4096 {
            return Err(ConfigError::Invalid(
                "limits.output_budget_bytes must be at least 4096".into(),
            ));
        }
        if self.listeners.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "listeners.max_connections must be positive".into(),
            ));
        }
        if self.listeners.backlog == 0 {
            return Err(ConfigError::Invalid(
                "listeners.backlog must be positive".into(),
            ));
        }
        if self.limits.max_payload_bytes == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_payload_bytes must be positive".into(),
            ));
        }
        if self.account.len() != 12 || !self.account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid("account must be 12 digits".into()));
        }
        for (name, addr) in [
            ("plain_mqtt", self.listeners.plain_mqtt),
            ("metrics", self.listeners.metrics),
        ] {
            if let Some(addr) = addr
                && !addr.ip().is_loopback()
            {
                return Err(ConfigError::Invalid(format!(
                    "listeners.{name} must be a loopback address, got {addr}"
                )));
            }
        }
        if !(900..=43_200).contains(&self.dashboard.credential_ttl_secs) {
            return Err(ConfigError::Invalid(
                "dashboard.credential_ttl_secs must be 900 to 43200, as STS allows".into(),
            ));
        }
        if self.endpoint_names.is_empty() {
            return Err(ConfigError::Invalid(
                "endpoint_names must not be empty".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let example = include_str!("../../broker.example.toml");
        let parsed = BrokerConfig::parse(example);
        assert!(
            matches!(&parsed, Ok(c) if *c == BrokerConfig::default()),
            "{parsed:?}"
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [
            "account = '12'",
            "[limits]\nsession_expiry_secs = 604801",
            "[limits]\nmax_inflight = 0",
            "[listeners]\nmetrics = '0.0.0.0:9464'",
            "[listeners]\nplain_mqtt = '10.0.0.1:1883'",
        ] {
            assert!(
                matches!(BrokerConfig::parse(bad), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
