//! Simulated telemetry of many cars, with injected faults, as CSV for training the cars' model:
//! `cargo run --release --example car-dataset -- --cars 200 --hours 6 --output car-dataset.csv`.
//! `examples/ml/README.md` tells how the model is trained from it; `--help` lists the options.

fn main() -> std::process::ExitCode {
    iot_examples::device::car::dataset::main()
}
