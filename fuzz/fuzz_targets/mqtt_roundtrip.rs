//! decode → encode → decode: whatever decodes re-encodes to bytes that decode to the same packet,
//! and the re-encoding is stable (encoding the second decode gives the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{Decoded, Limits, decode_with};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::mqtt_3_1_1();
    let Ok(Decoded::Complete { packet, .. }) = decode_with(data, &limits) else { return };
    let mut wire = vec![0u8; packet.encoded_len().expect("a decoded packet has a length")];
    let n = packet.encode_to_slice(&mut wire).expect("a decoded packet encodes");
    assert_eq!(n, wire.len());
    let Ok(Decoded::Complete { packet: again, len }) = decode_with(&wire, &limits) else {
        panic!("re-encoded packet does not decode: {packet:?} as {wire:02x?}");
    };
    assert_eq!(len, wire.len());
    assert_eq!(again, packet);
    let mut wire2 = Vec::new();
    again.encode(&mut wire2).expect("encodes");
    assert_eq!(wire2, wire);
});
