//! AWS's documented Device Shadow request/response pairs (spec/aws-iot.md, from AWS's Device Shadow
//! documentation), reproduced byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use iot_shadow::{MemoryShadowStore, ShadowKey, ShadowService, ShadowStore, StoredShadow};
use serde_json::json;

const PREFIX: &str = "$aws/things/SmartLamp/shadow/name/simShadow1";

fn ms(seconds: u64) -> u64 {
    seconds * 1000
}

fn one(out: Option<Vec<iot_shadow::ShadowMessage>>, topic: &str) -> String {
    let out = out.expect("a shadow topic");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].topic, format!("{PREFIX}/{topic}"));
    out[0].payload.clone()
}

#[test]
fn documented_named_shadow_sequence() {
    let mut store = MemoryShadowStore::default();
    // A shadow deleted moments ago at version 2: AWS continues its versions when it is re-created,
    // which is how the documented sequence reaches version 3.
    let key = ShadowKey::named("SmartLamp", "simShadow1");
    let tombstone = StoredShadow {
        version: 2,
        timestamp: 1591140000,
        deleted_at: Some(1591140000),
        ..Default::default()
    };
    store.put_if_version(&key, None, tombstone).unwrap();
    let mut shadows = ShadowService::new(store);

    // get/rejected
    let out = shadows.handle_publish(&format!("{PREFIX}/get"), b"", ms(1591140500));
    assert_eq!(
        one(out, "get/rejected"),
        r#"{"code":404,"message":"No shadow exists with name: 'simShadow1'"}"#
    );

    // update, then get/accepted
    let update = r#"{"state":{"reported":{"ID":"SmartLamp21","ColorRGB":[128,128,128]}},"clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"}"#;
    let out = shadows
        .handle_publish(
            &format!("{PREFIX}/update"),
            update.as_bytes(),
            ms(1591140517),
        )
        .unwrap();
    assert_eq!(out.len(), 2, "accepted and documents, no delta: {out:?}");
    let out = shadows.handle_publish(
        &format!("{PREFIX}/get"),
        br#"{"clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"}"#,
        ms(1591140517),
    );
    assert_eq!(
        one(out, "get/accepted"),
        r#"{"state":{"reported":{"ID":"SmartLamp21","ColorRGB":[128,128,128]}},"metadata":{"reported":{"ID":{"timestamp":1591140517},"ColorRGB":[{"timestamp":1591140517},{"timestamp":1591140517},{"timestamp":1591140517}]}},"version":3,"timestamp":1591140517,"clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"}"#
    );

    // desired color: update/accepted and update/delta
    let update = r#"{"state":{"desired":{"ColorRGB":[255,255,0]}},"clientToken":"21b21b21-bfd2-4279-8c65-e2f697ff4fab"}"#;
    let out = shadows
        .handle_publish(
            &format!("{PREFIX}/update"),
            update.as_bytes(),
            ms(1591141596),
        )
        .unwrap();
    let topics: Vec<_> = out
        .iter()
        .map(|m| m.topic.trim_start_matches(PREFIX))
        .collect();
    assert_eq!(
        topics,
        ["/update/accepted", "/update/delta", "/update/documents"]
    );
    assert_eq!(
        out[0].payload,
        r#"{"state":{"desired":{"ColorRGB":[255,255,0]}},"metadata":{"desired":{"ColorRGB":[{"timestamp":1591141596},{"timestamp":1591141596},{"timestamp":1591141596}]}},"version":4,"timestamp":1591141596,"clientToken":"21b21b21-bfd2-4279-8c65-e2f697ff4fab"}"#
    );
    assert_eq!(
        out[1].payload,
        r#"{"version":4,"timestamp":1591141596,"state":{"ColorRGB":[255,255,0]},"metadata":{"ColorRGB":[{"timestamp":1591141596},{"timestamp":1591141596},{"timestamp":1591141596}]},"clientToken":"21b21b21-bfd2-4279-8c65-e2f697ff4fab"}"#
    );

    // the lamp reports the new color: update/documents with previous and current
    let update = r#"{"state":{"reported":{"ColorRGB":[255,255,0]}},"clientToken":"a4dc2227-9213-4c6a-a6a5-053304f60258"}"#;
    let out = shadows
        .handle_publish(
            &format!("{PREFIX}/update"),
            update.as_bytes(),
            ms(1591142747),
        )
        .unwrap();
    let topics: Vec<_> = out
        .iter()
        .map(|m| m.topic.trim_start_matches(PREFIX))
        .collect();
    assert_eq!(
        topics,
        ["/update/accepted", "/update/documents"],
        "the delta is empty now"
    );
    assert_eq!(
        out[1].payload,
        r#"{"previous":{"state":{"desired":{"ColorRGB":[255,255,0]},"reported":{"ID":"SmartLamp21","ColorRGB":[128,128,128]}},"metadata":{"desired":{"ColorRGB":[{"timestamp":1591141596},{"timestamp":1591141596},{"timestamp":1591141596}]},"reported":{"ID":{"timestamp":1591140517},"ColorRGB":[{"timestamp":1591140517},{"timestamp":1591140517},{"timestamp":1591140517}]}},"version":4},"current":{"state":{"desired":{"ColorRGB":[255,255,0]},"reported":{"ID":"SmartLamp21","ColorRGB":[255,255,0]}},"metadata":{"desired":{"ColorRGB":[{"timestamp":1591141596},{"timestamp":1591141596},{"timestamp":1591141596}]},"reported":{"ID":{"timestamp":1591140517},"ColorRGB":[{"timestamp":1591142747},{"timestamp":1591142747},{"timestamp":1591142747}]}},"version":5},"timestamp":1591142747,"clientToken":"a4dc2227-9213-4c6a-a6a5-053304f60258"}"#
    );

    // update/rejected: a stale version
    let stale = r#"{"state":{"reported":{"ID":"x"}},"version":3,"clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"}"#;
    let out = shadows.handle_publish(
        &format!("{PREFIX}/update"),
        stale.as_bytes(),
        ms(1591142800),
    );
    assert_eq!(
        one(out, "update/rejected"),
        r#"{"code":409,"message":"Version conflict","clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"}"#
    );
}

#[test]
fn documented_delete_accepted() {
    let mut shadows = ShadowService::new(MemoryShadowStore::default());
    for (i, t) in [1591050000u64, 1591050001, 1591050002, 1591050003]
        .iter()
        .enumerate()
    {
        let body = json!({"state": {"reported": {"n": i}}}).to_string();
        shadows
            .handle_publish(&format!("{PREFIX}/update"), body.as_bytes(), ms(*t))
            .unwrap();
    }
    let out = shadows.handle_publish(&format!("{PREFIX}/delete"), b"", ms(1591057529));
    assert_eq!(
        one(out, "delete/accepted"),
        r#"{"version":4,"timestamp":1591057529}"#
    );
    let out = shadows.handle_publish(&format!("{PREFIX}/get"), b"", ms(1591057530));
    assert_eq!(
        one(out, "get/rejected"),
        r#"{"code":404,"message":"No shadow exists with name: 'simShadow1'"}"#
    );
}

#[test]
fn documented_null_desired_clears_the_section() {
    let mut shadows = ShadowService::new(MemoryShadowStore::default());
    let classic = "$aws/things/lamp/shadow";
    shadows
        .handle_publish(
            &format!("{classic}/update"),
            br#"{"state":{"desired":{"color":"red"}}}"#,
            ms(1469564700),
        )
        .unwrap();
    shadows
        .handle_publish(
            &format!("{classic}/update"),
            br#"{"state":{"reported":{"color":"red"}}}"#,
            ms(1469564750),
        )
        .unwrap();
    let out = shadows
        .handle_publish(
            &format!("{classic}/update"),
            br#"{"state":{"reported":{"color":"green"},"desired":null}}"#,
            ms(1469564801),
        )
        .unwrap();
    assert_eq!(out[0].topic, format!("{classic}/update/accepted"));
    assert_eq!(
        out[0].payload,
        r#"{"state":{"reported":{"color":"green"},"desired":null},"metadata":{"reported":{"color":{"timestamp":1469564801}},"desired":{"timestamp":1469564801}},"version":3,"timestamp":1469564801}"#
    );
    let get = shadows
        .handle_publish(&format!("{classic}/get"), b"", ms(1469564802))
        .unwrap();
    assert_eq!(
        get[0].payload,
        r#"{"state":{"reported":{"color":"green"}},"metadata":{"reported":{"color":{"timestamp":1469564801}}},"version":3,"timestamp":1469564802}"#
    );
    // The classic shadow's 404 names the thing.
    let out = shadows
        .handle_publish("$aws/things/other/shadow/get", b"", 0)
        .unwrap();
    assert_eq!(
        out[0].payload,
        r#"{"code":404,"message":"No shadow exists with name: 'other'"}"#
    );
}
