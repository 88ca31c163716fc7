//! The `cars` program's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mqtt_codec::QoS;
use tokio::sync::watch;

use super::FleetCounters;
use super::fleet::{self, FleetOptions, FleetRoute, FleetTransport};
use crate::config::BrokerConfig;
use crate::device::ReconnectPolicy;

/// A fleet of simulated cars for the broker: each car a thing with its own certificate and
/// policy (provisioned through the broker's admin interface on first run, kept in
/// `{data_dir}/cars/`), sending telemetry every second on `cars/{thing}/telemetry`, keeping its
/// settings in its classic shadow and answering commands on `cars/{thing}/commands`.
#[derive(Debug, Parser)]
#[command(name = "cars", version)]
struct Cli {
    /// How many cars.
    #[arg(long, default_value_t = 5)]
    count: usize,
    /// The broker's configuration file (for its data directory, region and account).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The broker's data directory (overrides the configuration's).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The broker's host name (TLS server name).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The port (default: 8883 for mtls, 8443 for wss, 1883 for tcp).
    #[arg(long)]
    port: Option<u16>,
    /// How the cars connect.
    #[arg(long, value_enum, default_value_t = FleetTransport::Mtls)]
    transport: FleetTransport,
    /// Skip this many cars of the fleet (run `car-{first+1}` onwards).
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Connect to an edge core at --host/--port instead of the cloud, trusting the core's CA
    /// (its `{data_dir}/ca/ca.pem`).
    #[arg(long, value_name = "FILE", conflicts_with = "discover")]
    core_ca: Option<PathBuf>,
    /// Find each car's broker by Greengrass discovery (the cloud's HTTPS port on --host): its
    /// edge core when it is associated with one, else the cloud (mTLS only).
    #[arg(long)]
    discover: bool,
    /// Telemetry interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Telemetry QoS (0 or 1).
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// Use persistent sessions (clean session 0).
    #[arg(long)]
    persistent: bool,
    /// Reconnect delay ceiling of the first attempt, in milliseconds (doubling per attempt,
    /// full jitter).
    #[arg(long, default_value_t = 250)]
    reconnect_base_ms: u64,
    /// The largest reconnect delay, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    reconnect_cap_ms: u64,
    /// Open the connections over this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    ramp_up_ms: u64,
    /// Report connections, messages, CPU and memory every this many seconds (0: never).
    #[arg(long, default_value_t = 10)]
    report_secs: u64,
    /// Stop after this many seconds (default: on Ctrl-C or SIGTERM).
    #[arg(long)]
    duration_secs: Option<u64>,
}

/// Parses the command line, provisions what is missing, runs the fleet; returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::config::init_logging("warn");
    let config =
        match BrokerConfig::load_with_data_dir(cli.config.as_deref(), cli.data_dir.as_deref()) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
    let manifest = match fleet::provision(&config, cli.first + cli.count) {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = FleetOptions {
        first: cli.first,
        route: match (&cli.core_ca, cli.discover) {
            (Some(ca), _) => FleetRoute::Core { ca: ca.clone() },
            (None, true) => FleetRoute::Discovery {
                https_port: config.listeners.alpn_port.unwrap_or(8443),
            },
            (None, false) => FleetRoute::Direct,
        },
        count: cli.count,
        host: cli.host.clone(),
        port: cli.port.unwrap_or(match cli.transport {
            FleetTransport::Mtls => config.listeners.mqtts_port,
            FleetTransport::Wss => config.listeners.alpn_port.unwrap_or(8443),
            FleetTransport::Tcp => config.listeners.plain_mqtt.map_or(1883, |a| a.port()),
        }),
        transport: cli.transport,
        every: Duration::from_millis(cli.interval_ms.max(1)),
        telemetry_qos: if cli.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        },
        persistent: cli.persistent,
        ramp_up: Duration::from_millis(cli.ramp_up_ms),
        reconnect: ReconnectPolicy {
            base: Duration::from_millis(cli.reconnect_base_ms.max(1)),
            cap: Duration::from_millis(cli.reconnect_cap_ms.max(1)),
        },
    };
    let runtime = match crate::net::signal::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let (stop, shutdown) = watch::channel(false);
        let counters = Arc::new(FleetCounters::default());
        println!(
            "READY {}",
            serde_json::json!({"cars": options.count, "host": options.host, "port": options.port})
        );
        if cli.report_secs > 0 {
            tokio::spawn(fleet::report(
                counters.clone(),
                options.count,
                Duration::from_secs(cli.report_secs),
                shutdown.clone(),
            ));
        }
        let duration = cli.duration_secs;
        tokio::spawn(async move {
            match duration {
                Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                None => crate::net::signal::terminated().await,
            }
            let _ = stop.send(true);
        });
        match fleet::run(&config, &manifest, &options, counters, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
