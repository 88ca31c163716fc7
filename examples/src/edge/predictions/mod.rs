//! Predictions at the edge: the core runs a machine-learning model on its cars' telemetry (the
//! role of Greengrass's ML inference components), with the cloud or without it.
//!
//! - [`model`]: the ONNX model (the project's own, `examples/ml/`), loaded with `tract` and
//!   checked against its contract;
//! - [`slot`]: the model in use, swapped for a new file without a restart (a refused file leaves
//!   the running model in place);
//! - [`handler`]: the local handler: features per car, a prediction per telemetry message,
//!   alerts, the range in the car's shadow.

pub mod handler;
pub mod model;
pub mod slot;
