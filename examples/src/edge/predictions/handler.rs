//! The prediction handler: on every telemetry message of a car behind the core it updates that
//! car's feature window, runs the model in use, publishes the prediction on
//! `cars/{thing}/predictions`, raises `cars/{thing}/alerts` when the anomaly score reaches the
//! threshold, and reports the predicted range in the car's shadow (`reported.predictedRangeKm`)
//! when it moved by at least the configured step or the report is older than its period. All of
//! it local: the cloud is not needed (mappings send predictions and alerts on when it is there).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mqtt_codec::QoS;
use serde_json::{Map, Value, json};

use super::slot::ModelSlot;
use crate::device::car::PREDICTED_RANGE_KEY;
use crate::device::car::features::{FEATURE_NAMES, TelemetryWindow};
use crate::edge::handlers::{HandlerOutput, LocalHandler};

/// Cars whose telemetry windows are kept at most; telemetry of further cars is counted and
/// skipped.
pub const MAX_CARS: usize = 100_000;

/// The handler's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionSettings {
    /// The telemetry it reads (second level: the thing name).
    pub telemetry_filter: String,
    /// An alert at or above this anomaly score.
    pub anomaly_threshold: f32,
    /// Report the range in the shadow when it moved by at least this many km ...
    pub report_min_change_km: f32,
    /// ... or when the last report is this old (ms).
    pub report_every_ms: u64,
}

/// Counters (shared with the program's status).
#[derive(Debug, Default)]
pub struct PredictionStats {
    /// Predictions made.
    pub predictions: AtomicU64,
    /// Alerts raised.
    pub alerts: AtomicU64,
    /// Shadow reports made.
    pub reports: AtomicU64,
    /// Telemetry without the fields the features need.
    pub malformed: AtomicU64,
    /// Inference failures.
    pub failures: AtomicU64,
    /// Time spent in inference, ns.
    pub inference_ns: AtomicU64,
    /// Telemetry skipped over [`MAX_CARS`].
    pub over_capacity: AtomicU64,
}

#[derive(Debug, Default)]
struct CarState {
    window: TelemetryWindow,
    reported_km: Option<f32>,
    reported_at_ms: u64,
}

/// The handler (see the module docs).
#[derive(Debug)]
pub struct Predictions {
    settings: PredictionSettings,
    slot: Arc<ModelSlot>,
    stats: Arc<PredictionStats>,
    cars: HashMap<String, CarState>,
}

impl Predictions {
    /// The handler running the model in `slot`, counting into `stats`.
    pub fn new(
        settings: PredictionSettings,
        slot: Arc<ModelSlot>,
        stats: Arc<PredictionStats>,
    ) -> Self {
        Predictions {
            settings,
            slot,
            stats,
            cars: HashMap::new(),
        }
    }
}

fn round1(x: f32) -> f64 {
    (f64::from(x) * 10.0).round() / 10.0
}

impl LocalHandler for Predictions {
    fn name(&self) -> &str {
        "predictions"
    }

    fn filters(&self) -> Vec<String> {
        vec![self.settings.telemetry_filter.clone()]
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], now_ms: u64, out: &mut HandlerOutput) {
        let Some(thing) = topic.split('/').nth(1).filter(|t| !t.is_empty()) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Ok(telemetry) = serde_json::from_slice::<Value>(payload) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !self.cars.contains_key(thing) && self.cars.len() >= MAX_CARS {
            self.stats.over_capacity.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let car = self.cars.entry(thing.to_owned()).or_default();
        let Some(features) = car.window.push(&telemetry) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let model = self.slot.current();
        let started = Instant::now();
        let prediction = match model.predict(&features) {
            Ok(prediction) => prediction,
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, thing, "edge: prediction failed");
                return;
            }
        };
        let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats
            .inference_ns
            .fetch_add(elapsed, Ordering::Relaxed);
        self.stats.predictions.fetch_add(1, Ordering::Relaxed);
        let range_km = round1(prediction.range_km);
        let score = (f64::from(prediction.anomaly_score) * 1000.0).round() / 1000.0;
        out.publish(
            format!("cars/{thing}/predictions"),
            json!({
                "rangeKm": range_km,
                "anomalyScore": score,
                "model": model.id(),
                "at": now_ms,
            })
            .to_string(),
            QoS::AtMostOnce,
        );
        if prediction.anomaly_score >= self.settings.anomaly_threshold {
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            let named: Map<String, Value> = FEATURE_NAMES
                .iter()
                .zip(features)
                .map(|(name, value)| ((*name).to_owned(), json!(round1(value))))
                .collect();
            out.publish(
                format!("cars/{thing}/alerts"),
                json!({
                    "kind": "anomaly",
                    "score": score,
                    "threshold": self.settings.anomaly_threshold,
                    "features": named,
                    "model": model.id(),
                    "at": now_ms,
                })
                .to_string(),
                QoS::AtLeastOnce,
            );
        }
        let moved = car.reported_km.is_none_or(|km| {
            (km - prediction.range_km).abs() >= self.settings.report_min_change_km
        });
        let stale = now_ms.saturating_sub(car.reported_at_ms) >= self.settings.report_every_ms;
        if moved || stale {
            car.reported_km = Some(prediction.range_km);
            car.reported_at_ms = now_ms;
            self.stats.reports.fetch_add(1, Ordering::Relaxed);
            let mut reported = Map::new();
            reported.insert(PREDICTED_RANGE_KEY.to_owned(), json!(range_km));
            out.report(thing, reported);
        }
    }
}
