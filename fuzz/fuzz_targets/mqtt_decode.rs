//! Borrowed decode of arbitrary bytes under both profiles: never panics, and a decoded packet
//! never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{Decoded, Limits, decode_with};

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::mqtt_3_1_1(), Limits::aws_iot()] {
        match decode_with(data, &limits) {
            Ok(Decoded::Complete { len, .. }) => assert!(len <= data.len()),
            Ok(Decoded::Incomplete { needed }) => assert!(needed > 0),
            Err(e) => {
                // Every error renders a message.
                let _ = e.to_string();
            }
        }
    }
});
