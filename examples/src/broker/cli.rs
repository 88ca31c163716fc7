//! The cloud broker's command line: `serve` (the default) and the AWS-CLI-style administrative
//! commands. The `broker` example and the `aws-iot-broker` binary both run [`main`].

use std::path::PathBuf;
use std::process::ExitCode;

use crate::admin::AdminCommand;
use crate::config::BrokerConfig;
use crate::store::data_dir::DataDir;
use clap::{Parser, Subcommand};
use serde_json::json;

/// AWS IoT Core on one machine: MQTT over TLS with X.509 client certificates, HTTPS publish and
/// MQTT over WebSocket with SigV4, IoT policies and the Device Shadow service, durable by default.
///
/// Without a command it serves (MQTT/TLS on 8883, HTTPS, WebSocket and ALPN MQTT on 8443,
/// metrics on 127.0.0.1:9464), creating the data directory with a development CA on first run.
/// The other commands act on the data directory as the AWS CLI acts on your account; while the
/// broker runs they go through its admin socket and take effect at once.
#[derive(Debug, Parser)]
#[command(name = "aws-iot-broker", version)]
struct Cli {
    /// Configuration file (TOML; see examples/broker.example.toml). Defaults need none.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration's `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MQTT/TLS, HTTPS and MQTT over WebSocket until SIGINT or SIGTERM (the default).
    Serve,
    #[command(flatten)]
    Admin(AdminCommand),
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::config::init_logging("info");
    let config =
        match BrokerConfig::load_with_data_dir(cli.config.as_deref(), cli.data_dir.as_deref()) {
            Ok(config) => config,
            Err(error) => return fail(error),
        };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Admin(command) => match crate::admin::run(&config, command) {
            Ok(output) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail(error),
        },
    }
}

fn serve(config: &BrokerConfig) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(error),
    };
    runtime.block_on(async {
        let running = match super::server::start(config).await {
            Ok(running) => running,
            Err(error) => return fail(error),
        };
        let ready = json!({
            "mqtts": running.mqtts.to_string(),
            "alpn": running.alpn.map(|a| a.to_string()),
            "plain_mqtt": running.plain_mqtt.map(|a| a.to_string()),
            "metrics": running.metrics.map(|a| a.to_string()),
            "ca": DataDir::new(&config.data_dir).ca_cert().display().to_string(),
        });
        tracing::info!(%ready, "broker ready");
        println!("READY {ready}");
        crate::net::signal::terminated().await;
        tracing::info!("shutting down: closing connections, firing wills, committing the store");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
