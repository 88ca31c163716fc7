//! Property tests: every packet type survives encode then decode in both decode faces, any byte
//! string decodes without panicking, and a stream cut into random chunks frames back into the
//! same packets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Decoded, Limits, Packet, PacketId, PubAck, PubComp,
    PubRec, PubRel, Publish, QoS, QosPid, ReturnCodes, SubAck, Subscribe, SubscribeFilters,
    SubscribeReturnCode, UnsubAck, Unsubscribe, UnsubscribeFilters, Will, decode, decode_buf,
    decode_with,
};
use proptest::prelude::*;

type OwnedPacket = Packet<String, Bytes>;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn pid() -> impl Strategy<Value = PacketId> {
    (1u16..=u16::MAX).prop_map(|v| PacketId::new(v).unwrap())
}

fn topic_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_/é€$-]{1,40}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![Just("+".to_string()), "[a-z0-9é]{0,6}"], 1..6),
        any::<bool>(),
    )
        .prop_map(|(levels, hash)| {
            let mut filter = levels.join("/");
            if hash {
                filter.push_str(if filter.is_empty() { "#" } else { "/#" });
            }
            if filter.is_empty() {
                filter.push('x');
            }
            filter
        })
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..600).prop_map(Bytes::from)
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,30}"
}

fn connect() -> impl Strategy<Value = OwnedPacket> {
    (
        text(),
        any::<bool>(),
        any::<u16>(),
        prop::option::of((topic_name(), payload(), qos(), any::<bool>())),
        prop::option::of((text(), prop::option::of(payload()))),
    )
        .prop_map(|(client_id, clean_session, keep_alive, will, creds)| {
            let (username, password) = match creds {
                Some((u, p)) => (Some(u), p),
                None => (None, None),
            };
            Packet::Connect(Connect {
                client_id,
                clean_session,
                keep_alive,
                will: will.map(|(topic, payload, qos, retain)| Will {
                    topic,
                    payload,
                    qos,
                    retain,
                }),
                username,
                password,
            })
        })
}

fn publish() -> impl Strategy<Value = OwnedPacket> {
    (
        qos(),
        pid(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        payload(),
    )
        .prop_map(|(qos, pid, dup, retain, topic, payload)| {
            let qos_pid = QosPid::from_parts(qos, pid);
            Packet::Publish(Publish {
                dup: dup && qos != QoS::AtMostOnce,
                qos_pid,
                retain,
                topic,
                payload,
            })
        })
}

fn return_code() -> impl Strategy<Value = SubscribeReturnCode> {
    prop_oneof![
        qos().prop_map(SubscribeReturnCode::Success),
        Just(SubscribeReturnCode::Failure)
    ]
}

fn packet() -> impl Strategy<Value = OwnedPacket> {
    prop_oneof![
        connect(),
        (any::<bool>(), 0u8..=5).prop_map(|(session_present, code)| Packet::ConnAck(ConnAck {
            session_present,
            code: ConnectReturnCode::from_u8(code).unwrap(),
        })),
        publish(),
        pid().prop_map(|p| Packet::PubAck(PubAck::new(p))),
        pid().prop_map(|p| Packet::PubRec(PubRec::new(p))),
        pid().prop_map(|p| Packet::PubRel(PubRel::new(p))),
        pid().prop_map(|p| Packet::PubComp(PubComp::new(p))),
        (pid(), prop::collection::vec((topic_filter(), qos()), 1..6)).prop_map(
            |(packet_id, list)| {
                Packet::Subscribe(Subscribe {
                    packet_id,
                    filters: SubscribeFilters::from_list(&list).unwrap(),
                })
            }
        ),
        (pid(), prop::collection::vec(return_code(), 1..6)).prop_map(|(packet_id, codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                return_codes: ReturnCodes::from_codes(&codes).unwrap(),
            })
        }),
        (pid(), prop::collection::vec(topic_filter(), 1..6)).prop_map(|(packet_id, list)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters: UnsubscribeFilters::from_list(&list).unwrap(),
            })
        }),
        pid().prop_map(|p| Packet::UnsubAck(UnsubAck::new(p))),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

fn encode(packet: &OwnedPacket) -> Vec<u8> {
    let mut out = Vec::new();
    let n = packet.encode(&mut out).unwrap();
    assert_eq!(n, out.len());
    assert_eq!(packet.encoded_len().unwrap(), n);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_borrowed(packet in packet()) {
        let wire = encode(&packet);
        let decoded = decode(&wire).unwrap();
        prop_assert_eq!(decoded, Decoded::Complete { packet: packet.as_borrowed(), len: wire.len() });
    }

    #[test]
    fn encode_then_decode_shared(packet in packet()) {
        let wire = encode(&packet);
        let mut buf = BytesMut::from(&wire[..]);
        let shared = decode_buf(&mut buf, &Limits::mqtt_3_1_1()).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(shared.as_borrowed(), packet.as_borrowed());
    }

    #[test]
    fn slice_and_bufmut_encodings_agree(packet in packet()) {
        let wire = encode(&packet);
        let mut slice = vec![0u8; wire.len()];
        prop_assert_eq!(packet.encode_to_slice(&mut slice), Ok(wire.len()));
        prop_assert_eq!(&slice, &wire);
        // One byte too few is refused, never a partial write presented as success.
        if !wire.is_empty() {
            let mut short = vec![0u8; wire.len() - 1];
            prop_assert!(packet.encode_to_slice(&mut short).is_err());
        }
    }

    #[test]
    fn publish_header_plus_payload_is_the_packet(packet in publish()) {
        let Packet::Publish(p) = &packet else { unreachable!() };
        let wire = encode(&packet);
        let mut header = BytesMut::new();
        let n = p.encode_header(&mut header).unwrap();
        prop_assert_eq!(n, p.header_len().unwrap());
        header.extend_from_slice(&p.payload);
        prop_assert_eq!(&header[..], &wire[..]);
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let _ = decode_with(&bytes, &Limits::aws_iot());
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode_buf(&mut buf, &Limits::mqtt_3_1_1()) {}
    }

    #[test]
    fn mutated_packets_never_panic_and_reencode(packet in packet(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut wire = encode(&packet);
        let i = at.index(wire.len());
        wire[i] = byte;
        if let Ok(Decoded::Complete { packet, .. }) = decode(&wire) {
            // Whatever decodes re-encodes and decodes to the same packet.
            let mut again = Vec::new();
            packet.encode(&mut again).unwrap();
            prop_assert_eq!(decode(&again).unwrap(), Decoded::Complete { packet, len: again.len() });
        }
    }

    #[test]
    fn stream_in_random_chunks(packets in prop::collection::vec(packet(), 1..8), cuts in prop::collection::vec(1usize..64, 1..64)) {
        let stream: Vec<u8> = packets.iter().flat_map(encode).collect();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut cut = cuts.iter().cycle();
        while pos < stream.len() {
            let end = (pos + cut.next().unwrap()).min(stream.len());
            buf.extend_from_slice(&stream[pos..end]);
            pos = end;
            while let Some(p) = decode_buf(&mut buf, &Limits::mqtt_3_1_1()).unwrap() {
                out.push(p);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out.len(), packets.len());
        for (got, want) in out.iter().zip(&packets) {
            prop_assert_eq!(got.as_borrowed(), want.as_borrowed());
        }
    }
}

#[test]
fn shared_fields_are_slices_of_the_frame_not_copies() {
    let packet: OwnedPacket = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(PacketId::new(9).unwrap()),
        retain: true,
        topic: "cars/1/gps".into(),
        payload: Bytes::from_static(&[7u8; 1024]),
    });
    let wire = encode(&packet);
    let mut buf = BytesMut::from(&wire[..]);
    let base = buf.as_ptr() as usize;
    let Some(Packet::Publish(p)) = decode_buf(&mut buf, &Limits::aws_iot()).unwrap() else {
        panic!("a PUBLISH")
    };
    // Topic starts after the 3-byte fixed header and 2-byte length; payload after the packet id.
    assert_eq!(p.topic.as_bytes().as_ptr() as usize, base + 5);
    assert_eq!(p.payload.as_ptr() as usize, base + 5 + 10 + 2);
}

#[test]
fn encode_errors() {
    let long = "x".repeat(70_000);
    let packet: Packet<&str, &[u8]> = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: &long,
        payload: &[],
    });
    assert_eq!(
        packet.encoded_len(),
        Err(mqtt_codec::EncodeError::FieldTooLong {
            field: mqtt_codec::Field::TopicName,
            len: 70_000
        })
    );
    assert!(SubscribeFilters::from_list(&[("a/#/b", QoS::AtMostOnce)]).is_err());
    assert!(UnsubscribeFilters::from_list::<&str>(&[]).is_err());
    assert!(ReturnCodes::from_codes(&[]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The decoder's one-pass topic check agrees with the public `validate_topic_name`.
    #[test]
    fn decoder_topic_check_agrees_with_validate_topic_name(
        topic in "(\\$aws/rules/r/|\\$aws/things/|\\$share/g/)?[a-z/+#é\u{0}$]{0,12}",
        aws in any::<bool>(),
    ) {
        let limits = if aws { Limits::aws_iot() } else {
            let mut l = Limits::mqtt_3_1_1();
            l.max_topic_slashes = 3;
            l.max_topic_len = 10;
            l
        };
        let mut wire = vec![0x30, 0, 0, 0];
        wire[3] = u8::try_from(topic.len()).unwrap();
        wire.extend_from_slice(topic.as_bytes());
        wire[1] = u8::try_from(wire.len() - 2).unwrap();
        let expected = mqtt_codec::validate_topic_name(&topic, &limits);
        match decode_with(&wire, &limits) {
            Ok(_) => prop_assert_eq!(expected, Ok(())),
            Err(mqtt_codec::DecodeError::InvalidTopicName { reason, .. }) => prop_assert_eq!(expected, Err(reason)),
            Err(mqtt_codec::DecodeError::NullCharacter { .. }) => {
                prop_assert!(topic.contains('\0'));
                prop_assert!(expected.is_err());
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
