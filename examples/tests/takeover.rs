//! Client-id takeover through the real broker and its policy authorizer, with rumqttc (a client
//! nobody here wrote) over plain TCP, mTLS and SigV4 WebSocket, with clean and persistent
//! sessions: a device whose old connection is still open reconnects with the same client id, and
//! the new connection must publish, subscribe, receive, and get its queued QoS 1 messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use iot_examples::broker::server::Running;
use iot_examples::store::access_keys::AccessKey;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode};
use rumqttc::{TlsConfiguration, Transport};

#[derive(Debug, Clone, Copy)]
enum Via {
    Plain,
    Mtls,
    Wss,
}

struct Setup {
    _scratch: Scratch,
    running: Running,
    device: Device,
    key: AccessKey,
}

async fn setup(label: &str) -> Setup {
    let scratch = Scratch::new(label);
    let mut config = config(&scratch.0);
    config.listeners.plain_mqtt = Some("127.0.0.1:0".parse().unwrap());
    let device = provision(&config, 1).remove(0);
    let key = provision_access_key(&config, "car-user");
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    Setup {
        _scratch: scratch,
        running,
        device,
        key,
    }
}

fn client(setup: &Setup, via: Via, client_id: &str, clean: bool) -> (AsyncClient, EventLoop) {
    let mut options = match via {
        Via::Plain => {
            let port = setup.running.plain_mqtt.unwrap().port();
            MqttOptions::new(client_id, "127.0.0.1", port)
        }
        Via::Mtls => {
            let port = setup.running.mqtts.port();
            let mut options = MqttOptions::new(client_id, "localhost", port);
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(client_tls(Some(&setup.device), &setup.device.ca_pem, &[])),
            )));
            options
        }
        Via::Wss => {
            let port = setup.running.alpn.unwrap().port();
            let path = presigned_mqtt_path(port, &setup.key, SystemTime::now(), 300);
            let mut options =
                MqttOptions::new(client_id, format!("wss://localhost:{port}{path}"), port);
            options.set_transport(Transport::wss_with_config(TlsConfiguration::Rustls(
                Arc::new(client_tls(None, &setup.device.ca_pem, &[])),
            )));
            options
        }
    };
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    AsyncClient::new(options, 100)
}

fn connack(event: &Event) -> Option<bool> {
    match event {
        Event::Incoming(Packet::ConnAck(ack)) => Some(ack.session_present),
        _ => None,
    }
}

fn suback(event: &Event) -> Option<Vec<SubscribeReasonCode>> {
    match event {
        Event::Incoming(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
        _ => None,
    }
}

fn puback(event: &Event) -> Option<()> {
    matches!(event, Event::Incoming(Packet::PubAck(_))).then_some(())
}

async fn takeover_keeps_the_new_connection(via: Via, clean: bool) {
    let setup = setup(&format!("takeover-{via:?}-{clean}")).await;
    let topic = "cars/car-1/cmd";
    let (publisher, mut publisher_events) = client(&setup, Via::Mtls, "publisher", true);
    wait_for(&mut publisher_events, connack).await.unwrap();

    let (old, mut old_events) = client(&setup, via, "car-1", clean);
    wait_for(&mut old_events, connack).await.unwrap();
    old.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let granted = wait_for(&mut old_events, suback).await.unwrap();
    assert_eq!(
        granted,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    // The device's network goes quiet: its old connection stays open on the broker's side but
    // nothing is read from it any more, so QoS 1 deliveries stay unacknowledged.
    if !clean {
        for payload in ["queued-1", "queued-2"] {
            publisher
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
            wait_for(&mut publisher_events, puback).await.unwrap();
        }
    }

    // The device reconnects with the same client id while the old connection is still open.
    let (new, mut new_events) = client(&setup, via, "car-1", clean);
    let session_present = wait_for(&mut new_events, connack).await.unwrap();
    assert_eq!(session_present, !clean, "{via:?}");
    if !clean {
        let mut queued = Vec::new();
        while queued.len() < 2 {
            let message = wait_for(&mut new_events, incoming_publish).await.unwrap();
            queued.push(String::from_utf8(message.payload.to_vec()).unwrap());
        }
        assert_eq!(queued, ["queued-1", "queued-2"], "{via:?}");
    }

    // It publishes (PUBACK, not a closed connection) ...
    new.publish("cars/car-1/state", QoS::AtLeastOnce, false, "locked")
        .await
        .unwrap();
    wait_for(&mut new_events, puback)
        .await
        .unwrap_or_else(|e| panic!("{via:?} clean={clean}: no PUBACK after takeover: {e}"));
    // ... subscribes ...
    new.subscribe("cars/car-1/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    let granted = wait_for(&mut new_events, suback).await.unwrap();
    assert_eq!(
        granted,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    // ... and receives.
    publisher
        .publish("cars/car-1/lights", QoS::AtLeastOnce, false, "on")
        .await
        .unwrap();
    wait_for(&mut publisher_events, puback).await.unwrap();
    let message = wait_for(&mut new_events, incoming_publish).await.unwrap();
    assert_eq!(
        (message.topic.as_str(), &message.payload[..]),
        ("cars/car-1/lights", &b"on"[..])
    );

    let text = metrics(setup.running.metrics.unwrap()).await;
    assert!(
        text.contains("aws_iot_authorization_without_state_total 0"),
        "{text}"
    );
    assert!(
        text.contains("aws_iot_authorization_refused_publish_total 0"),
        "{text}"
    );
    drop(old_events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_over_plain_tcp() {
    takeover_keeps_the_new_connection(Via::Plain, true).await;
    takeover_keeps_the_new_connection(Via::Plain, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_over_mtls() {
    takeover_keeps_the_new_connection(Via::Mtls, true).await;
    takeover_keeps_the_new_connection(Via::Mtls, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_over_sigv4_websocket() {
    takeover_keeps_the_new_connection(Via::Wss, true).await;
    takeover_keeps_the_new_connection(Via::Wss, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_action() {
    let setup = setup("refusals").await;
    let (car, mut events) = client(&setup, Via::Mtls, "car-1", true);
    wait_for(&mut events, connack).await.unwrap();
    car.subscribe("cars/forbidden", QoS::AtLeastOnce)
        .await
        .unwrap();
    // AWS closes the connection on a denied SUBSCRIBE, without SUBACK.
    assert!(wait_for(&mut events, suback).await.is_err());
    let text = metrics(setup.running.metrics.unwrap()).await;
    assert!(
        text.contains("aws_iot_authorization_refused_subscribe_total 1"),
        "{text}"
    );
    assert!(
        text.contains("aws_iot_authorization_without_state_total 0"),
        "{text}"
    );
}
