//! Every rejection rule of the decoder, one test each, plus the regression inputs found crashing or
//! misparsed in other Rust MQTT codecs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mqtt_codec::{
    DecodeError, Decoded, Field, Limits, PacketType, TopicError, decode, decode_buf, decode_with,
};

fn err(bytes: &[u8]) -> DecodeError {
    match decode(bytes) {
        Err(e) => e,
        Ok(other) => panic!("expected an error for {bytes:02x?}, got {other:?}"),
    }
}

/// The same input through the shared (`BytesMut`) face must give the same error.
fn err_both(bytes: &[u8]) -> DecodeError {
    let borrowed = err(bytes);
    let mut buf = bytes::BytesMut::from(bytes);
    assert_eq!(decode_buf(&mut buf, &Limits::mqtt_3_1_1()), Err(borrowed));
    borrowed
}

fn connect(flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3c];
    body.extend_from_slice(rest);
    let mut packet = vec![0x10, u8::try_from(body.len()).unwrap()];
    packet.extend(body);
    packet
}

// ---- regression inputs (issue 2) ----

#[test]
fn regression_topic_length_beyond_frame() {
    // PUBLISH, remaining length 2, topic length 5: the topic would run into the next packet.
    let bytes = [
        0x30, 0x02, 0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xc0, 0x00, 0x00,
    ];
    assert_eq!(
        err_both(&bytes),
        DecodeError::Truncated {
            packet: PacketType::Publish,
            field: Field::TopicName,
            offset: 2,
            needed: 7,
            available: 2
        }
    );
}

#[test]
fn regression_five_byte_remaining_length() {
    assert_eq!(
        err_both(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        DecodeError::RemainingLengthTooLong
    );
    // Known from the fourth length byte alone: no need to wait for a fifth.
    assert_eq!(
        err(&[0x30, 0xff, 0xff, 0xff, 0xff]),
        DecodeError::RemainingLengthTooLong
    );
}

#[test]
fn regression_subscribe_options_byte_missing() {
    let bytes = [
        0x82, 0x07, 0x00, 0x01, 0x00, 0x03, 0x61, 0x2f, 0x62, 0xc0, 0x00,
    ];
    assert_eq!(
        err_both(&bytes),
        DecodeError::Truncated {
            packet: PacketType::Subscribe,
            field: Field::SubscriptionOptions,
            offset: 9,
            needed: 1,
            available: 0
        }
    );
}

#[test]
fn regression_pingreq_with_length_2() {
    assert_eq!(
        err_both(&[0xc0, 0x02, 0xd0, 0x00]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::PingReq,
            len: 2,
            expected: 0
        }
    );
    // Refused from the fixed header alone, before the body arrives.
    assert_eq!(
        err(&[0xc0, 0x02]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::PingReq,
            len: 2,
            expected: 0
        }
    );
}

#[test]
fn regression_qos1_publish_with_packet_id_0() {
    assert_eq!(
        err_both(&[0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00]),
        DecodeError::ZeroPacketId {
            packet: PacketType::Publish
        }
    );
}

#[test]
fn regression_connect_client_id_past_frame_is_error_not_need_more() {
    // Client id length 0xff, 2 bytes of it in the frame, and plenty of unrelated bytes after.
    let mut bytes = connect(0x02, &[0x00, 0xff, b'a', b'b']);
    bytes.extend_from_slice(&[0u8; 300]);
    assert_eq!(
        err_both(&bytes),
        DecodeError::Truncated {
            packet: PacketType::Connect,
            field: Field::ClientId,
            offset: 12,
            needed: 257,
            available: 4
        }
    );
}

#[test]
fn regression_subscribe_with_zero_filters() {
    assert_eq!(
        err_both(&[0x82, 0x02, 0x00, 0x01]),
        DecodeError::NoTopicFilters {
            packet: PacketType::Subscribe
        }
    );
}

#[test]
fn regression_publish_to_wildcard_topic() {
    assert_eq!(
        err_both(&[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'#']),
        DecodeError::InvalidTopicName {
            packet: PacketType::Publish,
            offset: 2,
            reason: TopicError::WildcardInName
        }
    );
}

// ---- framing ----

#[test]
fn incomplete_says_how_many_bytes_are_missing() {
    assert_eq!(decode(&[]), Ok(Decoded::Incomplete { needed: 2 }));
    assert_eq!(decode(&[0x30]), Ok(Decoded::Incomplete { needed: 1 }));
    assert_eq!(decode(&[0x30, 0x80]), Ok(Decoded::Incomplete { needed: 1 }));
    assert_eq!(
        decode(&[0x30, 0x05, 0x00]),
        Ok(Decoded::Incomplete { needed: 4 })
    );
    assert_eq!(
        decode(&[0x30, 0x80, 0x01]),
        Ok(Decoded::Incomplete { needed: 128 })
    );
}

#[test]
fn oversized_packet_refused_from_fixed_header() {
    let mut limits = Limits::mqtt_3_1_1();
    limits.max_packet_size = 1000;
    // Remaining length 16383: only the three header bytes are present.
    assert_eq!(
        decode_with(&[0x30, 0xff, 0x7f], &limits),
        Err(DecodeError::PacketTooLarge {
            packet: PacketType::Publish,
            size: 16386,
            max: 1000
        })
    );
    let mut buf = bytes::BytesMut::from(&[0x30, 0xff, 0x7f][..]);
    assert_eq!(
        decode_buf(&mut buf, &limits),
        Err(DecodeError::PacketTooLarge {
            packet: PacketType::Publish,
            size: 16386,
            max: 1000
        })
    );
    // The AWS profile bounds the packet by its 128 KiB payload quota.
    let aws_max = Limits::aws_iot().max_packet_size;
    assert!(aws_max < 256 * 1024);
    assert!(matches!(
        decode_with(&[0x30, 0x80, 0x80, 0x10], &Limits::aws_iot()),
        Err(DecodeError::PacketTooLarge { size: 262148, .. })
    ));
}

#[test]
fn reserved_packet_types() {
    assert_eq!(err(&[0x00, 0x00]), DecodeError::ReservedPacketType(0));
    assert_eq!(err(&[0xf0, 0x00]), DecodeError::ReservedPacketType(15));
}

// ---- fixed header flags ----

#[test]
fn wrong_reserved_flag_bits() {
    for (bytes, packet, flags) in [
        (&[0x83, 0x02, 0x00, 0x01][..], PacketType::Subscribe, 0b0011),
        (
            &[0xa0, 0x02, 0x00, 0x01][..],
            PacketType::Unsubscribe,
            0b0000,
        ),
        (&[0x60, 0x02, 0x00, 0x01][..], PacketType::PubRel, 0b0000),
        (&[0x41, 0x02, 0x00, 0x01][..], PacketType::PubAck, 0b0001),
        (&[0x11, 0x00][..], PacketType::Connect, 0b0001),
        (&[0xc8, 0x00][..], PacketType::PingReq, 0b1000),
        (&[0xe2, 0x00][..], PacketType::Disconnect, 0b0010),
    ] {
        assert_eq!(
            err_both(bytes),
            DecodeError::InvalidFlags { packet, flags },
            "{bytes:02x?}"
        );
    }
}

#[test]
fn publish_qos_3() {
    assert_eq!(
        err_both(&[0x36, 0x03, 0x00, 0x01, b'a']),
        DecodeError::InvalidQoS {
            packet: PacketType::Publish
        }
    );
}

#[test]
fn publish_qos_0_with_dup() {
    assert_eq!(
        err_both(&[0x38, 0x03, 0x00, 0x01, b'a']),
        DecodeError::InvalidFlags {
            packet: PacketType::Publish,
            flags: 0b1000
        }
    );
}

#[test]
fn zero_packet_ids() {
    for (bytes, packet) in [
        (&[0x40, 0x02, 0x00, 0x00][..], PacketType::PubAck),
        (&[0x50, 0x02, 0x00, 0x00][..], PacketType::PubRec),
        (&[0x62, 0x02, 0x00, 0x00][..], PacketType::PubRel),
        (&[0x70, 0x02, 0x00, 0x00][..], PacketType::PubComp),
        (&[0xb0, 0x02, 0x00, 0x00][..], PacketType::UnsubAck),
        (
            &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00][..],
            PacketType::Subscribe,
        ),
        (&[0x90, 0x03, 0x00, 0x00, 0x00][..], PacketType::SubAck),
        (
            &[0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'][..],
            PacketType::Unsubscribe,
        ),
    ] {
        assert_eq!(
            err_both(bytes),
            DecodeError::ZeroPacketId { packet },
            "{bytes:02x?}"
        );
    }
}

#[test]
fn fixed_size_packets_with_wrong_length() {
    assert_eq!(
        err(&[0x40, 0x03, 0x00, 0x01, 0x00]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::PubAck,
            len: 3,
            expected: 2
        }
    );
    assert_eq!(
        err(&[0x20, 0x01, 0x00]),
        DecodeError::InvalidRemainingLength {
            packet: PacketType::ConnAck,
            len: 1,
            expected: 2
        }
    );
    for first in [0xc0, 0xd0, 0xe0] {
        assert!(matches!(
            err(&[first, 0x01, 0x00]),
            DecodeError::InvalidRemainingLength {
                len: 1,
                expected: 0,
                ..
            }
        ));
    }
}

// ---- SUBSCRIBE / UNSUBSCRIBE / SUBACK ----

#[test]
fn unsubscribe_with_zero_filters() {
    assert_eq!(
        err_both(&[0xa2, 0x02, 0x00, 0x01]),
        DecodeError::NoTopicFilters {
            packet: PacketType::Unsubscribe
        }
    );
}

#[test]
fn subscribe_requested_qos_above_2() {
    assert_eq!(
        err_both(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03]),
        DecodeError::InvalidSubscriptionOptions {
            offset: 7,
            byte: 0x03
        }
    );
}

#[test]
fn subscribe_reserved_option_bits() {
    assert_eq!(
        err_both(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x05]),
        DecodeError::InvalidSubscriptionOptions {
            offset: 7,
            byte: 0x05
        }
    );
}

fn subscribe_one(filter: &str) -> Vec<u8> {
    let mut bytes = vec![
        0x82,
        u8::try_from(filter.len() + 5).unwrap(),
        0x00,
        0x01,
        0x00,
    ];
    bytes.push(u8::try_from(filter.len()).unwrap());
    bytes.extend_from_slice(filter.as_bytes());
    bytes.push(0x00);
    bytes
}

#[test]
fn malformed_filters() {
    for (filter, reason) in [
        ("a/#/b", TopicError::MisplacedMultiLevelWildcard),
        ("a+", TopicError::MisplacedSingleLevelWildcard),
        ("#a", TopicError::MisplacedMultiLevelWildcard),
        ("", TopicError::Empty),
    ] {
        assert_eq!(
            err_both(&subscribe_one(filter)),
            DecodeError::InvalidTopicFilter {
                packet: PacketType::Subscribe,
                offset: 4,
                reason
            },
            "{filter}"
        );
    }
    // The same rules hold in UNSUBSCRIBE.
    assert_eq!(
        err_both(&[0xa2, 0x07, 0x00, 0x01, 0x00, 0x03, b'a', b'+', b'b']),
        DecodeError::InvalidTopicFilter {
            packet: PacketType::Unsubscribe,
            offset: 4,
            reason: TopicError::MisplacedSingleLevelWildcard
        }
    );
}

#[test]
fn suback_codes() {
    assert_eq!(
        err_both(&[0x90, 0x02, 0x00, 0x01]),
        DecodeError::NoReturnCodes
    );
    assert_eq!(
        err_both(&[0x90, 0x04, 0x00, 0x01, 0x01, 0x03]),
        DecodeError::InvalidSubAckReturnCode {
            offset: 5,
            code: 0x03
        }
    );
}

// ---- strings ----

#[test]
fn invalid_utf8_in_topic() {
    assert_eq!(
        err_both(&[0x30, 0x04, 0x00, 0x02, 0xc3, 0x28]),
        DecodeError::InvalidUtf8 {
            packet: PacketType::Publish,
            field: Field::TopicName,
            offset: 2
        }
    );
    // UTF-16 surrogate halves encoded in UTF-8 (U+D800) are not well-formed UTF-8 either.
    assert_eq!(
        err_both(&[0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80]),
        DecodeError::InvalidUtf8 {
            packet: PacketType::Publish,
            field: Field::TopicName,
            offset: 2
        }
    );
}

#[test]
fn null_character_in_any_string() {
    assert_eq!(
        err_both(&[0x30, 0x05, 0x00, 0x03, b'a', 0x00, b'b']),
        DecodeError::NullCharacter {
            packet: PacketType::Publish,
            field: Field::TopicName,
            offset: 2
        }
    );
    assert_eq!(
        err_both(&connect(0x02, &[0x00, 0x02, b'a', 0x00])),
        DecodeError::NullCharacter {
            packet: PacketType::Connect,
            field: Field::ClientId,
            offset: 12
        }
    );
    // User name (flag 0x80) with U+0000.
    assert_eq!(
        err_both(&connect(0x82, &[0x00, 0x01, b'a', 0x00, 0x01, 0x00])),
        DecodeError::NullCharacter {
            packet: PacketType::Connect,
            field: Field::Username,
            offset: 15
        }
    );
    assert_eq!(
        err_both(&[0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00]),
        DecodeError::NullCharacter {
            packet: PacketType::Unsubscribe,
            field: Field::TopicFilter,
            offset: 4
        }
    );
}

// ---- CONNECT ----

#[test]
fn connect_protocol_name_other_than_mqtt() {
    let mut bytes = connect(0x02, &[0x00, 0x01, b'a']);
    bytes[6] = b'X';
    assert_eq!(err_both(&bytes), DecodeError::InvalidProtocolName);
}

#[test]
fn connect_protocol_level_other_than_4() {
    let mut bytes = connect(0x02, &[0x00, 0x01, b'a']);
    bytes[8] = 5;
    let e = err_both(&bytes);
    assert_eq!(e, DecodeError::UnsupportedProtocolLevel(5));
    assert_eq!(
        e.connack_code(),
        Some(mqtt_codec::ConnectReturnCode::UnacceptableProtocolVersion)
    );
    // MQTT 3.1 ("MQIsdp", level 3) is answered the same way: CONNACK 0x01.
    let mut v31 = vec![0x10, 0x0f, 0x00, 0x06];
    v31.extend_from_slice(b"MQIsdp");
    v31.extend_from_slice(&[0x03, 0x02, 0x00, 0x3c, 0x00, 0x01, b'a']);
    assert_eq!(err_both(&v31), DecodeError::UnsupportedProtocolLevel(3));
}

#[test]
fn connect_reserved_flag() {
    assert_eq!(
        err_both(&connect(0x03, &[0x00, 0x01, b'a'])),
        DecodeError::ConnectReservedFlag
    );
}

#[test]
fn connect_will_flags_inconsistent() {
    // Will QoS 1 without the will flag.
    assert_eq!(
        err_both(&connect(0x0a, &[0x00, 0x01, b'a'])),
        DecodeError::InconsistentWillFlags
    );
    // Will retain without the will flag.
    assert_eq!(
        err_both(&connect(0x22, &[0x00, 0x01, b'a'])),
        DecodeError::InconsistentWillFlags
    );
    // Will QoS 3.
    assert_eq!(
        err_both(&connect(0x1e, &[0x00, 0x01, b'a'])),
        DecodeError::InvalidQoS {
            packet: PacketType::Connect
        }
    );
}

#[test]
fn connect_password_without_username() {
    assert_eq!(
        err_both(&connect(0x42, &[0x00, 0x01, b'a', 0x00, 0x00])),
        DecodeError::PasswordWithoutUsername
    );
}

#[test]
fn connect_will_topic_with_wildcard() {
    let rest = [0x00, 0x01, b'a', 0x00, 0x01, b'#', 0x00, 0x00];
    assert_eq!(
        err_both(&connect(0x06, &rest)),
        DecodeError::InvalidTopicName {
            packet: PacketType::Connect,
            offset: 15,
            reason: TopicError::WildcardInName
        }
    );
}

#[test]
fn trailing_bytes_inside_a_frame() {
    assert_eq!(
        err_both(&connect(0x02, &[0x00, 0x01, b'a', 0xff])),
        DecodeError::TrailingBytes {
            packet: PacketType::Connect,
            offset: 15,
            count: 1
        }
    );
}

#[test]
fn connack_invalid_fields() {
    assert_eq!(
        err_both(&[0x20, 0x02, 0x02, 0x00]),
        DecodeError::InvalidConnAckFlags(0x02)
    );
    assert_eq!(
        err_both(&[0x20, 0x02, 0x00, 0x06]),
        DecodeError::InvalidConnectReturnCode(6)
    );
}

#[test]
fn string_longer_than_its_frame_in_every_string_field() {
    // Will topic declares 10 bytes, 1 present.
    let e = err_both(&connect(0x06, &[0x00, 0x01, b'a', 0x00, 0x0a, b't']));
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                field: Field::WillTopic,
                needed: 12,
                available: 3,
                ..
            }
        ),
        "{e:?}"
    );
    // Password declares 5 bytes, none present.
    let e = err_both(&connect(
        0xc2,
        &[0x00, 0x01, b'a', 0x00, 0x01, b'u', 0x00, 0x05],
    ));
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                field: Field::Password,
                needed: 7,
                available: 2,
                ..
            }
        ),
        "{e:?}"
    );
    // A packet id cut short.
    let e = err_both(&[0x32, 0x04, 0x00, 0x01, b'a', 0x00]);
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                field: Field::PacketId,
                needed: 2,
                available: 1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn errors_read_well() {
    let e = err(&[0x30, 0x02, 0x00, 0x05, 0x68, 0x65]);
    assert_eq!(
        e.to_string(),
        "PUBLISH: topic name at offset 2 needs 7 bytes, the frame has 2"
    );
    assert_eq!(
        err(&[0x83, 0x02, 0x00, 0x01]).to_string(),
        "SUBSCRIBE: fixed header flags 0b0011 are not allowed"
    );
}
