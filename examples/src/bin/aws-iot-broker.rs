//! The cloud broker as an installable binary (`cargo install --path examples`); the same program as
//! `cargo run --example broker`.

/// mimalloc: per-connection memory and small allocations on the hot paths cost less than with the
/// system allocator (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    iot_examples::broker::cli::main()
}
