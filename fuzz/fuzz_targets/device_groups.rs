//! Greengrass client device auth from arbitrary input: a selection rule as text (parsing never
//! panics; a rule that parses prints a canonical form that parses back to a rule matching the
//! same things), and a `deviceGroups` document as JSON (parsing never panics; a valid one
//! answers connect, publish and subscribe questions for things and topics from the input).
#![no_main]

use iot_auth::client_device::{ClientDeviceRequest, DeviceGroups, SelectionRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split_whitespace().take(4).collect();
    if let Ok(rule) = SelectionRule::parse(&text) {
        let again = SelectionRule::parse(&rule.to_string()).expect("the canonical form parses");
        for thing in words.iter().copied().chain(["car-1", "", "thing"]) {
            assert_eq!(rule.matches(thing), again.matches(thing));
        }
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let Ok(groups) = DeviceGroups::from_json(&json) else {
        return;
    };
    for thing in words.iter().copied().chain(["car-1"]) {
        for topic in words.iter().copied().chain(["cars/car-1/telemetry", "#"]) {
            let _ = groups.authorize(thing, &ClientDeviceRequest::Connect { client_id: thing });
            let _ = groups.authorize(thing, &ClientDeviceRequest::Publish { topic });
            let _ = groups.authorize(thing, &ClientDeviceRequest::Subscribe { filter: topic });
        }
    }
});
