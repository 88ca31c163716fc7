//! The simulated cars against the real broker: provisioned through the running broker's admin
//! socket, connected over mTLS and over SigV4 WebSocket; telemetry arrives; a desired change made
//! with the shadow REST API reaches the car and is reported back; a value outside the car's
//! schema is refused and reported as `lastError` (without a report loop); commands are answered;
//! and after the broker process is killed and restarted the cars reconnect, restore their
//! subscriptions and resync their shadows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use iot_examples::device::car::FleetCounters;
use iot_examples::device::car::fleet::{
    self, FleetManifest, FleetOptions, FleetRoute, FleetTransport,
};
use mqtt_codec::QoS;
use rumqttc::{Event, Packet};
use serde_json::{Value, json};
use tokio::sync::watch;

fn options(count: usize, port: u16, transport: FleetTransport) -> FleetOptions {
    FleetOptions {
        count,
        first: 0,
        route: FleetRoute::Direct,
        host: "localhost".into(),
        port,
        transport,
        every: Duration::from_millis(200),
        telemetry_qos: QoS::AtLeastOnce,
        persistent: true,
        ramp_up: Duration::from_millis(100),
        reconnect: iot_examples::device::ReconnectPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(1000),
        },
    }
}

/// A shadow read over HTTPS with the device certificate of an admin-like test device.
async fn shadow(port: u16, device: &Device, thing: &str) -> (u16, Value) {
    https(
        port,
        Some(device),
        &device.ca_pem,
        &[],
        &format!("GET /things/{thing}/shadow HTTP/1.1"),
        &[],
        b"",
    )
    .await
}

async fn desire(port: u16, device: &Device, thing: &str, desired: Value) {
    let body = json!({"state": {"desired": desired}}).to_string();
    let (status, reply) = https(
        port,
        Some(device),
        &device.ca_pem,
        &[],
        &format!("POST /things/{thing}/shadow HTTP/1.1"),
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> Option<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            None => return,
            Some(why) if tokio::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}: {why}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The operator: reads and writes any shadow over REST, watches every car topic over MQTT.
const OPERATOR_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow"],"Resource":"*"},
  {"Effect":"Allow","Action":["iot:Connect","iot:Publish","iot:Subscribe","iot:Receive"],"Resource":"*"}]}"#;

fn operator(config: &iot_examples::config::BrokerConfig) -> Device {
    let device = provision(config, 1).remove(0);
    attach_new_policy(config, "operator", OPERATOR_POLICY, &device.id);
    device
}

async fn command(mqtts: u16, operator: &Device, thing: &str, payload: &str) -> Value {
    let (client, mut events) = rumqttc(operator, &format!("operator-{thing}"), mqtts, true);
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    client
        .subscribe(
            format!("cars/{thing}/commands/result"),
            rumqttc::QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();
    client
        .publish(
            format!("cars/{thing}/commands"),
            rumqttc::QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .unwrap();
    let result = wait_for(&mut events, incoming_publish).await.unwrap();
    serde_json::from_slice(&result.payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_obey_their_shadow_and_answer_commands() {
    let scratch = Scratch::new("cars");
    let config = config(&scratch.0);
    let operator = operator(&config);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let (mqtts, https_port) = (running.mqtts.port(), running.alpn.unwrap().port());

    // Provisioned while the broker runs: through its admin socket.
    let manifest = fleet::provision(&config, 3).unwrap();
    assert_eq!(manifest.cars.len(), 3);
    assert!(manifest.access_key.is_some());
    // Again: nothing new.
    assert_eq!(fleet::provision(&config, 3).unwrap(), manifest);

    let (watcher, mut watch_events) = rumqttc(&operator, "watcher", mqtts, true);
    wait_for(&mut watch_events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    watcher
        .subscribe("cars/+/telemetry", rumqttc::QoS::AtMostOnce)
        .await
        .unwrap();

    let (stop, shutdown) = watch::channel(false);
    let counters = Arc::new(FleetCounters::default());
    let fleet_task = tokio::spawn({
        let (config, manifest, counters) = (config.clone(), manifest.clone(), counters.clone());
        async move {
            fleet::run(
                &config,
                &manifest,
                &options(3, mqtts, FleetTransport::Mtls),
                counters,
                shutdown,
            )
            .await
            .unwrap()
        }
    });

    // Telemetry from every car.
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 3 {
        let message = wait_for(&mut watch_events, incoming_publish).await.unwrap();
        let telemetry: Value = serde_json::from_slice(&message.payload).unwrap();
        assert!(telemetry["position"]["lat"].is_f64(), "{telemetry}");
        assert!(telemetry["battery"].is_f64(), "{telemetry}");
        seen.insert(message.topic.clone());
    }

    // Each car reported its settings.
    eventually("reported state", async || {
        let (status, doc) = shadow(https_port, &operator, "car-0001").await;
        (status != 200 || doc["state"]["reported"]["lights"] != "auto")
            .then(|| format!("{status} {doc}"))
    })
    .await;

    // A desired change through the REST API reaches the car and is reported back.
    desire(
        https_port,
        &operator,
        "car-0001",
        json!({"lights": "on", "speedLimit": 50}),
    )
    .await;
    eventually("the car to apply and report", async || {
        let (_, doc) = shadow(https_port, &operator, "car-0001").await;
        let reported = &doc["state"]["reported"];
        (reported["lights"] != "on"
            || reported["speedLimit"] != 50
            || doc["state"].get("delta").is_some())
        .then(|| doc.to_string())
    })
    .await;

    // Out of the schema: not applied, reported as lastError, and no report loop.
    desire(
        https_port,
        &operator,
        "car-0001",
        json!({"speedLimit": 500}),
    )
    .await;
    eventually("lastError", async || {
        let (_, doc) = shadow(https_port, &operator, "car-0001").await;
        (doc["state"]["reported"]["lastError"]["key"] != "speedLimit").then(|| doc.to_string())
    })
    .await;
    let (_, doc) = shadow(https_port, &operator, "car-0001").await;
    assert_eq!(doc["state"]["reported"]["speedLimit"], 50);
    assert_eq!(
        doc["state"]["delta"]["speedLimit"], 500,
        "the refused value stays desired"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, later) = shadow(https_port, &operator, "car-0001").await;
    assert_eq!(
        later["version"], doc["version"],
        "the car did not report the refusal again"
    );
    // A valid change clears lastError.
    desire(https_port, &operator, "car-0001", json!({"speedLimit": 80})).await;
    eventually("lastError cleared", async || {
        let (_, doc) = shadow(https_port, &operator, "car-0001").await;
        let reported = &doc["state"]["reported"];
        (reported["speedLimit"] != 80 || reported.get("lastError").is_some())
            .then(|| doc.to_string())
    })
    .await;

    // Commands.
    let result = command(
        mqtts,
        &operator,
        "car-0002",
        r#"{"id":"c1","command":"unlock"}"#,
    )
    .await;
    assert_eq!(
        (result["id"].as_str(), result["status"].as_str()),
        (Some("c1"), Some("done"))
    );
    eventually("unlock reported", async || {
        let (_, doc) = shadow(https_port, &operator, "car-0002").await;
        (doc["state"]["reported"]["doorsLocked"] != false).then(|| doc.to_string())
    })
    .await;
    let result = command(
        mqtts,
        &operator,
        "car-0003",
        r#"{"id":"c2","command":"fly"}"#,
    )
    .await;
    assert_eq!(result["status"], "rejected");
    let result = command(mqtts, &operator, "car-0003", "not json").await;
    assert_eq!(
        (result["id"].clone(), result["status"].as_str()),
        (Value::Null, Some("rejected"))
    );

    stop.send(true).unwrap();
    fleet_task.await.unwrap();
    assert!(
        counters
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_over_websocket_and_across_a_broker_crash() {
    let scratch = Scratch::new("cars-crash");
    let (mqtts, alpn) = (free_port(), free_port());
    let config_path = write_config_on_ports(&scratch.0, mqtts, alpn);
    let config = iot_examples::config::BrokerConfig::load(Some(&config_path)).unwrap();
    let operator = operator(&config);
    // Provisioned with the broker stopped: on the data directory.
    let manifest: FleetManifest = fleet::provision(&config, 2).unwrap();
    let broker = BrokerProcess::start(&config_path);

    let (stop, shutdown) = watch::channel(false);
    let counters = Arc::new(FleetCounters::default());
    let fleet_task = tokio::spawn({
        let (config, manifest, counters) = (config.clone(), manifest.clone(), counters.clone());
        async move {
            fleet::run(
                &config,
                &manifest,
                &options(2, alpn, FleetTransport::Wss),
                counters,
                shutdown,
            )
            .await
            .unwrap()
        }
    });
    eventually("both cars connected over WebSocket", async || {
        let n = counters
            .connected
            .load(std::sync::atomic::Ordering::Relaxed);
        (n != 2).then(|| n.to_string())
    })
    .await;
    desire(alpn, &operator, "car-0002", json!({"lights": "off"})).await;
    eventually("the change applied", async || {
        let (_, doc) = shadow(alpn, &operator, "car-0002").await;
        (doc["state"]["reported"]["lights"] != "off").then(|| doc.to_string())
    })
    .await;

    // Kill the broker; while it is down, the operator's next change cannot reach anyone.
    broker.kill_9();
    eventually("the cars noticed", async || {
        let n = counters
            .connected
            .load(std::sync::atomic::Ordering::Relaxed);
        (n != 0).then(|| n.to_string())
    })
    .await;
    let broker = BrokerProcess::start(&config_path);
    eventually("both cars back", async || {
        let n = counters
            .connected
            .load(std::sync::atomic::Ordering::Relaxed);
        (n != 2).then(|| n.to_string())
    })
    .await;
    // Subscriptions and shadow sync work again: a new desired value is applied and reported.
    desire(
        alpn,
        &operator,
        "car-0001",
        json!({"speedLimit": 30, "lights": "on"}),
    )
    .await;
    eventually("the change applied after the restart", async || {
        let (_, doc) = shadow(alpn, &operator, "car-0001").await;
        let reported = &doc["state"]["reported"];
        (reported["speedLimit"] != 30 || reported["lights"] != "on").then(|| doc.to_string())
    })
    .await;
    let result = command(
        mqtts,
        &operator,
        "car-0002",
        r#"{"id":"after","command":"honk"}"#,
    )
    .await;
    assert_eq!(result["status"], "done");

    stop.send(true).unwrap();
    fleet_task.await.unwrap();
    drop(broker);
}
