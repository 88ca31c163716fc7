//! `poll_timeout` after each kind of event: it names the next deadline the broker has to act on
//! (CONNECT timeout, keep-alive, session expiry, in-flight age, the publish rate's next second,
//! the lifecycle version reset), and `tick` at that time acts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::sim::{Sim, T0, connect_packet};
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::codec::{Packet, QoS};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::profile::Profile;
use iot_broker_core::topic::TopicName;

const HOUR: u64 = 3_600_000;

fn both() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

/// Moves the clock to `at` and ticks there.
fn tick_at(sim: &mut Sim, at: u64) {
    sim.advance(at - sim.now);
}

#[test]
fn nothing_to_wait_for_in_an_empty_broker() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        assert_eq!(sim.broker.poll_timeout(), None);
        sim.advance(HOUR);
        assert_eq!(sim.broker.poll_timeout(), None);
    }
}

#[test]
fn an_opened_connection_waits_for_its_connect_timeout() {
    for profile in both() {
        let timeout = profile.connect_timeout_ms;
        let mut sim = Sim::new(profile);
        let conn = sim.open();
        assert_eq!(sim.broker.poll_timeout(), Some(T0 + timeout));
        tick_at(&mut sim, T0 + timeout - 1);
        assert_eq!(sim.closed(conn), None);
        tick_at(&mut sim, T0 + timeout);
        assert_eq!(sim.closed(conn), Some(DisconnectReason::ClientError));
        assert_eq!(sim.broker.poll_timeout(), None);
    }
}

#[test]
fn keep_alive_is_armed_at_connect_and_rearmed_lazily_from_the_last_packet() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        sim.advance(1_000);
        let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", true, 60));
        // The CONNECT timeout gave way to 1.5 × 60 s from the CONNECT.
        assert_eq!(sim.broker.poll_timeout(), Some(T0 + 1_000 + 90_000));
        // A packet does not move the timer...
        sim.advance(30_000);
        sim.send(car, Packet::PingReq);
        assert_eq!(sim.broker.poll_timeout(), Some(T0 + 91_000));
        // ...it is re-armed from the last packet when it wakes.
        tick_at(&mut sim, T0 + 91_000);
        assert_eq!(sim.closed(car), None);
        assert_eq!(sim.broker.poll_timeout(), Some(T0 + 31_000 + 90_000));
        tick_at(&mut sim, T0 + 121_000);
        assert_eq!(sim.closed(car), Some(DisconnectReason::KeepAliveTimeout));
    }
}

#[test]
fn no_keep_alive_no_deadline() {
    let mut sim = Sim::new(Profile::standard());
    let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", true, 0));
    assert_eq!(sim.broker.poll_timeout(), None);
    sim.advance(7 * 24 * HOUR);
    assert_eq!(sim.closed(car), None);
}

#[test]
fn a_parked_persistent_session_waits_for_its_expiry_then_its_presence_record_goes() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (car, _) = sim.connect("car", false);
    sim.advance(5_000);
    sim.drop_connection(car);
    // The session expires an hour after the connection ended; the lifecycle version record
    // stays while the session does, and goes with it.
    assert_eq!(sim.broker.poll_timeout(), Some(T0 + 5_000 + HOUR));
    tick_at(&mut sim, T0 + 5_000 + HOUR);
    assert_eq!(sim.broker.session_count(), 0);
    assert_eq!(sim.broker.stats().sessions_expired, 1);
    assert_eq!(sim.broker.poll_timeout(), None);
}

#[test]
fn reconnecting_disarms_the_expiry() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", false, 0));
    sim.drop_connection(car);
    assert_eq!(sim.broker.poll_timeout(), Some(T0 + HOUR));
    sim.advance(1_000);
    let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", false, 0));
    // Only the keep-alive (0 becomes AWS's 1200 s) is left.
    assert_eq!(sim.broker.poll_timeout(), Some(T0 + 1_000 + 1_800_000));
    assert_eq!(sim.closed(car), None);
}

#[test]
fn an_unacknowledged_delivery_waits_for_its_in_flight_age() {
    let mut profile = Profile::aws_iot();
    profile.max_inflight_age_ms = Some(5_000);
    let mut sim = Sim::new(profile);
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let keep_alive = sim.broker.poll_timeout();
    sim.advance(1_000);
    let topic = TopicName::new("t", sim.broker.profile()).unwrap();
    let now = sim.now;
    sim.broker
        .publish(topic, "x".into(), QoS::AtLeastOnce, false, now);
    sim.drain();
    assert_eq!(sim.publishes(sub).len(), 1);
    assert_eq!(sim.broker.poll_timeout(), Some(T0 + 1_000 + 5_000));
    tick_at(&mut sim, T0 + 6_000);
    assert_eq!(sim.broker.stats().dropped_expired, 1);
    assert_eq!(sim.broker.pending("sub"), Some((0, 0)));
    assert_eq!(sim.broker.poll_timeout(), keep_alive);
}

#[test]
fn a_queue_held_by_the_publish_rate_waits_for_the_next_second() {
    let mut profile = Profile::aws_iot();
    profile.max_publishes_per_second = Some(2);
    let mut sim = Sim::new(profile);
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    sim.advance(100);
    for _ in 0..3 {
        let topic = TopicName::new("t", sim.broker.profile()).unwrap();
        let now = sim.now;
        sim.broker
            .publish(topic, "x".into(), QoS::AtLeastOnce, false, now);
    }
    sim.drain();
    assert_eq!(sim.publishes(sub).len(), 2);
    assert_eq!(sim.broker.pending("sub"), Some((2, 1)));
    assert_eq!(sim.broker.poll_timeout(), Some(T0 + 1_000));
    tick_at(&mut sim, T0 + 1_000);
    assert_eq!(sim.publishes(sub).len(), 1);
    assert_eq!(sim.broker.pending("sub"), Some((3, 0)));
}

#[test]
fn a_client_id_gone_for_an_hour_waits_for_its_version_reset() {
    for profile in both() {
        // Keep-alive 0: none under standard, AWS's 1200 s.
        let keep_alive = u64::from(profile.keep_alive.effective(0)) * 1_500;
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", true, 0));
        sim.advance(2_000);
        sim.disconnect(car);
        assert_eq!(sim.broker.poll_timeout(), Some(T0 + 2_000 + HOUR));
        // Coming back before then disarms it; leaving again re-arms it from then.
        sim.advance(1_000);
        let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", true, 0));
        let live = (keep_alive > 0).then_some(T0 + 3_000 + keep_alive);
        assert_eq!(sim.broker.poll_timeout(), live);
        sim.disconnect(car);
        assert_eq!(sim.broker.poll_timeout(), Some(T0 + 3_000 + HOUR));
        tick_at(&mut sim, T0 + 3_000 + HOUR);
        assert_eq!(sim.broker.poll_timeout(), None);
    }
}

#[test]
fn ticking_early_or_often_changes_nothing() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car", true, 60));
        let deadline = sim.broker.poll_timeout().unwrap();
        for _ in 0..200 {
            sim.advance(100);
        }
        assert_eq!(sim.broker.poll_timeout(), Some(deadline));
        assert_eq!(sim.closed(car), None);
        assert!(sim.take(car).is_empty());
    }
}
