//! Whole conversations about connections and sessions: CONNECT rules, takeover, keep-alive,
//! wills, persistent sessions and their expiry, under both profiles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::sim::{Sim, connect_packet, will};
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::codec::{
    ConnectReturnCode, DecodeError, Limits, Packet, PacketType, QoS, decode_buf,
};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::profile::Profile;

fn both() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

#[test]
fn connect_subscribe_publish_acknowledge() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (sub, ack) = sim.connect("dashboard", true);
        assert_eq!(ack.code, ConnectReturnCode::Accepted);
        assert!(!ack.session_present);
        let (car, _) = sim.connect("car1", true);
        assert_eq!(
            sim.subscribe(sub, &[("cars/+/speed", QoS::AtLeastOnce)]),
            Some(vec![iot_broker_core::codec::SubscribeReturnCode::Success(
                QoS::AtLeastOnce
            )])
        );
        let pid = sim
            .publish(car, "cars/car1/speed", "88", QoS::AtLeastOnce, false)
            .unwrap();
        // The publisher gets its PUBACK once the broker has taken the message.
        assert_eq!(
            sim.take(car),
            [Packet::PubAck(iot_broker_core::codec::PubAck::new(pid))]
        );
        let got = sim.publishes(sub);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].topic.as_str(), &got[0].payload[..]),
            ("cars/car1/speed", &b"88"[..])
        );
        assert_eq!(got[0].qos(), QoS::AtLeastOnce);
        assert!(!got[0].retain && !got[0].dup);
        assert_eq!(sim.broker.pending("dashboard"), Some((1, 0)));
        sim.puback(sub, got[0].packet_id().unwrap());
        assert_eq!(sim.broker.pending("dashboard"), Some((0, 0)));
        // QoS 0 publish to a QoS 1 subscription is delivered at QoS 0.
        sim.publish(car, "cars/car1/speed", "89", QoS::AtMostOnce, false);
        assert_eq!(sim.publishes(sub)[0].qos(), QoS::AtMostOnce);
        // PINGREQ → PINGRESP; DISCONNECT closes cleanly.
        sim.send(car, Packet::PingReq);
        assert_eq!(sim.take(car), [Packet::PingResp]);
        sim.disconnect(car);
        assert_eq!(sim.closed(car), Some(DisconnectReason::ClientInitiated));
    }
}

#[test]
fn takeover_closes_the_first_connection_and_publishes_its_will() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (watcher, _) = sim.connect("watcher", true);
        sim.subscribe(watcher, &[("cars/car1/status", QoS::AtLeastOnce)]);
        let mut connect = connect_packet("car1", true, 60);
        connect.will = Some(will("cars/car1/status", b"gone", false));
        let (first, _) = sim.connect_with(TransportInfo::default(), connect);
        let (second, ack) = sim.connect("car1", true);
        assert_eq!(ack.code, ConnectReturnCode::Accepted);
        assert_eq!(sim.closed(first), Some(DisconnectReason::DuplicateClientId));
        assert_eq!(sim.closed(second), None);
        assert_eq!(
            sim.received(watcher),
            [("cars/car1/status".into(), "gone".into())]
        );
        assert!(sim.broker.is_connected("car1"));
    }
}

#[test]
fn takeover_of_a_persistent_session_resumes_it() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (first, _) = sim.connect("car1", false);
        sim.subscribe(first, &[("cmd/car1", QoS::AtLeastOnce)]);
        let (second, ack) = sim.connect("car1", false);
        assert!(ack.session_present);
        let (ops, _) = sim.connect("ops", true);
        sim.publish(ops, "cmd/car1", "stop", QoS::AtLeastOnce, false);
        assert_eq!(sim.received(second), [("cmd/car1".into(), "stop".into())]);
        assert!(sim.publishes(first).is_empty());
    }
}

#[test]
fn offline_queueing_and_redelivery() {
    for profile in both() {
        let dup_on_redelivery = profile.redelivery_sets_dup;
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect("car1", false);
        sim.subscribe(car, &[("cmd/car1", QoS::AtLeastOnce)]);
        let (ops, _) = sim.connect("ops", true);
        // One delivery in flight, unacknowledged, when the car drops.
        sim.publish(ops, "cmd/car1", "one", QoS::AtLeastOnce, false);
        let first = sim.publishes(car);
        assert_eq!(first.len(), 1);
        sim.drop_connection(car);
        // While it is away: QoS 1 is queued, QoS 0 is not.
        sim.publish(ops, "cmd/car1", "two", QoS::AtLeastOnce, false);
        sim.publish(ops, "cmd/car1", "lost", QoS::AtMostOnce, false);
        sim.publish(ops, "cmd/car1", "three", QoS::AtLeastOnce, false);
        assert_eq!(sim.broker.pending("car1"), Some((1, 2)));
        let (car, ack) = sim.connect("car1", false);
        assert!(ack.session_present);
        let again = sim.publishes(car);
        let payloads: Vec<&[u8]> = again.iter().map(|p| &p.payload[..]).collect();
        assert_eq!(payloads, [&b"one"[..], b"two", b"three"]);
        // The unacknowledged one keeps its packet id; DUP as the profile says.
        assert_eq!(again[0].packet_id(), first[0].packet_id());
        assert_eq!(again[0].dup, dup_on_redelivery);
        assert!(!again[1].dup && !again[2].dup);
        for p in &again {
            sim.puback(car, p.packet_id().unwrap());
        }
        assert_eq!(sim.broker.pending("car1"), Some((0, 0)));
    }
}

#[test]
fn clean_session_discards_the_stored_one() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect("car1", false);
        sim.subscribe(car, &[("cmd/car1", QoS::AtLeastOnce)]);
        sim.disconnect(car);
        assert_eq!(sim.broker.session_count(), 1);
        let (car, ack) = sim.connect("car1", true);
        assert!(!ack.session_present);
        assert_eq!(sim.broker.subscriptions("car1"), Some(vec![]));
        sim.disconnect(car);
        assert_eq!(sim.broker.session_count(), 0);
    }
}

#[test]
fn aws_sessions_expire_after_an_hour_standard_ones_stay() {
    for (profile, expires) in [(Profile::aws_iot(), true), (Profile::standard(), false)] {
        let mut sim = Sim::new(profile);
        let (car, _) = sim.connect("car1", false);
        sim.subscribe(car, &[("cmd/car1", QoS::AtLeastOnce)]);
        sim.drop_connection(car);
        sim.advance(3_599_000);
        assert_eq!(sim.broker.session_count(), 1);
        sim.advance(1_000);
        assert_eq!(sim.broker.session_count(), usize::from(!expires));
        assert_eq!(sim.broker.stats().sessions_expired, u64::from(expires));
        let (_, ack) = sim.connect("car1", false);
        assert_eq!(ack.session_present, !expires);
    }
}

#[test]
fn keep_alive_is_clamped_by_aws_and_kept_by_standard() {
    // (profile, keep-alive sent, enforced seconds or None)
    let cases = [
        (Profile::aws_iot(), 5, Some(30)),
        (Profile::aws_iot(), 0, Some(1200)),
        (Profile::aws_iot(), 4000, Some(1200)),
        (Profile::aws_iot(), 60, Some(60)),
        (Profile::standard(), 5, Some(5)),
        (Profile::standard(), 0, None),
    ];
    for (profile, sent, enforced) in cases {
        let mut sim = Sim::new(profile);
        let (car, _) =
            sim.connect_with(TransportInfo::default(), connect_packet("car1", true, sent));
        match enforced {
            Some(secs) => {
                // Silence just under 1.5 × keep-alive is fine; reaching it closes.
                sim.advance(secs * 1500 - 1);
                assert_eq!(sim.closed(car), None, "{sent} -> {secs}");
                sim.advance(1);
                assert_eq!(
                    sim.closed(car),
                    Some(DisconnectReason::KeepAliveTimeout),
                    "{sent}"
                );
            }
            None => {
                sim.advance(7 * 24 * 3_600_000);
                assert_eq!(sim.closed(car), None);
            }
        }
    }
}

#[test]
fn any_packet_resets_the_keep_alive_clock() {
    let mut sim = Sim::new(Profile::standard());
    let (car, _) = sim.connect_with(TransportInfo::default(), connect_packet("car1", true, 10));
    for _ in 0..5 {
        sim.advance(14_000);
        sim.send(car, Packet::PingReq);
    }
    assert_eq!(sim.closed(car), None);
    sim.advance(15_000);
    assert_eq!(sim.closed(car), Some(DisconnectReason::KeepAliveTimeout));
}

#[test]
fn will_fires_on_timeout_and_loss_but_not_on_disconnect() {
    for profile in both() {
        for (end, fires) in [("timeout", true), ("lost", true), ("disconnect", false)] {
            let mut sim = Sim::new(profile.clone());
            let (watcher, _) = sim.connect("watcher", true);
            sim.subscribe(watcher, &[("cars/car1/status", QoS::AtLeastOnce)]);
            let mut connect = connect_packet("car1", true, 60);
            connect.will = Some(will("cars/car1/status", b"offline", true));
            let (car, _) = sim.connect_with(TransportInfo::default(), connect);
            match end {
                "timeout" => {
                    sim.advance(60_000);
                    sim.send(watcher, Packet::PingReq);
                    sim.advance(30_000);
                    assert_eq!(sim.closed(car), Some(DisconnectReason::KeepAliveTimeout));
                }
                "lost" => sim.drop_connection(car),
                _ => sim.disconnect(car),
            }
            let got = sim.publishes(watcher);
            assert_eq!(got.len(), usize::from(fires), "{end}");
            // A retained will is kept for later subscribers.
            assert_eq!(
                sim.broker.retained("cars/car1/status").is_some(),
                fires,
                "{end}"
            );
        }
    }
}

#[test]
fn client_id_rules() {
    for profile in both() {
        let aws = profile.reserved_namespace;
        let mut sim = Sim::new(profile);
        // Empty id with a persistent session: refused with 0x02.
        let (c, ack) = sim.connect_with(TransportInfo::default(), connect_packet("", false, 60));
        assert_eq!(ack.unwrap().code, ConnectReturnCode::IdentifierRejected);
        assert!(sim.closed(c).is_some());
        // Empty id with a clean session: accepted under an assigned id.
        let (c, ack) = sim.connect_with(TransportInfo::default(), connect_packet("", true, 60));
        assert_eq!(ack.unwrap().code, ConnectReturnCode::Accepted);
        assert_eq!(sim.closed(c), None);
        // `$` ids are AWS's own.
        let (_, ack) = sim.connect_with(TransportInfo::default(), connect_packet("$car", true, 60));
        let expected = if aws {
            ConnectReturnCode::IdentifierRejected
        } else {
            ConnectReturnCode::Accepted
        };
        assert_eq!(ack.unwrap().code, expected);
    }
}

#[test]
fn aws_client_id_over_128_bytes_gets_connack_2() {
    let mut sim = Sim::new(Profile::aws_iot());
    let conn = sim.open();
    let id = "x".repeat(129);
    let connect = Packet::Connect(connect_packet(&id, true, 60));
    let mut wire = bytes::BytesMut::new();
    connect.encode(&mut wire).unwrap();
    let error = decode_buf(&mut wire, &Limits::aws_iot()).unwrap_err();
    sim.broker.handle_decode_error(conn, &error, sim.now);
    sim.advance(0);
    let Packet::ConnAck(ack) = &sim.take(conn)[0] else {
        panic!()
    };
    assert_eq!(ack.code, ConnectReturnCode::IdentifierRejected);
    assert_eq!(sim.closed(conn), Some(DisconnectReason::ClientError));
}

#[test]
fn protocol_violations_close_the_connection() {
    for profile in both() {
        let mut sim = Sim::new(profile);
        // Anything before CONNECT.
        let conn = sim.open();
        sim.send(conn, Packet::PingReq);
        assert_eq!(sim.closed(conn), Some(DisconnectReason::ClientError));
        // A second CONNECT, and its will fires.
        let (watcher, _) = sim.connect("watcher", true);
        sim.subscribe(watcher, &[("w", QoS::AtMostOnce)]);
        let mut connect = connect_packet("car1", true, 60);
        connect.will = Some(will("w", b"bye", false));
        let (car, _) = sim.connect_with(TransportInfo::default(), connect);
        sim.send(car, Packet::Connect(connect_packet("car1", true, 60)));
        assert_eq!(sim.closed(car), Some(DisconnectReason::ClientError));
        assert_eq!(sim.received(watcher).len(), 1);
        // A server-to-client packet.
        let (car, _) = sim.connect("car2", true);
        sim.send(car, Packet::PingResp);
        assert_eq!(sim.closed(car), Some(DisconnectReason::ClientError));
        // A malformed packet closes only its own connection.
        let (car, _) = sim.connect("car3", true);
        let error = DecodeError::InvalidFlags {
            packet: PacketType::Unsubscribe,
            flags: 0,
        };
        sim.broker.handle_decode_error(car, &error, sim.now);
        sim.advance(0);
        assert_eq!(sim.closed(car), Some(DisconnectReason::ClientError));
        assert_eq!(sim.closed(watcher), None);
    }
}

#[test]
fn connect_must_arrive_in_time() {
    let mut sim = Sim::new(Profile::aws_iot());
    let conn = sim.open();
    sim.advance(9_999);
    assert_eq!(sim.closed(conn), None);
    sim.advance(1);
    assert_eq!(sim.closed(conn), Some(DisconnectReason::ClientError));
}

#[test]
fn unsupported_protocol_level_gets_connack_1() {
    for profile in both() {
        let limits = profile.limits.clone();
        let mut sim = Sim::new(profile);
        let conn = sim.open();
        // CONNECT "MQTT" level 5.
        let mut wire = bytes::BytesMut::from(
            &[
                0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 1, b'c',
            ][..],
        );
        let error = decode_buf(&mut wire, &limits).unwrap_err();
        sim.broker.handle_decode_error(conn, &error, sim.now);
        sim.advance(0);
        let Packet::ConnAck(ack) = &sim.take(conn)[0] else {
            panic!()
        };
        assert_eq!(ack.code, ConnectReturnCode::UnacceptableProtocolVersion);
    }
}

#[test]
fn shutdown_fires_wills_and_keeps_persistent_sessions() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (watcher, _) = sim.connect("watcher", false);
    sim.subscribe(watcher, &[("status/#", QoS::AtLeastOnce)]);
    let mut connect = connect_packet("car1", true, 60);
    connect.will = Some(will("status/car1", b"offline", false));
    let (car, _) = sim.connect_with(TransportInfo::default(), connect);
    sim.broker.shutdown(sim.now);
    sim.advance(0);
    assert_eq!(sim.closed(car), Some(DisconnectReason::ServerInitiated));
    assert_eq!(sim.closed(watcher), Some(DisconnectReason::ServerInitiated));
    // The watcher was closed first, so the will waits in its persistent session.
    assert_eq!(sim.broker.pending("watcher"), Some((0, 1)));
}
