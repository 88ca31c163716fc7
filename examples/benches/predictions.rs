//! Criterion benchmarks of the edge core's prediction handler: one inference of the built-in
//! model (`tract`, one row), and the whole handler per telemetry message (JSON parse, feature
//! window, inference, the prediction's JSON, the shadow report), i.e. the latency a telemetry
//! message gains on the core.
//!
//! Run: `cargo bench -p iot-examples --bench predictions`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iot_examples::edge::handlers::{HandlerOutput, LocalHandler};
use iot_examples::edge::predictions::handler::{PredictionSettings, Predictions};
use iot_examples::edge::predictions::model::{BUILT_IN_MODEL, PredictionModel};
use iot_examples::edge::predictions::slot::ModelSlot;
use serde_json::json;

fn bench(c: &mut Criterion) {
    let model = PredictionModel::from_bytes(BUILT_IN_MODEL, "built-in").unwrap();
    let mut group = c.benchmark_group("predictions");
    group.throughput(Throughput::Elements(1));
    group.bench_function("inference, one row", |b| {
        b.iter(|| {
            model
                .predict(black_box(&[62.0, 71.5, 12.5, 0.61, 0.01, 0.4]))
                .unwrap()
        })
    });
    let slot = ModelSlot::new(model);
    let mut handler = Predictions::new(
        PredictionSettings {
            telemetry_filter: "cars/+/telemetry".into(),
            anomaly_threshold: 0.5,
            report_min_change_km: 1.0,
            report_every_ms: 60_000,
        },
        slot,
        Arc::default(),
    );
    let mut seq = 0u64;
    group.bench_function("handler, one telemetry message", |b| {
        b.iter(|| {
            seq += 1;
            let telemetry = json!({
                "speed": 60.0 + (seq % 10) as f64, "battery": 80.0 - (seq % 1000) as f64 * 0.01,
                "temperature": 12.5, "odometer": 1000.0 + seq as f64 * 0.017,
                "timestamp": 1_700_000_000_000u64 + seq * 1000,
            })
            .to_string();
            let mut out = HandlerOutput::default();
            handler.on_message(
                &format!("cars/car-{:04}/telemetry", seq % 100),
                telemetry.as_bytes(),
                seq * 1000,
                &mut out,
            );
            black_box(out.take())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
