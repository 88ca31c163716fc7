//! One test per rule of the device side.

use serde_json::{Map, Value, json};

use super::*;
use crate::{MemoryShadowStore, ShadowService};

const NOW: u64 = 1_700_000_000_000;
const T: &str = "$aws/things/car-1/shadow";

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn car() -> DeviceShadow {
    DeviceShadow::new(ShadowKey::classic("car-1"), "car").unwrap()
}

fn message(device: &mut DeviceShadow, suffix: &str, payload: Value) -> Vec<ShadowEvent> {
    device
        .handle_message(
            &format!("{T}/{suffix}"),
            payload.to_string().as_bytes(),
            NOW,
        )
        .unwrap()
}

fn published(events: &[ShadowEvent]) -> Vec<&ShadowRequest> {
    events
        .iter()
        .filter_map(|e| match e {
            ShadowEvent::Publish(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn payload(request: &ShadowRequest) -> Value {
    serde_json::from_str(&request.payload).unwrap()
}

/// A device that has synced with a shadow at `version` whose reported state is its own.
fn synced(version: u64, reported: Value, desired: Value) -> DeviceShadow {
    let mut device = car().with_reported(object(reported.clone()));
    let get = device.on_connected(NOW).remove(0);
    let events = message(
        &mut device,
        "get/accepted",
        json!({"state": {"desired": desired, "reported": reported}, "metadata": {},
               "version": version, "timestamp": 1, "clientToken": get.client_token}),
    );
    assert!(published(&events).is_empty(), "{events:?}");
    device
}

#[test]
fn subscriptions_are_the_answer_topics_of_this_shadow() {
    assert_eq!(
        car().subscriptions(),
        [
            format!("{T}/update/delta"),
            format!("{T}/update/accepted"),
            format!("{T}/update/rejected"),
            format!("{T}/update/documents"),
            format!("{T}/get/accepted"),
            format!("{T}/get/rejected"),
            format!("{T}/delete/accepted"),
        ]
    );
    let named = DeviceShadow::new(ShadowKey::named("car-1", "doors"), "p").unwrap();
    assert_eq!(
        named.subscriptions()[0],
        "$aws/things/car-1/shadow/name/doors/update/delta"
    );
}

#[test]
fn keys_and_token_prefixes_are_checked() {
    assert_eq!(
        DeviceShadow::new(ShadowKey::classic("car 1"), "p").unwrap_err(),
        DeviceShadowError::InvalidKey("car 1".into())
    );
    assert!(DeviceShadow::new(ShadowKey::named("car", "a/b"), "p").is_err());
    let longest = "x".repeat(MAX_TOKEN_PREFIX_BYTES);
    assert!(DeviceShadow::new(ShadowKey::classic("car"), &longest).is_ok());
    assert_eq!(
        DeviceShadow::new(ShadowKey::classic("car"), &format!("{longest}x")).unwrap_err(),
        DeviceShadowError::TokenPrefixTooLong {
            len: MAX_TOKEN_PREFIX_BYTES + 1,
            max: MAX_TOKEN_PREFIX_BYTES
        }
    );
}

#[test]
fn tokens_are_deterministic_and_fit_the_service_limit() {
    let mut device = DeviceShadow::new(ShadowKey::classic("car"), &"x".repeat(43)).unwrap();
    device.token_counter = u64::MAX;
    let request = device.resync(NOW);
    assert_eq!(request.client_token.len(), 64);
    let mut service = ShadowService::new(MemoryShadowStore::default());
    let answer = service
        .handle_publish(&request.topic, request.payload.as_bytes(), NOW)
        .unwrap();
    // Not "Invalid clientToken": the service took the token, and there is no shadow.
    assert!(answer[0].payload.contains("404"), "{answer:?}");

    let mut a = car();
    let mut b = car();
    let tokens = |d: &mut DeviceShadow| {
        let get = d.on_connected(NOW).remove(0);
        let update = d.report(&object(json!({"x": 1})), NOW);
        [get.client_token, update.client_token]
    };
    assert_eq!(tokens(&mut a), ["car-0", "car-1"]);
    assert_eq!(tokens(&mut b), ["car-0", "car-1"]);
}

#[test]
fn on_connected_sends_a_get_and_forgets_the_previous_connection() {
    let mut device = car();
    device.report(&object(json!({"speed": 1})), NOW);
    assert_eq!(device.pending_requests(), 1);
    let requests = device.on_connected(NOW);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].topic, format!("{T}/get"));
    assert_eq!(requests[0].operation, Operation::Get);
    assert_eq!(requests[0].payload, r#"{"clientToken":"car-1"}"#);
    assert_eq!(device.pending_requests(), 1);
    // The first update's answer, arriving late, pairs with nothing.
    let events = message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 1, "timestamp": 1, "clientToken": "car-0"}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Unmatched {
            kind: TopicKind::Accepted(Operation::Update),
            client_token: Some("car-0".into())
        }]
    );
}

#[test]
fn report_merges_locally_and_nulls_delete() {
    let mut device = car().with_reported(object(json!({"a": {"b": 1, "c": 2}, "d": [1]})));
    let request = device.report(&object(json!({"a": {"b": null}, "d": null, "e": 3})), NOW);
    assert_eq!(device.reported(), &object(json!({"a": {"c": 2}, "e": 3})));
    assert_eq!(request.topic, format!("{T}/update"));
    assert_eq!(
        request.payload,
        r#"{"state":{"reported":{"a":{"b":null},"d":null,"e":3}},"clientToken":"car-0"}"#
    );
    let request = device.report(&object(json!({"a": {"c": null}})), NOW);
    assert_eq!(device.reported(), &object(json!({"e": 3})));
    assert_eq!(request.client_token, "car-1");
}

#[test]
fn answers_pair_by_token_and_operation() {
    let mut device = synced(4, json!({}), json!({}));
    let update = device.report(&object(json!({"x": 1})), NOW);
    // Another client's update, then our get token on the update topic: neither is ours.
    for token in [json!("phone-7"), json!("car-0"), json!(12)] {
        let events = message(
            &mut device,
            "update/accepted",
            json!({"state": {}, "metadata": {}, "version": 5, "timestamp": 1, "clientToken": token}),
        );
        assert!(
            matches!(&events[..], [ShadowEvent::Unmatched { .. }]),
            "{events:?}"
        );
    }
    let events = message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 5, "timestamp": 1}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Unmatched {
            kind: TopicKind::Accepted(Operation::Update),
            client_token: None
        }]
    );
    assert_eq!(device.pending_requests(), 1);
    let events = message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 6, "timestamp": 1,
               "clientToken": update.client_token}),
    );
    assert_eq!(
        events,
        [ShadowEvent::UpdateAccepted {
            client_token: "car-1".into(),
            version: 6
        }]
    );
    assert_eq!(device.pending_requests(), 0);
    assert_eq!(device.poll_timeout(), None);
    assert_eq!(device.version(), Some(6));
}

#[test]
fn no_shadow_means_reporting_the_whole_state() {
    let mut device = car().with_reported(object(json!({"speed": 0, "gps": {"lat": 1}})));
    let get = device.on_connected(NOW).remove(0);
    let events = message(
        &mut device,
        "get/rejected",
        json!({"code": 404, "message": "No shadow exists with name: 'car-1'",
               "clientToken": get.client_token}),
    );
    let requests = published(&events);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        payload(requests[0]),
        json!({"state": {"reported": {"speed": 0, "gps": {"lat": 1}}}, "clientToken": "car-1"})
    );
    assert_eq!(device.version(), None);

    // Nothing to report: nothing sent.
    let mut empty = car();
    let get = empty.on_connected(NOW).remove(0);
    let events = message(
        &mut empty,
        "get/rejected",
        json!({"code": 404, "message": "No shadow", "clientToken": get.client_token}),
    );
    assert!(events.is_empty());
    assert_eq!(empty.pending_requests(), 0);
}

#[test]
fn version_conflict_resyncs_with_one_get() {
    let mut device = synced(3, json!({}), json!({})).with_version_policy(VersionPolicy::Expect);
    let first = device.report(&object(json!({"x": 1})), NOW);
    let second = device.report(&object(json!({"y": 1})), NOW);
    assert_eq!(payload(&first)["version"], json!(3));
    assert_eq!(payload(&second)["version"], json!(4));
    let events = message(
        &mut device,
        "update/rejected",
        json!({"code": 409, "message": "Version conflict", "clientToken": first.client_token}),
    );
    let requests = published(&events);
    assert_eq!(requests.len(), 1, "{events:?}");
    assert_eq!(requests[0].operation, Operation::Get);
    assert_eq!(requests[0].client_token, "car-3");
    // The second update's 409 is covered by that get: no second get, no resent update.
    let events = message(
        &mut device,
        "update/rejected",
        json!({"code": 409, "message": "Version conflict", "clientToken": second.client_token}),
    );
    assert_eq!(events, []);
    // The get's answer brings the service's reported state to the device's.
    let events = message(
        &mut device,
        "get/accepted",
        json!({"state": {"reported": {"z": 1}}, "metadata": {}, "version": 9, "timestamp": 1,
               "clientToken": "car-3"}),
    );
    let requests = published(&events);
    assert_eq!(
        payload(requests[0]),
        json!({"state": {"reported": {"x": 1, "y": 1, "z": null}}, "clientToken": "car-4",
               "version": 9})
    );
}

#[test]
fn versions_are_omitted_by_default() {
    let mut device = synced(3, json!({}), json!({}));
    let request = device.report(&object(json!({"x": 1})), NOW);
    assert_eq!(payload(&request).get("version"), None);
    // Expect, but no version known yet: omitted too.
    let mut device = car().with_version_policy(VersionPolicy::Expect);
    let request = device.report(&object(json!({"x": 1})), NOW);
    assert_eq!(payload(&request).get("version"), None);
}

#[test]
fn documents_carry_the_version_and_desired_state() {
    let mut device = synced(3, json!({"on": false}), json!({"on": false}));
    let events = message(
        &mut device,
        "update/documents",
        json!({"previous": {}, "current": {"state": {"desired": {"on": true, "level": {"x": 1}},
               "reported": {"on": false}}, "metadata": {}, "version": 5}, "timestamp": 1}),
    );
    assert_eq!(events, []);
    assert_eq!(device.version(), Some(5));
    assert_eq!(
        device.desired(),
        &object(json!({"on": true, "level": {"x": 1}}))
    );
    // Desired cleared: the section is absent.
    message(
        &mut device,
        "update/documents",
        json!({"current": {"state": {"reported": {"on": false}}, "metadata": {}, "version": 6},
               "timestamp": 1}),
    );
    assert!(device.desired().is_empty());
    // A redelivered older one changes nothing.
    let events = message(
        &mut device,
        "update/documents",
        json!({"current": {"state": {"desired": {"on": true}}, "metadata": {}, "version": 5},
               "timestamp": 1}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Stale {
            kind: TopicKind::Documents,
            version: 5
        }]
    );
    assert!(device.desired().is_empty());
    assert_eq!(device.version(), Some(6));
}

#[test]
fn delta_holds_only_what_the_device_does_not_report_yet() {
    let mut device = synced(
        3,
        json!({"light": {"on": false, "level": 5, "rgb": [1, 2]}, "mode": "eco"}),
        json!({}),
    );
    // The service's delta is against its reported state; the device already reports level 5 and
    // mode "eco" (a report of it may still be in flight).
    let events = message(
        &mut device,
        "update/delta",
        json!({"version": 4, "timestamp": 1,
               "state": {"light": {"on": true, "level": 5, "rgb": [1, 3]}, "mode": "eco"},
               "metadata": {}}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Delta {
            changes: object(json!({"light": {"on": true, "rgb": [1, 3]}})),
            version: 4
        }]
    );
    assert_eq!(device.version(), Some(4));
    // Nothing differs: no event.
    let events = message(
        &mut device,
        "update/delta",
        json!({"version": 5, "timestamp": 1, "state": {"mode": "eco"}, "metadata": {}}),
    );
    assert_eq!(events, []);
    // An older delta, redelivered: ignored.
    let events = message(
        &mut device,
        "update/delta",
        json!({"version": 4, "timestamp": 1, "state": {"mode": "sport"}, "metadata": {}}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Stale {
            kind: TopicKind::Delta,
            version: 4
        }]
    );
}

#[test]
fn get_accepted_learns_and_resyncs_both_ways() {
    let mut device = car().with_reported(object(json!({"speed": 3, "light": {"on": true}})));
    let get = device.on_connected(NOW).remove(0);
    let events = message(
        &mut device,
        "get/accepted",
        json!({"state": {"desired": {"light": {"on": true, "level": 7}, "speed": 3},
                         "reported": {"light": {"on": false}, "old": 1},
                         "delta": {"light": {"on": true, "level": 7}, "speed": 3}},
               "metadata": {}, "version": 12, "timestamp": 1, "clientToken": get.client_token}),
    );
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        payload(published(&events)[0]),
        json!({"state": {"reported": {"light": {"on": true}, "speed": 3, "old": null}},
               "clientToken": "car-1"})
    );
    assert_eq!(
        events[1],
        ShadowEvent::Delta {
            changes: object(json!({"light": {"level": 7}})),
            version: 12
        }
    );
    assert_eq!(device.version(), Some(12));
    assert_eq!(
        device.desired(),
        &object(json!({"light": {"on": true, "level": 7}, "speed": 3}))
    );
}

#[test]
fn a_get_answer_settles_the_requests_sent_before_it() {
    let mut device = car();
    device.on_connected(NOW);
    let update = device.report(&object(json!({"x": 1})), NOW);
    let get = device.resync(NOW);
    let later = device.report(&object(json!({"y": 1})), NOW);
    assert_eq!(device.pending_requests(), 4);
    message(
        &mut device,
        "get/accepted",
        json!({"state": {"reported": {"x": 1, "y": 1}}, "metadata": {}, "version": 2,
               "timestamp": 1, "clientToken": get.client_token}),
    );
    assert_eq!(device.pending_requests(), 1);
    let events = message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 1, "timestamp": 1,
               "clientToken": update.client_token}),
    );
    assert!(matches!(&events[..], [ShadowEvent::Unmatched { .. }]));
    let events = message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 2, "timestamp": 1,
               "clientToken": later.client_token}),
    );
    assert!(matches!(&events[..], [ShadowEvent::UpdateAccepted { .. }]));
}

#[test]
fn lost_answers_time_out_into_one_get() {
    let mut device = synced(1, json!({}), json!({})).with_answer_timeout(5_000);
    assert_eq!(device.poll_timeout(), None);
    device.report(&object(json!({"x": 1})), NOW);
    device.report(&object(json!({"x": 2})), NOW + 1_000);
    assert_eq!(device.poll_timeout(), Some(NOW + 5_000));
    assert_eq!(device.handle_timeout(NOW + 4_999), []);
    assert_eq!(device.pending_requests(), 2);
    let requests = device.handle_timeout(NOW + 5_000);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].operation, Operation::Get);
    assert_eq!(requests[0].payload, r#"{"clientToken":"car-3"}"#);
    // The second update times out while the get, sent after it, is pending: no second get.
    assert_eq!(device.poll_timeout(), Some(NOW + 6_000));
    assert_eq!(device.handle_timeout(NOW + 6_000), []);
    assert_eq!(device.pending_requests(), 1);
    assert_eq!(device.poll_timeout(), Some(NOW + 10_000));
    // The get is lost too: another get.
    let requests = device.handle_timeout(NOW + 10_000);
    assert_eq!(requests[0].client_token, "car-4");
    assert_eq!(device.poll_timeout(), Some(NOW + 15_000));
}

#[test]
fn throttled_requests_resync_after_a_timeout() {
    let mut device = synced(1, json!({}), json!({}));
    let update = device.report(&object(json!({"x": 1})), NOW);
    let events = message(
        &mut device,
        "update/rejected",
        json!({"code": 429, "message": "Too Many Requests", "timestamp": 1,
               "clientToken": update.client_token}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Rejected {
            client_token: "car-1".into(),
            operation: Operation::Update,
            code: 429,
            message: "Too Many Requests".into()
        }]
    );
    assert_eq!(device.pending_requests(), 0);
    assert_eq!(device.poll_timeout(), Some(NOW + DEFAULT_ANSWER_TIMEOUT_MS));
    let requests = device.handle_timeout(NOW + DEFAULT_ANSWER_TIMEOUT_MS);
    assert_eq!(requests[0].operation, Operation::Get);

    // A refusal that another try would not change is only handed on.
    let later = NOW + DEFAULT_ANSWER_TIMEOUT_MS;
    let update = device.report(&object(json!({"x": [null]})), later);
    let events = message(
        &mut device,
        "update/rejected",
        json!({"code": 400, "message": "Invalid JSON", "timestamp": 1,
               "clientToken": update.client_token}),
    );
    assert!(matches!(
        &events[..],
        [ShadowEvent::Rejected { code: 400, .. }]
    ));
    // Only the pending get's deadline is left.
    assert_eq!(device.pending_requests(), 1);
    assert_eq!(
        device.poll_timeout(),
        Some(later + DEFAULT_ANSWER_TIMEOUT_MS)
    );
}

#[test]
fn the_pending_bound_gives_up_on_the_oldest_and_resyncs() {
    let mut device = synced(1, json!({}), json!({})).with_max_pending(2);
    device.report(&object(json!({"x": 1})), NOW);
    device.report(&object(json!({"x": 2})), NOW + 1);
    assert_eq!(device.poll_timeout(), Some(NOW + DEFAULT_ANSWER_TIMEOUT_MS));
    device.report(&object(json!({"x": 3})), NOW + 2);
    assert_eq!(device.pending_requests(), 2);
    assert_eq!(device.poll_timeout(), Some(NOW + 2));
    let requests = device.handle_timeout(NOW + 2);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].operation, Operation::Get);
    assert_eq!(device.pending_requests(), 2);
    // The get evicted the second update, and covers it: no further resync is due.
    assert_eq!(
        device.poll_timeout(),
        Some(NOW + 2 + DEFAULT_ANSWER_TIMEOUT_MS)
    );
}

#[test]
fn deletion_forgets_desired_state() {
    let mut device = synced(4, json!({"on": true}), json!({"on": true}));
    let events = message(
        &mut device,
        "delete/accepted",
        json!({"version": 4, "timestamp": 1}),
    );
    assert_eq!(events, [ShadowEvent::Deleted { version: 4 }]);
    assert!(device.desired().is_empty());
    assert_eq!(device.reported(), &object(json!({"on": true})));
}

#[test]
fn foreign_and_malformed_messages_are_errors() {
    let mut device = car();
    let get = device.on_connected(NOW).remove(0);
    let err = |device: &mut DeviceShadow, topic: &str, payload: &[u8]| {
        device.handle_message(topic, payload, NOW).unwrap_err()
    };
    for topic in [
        "$aws/things/car-2/shadow/update/delta",
        "$aws/things/car-1/shadow/name/doors/update/delta",
        "cars/car-1/telemetry",
        "$aws/things/car-1/shadow/update/sideways",
        "",
    ] {
        assert!(
            matches!(
                err(&mut device, topic, b"{}"),
                DeviceShadowError::ForeignTopic { .. }
            ),
            "{topic}"
        );
    }
    assert_eq!(
        err(&mut device, &format!("{T}/update"), b"{}"),
        DeviceShadowError::UnexpectedTopic {
            topic: format!("{T}/update")
        }
    );
    for payload in [&b"{not json"[..], b"[1]", b"", b"\xff\xfe", b"null"] {
        assert!(
            matches!(
                err(&mut device, &format!("{T}/get/accepted"), payload),
                DeviceShadowError::InvalidJson { .. }
            ),
            "{payload:?}"
        );
    }
    let missing = [
        (
            "get/accepted",
            json!({"state": {}, "clientToken": get.client_token}),
            "version",
        ),
        (
            "get/accepted",
            json!({"version": 1, "state": [], "clientToken": get.client_token}),
            "state",
        ),
        (
            "get/accepted",
            json!({"version": 1, "state": {"desired": 3}, "clientToken": get.client_token}),
            "state.desired",
        ),
        (
            "get/rejected",
            json!({"code": "404", "clientToken": get.client_token}),
            "code",
        ),
        (
            "update/delta",
            json!({"version": -1, "state": {}}),
            "version",
        ),
        ("update/delta", json!({"version": 1}), "state"),
        (
            "update/documents",
            json!({"current": {"state": {}}}),
            "current.version",
        ),
        ("update/documents", json!({"previous": {}}), "current"),
        ("delete/accepted", json!({"timestamp": 1}), "version"),
    ];
    for (suffix, payload, field) in missing {
        assert_eq!(
            err(
                &mut device,
                &format!("{T}/{suffix}"),
                payload.to_string().as_bytes()
            ),
            DeviceShadowError::InvalidField {
                topic: format!("{T}/{suffix}"),
                field
            }
        );
    }
    // The get is still pending: its timeout will resync.
    assert_eq!(device.pending_requests(), 1);
    assert!(device.version().is_none());
    // Deep nesting is an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        err(&mut device, &format!("{T}/update/delta"), deep.as_bytes()),
        DeviceShadowError::InvalidJson { .. }
    ));
}

#[test]
fn the_application_may_refuse_and_say_why() {
    let mut device = synced(2, json!({"speed": 50}), json!({}));
    let events = message(
        &mut device,
        "update/delta",
        json!({"version": 3, "timestamp": 1, "state": {"speed": 300, "mode": "eco"},
               "metadata": {}}),
    );
    let [ShadowEvent::Delta { changes, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    // This application's schema caps speed at 200.
    let mut applied = Map::new();
    let mut refused = Map::new();
    for (key, value) in changes {
        if key == "speed" && value.as_u64().is_some_and(|s| s > 200) {
            refused.insert(key.clone(), json!("above 200"));
        } else {
            applied.insert(key.clone(), value.clone());
        }
    }
    applied.insert("lastError".into(), Value::Object(refused));
    let report = device.report(&applied, NOW);
    assert_eq!(
        payload(&report)["state"]["reported"],
        json!({"mode": "eco", "lastError": {"speed": "above 200"}})
    );
    // The refused value stays in the delta the device is told about at the next resync.
    let get = device.resync(NOW);
    let events = message(
        &mut device,
        "get/accepted",
        json!({"state": {"desired": {"speed": 300, "mode": "eco"},
                         "reported": {"speed": 50, "mode": "eco", "lastError": {"speed": "above 200"}}},
               "metadata": {}, "version": 4, "timestamp": 1, "clientToken": get.client_token}),
    );
    assert_eq!(
        events,
        [ShadowEvent::Delta {
            changes: object(json!({"speed": 300})),
            version: 4
        }]
    );
}

#[test]
fn against_the_service_a_whole_conversation() {
    let mut cloud = ShadowService::new(MemoryShadowStore::default());
    let key = ShadowKey::named("car-1", "cabin");
    let mut device = DeviceShadow::new(key.clone(), "car-1-b0")
        .unwrap()
        .with_reported(object(json!({"temp": 20})))
        .with_version_policy(VersionPolicy::Expect);
    let mut outbox = device.on_connected(NOW);
    let mut deltas = Vec::new();
    let mut run = |cloud: &mut ShadowService<MemoryShadowStore>,
                   device: &mut DeviceShadow,
                   outbox: &mut Vec<ShadowRequest>| {
        while let Some(request) = outbox.pop() {
            let answers = cloud
                .handle_publish(&request.topic, request.payload.as_bytes(), NOW)
                .unwrap();
            for answer in answers {
                for event in device
                    .handle_message(&answer.topic, answer.payload.as_bytes(), NOW)
                    .unwrap()
                {
                    match event {
                        ShadowEvent::Publish(r) => outbox.push(r),
                        ShadowEvent::Delta { changes, .. } => {
                            outbox.push(device.report(&changes, NOW));
                            deltas.push(changes);
                        }
                        ShadowEvent::UpdateAccepted { .. } => {}
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
    };
    run(&mut cloud, &mut device, &mut outbox);
    let doc = cloud.get(&key, b"", NOW).unwrap();
    assert_eq!(doc["state"], json!({"reported": {"temp": 20}}));
    assert_eq!(device.version(), Some(1));

    let owner = cloud
        .update(&key, br#"{"state":{"desired":{"temp":22}}}"#, NOW)
        .unwrap();
    for message in owner.messages {
        for event in device
            .handle_message(&message.topic, message.payload.as_bytes(), NOW)
            .unwrap()
        {
            if let ShadowEvent::Delta { changes, .. } = event {
                let report = device.report(&changes, NOW);
                assert_eq!(payload(&report)["version"], json!(2));
                outbox.push(report);
            }
        }
    }
    run(&mut cloud, &mut device, &mut outbox);
    let doc = cloud.get(&key, b"", NOW).unwrap();
    assert_eq!(
        doc["state"],
        json!({"desired": {"temp": 22}, "reported": {"temp": 22}})
    );
    assert_eq!(device.version(), Some(3));
    assert_eq!(device.pending_requests(), 0);
}

#[test]
fn expected_versions_count_updates_in_flight_and_never_go_back() {
    let mut device = car().with_version_policy(VersionPolicy::Expect);
    let get = device.on_connected(NOW).remove(0);
    // No version known yet: none sent.
    let early = device.report(&object(json!({"x": 1})), NOW);
    assert_eq!(payload(&early).get("version"), None);
    // The get was handled before `early`, which is still in flight and will make version 8.
    let events = message(
        &mut device,
        "get/accepted",
        json!({"state": {}, "metadata": {}, "version": 7, "timestamp": 1,
               "clientToken": get.client_token}),
    );
    let requests = published(&events);
    assert_eq!(
        payload(requests[0]),
        json!({"state": {"reported": {"x": 1}}, "clientToken": "car-2", "version": 8})
    );
    message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 8, "timestamp": 1,
               "clientToken": early.client_token}),
    );
    // Another client's older answer, redelivered, does not take the version back.
    message(
        &mut device,
        "update/accepted",
        json!({"state": {}, "metadata": {}, "version": 5, "timestamp": 1, "clientToken": "x"}),
    );
    assert_eq!(device.version(), Some(8));
    let next = device.report(&object(json!({"y": 1})), NOW);
    assert_eq!(payload(&next)["version"], json!(9));
}

#[test]
fn keys_another_party_reports_are_left_alone() {
    let mut device = car()
        .with_reported(object(json!({"speed": 3})))
        .leaving_reported(["predictedRangeKm"]);
    let get = device.on_connected(NOW).remove(0);
    let events = message(
        &mut device,
        "get/accepted",
        json!({"state": {"reported": {"speed": 3, "predictedRangeKm": 210.5, "old": 1}},
               "metadata": {}, "version": 4, "timestamp": 1, "clientToken": get.client_token}),
    );
    // The device's own stale key goes; the core's prediction stays.
    assert_eq!(
        payload(published(&events)[0]),
        json!({"state": {"reported": {"old": null}}, "clientToken": "car-1"})
    );
}
