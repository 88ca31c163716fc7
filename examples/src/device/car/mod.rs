//! The simulated cars: [`CarModel`] (a car on its route, its schema of settings), [`Car`] (the
//! car as a device application: telemetry, shadow, commands) and [`fleet`] (provisioning and
//! running many in one process). `cargo run --release --example cars -- --count N` runs them.

mod app;
pub mod cli;
pub mod fleet;
mod model;

pub use app::{Car, CarError, FleetCounters, PREDICTED_RANGE_KEY};
pub use model::{Applied, CarModel, CommandOutcome, LIGHTS, Refusal, SPEED_LIMIT_RANGE};
