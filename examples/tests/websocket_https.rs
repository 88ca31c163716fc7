//! The SigV4 side of the endpoint with clients we did not write: rumqttc over MQTT-over-WebSocket
//! with a URL presigned by AWS's signer (`aws-sigv4`), and HTTPS publish requests signed by it in
//! the `Authorization` header the way boto3 signs them (service `iotdata`, the topic one
//! `%2F`-joined segment, so the path is encoded twice in the signature). Refusals are counted in
//! the metrics by reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use common::*;
use iot_examples::store::access_keys::AccessKey;
use rumqttc::{Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

fn wss_client(url: &str, port: u16, ca_pem: &str, client_id: &str) -> rumqttc::EventLoop {
    let mut options = MqttOptions::new(client_id, url, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::wss_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(None, ca_pem, &[])),
    )));
    let (client, events) = rumqttc::AsyncClient::new(options, 10);
    // The client handle is not needed to connect; keep it alive with the loop.
    std::mem::forget(client);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_over_websocket_with_a_presigned_url() {
    let scratch = Scratch::new("wss");
    let config = config(&scratch.0);
    let devices = provision(&config, 1);
    let key = provision_access_key(&config, "dashboard");
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let ca = &devices[0].ca_pem;

    // A device on 8883 listens; the WebSocket client publishes.
    let (listener, mut listener_events) = rumqttc(&devices[0], "car", running.mqtts.port(), true);
    wait_for(&mut listener_events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    listener
        .subscribe("cars/1/commands", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut listener_events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();

    let path = presigned_mqtt_path(port, &key, SystemTime::now(), 300);
    let mut options = MqttOptions::new("dashboard", format!("wss://localhost:{port}{path}"), port);
    options.set_transport(Transport::wss_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(None, ca, &[])),
    )));
    let (dashboard, mut events) = rumqttc::AsyncClient::new(options, 10);
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    dashboard
        .publish("cars/1/commands", QoS::AtLeastOnce, false, "unlock")
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
    })
    .await
    .unwrap();
    let message = wait_for(&mut listener_events, incoming_publish)
        .await
        .unwrap();
    assert_eq!(&message.payload[..], b"unlock");

    // A signature made with another secret: the upgrade is refused, and counted.
    let stranger = AccessKey {
        secret_access_key: "not-the-secret-not-the-secret-not-the-se".into(),
        ..key.clone()
    };
    let bad = presigned_mqtt_path(port, &stranger, SystemTime::now(), 300);
    let mut refused = wss_client(&format!("wss://localhost:{port}{bad}"), port, ca, "bad");
    let error = wait_for(&mut refused, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("403"), "{error}");

    // An expired URL.
    let old = SystemTime::now() - Duration::from_secs(3600);
    let expired = presigned_mqtt_path(port, &key, old, 300);
    let mut refused = wss_client(&format!("wss://localhost:{port}{expired}"), port, ca, "old");
    let error = wait_for(&mut refused, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("403"), "{error}");

    // Upgrade requests a WebSocket client would not send: refused before any MQTT.
    let path = presigned_mqtt_path(port, &key, SystemTime::now(), 300);
    let upgrade = |protocol: &str, version: &str| {
        vec![
            ("Upgrade".to_owned(), "websocket".to_owned()),
            ("Connection".to_owned(), "Upgrade".to_owned()),
            (
                "Sec-WebSocket-Key".to_owned(),
                "dGhlIHNhbXBsZSBub25jZQ==".to_owned(),
            ),
            ("Sec-WebSocket-Version".to_owned(), version.to_owned()),
            ("Sec-WebSocket-Protocol".to_owned(), protocol.to_owned()),
        ]
    };
    let line = format!("GET {path} HTTP/1.1");
    let (status, _) = https(port, None, ca, &[], &line, &upgrade("wamp", "13"), b"").await;
    assert_eq!(status, 400, "a subprotocol other than MQTT");
    let (status, _) = https(port, None, ca, &[], &line, &upgrade("mqtt", "8"), b"").await;
    assert_eq!(status, 426, "an old WebSocket version");
    let (status, _) = https(port, None, ca, &[], &line, &upgrade("mqttv3.1", "13"), b"").await;
    assert_eq!(status, 101, "JS SDK v1's subprotocol");

    let text = metrics(running.metrics.unwrap()).await;
    assert!(
        text.contains("aws_iot_sigv4_refusals_total{reason=\"signature_mismatch\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("aws_iot_sigv4_refusals_total{reason=\"expired_or_bad_date\"} 1"),
        "{text}"
    );
    running.shutdown().await;
}

/// Headers of a request signed by `aws-sigv4` (Host first), as boto3's `iot-data` client signs.
fn signed_headers(
    key: &AccessKey,
    method: &str,
    host: &str,
    path_and_query: &str,
    body: &[u8],
    time: SystemTime,
) -> Vec<(String, String)> {
    let identity = Credentials::new(
        key.access_key_id.as_str(),
        key.secret_access_key.as_str(),
        None,
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iotdata")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("https://{host}{path_and_query}");
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        [("host", host)].into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut headers = vec![("Host".to_owned(), host.to_owned())];
    for (n, v) in instructions.headers() {
        headers.push((n.to_owned(), v.to_owned()));
    }
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_publish_signed_by_the_aws_signer() {
    let scratch = Scratch::new("https-sigv4");
    let config = config(&scratch.0);
    let devices = provision(&config, 1);
    let key = provision_access_key(&config, "backend");
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let host = format!("localhost:{port}");
    let ca = &devices[0].ca_pem;

    let (listener, mut events) = rumqttc(&devices[0], "car", running.mqtts.port(), true);
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    listener
        .subscribe("cars/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();

    // boto3 style: one %2F-joined segment, retained.
    let path = "/topics/cars%2F7%2Fstatus%20report?qos=1&retain=true";
    let body = br#"{"ok":true}"#;
    let headers = signed_headers(&key, "POST", &host, path, body, SystemTime::now());
    let (status, reply) = https(
        port,
        None,
        ca,
        &[],
        &format!("POST {path} HTTP/1.1"),
        &headers,
        body,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["message"], "OK");
    let message = wait_for(&mut events, incoming_publish).await.unwrap();
    assert_eq!(message.topic, "cars/7/status report");
    assert_eq!(&message.payload[..], body);

    // Signed ten minutes ago: outside the ±5 minute window.
    let old = SystemTime::now() - Duration::from_secs(600);
    let headers = signed_headers(&key, "POST", &host, path, body, old);
    let (status, reply) = https(
        port,
        None,
        ca,
        &[],
        &format!("POST {path} HTTP/1.1"),
        &headers,
        body,
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(
        reply["message"],
        "signature time outside the allowed window"
    );

    // The body changed after signing.
    let headers = signed_headers(&key, "POST", &host, path, body, SystemTime::now());
    let (status, _) = https(
        port,
        None,
        ca,
        &[],
        &format!("POST {path} HTTP/1.1"),
        &headers,
        b"{\"ok\":false}",
    )
    .await;
    assert_eq!(status, 403);

    // Wrong method: 405.
    let path = "/topics/cars/7";
    let headers = signed_headers(&key, "GET", &host, path, b"", SystemTime::now());
    let (status, reply) = https(
        port,
        None,
        ca,
        &[],
        &format!("GET {path} HTTP/1.1"),
        &headers,
        b"",
    )
    .await;
    assert_eq!(status, 405, "{reply}");
    running.shutdown().await;
}
