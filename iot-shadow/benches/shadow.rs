//! Criterion benchmarks: shadow updates per second (merge, metadata, delta, the three response
//! documents, the in-memory store) and delta computations per second, for documents of about
//! 1 KiB and 8 KiB.
//!
//! `shadow_update` publishes the update as the broker does (`handle_publish`: the answers as JSON
//! text); `shadow_update_rest` calls `update` as the REST API does, which also returns the
//! `update/accepted` document as a `serde_json::Value` (a map per metadata leaf, so it costs more).
//!
//! Run: `cargo bench -p iot-shadow --bench shadow`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iot_shadow::{MemoryShadowStore, ShadowKey, ShadowLimits, ShadowService, delta};
use serde_json::{Map, Value, json};

/// A car's reported state of roughly `bytes` serialized bytes: nested sensor groups of numbers,
/// strings and arrays.
fn document(bytes: usize) -> Map<String, Value> {
    let mut doc = Map::new();
    let mut i = 0;
    while Value::Object(doc.clone()).to_string().len() < bytes {
        doc.insert(
            format!("sensor{i:03}"),
            json!({"value": i * 7, "unit": "kPa", "ok": i % 3 != 0, "history": [i, i + 1, i + 2]}),
        );
        i += 1;
    }
    doc
}

fn bench(c: &mut Criterion) {
    let limits = {
        let mut l = ShadowLimits::aws();
        l.max_state_bytes = 64 * 1024;
        l.max_requests_per_second_per_thing = 0;
        l
    };
    for size in [1024usize, 8192] {
        let reported = document(size);
        let mut desired = reported.clone();
        // A few desired values differ, so the delta is small but not empty.
        for (n, (_, v)) in desired.iter_mut().enumerate() {
            if n % 5 == 0 {
                v["value"] = json!(-1);
            }
        }
        let label = format!("{}KiB", size / 1024);

        let full = json!({"state": {"desired": desired, "reported": reported}}).to_string();
        let small = br#"{"state":{"reported":{"sensor000":{"value":42}}}}"#;
        let topic = "$aws/things/car-1/shadow/update";
        let key = ShadowKey::classic("car-1");
        let fresh = || {
            let mut service =
                ShadowService::with_limits(MemoryShadowStore::default(), limits.clone());
            service.update(&key, full.as_bytes(), 0).unwrap();
            service
        };

        let mut group = c.benchmark_group("shadow_update");
        group.throughput(Throughput::Elements(1));
        // A device updating one reported field of a full document, as telemetry does.
        let mut service = fresh();
        group.bench_function(format!("one_field_of_{label}"), |b| {
            b.iter(|| {
                service
                    .handle_publish(topic, black_box(small), 1_000)
                    .unwrap()
            })
        });
        // Replacing the whole document each time.
        group.bench_function(format!("whole_{label}"), |b| {
            b.iter(|| {
                service
                    .handle_publish(topic, black_box(full.as_bytes()), 1_000)
                    .unwrap()
            })
        });
        group.finish();

        let mut group = c.benchmark_group("shadow_update_rest");
        group.throughput(Throughput::Elements(1));
        let mut service = fresh();
        group.bench_function(format!("one_field_of_{label}"), |b| {
            b.iter(|| service.update(&key, black_box(small), 1_000).unwrap())
        });
        group.bench_function(format!("whole_{label}"), |b| {
            b.iter(|| {
                service
                    .update(&key, black_box(full.as_bytes()), 1_000)
                    .unwrap()
            })
        });
        group.finish();

        let mut group = c.benchmark_group("shadow_delta");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("delta_{label}"), |b| {
            b.iter(|| delta(black_box(&desired), Some(black_box(&reported))))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
