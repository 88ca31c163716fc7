//! A fleet of cars: provisioned once through the broker's admin interface (each car a thing with
//! its own certificate and policy, kept under `{data_dir}/cars/`), then run as one tokio task per
//! car in this process, with a periodic report of the process's CPU and memory per car.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mqtt_codec::QoS;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::app::{Car, CarError, FleetCounters};
use crate::admin::{AdminCommand, AdminError};
use crate::config::BrokerConfig;
use crate::device::greengrass::{DeviceIdentity, GreengrassDiscovery};
use crate::device::{
    ClientSession, Endpoint, ReconnectPolicy, SessionOptions, SigV4Credentials, Transport,
    client_tls_config,
};

/// One provisioned car's credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CarCredentials {
    /// The thing name (also its MQTT client id).
    pub thing: String,
    /// Its certificate's id.
    pub certificate_id: String,
    /// The certificate PEM file.
    pub certificate: PathBuf,
    /// The private key PEM file (0600).
    pub private_key: PathBuf,
}

/// What provisioning kept: the cars, and the fleet's access key for MQTT over WebSocket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FleetManifest {
    /// The cars, in order.
    pub cars: Vec<CarCredentials>,
    /// `[access key id, secret]` of the IAM-style user `cars-fleet`.
    pub access_key: Option<(String, String)>,
}

/// Why the fleet could not be provisioned or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// An admin command failed.
    #[error("provisioning: {0}")]
    Admin(#[from] AdminError),
    /// The manifest or a credential file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An answer of the admin interface lacked a field.
    #[error("provisioning: the answer to {0} lacks what was expected")]
    Answer(&'static str),
    /// TLS could not be configured from the credentials.
    #[error("TLS for {thing}: {reason}")]
    Tls {
        /// The car.
        thing: String,
        /// Why.
        reason: String,
    },
    /// A car could not be made.
    #[error(transparent)]
    Car(#[from] CarError),
}

/// The thing name of car number `n` (1-based): `car-0001`.
pub fn thing_name(n: usize) -> String {
    format!("car-{n:04}")
}

fn cars_dir(config: &BrokerConfig) -> PathBuf {
    config.data_dir.join("cars")
}

fn manifest_path(config: &BrokerConfig) -> PathBuf {
    cars_dir(config).join("fleet.json")
}

fn file_error(path: &Path, reason: impl ToString) -> FleetError {
    FleetError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The policy of one car: connect as itself, use its own topics and its own shadow.
fn car_policy(config: &BrokerConfig, thing: &str) -> String {
    let arn = format!("arn:aws:iot:{}:{}", config.region, config.account);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/{thing}")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
                format!("{arn}:topic/cars/{thing}/*"),
                format!("{arn}:topic/$aws/things/{thing}/shadow/*"),
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                format!("{arn}:topicfilter/cars/{thing}/*"),
                format!("{arn}:topicfilter/$aws/things/{thing}/shadow/*"),
            ]},
            {"Effect": "Allow", "Action": "greengrass:Discover", "Resource": format!("{arn}:thing/{thing}")},
        ]
    })
    .to_string()
}

/// The policy of the fleet's WebSocket user: any car's client id, topics and shadow.
fn fleet_policy(config: &BrokerConfig) -> String {
    let arn = format!("arn:aws:iot:{}:{}", config.region, config.account);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/car-*")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
                format!("{arn}:topic/cars/car-*"),
                format!("{arn}:topic/$aws/things/car-*"),
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                format!("{arn}:topicfilter/cars/car-*"),
                format!("{arn}:topicfilter/$aws/things/car-*"),
            ]},
        ]
    })
    .to_string()
}

fn text<'a>(value: &'a Value, pointer: &str, what: &'static str) -> Result<&'a str, FleetError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or(FleetError::Answer(what))
}

/// Makes sure cars `1..=count` exist with credentials and policies, provisioning the missing
/// ones through the admin interface (the running broker's socket, or the data directory when it
/// is stopped), and returns the manifest.
pub fn provision(config: &BrokerConfig, count: usize) -> Result<FleetManifest, FleetError> {
    let dir = cars_dir(config);
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let path = manifest_path(config);
    let mut manifest: FleetManifest = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| file_error(&path, e))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => FleetManifest::default(),
        Err(error) => return Err(file_error(&path, error)),
    };
    if manifest.cars.len() >= count && manifest.access_key.is_some() {
        return Ok(manifest);
    }
    let have = manifest.cars.len();
    let result = crate::admin::run_each(config, |exec| {
        for n in have + 1..=count {
            let thing = thing_name(n);
            // The thing may exist from an interrupted run: then only the credentials are new.
            let _ = exec(AdminCommand::CreateThing {
                thing_name: thing.clone(),
                thing_type_name: Some("simulated-car".into()),
                attributes: vec![format!("fleetIndex={n}")],
            });
            let issued = exec(AdminCommand::CreateKeysAndCertificate {
                set_as_active: true,
                out_dir: Some(dir.clone()),
            })?;
            let certificate_arn = text(&issued, "/certificateArn", "create-keys-and-certificate")
                .map_err(|_| AdminError::Remote("no certificateArn".into()))?
                .to_owned();
            let certificate_id = text(&issued, "/certificateId", "create-keys-and-certificate")
                .map_err(|_| AdminError::Remote("no certificateId".into()))?
                .to_owned();
            exec(AdminCommand::AttachThingPrincipal {
                thing_name: thing.clone(),
                principal: certificate_arn.clone(),
            })?;
            let policy = format!("{thing}-policy");
            let _ = exec(AdminCommand::CreatePolicy {
                policy_name: policy.clone(),
                policy_document: car_policy(config, &thing),
            });
            exec(AdminCommand::AttachPolicy {
                policy_name: policy,
                target: certificate_arn,
            })?;
            manifest.cars.push(CarCredentials {
                thing,
                certificate: dir.join(format!("{certificate_id}.cert.pem")),
                private_key: dir.join(format!("{certificate_id}.private.key")),
                certificate_id,
            });
        }
        if manifest.access_key.is_none() {
            let key = exec(AdminCommand::CreateAccessKey {
                user_name: "cars-fleet".into(),
            })?;
            let id = key
                .pointer("/AccessKey/AccessKeyId")
                .and_then(Value::as_str);
            let secret = key
                .pointer("/AccessKey/SecretAccessKey")
                .and_then(Value::as_str);
            let principal = key.pointer("/principal").and_then(Value::as_str);
            if let (Some(id), Some(secret), Some(principal)) = (id, secret, principal) {
                let _ = exec(AdminCommand::CreatePolicy {
                    policy_name: "cars-fleet".into(),
                    policy_document: fleet_policy(config),
                });
                exec(AdminCommand::AttachPolicy {
                    policy_name: "cars-fleet".into(),
                    target: principal.to_owned(),
                })?;
                manifest.access_key = Some((id.to_owned(), secret.to_owned()));
            }
        }
        Ok(())
    });
    // Keep what was made even if a later car failed: its certificates are registered.
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| file_error(&path, e))?;
    crate::store::data_dir::write_file(&path, &String::from_utf8_lossy(&text), true)
        .map_err(|e| file_error(&path, e))?;
    result?;
    Ok(manifest)
}

/// How the cars reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetTransport {
    /// MQTT over TLS with each car's certificate.
    Mtls,
    /// MQTT over WebSocket, presigned with the fleet's access key.
    Wss,
    /// Plain MQTT (the broker's loopback development port, or Mosquitto).
    Tcp,
}

/// Where each car's broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetRoute {
    /// The broker at the fleet's host and port, trusted by the cloud's CA.
    Direct,
    /// An edge core at the fleet's host and port, trusted by the core's CA (this PEM file).
    Core {
        /// The core's CA certificate.
        ca: PathBuf,
    },
    /// Greengrass discovery: each car asks the cloud (its HTTPS port on the fleet's host) for
    /// its core devices and connects to one, or to the cloud when it has none (mTLS only).
    Discovery {
        /// The cloud's HTTPS (ALPN) port.
        https_port: u16,
    },
}

/// How a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Cars.
    pub count: usize,
    /// Cars of the manifest skipped before the first one run (0: from `car-0001`).
    pub first: usize,
    /// Where the cars' broker is.
    pub route: FleetRoute,
    /// The broker's host (TLS server name).
    pub host: String,
    /// Its port for the transport.
    pub port: u16,
    /// The transport.
    pub transport: FleetTransport,
    /// Telemetry interval.
    pub every: Duration,
    /// Telemetry QoS.
    pub telemetry_qos: QoS,
    /// Persistent sessions (clean session 0).
    pub persistent: bool,
    /// Connections are opened over this long, not all at once.
    pub ramp_up: Duration,
    /// Reconnect delays.
    pub reconnect: ReconnectPolicy,
}

fn tls_config(
    ca: &Path,
    car: Option<&CarCredentials>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let identity = car.map(|c| (c.certificate.as_path(), c.private_key.as_path()));
    client_tls_config(ca, identity).map_err(|e| e.to_string())
}

fn car_identity(car: &CarCredentials) -> Result<DeviceIdentity, FleetError> {
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| file_error(path, e));
    DeviceIdentity::from_pem(&read(&car.certificate)?, &read(&car.private_key)?).map_err(|e| {
        FleetError::Tls {
            thing: car.thing.clone(),
            reason: e.to_string(),
        }
    })
}

/// Runs the fleet until `shutdown`; each car is a task with its own session.
pub async fn run(
    config: &BrokerConfig,
    manifest: &FleetManifest,
    options: &FleetOptions,
    counters: Arc<FleetCounters>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    let ca = match &options.route {
        FleetRoute::Direct | FleetRoute::Discovery { .. } => {
            crate::store::data_dir::DataDir::new(&config.data_dir).ca_cert()
        }
        FleetRoute::Core { ca } => ca.clone(),
    };
    let shared_tls = match options.transport {
        FleetTransport::Wss => Some(tls_config(&ca, None).map_err(|reason| FleetError::Tls {
            thing: "cars-fleet".into(),
            reason,
        })?),
        _ => None,
    };
    let mut tasks = Vec::new();
    let cars = manifest.cars.iter().skip(options.first).take(options.count);
    let step = options.ramp_up / u32::try_from(options.count.max(1)).unwrap_or(u32::MAX);
    for (index, credentials) in cars.enumerate() {
        let transport = match options.transport {
            FleetTransport::Tcp => Transport::Tcp,
            FleetTransport::Mtls => {
                Transport::Tls(tls_config(&ca, Some(credentials)).map_err(|reason| {
                    FleetError::Tls {
                        thing: credentials.thing.clone(),
                        reason,
                    }
                })?)
            }
            FleetTransport::Wss => {
                let (id, secret) = manifest.access_key.clone().unwrap_or_default();
                Transport::WebSocket {
                    tls: shared_tls.clone().ok_or_else(|| FleetError::Tls {
                        thing: credentials.thing.clone(),
                        reason: "no TLS configuration".into(),
                    })?,
                    credentials: SigV4Credentials {
                        access_key_id: id,
                        secret_access_key: secret,
                        session_token: None,
                        region: config.region.clone(),
                    },
                }
            }
        };
        let endpoint = Endpoint {
            host: options.host.clone(),
            port: options.port,
            transport,
        };
        let mut session_options = SessionOptions::new(credentials.thing.as_str()).username(
            format!("?SDK=aws-iot-rs&Version={}", env!("CARGO_PKG_VERSION")),
        );
        session_options.clean_session = !options.persistent;
        let mut session = ClientSession::new(session_options);
        let mut car = Car::new(
            &credentials.thing,
            (options.first + index) as u64 + 1,
            u64::try_from(options.every.as_millis()).unwrap_or(1000),
            options.telemetry_qos,
            &mut session,
            counters.clone(),
        )?;
        let shutdown = shutdown.clone();
        let reconnect = options.reconnect;
        let delay = step * u32::try_from(index).unwrap_or(u32::MAX);
        let discovery = match (&options.route, &endpoint.transport) {
            (FleetRoute::Discovery { https_port }, Transport::Tls(tls)) => {
                let identity = car_identity(credentials)?;
                let cloud = Endpoint {
                    host: options.host.clone(),
                    port: *https_port,
                    transport: Transport::Tls(tls.clone()),
                };
                Some(GreengrassDiscovery::new(
                    &credentials.thing,
                    cloud,
                    identity,
                    vec![endpoint.clone()],
                ))
            }
            _ => None,
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match discovery {
                Some(discovery) => {
                    crate::device::run(session, discovery, &mut car, reconnect, shutdown).await;
                }
                None => {
                    crate::device::run(session, vec![endpoint], &mut car, reconnect, shutdown)
                        .await;
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// CPU seconds (user + system) and resident memory in bytes of this process, from `/proc`.
pub fn process_usage() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // Clock ticks are 100 per second on Linux.
    Some((ticks / 100.0, rss_kib * 1024))
}

/// Logs the fleet's state every `every` until `shutdown`: cars connected, messages, and the
/// process's CPU and memory, in total and per car.
pub async fn report(
    counters: Arc<FleetCounters>,
    cars: usize,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = (process_usage(), std::time::Instant::now(), 0u64);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let usage = process_usage();
        let telemetry = counters.telemetry.load(Ordering::Relaxed);
        let elapsed = last.1.elapsed().as_secs_f64().max(1e-3);
        let cpu = match (usage, last.0) {
            (Some((now, _)), Some((before, _))) => (now - before) / elapsed * 100.0,
            _ => 0.0,
        };
        let rss = usage.map_or(0, |(_, rss)| rss);
        let cars_f = cars.max(1) as f64;
        println!(
            "{}",
            json!({
                "cars": cars,
                "connected": counters.connected.load(Ordering::Relaxed),
                "telemetryPerSecond": ((telemetry - last.2) as f64 / elapsed).round(),
                "delivered": counters.delivered.load(Ordering::Relaxed),
                "deltas": counters.deltas.load(Ordering::Relaxed),
                "commands": counters.commands.load(Ordering::Relaxed),
                "refused": counters.refused.load(Ordering::Relaxed),
                "cpuPercent": (cpu * 10.0).round() / 10.0,
                "cpuPercentPerCar": (cpu / cars_f * 1000.0).round() / 1000.0,
                "rssMiB": (rss as f64 / 1048576.0 * 10.0).round() / 10.0,
                "rssKiBPerCar": (rss as f64 / 1024.0 / cars_f).round(),
            })
        );
        last = (usage, std::time::Instant::now(), telemetry);
    }
}
