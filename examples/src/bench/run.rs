//! One run from options to report: pick the scenario, sample the broker alongside, write the JSON.

use std::process::ExitCode;

use clap::Parser;
use rustls::pki_types::ServerName;
use tokio::sync::watch;

use super::clock::unix_us;
use super::error::BenchError;
use super::options::{BenchArgs, BenchOptions, Scenario};
use super::process;
use super::report::{Report, Settings};
use super::scenario::{self, ScenarioOutcome};
use super::transport::{Target, TlsTarget, tls_config};

/// Runs the benchmark `options` describe and returns what it measured (also written to
/// `options.json` when set). Connection failures are counted in the report, not returned as errors.
pub async fn run(options: &BenchOptions) -> Result<Report, BenchError> {
    let target = target(options)?;
    let tag = scenario::run_tag(unix_us());
    let (stop, stopped) = watch::channel(false);
    let sampler = options
        .broker_pid
        .map(|pid| tokio::spawn(process::sample_until(pid, stopped)));
    let outcome = match options.scenario {
        Scenario::Pairs | Scenario::Fanout | Scenario::Fanin => {
            match scenario::topology(options.scenario, options.clients, &tag) {
                Some(topology) => scenario::flow::run(options, &target, topology, &tag).await,
                None => ScenarioOutcome::default(),
            }
        }
        Scenario::Idle => scenario::idle::run(options, &target, &tag).await,
        Scenario::ConnectBurst => scenario::burst::run(options, &target, &tag).await,
        Scenario::Shadow => scenario::shadow::run(options, &target, &tag).await,
    };
    let _ = stop.send(true);
    let broker = match (options.broker_pid, sampler) {
        (Some(pid), Some(task)) => {
            let samples = task.await.unwrap_or_default();
            let (from, to) = outcome.window_us;
            Some(process::usage(pid, &samples, from, to))
        }
        _ => None,
    };
    let report = Report {
        label: options.label.clone(),
        scenario: options.scenario,
        settings: Settings::of(options),
        connections: outcome.connections,
        messages: outcome.messages,
        latency: outcome.latency,
        broker,
        idle: outcome.idle,
        burst: outcome.burst,
        shadow: outcome.shadow,
    };
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|error| BenchError::Output {
            path: path.clone(),
            error,
        })?;
    }
    Ok(report)
}

fn target(options: &BenchOptions) -> Result<Target, BenchError> {
    let tls = match &options.tls {
        None => None,
        Some(files) => {
            let identity = files
                .identity
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path()));
            let config = tls_config(&files.ca, identity)?;
            let server_name = ServerName::try_from(files.server_name.clone()).map_err(|_| {
                BenchError::Options(format!("{:?} is not a TLS server name", files.server_name))
            })?;
            Some(TlsTarget {
                config,
                server_name,
            })
        }
    };
    Ok(Target {
        host: options.host.clone(),
        port: options.port,
        tls,
    })
}

/// The `bench` program: parses the command line, raises the open-file limit, runs, prints the
/// summary. Exit code 0 when the run completed (its report tells how well), 1 when it could not
/// run or nothing connected, 2 for bad options.
pub fn main() -> ExitCode {
    crate::config::init_logging("warn");
    let options = match BenchOptions::from_args(BenchArgs::parse()) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("bench: {error}");
            return ExitCode::from(2);
        }
    };
    match super::fd_limit::raise_nofile_to_hard() {
        Ok(limit) if limit < options.clients as u64 + 64 => eprintln!(
            "bench: warning: the open-file limit is {limit}, too low for {} connections",
            options.clients
        ),
        Ok(_) => {}
        Err(error) => eprintln!("bench: warning: cannot raise the open-file limit: {error}"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => {
            print!("{}", report.summary());
            if report.connections.connected == 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}
