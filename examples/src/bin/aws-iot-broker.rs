//! The cloud broker as an installable binary (`cargo install --path examples`); the same program as
//! `cargo run --example broker`.

fn main() -> std::process::ExitCode {
    iot_examples::broker::cli::main()
}
