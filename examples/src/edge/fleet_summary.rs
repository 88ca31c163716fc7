//! The fleet summary handler: reads the cars' telemetry on the core and publishes, once per
//! window (a minute by default), one summary of the fleet behind the core: how many cars
//! reported, how many messages, speed and battery figures and the cars low on battery. The
//! cloud then receives one message a minute instead of one per car per second.

use std::collections::BTreeMap;

use mqtt_codec::QoS;
use serde_json::{Value, json};

use super::handlers::{HandlerOutput, LocalHandler};

/// Cars tracked per window at most; telemetry of further cars is counted in `messages` only.
pub const MAX_CARS_PER_WINDOW: usize = 100_000;

/// Battery percentage under which a car is listed as low.
pub const LOW_BATTERY_PCT: f64 = 20.0;

#[derive(Debug, Clone, Copy)]
struct CarFigures {
    speed_sum: f64,
    samples: u32,
    max_speed: f64,
    last_battery: f64,
}

/// The handler (see the module docs).
///
/// ```
/// use iot_examples::edge::fleet_summary::FleetSummary;
/// use iot_examples::edge::handlers::{HandlerOutput, LocalHandler};
/// let mut summary = FleetSummary::new("edge-core-1", "cars/+/telemetry", "fleet/edge-core-1/summary", 60_000, 0);
/// let mut out = HandlerOutput::default();
/// summary.on_message("cars/car-1/telemetry", br#"{"speed":50,"battery":80}"#, 1_000, &mut out);
/// summary.on_message("cars/car-2/telemetry", br#"{"speed":70,"battery":10}"#, 2_000, &mut out);
/// assert_eq!(summary.poll_timeout(), Some(60_000));
/// summary.on_timeout(60_000, &mut out);
/// let (published, _) = out.take();
/// let body: serde_json::Value = serde_json::from_slice(&published[0].payload).unwrap();
/// assert_eq!(body["cars"], 2);
/// assert_eq!(body["speed"]["avg"], 60.0);
/// assert_eq!(body["lowBattery"], serde_json::json!(["car-2"]));
/// ```
#[derive(Debug)]
pub struct FleetSummary {
    core: String,
    filter: String,
    topic: String,
    every_ms: u64,
    window_start_ms: u64,
    cars: BTreeMap<String, CarFigures>,
    messages: u64,
    malformed: u64,
    published: u64,
}

impl FleetSummary {
    /// A summary of telemetry on `filter` (whose second level is the thing name), published on
    /// `topic` every `every_ms`, the first window starting at `now_ms`.
    pub fn new(core: &str, filter: &str, topic: &str, every_ms: u64, now_ms: u64) -> Self {
        FleetSummary {
            core: core.to_owned(),
            filter: filter.to_owned(),
            topic: topic.to_owned(),
            every_ms: every_ms.max(1),
            window_start_ms: now_ms,
            cars: BTreeMap::new(),
            messages: 0,
            malformed: 0,
            published: 0,
        }
    }

    /// Summaries published so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    fn summary(&self, now_ms: u64) -> Value {
        let cars = self.cars.len();
        let samples: u32 = self.cars.values().map(|c| c.samples).sum();
        let speed_sum: f64 = self.cars.values().map(|c| c.speed_sum).sum();
        let max_speed = self.cars.values().map(|c| c.max_speed).fold(0.0, f64::max);
        let battery_sum: f64 = self.cars.values().map(|c| c.last_battery).sum();
        let min_battery = self
            .cars
            .iter()
            .min_by(|a, b| a.1.last_battery.total_cmp(&b.1.last_battery));
        let low: Vec<&str> = self
            .cars
            .iter()
            .filter(|(_, c)| c.last_battery < LOW_BATTERY_PCT)
            .map(|(name, _)| name.as_str())
            .collect();
        let round = |x: f64| (x * 10.0).round() / 10.0;
        json!({
            "core": self.core,
            "windowStart": self.window_start_ms,
            "windowEnd": now_ms,
            "cars": cars,
            "messages": self.messages,
            "malformed": self.malformed,
            "speed": {
                "avg": if samples > 0 { round(speed_sum / f64::from(samples)) } else { 0.0 },
                "max": round(max_speed),
            },
            "battery": {
                "avg": if cars > 0 { round(battery_sum / cars as f64) } else { 0.0 },
                "min": min_battery.map(|(_, c)| round(c.last_battery)),
                "minCar": min_battery.map(|(name, _)| name.clone()),
            },
            "lowBattery": low,
        })
    }
}

impl LocalHandler for FleetSummary {
    fn name(&self) -> &str {
        "fleet-summary"
    }

    fn filters(&self) -> Vec<String> {
        vec![self.filter.clone()]
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], _now_ms: u64, _out: &mut HandlerOutput) {
        self.messages += 1;
        let Some(car) = topic.split('/').nth(1) else {
            self.malformed += 1;
            return;
        };
        let Ok(body) = serde_json::from_slice::<Value>(payload) else {
            self.malformed += 1;
            return;
        };
        let (Some(speed), Some(battery)) = (
            body.get("speed").and_then(Value::as_f64),
            body.get("battery").and_then(Value::as_f64),
        ) else {
            self.malformed += 1;
            return;
        };
        if !self.cars.contains_key(car) && self.cars.len() >= MAX_CARS_PER_WINDOW {
            return;
        }
        let figures = self.cars.entry(car.to_owned()).or_insert(CarFigures {
            speed_sum: 0.0,
            samples: 0,
            max_speed: 0.0,
            last_battery: battery,
        });
        figures.speed_sum += speed;
        figures.samples = figures.samples.saturating_add(1);
        figures.max_speed = figures.max_speed.max(speed);
        figures.last_battery = battery;
    }

    fn poll_timeout(&self) -> Option<u64> {
        Some(self.window_start_ms.saturating_add(self.every_ms))
    }

    fn on_timeout(&mut self, now_ms: u64, out: &mut HandlerOutput) {
        if now_ms < self.window_start_ms.saturating_add(self.every_ms) {
            return;
        }
        // An empty window is published too: the cloud sees the core is alive and no car is.
        let summary = self.summary(now_ms);
        out.publish(self.topic.clone(), summary.to_string(), QoS::AtLeastOnce);
        self.published += 1;
        self.cars.clear();
        self.messages = 0;
        self.malformed = 0;
        self.window_start_ms = now_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_telemetry_is_counted_not_fatal() {
        let mut summary = FleetSummary::new("c", "cars/+/telemetry", "s", 1000, 0);
        let mut out = HandlerOutput::default();
        summary.on_message("cars/a/telemetry", b"not json", 1, &mut out);
        summary.on_message("cars/a/telemetry", br#"{"speed":"fast"}"#, 1, &mut out);
        summary.on_message("cars", b"{}", 1, &mut out);
        summary.on_timeout(999, &mut out);
        assert!(out.take().0.is_empty(), "not yet");
        summary.on_timeout(1000, &mut out);
        let (published, _) = out.take();
        let body: Value = serde_json::from_slice(&published[0].payload).unwrap();
        assert_eq!(body["malformed"], 3);
        assert_eq!(body["cars"], 0);
        // The next window starts clean.
        assert_eq!(summary.poll_timeout(), Some(2000));
    }
}
