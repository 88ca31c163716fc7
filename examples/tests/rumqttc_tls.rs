//! rumqttc (a client nobody here wrote) against the cloud broker over TLS with client
//! certificates: publish/subscribe at QoS 0 and 1, retained, will, persistent-session redelivery,
//! shadows, and the refusals (revoked certificate, policy-denied publish and subscribe).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use iot_auth::registry::CertificateStatus;
use rumqttc::{Event, LastWill, Packet, QoS};

async fn broker(
    label: &str,
    devices: usize,
) -> (Scratch, iot_examples::broker::server::Running, Vec<Device>) {
    let scratch = Scratch::new(label);
    let config = config(&scratch.0);
    let devices = provision(&config, devices);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    (scratch, running, devices)
}

fn connected(event: &Event) -> Option<bool> {
    match event {
        Event::Incoming(Packet::ConnAck(ack)) => Some(ack.session_present),
        _ => None,
    }
}

fn suback(event: &Event) -> Option<Vec<rumqttc::SubscribeReasonCode>> {
    match event {
        Event::Incoming(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_at_qos_0_and_1() {
    let (_dir, running, devices) = broker("pubsub", 2).await;
    let port = running.mqtts.port();
    let (sub, mut sub_events) = rumqttc(&devices[0], "car-sub", port, true);
    wait_for(&mut sub_events, connected).await.unwrap();
    sub.subscribe("cars/+/speed", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut sub_events, suback).await.unwrap();

    let (publisher, mut pub_events) = rumqttc(&devices[1], "car-pub", port, true);
    wait_for(&mut pub_events, connected).await.unwrap();
    publisher
        .publish("cars/1/speed", QoS::AtMostOnce, false, "88")
        .await
        .unwrap();
    publisher
        .publish("cars/2/speed", QoS::AtLeastOnce, false, "99")
        .await
        .unwrap();
    let pubacked = tokio::spawn(async move {
        wait_for(&mut pub_events, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await
    });
    let first = wait_for(&mut sub_events, incoming_publish).await.unwrap();
    assert_eq!(
        (first.topic.as_str(), &first.payload[..], first.qos),
        ("cars/1/speed", &b"88"[..], QoS::AtMostOnce)
    );
    let second = wait_for(&mut sub_events, incoming_publish).await.unwrap();
    assert_eq!(
        (second.topic.as_str(), &second.payload[..], second.qos),
        ("cars/2/speed", &b"99"[..], QoS::AtLeastOnce)
    );
    pubacked.await.unwrap().unwrap();
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_reach_exact_subscriptions_and_survive_a_restart() {
    let scratch = Scratch::new("retained");
    let config = config(&scratch.0);
    let devices = provision(&config, 1);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.mqtts.port();
    let (client, mut events) = rumqttc(&devices[0], "car-r", port, true);
    wait_for(&mut events, connected).await.unwrap();
    client
        .publish("cars/7/state", QoS::AtLeastOnce, true, "parked")
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
    })
    .await
    .unwrap();
    running.shutdown().await;

    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let (client, mut events) = rumqttc(&devices[0], "car-r2", running.mqtts.port(), true);
    wait_for(&mut events, connected).await.unwrap();
    client
        .subscribe("cars/7/state", QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = wait_for(&mut events, incoming_publish).await.unwrap();
    assert!(retained.retain);
    assert_eq!(&retained.payload[..], b"parked");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_fires_when_the_connection_drops_without_disconnect() {
    let (_dir, running, devices) = broker("will", 2).await;
    let port = running.mqtts.port();
    let (watcher, mut watch_events) = rumqttc(&devices[0], "watcher", port, true);
    wait_for(&mut watch_events, connected).await.unwrap();
    watcher
        .subscribe("cars/9/status", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut watch_events, suback).await.unwrap();

    let mut options = rumqttc::MqttOptions::new("car-9", "localhost", port);
    options.set_last_will(LastWill::new(
        "cars/9/status",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    options.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(client_tls(
            Some(&devices[1]),
            &devices[1].ca_pem,
            &[],
        ))),
    ));
    let (_car, mut car_events) = rumqttc::AsyncClient::new(options, 10);
    wait_for(&mut car_events, connected).await.unwrap();
    drop(car_events); // the socket closes with no DISCONNECT

    let will = wait_for(&mut watch_events, incoming_publish).await.unwrap();
    assert_eq!(&will.payload[..], b"gone");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gets_what_was_published_while_away() {
    let (_dir, running, devices) = broker("session", 2).await;
    let port = running.mqtts.port();
    let (car, mut events) = rumqttc(&devices[0], "car-p", port, false);
    assert!(!wait_for(&mut events, connected).await.unwrap());
    car.subscribe("cars/p/cmd", QoS::AtLeastOnce).await.unwrap();
    wait_for(&mut events, suback).await.unwrap();
    car.disconnect().await.unwrap();
    let _ = wait_for(&mut events, |e| {
        matches!(e, Event::Outgoing(rumqttc::Outgoing::Disconnect)).then_some(())
    })
    .await;
    drop(events);

    let (publisher, mut pub_events) = rumqttc(&devices[1], "cmd", port, true);
    wait_for(&mut pub_events, connected).await.unwrap();
    for i in 0..3 {
        publisher
            .publish("cars/p/cmd", QoS::AtLeastOnce, false, format!("cmd {i}"))
            .await
            .unwrap();
    }
    let mut acks = 0;
    while acks < 3 {
        wait_for(&mut pub_events, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await
        .unwrap();
        acks += 1;
    }

    let (_car, mut events) = rumqttc(&devices[0], "car-p", port, false);
    assert!(
        wait_for(&mut events, connected).await.unwrap(),
        "session present"
    );
    for i in 0..3 {
        let p = wait_for(&mut events, incoming_publish).await.unwrap();
        assert_eq!(p.payload, format!("cmd {i}").as_bytes());
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_service_answers_on_the_reserved_topics() {
    let (_dir, running, devices) = broker("shadow", 1).await;
    let (car, mut events) = rumqttc(&devices[0], "car-s", running.mqtts.port(), true);
    wait_for(&mut events, connected).await.unwrap();
    car.subscribe("$aws/things/car-s/shadow/update/accepted", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut events, suback).await.unwrap();
    car.publish(
        "$aws/things/car-s/shadow/update",
        QoS::AtLeastOnce,
        false,
        r#"{"state":{"reported":{"speed":42}}}"#,
    )
    .await
    .unwrap();
    let accepted = wait_for(&mut events, incoming_publish).await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&accepted.payload).unwrap();
    assert_eq!(doc["state"]["reported"]["speed"], 42);
    assert_eq!(doc["version"], 1);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_at_the_handshake() {
    let (_dir, running, devices) = broker("revoked", 1).await;
    set_status(&running, &devices[0], CertificateStatus::Revoked);
    let (_c, mut events) = rumqttc(&devices[0], "car-x", running.mqtts.port(), true);
    let error = wait_for(&mut events, connected)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.to_lowercase().contains("revoked") || error.contains("Tls"),
        "{error}"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denied_publish_disconnects_and_denied_subscribe_closes() {
    let (_dir, running, devices) = broker("denied", 1).await;
    let port = running.mqtts.port();
    let (car, mut events) = rumqttc(&devices[0], "car-d", port, true);
    wait_for(&mut events, connected).await.unwrap();
    car.publish("cars/forbidden", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    let outcome = wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
    })
    .await;
    assert!(
        outcome.is_err(),
        "AWS closes the connection instead of acknowledging"
    );

    let (car, mut events) = rumqttc(&devices[0], "car-d2", port, true);
    wait_for(&mut events, connected).await.unwrap();
    car.subscribe("cars/forbidden", QoS::AtLeastOnce)
        .await
        .unwrap();
    let outcome = wait_for(&mut events, suback).await;
    assert!(outcome.is_err(), "AWS closes without SUBACK: {outcome:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    running.shutdown().await;
}
