//! A device shadow fed arbitrary messages and calls: the input, split at 0xff bytes, is a sequence
//! of pieces whose first byte picks what happens (a message on one of the shadow's topics, a
//! report, a reconnect, time passing) and whose rest is the payload. Nothing panics, the pending
//! requests stay within their bound, every request is JSON with a token of at most 64 bytes, and
//! a deadline once handled is not due again.
#![no_main]

use iot_shadow::{DeviceShadow, ShadowEvent, ShadowKey, ShadowRequest, VersionPolicy};
use libfuzzer_sys::fuzz_target;

fn check(request: &ShadowRequest) {
    assert!(request.client_token.len() <= 64);
    let doc: serde_json::Value = serde_json::from_str(&request.payload).expect("requests are JSON");
    assert_eq!(doc["clientToken"], serde_json::json!(request.client_token));
}

fuzz_target!(|data: &[u8]| {
    let policy = match data.first() {
        Some(b) if b % 2 == 1 => VersionPolicy::Expect,
        _ => VersionPolicy::Omit,
    };
    let mut device = DeviceShadow::new(ShadowKey::named("fuzz", "s"), "device")
        .expect("a valid key and prefix")
        .with_max_pending(4)
        .with_answer_timeout(1_000)
        .with_version_policy(policy);
    let topics = device.subscriptions();
    let mut now = 0u64;
    for piece in data.split(|&b| b == 0xff) {
        let Some((&choice, payload)) = piece.split_first() else {
            continue;
        };
        now += u64::from(choice % 8) * 300;
        match choice % 16 {
            0..=9 => {
                let topic = &topics[usize::from(choice) % topics.len()];
                if let Ok(events) = device.handle_message(topic, payload, now) {
                    for event in events {
                        if let ShadowEvent::Publish(request) = event {
                            check(&request);
                        }
                    }
                }
            }
            10 | 11 => {
                if let Ok(serde_json::Value::Object(changes)) =
                    serde_json::from_slice::<serde_json::Value>(payload)
                {
                    check(&device.report(&changes, now));
                }
            }
            12 => device.on_connected(now).iter().for_each(check),
            _ => {
                if let Some(deadline) = device.poll_timeout() {
                    let at = deadline.max(now);
                    now = at;
                    device.handle_timeout(at).iter().for_each(check);
                    assert!(device.poll_timeout().is_none_or(|next| next > at));
                }
            }
        }
        assert!(device.pending_requests() <= 4);
    }
});
