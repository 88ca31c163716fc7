//! AWS lifecycle events as a subscriber sees them, field by field.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::sim::{Sim, T0, connect_packet};
use iot_broker_core::Broker;
use iot_broker_core::auth::{Authorizer, ConnectDenied, ConnectRequest, TransportInfo};
use iot_broker_core::codec::QoS;
use iot_broker_core::persist::MemoryPersistence;
use iot_broker_core::profile::Profile;
use serde_json::Value;

fn events(
    sim: &mut Sim<impl Authorizer>,
    conn: iot_broker_core::ConnectionId,
) -> Vec<(String, Value)> {
    sim.publishes(conn)
        .into_iter()
        .map(|p| {
            (
                p.topic.to_string(),
                serde_json::from_slice(&p.payload).unwrap(),
            )
        })
        .collect()
}

fn transport() -> TransportInfo {
    TransportInfo {
        principal: Some(Arc::from("a1b2c3")),
        remote_addr: Some(Arc::from("192.0.2.7")),
    }
}

#[test]
fn presence_and_subscription_events() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (monitor, _) = sim.connect("monitor", true);
    sim.subscribe(monitor, &[("$aws/events/#", QoS::AtLeastOnce)]);
    sim.take(monitor);

    let (car, _) = sim.connect_with(transport(), connect_packet("car1", true, 60));
    sim.subscribe(
        car,
        &[("cmd/car1", QoS::AtLeastOnce), ("cfg/#", QoS::AtMostOnce)],
    );
    sim.unsubscribe(car, &["cfg/#"]);
    sim.disconnect(car);

    let got = events(&mut sim, monitor);
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "$aws/events/presence/connected/car1",
            "$aws/events/subscriptions/subscribed/car1",
            "$aws/events/subscriptions/unsubscribed/car1",
            "$aws/events/presence/disconnected/car1",
        ]
    );
    let connected = &got[0].1;
    let keys: Vec<&str> = connected
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "clientId",
            "timestamp",
            "eventType",
            "sessionIdentifier",
            "principalIdentifier",
            "ipAddress",
            "versionNumber"
        ]
    );
    assert_eq!(connected["clientId"], "car1");
    assert_eq!(connected["timestamp"], T0);
    assert_eq!(connected["eventType"], "connected");
    assert_eq!(connected["principalIdentifier"], "a1b2c3");
    assert_eq!(connected["ipAddress"], "192.0.2.7");
    assert_eq!(connected["versionNumber"], 0);
    let session = connected["sessionIdentifier"].as_str().unwrap();
    assert_eq!(session.len(), 36);
    assert_eq!(got[1].1["topics"], serde_json::json!(["cmd/car1", "cfg/#"]));
    assert_eq!(got[2].1["topics"], serde_json::json!(["cfg/#"]));
    let disconnected = &got[3].1;
    assert_eq!(disconnected["sessionIdentifier"], session);
    assert_eq!(disconnected["clientInitiatedDisconnect"], true);
    assert_eq!(
        disconnected["disconnectReason"],
        "CLIENT_INITIATED_DISCONNECT"
    );
    assert_eq!(disconnected["versionNumber"], 0);
    assert!(disconnected.get("ipAddress").is_none());
}

#[test]
fn version_number_grows_per_connection_and_resets_after_an_hour() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (monitor, _) = sim.connect("monitor", true);
    sim.subscribe(monitor, &[("$aws/events/presence/+/car1", QoS::AtMostOnce)]);
    let mut versions = vec![];
    let mut reasons = vec![];
    for gap in [0u64, 1_000, 3_600_000] {
        // The monitor keeps its own connection alive meanwhile.
        for _ in 0..gap / 60_000 {
            sim.advance(60_000);
            sim.send(monitor, iot_broker_core::codec::Packet::PingReq);
        }
        sim.advance(gap % 60_000);
        sim.take(monitor);
        let (car, _) = sim.connect("car1", true);
        sim.drop_connection(car);
        for (_, e) in events(&mut sim, monitor) {
            versions.push(e["versionNumber"].as_u64().unwrap());
            if e["eventType"] == "disconnected" {
                reasons.push(e["disconnectReason"].as_str().unwrap().to_owned());
                assert_eq!(e["clientInitiatedDisconnect"], false);
            }
        }
    }
    assert_eq!(versions, [0, 0, 1, 1, 0, 0]);
    assert_eq!(reasons, ["CONNECTION_LOST"; 3]);
}

#[test]
fn takeover_event_names_duplicate_clientid() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (monitor, _) = sim.connect("monitor", true);
    sim.subscribe(monitor, &[("$aws/events/presence/+/car1", QoS::AtMostOnce)]);
    sim.connect("car1", true);
    sim.connect("car1", true);
    let got = events(&mut sim, monitor);
    let summary: Vec<(String, u64)> = got
        .iter()
        .map(|(_, e)| {
            let what = e["disconnectReason"]
                .as_str()
                .unwrap_or(e["eventType"].as_str().unwrap());
            (what.to_owned(), e["versionNumber"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("connected".into(), 0),
            ("DUPLICATE_CLIENTID".into(), 0),
            ("connected".into(), 1)
        ]
    );
}

struct DenyAll;
impl Authorizer for DenyAll {
    fn connect(&mut self, _: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        Err(ConnectDenied::NotAuthorized)
    }
}

#[test]
fn refused_connect_publishes_connect_failed() {
    // A broker where the monitor is let in by a second instance's rules is awkward; instead
    // the monitor connects first under AllowAll semantics of a custom authorizer toggle.
    struct OnlyMonitor;
    impl Authorizer for OnlyMonitor {
        fn connect(&mut self, r: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
            if r.client.client_id == "monitor" {
                Ok(())
            } else {
                DenyAll.connect(r)
            }
        }
    }
    let mut sim = Sim::with(
        Broker::builder(Profile::aws_iot())
            .authorizer(OnlyMonitor)
            .persistence(MemoryPersistence::default())
            .build(T0),
    );
    let (monitor, _) = sim.connect("monitor", true);
    sim.subscribe(
        monitor,
        &[("$aws/events/presence/connect_failed/+", QoS::AtMostOnce)],
    );
    let (_, ack) = sim.connect_with(transport(), connect_packet("car1", true, 60));
    assert!(ack.is_none());
    let got = events(&mut sim, monitor);
    assert_eq!(got.len(), 1);
    let e = &got[0].1;
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "clientId",
            "timestamp",
            "eventType",
            "connectFailureReason",
            "principalIdentifier",
            "sessionIdentifier",
            "ipAddress"
        ]
    );
    assert_eq!(e["connectFailureReason"], "AUTHORIZATION_FAILED");
}

#[test]
fn no_events_for_wildcard_ids_or_in_the_standard_profile() {
    let mut aws = Sim::new(Profile::aws_iot());
    let (monitor, _) = aws.connect("monitor", true);
    aws.subscribe(monitor, &[("$aws/events/#", QoS::AtMostOnce)]);
    aws.take(monitor); // its own `subscribed` event
    aws.connect("car+1", true);
    assert!(aws.publishes(monitor).is_empty());

    let mut std = Sim::new(Profile::standard());
    let (monitor, _) = std.connect("monitor", true);
    std.subscribe(monitor, &[("$aws/events/#", QoS::AtMostOnce)]);
    std.connect("car1", true);
    assert!(std.publishes(monitor).is_empty());
}
