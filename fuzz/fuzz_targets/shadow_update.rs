//! Random shadow requests: the input, split at 0xff bytes, is a sequence of update payloads (and a
//! get and a delete when the piece starts with 'g' or 'd') against one shadow. Nothing panics,
//! every answer is valid JSON on the right topic, and the version counts accepted updates.
#![no_main]

use iot_shadow::{MemoryShadowStore, ShadowService};
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "$aws/things/fuzz/shadow/name/s";

fuzz_target!(|data: &[u8]| {
    let mut shadows = ShadowService::new(MemoryShadowStore::default());
    let mut version = 0u64;
    for (i, piece) in data.split(|&b| b == 0xff).enumerate() {
        let now = 1_000 * i as u64;
        let (op, payload) = match piece.first() {
            Some(b'g') => ("get", &piece[1..]),
            Some(b'd') => ("delete", &piece[1..]),
            _ => ("update", piece),
        };
        let out = shadows
            .handle_publish(&format!("{PREFIX}/{op}"), payload, now)
            .expect("a shadow request topic");
        assert!(!out.is_empty());
        for message in &out {
            assert!(message.topic.starts_with(&format!("{PREFIX}/{op}/")));
            let doc: serde_json::Value =
                serde_json::from_str(&message.payload).expect("answers are JSON");
            if message.topic.ends_with("/update/accepted") {
                version += 1;
                assert_eq!(doc["version"], serde_json::json!(version));
            }
        }
    }
});
