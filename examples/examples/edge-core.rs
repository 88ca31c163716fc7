//! The edge core, modeled on AWS IoT Greengrass v2's client-device components:
//! `cargo run --release --example edge-core -- --provision` (with the cloud broker's data
//! directory at `./aws-iot-data`). Cars connect to it over MQTT/TLS (port 8884 by default), it
//! relays to the cloud, spools while the cloud is away and syncs the cars' shadows.
//! `--help` lists the options; `edge-core.example.toml` documents the configuration.

fn main() -> std::process::ExitCode {
    iot_examples::edge::cli::main()
}
