//! The two profiles, `Limits::mqtt_3_1_1()` and `Limits::aws_iot()`, side by side: every AWS limit
//! is hit once, and the standard profile accepts the same input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mqtt_codec::{
    ConnectReturnCode, DecodeError, Decoded, Limits, PacketType, TopicError, decode_with,
};

fn publish(topic: &str, payload_len: usize, qos: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u16::try_from(topic.len()).unwrap().to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    if qos > 0 {
        body.extend_from_slice(&[0x00, 0x01]);
    }
    body.resize(body.len() + payload_len, b'x');
    frame(0x30 | qos << 1, &body)
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = u8::try_from(len % 128).unwrap();
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn subscribe(filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    for (filter, qos) in filters {
        body.extend_from_slice(&u16::try_from(filter.len()).unwrap().to_be_bytes());
        body.extend_from_slice(filter.as_bytes());
        body.push(*qos);
    }
    frame(0x82, &body)
}

fn connect(client_id: &str, will: Option<(&str, u8)>) -> Vec<u8> {
    let mut flags = 0x02;
    if let Some((_, qos)) = will {
        flags |= 0x04 | qos << 3;
    }
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3c];
    body.extend_from_slice(&u16::try_from(client_id.len()).unwrap().to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    if let Some((topic, _)) = will {
        body.extend_from_slice(&u16::try_from(topic.len()).unwrap().to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&[0x00, 0x01, b'!']);
    }
    frame(0x10, &body)
}

fn ok(bytes: &[u8], limits: &Limits) {
    match decode_with(bytes, limits) {
        Ok(Decoded::Complete { len, .. }) => assert_eq!(len, bytes.len()),
        other => panic!("expected a packet, got {other:?}"),
    }
}

fn refused(bytes: &[u8], limits: &Limits) -> DecodeError {
    decode_with(bytes, limits).expect_err("refused")
}

#[test]
fn qos2_publish() {
    let bytes = publish("a", 0, 2);
    ok(&bytes, &Limits::mqtt_3_1_1());
    assert_eq!(
        refused(&bytes, &Limits::aws_iot()),
        DecodeError::QoS2NotSupported {
            packet: PacketType::Publish
        }
    );
    // Known from the first byte: nothing else needs to arrive.
    assert_eq!(
        refused(&bytes[..1], &Limits::aws_iot()),
        DecodeError::QoS2NotSupported {
            packet: PacketType::Publish
        }
    );
}

#[test]
fn qos2_subscribe_is_refused_not_downgraded() {
    let bytes = subscribe(&[("a", 1), ("b", 2)]);
    ok(&bytes, &Limits::mqtt_3_1_1());
    assert_eq!(
        refused(&bytes, &Limits::aws_iot()),
        DecodeError::QoS2NotSupported {
            packet: PacketType::Subscribe
        }
    );
}

#[test]
fn qos2_will() {
    let bytes = connect("car", Some(("cars/car/will", 2)));
    ok(&bytes, &Limits::mqtt_3_1_1());
    assert_eq!(
        refused(&bytes, &Limits::aws_iot()),
        DecodeError::QoS2NotSupported {
            packet: PacketType::Connect
        }
    );
}

#[test]
fn topic_at_most_256_bytes() {
    let at = "t".repeat(256);
    let over = "t".repeat(257);
    ok(&publish(&at, 1, 0), &Limits::aws_iot());
    ok(&publish(&over, 1, 0), &Limits::mqtt_3_1_1());
    assert_eq!(
        refused(&publish(&over, 1, 0), &Limits::aws_iot()),
        DecodeError::InvalidTopicName {
            packet: PacketType::Publish,
            offset: 3,
            reason: TopicError::TooLong { len: 257, max: 256 }
        }
    );
    assert!(matches!(
        refused(&subscribe(&[(&over, 0)]), &Limits::aws_iot()),
        DecodeError::InvalidTopicFilter {
            reason: TopicError::TooLong { len: 257, max: 256 },
            ..
        }
    ));
    assert!(matches!(
        refused(&connect("c", Some((&over, 0))), &Limits::aws_iot()),
        DecodeError::InvalidTopicName {
            packet: PacketType::Connect,
            ..
        }
    ));
}

#[test]
fn at_most_seven_slashes() {
    ok(&publish("1/2/3/4/5/6/7/8", 0, 0), &Limits::aws_iot());
    ok(&publish("1/2/3/4/5/6/7/8/9", 0, 0), &Limits::mqtt_3_1_1());
    assert!(matches!(
        refused(&publish("1/2/3/4/5/6/7/8/9", 0, 0), &Limits::aws_iot()),
        DecodeError::InvalidTopicName {
            reason: TopicError::TooManySlashes { count: 8, max: 7 },
            ..
        }
    ));
    assert!(matches!(
        refused(&subscribe(&[("1/2/3/4/5/6/7/8/#", 0)]), &Limits::aws_iot()),
        DecodeError::InvalidTopicFilter {
            reason: TopicError::TooManySlashes { count: 8, max: 7 },
            ..
        }
    ));
    // The prefixes AWS exempts: Basic Ingest and shared subscriptions.
    ok(
        &publish("$aws/rules/r/1/2/3/4/5/6/7/8", 0, 0),
        &Limits::aws_iot(),
    );
    ok(
        &subscribe(&[("$share/g/1/2/3/4/5/6/7/#", 1)]),
        &Limits::aws_iot(),
    );
}

#[test]
fn payload_at_most_128_kib() {
    let at = publish("a", 128 * 1024, 1);
    let over = publish("a", 128 * 1024 + 1, 1);
    ok(&at, &Limits::aws_iot());
    ok(&over, &Limits::mqtt_3_1_1());
    assert_eq!(
        refused(&over, &Limits::aws_iot()),
        DecodeError::PayloadTooLarge {
            packet: PacketType::Publish,
            len: 131073,
            max: 131072
        }
    );
}

#[test]
fn client_id_at_most_128_bytes() {
    let at = "c".repeat(128);
    let over = "c".repeat(129);
    ok(&connect(&at, None), &Limits::aws_iot());
    ok(&connect(&over, None), &Limits::mqtt_3_1_1());
    let e = refused(&connect(&over, None), &Limits::aws_iot());
    assert_eq!(e, DecodeError::ClientIdTooLong { len: 129, max: 128 });
    assert_eq!(
        e.connack_code(),
        Some(ConnectReturnCode::IdentifierRejected)
    );
}

#[test]
fn at_most_eight_filters_per_subscribe() {
    let eight: Vec<(&str, u8)> = ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .map(|f| (*f, 1))
        .collect();
    let mut nine = eight.clone();
    nine.push(("i", 1));
    ok(&subscribe(&eight), &Limits::aws_iot());
    ok(&subscribe(&nine), &Limits::mqtt_3_1_1());
    assert_eq!(
        refused(&subscribe(&nine), &Limits::aws_iot()),
        DecodeError::TooManyTopicFilters { count: 9, max: 8 }
    );
}

#[test]
fn profiles_agree_on_plain_traffic() {
    for bytes in [
        publish("cars/1/telemetry", 100, 1),
        subscribe(&[
            ("cars/+/telemetry", 1),
            ("$aws/things/car1/shadow/update/delta", 0),
        ]),
        connect("car-1", Some(("cars/car-1/status", 1))),
    ] {
        ok(&bytes, &Limits::mqtt_3_1_1());
        ok(&bytes, &Limits::aws_iot());
    }
}
