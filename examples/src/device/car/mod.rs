//! The simulated cars: [`CarModel`] (a car on its route, its energy use and weather, its schema
//! of settings, injectable faults), [`Car`] (the car as a device application: telemetry, shadow,
//! commands), [`fleet`] (provisioning and running many in one process), [`features`] (what a
//! model sees of a car's telemetry) and [`dataset`] (the model's training data).
//! `cargo run --release --example cars -- --count N` runs them.

mod app;
pub mod cli;
pub mod dataset;
pub mod features;
pub mod fleet;
mod model;

pub use app::{Car, CarError, FleetCounters, PREDICTED_RANGE_KEY};
pub use features::{FEATURE_NAMES, FEATURES, TelemetryWindow};
pub use model::{
    Applied, CarModel, CommandOutcome, Fault, LIGHTS, RECHARGE_BELOW_PCT, Refusal,
    SPEED_LIMIT_RANGE, consumption_pct_per_km,
};
