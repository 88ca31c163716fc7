//! Limits, every rejection with AWS's code and message, versions and tombstones, named shadows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use iot_shadow::{MemoryShadowStore, ShadowError, ShadowKey, ShadowService, parse_topic};
use serde_json::{Value, json};

const T: &str = "$aws/things/car-1/shadow";
const NOW: u64 = 1_700_000_000_000;

fn service() -> ShadowService<MemoryShadowStore> {
    ShadowService::new(MemoryShadowStore::default())
}

fn rejected(s: &mut ShadowService<MemoryShadowStore>, payload: &[u8]) -> Value {
    let out = s
        .handle_publish(&format!("{T}/update"), payload, NOW)
        .unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].topic, format!("{T}/update/rejected"));
    serde_json::from_str(&out[0].payload).unwrap()
}

fn error(code: u16, message: &str) -> Value {
    json!({"code": code, "message": message, "timestamp": NOW / 1000})
}

#[test]
fn malformed_requests() {
    let mut s = service();
    assert_eq!(rejected(&mut s, b"{not json"), error(400, "Invalid JSON"));
    assert_eq!(rejected(&mut s, b"[1,2]"), error(400, "Invalid JSON"));
    assert_eq!(
        rejected(&mut s, b"{}"),
        error(400, "Missing required node: state")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":1}"#),
        error(400, "State node must be an object")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":{"desired":1}}"#),
        error(400, "Desired node must be an object")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":{"reported":[1]}}"#),
        error(400, "Reported node must be an object")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":{"delta":{}}}"#),
        error(400, "State contains an invalid node")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":{},"version":"3"}"#),
        error(400, "Invalid version")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":{},"version":-1}"#),
        error(400, "Invalid version")
    );
    assert_eq!(
        rejected(&mut s, br#"{"state":{},"clientToken":5}"#),
        error(400, "Invalid clientToken")
    );
    assert_eq!(
        rejected(&mut s, b"{\"state\":{\"reported\":{\"a\":\"\xff\"}}}"),
        error(
            415,
            "Unsupported documented encoding; supported encoding is UTF-8"
        )
    );
    // Nothing was stored by any of them.
    let out = s.handle_publish(&format!("{T}/get"), b"", NOW).unwrap();
    assert!(out[0].topic.ends_with("/get/rejected"));
}

#[test]
fn client_token_is_echoed_in_errors_and_limited_to_64_bytes() {
    let mut s = service();
    let token = "t".repeat(64);
    let body = json!({"state": 5, "clientToken": token}).to_string();
    let mut expected = error(400, "State node must be an object");
    expected["clientToken"] = json!(token);
    assert_eq!(rejected(&mut s, body.as_bytes()), expected);
    let body = json!({"state": {}, "clientToken": "t".repeat(65)}).to_string();
    assert_eq!(
        rejected(&mut s, body.as_bytes()),
        error(400, "Invalid clientToken")
    );
}

#[test]
fn state_size_limit_8192_bytes() {
    let mut s = service();
    // {"a":"xxx…"} serialized is 8 bytes plus the string.
    let fits = json!({"state": {"reported": {"a": "x".repeat(8192 - 8)}}}).to_string();
    let out = s
        .handle_publish(&format!("{T}/update"), fits.as_bytes(), NOW)
        .unwrap();
    assert!(
        out[0].topic.ends_with("/update/accepted"),
        "{}",
        out[0].payload
    );
    // One more byte in desired pushes desired + reported over.
    let over = json!({"state": {"desired": {}}}).to_string();
    assert!(
        s.handle_publish(&format!("{T}/update"), over.as_bytes(), NOW)
            .unwrap()[0]
            .topic
            .ends_with("accepted")
    );
    let over = json!({"state": {"desired": {"b": 1}}}).to_string();
    assert_eq!(
        rejected(&mut s, over.as_bytes()),
        error(413, "The payload exceeds the maximum size allowed")
    );
}

#[test]
fn nesting_depth_limit_6() {
    let mut s = service();
    // The state object is level 1, desired's object 2, then a(3) b(4) c(5) d(6): accepted.
    let ok = br#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":1}}}}}}}"#;
    assert!(
        s.handle_publish(&format!("{T}/update"), ok, NOW).unwrap()[0]
            .topic
            .ends_with("accepted")
    );
    let ok_array = br#"{"state":{"desired":{"a":{"b":{"c":{"d":[1]}}}}}}"#;
    assert!(
        s.handle_publish(&format!("{T}/update"), ok_array, NOW)
            .unwrap()[0]
            .topic
            .ends_with("accepted")
    );
    let deep = br#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}"#;
    assert_eq!(
        rejected(&mut s, deep),
        error(
            400,
            "JSON contains too many levels of nesting; maximum is 6"
        )
    );
    let deep_array = br#"{"state":{"desired":{"a":{"b":{"c":{"d":[[1]]}}}}}}"#;
    assert_eq!(
        rejected(&mut s, deep_array),
        error(
            400,
            "JSON contains too many levels of nesting; maximum is 6"
        )
    );
}

#[test]
fn thing_and_shadow_name_rules() {
    assert!(parse_topic(&format!("$aws/things/{}/shadow/get", "a".repeat(128))).is_some());
    assert!(parse_topic(&format!("$aws/things/{}/shadow/get", "a".repeat(129))).is_none());
    assert!(parse_topic("$aws/things/a.b/shadow/get").is_none());
    assert!(parse_topic(&format!("$aws/things/t/shadow/name/{}/get", "s".repeat(64))).is_some());
    assert!(parse_topic(&format!("$aws/things/t/shadow/name/{}/get", "s".repeat(65))).is_none());
    assert!(parse_topic("$aws/things/t/shadow/name/$reserved:x_y-z/get").is_some());
    assert!(parse_topic("$aws/things/t/shadow/name/a b/get").is_none());
    assert!(parse_topic("$aws/things/t/shadow/name//get").is_none());
    // A request to an invalid name is not a shadow request: the service leaves it alone.
    let mut s = service();
    assert!(
        s.handle_publish("$aws/things/a.b/shadow/get", b"", NOW)
            .is_none()
    );
    // Response topics are not requests either.
    assert!(
        s.handle_publish(&format!("{T}/update/accepted"), b"{}", NOW)
            .is_none()
    );
}

#[test]
fn version_is_an_optimistic_lock() {
    let mut s = service();
    let key = ShadowKey::classic("car-1");
    for expected in 1..=3u64 {
        let outcome = s
            .update(&key, br#"{"state":{"reported":{"n":1}}}"#, NOW)
            .unwrap();
        assert_eq!(outcome.accepted["version"], json!(expected));
    }
    let ok = s
        .update(&key, br#"{"state":{"reported":{"n":2}},"version":3}"#, NOW)
        .unwrap();
    assert_eq!(ok.accepted["version"], json!(4));
    let err = s
        .update(&key, br#"{"state":{"reported":{"n":2}},"version":3}"#, NOW)
        .unwrap_err();
    assert_eq!(err, (ShadowError::VersionConflict, None));
}

#[test]
fn rate_limit_per_thing() {
    let mut s = service();
    for _ in 0..20 {
        assert!(
            s.handle_publish(
                &format!("{T}/update"),
                br#"{"state":{"reported":{"x":1}}}"#,
                NOW
            )
            .unwrap()[0]
                .topic
                .ends_with("accepted")
        );
    }
    assert_eq!(
        rejected(&mut s, br#"{"state":{"reported":{"x":1}}}"#),
        error(429, "Too Many Requests")
    );
    // Another thing is not affected, and the next second starts afresh.
    let out = s
        .handle_publish("$aws/things/car-2/shadow/get", b"", NOW)
        .unwrap();
    assert!(out[0].topic.ends_with("get/rejected") && out[0].payload.contains("404"));
    let out = s
        .handle_publish(&format!("{T}/get"), b"", NOW + 1000)
        .unwrap();
    assert!(out[0].topic.ends_with("get/accepted"));
}

#[test]
fn deleted_shadow_versions_continue_within_48_hours_then_restart() {
    let mut s = service();
    let key = ShadowKey::named("car-1", "config");
    s.update(&key, br#"{"state":{"desired":{"a":1}}}"#, NOW)
        .unwrap();
    s.update(&key, br#"{"state":{"desired":{"a":2}}}"#, NOW)
        .unwrap();
    assert_eq!(
        s.delete(&key, b"", NOW).unwrap(),
        json!({"version": 2, "timestamp": NOW / 1000})
    );
    assert_eq!(
        s.delete(&key, b"", NOW).unwrap_err().0,
        ShadowError::NotFound("config".into())
    );
    assert_eq!(s.list_named("car-1").unwrap(), Vec::<String>::new());
    let again = s
        .update(&key, br#"{"state":{"desired":{"a":3}}}"#, NOW + 3_600_000)
        .unwrap();
    assert_eq!(again.accepted["version"], json!(3));
    // A re-created shadow has no "previous" document and does not inherit the old state.
    let documents: Value = serde_json::from_str(&again.messages.last().unwrap().payload).unwrap();
    assert!(documents.get("previous").is_none());
    assert_eq!(documents["current"]["state"], json!({"desired": {"a": 3}}));
    assert_eq!(s.list_named("car-1").unwrap(), ["config"]);

    s.delete(&key, b"", NOW + 7_200_000).unwrap();
    let later = NOW + 7_200_000 + 48 * 3_600_000;
    let fresh = s
        .update(&key, br#"{"state":{"desired":{"a":4}}}"#, later)
        .unwrap();
    assert_eq!(fresh.accepted["version"], json!(1));
}

#[test]
fn get_and_delete_take_empty_or_token_payloads() {
    let mut s = service();
    s.handle_publish(
        &format!("{T}/update"),
        br#"{"state":{"reported":{"x":1}}}"#,
        NOW,
    )
    .unwrap();
    let out = s
        .handle_publish(
            &format!("{T}/get"),
            br#"{"clientToken":"abc","other":1}"#,
            NOW,
        )
        .unwrap();
    let doc: Value = serde_json::from_str(&out[0].payload).unwrap();
    assert_eq!(doc["clientToken"], json!("abc"));
    let out = s
        .handle_publish(&format!("{T}/get"), b"not json", NOW)
        .unwrap();
    assert_eq!(out[0].topic, format!("{T}/get/rejected"));
    assert_eq!(
        serde_json::from_str::<Value>(&out[0].payload).unwrap(),
        error(400, "Invalid JSON")
    );
    let out = s
        .handle_publish(&format!("{T}/delete"), br#"{"clientToken":"d1"}"#, NOW)
        .unwrap();
    assert_eq!(
        out[0].payload,
        format!(
            r#"{{"version":1,"timestamp":{},"clientToken":"d1"}}"#,
            NOW / 1000
        )
    );
}

#[test]
fn get_includes_delta_when_desired_differs() {
    let mut s = service();
    let key = ShadowKey::classic("car-1");
    s.update(&key, br#"{"state":{"desired":{"speed":50,"mode":"eco"},"reported":{"speed":50,"mode":"sport","odo":7}}}"#, NOW).unwrap();
    let doc = s.get(&key, b"", NOW).unwrap();
    assert_eq!(doc["state"]["delta"], json!({"mode": "eco"}));
    s.update(&key, br#"{"state":{"reported":{"mode":"eco"}}}"#, NOW)
        .unwrap();
    assert!(
        s.get(&key, b"", NOW).unwrap()["state"]
            .get("delta")
            .is_none()
    );
}

#[test]
fn nulls_delete_keys_and_emptied_objects_disappear() {
    let mut s = service();
    let key = ShadowKey::classic("car-1");
    s.update(
        &key,
        br#"{"state":{"reported":{"lights":{"front":true},"speed":3}}}"#,
        NOW,
    )
    .unwrap();
    let out = s
        .update(
            &key,
            br#"{"state":{"reported":{"lights":{"front":null}}}}"#,
            NOW + 1000,
        )
        .unwrap();
    // The accepted echo keeps the null, with a timestamp for it.
    assert_eq!(
        out.accepted["state"],
        json!({"reported": {"lights": {"front": null}}})
    );
    assert_eq!(
        out.accepted["metadata"],
        json!({"reported": {"lights": {"front": {"timestamp": NOW / 1000 + 1}}}})
    );
    let doc = s.get(&key, b"", NOW + 2000).unwrap();
    assert_eq!(doc["state"], json!({"reported": {"speed": 3}}));
    assert_eq!(
        doc["metadata"],
        json!({"reported": {"speed": {"timestamp": NOW / 1000}}})
    );
}

#[test]
fn error_codes_and_messages() {
    for (error, code, message) in [
        (ShadowError::Unauthorized, 401, "Unauthorized"),
        (ShadowError::Forbidden, 403, "Forbidden"),
        (ShadowError::Internal, 500, "Internal service failure"),
        (ShadowError::Throttled, 429, "Too Many Requests"),
    ] {
        assert_eq!(error.code(), code);
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn metadata_keeps_the_state_key_order() {
    let mut s = service();
    let key = ShadowKey::classic("car-1");
    s.update(
        &key,
        br#"{"state":{"reported":{"a":{"x":1,"y":2},"b":1,"c":{"z":1}}}}"#,
        NOW,
    )
    .unwrap();
    // Rewrite a nested object, replace a scalar by an object, and a nested key by a scalar.
    s.update(
        &key,
        br#"{"state":{"reported":{"a":{"x":5},"b":{"q":1},"c":{"z":{"deep":true}}}}}"#,
        NOW + 1000,
    )
    .unwrap();
    let doc = s.get(&key, b"", NOW + 2000).unwrap();
    let t0 = NOW / 1000;
    let t1 = t0 + 1;
    assert_eq!(
        doc["state"].to_string(),
        r#"{"reported":{"a":{"x":5,"y":2},"b":{"q":1},"c":{"z":{"deep":true}}}}"#
    );
    assert_eq!(
        doc["metadata"].to_string(),
        format!(
            r#"{{"reported":{{"a":{{"x":{{"timestamp":{t1}}},"y":{{"timestamp":{t0}}}}},"b":{{"q":{{"timestamp":{t1}}}}},"c":{{"z":{{"deep":{{"timestamp":{t1}}}}}}}}}}}"#
        )
    );
}
