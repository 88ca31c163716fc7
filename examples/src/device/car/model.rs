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

/// The car.
#[derive(Debug, Clone)]
pub struct CarModel {
    distance_m: f64,
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
        CarModel {
            distance_m,
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

    /// Drive for `dt_ms`: speed moves toward the cruise speed under the limit (with a little
    /// noise), the car advances, the battery drains with distance and is recharged at 5 %.
    pub fn step(&mut self, dt_ms: u64) {
        let dt = dt_ms as f64 / 1000.0;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let noise = (self.rng % 11) as f64 - 5.0;
        let target = (self.cruise_kmh + noise).clamp(0.0, self.speed_limit_kmh as f64);
        let target = if self.battery_pct <= 0.0 { 0.0 } else { target };
        self.speed_kmh += (target - self.speed_kmh) * (dt / 5.0).min(1.0);
        let moved = self.speed_kmh / 3.6 * dt;
        self.distance_m = (self.distance_m + moved) % self.route_m;
        self.battery_pct = (self.battery_pct - moved / 2_000.0).max(0.0);
        if self.battery_pct < 5.0 {
            self.battery_pct = 100.0; // a charging stop
        }
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
            "speed": (self.speed_kmh * 10.0).round() / 10.0,
            "battery": (self.battery_pct * 10.0).round() / 10.0,
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
}
