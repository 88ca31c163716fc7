//! The command line (`cargo run --release --example bench -- --help`) and the checked options a
//! run takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::error::BenchError;
use super::stamp::STAMP_LEN;

/// What load to put on the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `--clients` publishers, each to its own topic, each with its own subscriber.
    Pairs,
    /// One publisher, `--clients` subscribers on its topic.
    Fanout,
    /// `--clients` publishers on their own topics, one subscriber on a wildcard over them all.
    Fanin,
    /// `--clients` connections opened and held for `--duration`; memory per connection.
    Idle,
    /// `--clients` connects at once: connect rate and connect-to-CONNACK latency.
    ConnectBurst,
    /// Device Shadow updates (QoS 1, about `--payload` bytes) over `--things` things, from
    /// `--clients` connections, counting `/update/accepted` answers (AWS-style brokers only).
    Shadow,
}

/// The load generator's command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bench",
    args_override_self = true,
    about = "MQTT load generator: pairs, fan-out, fan-in, idle connections, connect bursts and shadow updates against any MQTT 3.1.1 broker"
)]
pub struct BenchArgs {
    /// The scenario.
    #[arg(long, value_enum, default_value = "pairs")]
    pub scenario: Scenario,
    /// How many clients (pairs, subscribers, publishers, connections or connects; see --help of each scenario).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Shadow scenario: how many things.
    #[arg(long, default_value_t = 2000)]
    pub things: usize,
    /// Shadow scenario: most updates per second to one thing (AWS allows 20).
    #[arg(long, default_value_t = 15.0)]
    pub thing_rate: f64,
    /// Publish QoS (0 or 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Payload bytes (24 to 16384; the first 24 hold the stamp).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Total publish rate in messages per second; absent: open loop (as fast as the broker takes).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Unacknowledged QoS 1 publishes allowed per publisher (and shadow requests per client).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=65535))]
    pub inflight: u16,
    /// Seconds measured (idle: seconds the connections are held).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// The broker's host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The broker's port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Use TLS (needs --ca).
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) the server certificate must chain to.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), with --key.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM), with --cert.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// TLS server name (SNI) when it differs from --host.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The broker's process id, to sample its memory and CPU from /proc.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// A name for the broker in the results (e.g. ours, mosquitto, rumqttd).
    #[arg(long, default_value = "broker")]
    pub label: String,
    /// How many connects may be under way at once while setting up (idle and shadow clients).
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates (PEM).
    pub ca: PathBuf,
    /// Client certificate chain and key (PEM).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Server name (SNI).
    pub server_name: String,
}

/// Checked options for one run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The scenario.
    pub scenario: Scenario,
    /// How many clients (see [`Scenario`]).
    pub clients: usize,
    /// Shadow: things.
    pub things: usize,
    /// Shadow: most updates per second to one thing.
    pub thing_rate: f64,
    /// Publish QoS, 0 or 1.
    pub qos: u8,
    /// Payload bytes.
    pub payload: usize,
    /// Total messages per second, or open loop.
    pub rate: Option<f64>,
    /// QoS 1 window per publisher.
    pub inflight: u16,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured load before.
    pub warmup: Duration,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS, when used.
    pub tls: Option<TlsFiles>,
    /// JSON output file.
    pub json: Option<PathBuf>,
    /// Broker process to sample.
    pub broker_pid: Option<u32>,
    /// Broker name in the results.
    pub label: String,
    /// Parallel connects while setting up.
    pub connect_concurrency: usize,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// The most clients of one run (the fd limit is the real bound; this stops typos).
pub const MAX_CLIENTS: usize = 100_000;
/// The largest payload.
pub const MAX_PAYLOAD: usize = 16_384;

impl BenchOptions {
    /// Options with the defaults of the command line for `scenario` at `host:port`.
    ///
    /// ```
    /// use iot_examples::bench::options::{BenchOptions, Scenario};
    /// let options = BenchOptions::new(Scenario::Pairs, "127.0.0.1", 1883);
    /// assert_eq!((options.clients, options.qos, options.payload), (8, 1, 64));
    /// ```
    pub fn new(scenario: Scenario, host: &str, port: u16) -> BenchOptions {
        let mut args = BenchArgs::parse_from(["bench"]);
        args.scenario = scenario;
        args.host = host.to_owned();
        args.port = port;
        args.quiet = true;
        // The defaults are valid.
        BenchOptions::from_args(args).unwrap_or_else(|_| BenchOptions::fallback(scenario))
    }

    fn fallback(scenario: Scenario) -> BenchOptions {
        BenchOptions {
            scenario,
            clients: 8,
            things: 2000,
            thing_rate: 15.0,
            qos: 1,
            payload: 64,
            rate: None,
            inflight: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            host: "127.0.0.1".into(),
            port: 1883,
            tls: None,
            json: None,
            broker_pid: None,
            label: "broker".into(),
            connect_concurrency: 256,
            progress: false,
        }
    }

    /// Checks the command line.
    pub fn from_args(args: BenchArgs) -> Result<BenchOptions, BenchError> {
        let bad = |text: &str| Err(BenchError::Options(text.to_owned()));
        if !(STAMP_LEN..=MAX_PAYLOAD).contains(&args.payload) {
            return bad("--payload must be 24 to 16384 bytes");
        }
        if args.clients == 0 || args.clients > MAX_CLIENTS {
            return bad("--clients must be 1 to 100000");
        }
        if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return bad("--rate must be a positive number of messages per second");
        }
        let seconds = |value: f64, name: &str| {
            if value.is_finite() && (0.0..=86_400.0).contains(&value) {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(BenchError::Options(format!(
                    "{name} must be 0 to 86400 seconds"
                )))
            }
        };
        let duration = seconds(args.duration, "--duration")?;
        let warmup = seconds(args.warmup, "--warmup")?;
        if args.scenario == Scenario::Shadow {
            if args.things == 0 || args.things > 1_000_000 {
                return bad("--things must be 1 to 1000000");
            }
            if !(args.thing_rate.is_finite() && args.thing_rate > 0.0) {
                return bad("--thing-rate must be positive");
            }
        }
        let tls = match (args.tls, args.ca, args.cert, args.key) {
            (false, None, None, None) => None,
            (true, Some(ca), cert, key) => {
                let identity = match (cert, key) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    _ => return bad("--cert and --key go together"),
                };
                Some(TlsFiles {
                    ca,
                    identity,
                    server_name: args.server_name.unwrap_or_else(|| args.host.clone()),
                })
            }
            (true, None, ..) => return bad("--tls needs --ca"),
            (false, ..) => return bad("--ca, --cert and --key need --tls"),
        };
        Ok(BenchOptions {
            scenario: args.scenario,
            clients: args.clients,
            things: args.things,
            thing_rate: args.thing_rate,
            qos: args.qos,
            payload: args.payload,
            rate: args.rate,
            inflight: args.inflight,
            duration,
            warmup,
            host: args.host,
            port: args.port,
            tls,
            json: args.json,
            broker_pid: args.broker_pid,
            label: args.label,
            connect_concurrency: args.connect_concurrency.clamp(1, 10_000),
            progress: !args.quiet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<BenchOptions, BenchError> {
        let args = BenchArgs::try_parse_from(std::iter::once("bench").chain(line.iter().copied()))
            .map_err(|e| BenchError::Options(e.to_string()))?;
        BenchOptions::from_args(args)
    }

    #[test]
    fn a_full_command_line() {
        let o = parse(&[
            "--scenario",
            "fanout",
            "--clients",
            "100",
            "--qos",
            "0",
            "--payload",
            "16384",
            "--rate",
            "5000",
            "--duration",
            "1.5",
            "--warmup",
            "0",
            "--json",
            "out.json",
        ]);
        let o = o.ok();
        assert!(o.as_ref().is_some_and(|o| o.scenario == Scenario::Fanout
            && o.clients == 100
            && o.qos == 0
            && o.rate == Some(5000.0)
            && o.duration == Duration::from_millis(1500)));
    }

    #[test]
    fn out_of_range_options_are_refused() {
        for line in [
            &["--payload", "23"][..],
            &["--payload", "16385"],
            &["--clients", "0"],
            &["--rate", "0"],
            &["--rate", "-3"],
            &["--duration", "-1"],
            &["--qos", "2"],
            &["--tls"],
            &["--ca", "ca.pem"],
            &["--tls", "--ca", "ca.pem", "--cert", "c.pem"],
            &["--inflight", "0"],
            &["--scenario", "shadow", "--things", "0"],
        ] {
            assert!(parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn tls_names_the_host_unless_told() {
        let o = parse(&["--tls", "--ca", "ca.pem", "--host", "localhost"]).ok();
        assert_eq!(
            o.and_then(|o| o.tls).map(|t| t.server_name),
            Some("localhost".into())
        );
    }
}
