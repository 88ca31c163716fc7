//! Clients nobody here wrote against the cloud broker: mosquitto_pub/mosquitto_sub and curl
//! (Debian), paho-mqtt (PyPI) over TLS and WebSocket, mqtt.js (npm) over WebSocket with a SigV4
//! presigned URL made by AWS's own signer (`aws-sigv4`) and over TLS; and every refusal as those
//! clients see it: unknown certificate, revoked certificate, bad signature, expired URL,
//! policy-denied publish and subscribe. Both denials close the connection: the spec's AWS IoT
//! profile (observed AWS behaviour) wins over the older issue text that said SUBACK 0x80 for a
//! denied subscribe.
//!
//! The tools are not part of `cargo test`'s world, so these tests are ignored by default;
//! `.ci/interop` installs the tools and runs them (`cargo test -p iot-examples --test interop --
//! --ignored`). A missing tool fails the test with the install command.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use iot_auth::provision::{CertificateAuthority, DeviceCertificateRequest};
use iot_auth::registry::CertificateStatus;
use iot_examples::broker::server::Running;
use iot_examples::store::access_keys::AccessKey;
use iot_examples::store::data_dir::DataDir;

const IGNORED: &str =
    "needs mosquitto-clients, curl, paho-mqtt, boto3 and mqtt.js: run .ci/interop";

/// Lets the test user and devices read and write shadows over REST, and read retained messages
/// under `cars/`.
const SHADOW_REST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow"],
   "Resource":"arn:aws:iot:us-east-1:123456789012:thing/*"},
  {"Effect":"Allow","Action":"iot:GetRetainedMessage",
   "Resource":"arn:aws:iot:us-east-1:123456789012:topic/cars/*"},
  {"Effect":"Allow","Action":"iot:ListRetainedMessages","Resource":"*"}]}"#;

struct Setup {
    _dir: Scratch,
    running: Running,
    devices: Vec<Device>,
    key: AccessKey,
    /// A certificate from a CA the broker does not know.
    stranger: Device,
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

async fn setup(label: &str) -> Setup {
    let dir = Scratch::new(label);
    let config = config(&dir.0);
    let devices = provision(&config, 3);
    let key = provision_access_key(&config, "interop");
    let user = iot_examples::store::access_keys::user_arn(&config.account, "interop");
    let mut opened = DataDir::new(&config.data_dir).open(&config, now()).unwrap();
    opened
        .registry
        .create_policy("shadow-rest", SHADOW_REST_POLICY)
        .unwrap();
    opened.registry.attach_policy("shadow-rest", &user).unwrap();
    opened
        .registry
        .attach_policy("shadow-rest", &devices[0].id)
        .unwrap();
    opened.store.put_registry_json(&opened.registry.to_json());
    opened.store.commit().unwrap();
    drop(opened);

    let other = CertificateAuthority::generate("Someone else's CA", now()).unwrap();
    let issued = other
        .issue_device(&DeviceCertificateRequest::new("stranger", now()))
        .unwrap();
    let cert_path = dir.0.join("stranger.cert.pem");
    let key_path = dir.0.join("stranger.private.key");
    std::fs::write(&cert_path, &issued.certificate_pem).unwrap();
    std::fs::write(&key_path, &issued.private_key_pem).unwrap();
    let stranger = Device {
        id: issued.certificate_id.to_string(),
        cert_pem: issued.certificate_pem,
        key_pem: issued.private_key_pem,
        ca_pem: devices[0].ca_pem.clone(),
        cert_path,
        key_path,
        ca_path: devices[0].ca_path.clone(),
    };
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    Setup {
        _dir: dir,
        running,
        devices,
        key,
        stranger,
    }
}

fn tls_args(command: &mut Command, device: &Device) {
    command
        .arg("--cafile")
        .arg(&device.ca_path)
        .arg("--cert")
        .arg(&device.cert_path)
        .arg("--key")
        .arg(&device.key_path);
}

fn mosquitto_pub(port: u16, device: &Device, client_id: &str, topic: &str, qos: u8) -> Command {
    let mut command = Command::new("mosquitto_pub");
    command.args(["-h", "localhost", "-p", &port.to_string(), "-i", client_id]);
    command.args([
        "-t",
        topic,
        "-q",
        &qos.to_string(),
        "-m",
        "hello from mosquitto",
    ]);
    tls_args(&mut command, device);
    command
}

fn paho(
    transport: &str,
    port: u16,
    ca: &Path,
    device: Option<&Device>,
    path: &str,
    client_id: &str,
    topic: &str,
) -> Command {
    let mut command = Command::new("python3");
    command.arg(interop_dir().join("paho_client.py"));
    command.args(["--transport", transport, "--port", &port.to_string()]);
    command.arg("--cafile").arg(ca);
    if let Some(d) = device {
        command.arg("--cert").arg(&d.cert_path);
        command.arg("--key").arg(&d.key_path);
    }
    command.args(["--path", path, "--client-id", client_id, "--topic", topic]);
    command
}

fn mqttjs(url: &str, client_id: &str, topic: &str, ca: &Path, device: Option<&Device>) -> Command {
    let mut command = Command::new("node");
    command.arg(interop_dir().join("mqttjs_client.js"));
    command.args([url, client_id, topic]);
    command.arg(ca);
    if let Some(d) = device {
        command.arg(&d.cert_path).arg(&d.key_path);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt and mqtt.js: run .ci/interop"]
async fn mosquitto_clients_over_tls() {
    let s = setup("mosquitto").await;
    let port = s.running.mqtts.port();
    let mut sub = Command::new("mosquitto_sub");
    sub.args(["-h", "localhost", "-p", &port.to_string(), "-i", "mosq-sub"]);
    sub.args(["-t", "cars/mosquitto", "-q", "1", "-C", "1", "-W", "15"]);
    tls_args(&mut sub, &s.devices[0]);
    let subscriber = tokio::spawn(run_tool(sub, IGNORED));
    // Publish until the subscriber has one (it may not have subscribed yet).
    for _ in 0..40 {
        let out = run_tool(
            mosquitto_pub(port, &s.devices[1], "mosq-pub", "cars/mosquitto", 1),
            IGNORED,
        )
        .await;
        assert!(out.status.success(), "mosquitto_pub: {}", output_text(&out));
        if subscriber.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = subscriber.await.unwrap();
    assert!(out.status.success(), "mosquitto_sub: {}", output_text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from mosquitto"
    );
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt and mqtt.js: run .ci/interop"]
async fn mosquitto_sees_each_refusal() {
    let s = setup("mosquitto-refusals").await;
    let port = s.running.mqtts.port();

    // A certificate from an unknown CA: the TLS handshake fails.
    let out = run_tool(
        mosquitto_pub(port, &s.stranger, "stranger", "cars/x", 1),
        IGNORED,
    )
    .await;
    assert!(
        !out.status.success(),
        "unknown CA accepted: {}",
        output_text(&out)
    );

    // A revoked certificate: refused the same way, before any MQTT byte.
    set_status(&s.running, &s.devices[2], CertificateStatus::Revoked);
    let out = run_tool(
        mosquitto_pub(port, &s.devices[2], "revoked", "cars/x", 1),
        IGNORED,
    )
    .await;
    assert!(
        !out.status.success(),
        "revoked certificate accepted: {}",
        output_text(&out)
    );

    // Publishing where the policy denies: AWS closes the connection, so no PUBACK comes.
    let out = run_tool(
        mosquitto_pub(port, &s.devices[0], "denied-pub", "cars/forbidden", 1),
        IGNORED,
    )
    .await;
    assert!(
        !out.status.success(),
        "denied publish acknowledged: {}",
        output_text(&out)
    );

    // Subscribing where the policy denies: AWS closes the connection without a SUBACK.
    let mut sub = Command::new("mosquitto_sub");
    sub.args([
        "-d",
        "-h",
        "localhost",
        "-p",
        &port.to_string(),
        "-i",
        "denied-sub",
    ]);
    sub.args(["-t", "cars/forbidden", "-q", "1", "-C", "1", "-W", "3"]);
    tls_args(&mut sub, &s.devices[0]);
    let out = run_tool(sub, IGNORED).await;
    let log = output_text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("sending SUBSCRIBE"), "{log}");
    assert!(
        !log.contains("received SUBACK"),
        "a denied subscribe was acknowledged: {log}"
    );
    s.running.shutdown().await;
}

fn curl(device: Option<&Device>, ca: &Path) -> Command {
    let mut command = Command::new("curl");
    command.args(["--silent", "--show-error", "--max-time", "10"]);
    command.args(["--write-out", "\n%{http_code}"]);
    command.arg("--cacert").arg(ca);
    if let Some(d) = device {
        command.arg("--cert").arg(&d.cert_path);
        command.arg("--key").arg(&d.key_path);
    }
    command
}

/// Splits curl's output into (body, status).
fn curl_result(out: &Output) -> (serde_json::Value, u16) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let status = status.trim().parse().unwrap_or(0);
    (
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        status,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt and mqtt.js: run .ci/interop"]
async fn curl_https_publish_and_shadow_rest() {
    let s = setup("curl").await;
    let https = s.running.alpn.unwrap().port();
    let ca = s.devices[0].ca_path.clone();
    let (listener, mut events) =
        rumqttc(&s.devices[1], "curl-listener", s.running.mqtts.port(), true);
    wait_for(&mut events, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    listener
        .subscribe("cars/curl/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();

    // With a client certificate, the topic as one %2F-joined segment (as boto3 sends it).
    let mut c = curl(Some(&s.devices[0]), &ca);
    c.args(["-X", "POST", "--data", "from curl"]);
    c.arg(format!(
        "https://localhost:{https}/topics/cars%2Fcurl%2Fcert?qos=1"
    ));
    let out = run_tool(c, IGNORED).await;
    let (body, status) = curl_result(&out);
    assert_eq!(status, 200, "{}", output_text(&out));
    assert_eq!(body["message"], "OK");
    assert!(body["traceId"].as_str().is_some_and(|t| t.len() == 36));
    let message = wait_for(&mut events, incoming_publish).await.unwrap();
    assert_eq!(message.topic, "cars/curl/cert");
    assert_eq!(&message.payload[..], b"from curl");

    // Signed with curl's own SigV4 implementation (which, unlike the AWS SDKs, does not encode the
    // path twice, so the topic goes with raw `/`; the certificate case above sent `%2F`).
    let mut c = curl(None, &ca);
    c.args(["-X", "POST", "--data", "signed by curl"]);
    c.args(["--aws-sigv4", "aws:amz:us-east-1:iotdevicegateway"]);
    c.args([
        "--user",
        &format!("{}:{}", s.key.access_key_id, s.key.secret_access_key),
    ]);
    c.arg(format!(
        "https://localhost:{https}/topics/cars/curl/sigv4?qos=1"
    ));
    let out = run_tool(c, IGNORED).await;
    let (body, status) = curl_result(&out);
    assert_eq!(status, 200, "{}", output_text(&out));
    assert_eq!(body["message"], "OK");
    let message = wait_for(&mut events, incoming_publish).await.unwrap();
    assert_eq!(message.topic, "cars/curl/sigv4");

    // A wrong secret: 403 with AWS's error body.
    let mut c = curl(None, &ca);
    c.args(["-X", "POST", "--data", "x"]);
    c.args(["--aws-sigv4", "aws:amz:us-east-1:iotdevicegateway"]);
    c.args(["--user", &format!("{}:not-the-secret", s.key.access_key_id)]);
    c.arg(format!("https://localhost:{https}/topics/cars/curl?qos=1"));
    let (body, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("signature"));

    // No authentication at all: 401.
    let mut c = curl(None, &ca);
    c.args(["-X", "POST", "--data", "x"]);
    c.arg(format!("https://localhost:{https}/topics/cars/curl"));
    let (body, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 401);
    assert!(body["traceId"].is_string());

    // The policy denies the topic: 403, nothing delivered.
    let mut c = curl(Some(&s.devices[0]), &ca);
    c.args(["-X", "POST", "--data", "x"]);
    c.arg(format!("https://localhost:{https}/topics/cars/forbidden"));
    let (body, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!((status, body["message"].as_str()), (403, Some("Forbidden")));

    // Bad qos: 400.
    let mut c = curl(Some(&s.devices[0]), &ca);
    c.args(["-X", "POST", "--data", "x"]);
    c.arg(format!("https://localhost:{https}/topics/cars/curl?qos=2"));
    let (_, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 400);

    // Shadow REST: a GET before any update is AWS's 404, then update and read it back.
    let shadow_url = format!("https://localhost:{https}/things/curl-car/shadow");
    let mut c = curl(Some(&s.devices[0]), &ca);
    c.arg(&shadow_url);
    let (body, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 404);
    assert_eq!(body["code"], 404);
    assert_eq!(body["message"], "No shadow exists with name: 'curl-car'");

    let mut c = curl(Some(&s.devices[0]), &ca);
    c.args([
        "-X",
        "POST",
        "--data",
        r#"{"state":{"reported":{"speed":42}}}"#,
    ]);
    c.arg(&shadow_url);
    let (body, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);

    let mut c = curl(None, &ca);
    c.args(["--aws-sigv4", "aws:amz:us-east-1:iotdata"]);
    c.args([
        "--user",
        &format!("{}:{}", s.key.access_key_id, s.key.secret_access_key),
    ]);
    c.arg(&shadow_url);
    let (body, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["reported"]["speed"], 42);
    assert_eq!(body["version"], 1);

    // A device without the shadow policy: 403.
    let mut c = curl(Some(&s.devices[1]), &ca);
    c.arg(&shadow_url);
    let (_, status) = curl_result(&run_tool(c, IGNORED).await);
    assert_eq!(status, 403);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt and mqtt.js: run .ci/interop"]
async fn paho_over_tls_and_websocket() {
    let s = setup("paho").await;
    let ca = s.devices[0].ca_path.clone();
    let out = run_tool(
        paho(
            "tcp",
            s.running.mqtts.port(),
            &ca,
            Some(&s.devices[0]),
            "/mqtt",
            "paho-tls",
            "cars/paho/tls",
        ),
        IGNORED,
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "RECEIVED hello from paho",
        "{}",
        output_text(&out)
    );

    let https = s.running.alpn.unwrap().port();
    let path = presigned_mqtt_path(https, &s.key, SystemTime::now(), 300);
    let out = run_tool(
        paho(
            "websockets",
            https,
            &ca,
            None,
            &path,
            "paho-ws",
            "cars/paho/ws",
        ),
        IGNORED,
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "RECEIVED hello from paho",
        "{}",
        output_text(&out)
    );

    // The policy denies the filter: the connection is closed without a SUBACK.
    let out = run_tool(
        paho(
            "tcp",
            s.running.mqtts.port(),
            &ca,
            Some(&s.devices[0]),
            "/mqtt",
            "paho-denied",
            "cars/forbidden",
        ),
        IGNORED,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("DISCONNECTED"),
        "{}",
        output_text(&out)
    );
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt and mqtt.js: run .ci/interop"]
async fn mqttjs_over_websocket_presigned_and_tls() {
    let s = setup("mqttjs").await;
    let ca = s.devices[0].ca_path.clone();
    let https = s.running.alpn.unwrap().port();
    let path = presigned_mqtt_path(https, &s.key, SystemTime::now(), 300);
    let url = format!("wss://localhost:{https}{path}");
    let out = run_tool(
        mqttjs(&url, "mqttjs-ws", "cars/mqttjs/ws", &ca, None),
        IGNORED,
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "RECEIVED hello from mqtt.js",
        "{}",
        output_text(&out)
    );

    let url = format!("mqtts://localhost:{}", s.running.mqtts.port());
    let out = run_tool(
        mqttjs(
            &url,
            "mqttjs-tls",
            "cars/mqttjs/tls",
            &ca,
            Some(&s.devices[0]),
        ),
        IGNORED,
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "RECEIVED hello from mqtt.js",
        "{}",
        output_text(&out)
    );

    // A tampered signature: the upgrade is refused with 403.
    let good = presigned_mqtt_path(https, &s.key, SystemTime::now(), 300);
    let (head, signature) = good.split_once("X-Amz-Signature=").unwrap();
    let flipped: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' { '1' } else { '0' }
            } else {
                c
            }
        })
        .collect();
    let url = format!("wss://localhost:{https}{head}X-Amz-Signature={flipped}");
    let out = run_tool(
        mqttjs(&url, "mqttjs-bad", "cars/mqttjs/bad", &ca, None),
        IGNORED,
    )
    .await;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        line,
        "CONNECT_FAILED HTTP 403",
        "bad signature: {}",
        output_text(&out)
    );

    // A URL signed an hour ago, valid for five minutes: expired, refused.
    let old = SystemTime::now() - Duration::from_secs(3600);
    let url = format!(
        "wss://localhost:{https}{}",
        presigned_mqtt_path(https, &s.key, old, 300)
    );
    let out = run_tool(
        mqttjs(&url, "mqttjs-old", "cars/mqttjs/old", &ca, None),
        IGNORED,
    )
    .await;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        line,
        "CONNECT_FAILED HTTP 403",
        "expired URL: {}",
        output_text(&out)
    );

    // Over WebSocket too, a denied subscription closes the connection without a SUBACK.
    let path = presigned_mqtt_path(https, &s.key, SystemTime::now(), 300);
    let url = format!("wss://localhost:{https}{path}");
    let out = run_tool(
        mqttjs(&url, "mqttjs-denied", "cars/forbidden", &ca, None),
        IGNORED,
    )
    .await;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        line == "CLOSED" || line.starts_with("SUBSCRIBE_FAILED"),
        "{}",
        output_text(&out)
    );
    s.running.shutdown().await;
}

/// boto3's `iot-data` client, as a Python developer uses it: each data-plane error arrives as its
/// typed exception (`ResourceNotFoundException`, `ConflictException`, `InvalidRequestException`),
/// and retained messages read back through `get_retained_message` and `list_retained_messages`
/// (with `nextToken` paging and boto3's own paginator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt, boto3 and mqtt.js: run .ci/interop"]
async fn boto3_typed_errors_and_retained_messages() {
    let s = setup("boto3").await;
    let https = s.running.alpn.unwrap().port();
    let before = now() * 1000;
    let mut command = Command::new("python3");
    command.arg(interop_dir().join("boto3_client.py"));
    command
        .arg("--endpoint")
        .arg(format!("https://localhost:{https}"));
    command.arg("--cafile").arg(&s.devices[0].ca_path);
    command.args(["--access-key-id", &s.key.access_key_id]);
    command.args(["--secret-access-key", &s.key.secret_access_key]);
    command.args(["--thing", "boto-car", "--topic-prefix", "cars/boto"]);
    let out = run_tool(command, IGNORED).await;
    eprintln!("boto3 saw: {}", String::from_utf8_lossy(&out.stdout));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("boto3 printed no JSON ({e}): {}", output_text(&out)));

    assert_eq!(
        seen["get_missing"]["caught"], "ResourceNotFoundException",
        "{seen}"
    );
    assert_eq!(seen["get_missing"]["status"], 404);
    assert_eq!(
        seen["get_missing"]["message"],
        "No shadow exists with name: 'boto-car'"
    );
    assert_eq!(seen["update"]["ok"], 1, "{seen}");
    assert_eq!(seen["conflict"]["caught"], "ConflictException", "{seen}");
    assert_eq!(seen["conflict"]["status"], 409);
    assert_eq!(seen["conflict"]["message"], "Version conflict");
    assert_eq!(
        seen["invalid"]["caught"], "InvalidRequestException",
        "{seen}"
    );
    assert_eq!(seen["invalid"]["status"], 400);
    assert_eq!(seen["invalid"]["message"], "Invalid JSON");
    assert_eq!(seen["get"]["ok"]["reported"]["speed"], 42, "{seen}");

    let retained = &seen["get_retained"];
    assert_eq!(retained["topic"], "cars/boto/b", "{seen}");
    assert_eq!(retained["payload"], "retained 1");
    assert_eq!(retained["qos"], 1);
    let modified = retained["lastModifiedTime"].as_i64().unwrap();
    assert!(
        modified >= before && modified <= now() * 1000 + 1000,
        "{seen}"
    );

    // Three retained topics, two a page, in topic order.
    let pages = seen["list_pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2, "{seen}");
    let listed: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.as_array().unwrap())
        .map(|m| m["topic"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["cars/boto/a", "cars/boto/b", "cars/boto/c"]);
    let first = &pages[0][0];
    assert_eq!(first["payloadSize"], "retained 0".len());
    assert_eq!(first["qos"], 1);
    assert_eq!(
        seen["paginator_topics"],
        serde_json::json!(["cars/boto/a", "cars/boto/b", "cars/boto/c"])
    );
    assert_eq!(
        seen["retained_missing"]["caught"],
        "ResourceNotFoundException"
    );
    assert_eq!(seen["retained_missing"]["status"], 404);
    assert_eq!(
        seen["after_delete"],
        serde_json::json!(["cars/boto/b", "cars/boto/c"])
    );
    assert_eq!(
        seen["retained_forbidden"]["error"], "ForbiddenException",
        "{seen}"
    );
    assert_eq!(seen["retained_forbidden"]["status"], 403);
    s.running.shutdown().await;
}

/// A running Mosquitto (Debian's package) on loopback ports chosen now, killed on drop.
struct Mosquitto(std::process::Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The device client is an ordinary MQTT 3.1.1 client: against Mosquitto over plain TCP and over
/// TLS with a client certificate, it connects, subscribes, publishes QoS 1 and receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto-clients, curl, paho-mqtt, boto3 and mqtt.js: run .ci/interop"]
async fn device_client_against_mosquitto() {
    let dir = Scratch::new("mosquitto");
    let ca = CertificateAuthority::generate("Mosquitto test CA", now()).unwrap();
    let server = ca
        .issue_server(&["localhost".to_owned(), "127.0.0.1".to_owned()], now())
        .unwrap();
    let device = ca
        .issue_device(&DeviceCertificateRequest::new("car-mosquitto", now()))
        .unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_path = file("ca.pem", &ca.certificate_pem());
    let cert = file("server.pem", &server.certificate_pem);
    let key = file("server.key", &server.private_key_pem);
    let (tcp, tls) = (free_port(), free_port());
    let conf = file(
        "mosquitto.conf",
        &format!(
            "persistence false\nallow_anonymous true\nlog_dest stderr\n\
             listener {tcp} 127.0.0.1\n\
             listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            ca_path.display(),
            cert.display(),
            key.display()
        ),
    );
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("no mosquitto broker; {IGNORED}"));
    let _mosquitto = Mosquitto(
        Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for port in [tcp, tls] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let policy = iot_examples::device::ReconnectPolicy {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
    };
    let endpoint = iot_examples::device::Endpoint {
        host: "127.0.0.1".into(),
        port: tcp,
        transport: iot_examples::device::Transport::Tcp,
    };
    probe_round_trip(endpoint, "car-mosquitto-tcp", policy).await;
    let device = Device {
        id: "car-mosquitto".into(),
        cert_pem: device.certificate_pem.clone(),
        key_pem: device.private_key_pem.clone(),
        ca_pem: ca.certificate_pem(),
        cert_path: dir.0.join("unused.cert"),
        key_path: dir.0.join("unused.key"),
        ca_path: ca_path.clone(),
    };
    probe_round_trip(tls_endpoint(&device, tls), "car-mosquitto-tls", policy).await;
}
