//! A fleet of simulated cars for the cloud broker: `cargo run --release --example cars -- --count
//! 5` (with the broker running: `cargo run --release --example broker`). Each car is a thing with
//! its own certificate and policy, provisioned on first run; it sends telemetry every second,
//! keeps its settings in its shadow and answers commands. `--help` lists the options.

fn main() -> std::process::ExitCode {
    iot_examples::device::car::cli::main()
}
