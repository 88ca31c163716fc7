//! The `edge-core` program's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use super::provision::provision_core;
use super::server;
use crate::config::BrokerConfig;
use crate::config::edge::EdgeConfig;

/// A Greengrass-style edge core: a local MQTT broker for the cars (MQTT over TLS, client device
/// auth by device groups), a bridge to the cloud with a durable spool, local shadows synced with
/// the cloud's, and local handlers. Cars keep talking to each other while the cloud is away.
#[derive(Debug, Parser)]
#[command(name = "edge-core", version)]
struct Cli {
    /// The core's configuration file (`edge-core.example.toml` documents it; defaults need none).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The core's data directory (overrides the configuration's).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Provision the core in the cloud first (thing, certificate, policy) when its certificate
    /// file is missing, through the cloud broker's admin interface.
    #[arg(long)]
    provision: bool,
    /// Only provision (as `--provision`), then exit.
    #[arg(long)]
    provision_only: bool,
    /// The cloud broker's configuration file (for `--provision`).
    #[arg(long, value_name = "FILE")]
    cloud_config: Option<PathBuf>,
    /// The cloud broker's data directory (for `--provision`).
    #[arg(long, value_name = "DIR")]
    cloud_data_dir: Option<PathBuf>,
    /// Log the core's status every this many seconds (0: never).
    #[arg(long, default_value_t = 10)]
    status_secs: u64,
}

/// Parses the command line, provisions if asked, runs the core until Ctrl-C or SIGTERM.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::config::init_logging("info");
    let mut config = match EdgeConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if cli.provision || cli.provision_only {
        let cloud = match BrokerConfig::load_with_data_dir(
            cli.cloud_config.as_deref(),
            cli.cloud_data_dir.as_deref(),
        ) {
            Ok(cloud) => cloud,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        match provision_core(&cloud, &config) {
            Ok(true) => println!("provisioned core {} in the cloud", config.thing_name),
            Ok(false) => {}
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
        if cli.provision_only {
            return ExitCode::SUCCESS;
        }
    }
    let runtime = match crate::net::signal::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let running = match server::start(&config).await {
            Ok(running) => running,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let ready = serde_json::json!({
            "core": config.thing_name,
            "localMqtts": running.local_mqtts.to_string(),
            "cloud": format!("{}:{}", config.cloud.host, config.cloud.mqtts_port),
        });
        println!("READY {ready}");
        let status = async {
            if cli.status_secs == 0 {
                return std::future::pending::<()>().await;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(cli.status_secs)).await;
                if let Some(parts) = &running.predictions {
                    use std::sync::atomic::Ordering::Relaxed;
                    let done = parts.stats.predictions.load(Relaxed);
                    let ns = parts.stats.inference_ns.load(Relaxed);
                    tracing::info!(
                        model = parts.slot.status().model_id,
                        predictions = done,
                        alerts = parts.stats.alerts.load(Relaxed),
                        mean_inference_us = ns / done.max(1) / 1000,
                        "edge predictions"
                    );
                }
                if let Some(status) = running.status().await {
                    tracing::info!(
                        cloud = status.cloud_connected,
                        things = status.things.len(),
                        spooled = status.spool.queued,
                        to_cloud = status.counters.to_cloud,
                        from_cloud = status.counters.from_cloud,
                        "edge status"
                    );
                }
            }
        };
        tokio::select! {
            () = crate::net::signal::terminated() => {}
            () = status => {}
        }
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
