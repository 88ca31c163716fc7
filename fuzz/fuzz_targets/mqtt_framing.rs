//! `BytesMut` framing fed in random chunk sizes: the first byte seeds the chunk sizes, the rest is
//! the stream. The packets framed chunk by chunk must be exactly those the borrowed decoder finds in
//! the whole stream, up to the first error, which both must report alike.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_codec::{Decoded, Limits, decode_buf, decode_with};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let limits = if seed & 1 == 0 { Limits::mqtt_3_1_1() } else { Limits::aws_iot() };

    // Reference: the borrowed decoder over the whole stream.
    let mut expected = Vec::new();
    let mut expected_error = None;
    let mut pos = 0;
    while pos < stream.len() {
        match decode_with(&stream[pos..], &limits) {
            Ok(Decoded::Complete { packet, len }) => {
                let mut wire = Vec::new();
                packet.encode(&mut wire).expect("a decoded packet encodes");
                expected.push(wire);
                pos += len;
            }
            Ok(Decoded::Incomplete { .. }) => break,
            Err(e) => {
                expected_error = Some(e);
                break;
            }
        }
    }

    // The same stream in chunks of 1..=16 bytes, sizes drawn from the seed.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut got_error = None;
    let mut state = u32::from(seed) | 1;
    let mut at = 0;
    'feed: while at < stream.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let chunk = 1 + (state % 16) as usize;
        let end = (at + chunk).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        loop {
            match decode_buf(&mut buf, &limits) {
                Ok(Some(packet)) => {
                    let mut wire = Vec::new();
                    packet.encode(&mut wire).expect("a decoded packet encodes");
                    got.push(wire);
                }
                Ok(None) => break,
                Err(e) => {
                    got_error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(got, expected);
    assert_eq!(got_error, expected_error);
});
