//! The device client against the real broker: over mTLS, SigV4 WebSocket and plain TCP it
//! connects, subscribes, publishes QoS 1 and receives; and when the broker process is killed
//! (kill -9) mid-stream and comes back, the client reconnects by itself, restores its
//! subscription, resends what was not acknowledged, and every publish it saw acknowledged reaches
//! a persistent subscriber.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use iot_examples::device::{
    Endpoint, ReconnectPolicy, SessionOptions, SigV4Credentials, Transport,
};
use tokio::sync::watch;

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
    }
}

/// Runs a probe publishing 20 messages to its own topic and subscribed to it over `endpoint`.
async fn round_trip(endpoint: Endpoint, client_id: &str) {
    probe_round_trip(endpoint, client_id, fast_reconnect()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_works_over_mtls_websocket_and_tcp() {
    let scratch = Scratch::new("device-client");
    let mut config = config(&scratch.0);
    config.listeners.plain_mqtt = Some("127.0.0.1:0".parse().unwrap());
    let devices = provision(&config, 1);
    let key = provision_access_key(&config, "car-user");
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let device = &devices[0];

    round_trip(tls_endpoint(device, running.mqtts.port()), "car-tls").await;

    // ALPN x-amzn-mqtt-ca on the 443-style port, as the AWS SDKs connect on 443.
    let alpn = running.alpn.unwrap().port();
    let endpoint = Endpoint {
        host: "localhost".into(),
        port: alpn,
        transport: Transport::Tls(Arc::new(client_tls(
            Some(device),
            &device.ca_pem,
            &[b"x-amzn-mqtt-ca"],
        ))),
    };
    round_trip(endpoint, "car-alpn").await;

    let endpoint = Endpoint {
        host: "localhost".into(),
        port: alpn,
        transport: Transport::WebSocket {
            tls: Arc::new(client_tls(None, &device.ca_pem, &[])),
            credentials: SigV4Credentials {
                access_key_id: key.access_key_id.clone(),
                secret_access_key: key.secret_access_key.clone(),
                session_token: None,
                region: "us-east-1".into(),
            },
        },
    };
    round_trip(endpoint, "car-wss").await;

    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port: running.plain_mqtt.unwrap().port(),
        transport: Transport::Tcp,
    };
    round_trip(endpoint, "car-tcp").await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_client_reconnects_and_nothing_acknowledged_is_lost() {
    let scratch = Scratch::new("device-client-crash");
    let (mqtts, alpn) = (free_port(), free_port());
    let config_path = write_config_on_ports(&scratch.0, mqtts, alpn);
    let config = iot_examples::config::BrokerConfig::load(Some(&config_path)).unwrap();
    let devices = provision(&config, 2);
    let mut broker = Some(BrokerProcess::start(&config_path));

    // A persistent subscriber (a device client too) collects everything published.
    let (mut sink, sink_seen) = Probe::new("cars/sink/unused", 0, 10);
    let (stop, shutdown) = watch::channel(false);
    let sink_endpoint = tls_endpoint(&devices[0], mqtts);
    let sink_task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let session = subscribed(
                SessionOptions::new("sink").persistent(),
                "cars/crash-car/telemetry",
            );
            iot_examples::device::run(
                session,
                vec![sink_endpoint],
                &mut sink,
                fast_reconnect(),
                shutdown,
            )
            .await
        }
    });
    wait_until("the sink's SUBACK", || {
        sink_seen.lock().unwrap().subacks == 1
    })
    .await;
    let (mut car, car_seen) = Probe::new("cars/crash-car/telemetry", 300, 10);
    let car_endpoint = tls_endpoint(&devices[1], mqtts);
    let car_task = tokio::spawn(async move {
        let session = subscribed(
            SessionOptions::new("crash-car").persistent(),
            "cars/crash-car/commands",
        );
        iot_examples::device::run(
            session,
            vec![car_endpoint],
            &mut car,
            fast_reconnect(),
            shutdown,
        )
        .await
    });

    // Mid-stream, kill the broker without warning, then bring it back on the same ports.
    wait_until("100 deliveries", || {
        car_seen.lock().unwrap().delivered.len() >= 100
    })
    .await;
    broker.take().unwrap().kill_9();
    let acknowledged_before = car_seen.lock().unwrap().delivered.len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let broker = BrokerProcess::start(&config_path);

    wait_until("all 300 delivered", || {
        car_seen.lock().unwrap().delivered.len() == 300
    })
    .await;
    let sink_received = || -> BTreeSet<u32> {
        sink_seen
            .lock()
            .unwrap()
            .received
            .iter()
            .map(|p| p.parse().unwrap())
            .collect()
    };
    wait_until_or(
        "the sink has every acknowledged message",
        || sink_received().len() == 300,
        || {
            let got = sink_received();
            let missing: Vec<u32> = (0..300).filter(|n| !got.contains(n)).collect();
            format!("(acknowledged before the kill: {acknowledged_before}; missing: {missing:?})")
        },
    )
    .await;
    assert!(
        car_seen.lock().unwrap().connects >= 2,
        "the car reconnected"
    );
    assert!(
        sink_seen.lock().unwrap().connects >= 2,
        "the sink reconnected"
    );
    assert!(acknowledged_before >= 100);

    // The car's subscription was restored: a command reaches it.
    let (commander, mut events) = rumqttc(&devices[0], "commander", mqtts, true);
    wait_for(&mut events, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    commander
        .publish(
            "cars/crash-car/commands",
            rumqttc::QoS::AtLeastOnce,
            false,
            "honk",
        )
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))).then_some(())
    })
    .await
    .unwrap();
    wait_until("the command", || {
        car_seen
            .lock()
            .unwrap()
            .received
            .iter()
            .any(|p| p == "honk")
    })
    .await;
    stop.send(true).unwrap();
    let _ = car_task.await.unwrap();
    let _ = sink_task.await.unwrap();
    drop(broker);
}
