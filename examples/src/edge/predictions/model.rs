//! The prediction model: an ONNX file run with `tract` (pure Rust, no native runtime). Its
//! contract (`examples/ml/README.md`): one input, float32 `[N, 6]` with the features of
//! [`crate::device::car::features`] in [`FEATURE_NAMES`](crate::device::car::features::FEATURE_NAMES)
//! order; one output, float32 `[N, 2]` = `[range_km, anomaly_score]`. A file that does not load,
//! or whose shapes are not these, is refused with an error naming the file and what was wrong.

use tract_onnx::prelude::*;

use crate::device::car::features::FEATURES;

/// The model the project trains (`examples/ml/train.py`), built into the program.
pub const BUILT_IN_MODEL: &[u8] = include_bytes!("../../../ml/car-model.onnx");

/// A model that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model {origin}: {reason}")]
pub struct ModelError {
    /// Where it came from (a path, or "built-in").
    pub origin: String,
    /// What was wrong.
    pub reason: String,
}

/// One prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Remaining range, km.
    pub range_km: f32,
    /// How unusual the telemetry is, about 0 (normal) to 1 (anomalous).
    pub anomaly_score: f32,
}

type Plan = Arc<TypedRunnableModel>;

/// A loaded, checked model, ready to run.
pub struct PredictionModel {
    id: String,
    source: String,
    plan: Plan,
}

impl std::fmt::Debug for PredictionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionModel")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A short, stable name of a model file's bytes (FNV-1a, 64 bits, hex).
fn model_id(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl PredictionModel {
    /// The model in `bytes` (from `source`, for messages), loaded, optimised for one row at a
    /// time and checked against the contract by running it once.
    ///
    /// ```
    /// use iot_examples::edge::predictions::model::{BUILT_IN_MODEL, PredictionModel};
    /// let model = PredictionModel::from_bytes(BUILT_IN_MODEL, "built-in").unwrap();
    /// let p = model.predict(&[60.0, 80.0, 15.0, 0.6, 0.0, 0.0]).unwrap();
    /// assert!(p.range_km > 0.0);
    /// assert!(PredictionModel::from_bytes(b"not onnx", "junk").is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, ModelError> {
        let error = |reason: String| ModelError {
            origin: source.to_owned(),
            reason,
        };
        let mut reader = std::io::Cursor::new(bytes);
        let model = onnx()
            .model_for_read(&mut reader)
            .map_err(|e| error(format!("not a readable ONNX model: {e}")))?;
        let declared = model
            .input_fact(0)
            .map(|fact| format!("{fact:?}"))
            .unwrap_or_else(|_| "none".into());
        let inputs = model.input_outlets().map(<[_]>::len).unwrap_or(0);
        if inputs != 1 {
            return Err(error(format!(
                "has {inputs} inputs; one [N, {FEATURES}] input is expected"
            )));
        }
        let plan = model
            .with_input_fact(0, f32::fact([1, FEATURES]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| {
                error(format!(
                    "does not take [N, {FEATURES}] float features (it declares {declared}): {e:#}"
                ))
            })?;
        let model = PredictionModel {
            id: model_id(bytes),
            source: source.to_owned(),
            plan,
        };
        // One run proves the shapes fit.
        model.predict(&[0.0; FEATURES]).map_err(|e| {
            error(format!(
                "does not fit the contract (input [N, {FEATURES}] float32, output [N, 2]; it \
                 declares {declared}): {}",
                e.reason
            ))
        })?;
        Ok(model)
    }

    /// The model in the file at `path`.
    pub fn from_path(path: &std::path::Path) -> Result<Self, ModelError> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ModelError {
            origin: source.clone(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &source)
    }

    /// Its id (a hash of its bytes): what predictions name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the model on one row of features.
    pub fn predict(&self, features: &[f32; FEATURES]) -> Result<Prediction, ModelError> {
        let error = |reason: String| ModelError {
            origin: self.source.clone(),
            reason,
        };
        let input = Tensor::from_shape(&[1, FEATURES], features)
            .map_err(|e| error(format!("input: {e}")))?;
        let outputs = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| error(format!("inference: {e:#}")))?;
        let first = outputs.first().ok_or_else(|| error("no output".into()))?;
        let plain = first
            .as_plain_ram()
            .ok_or_else(|| error("the output is not in plain memory".into()))?;
        let output = plain
            .to_array_view::<f32>()
            .map_err(|e| error(format!("output is not float32: {e}")))?;
        if output.shape() != [1, 2] {
            return Err(error(format!(
                "output shape {:?}; [N, 2] (range_km, anomaly_score) is expected",
                output.shape()
            )));
        }
        let mut values = output.iter().copied();
        let (Some(range_km), Some(anomaly_score)) = (values.next(), values.next()) else {
            return Err(error("output has fewer than two values".into()));
        };
        if !range_km.is_finite() || !anomaly_score.is_finite() {
            return Err(error("output is not finite".into()));
        }
        Ok(Prediction {
            range_km: range_km.max(0.0),
            anomaly_score: anomaly_score.clamp(0.0, 1.0),
        })
    }
}
