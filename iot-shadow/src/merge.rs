//! The update merge, metadata and delta rules, on JSON values.

use serde_json::{Map, Value};

use crate::metadata::Metadata;
use crate::request_json::{Json, Object};

/// Merge an update section into a state section: objects key by key, recursively; `null` deletes a
/// key; arrays and scalars replace whole; objects left empty disappear.
///
/// ```
/// use serde_json::json;
/// let mut state = json!({"a": {"b": 1, "c": 2}, "d": [1, 2]}).as_object().unwrap().clone();
/// let update = json!({"a": {"b": null, "c": null}, "d": [3], "e": {"f": true}});
/// iot_shadow::merge(&mut state, update.as_object().unwrap());
/// assert_eq!(serde_json::Value::Object(state), json!({"d": [3], "e": {"f": true}}));
/// ```
pub fn merge(target: &mut Map<String, Value>, update: &Map<String, Value>) {
    for (key, value) in update {
        match value {
            Value::Null => {
                target.shift_remove(key);
            }
            Value::Object(fields) => {
                let merged = match target.get_mut(key) {
                    Some(Value::Object(existing)) => {
                        merge(existing, fields);
                        existing.is_empty()
                    }
                    _ => {
                        let mut fresh = Map::new();
                        merge(&mut fresh, fields);
                        let empty = fresh.is_empty();
                        target.insert(key.clone(), Value::Object(fresh));
                        empty
                    }
                };
                if merged {
                    target.shift_remove(key);
                }
            }
            other => match target.get_mut(key) {
                Some(slot) => *slot = other.clone(),
                None => {
                    target.insert(key.clone(), other.clone());
                }
            },
        }
    }
}

/// [`merge`] of an update request's section, read straight from the request. Returns whether
/// `target` is now exactly `update` (same keys in the same order, same values): a device that
/// sent its whole state again, so the state's JSON is the request's.
pub(crate) fn merge_request(target: &mut Map<String, Value>, update: &Object<'_>) -> bool {
    // While the update names the target's keys in the target's order, walk both together and
    // look no key up. The first key that must go ends the walk, as does the first key out of
    // order.
    let mut walked = 0;
    let mut gone = None;
    let mut exact = true;
    for ((have_key, have), (key, value)) in target.iter_mut().zip(update) {
        if have_key.as_str() != key.as_ref() {
            break;
        }
        walked += 1;
        match (have, value) {
            (_, Json::Null) => {
                gone = Some(key);
                break;
            }
            (Value::Object(existing), Json::Object(fields)) => {
                exact &= merge_request(existing, fields);
                if existing.is_empty() {
                    gone = Some(key);
                    break;
                }
            }
            (slot, Json::Object(fields)) => {
                let mut fresh = Map::new();
                exact &= merge_request(&mut fresh, fields);
                if fresh.is_empty() {
                    gone = Some(key);
                    break;
                }
                *slot = Value::Object(fresh);
            }
            (slot, other) => assign(slot, other),
        }
    }
    if let Some(key) = gone {
        target.shift_remove(key.as_ref());
        exact = false;
    }
    exact &= walked == update.len() && target.len() == update.len();
    for (key, value) in update.iter().skip(walked) {
        match value {
            Json::Null => {
                target.shift_remove(key.as_ref());
            }
            Json::Object(fields) => {
                let emptied = match target.get_mut(key.as_ref()) {
                    Some(Value::Object(existing)) => {
                        merge_request(existing, fields);
                        existing.is_empty()
                    }
                    _ => {
                        let mut fresh = Map::new();
                        merge_request(&mut fresh, fields);
                        let empty = fresh.is_empty();
                        target.insert(key.clone().into_owned(), Value::Object(fresh));
                        empty
                    }
                };
                if emptied {
                    target.shift_remove(key.as_ref());
                }
            }
            other => match target.get_mut(key.as_ref()) {
                Some(slot) => assign(slot, other),
                None => {
                    target.insert(key.clone().into_owned(), other.to_value());
                }
            },
        }
    }
    exact
}

/// Make `slot` the value `value` reads as, reusing its string or array where the kinds match
/// (a device rewriting its state mostly writes the same kinds again).
fn assign(slot: &mut Value, value: &Json<'_>) {
    match (slot, value) {
        (Value::String(text), Json::String(new)) => {
            text.clear();
            text.push_str(new);
        }
        (Value::Array(items), Json::Array(values)) => {
            items.truncate(values.len());
            for (n, v) in values.iter().enumerate() {
                match items.get_mut(n) {
                    Some(item) => assign(item, v),
                    None => items.push(v.to_value()),
                }
            }
        }
        (slot, value) => *slot = value.to_value(),
    }
}

/// Metadata for a value all written at `timestamp`: objects mirrored key by key, arrays element by
/// element, every other value (and `null`) `{"timestamp": T}`.
///
/// ```
/// use serde_json::json;
/// assert_eq!(
///     iot_shadow::leaf_metadata(&json!({"a": 1, "b": [1, 2]}), 7),
///     json!({"a": {"timestamp": 7}, "b": [{"timestamp": 7}, {"timestamp": 7}]})
/// );
/// ```
pub fn leaf_metadata(value: &Value, timestamp: u64) -> Value {
    // Every leaf is the same `{"timestamp": T}`: build it once and copy it (no hashing per leaf).
    let leaf = Metadata::Timestamp(timestamp).to_value();
    leaf_metadata_from(value, &leaf)
}

fn leaf_metadata_from(value: &Value, leaf: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), leaf_metadata_from(v, leaf)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| leaf_metadata_from(v, leaf)).collect())
        }
        _ => leaf.clone(),
    }
}

/// The delta: keys of `desired` whose value differs from `reported` (missing counts as different),
/// recursing into objects, comparing arrays whole. Keys only in `reported` never appear.
///
/// ```
/// use serde_json::json;
/// let desired = json!({"color": "red", "light": {"on": true, "level": 5}});
/// let reported = json!({"color": "red", "light": {"on": false, "level": 5}, "extra": 1});
/// let delta = iot_shadow::delta(desired.as_object().unwrap(), reported.as_object());
/// assert_eq!(serde_json::Value::Object(delta), json!({"light": {"on": true}}));
/// ```
pub fn delta(
    desired: &Map<String, Value>,
    reported: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, wanted) in desired {
        let have = reported.and_then(|r| r.get(key));
        match (wanted, have) {
            (Value::Object(w), Some(Value::Object(h))) => {
                let sub = delta(w, Some(h));
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (w, Some(h)) if w == h => {}
            (w, _) => {
                out.insert(key.clone(), w.clone());
            }
        }
    }
    out
}

/// The update that turns `from` into `to`: keys of `to` whose value differs from `from`'s
/// (recursing where both are objects, arrays and scalars whole), and `null` for keys only in
/// `from`. Empty when they are equal. [`merge`]d into `from` it gives `to`, provided `to` holds no
/// `null` and no empty object, as no merged state does.
///
/// A device uses it to bring the service's `reported` section to its own state.
///
/// ```
/// use serde_json::json;
/// let cloud = json!({"light": {"on": false, "level": 5}, "old": 1});
/// let device = json!({"light": {"on": true, "level": 5}, "speed": 3});
/// let patch = iot_shadow::diff(cloud.as_object().unwrap(), device.as_object().unwrap());
/// assert_eq!(serde_json::Value::Object(patch.clone()),
///            json!({"light": {"on": true}, "speed": 3, "old": null}));
/// let mut merged = cloud.as_object().unwrap().clone();
/// iot_shadow::merge(&mut merged, &patch);
/// assert_eq!(serde_json::Value::Object(merged), device);
/// ```
pub fn diff(from: &Map<String, Value>, to: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, wanted) in to {
        match (from.get(key), wanted) {
            (Some(Value::Object(have)), Value::Object(want)) => {
                let sub = diff(have, want);
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (Some(have), want) if have == want => {}
            (_, want) => {
                out.insert(key.clone(), want.clone());
            }
        }
    }
    for key in from.keys() {
        if !to.contains_key(key) {
            out.insert(key.clone(), Value::Null);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::request_json::object_of;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            (0i64..4).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 10, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["x", "y", "z"]), inner), 0..3)
                    .prop_map(|e| {
                        Value::Object(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                    }),
            ]
        })
    }

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::vec(
            (prop::sample::select(vec!["a", "b", "c", "d"]), value()),
            0..5,
        )
        .prop_map(|e| e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest! {
        /// Walking in step and looking up give the same state, key order included, whether the
        /// update follows the state's order (as `same_order` makes it) or not.
        #[test]
        fn merging_a_request_is_merge(
            state in object(),
            update in object(),
            order in prop::sample::select(vec!["any", "same", "whole"]),
        ) {
            let update: Map<String, Value> = if order == "whole" {
                // The state sent back whole, with its values changed where the update has them.
                state
                    .iter()
                    .map(|(k, v)| (k.clone(), update.get(k).filter(|u| !u.is_null()).unwrap_or(v).clone()))
                    .collect()
            } else if order == "same" {
                let mut ordered: Map<String, Value> = state
                    .keys()
                    .filter_map(|k| update.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                ordered.extend(update.clone());
                ordered
            } else {
                update
            };
            let mut expected = state.clone();
            merge(&mut expected, &update);
            let mut got = state;
            let request = object_of(&Value::Object(update.clone()));
            let exact = merge_request(&mut got, &request);
            prop_assert_eq!(Value::Object(got.clone()).to_string(), Value::Object(expected).to_string());
            // Exact means the state now reads as the update, byte for byte.
            if exact {
                prop_assert_eq!(Value::Object(got).to_string(), Value::Object(update).to_string());
            }
        }

        /// The size bound the service relies on to change a shadow in place: a merged section
        /// is never longer, serialized, than the old one (nothing if empty) plus the update.
        #[test]
        fn a_merge_is_no_longer_than_its_parts(state in object(), update in object()) {
            let len = |map: &Map<String, Value>| Value::Object(map.clone()).to_string().len();
            let old = if state.is_empty() { 0 } else { len(&state) };
            let mut merged = state;
            merge(&mut merged, &update);
            let new = if merged.is_empty() { 0 } else { len(&merged) };
            prop_assert!(new <= old + len(&update), "{new} > {old} + {}", len(&update));
        }
    }
}
