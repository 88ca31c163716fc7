//! The training data of the cars' model (`examples/ml/`): many simulated cars driven for hours
//! at one-second steps, faults injected at random, one CSV row per labelled second.
//!
//! Each row holds the car (`car`, for a split by car), the second (`t_s`), the six features of
//! [`FEATURE_NAMES`] computed by a [`TelemetryWindow`] fed with the car's own telemetry JSON, and
//! the labels:
//! - `range_km`: the distance the car drives from that second until its battery falls under 5 %
//!   (its charging stop), found by driving a clone of the car forward without faults;
//! - `anomaly`: 1 for the seconds in which an injected fault shows in the telemetry (the message
//!   after a battery drop; the messages of a speed spike and the one after it, when the speed
//!   falls back), else 0;
//! - `fault`: the kind of the last fault when the row is within it or the
//!   [`AFTER_FAULT_SECS`] after it (`battery_drop`, `speed_spike`), else empty.
//!
//! Rows are written every `label_every_s` seconds, and for every second from a fault until
//! [`AFTER_FAULT_SECS`] after it shows (so that the rare anomalies and their normal aftermath
//! are all in). A fault is drawn each second with probability `fault_rate_per_hour / 3600`
//! (never while the last one's rows are still being written): half battery drops of 0.5 to 25 %
//! (log-uniform: small drops as often as large ones), half speed spikes of 40 to 300 km/h above
//! the car's speed for 2 to 5 s (a jump no car makes in a second; the speed itself may look
//! plausible). Everything is deterministic per seed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::{CarModel, FEATURE_NAMES, Fault, TelemetryWindow};

/// Seconds after a fault's last visible message for which rows are still written (normal ones).
pub const AFTER_FAULT_SECS: u64 = 5;
/// The longest a range label is looked for, seconds of driving; a row without a charging stop
/// within it is left out.
pub const MAX_RANGE_SECS: u64 = 48 * 3600;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetOptions {
    /// How many cars.
    pub cars: usize,
    /// Simulated hours of driving per car.
    pub hours: f64,
    /// The seed of everything.
    pub seed: u64,
    /// Faults per car per hour of driving, on average.
    pub fault_rate_per_hour: f64,
    /// A row every this many seconds (besides the rows around faults); at least 1.
    pub label_every_s: u64,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            cars: 200,
            hours: 6.0,
            seed: 1,
            fault_rate_per_hour: 6.0,
            label_every_s: 30,
        }
    }
}

/// What a run generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetSummary {
    /// Rows written.
    pub rows: u64,
    /// Rows labelled `anomaly` = 1.
    pub anomalies: u64,
    /// Battery drops injected.
    pub battery_drops: u64,
    /// Speed spikes injected.
    pub speed_spikes: u64,
    /// Rows left out for want of a charging stop within [`MAX_RANGE_SECS`].
    pub unlabelled: u64,
    /// The mean `range_km` of the rows.
    pub mean_range_km: f64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Writing the CSV failed.
    #[error("writing the dataset: {0}")]
    Write(#[from] std::io::Error),
}

/// SplitMix64: the generator's own random numbers (faults, the cars' seeds).
#[derive(Debug, Clone)]
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The distance `car` drives until its next charging stop, without faults; None when it does
/// not stop within [`MAX_RANGE_SECS`].
pub fn range_km(car: &CarModel) -> Option<f64> {
    let mut ahead = car.clone();
    let (start_km, charges) = (ahead.odometer_km(), ahead.charges());
    for _ in 0..MAX_RANGE_SECS {
        ahead.step(1000);
        if ahead.charges() != charges {
            return Some(ahead.odometer_km() - start_km);
        }
    }
    None
}

/// The fault drawn for one second of a car going at `speed_kmh`, if any.
fn draw_fault(random: &mut Random, probability: f64, speed_kmh: f64) -> Option<Fault> {
    if random.unit() >= probability {
        return None;
    }
    Some(if random.next() % 2 == 0 {
        Fault::BatteryDrop {
            pct: (0.5 * 50f64.powf(random.unit()) * 10.0).round() / 10.0,
        }
    } else {
        Fault::SpeedSpike {
            kmh: (speed_kmh + 40.0 + random.unit() * 260.0).round(),
            secs: 2 + (random.next() % 4) as u32,
        }
    })
}

/// The last fault of a car: when it came, how many messages show it, its kind.
#[derive(Debug, Clone, Copy)]
struct Recent {
    at_s: u64,
    visible_s: u64,
    kind: &'static str,
}

/// Generates the dataset of `options` as CSV into `out` (see the module docs).
pub fn generate(
    options: &DatasetOptions,
    out: &mut impl Write,
) -> Result<DatasetSummary, DatasetError> {
    write!(out, "car,t_s")?;
    for name in FEATURE_NAMES {
        write!(out, ",{name}")?;
    }
    writeln!(out, ",range_km,anomaly,fault")?;
    let seconds = (options.hours.max(0.0) * 3600.0) as u64;
    let probability = options.fault_rate_per_hour.max(0.0) / 3600.0;
    let every = options.label_every_s.max(1);
    let mut seeds = Random(options.seed);
    let mut summary = DatasetSummary::default();
    let mut range_sum = 0.0;
    for car_index in 0..options.cars {
        let mut car = CarModel::new(seeds.next());
        let mut faults = Random(seeds.next());
        let mut window = TelemetryWindow::new();
        let mut recent: Option<Recent> = None;
        for t in 0..seconds {
            if t > 0 {
                car.step(1000);
            }
            let quiet = recent.is_none_or(|r| t >= r.at_s + r.visible_s + AFTER_FAULT_SECS);
            if let Some(fault) =
                draw_fault(&mut faults, probability, car.speed_kmh()).filter(|_| quiet && t > 0)
            {
                car.inject(fault);
                recent = Some(match fault {
                    Fault::BatteryDrop { .. } => {
                        summary.battery_drops += 1;
                        Recent {
                            at_s: t,
                            visible_s: 1,
                            kind: "battery_drop",
                        }
                    }
                    Fault::SpeedSpike { secs, .. } => {
                        summary.speed_spikes += 1;
                        Recent {
                            at_s: t,
                            visible_s: u64::from(secs) + 1,
                            kind: "speed_spike",
                        }
                    }
                });
            }
            let Some(features) = window.push(&car.telemetry(t * 1000)) else {
                continue;
            };
            let near = recent.filter(|r| t < r.at_s + r.visible_s + AFTER_FAULT_SECS);
            if t % every != 0 && near.is_none() {
                continue;
            }
            let Some(range) = range_km(&car) else {
                summary.unlabelled += 1;
                continue;
            };
            let anomaly = near.is_some_and(|r| t < r.at_s + r.visible_s);
            write!(out, "{car_index},{t}")?;
            for feature in features {
                write!(out, ",{feature}")?;
            }
            writeln!(
                out,
                ",{range:.3},{},{}",
                u8::from(anomaly),
                near.map_or("", |r| r.kind)
            )?;
            summary.rows += 1;
            summary.anomalies += u64::from(anomaly);
            range_sum += range;
        }
    }
    out.flush()?;
    summary.mean_range_km = if summary.rows == 0 {
        0.0
    } else {
        range_sum / summary.rows as f64
    };
    Ok(summary)
}

/// Simulated telemetry of many cars, with faults, as CSV for training the cars' model (see
/// `examples/ml/README.md`).
#[derive(Debug, Parser)]
#[command(name = "car-dataset", version)]
struct Cli {
    /// How many cars.
    #[arg(long, default_value_t = 200)]
    cars: usize,
    /// Hours of driving per car (one-second steps).
    #[arg(long, default_value_t = 6.0)]
    hours: f64,
    /// The seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults per car per hour, on average.
    #[arg(long, default_value_t = 6.0)]
    fault_rate: f64,
    /// A row every this many seconds (besides the rows around faults).
    #[arg(long, default_value_t = 30)]
    label_every: u64,
    /// Where to write the CSV.
    #[arg(long, value_name = "FILE", default_value = "car-dataset.csv")]
    output: PathBuf,
}

/// The `car-dataset` program: parses the command line, writes the CSV, prints a summary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = DatasetOptions {
        cars: cli.cars,
        hours: cli.hours,
        seed: cli.seed,
        fault_rate_per_hour: cli.fault_rate,
        label_every_s: cli.label_every,
    };
    let file = match std::fs::File::create(&cli.output) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("car-dataset: {}: {error}", cli.output.display());
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::BufWriter::new(file);
    match generate(&options, &mut out) {
        Ok(summary) => {
            println!(
                "{}: {} rows ({} anomalies; {} battery drops, {} speed spikes injected; {} \
                 unlabelled), mean range {:.1} km",
                cli.output.display(),
                summary.rows,
                summary.anomalies,
                summary.battery_drops,
                summary.speed_spikes,
                summary.unlabelled,
                summary.mean_range_km
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("car-dataset: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(fault_rate_per_hour: f64) -> (String, DatasetSummary) {
        let options = DatasetOptions {
            cars: 3,
            hours: 0.5,
            seed: 7,
            fault_rate_per_hour,
            label_every_s: 60,
        };
        let mut out = Vec::new();
        let summary = generate(&options, &mut out).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn rows_hold_the_features_and_labels() {
        let (csv, summary) = small(0.0);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "car,t_s,speed_kmh,battery_pct,temperature_c,consumption_pct_per_km,\
             battery_drop_pct,speed_change_kmh,range_km,anomaly,fault"
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len() as u64, summary.rows);
        assert_eq!(summary.rows, 3 * 30);
        assert_eq!((summary.anomalies, summary.unlabelled), (0, 0));
        for row in &rows {
            assert_eq!(row.len(), 11);
            let range: f64 = row[8].parse().unwrap();
            let battery: f64 = row[3].parse().unwrap();
            // At least 0.3 %/km, at most 2 %/km: the range is between these bounds.
            assert!(range <= (battery - 5.0) / 0.25 + 1.0, "{row:?}");
            assert!(range >= (battery - 5.0) / 2.0 - 1.0, "{row:?}");
            assert_eq!((row[9], row[10]), ("0", ""));
        }
    }

    #[test]
    fn faults_are_labelled_where_they_show() {
        let (csv, summary) = small(60.0);
        assert!(
            summary.battery_drops > 0 && summary.speed_spikes > 0,
            "{summary:?}"
        );
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        for row in &rows {
            let speed: f64 = row[2].parse().unwrap();
            let drop: f64 = row[6].parse().unwrap();
            let change: f64 = row[7].parse().unwrap();
            match (row[9], row[10]) {
                ("1", "battery_drop") => assert!(drop >= 0.4, "{row:?}"),
                ("1", "speed_spike") => assert!(speed >= 40.0 || change <= -35.0, "{row:?}"),
                ("1", _) => panic!("{row:?}"),
                // Normal rows show no jump a fault would.
                _ => assert!(drop < 0.4 && change.abs() < 35.0, "{row:?}"),
            }
        }
        assert!(summary.anomalies >= summary.battery_drops + 3 * summary.speed_spikes);
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        assert_eq!(small(30.0).0, small(30.0).0);
    }

    #[test]
    fn the_range_is_what_the_car_drives_until_its_charging_stop() {
        let mut car = CarModel::new(21);
        let range = range_km(&car).unwrap();
        let start = car.odometer_km();
        while car.charges() == 0 {
            car.step(1000);
        }
        assert!((car.odometer_km() - start - range).abs() < 1e-9);
    }
}
