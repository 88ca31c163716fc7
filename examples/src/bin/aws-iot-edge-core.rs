//! The edge core as an installable binary (`cargo install --path examples`); the same program as
//! `cargo run --example edge-core`.

fn main() -> std::process::ExitCode {
    iot_examples::edge::cli::main()
}
