//! The project's own MQTT load generator (`cargo run --release --example bench -- --help`): tokio
//! and the workspace's codec, against any MQTT 3.1.1 broker over TCP or TLS.
//!
//! Scenarios ([`options::Scenario`]): pairs, fan-out, fan-in, idle connections, a connect burst,
//! and Device Shadow updates; QoS 0 or 1, payloads of 24 B to 16 KiB, open loop (QoS 1 bounded by
//! a window of unacknowledged publishes per publisher) or a fixed total rate. Every payload
//! carries a [`stamp::Stamp`] (publisher, sequence, send time), so subscribers measure latency
//! into an HDR histogram ([`latency`]) and count lost, duplicated and reordered messages per
//! publisher ([`sequence`]). With `--broker-pid` the broker's memory and CPU are sampled from
//! `/proc` ([`process`]). Results print as a summary and, with `--json`, as a [`report::Report`].
//! `examples/scripts/bench-peers.sh` runs the same scenarios against this broker, Mosquitto and
//! rumqttd and writes `BENCHMARKS.md`.
//!
//! Every loop is bounded in count and time: set-up, each run and the drain after it have
//! deadlines, so a broker that refuses or drops connections is reported, never waited on forever.
//!
//! May import: nothing of the other program folders (it talks to brokers over the wire only).
//!
//! ```
//! use iot_examples::bench::options::{BenchOptions, Scenario};
//! // Nothing listens on port 1: every connect fails, and the run says so instead of hanging.
//! let mut options = BenchOptions::new(Scenario::ConnectBurst, "127.0.0.1", 1);
//! options.clients = 3;
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! let report = runtime.block_on(iot_examples::bench::run(&options)).unwrap();
//! assert_eq!(report.connections.connected, 0);
//! assert_eq!(report.connections.errors.get("connect"), Some(&3));
//! ```

pub mod clock;
pub mod connection;
pub mod error;
pub mod fd_limit;
pub mod latency;
pub mod options;
pub mod pacing;
pub mod process;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod sequence;
pub mod stamp;
pub mod transport;

mod run;

pub use error::BenchError;
pub use run::{main, run};
