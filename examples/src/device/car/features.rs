//! The features a model sees of one car's telemetry: the one place they are computed, shared by
//! the dataset generator ([`super::dataset`]) and the edge core's inference handler so that both
//! compute them identically.
//!
//! [`TelemetryWindow::push`] takes each telemetry message of one car (the JSON of
//! [`CarModel::telemetry`](super::CarModel::telemetry)) and returns, in the order of
//! [`FEATURE_NAMES`]:
//!
//! | # | name | definition |
//! |---|---|---|
//! | 0 | `speed_kmh` | the message's `speed` |
//! | 1 | `battery_pct` | the message's `battery` |
//! | 2 | `temperature_c` | the message's `temperature` |
//! | 3 | `consumption_pct_per_km` | battery used per km over the window (below) |
//! | 4 | `battery_drop_pct` | previous sample's `battery` − this one's (a fall is positive, a charge negative; 0 for the first) |
//! | 5 | `speed_change_kmh` | this sample's `speed` − the previous one's (0 for the first) |
//!
//! The window holds the samples of the last [`WINDOW_MS`] (by `timestamp`), at most
//! [`WINDOW_SAMPLES`] of them (the oldest leaves first). Consumption sums, over consecutive
//! samples of the window, each fall of `battery` that is plausible for the distance driven in
//! between (at most [`MAX_PLAUSIBLE_PCT_PER_KM`] per km plus [`ROUNDING_SLACK_PCT`]), and divides
//! by the distance (`odometer` differences). A rise (a charging stop, 5 % → 100 %) and an
//! implausible fall (a sudden battery drop, which `battery_drop_pct` shows instead) count no
//! battery, only distance. When the window holds less than [`MIN_WINDOW_KM`], the last
//! consumption computed is kept, or [`DEFAULT_CONSUMPTION_PCT_PER_KM`] before the first.
//!
//! A message whose `timestamp` is not after the previous one's, or whose `odometer` is below it
//! (a restarted car, a redelivered or reordered message), starts the window anew: its features
//! are those of a first sample. The model of `examples/ml/` was trained on telemetry every
//! second.

use std::collections::VecDeque;

use serde_json::Value;

/// How many features.
pub const FEATURES: usize = 6;

/// The features' names, in the order [`TelemetryWindow::push`] returns them.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "speed_kmh",
    "battery_pct",
    "temperature_c",
    "consumption_pct_per_km",
    "battery_drop_pct",
    "speed_change_kmh",
];

/// The window's span, ms of `timestamp`.
pub const WINDOW_MS: u64 = 60_000;
/// The most samples the window holds (telemetry faster than one a second keeps the last ones).
pub const WINDOW_SAMPLES: usize = 61;
/// The least distance over which the window's consumption is computed, km (the battery is
/// reported to 0.1 %, too coarse over shorter distances).
pub const MIN_WINDOW_KM: f64 = 0.5;
/// The consumption used before any window had enough distance: the fleet's long-run average of
/// the simulated cars, % per km.
pub const DEFAULT_CONSUMPTION_PCT_PER_KM: f64 = 0.55;
/// The most battery a car can plausibly use per km, % (more is a fault).
pub const MAX_PLAUSIBLE_PCT_PER_KM: f64 = 5.0;
/// The battery fall between two samples allowed beyond the plausible use (the battery is
/// reported to 0.1 %), %.
pub const ROUNDING_SLACK_PCT: f64 = 0.2;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ms: u64,
    speed: f64,
    battery: f64,
    odometer: f64,
}

impl Sample {
    fn parse(telemetry: &Value) -> Option<Sample> {
        let number = |key: &str| telemetry.get(key)?.as_f64().filter(|v| v.is_finite());
        let at = telemetry.get("timestamp")?;
        let at_ms = match at.as_u64() {
            Some(ms) => ms,
            None => {
                let ms = at.as_f64().filter(|v| v.is_finite() && *v >= 0.0)?;
                ms as u64
            }
        };
        Some(Sample {
            at_ms,
            speed: number("speed")?,
            battery: number("battery")?,
            odometer: number("odometer")?,
        })
    }
}

/// One car's recent telemetry, bounded (see the module docs).
///
/// ```
/// use iot_examples::device::car::{CarModel, FEATURES, TelemetryWindow};
/// let mut car = CarModel::new(1);
/// let mut window = TelemetryWindow::new();
/// let mut features = [0.0f32; FEATURES];
/// for second in 0..120u64 {
///     car.step(1000);
///     features = window.push(&car.telemetry(second * 1000)).unwrap();
/// }
/// assert!(features[3] > 0.2 && features[3] < 2.0, "{features:?}");
/// assert_eq!(window.push(&serde_json::json!({"speed": "fast"})), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TelemetryWindow {
    samples: VecDeque<Sample>,
    last_consumption: Option<f64>,
}

impl TelemetryWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one telemetry message (the JSON the car publishes, with `timestamp` ms); returns
    /// the features after it, or None when a field is missing or not a number (the window is
    /// then unchanged).
    pub fn push(&mut self, telemetry: &Value) -> Option<[f32; FEATURES]> {
        let sample = Sample::parse(telemetry)?;
        let temperature = telemetry
            .get("temperature")?
            .as_f64()
            .filter(|v| v.is_finite())?;
        let restart = self
            .samples
            .back()
            .is_some_and(|last| sample.at_ms <= last.at_ms || sample.odometer < last.odometer);
        if restart {
            self.samples.clear();
        }
        let (drop, change) = match self.samples.back() {
            Some(last) => (last.battery - sample.battery, sample.speed - last.speed),
            None => (0.0, 0.0),
        };
        self.samples.push_back(sample);
        while self.samples.len() > WINDOW_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|first| first.at_ms.saturating_add(WINDOW_MS) < sample.at_ms)
        {
            self.samples.pop_front();
        }
        let consumption = self.consumption();
        Some([
            to_f32(sample.speed),
            to_f32(sample.battery),
            to_f32(temperature),
            to_f32(consumption),
            to_f32(drop),
            to_f32(change),
        ])
    }

    /// Samples in the window now.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    fn consumption(&mut self) -> f64 {
        let (mut used, mut km) = (0.0, 0.0);
        for (a, b) in self.samples.iter().zip(self.samples.iter().skip(1)) {
            let driven = (b.odometer - a.odometer).max(0.0);
            let fall = a.battery - b.battery;
            if fall > 0.0 && fall <= MAX_PLAUSIBLE_PCT_PER_KM * driven + ROUNDING_SLACK_PCT {
                used += fall;
            }
            km += driven;
        }
        if km >= MIN_WINDOW_KM && km.is_finite() {
            let consumption = used / km;
            self.last_consumption = Some(consumption);
            consumption
        } else {
            self.last_consumption
                .unwrap_or(DEFAULT_CONSUMPTION_PCT_PER_KM)
        }
    }
}

/// `value` as f32, finite (saturating at the largest magnitude f32 holds).
fn to_f32(value: f64) -> f32 {
    (value as f32).clamp(-f32::MAX, f32::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::{CarModel, Fault};
    use super::*;

    fn message(at_s: u64, speed: f64, battery: f64, odometer: f64) -> Value {
        json!({"timestamp": at_s * 1000, "speed": speed, "battery": battery,
               "temperature": 12.5, "odometer": odometer, "doorsLocked": true})
    }

    /// Drives `car` for `secs` seconds of telemetry into `window`; the last features.
    fn drive(car: &mut CarModel, window: &mut TelemetryWindow, from_s: u64, secs: u64) -> [f32; 6] {
        let mut features = [0.0; 6];
        for s in from_s..from_s + secs {
            car.step(1000);
            features = window.push(&car.telemetry(s * 1000)).unwrap();
        }
        features
    }

    #[test]
    fn the_first_sample_has_no_change_and_the_default_consumption() {
        let mut window = TelemetryWindow::new();
        let features = window.push(&message(1, 50.0, 80.0, 10.0)).unwrap();
        assert_eq!(features, [50.0, 80.0, 12.5, 0.55, 0.0, 0.0]);
    }

    #[test]
    fn changes_are_since_the_previous_sample() {
        let mut window = TelemetryWindow::new();
        window.push(&message(1, 50.0, 80.0, 10.0)).unwrap();
        let features = window.push(&message(2, 53.5, 79.9, 10.015)).unwrap();
        assert!((features[4] - 0.1).abs() < 1e-4, "{features:?}");
        assert!((features[5] - 3.5).abs() < 1e-4, "{features:?}");
    }

    #[test]
    fn consumption_follows_the_car() {
        for seed in 0..10 {
            let mut car = CarModel::new(seed);
            let mut window = TelemetryWindow::new();
            drive(&mut car, &mut window, 0, 60);
            let start = (car.battery_pct(), car.odometer_km(), car.charges());
            let features = drive(&mut car, &mut window, 60, 60);
            if car.charges() != start.2 || car.odometer_km() - start.1 < 0.8 {
                continue;
            }
            let truth = (start.0 - car.battery_pct()) / (car.odometer_km() - start.1);
            let seen = f64::from(features[3]);
            assert!(
                (seen - truth).abs() < 0.2 / 0.8,
                "{seed}: {seen} vs {truth}"
            );
        }
    }

    #[test]
    fn a_charging_stop_does_not_count_as_consumption() {
        let mut window = TelemetryWindow::new();
        let mut last = [0.0; 6];
        for s in 0..60u64 {
            let km = s as f64 * 0.02;
            let battery = if s < 30 {
                5.6 - km * 0.5
            } else {
                100.0 - km * 0.5
            };
            last = window.push(&message(s, 72.0, battery, km)).unwrap();
            if s == 30 {
                assert!(last[4] < -90.0, "{last:?}");
            }
        }
        assert!((last[3] - 0.5).abs() < 0.1, "{last:?}");
    }

    #[test]
    fn a_battery_drop_shows_once_and_not_as_consumption() {
        let mut car = CarModel::new(3);
        let mut window = TelemetryWindow::new();
        drive(&mut car, &mut window, 0, 120);
        let before = drive(&mut car, &mut window, 120, 1);
        car.inject(Fault::BatteryDrop { pct: 12.0 });
        let at = drive(&mut car, &mut window, 121, 1);
        assert!((at[4] - 12.0).abs() < 0.3, "{at:?}");
        let after = drive(&mut car, &mut window, 122, 1);
        assert!(after[4].abs() < 0.3, "{after:?}");
        assert!((after[3] - before[3]).abs() < 0.3, "{before:?} {after:?}");
    }

    #[test]
    fn a_speed_spike_shows_as_speed_and_change() {
        let mut car = CarModel::new(5);
        let mut window = TelemetryWindow::new();
        drive(&mut car, &mut window, 0, 60);
        car.inject(Fault::SpeedSpike {
            kmh: 300.0,
            secs: 2,
        });
        let first = window.push(&car.telemetry(60_000)).unwrap();
        assert_eq!(first[0], 300.0);
        assert!(first[5] > 150.0, "{first:?}");
        let second = drive(&mut car, &mut window, 61, 1);
        assert!(second[0] > 250.0, "{second:?}");
        assert!(second[5].abs() < 25.0, "{second:?}");
        let back = drive(&mut car, &mut window, 62, 1);
        assert!(back[5] < -150.0, "{back:?}");
    }

    #[test]
    fn malformed_telemetry_is_refused_and_leaves_the_window_as_it_was() {
        let mut window = TelemetryWindow::new();
        window.push(&message(1, 50.0, 80.0, 10.0)).unwrap();
        let mut missing = message(2, 50.0, 79.0, 10.1);
        missing.as_object_mut().unwrap().remove("odometer");
        let mut text = message(2, 50.0, 79.0, 10.1);
        text["battery"] = json!("79");
        let mut null = message(2, 50.0, 79.0, 10.1);
        null["temperature"] = Value::Null;
        let mut negative_time = message(2, 50.0, 79.0, 10.1);
        negative_time["timestamp"] = json!(-5);
        for bad in [
            missing,
            text,
            null,
            negative_time,
            json!(null),
            json!([1, 2]),
            json!("speed"),
            json!({}),
        ] {
            assert_eq!(window.push(&bad), None, "{bad}");
        }
        assert_eq!(window.len(), 1);
        let next = window.push(&message(2, 50.0, 79.0, 10.1)).unwrap();
        assert!((next[4] - 1.0).abs() < 1e-5, "{next:?}");
    }

    #[test]
    fn a_message_from_the_past_or_a_reset_odometer_starts_anew() {
        let mut window = TelemetryWindow::new();
        window.push(&message(10, 50.0, 80.0, 10.0)).unwrap();
        window.push(&message(11, 50.0, 79.9, 10.02)).unwrap();
        let again = window.push(&message(11, 50.0, 79.9, 10.02)).unwrap();
        assert_eq!((again[4], again[5], window.len()), (0.0, 0.0, 1));
        let reset = window.push(&message(12, 10.0, 60.0, 0.0)).unwrap();
        assert_eq!((reset[4], reset[5], window.len()), (0.0, 0.0, 1));
    }

    #[test]
    fn the_window_is_bounded_in_time_and_in_samples() {
        let mut window = TelemetryWindow::new();
        for ms in 0..1_000u64 {
            window
                .push(
                    &json!({"timestamp": ms * 10, "speed": 50.0, "battery": 80.0,
                              "temperature": 1.0, "odometer": ms as f64 / 1000.0}),
                )
                .unwrap();
            assert!(window.len() <= WINDOW_SAMPLES);
        }
        for s in 0..200u64 {
            window
                .push(&message(100 + s, 50.0, 80.0, 10.0 + s as f64))
                .unwrap();
            assert!(window.len() <= 61);
        }
        window.push(&message(1_000, 50.0, 80.0, 500.0)).unwrap();
        assert_eq!(window.len(), 1);
    }

    #[test]
    fn too_little_distance_keeps_the_last_consumption() {
        let mut window = TelemetryWindow::new();
        for s in 0..60u64 {
            window
                .push(&message(s, 90.0, 90.0 - s as f64 * 0.025, s as f64 * 0.025))
                .unwrap();
        }
        let moving = window.push(&message(60, 90.0, 88.5, 1.5)).unwrap();
        assert!((moving[3] - 1.0).abs() < 0.15, "{moving:?}");
        let parked = window.push(&message(500, 0.0, 88.5, 1.5)).unwrap();
        assert_eq!(parked[3], moving[3]);
    }

    proptest! {
        #[test]
        fn any_numbers_give_finite_features(
            messages in proptest::collection::vec(
                (0u64..200_000, -1e300f64..1e300, -1e3f64..1e3, -50f64..50.0, -1e300f64..1e300),
                1..80,
            )
        ) {
            let mut window = TelemetryWindow::new();
            for (at, speed, battery, temperature, odometer) in messages {
                let features = window.push(&json!({"timestamp": at, "speed": speed,
                    "battery": battery, "temperature": temperature, "odometer": odometer}));
                let features = features.unwrap();
                prop_assert!(features.iter().all(|f| f.is_finite()), "{:?}", features);
                prop_assert!(window.len() <= WINDOW_SAMPLES);
            }
        }
    }
}
