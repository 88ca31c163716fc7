//! One simulated car: where it is on its route, how fast it goes, its battery, doors and lights,
//! and the settings it takes from its shadow. No I/O and no clock: [`CarModel::step`] moves it by
//! the time given.
//!
//! The settings a car's desired state may hold (its schema):
//!
//! | key | type | allowed |
//! |---|---|---|
//! | `lights` | string | `"off"`, `"on"`, `"auto"` |
//! | `speedLimit` | integer, km/h | 10 to 200 |
//! | `doorsLocked` | boolean | |
//!
//! Anything else (another key, a wrong type, a value out of range) is not applied; the car
//! reports `lastError` = `{"key": …, "value": …, "reason": …, "at": epoch ms}` for the first such
//! value of an update, and `lastError: null` once an update applies cleanly.
//!
//! ## Energy and weather
//!
//! The battery drains with distance, by a consumption in % per km that depends on speed `v`
//! (km/h) and the ambient temperature `T` (°C):
//!
//! ```text
//! consumption = efficiency × (0.30 + 4.5e-5 × v²) × (1 + 0.012 × max(0, 20 − T))
//! ```
//!
//! a rolling and drivetrain base, an aerodynamic part growing with the square of speed (0.41 %/km
//! at 50 km/h, 0.75 %/km at 100 km/h), and a cold penalty below 20 °C (+36 % at −10 °C). Each
//! car's `efficiency` (0.9 to 1.1) and base temperature (−10 to 35 °C) come from its seed; its
//! temperature drifts with driving time, a sinusoid of ±3 °C with a period of one hour (phase
//! from the seed) plus up to ±0.2 °C of noise per step. Under 5 % the car stops to charge and
//! goes on at 100 %. The odometer counts every kilometre driven. Everything is deterministic per
//! seed and per sequence of steps.
//!
//! ## Faults
//!
//! For data generation and tests, [`CarModel::inject`] puts a [`Fault`] in: a sudden battery
//! drop (real: the battery falls at once) or a speed spike (the reported speed is implausible
//! for a few seconds of driving; the car itself goes on as before).

use serde_json::{Map, Value, json};

/// A loop of waypoints (latitude, longitude) the cars drive around: a ring road.
const ROUTE: [(f64, f64); 8] = [
    (52.3889, 4.8375),
    (52.3930, 4.8980),
    (52.3780, 4.9420),
    (52.3520, 4.9480),
    (52.3330, 4.9110),
    (52.3350, 4.8590),
    (52.3560, 4.8300),
    (52.3760, 4.8250),
];

/// Metres per degree of latitude, and of longitude at the route's latitude.
const M_PER_DEG_LAT: f64 = 111_320.0;
const M_PER_DEG_LON: f64 = 68_000.0;

/// The allowed `lights` values.
pub const LIGHTS: [&str; 3] = ["off", "on", "auto"];
/// The allowed `speedLimit` range, km/h.
pub const SPEED_LIMIT_RANGE: std::ops::RangeInclusive<i64> = 10..=200;

fn segment_length(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = (b.0 - a.0) * M_PER_DEG_LAT;
    let dx = (b.1 - a.1) * M_PER_DEG_LON;
    (dx * dx + dy * dy).sqrt()
}

fn route_length() -> f64 {
    (0..ROUTE.len())
        .map(|i| {
            let a = ROUTE.get(i).copied().unwrap_or_default();
            let b = ROUTE
                .get((i + 1) % ROUTE.len())
                .copied()
                .unwrap_or_default();
            segment_length(a, b)
        })
        .sum()
}

/// A desired value the car did not apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The key.
    pub key: String,
    /// The value asked for.
    pub value: Value,
    /// Why not.
    pub reason: &'static str,
}

/// What [`CarModel::apply_desired`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    /// The settings now in effect for the keys it applied (to report).
    pub applied: Map<String, Value>,
    /// What it refused.
    pub refused: Vec<Refusal>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Done; `changed_state` says whether the car's reported settings changed (lock, unlock).
    Done {
        /// Whether a setting changed (report it).
        changed_state: bool,
    },
    /// Not a command this car knows.
    Unknown,
}

/// Consumption in % per km at standstill-ish speeds (rolling, drivetrain), before efficiency
/// and cold.
const BASE_PCT_PER_KM: f64 = 0.30;
/// The aerodynamic part: % per km per (km/h)².
const AERO_PCT_PER_KM_PER_KMH2: f64 = 4.5e-5;
/// Temperature under which the cold penalty starts, °C.
const COLD_BELOW_C: f64 = 20.0;
/// The cold penalty: extra consumption per °C under [`COLD_BELOW_C`].
const COLD_PER_C: f64 = 0.012;
/// Amplitude of the temperature's drift, °C.
const DRIFT_C: f64 = 3.0;
/// Period of the temperature's drift, seconds of driving.
const DRIFT_PERIOD_S: f64 = 3600.0;
/// Battery percentage under which the car stops to charge.
pub const RECHARGE_BELOW_PCT: f64 = 5.0;

/// Consumption in % per km at `speed_kmh` and `temperature_c`, for a car of `efficiency` 1 (see
/// the module docs).
pub fn consumption_pct_per_km(speed_kmh: f64, temperature_c: f64) -> f64 {
    let v = speed_kmh.max(0.0);
    let cold = 1.0 + COLD_PER_C * (COLD_BELOW_C - temperature_c).max(0.0);
    (BASE_PCT_PER_KM + AERO_PCT_PER_KM_PER_KMH2 * v * v) * cold
}

/// A fault to inject into a car ([`CarModel::inject`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// The battery falls by `pct` percentage points at once (to 0 at least; under 5 % the car
    /// charges at its next step).
    BatteryDrop {
        /// Percentage points.
        pct: f64,
    },
    /// The reported speed jumps to `kmh` and, for the next `secs` seconds of driving, moves with
    /// the car's real speed from there (`kmh` + the real speed's change since the injection);
    /// the car's real speed and its energy use are unchanged.
    SpeedSpike {
        /// The speed reported, km/h.
        kmh: f64,
        /// For how long, seconds of driving.
        secs: u32,
    },
}

/// The car.
#[derive(Debug, Clone)]
pub struct CarModel {
    distance_m: f64,
    odometer_m: f64,
    driven_ms: u64,
    efficiency: f64,
    base_temperature_c: f64,
    drift_phase: f64,
    temperature_c: f64,
    /// A speed spike: the speed reported, less the real speed at the injection; ms left.
    spike: Option<(f64, u64)>,
    charges: u64,
    route_m: f64,
    speed_kmh: f64,
    cruise_kmh: f64,
    battery_pct: f64,
    doors_locked: bool,
    lights: &'static str,
    speed_limit_kmh: i64,
    honks: u64,
    flashes: u64,
    rng: u64,
}

impl CarModel {
    /// A car placed on the route by `seed` (each car of a fleet gets its own).
    ///
    /// ```
    /// use iot_examples::device::car::CarModel;
    /// let mut car = CarModel::new(7);
    /// let before = car.telemetry(0)["position"]["progress"].as_f64().unwrap();
    /// car.step(10_000);
    /// let after = car.telemetry(10_000)["position"]["progress"].as_f64().unwrap();
    /// assert_ne!(before, after);
    /// ```
    pub fn new(seed: u64) -> Self {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let route_m = route_length();
        let distance_m = (next() % 10_000) as f64 / 10_000.0 * route_m;
        let cruise_kmh = 30.0 + (next() % 71) as f64;
        let battery_pct = 40.0 + (next() % 61) as f64;
        let efficiency = 0.9 + (next() % 201) as f64 / 1000.0;
        let base_temperature_c = -10.0 + (next() % 451) as f64 / 10.0;
        let drift_phase = (next() % 10_000) as f64 / 10_000.0 * std::f64::consts::TAU;
        let temperature_c = base_temperature_c + DRIFT_C * drift_phase.sin();
        CarModel {
            distance_m,
            odometer_m: 0.0,
            driven_ms: 0,
            efficiency,
            base_temperature_c,
            drift_phase,
            temperature_c,
            spike: None,
            charges: 0,
            route_m,
            speed_kmh: 0.0,
            cruise_kmh,
            battery_pct,
            doors_locked: true,
            lights: "auto",
            speed_limit_kmh: 120,
            honks: 0,
            flashes: 0,
            rng: next(),
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Drive for `dt_ms`: speed moves toward the cruise speed under the limit (with a little
    /// noise), the car advances, the temperature drifts, the battery drains by the consumption
    /// of the module docs and is recharged under 5 %.
    pub fn step(&mut self, dt_ms: u64) {
        let dt = dt_ms as f64 / 1000.0;
        let noise = (self.next_random() % 11) as f64 - 5.0;
        let target = (self.cruise_kmh + noise).clamp(0.0, self.speed_limit_kmh as f64);
        let target = if self.battery_pct <= 0.0 { 0.0 } else { target };
        self.speed_kmh += (target - self.speed_kmh) * (dt / 5.0).min(1.0);
        let moved = self.speed_kmh / 3.6 * dt;
        self.distance_m = (self.distance_m + moved) % self.route_m;
        self.odometer_m += moved;
        self.driven_ms = self.driven_ms.saturating_add(dt_ms);
        let wobble = (self.next_random() % 401) as f64 / 1000.0 - 0.2;
        let angle = self.driven_ms as f64 / 1000.0 / DRIFT_PERIOD_S * std::f64::consts::TAU;
        self.temperature_c =
            self.base_temperature_c + DRIFT_C * (angle + self.drift_phase).sin() + wobble;
        let used = self.efficiency
            * consumption_pct_per_km(self.speed_kmh, self.temperature_c)
            * (moved / 1000.0);
        self.battery_pct = (self.battery_pct - used).max(0.0);
        if self.battery_pct < RECHARGE_BELOW_PCT {
            self.battery_pct = 100.0; // a charging stop
            self.charges += 1;
        }
        self.spike = self
            .spike
            .map(|(offset, left_ms)| (offset, left_ms.saturating_sub(dt_ms)))
            .filter(|(_, left_ms)| *left_ms > 0);
    }

    /// Puts a fault in (see [`Fault`]); a non-finite or non-positive amount is ignored.
    pub fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::BatteryDrop { pct } if pct.is_finite() && pct > 0.0 => {
                self.battery_pct = (self.battery_pct - pct).max(0.0);
            }
            Fault::SpeedSpike { kmh, secs } if kmh.is_finite() && secs > 0 => {
                self.spike = Some((kmh - self.speed_kmh, u64::from(secs) * 1000));
            }
            _ => {}
        }
    }

    /// The battery, % (unrounded).
    pub fn battery_pct(&self) -> f64 {
        self.battery_pct
    }

    /// The odometer, km (unrounded).
    pub fn odometer_km(&self) -> f64 {
        self.odometer_m / 1000.0
    }

    /// The ambient temperature, °C (unrounded).
    pub fn temperature_c(&self) -> f64 {
        self.temperature_c
    }

    /// The car's real speed, km/h (unaffected by a speed spike).
    pub fn speed_kmh(&self) -> f64 {
        self.speed_kmh
    }

    /// How many times the car has stopped to charge.
    pub fn charges(&self) -> u64 {
        self.charges
    }

    /// Latitude and longitude along the route.
    fn position(&self) -> (f64, f64) {
        let mut left = self.distance_m;
        for i in 0..ROUTE.len() {
            let a = ROUTE.get(i).copied().unwrap_or_default();
            let b = ROUTE
                .get((i + 1) % ROUTE.len())
                .copied()
                .unwrap_or_default();
            let length = segment_length(a, b);
            if left <= length && length > 0.0 {
                let t = left / length;
                return (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            }
            left -= length;
        }
        ROUTE.first().copied().unwrap_or_default()
    }

    /// The telemetry message (`cars/{thing}/telemetry`).
    pub fn telemetry(&self, now_ms: u64) -> Value {
        let (lat, lon) = self.position();
        json!({
            "position": {
                "lat": (lat * 1e6).round() / 1e6,
                "lon": (lon * 1e6).round() / 1e6,
                "progress": (self.distance_m / self.route_m * 1e4).round() / 1e4,
            },
            "speed": ((self.speed_kmh + self.spike.map_or(0.0, |(offset, _)| offset)) * 10.0).round()
                / 10.0,
            "battery": (self.battery_pct * 10.0).round() / 10.0,
            "temperature": (self.temperature_c * 10.0).round() / 10.0,
            "odometer": (self.odometer_m).round() / 1000.0,
            "doorsLocked": self.doors_locked,
            "lights": self.lights,
            "speedLimit": self.speed_limit_kmh,
            "timestamp": now_ms,
        })
    }

    /// The settings the car reports in its shadow.
    pub fn reported(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("lights".into(), json!(self.lights));
        map.insert("speedLimit".into(), json!(self.speed_limit_kmh));
        map.insert("doorsLocked".into(), json!(self.doors_locked));
        map
    }

    /// Applies what the schema allows of `desired` (see the module docs).
    pub fn apply_desired(&mut self, desired: &Map<String, Value>) -> Applied {
        let mut result = Applied::default();
        for (key, value) in desired {
            let refuse = |reason| Refusal {
                key: key.clone(),
                value: value.clone(),
                reason,
            };
            match key.as_str() {
                "lights" => match value
                    .as_str()
                    .and_then(|v| LIGHTS.iter().find(|l| **l == v))
                {
                    Some(lights) => {
                        self.lights = lights;
                        result.applied.insert(key.clone(), json!(lights));
                    }
                    None => result
                        .refused
                        .push(refuse("lights must be \"off\", \"on\" or \"auto\"")),
                },
                "speedLimit" => match value.as_i64() {
                    Some(limit) if SPEED_LIMIT_RANGE.contains(&limit) => {
                        self.speed_limit_kmh = limit;
                        result.applied.insert(key.clone(), json!(limit));
                    }
                    _ => result
                        .refused
                        .push(refuse("speedLimit must be an integer from 10 to 200")),
                },
                "doorsLocked" => match value.as_bool() {
                    Some(locked) => {
                        self.doors_locked = locked;
                        result.applied.insert(key.clone(), json!(locked));
                    }
                    None => result.refused.push(refuse("doorsLocked must be a boolean")),
                },
                _ => result.refused.push(refuse("not a setting of this car")),
            }
        }
        result
    }

    /// Runs a command (`honk`, `flash`, `lock`, `unlock`).
    pub fn command(&mut self, command: &str) -> CommandOutcome {
        match command {
            "honk" => {
                self.honks += 1;
                CommandOutcome::Done {
                    changed_state: false,
                }
            }
            "flash" => {
                self.flashes += 1;
                CommandOutcome::Done {
                    changed_state: false,
                }
            }
            "lock" | "unlock" => {
                let locked = command == "lock";
                let changed_state = self.doors_locked != locked;
                self.doors_locked = locked;
                CommandOutcome::Done { changed_state }
            }
            _ => CommandOutcome::Unknown,
        }
    }

    /// Horn and flash counts (for tests and the dashboard).
    pub fn signals(&self) -> (u64, u64) {
        (self.honks, self.flashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_applies_what_it_allows_and_refuses_the_rest() {
        let mut car = CarModel::new(1);
        let desired: Map<String, Value> = serde_json::from_str(
            r#"{"lights":"on","speedLimit":500,"doorsLocked":false,"turbo":true}"#,
        )
        .unwrap();
        let applied = car.apply_desired(&desired);
        assert_eq!(
            Value::Object(applied.applied),
            json!({"lights":"on","doorsLocked":false})
        );
        let refused: Vec<&str> = applied.refused.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(refused, ["speedLimit", "turbo"]);
        assert_eq!(car.reported()["speedLimit"], 120);
    }

    #[test]
    fn the_car_keeps_to_its_limit_and_stays_on_the_route() {
        let mut car = CarModel::new(3);
        car.apply_desired(&serde_json::from_str(r#"{"speedLimit":20}"#).unwrap());
        for _ in 0..3600 {
            car.step(1000);
            let t = car.telemetry(0);
            assert!(t["speed"].as_f64().unwrap() <= 20.0 + 1e-9);
            let lat = t["position"]["lat"].as_f64().unwrap();
            assert!((52.33..=52.40).contains(&lat), "{t}");
            let battery = t["battery"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&battery));
        }
    }

    #[test]
    fn commands() {
        let mut car = CarModel::new(5);
        assert_eq!(
            car.command("unlock"),
            CommandOutcome::Done {
                changed_state: true
            }
        );
        assert_eq!(car.reported()["doorsLocked"], false);
        assert_eq!(
            car.command("honk"),
            CommandOutcome::Done {
                changed_state: false
            }
        );
        assert_eq!(car.signals(), (1, 0));
        assert_eq!(car.command("self-destruct"), CommandOutcome::Unknown);
    }

    #[test]
    fn consumption_grows_with_speed_and_in_the_cold() {
        let warm_slow = consumption_pct_per_km(50.0, 25.0);
        assert!((warm_slow - 0.4125).abs() < 1e-9);
        assert!(consumption_pct_per_km(100.0, 25.0) > 1.5 * warm_slow);
        assert_eq!(consumption_pct_per_km(50.0, 30.0), warm_slow);
        assert!(consumption_pct_per_km(50.0, -10.0) > 1.3 * warm_slow);
        assert!(consumption_pct_per_km(-5.0, 25.0) == BASE_PCT_PER_KM);
    }

    /// Battery used per km until the odometer shows `km` more.
    fn used_per_km(car: &mut CarModel, km: f64) -> f64 {
        let (start_km, start_pct) = (car.odometer_km(), car.battery_pct());
        while car.odometer_km() - start_km < km {
            car.step(1000);
        }
        assert_eq!(car.charges(), 0);
        (start_pct - car.battery_pct()) / (car.odometer_km() - start_km)
    }

    #[test]
    fn a_fast_car_uses_more_per_km_than_the_same_car_driven_slowly() {
        let mut compared = 0;
        for seed in 0..40 {
            let mut fast = CarModel::new(seed);
            let mut slow = fast.clone();
            slow.apply_desired(&serde_json::from_str(r#"{"speedLimit":20}"#).unwrap());
            let fast_use = used_per_km(&mut fast, 3.0);
            let slow_use = used_per_km(&mut slow, 3.0);
            if fast.speed_kmh() > 50.0 {
                compared += 1;
                assert!(
                    fast_use > 1.1 * slow_use,
                    "{seed}: {fast_use} vs {slow_use}"
                );
            }
        }
        assert!(compared > 10);
    }

    #[test]
    fn temperature_stays_in_its_band_and_drifts() {
        for seed in 0..20 {
            let mut car = CarModel::new(seed);
            let (mut low, mut high) = (f64::MAX, f64::MIN);
            for _ in 0..3600 {
                car.step(1000);
                let t = car.telemetry(0)["temperature"].as_f64().unwrap();
                assert!((-13.3..=38.3).contains(&t), "{seed}: {t}");
                low = low.min(t);
                high = high.max(t);
            }
            assert!(high - low > 3.0, "{seed}: {low}..{high}");
        }
    }

    #[test]
    fn the_same_seed_drives_the_same() {
        let (mut a, mut b) = (CarModel::new(11), CarModel::new(11));
        for _ in 0..500 {
            a.step(1000);
            b.step(1000);
        }
        assert_eq!(a.telemetry(1), b.telemetry(1));
        assert_ne!(a.telemetry(1), CarModel::new(12).telemetry(1));
    }

    #[test]
    fn the_odometer_counts_what_the_car_drives() {
        let mut car = CarModel::new(4);
        let mut last = 0.0;
        for _ in 0..600 {
            car.step(1000);
            let km = car.telemetry(0)["odometer"].as_f64().unwrap();
            assert!(km >= last);
            last = km;
        }
        assert!(last > 1.0, "{last}");
        assert!((last - car.odometer_km()).abs() <= 0.0005);
    }

    #[test]
    fn a_battery_drop_takes_the_battery_down_at_once_and_under_5_percent_the_car_charges() {
        let mut car = CarModel::new(2);
        let before = car.battery_pct();
        car.inject(Fault::BatteryDrop { pct: 10.0 });
        assert!((before - 10.0 - car.battery_pct()).abs() < 1e-9);
        car.inject(Fault::BatteryDrop { pct: 500.0 });
        assert_eq!(car.battery_pct(), 0.0);
        car.step(1000);
        assert_eq!(car.charges(), 1);
        assert!(car.battery_pct() > 99.0);
    }

    #[test]
    fn a_speed_spike_shows_in_telemetry_for_its_seconds_only() {
        let mut car = CarModel::new(9);
        for _ in 0..30 {
            car.step(1000);
        }
        let mut twin = car.clone();
        let offset = 320.0 - car.speed_kmh();
        car.inject(Fault::SpeedSpike {
            kmh: 320.0,
            secs: 3,
        });
        assert_eq!(car.telemetry(0)["speed"], 320.0);
        let mut spiked = 0;
        for _ in 0..6 {
            let (t, u) = (car.telemetry(0), twin.telemetry(0));
            let above = t["speed"].as_f64().unwrap() - u["speed"].as_f64().unwrap();
            if above > 100.0 {
                spiked += 1;
                assert!((above - offset).abs() <= 0.11, "{above} vs {offset}");
            } else {
                assert_eq!(t, u);
            }
            assert_eq!(t["odometer"], u["odometer"]);
            car.step(1000);
            twin.step(1000);
        }
        assert_eq!(spiked, 3);
    }

    #[test]
    fn nonsense_faults_are_ignored() {
        let mut car = CarModel::new(6);
        let before = car.telemetry(0);
        car.inject(Fault::BatteryDrop { pct: f64::NAN });
        car.inject(Fault::BatteryDrop { pct: -3.0 });
        car.inject(Fault::SpeedSpike {
            kmh: f64::INFINITY,
            secs: 3,
        });
        car.inject(Fault::SpeedSpike {
            kmh: 300.0,
            secs: 0,
        });
        assert_eq!(car.telemetry(0), before);
    }
}
