//! Clients nobody here wrote against the edge core's local broker (plain MQTT 3.1.1 under the
//! Standard profile, MQTT over TLS with client certificates and Greengrass device groups):
//! mosquitto_pub/mosquitto_sub (Debian) with QoS 2 and retained messages delivered to a wildcard
//! subscription, paho-mqtt (PyPI) with QoS 2, and a refusal by the device groups. The core runs
//! with its cloud unreachable: local traffic does not need it.
//!
//! Ignored by default; `.ci/interop` installs the tools and runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use iot_examples::edge::server::RunningEdge;
use serde_json::json;

const IGNORED: &str = "needs mosquitto-clients and paho-mqtt: run .ci/interop";

/// Client devices named `interop-*` may use `interop/…`; nothing else.
fn device_groups() -> serde_json::Value {
    json!({
        "formatVersion": "2021-03-05",
        "definitions": {"interop": {"selectionRule": "thingName: interop-*", "policyName": "interop"}},
        "policies": {"interop": {
            "all": {
                "operations": ["mqtt:connect", "mqtt:publish", "mqtt:subscribe"],
                "resources": [
                    "mqtt:clientId:${iot:Connection.Thing.ThingName}",
                    "mqtt:topic:interop/a/state", "mqtt:topic:interop/b/state",
                    "mqtt:topic:interop/paho",
                    "mqtt:topicfilter:interop/+/state", "mqtt:topicfilter:interop/paho"
                ]
            }
        }}
    })
}

struct Core {
    _dir: Scratch,
    running: RunningEdge,
    device: Device,
    ca: PathBuf,
}

async fn core(label: &str) -> Core {
    let dir = Scratch::new(label);
    let cloud = config(&dir.0.join("cloud"));
    let devices = provision(&cloud, 2);
    // The cloud is nowhere: the core keeps trying, local traffic goes on.
    let mut edge = offline_core_config(&dir.0, &devices);
    edge.device_groups = device_groups();
    let running = iot_examples::edge::server::start(&edge).await.unwrap();
    Core {
        ca: edge.data_dir.join("ca").join("ca.pem"),
        _dir: dir,
        running,
        device: devices[0].clone(),
    }
}

fn mosquitto(program: &str, core: &Core, client_id: &str) -> Command {
    let mut command = Command::new(program);
    let port = core.running.local_mqtts.port();
    command.args(["-h", "localhost", "-p", &port.to_string(), "-i", client_id]);
    command.arg("--cafile").arg(&core.ca);
    command.arg("--cert").arg(&core.device.cert_path);
    command.arg("--key").arg(&core.device.key_path);
    command
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn paho(core: &Core, ca: &Path, client_id: &str, topic: &str, qos: u8) -> Command {
    let mut command = Command::new("python3");
    command.arg(interop_dir().join("paho_client.py"));
    let port = core.running.local_mqtts.port();
    command.args(["--port", &port.to_string()]);
    command.arg("--cafile").arg(ca);
    command.arg("--cert").arg(&core.device.cert_path);
    command.arg("--key").arg(&core.device.key_path);
    command.args([
        "--client-id",
        client_id,
        "--topic",
        topic,
        "--qos",
        &qos.to_string(),
    ]);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients and paho-mqtt: run .ci/interop"]
async fn mosquitto_qos2_and_retained_to_a_wildcard() {
    let core = core("edge-mosquitto").await;
    // Two retained messages at QoS 2 ...
    for (topic, payload) in [("interop/a/state", "a-on"), ("interop/b/state", "b-off")] {
        let mut publish = mosquitto("mosquitto_pub", &core, "interop-pub");
        publish.args(["-t", topic, "-m", payload, "-q", "2", "-r"]);
        let out = run_tool(publish, IGNORED).await;
        assert!(out.status.success(), "mosquitto_pub: {}", output_text(&out));
    }
    // ... reach a later wildcard subscription (the Standard profile; AWS IoT would not).
    let mut subscribe = mosquitto("mosquitto_sub", &core, "interop-sub");
    subscribe.args([
        "-t",
        "interop/+/state",
        "-q",
        "2",
        "-v",
        "-C",
        "2",
        "-W",
        "10",
    ]);
    let out = run_tool(subscribe, IGNORED).await;
    assert!(out.status.success(), "mosquitto_sub: {}", output_text(&out));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, ["interop/a/state a-on", "interop/b/state b-off"]);

    // A device no group admits is refused (CONNACK 5 under the Standard profile).
    let mut stranger = mosquitto("mosquitto_pub", &core, "someone-else");
    stranger.args(["-t", "interop/a/state", "-m", "x", "-q", "1"]);
    let out = run_tool(stranger, IGNORED).await;
    assert!(
        !out.status.success(),
        "a stranger connected: {}",
        output_text(&out)
    );
    assert!(
        output_text(&out).to_lowercase().contains("not authori"),
        "{}",
        output_text(&out)
    );
    core.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients and paho-mqtt: run .ci/interop"]
async fn paho_qos2_round_trip() {
    let core = core("edge-paho").await;
    let ca = core.ca.clone();
    let out = run_tool(paho(&core, &ca, "interop-paho", "interop/paho", 2), IGNORED).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "RECEIVED hello from paho qos=2",
        "{}",
        output_text(&out)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    core.running.shutdown().await;
}
