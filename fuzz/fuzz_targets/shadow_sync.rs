//! The shadow sync engine under arbitrary input: a saved record's JSON (parsing never panics;
//! a record that parses prints JSON that parses back to it), and a stream of cloud answers,
//! local changes, connects, losses and timeouts whose topics, payloads and local documents come
//! from the input. Nothing panics, and the engine answers only with actions on shadows it syncs.
#![no_main]

use iot_shadow::sync::{ShadowSync, SyncAction, SyncConfig, SyncRecord};
use iot_shadow::{ShadowKey, StoredShadow};
use libfuzzer_sys::fuzz_target;

const TOPICS: [&str; 8] = [
    "$aws/things/car-1/shadow/get/accepted",
    "$aws/things/car-1/shadow/get/rejected",
    "$aws/things/car-1/shadow/update/accepted",
    "$aws/things/car-1/shadow/update/rejected",
    "$aws/things/car-1/shadow/update/documents",
    "$aws/things/car-1/shadow/delete/accepted",
    "$aws/things/car-2/shadow/name/n/update/documents",
    "cars/car-1/telemetry",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(record) = SyncRecord::from_json(&text) {
        let again = SyncRecord::from_json(&record.to_json()).expect("its own JSON parses");
        assert_eq!(again, record);
    }
    let keys = [ShadowKey::classic("car-1"), ShadowKey::named("car-2", "n")];
    let mut sync = ShadowSync::new(SyncConfig::default(), Vec::new());
    for key in &keys {
        sync.add_shadow(key.clone());
    }
    let mut now = 1_000_000u64;
    // Pieces of the input: one op byte, then a payload up to the next 0xFF.
    for piece in data.split(|b| *b == 0xFF) {
        let Some((&op, rest)) = piece.split_first() else { continue };
        let payload = String::from_utf8_lossy(rest);
        let local = StoredShadow::from_json(&payload);
        let key = &keys[usize::from(op >> 7)];
        match op % 6 {
            0 | 1 => {
                let topic = TOPICS[usize::from(op >> 3) % TOPICS.len()];
                let _ = sync.cloud_message(topic, rest, local.as_ref(), now);
            }
            2 => sync.local_changed(key, local.as_ref(), now),
            3 => sync.cloud_connected(now),
            4 => sync.cloud_lost(),
            _ => {
                now += u64::from(op) * 997;
                sync.handle_timeout(now);
            }
        }
        while let Some(action) = sync.poll_action() {
            let acted_on = match &action {
                SyncAction::LocalUpdate { key, .. }
                | SyncAction::LocalDelete { key }
                | SyncAction::SaveRecord { key, .. } => Some(key),
                SyncAction::CloudPublish { .. } => None,
            };
            if let Some(acted_on) = acted_on {
                assert!(keys.contains(acted_on), "an action on a shadow not synced");
            }
            if let SyncAction::LocalUpdate { key, .. } | SyncAction::LocalDelete { key } = &action {
                sync.local_applied(key, local.as_ref());
            }
        }
        let _ = sync.conflicts().count();
        let _ = sync.rejections().count();
    }
});
