//! Whole conversations about delivery: QoS 1 and 2 flows, the in-flight window, the publish rate,
//! bounded queues, overlapping and shared subscriptions, and retained messages, under both
//! profiles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::sim::Sim;
use iot_broker_core::codec::{
    Packet, PacketId, PubAck, PubComp, PubRec, PubRel, QoS, SubscribeReturnCode,
};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::persist::Persistence;
use iot_broker_core::profile::Profile;

fn both() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

#[test]
fn standard_qos2_exactly_once_inbound() {
    let mut sim = Sim::new(Profile::standard());
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("t", QoS::ExactlyOnce)]);
    let (car, _) = sim.connect("car", true);
    let pid = sim
        .publish(car, "t", "once", QoS::ExactlyOnce, false)
        .unwrap();
    assert_eq!(sim.take(car), [Packet::PubRec(PubRec::new(pid))]);
    // The same packet again before PUBREL: acknowledged, not forwarded twice.
    sim.send(
        car,
        Packet::Publish(iot_broker_core::codec::Publish {
            dup: true,
            qos_pid: iot_broker_core::codec::QosPid::ExactlyOnce(pid),
            retain: false,
            topic: "t".into(),
            payload: "once".into(),
        }),
    );
    assert_eq!(sim.take(car), [Packet::PubRec(PubRec::new(pid))]);
    sim.send(car, Packet::PubRel(PubRel::new(pid)));
    assert_eq!(sim.take(car), [Packet::PubComp(PubComp::new(pid))]);

    // Outbound to the QoS 2 subscriber: PUBLISH, PUBREC → PUBREL, PUBCOMP.
    let got = sim.publishes(sub);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos(), QoS::ExactlyOnce);
    let out = got[0].packet_id().unwrap();
    sim.send(sub, Packet::PubRec(PubRec::new(out)));
    assert_eq!(sim.take(sub), [Packet::PubRel(PubRel::new(out))]);
    assert_eq!(sim.broker.pending("sub"), Some((1, 0)));
    sim.send(sub, Packet::PubComp(PubComp::new(out)));
    assert_eq!(sim.broker.pending("sub"), Some((0, 0)));
}

#[test]
fn standard_qos2_release_is_resent_after_reconnect() {
    let mut sim = Sim::new(Profile::standard());
    let (sub, _) = sim.connect("sub", false);
    sim.subscribe(sub, &[("t", QoS::ExactlyOnce)]);
    let (car, _) = sim.connect("car", true);
    sim.publish(car, "t", "x", QoS::ExactlyOnce, false);
    let out = sim.publishes(sub)[0].packet_id().unwrap();
    sim.send(sub, Packet::PubRec(PubRec::new(out)));
    sim.drop_connection(sub);
    let (sub, ack) = sim.connect("sub", false);
    assert!(ack.session_present);
    assert_eq!(sim.take(sub), [Packet::PubRel(PubRel::new(out))]);
}

#[test]
fn aws_refuses_qos2_flow_packets() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (car, _) = sim.connect("car", true);
    sim.send(car, Packet::PubRel(PubRel::new(PacketId::new(1).unwrap())));
    assert_eq!(sim.closed(car), Some(DisconnectReason::ClientError));
}

#[test]
fn inflight_window_holds_the_rest_until_acknowledged() {
    for profile in both() {
        let window = profile.max_inflight;
        let mut sim = Sim::new(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("t/+", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);
        for i in 0..window + 5 {
            // Spread over seconds so the AWS publish rate is not what holds them back.
            if i % 40 == 39 {
                sim.advance(1_000);
            }
            sim.publish(car, &format!("t/{i}"), "x", QoS::AtLeastOnce, false);
        }
        let first = sim.publishes(sub);
        assert_eq!(first.len(), window);
        assert_eq!(sim.broker.pending("sub"), Some((window, 5)));
        // Each acknowledgement lets one more out, in order.
        sim.puback(sub, first[0].packet_id().unwrap());
        let next = sim.publishes(sub);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].topic.as_str(), format!("t/{window}"));
    }
}

#[test]
fn aws_publish_rate_discards_excess_unacknowledged() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("in", QoS::AtMostOnce)]);
    let (car, _) = sim.connect("car", true);
    sim.advance(1_000 - sim.now % 1_000); // start of a second
    let mut acked = 0;
    for _ in 0..105 {
        sim.publish(car, "t", "x", QoS::AtLeastOnce, false);
        acked += sim.take(car).len();
    }
    assert_eq!(acked, 100);
    assert_eq!(sim.broker.stats().dropped_rate_limited, 5);
    // The next second has room again.
    sim.advance(1_000);
    sim.publish(car, "t", "x", QoS::AtLeastOnce, false);
    assert_eq!(sim.take(car).len(), 1);
}

#[test]
fn aws_publish_rate_holds_outbound_qos1_and_drops_outbound_qos0() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("q1", QoS::AtLeastOnce), ("q0", QoS::AtMostOnce)]);
    sim.advance(1_000 - sim.now % 1_000);
    // Server-side publishes: only the subscriber's window counts.
    for _ in 0..60 {
        let topic = iot_broker_core::topic::TopicName::new("q1", sim.broker.profile()).unwrap();
        sim.broker
            .publish(topic, "x".into(), QoS::AtLeastOnce, false, sim.now);
    }
    for _ in 0..60 {
        let topic = iot_broker_core::topic::TopicName::new("q0", sim.broker.profile()).unwrap();
        sim.broker
            .publish(topic, "x".into(), QoS::AtMostOnce, false, sim.now);
    }
    sim.advance(0);
    let got = sim.publishes(sub);
    assert_eq!(got.len(), 100);
    let acked: Vec<_> = got.iter().filter_map(|p| p.packet_id()).collect();
    assert_eq!(acked.len(), 60);
    assert_eq!(sim.broker.stats().dropped_rate_limited, 20);
    for pid in acked {
        sim.puback(sub, pid);
    }
    assert_eq!(sim.broker.pending("sub"), Some((0, 0)));
}

#[test]
fn full_queue_drops_qos0_first_and_counts_every_drop() {
    let mut profile = Profile::standard();
    profile.max_inflight = 1;
    profile.max_queued = 3;
    let mut sim = Sim::new(profile);
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let (car, _) = sim.connect("car", true);
    sim.publish(car, "t", "in-flight", QoS::AtLeastOnce, false);
    // QoS 0 waits behind a queued QoS 1 message, to keep the publisher's order.
    sim.publish(car, "t", "q1-b", QoS::AtLeastOnce, false);
    sim.publish(car, "t", "q0-a", QoS::AtMostOnce, false);
    sim.publish(car, "t", "q1-c", QoS::AtLeastOnce, false);
    // Full: the oldest QoS 0 makes room.
    sim.publish(car, "t", "q1-d", QoS::AtLeastOnce, false);
    // Full of QoS 1: the new one is dropped.
    sim.publish(car, "t", "q1-e", QoS::AtLeastOnce, false);
    let stats = sim.broker.stats();
    assert_eq!(
        (stats.dropped_qos0_evicted, stats.dropped_queue_full),
        (1, 1)
    );
    let mut order = vec![];
    loop {
        let got = sim.publishes(sub);
        if got.is_empty() {
            break;
        }
        for p in got {
            order.push(String::from_utf8(p.payload.to_vec()).unwrap());
            sim.puback(sub, p.packet_id().unwrap());
        }
    }
    assert_eq!(order, ["in-flight", "q1-b", "q1-c", "q1-d"]);
}

#[test]
fn overlapping_filters_per_profile() {
    // AWS: one copy per matching filter at its QoS; standard: one copy at the highest QoS.
    for (profile, expected) in [
        (Profile::aws_iot(), vec![QoS::AtMostOnce, QoS::AtLeastOnce]),
        (Profile::standard(), vec![QoS::AtLeastOnce]),
    ] {
        let mut sim = Sim::new(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(
            sub,
            &[
                ("cars/#", QoS::AtMostOnce),
                ("cars/+/gps", QoS::AtLeastOnce),
            ],
        );
        let (car, _) = sim.connect("car", true);
        sim.publish(car, "cars/1/gps", "x", QoS::AtLeastOnce, false);
        let mut got: Vec<QoS> = sim.publishes(sub).iter().map(|p| p.qos()).collect();
        got.sort();
        assert_eq!(got, expected);
    }
}

#[test]
fn multi_level_wildcard_and_its_parent() {
    for (profile, parent_matches) in [(Profile::aws_iot(), false), (Profile::standard(), true)] {
        let mut sim = Sim::new(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("a/#", QoS::AtMostOnce)]);
        let (car, _) = sim.connect("car", true);
        sim.publish(car, "a", "x", QoS::AtMostOnce, false);
        assert_eq!(sim.publishes(sub).len(), usize::from(parent_matches));
        sim.publish(car, "a/b", "x", QoS::AtMostOnce, false);
        assert_eq!(sim.publishes(sub).len(), 1);
    }
}

#[test]
fn shared_subscription_balances_round_robin() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let members: Vec<_> = (0..3)
            .map(|i| {
                let (conn, _) = sim.connect(&format!("worker{i}"), true);
                let codes = sim.subscribe(conn, &[("$share/workers/jobs/+", QoS::AtLeastOnce)]);
                assert_eq!(
                    codes,
                    Some(vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)])
                );
                conn
            })
            .collect();
        let (plain, _) = sim.connect("auditor", true);
        sim.subscribe(plain, &[("jobs/+", QoS::AtMostOnce)]);
        let (car, _) = sim.connect("car", true);
        for i in 0..9 {
            sim.publish(car, &format!("jobs/{i}"), "x", QoS::AtLeastOnce, false);
        }
        for member in members {
            assert_eq!(sim.publishes(member).len(), 3);
        }
        assert_eq!(sim.publishes(plain).len(), 9);
    }
}

#[test]
fn retained_on_subscribe_per_profile() {
    for profile in both() {
        let to_wildcards = profile.retained_to_wildcards;
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect("car", true);
        sim.publish(car, "cars/1/status", "online", QoS::AtLeastOnce, true);
        sim.publish(car, "cars/2/status", "offline", QoS::AtMostOnce, true);
        assert_eq!(sim.broker.retained_count(), 2);

        let (exact, _) = sim.connect("exact", true);
        sim.subscribe(exact, &[("cars/1/status", QoS::AtLeastOnce)]);
        let got = sim.publishes(exact);
        assert_eq!(got.len(), 1);
        assert!(got[0].retain);
        assert_eq!(got[0].qos(), QoS::AtLeastOnce);

        let (wild, _) = sim.connect("wild", true);
        sim.subscribe(wild, &[("cars/+/status", QoS::AtLeastOnce)]);
        let got = sim.publishes(wild);
        assert_eq!(got.len(), if to_wildcards { 2 } else { 0 });
        assert!(got.iter().all(|p| p.retain));

        // Shared subscriptions never get retained messages.
        let (shared, _) = sim.connect("shared", true);
        sim.subscribe(shared, &[("$share/g/cars/1/status", QoS::AtLeastOnce)]);
        assert!(sim.publishes(shared).is_empty());

        // Live deliveries carry RETAIN=0; an empty retained payload deletes and is delivered.
        sim.publish(car, "cars/1/status", "", QoS::AtMostOnce, true);
        let live = sim.publishes(exact);
        assert_eq!(live.len(), 1);
        assert!(!live[0].retain && live[0].payload.is_empty());
        assert_eq!(sim.broker.retained_count(), 1);
        let (late, _) = sim.connect("late", true);
        sim.subscribe(late, &[("cars/1/status", QoS::AtLeastOnce)]);
        assert!(sim.publishes(late).is_empty());
    }
}

#[test]
fn aws_subscriptions_per_connection_limit() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (car, _) = sim.connect("car", true);
    for batch in 0..6 {
        let filters: Vec<(String, QoS)> = (0..8)
            .map(|i| (format!("t/{batch}/{i}"), QoS::AtMostOnce))
            .collect();
        let filters: Vec<(&str, QoS)> = filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
        let codes = sim.subscribe(car, &filters).unwrap();
        assert!(codes.iter().all(|c| *c != SubscribeReturnCode::Failure));
    }
    assert_eq!(sim.broker.subscriptions("car").unwrap().len(), 48);
    // Re-subscribing to a held filter is not a new subscription.
    assert!(sim.subscribe(car, &[("t/0/0", QoS::AtLeastOnce)]).is_some());
    let codes = sim
        .subscribe(
            car,
            &[
                ("u/1", QoS::AtMostOnce),
                ("u/2", QoS::AtMostOnce),
                ("u/3", QoS::AtMostOnce),
            ],
        )
        .unwrap();
    assert_eq!(
        codes,
        [
            SubscribeReturnCode::Success(QoS::AtMostOnce),
            SubscribeReturnCode::Success(QoS::AtMostOnce),
            SubscribeReturnCode::Failure
        ]
    );
    assert_eq!(sim.closed(car), Some(DisconnectReason::ClientError));
}

#[test]
fn standard_grants_qos2_subscriptions() {
    let mut sim = Sim::new(Profile::standard());
    let (car, _) = sim.connect("car", true);
    assert_eq!(
        sim.subscribe(car, &[("t", QoS::ExactlyOnce)]),
        Some(vec![SubscribeReturnCode::Success(QoS::ExactlyOnce)])
    );
}

#[test]
fn aws_payload_limit_closes_with_client_error() {
    use iot_broker_core::codec::{Limits, decode_buf};
    let mut sim = Sim::new(Profile::aws_iot());
    let (car, _) = sim.connect("car", true);
    let big = Packet::Publish(iot_broker_core::codec::Publish {
        dup: false,
        qos_pid: iot_broker_core::codec::QosPid::AtMostOnce,
        retain: false,
        topic: "t",
        payload: &vec![0u8; 131_073][..],
    });
    let mut wire = bytes::BytesMut::new();
    big.encode(&mut wire).unwrap();
    let error = decode_buf(&mut wire, &Limits::aws_iot()).unwrap_err();
    sim.broker.handle_decode_error(car, &error, sim.now);
    sim.advance(0);
    assert_eq!(sim.closed(car), Some(DisconnectReason::ClientError));
}

#[test]
fn acks_for_unknown_ids_are_harmless() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect("car", true);
        sim.send(car, Packet::PubAck(PubAck::new(PacketId::new(77).unwrap())));
        assert_eq!(sim.closed(car), None);
        assert!(sim.take(car).is_empty());
    }
}

#[test]
fn aws_drops_a_delivery_unacknowledged_for_an_hour() {
    let mut sim = Sim::new(Profile::aws_iot());
    // Keep-alive 0 becomes AWS's 1200 s.
    let transport = iot_broker_core::auth::TransportInfo::default;
    let (sub, _) = sim.connect_with(transport(), common::sim::connect_packet("sub", false, 0));
    sim.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let (car, _) = sim.connect_with(transport(), common::sim::connect_packet("car", true, 0));
    sim.publish(car, "t", "x", QoS::AtLeastOnce, false);
    assert_eq!(sim.publishes(sub).len(), 1);
    // Both stay alive (PINGREQ every 10 minutes) while the delivery is never acknowledged.
    for _ in 0..6 {
        sim.advance(600_000);
        sim.send(sub, Packet::PingReq);
        sim.send(car, Packet::PingReq);
    }
    assert_eq!(sim.broker.pending("sub"), Some((0, 0)));
    assert_eq!(sim.broker.stats().dropped_expired, 1);
    assert!(
        sim.broker.persistence_mut().load().sessions["sub"]
            .messages
            .is_empty()
    );
}

#[test]
fn service_messages_reach_subscribers_of_reserved_topics_and_are_never_retained() {
    let mut s = Sim::new(Profile::aws_iot());
    let (car, _) = s.connect("car", true);
    let accepted = "$aws/things/car/shadow/update/accepted";
    s.subscribe(car, &[(accepted, QoS::AtLeastOnce)]).unwrap();
    let notice = iot_broker_core::message::Message::new(accepted, "{}", QoS::AtLeastOnce, true);
    let now = s.now;
    s.broker.deliver_service_message(&notice, now);
    s.drain();
    assert_eq!(s.received(car), [(accepted.to_owned(), "{}".to_owned())]);
    assert_eq!(s.broker.retained_count(), 0);
}
