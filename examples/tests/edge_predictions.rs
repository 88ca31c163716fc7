//! Predictions at the edge, through a running core whose cloud is unreachable: a car's telemetry
//! gets a prediction per message (`cars/{thing}/predictions`) and its range in the car's shadow
//! on the core; a planted anomaly (a sudden battery drop at an implausible speed) raises
//! `cars/{thing}/alerts`; a new model file swapped in without a restart changes the predictions;
//! a model file of the wrong shape is refused with its error while the running model goes on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::{Value, json};

const CAR: &str = "car-0001";

fn ml_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("ml")
        .join(name)
}

/// Replaces `to` with a copy of `from` the safe way: written beside it, renamed over it.
fn swap_file(from: &Path, to: &Path) {
    let next = to.with_extension("next");
    std::fs::copy(from, &next).unwrap();
    std::fs::rename(&next, to).unwrap();
}

fn telemetry(seq: u64, speed: f64, battery: f64, odometer: f64) -> String {
    json!({
        "position": {"lat": 52.38, "lon": 4.84, "progress": 0.1},
        "speed": speed,
        "battery": battery,
        "temperature": 12.5,
        "odometer": odometer,
        "doorsLocked": true,
        "lights": "auto",
        "speedLimit": 120,
        "timestamp": 1_700_000_000_000u64 + seq * 1000,
    })
    .to_string()
}

async fn next_publish(events: &mut rumqttc::EventLoop, topic_suffix: &str) -> Value {
    let suffix = topic_suffix.to_owned();
    wait_for(events, move |e| match e {
        Event::Incoming(Packet::Publish(p)) if p.topic.ends_with(&suffix) => {
            Some(serde_json::from_slice::<Value>(&p.payload).unwrap())
        }
        _ => None,
    })
    .await
    .unwrap_or_else(|e| panic!("no {topic_suffix}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_alerts_and_model_swaps_with_the_cloud_away() {
    let dir = Scratch::new("edge-predictions");
    let cloud = config(&dir.0.join("cloud"));
    let devices = provision(&cloud, 2);
    let model_path = dir.0.join("model.onnx");
    std::fs::copy(ml_file("car-model.onnx"), &model_path).unwrap();
    // The cloud is nowhere: everything here is local.
    let mut edge = offline_core_config(&dir.0, &devices);
    edge.predictions.model = model_path.clone();
    edge.predictions.reload_check_secs = 1;
    let core = iot_examples::edge::server::start(&edge).await.unwrap();
    let parts = core.predictions.clone().unwrap();
    let first_model = parts.slot.status().model_id;

    let ca = std::fs::read_to_string(edge.data_dir.join("ca").join("ca.pem")).unwrap();
    let mut options = MqttOptions::new(CAR, "localhost", core.local_mqtts.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(Some(&devices[0]), &ca, &[])),
    )));
    let (car, mut events) = AsyncClient::new(options, 100);
    for filter in [
        format!("cars/{CAR}/predictions"),
        format!("cars/{CAR}/alerts"),
        format!("$aws/things/{CAR}/shadow/get/accepted"),
    ] {
        car.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        wait_for(&mut events, |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
        })
        .await
        .unwrap();
    }

    // A normal drive: a prediction per message, no alert.
    let mut battery = 80.0;
    let mut odometer = 1000.0;
    let mut normal = None;
    for seq in 0..20 {
        battery -= 0.012;
        odometer += 0.017;
        car.publish(
            format!("cars/{CAR}/telemetry"),
            QoS::AtLeastOnce,
            false,
            telemetry(seq, 60.0, battery, odometer),
        )
        .await
        .unwrap();
        let prediction = next_publish(&mut events, "/predictions").await;
        assert_eq!(prediction["model"], first_model.as_str());
        assert!(
            prediction["rangeKm"].as_f64().unwrap() > 0.0,
            "{prediction}"
        );
        normal = Some(prediction);
    }
    let normal = normal.unwrap();
    assert_eq!(parts.stats.alerts.load(Ordering::Relaxed), 0, "{normal}");

    // The range is in the car's shadow on the core.
    car.publish(
        format!("$aws/things/{CAR}/shadow/get"),
        QoS::AtLeastOnce,
        false,
        "",
    )
    .await
    .unwrap();
    let shadow = next_publish(&mut events, "/shadow/get/accepted").await;
    assert!(
        shadow["state"]["reported"]["predictedRangeKm"]
            .as_f64()
            .is_some(),
        "{shadow}"
    );

    // A planted anomaly: the battery falls by 30 points in a second at 400 km/h.
    car.publish(
        format!("cars/{CAR}/telemetry"),
        QoS::AtLeastOnce,
        false,
        telemetry(20, 400.0, battery - 30.0, odometer + 0.11),
    )
    .await
    .unwrap();
    let alert = next_publish(&mut events, "/alerts").await;
    assert_eq!(alert["kind"], "anomaly");
    assert!(alert["score"].as_f64().unwrap() >= 0.5, "{alert}");

    // A new model swapped in without a restart: predictions change.
    swap_file(&ml_file("car-model-linear.onnx"), &model_path);
    let mut seq = 21;
    let swapped = loop {
        odometer += 0.017;
        car.publish(
            format!("cars/{CAR}/telemetry"),
            QoS::AtLeastOnce,
            false,
            telemetry(seq, 60.0, battery - 30.0, odometer),
        )
        .await
        .unwrap();
        seq += 1;
        let prediction = next_publish(&mut events, "/predictions").await;
        if prediction["model"] != first_model.as_str() {
            break prediction;
        }
        assert!(seq < 60, "the new model was never swapped in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let second_model = parts.slot.status().model_id;
    assert_eq!(swapped["model"], second_model.as_str());
    assert_ne!(swapped["rangeKm"], normal["rangeKm"]);

    // A model of the wrong shape is refused with its error; the running one goes on.
    swap_file(&ml_file("wrong-shape.onnx"), &model_path);
    let refused = loop {
        let status = parts.slot.status();
        if status.refused > 0 {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.model_id, second_model);
    let error = refused.last_error.unwrap();
    assert!(error.contains("model.onnx"), "{error}");
    car.publish(
        format!("cars/{CAR}/telemetry"),
        QoS::AtLeastOnce,
        false,
        telemetry(seq, 60.0, battery - 30.0, odometer + 0.017),
    )
    .await
    .unwrap();
    let after = next_publish(&mut events, "/predictions").await;
    assert_eq!(after["model"], second_model.as_str());

    let done = parts.stats.predictions.load(Ordering::Relaxed);
    let ns = parts.stats.inference_ns.load(Ordering::Relaxed);
    eprintln!(
        "predictions: {done}, mean inference {} µs (debug build); refused model: {error}",
        ns / done.max(1) / 1000
    );
    core.shutdown().await;
}
