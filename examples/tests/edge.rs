//! The edge core with a real cloud, a real core and a real car, each the program users run (the
//! cloud and the core as their own processes): the core's cloud link is cut (the cloud is
//! killed) while the car publishes QoS 1 telemetry and the shadow changes on both sides; the core
//! itself is killed with SIGKILL while offline and restarted; then the cloud comes back. Every
//! QoS 1 message the core acknowledged reaches the cloud, in order, and both shadows converge by
//! the documented rule (a field changed on one side only takes that side's value; `desired`
//! changed on both takes the cloud's).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use iot_examples::config::BrokerConfig;
use iot_examples::config::edge::EdgeConfig;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const CORE: &str = "edge-core-1";
const CAR: &str = "car-0001";

/// Lets the cloud-side app read and change any shadow over HTTPS and watch everything.
const APP_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow"],"Resource":"*"},
  {"Effect":"Allow","Action":["iot:Connect","iot:Subscribe","iot:Receive"],"Resource":"*"}]}"#;

/// The edge core as its own process.
struct EdgeProcess {
    child: std::process::Child,
    local_port: u16,
}

impl EdgeProcess {
    fn start(config: &Path) -> EdgeProcess {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aws-iot-edge-core"));
        command
            .arg("--config")
            .arg(config)
            .args(["--status-secs", "0"]);
        let (child, ready) = start_until_ready(command);
        EdgeProcess {
            child,
            local_port: ready_port(&ready, "localMqtts"),
        }
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_edge_config(
    dir: &Path,
    cloud_data: &Path,
    cloud_mqtts: u16,
    cloud_https: u16,
    local: u16,
) -> PathBuf {
    let edge = dir.join("edge");
    let ca = cloud_data.join("ca").join("ca.pem");
    let text = format!(
        "data_dir = {edge:?}\nthing_name = {CORE:?}\n\
         [cloud]\nmqtts_port = {cloud_mqtts}\nhttps_port = {cloud_https}\nca = {ca:?}\n\
         certificate = {:?}\nprivate_key = {:?}\nkeep_alive_secs = 5\nregister_connectivity = false\n\
         [local]\nmqtts_port = {local}\nclient_device_ca = {ca:?}\n\
         [fleet_summary]\nevery_secs = 2\n",
        edge.join("core").join("core.cert.pem"),
        edge.join("core").join("core.private.key"),
    );
    let path = dir.join("edge.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A rumqttc client whose events are pumped into a channel by a task (errors are reported as
/// `None` and the pump keeps polling, so the client reconnects by itself).
fn client(
    device: &Device,
    client_id: &str,
    ca_pem: &str,
    port: u16,
) -> (AsyncClient, mpsc::Receiver<Option<Event>>) {
    let mut options = MqttOptions::new(client_id, "localhost", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(Some(device), ca_pem, &[])),
    )));
    let (client, mut events) = AsyncClient::new(options, 100);
    // Bounded: the pump waits for the test to read (a test that stops reading stops the pump).
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(event) => {
                    if tx.send(Some(event)).await.is_err() {
                        return;
                    }
                }
                Err(_) => {
                    if tx.send(None).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    (client, rx)
}

/// Waits (up to `secs`) for an event `pick` accepts; panics naming `what` otherwise.
async fn expect<T>(
    events: &mut mpsc::Receiver<Option<Event>>,
    what: &str,
    secs: u64,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the pump runs");
        if let Some(found) = event.as_ref().and_then(&mut pick) {
            return found;
        }
    }
}

fn publish_of(event: &Event) -> Option<rumqttc::Publish> {
    match event {
        Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
        _ => None,
    }
}

/// Publishes telemetry `seqs` from the car, each waiting for the core's PUBACK.
async fn telemetry(
    car: &AsyncClient,
    events: &mut mpsc::Receiver<Option<Event>>,
    seqs: std::ops::Range<u64>,
) {
    for seq in seqs {
        let body = json!({"seq": seq, "speed": 50 + seq % 20, "battery": 90.0});
        car.publish(
            format!("cars/{CAR}/telemetry"),
            QoS::AtLeastOnce,
            false,
            body.to_string(),
        )
        .await
        .unwrap();
        expect(events, "the core's PUBACK", 10, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await;
    }
}

/// The car's local shadow, asked over MQTT from the core.
async fn local_shadow(car: &AsyncClient, events: &mut mpsc::Receiver<Option<Event>>) -> Value {
    car.publish(
        format!("$aws/things/{CAR}/shadow/get"),
        QoS::AtLeastOnce,
        false,
        "",
    )
    .await
    .unwrap();
    expect(events, "get/accepted from the core", 10, |e| {
        publish_of(e)
            .filter(|p| p.topic.ends_with("/shadow/get/accepted"))
            .map(|p| serde_json::from_slice::<Value>(&p.payload).unwrap())
    })
    .await
}

async fn update_local(car: &AsyncClient, events: &mut mpsc::Receiver<Option<Event>>, state: Value) {
    car.publish(
        format!("$aws/things/{CAR}/shadow/update"),
        QoS::AtLeastOnce,
        false,
        json!({"state": state}).to_string(),
    )
    .await
    .unwrap();
    expect(events, "update/accepted from the core", 10, |e| {
        publish_of(e)
            .filter(|p| p.topic.ends_with("/shadow/update/accepted"))
            .map(|_| ())
    })
    .await;
}

async fn cloud_shadow(alpn: u16, app: &Device) -> (u16, Value) {
    https(
        alpn,
        Some(app),
        &app.ca_pem,
        &[],
        &format!("GET /things/{CAR}/shadow HTTP/1.1"),
        &[],
        b"",
    )
    .await
}

/// Connects (and re-subscribes) the car to the core at `port`.
async fn car_on_core(
    device: &Device,
    core_ca: &str,
    port: u16,
) -> (AsyncClient, mpsc::Receiver<Option<Event>>) {
    let (car, mut events) = client(device, CAR, core_ca, port);
    expect(&mut events, "the core's CONNACK", 20, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await;
    for suffix in ["get/accepted", "update/accepted"] {
        car.subscribe(
            format!("$aws/things/{CAR}/shadow/{suffix}"),
            QoS::AtLeastOnce,
        )
        .await
        .unwrap();
        expect(&mut events, "SUBACK", 10, |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
        })
        .await;
    }
    (car, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_spool_kill_9_and_shadow_convergence() {
    let scratch = Scratch::new("edge");
    let cloud_dir = scratch.0.join("cloud");
    std::fs::create_dir_all(&cloud_dir).unwrap();
    let (mqtts, alpn, local) = (free_port(), free_port(), free_port());
    let cloud_config_path = write_config_on_ports(&cloud_dir, mqtts, alpn);
    let cloud_config = BrokerConfig::load(Some(&cloud_config_path)).unwrap();
    let devices = provision(&cloud_config, 2);
    let (car_device, app) = (&devices[0], &devices[1]);
    attach_new_policy(&cloud_config, "app", APP_POLICY, &app.id);
    let edge_config_path =
        write_edge_config(&scratch.0, &cloud_config.data_dir, mqtts, alpn, local);
    let edge_config = EdgeConfig::load(Some(&edge_config_path)).unwrap();
    assert!(iot_examples::edge::provision::provision_core(&cloud_config, &edge_config).unwrap());

    let cloud = BrokerProcess::start(&cloud_config_path);
    let core = EdgeProcess::start(&edge_config_path);
    let core_ca = std::fs::read_to_string(edge_config.data_dir.join("ca").join("ca.pem")).unwrap();

    // The cloud-side observer: a persistent session on the telemetry, the summary and the status.
    let (observer, mut seen) = client(app, "observer", &app.ca_pem, mqtts);
    expect(&mut seen, "the cloud's CONNACK", 10, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await;
    for filter in ["cars/+/telemetry", "fleet/#", "edge/edge-core-1/status"] {
        observer.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    }
    expect(&mut seen, "the core online in the cloud", 20, |e| {
        publish_of(e)
            .filter(|p| p.topic == "edge/edge-core-1/status")
            .and_then(|p| serde_json::from_slice::<Value>(&p.payload).ok())
            .filter(|s| s["online"] == true)
    })
    .await;

    // Online: telemetry flows through, a local shadow change reaches the cloud.
    let (car, mut car_events) = car_on_core(car_device, &core_ca, core.local_port).await;
    telemetry(&car, &mut car_events, 0..10).await;
    update_local(
        &car,
        &mut car_events,
        json!({"reported": {"lights": "on", "odometer": 1}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, doc) = cloud_shadow(alpn, app).await;
        if status == 200 && doc["state"]["reported"]["odometer"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the local shadow never reached the cloud: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The cloud goes away. The car keeps publishing, and its shadow keeps working locally.
    cloud.kill_9();
    telemetry(&car, &mut car_events, 10..40).await;
    update_local(
        &car,
        &mut car_events,
        json!({"reported": {"odometer": 2}, "desired": {"lights": "off"}}),
    )
    .await;

    // Meanwhile in the cloud (reachable by the app, not by the core: another MQTT port), the
    // same shadow changes: one field only there, one field changed on both sides.
    let elsewhere = free_port();
    write_config_on_ports(&cloud_dir, elsewhere, alpn);
    let cloud = BrokerProcess::start(&cloud_config_path);
    let (status, _) = https(
        alpn,
        Some(app),
        &app.ca_pem,
        &[],
        &format!("POST /things/{CAR}/shadow HTTP/1.1"),
        &[],
        json!({"state": {"desired": {"lights": "auto", "speedLimit": 80}}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 200);

    // The core is killed while offline, and restarted (still offline): its spool and local
    // shadow are intact, and the car goes on through it.
    core.kill_9();
    drop(car);
    drop(car_events);
    let core = EdgeProcess::start(&edge_config_path);
    let (car, mut car_events) = car_on_core(car_device, &core_ca, core.local_port).await;
    let local = local_shadow(&car, &mut car_events).await;
    assert_eq!(local["state"]["reported"]["odometer"], 2, "{local}");
    assert_eq!(local["state"]["desired"]["lights"], "off", "{local}");
    telemetry(&car, &mut car_events, 40..50).await;

    // The cloud comes back where the core looks for it.
    cloud.kill_9();
    write_config_on_ports(&cloud_dir, mqtts, alpn);
    let back = Instant::now();
    let _cloud = BrokerProcess::start(&cloud_config_path);

    // Every acknowledged message reaches the cloud, in order (QoS 1: a resend may repeat one).
    let mut received = Vec::new();
    let mut summaries = 0;
    while received.iter().collect::<BTreeSet<_>>().len() < 50 {
        let publish = expect(
            &mut seen,
            "the spooled telemetry in the cloud",
            60,
            publish_of,
        )
        .await;
        if publish.topic.starts_with("fleet/") {
            summaries += 1;
        }
        if publish.topic == format!("cars/{CAR}/telemetry") {
            let body: Value = serde_json::from_slice(&publish.payload).unwrap();
            received.push(body["seq"].as_u64().unwrap());
        }
    }
    let drained = back.elapsed();
    // First arrivals in publish order (a resend after a reconnect may repeat a few).
    let mut firsts = Vec::new();
    for seq in &received {
        if !firsts.contains(seq) {
            firsts.push(*seq);
        }
    }
    assert_eq!(firsts, (0..50).collect::<Vec<u64>>(), "order: {received:?}");
    assert_eq!(received.iter().collect::<BTreeSet<_>>().len(), 50);

    // Both shadows converge by the rule.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (cloud_doc, local_doc) = loop {
        let (_, cloud_doc) = cloud_shadow(alpn, app).await;
        let local_doc = local_shadow(&car, &mut car_events).await;
        let agreed = cloud_doc["state"]["desired"] == local_doc["state"]["desired"]
            && cloud_doc["state"]["reported"] == local_doc["state"]["reported"];
        if agreed && cloud_doc["state"]["reported"]["odometer"] == 2 {
            break (cloud_doc, local_doc);
        }
        assert!(
            Instant::now() < deadline,
            "no convergence: cloud {cloud_doc} local {local_doc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let converged = back.elapsed();
    // Changed on one side only: that side's value. `desired.lights` changed on both: the cloud's.
    assert_eq!(cloud_doc["state"]["reported"]["lights"], "on");
    assert_eq!(cloud_doc["state"]["desired"]["speedLimit"], 80);
    assert_eq!(cloud_doc["state"]["desired"]["lights"], "auto");
    assert_eq!(local_doc["state"]["desired"]["lights"], "auto");
    // The local handler's fleet summary (a minute in production, 2 s here) reaches the cloud
    // through the `fleet/#` mapping, and the core's status names the car behind it.
    let mut named = false;
    while summaries == 0 || !named {
        let publish = expect(
            &mut seen,
            "a fleet summary and the core's status",
            20,
            publish_of,
        )
        .await;
        let body: Value = serde_json::from_slice(&publish.payload).unwrap_or_default();
        if publish.topic == "fleet/edge-core-1/summary" {
            assert_eq!(body["core"], CORE, "{body}");
            summaries += 1;
        }
        if publish.topic == "edge/edge-core-1/status" && body["online"] == true {
            named |= body["things"] == json!([CAR]);
        }
    }
    eprintln!(
        "edge: 50 messages in the cloud {drained:?} after it came back; shadows converged after {converged:?}; {summaries} fleet summaries seen"
    );
}
