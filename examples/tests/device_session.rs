//! The device's sans-IO MQTT session, rule by rule, against a scripted broker: bytes in, bytes
//! out, time as a number. No sockets, no clock: every case is deterministic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bytes::{Bytes, BytesMut};
use iot_examples::device::{
    ClientSession, CloseReason, PublishOutcome, SessionError, SessionEvent, SessionOptions,
    SessionState, WillMessage,
};
use mqtt_codec::{
    ConnAck, ConnectReturnCode, Limits, Packet, PacketId, PubAck, Publish, QoS, QosPid,
    SharedPacket, SubAck, SubscribeReturnCode, UnsubAck, decode_buf,
};

/// Everything the session wrote, decoded.
fn sent(session: &mut ClientSession) -> Vec<SharedPacket> {
    let mut buf = BytesMut::new();
    while let Some(bytes) = session.poll_transmit() {
        buf.extend_from_slice(&bytes);
    }
    let mut packets = Vec::new();
    while let Some(packet) = decode_buf(&mut buf, &Limits::mqtt_3_1_1()).unwrap() {
        packets.push(packet);
    }
    assert!(buf.is_empty(), "a partial packet was written");
    packets
}

fn events(session: &mut ClientSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn wire(packet: Packet<&str, &[u8]>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(&mut buf).unwrap();
    buf.to_vec()
}

fn connack(session_present: bool) -> Vec<u8> {
    wire(Packet::ConnAck(ConnAck {
        session_present,
        code: ConnectReturnCode::Accepted,
    }))
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn suback(n: u16, codes: &[SubscribeReturnCode]) -> Vec<u8> {
    let ack = SubAck {
        packet_id: pid(n),
        return_codes: mqtt_codec::ReturnCodes::from_codes(codes).unwrap(),
    };
    let mut buf = BytesMut::new();
    Packet::<&str, Bytes>::SubAck(ack).encode(&mut buf).unwrap();
    buf.to_vec()
}

fn publish_to_device(qos_pid: QosPid, topic: &str, payload: &[u8]) -> Vec<u8> {
    wire(Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain: false,
        topic,
        payload,
    }))
}

/// A session through CONNECT/CONNACK at `now`.
fn online(options: SessionOptions, now: u64) -> ClientSession {
    let mut session = ClientSession::new(options);
    session.connect(now);
    session.handle_bytes(&connack(false), now);
    sent(&mut session);
    events(&mut session);
    session
}

#[test]
fn connect_carries_the_options_and_nothing_goes_before_the_connack() {
    let options = SessionOptions::new("car-1")
        .persistent()
        .keep_alive_secs(60)
        .username("?SDK=aws-iot-rs&Version=0.1.0")
        .will(WillMessage {
            topic: "cars/car-1/status".into(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
        });
    let mut session = ClientSession::new(options);
    session
        .subscribe(&[("cars/car-1/commands", QoS::AtLeastOnce)], 0)
        .unwrap();
    assert!(matches!(
        session.publish("cars/car-1/telemetry", "x", QoS::AtLeastOnce, false, 0),
        Ok(PublishOutcome::Accepted(_))
    ));
    session.connect(1_000);
    let packets = sent(&mut session);
    assert_eq!(packets.len(), 1, "only the CONNECT: {packets:?}");
    let Packet::Connect(connect) = &packets[0] else {
        panic!("{packets:?}")
    };
    assert_eq!(connect.client_id.as_str(), "car-1");
    assert!(!connect.clean_session);
    assert_eq!(connect.keep_alive, 60);
    assert_eq!(
        connect.username.as_ref().map(|u| u.as_str()),
        Some("?SDK=aws-iot-rs&Version=0.1.0")
    );
    let will = connect.will.as_ref().unwrap();
    assert_eq!(
        (will.topic.as_str(), &will.payload[..], will.retain),
        ("cars/car-1/status", &b"gone"[..], true)
    );
    assert_eq!(
        session.state(),
        SessionState::Connecting {
            deadline_ms: 11_000
        }
    );
    // After the CONNACK: the subscription, then the queued publish.
    session.handle_bytes(&connack(false), 1_010);
    let packets = sent(&mut session);
    assert!(matches!(packets[0], Packet::Subscribe(_)), "{packets:?}");
    assert!(matches!(packets[1], Packet::Publish(_)), "{packets:?}");
}

#[test]
fn no_connack_in_time_ends_the_connection() {
    let mut session = ClientSession::new(SessionOptions::new("car-1"));
    session.connect(0);
    assert_eq!(session.poll_timeout(), Some(10_000));
    session.handle_timeout(9_999);
    assert!(events(&mut session).is_empty());
    session.handle_timeout(10_000);
    assert_eq!(
        events(&mut session),
        [SessionEvent::Closed(CloseReason::ConnAckTimeout)]
    );
    assert_eq!(session.state(), SessionState::Offline);
}

#[test]
fn a_refused_connect_says_why() {
    let mut session = ClientSession::new(SessionOptions::new("car-1"));
    session.connect(0);
    session.handle_bytes(
        &wire(Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::NotAuthorized,
        })),
        1,
    );
    assert_eq!(
        events(&mut session),
        [SessionEvent::Closed(CloseReason::Refused(
            ConnectReturnCode::NotAuthorized
        ))]
    );
}

#[test]
fn keep_alive_pings_after_silence_and_gives_up_without_an_answer() {
    let mut session = online(SessionOptions::new("car-1").keep_alive_secs(30), 0);
    assert_eq!(session.poll_timeout(), Some(30_000));
    // Sending something moves the deadline.
    session
        .publish("cars/1/t", "x", QoS::AtMostOnce, false, 20_000)
        .unwrap();
    sent(&mut session);
    assert_eq!(session.poll_timeout(), Some(50_000));
    session.handle_timeout(50_000);
    assert!(matches!(sent(&mut session)[..], [Packet::PingReq]));
    // The PINGRESP clears the response deadline.
    assert_eq!(session.poll_timeout(), Some(60_000));
    session.handle_bytes(&wire(Packet::PingResp), 50_100);
    assert_eq!(session.poll_timeout(), Some(80_000));
    // Next time no PINGRESP comes.
    session.handle_timeout(80_000);
    assert!(matches!(sent(&mut session)[..], [Packet::PingReq]));
    session.handle_timeout(89_999);
    assert!(events(&mut session).is_empty());
    session.handle_timeout(90_000);
    assert_eq!(
        events(&mut session),
        [SessionEvent::Closed(CloseReason::KeepAliveTimeout)]
    );
}

#[test]
fn packet_ids_are_unique_among_those_in_use_and_wrap() {
    let mut options = SessionOptions::new("car-1");
    options.max_publishes_per_second = 0;
    let mut session = online(options, 0);
    let mut ids = Vec::new();
    for round in 0..700u32 {
        for _ in 0..100 {
            session
                .publish("cars/1/t", "x", QoS::AtLeastOnce, false, 0)
                .unwrap();
        }
        let published: Vec<PacketId> = sent(&mut session)
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => p.qos_pid.packet_id(),
                _ => None,
            })
            .collect();
        let mut unique = published.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), published.len(), "round {round}");
        for id in &published {
            session.handle_bytes(&wire(Packet::PubAck(PubAck::new(*id))), 0);
        }
        ids.extend(published);
    }
    assert_eq!(ids.len(), 70_000, "ids wrapped past 65535 without a stall");
}

#[test]
fn qos1_is_kept_until_puback_and_resent_with_dup_after_the_broker_vanishes() {
    let mut session = online(SessionOptions::new("car-1").persistent(), 0);
    let PublishOutcome::Accepted(first) = session
        .publish("cars/1/t", "one", QoS::AtLeastOnce, false, 1)
        .unwrap()
    else {
        panic!()
    };
    session
        .publish("cars/1/t", "two", QoS::AtLeastOnce, false, 1)
        .unwrap();
    let packets = sent(&mut session);
    let ids: Vec<PacketId> = packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => p.qos_pid.packet_id(),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    // Only the first is acknowledged before the broker vanishes mid-flight.
    session.handle_bytes(&wire(Packet::PubAck(PubAck::new(ids[0]))), 2);
    assert_eq!(events(&mut session), [SessionEvent::Delivered(first)]);
    session.connection_lost();
    assert_eq!(session.unacknowledged(), 1);
    // Published while offline: queued behind the unacknowledged one.
    session
        .publish("cars/1/t", "three", QoS::AtLeastOnce, false, 3)
        .unwrap();
    assert!(sent(&mut session).is_empty());

    session.connect(10);
    sent(&mut session);
    session.handle_bytes(&connack(true), 11);
    let packets = sent(&mut session);
    let publishes: Vec<(bool, Option<PacketId>, String)> = packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((
                p.dup,
                p.qos_pid.packet_id(),
                String::from_utf8(p.payload.to_vec()).unwrap(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        publishes,
        [
            (true, Some(ids[1]), "two".to_owned()),
            (false, publishes[1].1, "three".to_owned())
        ]
    );
    assert_eq!(session.stats().resent, 1);
}

#[test]
fn qos0_offline_is_dropped_and_counted_and_a_full_queue_pushes_back() {
    let mut options = SessionOptions::new("car-1");
    options.max_inflight = 2;
    options.max_queued = 3;
    let mut session = ClientSession::new(options);
    assert_eq!(
        session.publish("cars/1/t", "x", QoS::AtMostOnce, false, 0),
        Ok(PublishOutcome::Dropped)
    );
    assert_eq!(session.stats().dropped_offline, 1);
    for _ in 0..5 {
        session
            .publish("cars/1/t", "x", QoS::AtLeastOnce, false, 0)
            .unwrap();
    }
    assert_eq!(
        session.publish("cars/1/t", "x", QoS::AtLeastOnce, false, 0),
        Err(SessionError::QueueFull)
    );
    assert_eq!(
        session.publish("cars/+/t", "x", QoS::AtLeastOnce, false, 0),
        Err(SessionError::Topic {
            topic: "cars/+/t".into(),
            error: mqtt_codec::TopicError::WildcardInName
        })
    );
    assert_eq!(
        session.publish("cars/1/t", "x", QoS::ExactlyOnce, false, 0),
        Err(SessionError::QoS2)
    );
    // Online, the window holds two on the wire; the rest follow as PUBACKs come.
    session.connect(0);
    sent(&mut session);
    session.handle_bytes(&connack(false), 0);
    let on_wire: Vec<PacketId> = sent(&mut session)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => p.qos_pid.packet_id(),
            _ => None,
        })
        .collect();
    assert_eq!(on_wire.len(), 2);
    session.handle_bytes(&wire(Packet::PubAck(PubAck::new(on_wire[0]))), 1);
    assert_eq!(
        sent(&mut session)
            .iter()
            .filter(|p| matches!(p, Packet::Publish(_)))
            .count(),
        1
    );
}

#[test]
fn inbound_qos1_is_acknowledged_only_when_the_application_took_it() {
    let mut session = online(SessionOptions::new("car-1"), 0);
    session.handle_bytes(
        &publish_to_device(QosPid::AtLeastOnce(pid(7)), "cars/1/commands", b"honk"),
        1,
    );
    let [SessionEvent::Message(message)] = &events(&mut session)[..] else {
        panic!()
    };
    assert_eq!(&message.payload[..], b"honk");
    assert!(
        sent(&mut session).is_empty(),
        "no PUBACK before the app says so"
    );
    session.ack(message.ack.unwrap(), 2);
    assert_eq!(sent(&mut session), [Packet::PubAck(PubAck::new(pid(7)))]);

    // A message taken after a reconnect is not acknowledged on the new connection.
    session.handle_bytes(
        &publish_to_device(QosPid::AtLeastOnce(pid(8)), "cars/1/commands", b"flash"),
        3,
    );
    let [SessionEvent::Message(late)] = &events(&mut session)[..] else {
        panic!()
    };
    session.connection_lost();
    session.connect(4);
    session.handle_bytes(&connack(true), 5);
    sent(&mut session);
    session.ack(late.ack.unwrap(), 6);
    assert!(sent(&mut session).is_empty());
    // QoS 0 needs no ack.
    session.handle_bytes(&publish_to_device(QosPid::AtMostOnce, "cars/1/x", b"y"), 7);
    let [
        SessionEvent::Closed(CloseReason::ConnectionLost),
        SessionEvent::Connected { .. },
        SessionEvent::Message(m),
    ] = &events(&mut session)[..]
    else {
        panic!()
    };
    assert_eq!(m.ack, None);
}

#[test]
fn subscriptions_are_restored_when_the_broker_did_not_keep_the_session() {
    let mut session = online(SessionOptions::new("car-1").persistent(), 0);
    session
        .subscribe(
            &[
                ("cars/1/commands", QoS::AtLeastOnce),
                ("cars/1/shadow", QoS::AtMostOnce),
            ],
            1,
        )
        .unwrap();
    let [Packet::Subscribe(subscribe)] = &sent(&mut session)[..] else {
        panic!()
    };
    session.handle_bytes(
        &suback(
            subscribe.packet_id.get(),
            &[
                SubscribeReturnCode::Success(QoS::AtLeastOnce),
                SubscribeReturnCode::Success(QoS::AtMostOnce),
            ],
        ),
        2,
    );
    events(&mut session);

    // The broker kept the session: nothing to restore.
    session.connection_lost();
    session.connect(10);
    sent(&mut session);
    session.handle_bytes(&connack(true), 11);
    assert!(sent(&mut session).is_empty());

    // It lost it: everything again.
    session.connection_lost();
    session.connect(20);
    sent(&mut session);
    session.handle_bytes(&connack(false), 21);
    let [Packet::Subscribe(again)] = &sent(&mut session)[..] else {
        panic!()
    };
    let filters: Vec<(String, QoS)> = again
        .filters
        .iter_shared()
        .map(|(f, q)| (f.as_str().to_owned(), q))
        .collect();
    assert_eq!(
        filters,
        [
            ("cars/1/commands".to_owned(), QoS::AtLeastOnce),
            ("cars/1/shadow".to_owned(), QoS::AtMostOnce)
        ]
    );
}

#[test]
fn a_subscription_never_confirmed_is_sent_again_even_to_a_kept_session() {
    let mut session = online(SessionOptions::new("car-1").persistent(), 0);
    session
        .subscribe(&[("cars/1/commands", QoS::AtLeastOnce)], 1)
        .unwrap();
    sent(&mut session);
    session.connection_lost(); // before the SUBACK
    session.unsubscribe(&[], 2);
    session
        .subscribe(&[("cars/1/lights", QoS::AtLeastOnce)], 3)
        .unwrap(); // while offline
    session.connect(10);
    sent(&mut session);
    session.handle_bytes(&connack(true), 11);
    let [Packet::Subscribe(again)] = &sent(&mut session)[..] else {
        panic!()
    };
    let filters: Vec<String> = again
        .filters
        .iter_shared()
        .map(|(f, _)| f.as_str().to_owned())
        .collect();
    assert_eq!(filters, ["cars/1/commands", "cars/1/lights"]);
}

#[test]
fn refused_filters_are_dropped_from_the_set_and_unsubscribe_is_confirmed() {
    let mut session = online(SessionOptions::new("car-1"), 0);
    session
        .subscribe(
            &[
                ("cars/1/ok", QoS::AtLeastOnce),
                ("cars/1/no", QoS::AtLeastOnce),
            ],
            1,
        )
        .unwrap();
    let [Packet::Subscribe(subscribe)] = &sent(&mut session)[..] else {
        panic!()
    };
    session.handle_bytes(
        &suback(
            subscribe.packet_id.get(),
            &[
                SubscribeReturnCode::Success(QoS::AtLeastOnce),
                SubscribeReturnCode::Failure,
            ],
        ),
        2,
    );
    assert_eq!(
        session.subscriptions().collect::<Vec<_>>(),
        [("cars/1/ok", QoS::AtLeastOnce)]
    );
    events(&mut session);
    session.unsubscribe(&["cars/1/ok"], 3);
    let [Packet::Unsubscribe(unsubscribe)] = &sent(&mut session)[..] else {
        panic!()
    };
    session.handle_bytes(
        &wire(Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id))),
        4,
    );
    assert_eq!(
        events(&mut session),
        [SessionEvent::Unsubscribed(vec!["cars/1/ok".to_owned()])]
    );
    assert_eq!(session.subscriptions().count(), 0);
}

#[test]
fn malformed_or_unexpected_input_closes_and_never_panics() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xf0, 0x00], "reserved packet type"),
        (vec![0x30, 0x02, 0x00, 0x09], "topic runs past the frame"),
        (wire(Packet::PingReq), "PINGREQ from the broker"),
        (connack(false), "a second CONNACK"),
        (
            publish_to_device(QosPid::ExactlyOnce(pid(1)), "a", b"b"),
            "QoS 2 delivery",
        ),
        (vec![0x62, 0x02, 0x00, 0x01], "PUBREL"),
    ];
    for (bytes, what) in cases {
        let mut session = online(SessionOptions::new("car-1"), 0);
        session.handle_bytes(&bytes, 1);
        let events = events(&mut session);
        assert!(
            matches!(events[..], [SessionEvent::Closed(_)]),
            "{what}: {events:?}"
        );
        assert_eq!(session.state(), SessionState::Offline, "{what}");
        // Bytes after the close are ignored.
        session.handle_bytes(&bytes, 2);
        assert!(session.poll_event().is_none());
    }
    // Before the CONNACK, anything else is out of place.
    let mut session = ClientSession::new(SessionOptions::new("car-1"));
    session.connect(0);
    session.handle_bytes(&publish_to_device(QosPid::AtMostOnce, "a", b"b"), 1);
    assert!(matches!(
        events(&mut session)[..],
        [SessionEvent::Closed(CloseReason::Unexpected(_))]
    ));
    // Random bytes, split anywhere: no panic, at most one close.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut session = online(SessionOptions::new("car-1"), 0);
        let len = (seed % 40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        for chunk in bytes.chunks(3) {
            session.handle_bytes(chunk, 1);
        }
        let closes = events(&mut session)
            .iter()
            .filter(|e| matches!(e, SessionEvent::Closed(_)))
            .count();
        assert!(closes <= 1);
    }
}

#[test]
fn packets_split_across_reads_are_handled_when_whole() {
    let mut session = online(SessionOptions::new("car-1"), 0);
    let bytes = publish_to_device(QosPid::AtMostOnce, "cars/1/commands", b"lock");
    for byte in &bytes {
        session.handle_bytes(std::slice::from_ref(byte), 1);
    }
    let [SessionEvent::Message(message)] = &events(&mut session)[..] else {
        panic!()
    };
    assert_eq!(message.topic, "cars/1/commands");
}

#[test]
fn disconnect_is_clean() {
    let mut session = online(SessionOptions::new("car-1"), 0);
    session.disconnect(5);
    assert_eq!(sent(&mut session), [Packet::Disconnect]);
    assert_eq!(
        events(&mut session),
        [SessionEvent::Closed(CloseReason::Requested)]
    );
}

#[test]
fn the_publish_rate_is_kept_and_a_throttled_publish_is_retried() {
    let mut options = SessionOptions::new("car-1");
    options.max_publishes_per_second = 3;
    options.retry_interval_ms = 5_000;
    let mut session = online(options, 1_000);
    for n in 0..5 {
        session
            .publish("cars/1/t", n.to_string(), QoS::AtLeastOnce, false, 1_000)
            .unwrap();
    }
    let published = |packets: Vec<SharedPacket>| -> Vec<(bool, String)> {
        packets
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.dup, String::from_utf8(p.payload.to_vec()).unwrap())),
                _ => None,
            })
            .collect()
    };
    // Three this second; QoS 0 over the rate is dropped and counted.
    assert_eq!(published(sent(&mut session)).len(), 3);
    assert_eq!(
        session.publish("cars/1/t", "q0", QoS::AtMostOnce, false, 1_500),
        Ok(PublishOutcome::Dropped)
    );
    assert_eq!(session.stats().dropped_rate, 1);
    // The rest at the next second.
    assert_eq!(session.poll_timeout(), Some(2_000));
    session.handle_timeout(2_000);
    assert_eq!(
        published(sent(&mut session)),
        [(false, "3".to_owned()), (false, "4".to_owned())]
    );
    // The broker acknowledged none (throttled): after the retry interval they go again, DUP.
    assert_eq!(session.poll_timeout(), Some(6_000));
    session.handle_timeout(6_000);
    let again = published(sent(&mut session));
    assert_eq!(
        again,
        [
            (true, "0".to_owned()),
            (true, "1".to_owned()),
            (true, "2".to_owned())
        ]
    );
    assert_eq!(session.stats().resent, 3);
}
