//! What survives a restart: retained messages, persistent sessions and their queued messages,
//! through the `Persistence` trait (here the in-memory one, copied into a new broker).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::sim::{Sim, T0};
use iot_broker_core::Broker;
use iot_broker_core::codec::QoS;
use iot_broker_core::persist::{MemoryPersistence, Persistence};
use iot_broker_core::profile::Profile;

fn restart(sim: &mut Sim, profile: Profile) -> Sim {
    let saved = sim.broker.persistence_mut().load();
    Sim::with(
        Broker::builder(profile)
            .persistence(MemoryPersistence::with(saved))
            .seed(2)
            .build(sim.now + 5_000),
    )
}

#[test]
fn sessions_messages_and_retained_survive_a_restart() {
    for profile in [Profile::aws_iot(), Profile::standard()] {
        let mut sim = Sim::new(profile.clone());
        let (car, _) = sim.connect("car1", false);
        sim.subscribe(car, &[("cmd/car1", QoS::AtLeastOnce)]);
        let (ops, _) = sim.connect("ops", true);
        sim.publish(ops, "cars/car1/status", "online", QoS::AtLeastOnce, true);
        sim.publish(ops, "cmd/car1", "acked", QoS::AtLeastOnce, false);
        let acked = sim.publishes(car);
        sim.puback(car, acked[0].packet_id().unwrap());
        sim.publish(ops, "cmd/car1", "in-flight", QoS::AtLeastOnce, false);
        sim.drop_connection(car);
        sim.publish(ops, "cmd/car1", "queued", QoS::AtLeastOnce, false);
        // A clean session leaves nothing behind.
        let saved = sim.broker.persistence_mut().load();
        assert_eq!(saved.sessions.keys().collect::<Vec<_>>(), ["car1"]);

        let mut after = restart(&mut sim, profile);
        assert_eq!(
            after
                .broker
                .retained("cars/car1/status")
                .unwrap()
                .message
                .payload,
            "online"
        );
        let (car, ack) = after.connect("car1", false);
        assert!(ack.session_present);
        assert_eq!(
            after.received(car),
            [
                ("cmd/car1".into(), "in-flight".into()),
                ("cmd/car1".into(), "queued".into())
            ]
        );
        // The restored subscription still routes.
        let (ops, _) = after.connect("ops", true);
        after.publish(ops, "cmd/car1", "live", QoS::AtLeastOnce, false);
        assert_eq!(after.received(car).len(), 1);
    }
}

#[test]
fn acknowledged_and_deleted_items_are_gone_from_the_store() {
    let mut sim = Sim::new(Profile::standard());
    let (car, _) = sim.connect("car1", false);
    sim.subscribe(car, &[("t", QoS::AtLeastOnce)]);
    let (ops, _) = sim.connect("ops", true);
    sim.publish(ops, "r", "x", QoS::AtMostOnce, true);
    sim.publish(ops, "r", "", QoS::AtMostOnce, true);
    for _ in 0..3 {
        sim.publish(ops, "t", "x", QoS::AtLeastOnce, false);
    }
    for p in sim.publishes(car) {
        sim.puback(car, p.packet_id().unwrap());
    }
    let saved = sim.broker.persistence_mut().load();
    assert!(saved.retained.is_empty());
    assert!(saved.sessions["car1"].messages.is_empty());
    assert_eq!(
        saved.sessions["car1"].record.subscriptions,
        [("t".to_string(), QoS::AtLeastOnce)]
    );
    // Ending the session deletes it.
    let (_, _) = sim.connect("car1", true);
    assert!(sim.broker.persistence_mut().load().sessions.is_empty());
}

#[test]
fn a_restored_session_still_expires() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (car, _) = sim.connect("car1", false);
    sim.subscribe(car, &[("t", QoS::AtLeastOnce)]);
    sim.drop_connection(car);
    let mut after = restart(&mut sim, Profile::aws_iot());
    assert_eq!(after.broker.session_count(), 1);
    after.now = T0 + 3_600_000;
    after.advance(0);
    assert_eq!(after.broker.session_count(), 0);
    assert!(after.broker.persistence_mut().load().sessions.is_empty());
}
