//! Output congestion: while the program reports a connection's output buffer over budget, it
//! gets no PUBLISH; its QoS 0 deliveries are dropped and counted, its QoS 1 deliveries wait in
//! order in the session queue, acknowledgements still flow, and other subscribers are unaffected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::sim::Sim;
use iot_broker_core::codec::{Packet, PubAck, QoS};
use iot_broker_core::profile::Profile;

fn both() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

fn payloads(sim: &mut Sim, conn: iot_broker_core::ConnectionId) -> Vec<String> {
    sim.received(conn).into_iter().map(|(_, p)| p).collect()
}

#[test]
fn a_congested_subscriber_gets_nothing_then_its_qos1_in_order() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (slow, _) = sim.connect("slow", true);
        sim.subscribe(slow, &[("t/#", QoS::AtLeastOnce)]);
        let (fast, _) = sim.connect("fast", true);
        sim.subscribe(fast, &[("t/#", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);

        sim.broker.output_congested(slow);
        for (i, qos) in [
            QoS::AtLeastOnce,
            QoS::AtMostOnce,
            QoS::AtLeastOnce,
            QoS::AtMostOnce,
            QoS::AtLeastOnce,
        ]
        .into_iter()
        .enumerate()
        {
            sim.publish(car, "t/x", &i.to_string(), qos, false);
        }
        assert!(sim.take(slow).is_empty());
        assert_eq!(payloads(&mut sim, fast), ["0", "1", "2", "3", "4"]);
        assert_eq!(sim.broker.stats().dropped_congested, 2);
        assert_eq!(sim.broker.pending("slow"), Some((0, 3)));

        // Acknowledgements are never held.
        sim.send(slow, Packet::PingReq);
        assert_eq!(sim.take(slow), [Packet::PingResp]);
        let pid = sim
            .publish(slow, "t/y", "from slow", QoS::AtLeastOnce, false)
            .unwrap();
        assert_eq!(sim.take(slow), [Packet::PubAck(PubAck::new(pid))]);
        assert_eq!(payloads(&mut sim, fast), ["from slow"]);
        // Its own message to t/y waits behind the others.
        assert_eq!(sim.broker.pending("slow"), Some((0, 4)));

        let now = sim.now;
        sim.broker.output_ready(slow, now);
        sim.drain();
        assert_eq!(payloads(&mut sim, slow), ["0", "2", "4", "from slow"]);
        assert_eq!(sim.broker.pending("slow"), Some((4, 0)));
        assert_eq!(sim.broker.stats().dropped_congested, 2);
    }
}

#[test]
fn qos0_already_queued_is_dropped_when_congestion_starts() {
    for profile in both() {
        let mut profile = profile;
        profile.max_inflight = 1;
        let mut sim = Sim::new(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);
        // The first QoS 1 fills the window; the rest queue behind it.
        sim.publish(car, "t", "a", QoS::AtLeastOnce, false);
        sim.publish(car, "t", "b", QoS::AtLeastOnce, false);
        sim.publish(car, "t", "c", QoS::AtMostOnce, false);
        let first = sim.publishes(sub);
        assert_eq!(first.len(), 1);
        assert_eq!(sim.broker.pending("sub"), Some((1, 2)));

        sim.broker.output_congested(sub);
        assert_eq!(sim.broker.stats().dropped_congested, 1);
        assert_eq!(sim.broker.pending("sub"), Some((1, 1)));
        // An acknowledgement frees the window, but nothing goes out while congested.
        sim.puback(sub, first[0].packet_id().unwrap());
        assert!(sim.take(sub).is_empty());

        let now = sim.now;
        sim.broker.output_ready(sub, now);
        sim.drain();
        assert_eq!(payloads(&mut sim, sub), ["b"]);
    }
}

#[test]
fn the_session_queue_bound_still_holds_while_congested() {
    for profile in both() {
        let mut profile = profile;
        profile.max_queued = 2;
        let mut sim = Sim::new(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);
        sim.broker.output_congested(sub);
        for i in 0..3 {
            sim.publish(car, "t", &i.to_string(), QoS::AtLeastOnce, false);
        }
        assert_eq!(sim.broker.pending("sub"), Some((0, 2)));
        assert_eq!(sim.broker.stats().dropped_queue_full, 1);
        let now = sim.now;
        sim.broker.output_ready(sub, now);
        sim.drain();
        assert_eq!(payloads(&mut sim, sub), ["0", "1"]);
    }
}

#[test]
fn congestion_is_per_connection_and_ends_with_it() {
    let mut sim = Sim::new(Profile::standard());
    let (sub, _) = sim.connect("sub", false);
    sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let (car, _) = sim.connect("car", true);
    sim.broker.output_congested(sub);
    sim.publish(car, "t", "held", QoS::AtLeastOnce, false);
    assert!(sim.take(sub).is_empty());
    // The persistent session keeps it; a new connection is not congested.
    sim.drop_connection(sub);
    let (again, ack) = sim.connect("sub", false);
    assert!(ack.session_present);
    assert_eq!(payloads(&mut sim, again), ["held"]);
    // Unknown connections are ignored.
    sim.broker.output_congested(sub);
    let now = sim.now;
    sim.broker.output_ready(sub, now);
}
