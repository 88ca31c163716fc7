//! The cloud broker: AWS IoT Core on one machine. MQTT over TLS with X.509 client certificates
//! (8883, and ALPN `x-amzn-mqtt-ca` on the 443-style port), AWS IoT policies, the Device Shadow
//! service, lifecycle events, a durable store, Prometheus metrics; plus the AWS CLI commands a
//! developer needs to provision devices.
//!
//! `cargo run --release --example broker` starts it with a data directory `./aws-iot-data`
//! (created with a development CA on first run). `--help` lists the commands.

/// mimalloc: per-connection memory and small allocations on the hot paths cost less than with the
/// system allocator (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    iot_examples::broker::cli::main()
}
