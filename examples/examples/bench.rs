//! The MQTT load generator: `cargo run --release --example bench -- --help`. Scenarios, options
//! and results are described in `iot_examples::bench`; `examples/scripts/bench-peers.sh` compares
//! brokers with it.

fn main() -> std::process::ExitCode {
    iot_examples::bench::main()
}
