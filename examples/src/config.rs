//! The cloud broker's configuration: a TOML file, every field optional with a default that needs
//! no root and no other set-up. `broker.example.toml` at the package root documents each one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

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
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mqtts_port: 8883,
            alpn_port: Some(8443),
            plain_mqtt: None,
            metrics: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464)),
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

impl BrokerConfig {
    /// Reads `path`, or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let config = match path {
            None => BrokerConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.to_owned(),
                    error,
                })?;
                Self::parse(&text).map_err(|e| match e {
                    ConfigError::Parse { error, .. } => ConfigError::Parse {
                        path: path.to_owned(),
                        error,
                    },
                    other => other,
                })?
            }
        };
        Ok(config)
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
        let config: BrokerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            error: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
        if self.endpoint_names.is_empty() {
            return Err(ConfigError::Invalid(
                "endpoint_names must not be empty".into(),
            ));
        }
        Ok(())
    }
}
