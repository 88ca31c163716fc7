//! Property tests of the merge, diff and delta rules and of the service's versions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use iot_shadow::{MemoryShadowStore, ShadowKey, ShadowService, delta, diff, merge};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        "[a-z]{0,5}".prop_map(Value::from),
    ]
}

/// A stored-state value: no nulls anywhere, no empty objects.
fn state_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 1..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn state() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-e]", state_value(), 0..5).prop_map(|m| m.into_iter().collect())
}

/// An update: like a state, but nulls (deletions) allowed at any key.
fn update_value() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), scalar()].prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn update() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-e]", update_value(), 0..5).prop_map(|m| m.into_iter().collect())
}

/// The update that undoes `update` applied to `before`.
fn inverse(before: &Map<String, Value>, update: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in update {
        let undo = match (before.get(key), value) {
            (None, _) => Value::Null,
            (Some(Value::Object(old)), Value::Object(new)) => Value::Object(inverse(old, new)),
            (Some(old), _) => old.clone(),
        };
        out.insert(key.clone(), undo);
    }
    out
}

fn is_subset(desired: &Map<String, Value>, reported: &Map<String, Value>) -> bool {
    desired.iter().all(|(k, d)| match (d, reported.get(k)) {
        (Value::Object(d), Some(Value::Object(r))) => is_subset(d, r),
        (d, Some(r)) => d == r,
        (_, None) => false,
    })
}

fn no_nulls_or_empty_objects(map: &Map<String, Value>) -> bool {
    map.values().all(|v| match v {
        Value::Null => false,
        Value::Object(m) => !m.is_empty() && no_nulls_or_empty_objects(m),
        _ => true,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn update_then_inverse_restores(before in state(), update in update()) {
        let mut state = before.clone();
        merge(&mut state, &update);
        prop_assert!(no_nulls_or_empty_objects(&state));
        let undo = inverse(&before, &update);
        merge(&mut state, &undo);
        prop_assert_eq!(state, before);
    }

    #[test]
    fn delta_is_empty_exactly_when_desired_is_a_subset(desired in state(), reported in state(), copy in any::<bool>()) {
        // Half the time, make desired a subset of reported on purpose.
        let reported = if copy {
            let mut r = reported;
            merge(&mut r, &desired);
            r
        } else {
            reported
        };
        let d = delta(&desired, Some(&reported));
        prop_assert_eq!(d.is_empty(), is_subset(&desired, &reported));
        // Keys only in reported never appear in the delta.
        prop_assert!(d.keys().all(|k| desired.contains_key(k)));
    }

    #[test]
    fn diff_merged_into_from_gives_to(from in state(), to in state(), update in update()) {
        // Half the time `to` is near `from`, as a device's state is near the cloud's.
        let to = if update.len() % 2 == 0 {
            let mut near = from.clone();
            merge(&mut near, &update);
            near
        } else {
            to
        };
        let patch = diff(&from, &to);
        prop_assert_eq!(patch.is_empty(), from == to);
        let mut merged = from.clone();
        merge(&mut merged, &patch);
        prop_assert_eq!(merged, to);
    }

    #[test]
    fn version_increases_by_one_per_accepted_update(updates in prop::collection::vec((update(), update()), 1..8)) {
        let mut s = ShadowService::new(MemoryShadowStore::default());
        let key = ShadowKey::classic("thing");
        let mut version = 0u64;
        for (i, (desired, reported)) in updates.into_iter().enumerate() {
            let body = json!({"state": {"desired": desired, "reported": reported}}).to_string();
            match s.update(&key, body.as_bytes(), 1_000 * i as u64) {
                Ok(outcome) => {
                    version += 1;
                    prop_assert_eq!(&outcome.accepted["version"], &json!(version));
                    let doc = s.get(&key, b"", 1_000 * i as u64).unwrap();
                    prop_assert_eq!(&doc["version"], &json!(version));
                }
                Err((e, _)) => prop_assert!(matches!(e.code(), 400 | 413), "{e}"),
            }
        }
    }

    #[test]
    fn no_update_payload_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), value in update_value()) {
        let mut s = ShadowService::new(MemoryShadowStore::default());
        let _ = s.handle_publish("$aws/things/t/shadow/update", &bytes, 0);
        let wrapped = json!({"state": {"desired": value.clone(), "reported": value.clone()}, "version": 0}).to_string();
        let _ = s.handle_publish("$aws/things/t/shadow/update", wrapped.as_bytes(), 0);
        let _ = s.handle_publish("$aws/things/t/shadow/update", value.to_string().as_bytes(), 0);
        let _ = s.handle_publish("$aws/things/t/shadow/get", &bytes, 0);
    }
}

/// `meta` mirrors `state`: same keys in the same order for objects, one entry per array element,
/// `{"timestamp": N}` for every scalar.
fn mirrors(state: &Value, meta: &Value) -> bool {
    match (state, meta) {
        (Value::Object(s), Value::Object(m)) => {
            s.keys().eq(m.keys()) && s.iter().all(|(k, v)| mirrors(v, &m[k]))
        }
        (Value::Array(s), Value::Array(m)) => {
            s.len() == m.len() && s.iter().zip(m).all(|(v, mv)| mirrors(v, mv))
        }
        (_, Value::Object(m)) => m.len() == 1 && m.get("timestamp").is_some_and(Value::is_u64),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn metadata_mirrors_state_after_any_updates(updates in prop::collection::vec((update(), update()), 1..8)) {
        let mut s = ShadowService::new(MemoryShadowStore::default());
        let key = ShadowKey::classic("thing");
        for (i, (desired, reported)) in updates.into_iter().enumerate() {
            let body = json!({"state": {"desired": desired, "reported": reported}}).to_string();
            let _ = s.update(&key, body.as_bytes(), 1_000 * i as u64);
            if let Ok(doc) = s.get(&key, b"", 1_000 * i as u64) {
                for section in ["desired", "reported"] {
                    match (doc["state"].get(section), doc["metadata"].get(section)) {
                        (Some(state), Some(meta)) => prop_assert!(mirrors(state, meta), "{doc}"),
                        (None, None) => {}
                        _ => prop_assert!(false, "section and metadata disagree: {doc}"),
                    }
                }
            }
        }
    }
}
