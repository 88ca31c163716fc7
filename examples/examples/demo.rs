//! Everything at once: the cloud broker on its embedded store (`./aws-iot-data`), an edge core
//! (Greengrass-style, `./aws-iot-data/edge`), a fleet of simulated cars over mTLS, and the web
//! dashboard with a user to sign in as. Every car finds its broker by Greengrass discovery: half
//! of them are associated with the edge core and talk to it (it relays to the cloud, syncs their
//! shadows and keeps them going while the cloud is away); the others talk to the cloud.
//!
//! `cargo run --release --example demo` (`-- --cars 20` for more, `--edge-cars 0` for none behind
//! the core). The first run provisions the cars, the core, the dashboard user and its policy;
//! later runs reuse them. It prints the dashboard's URL and the login; Ctrl-C stops the cars, the
//! core, then the broker (wills fire, the stores are committed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use iot_examples::admin::{self, AdminCommand};
use iot_examples::config::BrokerConfig;
use iot_examples::config::edge::EdgeConfig;
use iot_examples::device::ReconnectPolicy;
use iot_examples::device::car::FleetCounters;
use iot_examples::device::car::fleet::{self, FleetOptions, FleetRoute, FleetTransport};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The broker, a fleet of cars and the dashboard, in one process.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Cli {
    /// How many cars.
    #[arg(long, default_value_t = 10)]
    cars: usize,
    /// How many of them (the last ones) are behind the edge core (default: half).
    #[arg(long)]
    edge_cars: Option<usize>,
    /// The broker's configuration file (defaults need none).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory (overrides the configuration's).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Why the dashboard user could not be made or read.
#[derive(Debug, thiserror::Error)]
enum LoginError {
    /// The saved login is not JSON.
    #[error("{path}: {error}")]
    Saved {
        path: PathBuf,
        error: serde_json::Error,
    },
    /// No randomness for the password.
    #[error("no randomness: {0}")]
    Random(String),
    /// An admin command failed.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    /// The edge core could not be provisioned.
    #[error(transparent)]
    Core(#[from] iot_examples::edge::provision::ProvisionError),
    /// The login could not be saved.
    #[error(transparent)]
    Write(#[from] iot_examples::store::data_dir::SetupError),
}

/// The dashboard user made on first run, kept in `{data_dir}/dashboard-login.json` (0600).
fn dashboard_login(config: &BrokerConfig) -> Result<(String, String), LoginError> {
    let path = config.data_dir.join("dashboard-login.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let saved: Value = serde_json::from_str(&text).map_err(|error| LoginError::Saved {
            path: path.clone(),
            error,
        })?;
        if let (Some(user), Some(password)) = (
            saved.get("user").and_then(Value::as_str),
            saved.get("password").and_then(Value::as_str),
        ) {
            return Ok((user.to_owned(), password.to_owned()));
        }
    }
    let mut bytes = [0u8; 9];
    getrandom::fill(&mut bytes).map_err(|e| LoginError::Random(e.to_string()))?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let user = "demo".to_owned();
    admin::run_each(config, |exec| {
        exec(AdminCommand::CreateLoginProfile {
            user_name: user.clone(),
            password: password.clone(),
        })?;
        let _ = exec(AdminCommand::CreatePolicy {
            policy_name: "dashboard".into(),
            policy_document: admin::dashboard_policy(&config.region, &config.account),
        });
        exec(AdminCommand::AttachPolicy {
            policy_name: "dashboard".into(),
            target: format!("arn:aws:iam::{}:user/{user}", config.account),
        })
    })?;
    let text = json!({"user": user, "password": password}).to_string();
    iot_examples::store::data_dir::write_file(&path, &text, true)?;
    Ok((user, password))
}

/// Makes the core a thing of the cloud (once) and associates cars `first+1..` with it.
fn provision_edge(
    config: &BrokerConfig,
    edge: &EdgeConfig,
    manifest: &fleet::FleetManifest,
    first: usize,
) -> Result<(), LoginError> {
    iot_examples::edge::provision::provision_core(config, edge)?;
    let things: Vec<String> = manifest
        .cars
        .iter()
        .skip(first)
        .map(|c| c.thing.clone())
        .collect();
    iot_examples::edge::provision::associate_client_devices(config, &edge.thing_name, &things)?;
    // Cars provisioned by an earlier demo have policies without `greengrass:Discover`: one more
    // policy lets every car behind the core discover it (attaching it again is harmless).
    let arn = format!("arn:aws:iot:{}:{}", config.region, config.account);
    let discover = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "greengrass:Discover",
                       "Resource": format!("{arn}:thing/car-*")}]
    })
    .to_string();
    admin::run_each(config, |exec| {
        let _ = exec(AdminCommand::CreatePolicy {
            policy_name: "car-discovery".into(),
            policy_document: discover,
        });
        for car in manifest.cars.iter().skip(first) {
            let _ = exec(AdminCommand::AttachPolicy {
                policy_name: "car-discovery".into(),
                target: format!("{arn}:cert/{}", car.certificate_id),
            });
        }
        Ok(())
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    iot_examples::config::init_logging("warn");
    let config =
        match BrokerConfig::load_with_data_dir(cli.config.as_deref(), cli.data_dir.as_deref()) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
    // Provisioned with the broker stopped: on the data directory, one commit each.
    let manifest = match fleet::provision(&config, cli.cars) {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (user, password) = match dashboard_login(&config) {
        Ok(login) => login,
        Err(error) => {
            eprintln!("error: dashboard user: {error}");
            return ExitCode::FAILURE;
        }
    };
    let edge_cars = cli.edge_cars.unwrap_or(cli.cars / 2).min(cli.cars);
    let first_edge_car = cli.cars - edge_cars;
    let edge = EdgeConfig::beside(&config);
    if edge_cars > 0 {
        if let Err(error) = provision_edge(&config, &edge, &manifest, first_edge_car) {
            eprintln!("error: edge core: {error}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match iot_examples::net::signal::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let running = match iot_examples::broker::server::start(&config).await {
            Ok(running) => running,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let core = if edge_cars > 0 {
            let mut edge = edge.clone();
            edge.cloud.mqtts_port = running.mqtts.port();
            edge.cloud.https_port = running.alpn.map_or(8443, |a| a.port());
            match iot_examples::edge::server::start(&edge).await {
                Ok(core) => {
                    if !core.registered(Duration::from_secs(10)).await {
                        eprintln!("warning: the edge core is not registered for discovery yet");
                    }
                    Some(core)
                }
                Err(error) => {
                    eprintln!("error: edge core: {error}");
                    running.shutdown().await;
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let (stop, shutdown) = watch::channel(false);
        let options = FleetOptions {
            first: 0,
            route: match running.alpn {
                Some(alpn) => FleetRoute::Discovery {
                    https_port: alpn.port(),
                },
                None => FleetRoute::Direct,
            },
            count: cli.cars,
            host: "localhost".into(),
            port: running.mqtts.port(),
            transport: FleetTransport::Mtls,
            every: Duration::from_secs(1),
            telemetry_qos: mqtt_codec::QoS::AtLeastOnce,
            persistent: true,
            ramp_up: Duration::from_secs(2),
            reconnect: ReconnectPolicy::default(),
        };
        let fleet_task = tokio::spawn({
            let config = config.clone();
            async move {
                fleet::run(
                    &config,
                    &manifest,
                    &options,
                    Arc::new(FleetCounters::default()),
                    shutdown,
                )
                .await
            }
        });
        let dashboard = running.alpn.map_or_else(
            || "(the ALPN port is off)".to_owned(),
            |a| format!("https://localhost:{}/dashboard/", a.port()),
        );
        println!(
            "\n  Dashboard  {dashboard}\n  Sign in    user {user}, password {password}\n  \
             ({} cars; the page's certificate comes from the development CA {}: accept it or\n  \
             trust that CA in your browser)\n  MQTT/TLS   localhost:{}   metrics {}\n  \
             Edge core  {}\n  Ctrl-C stops everything.\n",
            cli.cars,
            iot_examples::store::data_dir::DataDir::new(&config.data_dir)
                .ca_cert()
                .display(),
            running.mqtts.port(),
            running
                .metrics
                .map_or_else(|| "off".to_owned(), |m| format!("http://{m}/metrics")),
            core.as_ref().map_or_else(
                || "none".to_owned(),
                |c| format!(
                    "{} at localhost:{} with {edge_cars} cars behind it (cars {}-{})",
                    edge.thing_name,
                    c.local_mqtts.port(),
                    first_edge_car + 1,
                    cli.cars
                )
            ),
        );
        iot_examples::net::signal::terminated().await;
        println!("stopping: cars, the edge core, then the broker");
        let _ = stop.send(true);
        if let Ok(Err(error)) = fleet_task.await {
            eprintln!("error: {error}");
        }
        if let Some(core) = core {
            core.shutdown().await;
        }
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
