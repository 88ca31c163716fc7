//! A shadow's metadata as a compact tree: when each part of a state section was last written.
//!
//! AWS's `metadata` document mirrors the state (objects key by key, arrays element by element)
//! and puts `{"timestamp": T}` where the state holds a scalar or `null`. Kept as JSON values that
//! is a map allocation per leaf; here a leaf is a number, and an object's entries a vector in the
//! state's key order.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::json_writer::{TimestampText, write_key};
use crate::request_json::{Json, Object};

/// The metadata of one state value.
///
/// ```
/// use iot_shadow::Metadata;
/// use serde_json::json;
/// let meta = Metadata::written(&json!({"on": true, "rgb": [1, 2]}), 7);
/// assert_eq!(meta.to_value(), json!({"on": {"timestamp": 7}, "rgb": [{"timestamp": 7}, {"timestamp": 7}]}));
/// assert_eq!(Metadata::from_value(&meta.to_value()), Some(meta));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// `{"timestamp": T}`: a scalar or `null` written at epoch second `T`.
    Timestamp(u64),
    /// An object's metadata, one entry per key, in the state's key order.
    Object(Vec<(String, Metadata)>),
    /// An array's metadata, one per element.
    Array(Vec<Metadata>),
}

impl Metadata {
    /// The metadata of `value` written whole at `timestamp`.
    pub fn written(value: &Value, timestamp: u64) -> Metadata {
        match value {
            Value::Object(fields) => Metadata::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Metadata::written(v, timestamp)))
                    .collect(),
            ),
            Value::Array(items) => Metadata::Array(
                items
                    .iter()
                    .map(|v| Metadata::written(v, timestamp))
                    .collect(),
            ),
            _ => Metadata::Timestamp(timestamp),
        }
    }

    /// The metadata of a request's value written whole at `timestamp`.
    pub(crate) fn written_request(value: &Json<'_>, timestamp: u64) -> Metadata {
        match value {
            Json::Object(entries) => Metadata::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone().into_owned(),
                            Metadata::written_request(v, timestamp),
                        )
                    })
                    .collect(),
            ),
            Json::Array(items) => Metadata::Array(
                items
                    .iter()
                    .map(|v| Metadata::written_request(v, timestamp))
                    .collect(),
            ),
            _ => Metadata::Timestamp(timestamp),
        }
    }

    /// Become the metadata of `value` written whole at `timestamp`, reusing this one's arrays
    /// where `value` has an array too.
    fn stamp(&mut self, value: &Json<'_>, timestamp: u64) {
        match (self, value) {
            (Metadata::Array(items), Json::Array(values)) => {
                items.truncate(values.len());
                for (n, v) in values.iter().enumerate() {
                    match items.get_mut(n) {
                        Some(item) => item.stamp(v, timestamp),
                        None => items.push(Metadata::written_request(v, timestamp)),
                    }
                }
            }
            (slot, value) => *slot = Metadata::written_request(value, timestamp),
        }
    }

    /// As a JSON value, the way AWS writes it.
    pub fn to_value(&self) -> Value {
        match self {
            Metadata::Timestamp(t) => {
                let mut leaf = Map::new();
                leaf.insert("timestamp".into(), (*t).into());
                Value::Object(leaf)
            }
            Metadata::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, m)| (k.clone(), m.to_value()))
                    .collect(),
            ),
            Metadata::Array(items) => Value::Array(items.iter().map(Metadata::to_value).collect()),
        }
    }

    /// Read metadata from JSON: `{"timestamp": T}` with `T` a non-negative integer is a leaf,
    /// any other object or array is mirrored. `None` if anything else appears where metadata
    /// should be (a number, a string, …).
    pub fn from_value(value: &Value) -> Option<Metadata> {
        match value {
            Value::Object(fields) => {
                if fields.len() == 1 {
                    if let Some(t) = fields.get("timestamp").and_then(Value::as_u64) {
                        return Some(Metadata::Timestamp(t));
                    }
                }
                fields
                    .iter()
                    .map(|(k, v)| Some((k.clone(), Metadata::from_value(v)?)))
                    .collect::<Option<Vec<_>>>()
                    .map(Metadata::Object)
            }
            Value::Array(items) => items
                .iter()
                .map(Metadata::from_value)
                .collect::<Option<Vec<_>>>()
                .map(Metadata::Array),
            _ => None,
        }
    }

    /// The entries if this is an object's metadata.
    pub(crate) fn as_object(&self) -> Option<&[(String, Metadata)]> {
        match self {
            Metadata::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// Append the JSON of this metadata to `buf`.
    pub(crate) fn write_json(&self, buf: &mut Vec<u8>, text: &mut TimestampText) {
        match self {
            Metadata::Timestamp(t) => text.write_leaf(buf, *t),
            Metadata::Object(entries) => {
                buf.push(b'{');
                for (n, (key, meta)) in entries.iter().enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    write_key(buf, key);
                    meta.write_json(buf, text);
                }
                buf.push(b'}');
            }
            Metadata::Array(items) => {
                buf.push(b'[');
                for (n, meta) in items.iter().enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    meta.write_json(buf, text);
                }
                buf.push(b']');
            }
        }
    }
}

/// Append the metadata of `fields` written whole at `timestamp` (the JSON of
/// [`Metadata::written`], without building it).
pub(crate) fn write_written(
    fields: &Object<'_>,
    timestamp: u64,
    buf: &mut Vec<u8>,
    text: &mut TimestampText,
) {
    buf.push(b'{');
    for (n, (key, value)) in fields.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        write_key(buf, key);
        write_written_value(value, timestamp, buf, text);
    }
    buf.push(b'}');
}

pub(crate) fn write_written_value(
    value: &Json<'_>,
    timestamp: u64,
    buf: &mut Vec<u8>,
    text: &mut TimestampText,
) {
    match value {
        Json::Object(fields) => write_written(fields, timestamp, buf, text),
        Json::Array(items) => {
            buf.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    buf.push(b',');
                }
                write_written_value(item, timestamp, buf, text);
            }
            buf.push(b']');
        }
        _ => text.write_leaf(buf, timestamp),
    }
}

/// Finds keys in an object's metadata entries. Entries mirror the state's key order, and updates
/// usually name keys in that order too, so each search starts where the last one ended and most
/// take one comparison.
#[derive(Debug, Default)]
pub(crate) struct KeyFinder {
    next: usize,
    compared: usize,
}

impl KeyFinder {
    /// The position of `key` in `entries`.
    pub(crate) fn find(&mut self, entries: &[(String, Metadata)], key: &str) -> Option<usize> {
        let start = self.next.min(entries.len());
        let (before, after) = entries.split_at(start);
        let hit = |(n, (k, _)): (usize, &(String, Metadata))| (k == key).then_some(n);
        let found = after
            .iter()
            .enumerate()
            .find_map(hit)
            .map(|i| start + i)
            .or_else(|| before.iter().enumerate().find_map(hit));
        self.compared += match found {
            Some(n) if n >= start => n - start + 1,
            Some(n) => after.len() + n + 1,
            None => entries.len(),
        };
        if let Some(n) = found {
            self.next = n + 1;
        }
        found
    }

    /// Keys compared so far.
    pub(crate) fn compared(&self) -> usize {
        self.compared
    }
}

/// Positions of `update`'s keys among `entries`, for updates whose keys come in an order the
/// scan handles badly.
fn index<'u>(entries: &[(String, Metadata)], update: &'u Object<'_>) -> HashMap<&'u str, usize> {
    let keys: HashSet<&'u str> = update.iter().map(|(k, _)| k.as_ref()).collect();
    let mut index = HashMap::with_capacity(keys.len().min(entries.len()));
    for (n, (key, _)) in entries.iter().enumerate() {
        if let Some(k) = keys.get(key.as_str()) {
            index.insert(*k, n);
        }
    }
    index
}

/// Apply an update section to its metadata object, in place, before the state itself is merged:
/// paths the update writes get `timestamp`, nulled paths lose their metadata, emptied objects
/// disappear, untouched paths keep theirs. `old_state` is the section as it was before the update:
/// where it held an object, the metadata there mirrors it and is merged into; elsewhere the
/// written value's metadata replaces whatever was there. Existing keys keep their place and new
/// ones are appended in the update's order, as in the state.
///
/// Returns whether `meta` is now exactly the metadata of `update` written whole (every entry
/// stamped, in the update's order, none left over): then its JSON is the request's.
pub(crate) fn merge_metadata(
    meta: &mut Vec<(String, Metadata)>,
    old_state: Option<&Map<String, Value>>,
    update: &Object<'_>,
    timestamp: u64,
) -> bool {
    let mut exact = meta.len() == update.len();
    // Scan while the scan is cheap (keys in order); past a linear budget, index the keys once.
    let budget = 2 * (meta.len() + update.len()) + 16;
    let mut positions: Option<HashMap<&str, usize>> = None;
    let mut finder = KeyFinder::default();
    // Entries to drop, marked during the pass and removed at its end (one shift, not one per key).
    let mut removed: Vec<bool> = Vec::new();
    let mut appended: Vec<(String, Metadata)> = Vec::new();
    let len = meta.len();
    for (n, (key, value)) in update.iter().enumerate() {
        let position = match &positions {
            Some(positions) => positions.get(key.as_ref()).copied(),
            None => {
                let found = finder.find(meta, key);
                if finder.compared() > budget {
                    positions = Some(index(meta, update));
                }
                found
            }
        };
        exact &= position == Some(n);
        let mut remove = |n: usize| {
            if removed.is_empty() {
                removed = vec![false; len];
            }
            if let Some(flag) = removed.get_mut(n) {
                *flag = true;
            }
        };
        match value {
            Json::Null => {
                exact = false;
                if let Some(n) = position {
                    remove(n);
                }
            }
            Json::Object(fields) => {
                let old_child = old_state
                    .and_then(|s| s.get(key.as_ref()))
                    .and_then(Value::as_object);
                let existing = position.and_then(|n| meta.get_mut(n).map(|(_, m)| m));
                match (existing, old_child) {
                    // The old state held an object here: merge into its metadata in place.
                    (Some(Metadata::Object(child)), Some(_)) => {
                        exact &= merge_metadata(child, old_child, fields, timestamp);
                        if child.is_empty() {
                            if let Some(n) = position {
                                remove(n);
                            }
                        }
                    }
                    (existing, _) => {
                        let mut child = Vec::new();
                        exact &= merge_metadata(&mut child, None, fields, timestamp);
                        match (existing, child.is_empty()) {
                            (Some(slot), false) => *slot = Metadata::Object(child),
                            (Some(_), true) => {
                                if let Some(n) = position {
                                    remove(n);
                                }
                            }
                            (None, false) => {
                                appended.push((key.clone().into_owned(), Metadata::Object(child)))
                            }
                            (None, true) => {}
                        }
                    }
                }
            }
            other => match position.and_then(|n| meta.get_mut(n)) {
                Some((_, slot)) => slot.stamp(other, timestamp),
                None => appended.push((
                    key.clone().into_owned(),
                    Metadata::written_request(other, timestamp),
                )),
            },
        }
    }
    if !removed.is_empty() {
        exact = false;
        let mut flags = removed.into_iter();
        meta.retain(|_| !flags.next().unwrap_or(false));
    }
    exact &= appended.is_empty();
    meta.append(&mut appended);
    exact
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::request_json::object_of;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn entries(meta: Metadata) -> Vec<(String, Metadata)> {
        match meta {
            Metadata::Object(entries) => entries,
            _ => Vec::new(),
        }
    }

    #[test]
    fn leaves_and_containers_round_trip_through_json() {
        let value = json!({"a": 1, "b": [null, {"c": "x"}, []], "d": {"e": {}}, "timestamp": 3});
        let meta = Metadata::written(&value, 9);
        let json = meta.to_value();
        assert_eq!(
            json,
            json!({"a": {"timestamp": 9}, "b": [{"timestamp": 9}, {"c": {"timestamp": 9}}, []],
                   "d": {"e": {}}, "timestamp": {"timestamp": 9}})
        );
        assert_eq!(Metadata::from_value(&json), Some(meta));
    }

    #[test]
    fn written_json_is_serde_json_s() {
        let meta = Metadata::written(&json!({"k\"1\n": [1, {"z": null}], "é": 2}), 1_591_140_517);
        let mut buf = Vec::new();
        meta.write_json(&mut buf, &mut TimestampText::default());
        assert_eq!(
            buf,
            serde_json::to_vec(&meta.to_value()).unwrap_or_default()
        );
    }

    #[test]
    fn written_json_without_building_the_metadata() {
        let value = json!({"a": [1, [2, {"b": null}], {}], "c": {"d": "x"}, "e\t": true});
        let mut buf = Vec::new();
        write_written(
            &object_of(&value),
            12,
            &mut buf,
            &mut TimestampText::default(),
        );
        let built = Metadata::written(&value, 12).to_value();
        assert_eq!(buf, serde_json::to_vec(&built).unwrap_or_default());
    }

    #[test]
    fn from_value_refuses_what_is_not_metadata() {
        assert_eq!(Metadata::from_value(&json!(3)), None);
        assert_eq!(Metadata::from_value(&json!({"a": "x"})), None);
        assert_eq!(Metadata::from_value(&json!({"timestamp": -1})), None);
        assert_eq!(Metadata::from_value(&json!([{"a": null}])), None);
        // A state key named "timestamp" holding an object is mirrored, not a leaf.
        assert_eq!(
            Metadata::from_value(&json!({"timestamp": {"timestamp": 2}})),
            Some(Metadata::Object(vec![(
                "timestamp".into(),
                Metadata::Timestamp(2)
            )]))
        );
    }

    #[test]
    fn finder_searches_from_the_last_hit_and_wraps() {
        let meta = entries(Metadata::written(&json!({"a": 1, "b": 1, "c": 1}), 1));
        let mut finder = KeyFinder::default();
        assert_eq!(finder.find(&meta, "b"), Some(1));
        assert_eq!(finder.find(&meta, "c"), Some(2));
        assert_eq!(finder.find(&meta, "a"), Some(0));
        assert_eq!(finder.find(&meta, "z"), None);
        assert_eq!(finder.find(&[], "a"), None);
    }

    #[test]
    fn merge_keeps_places_appends_new_keys_and_drops_emptied_objects() {
        let old = object(json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1], "d": {"z": 1}}));
        let mut meta = entries(Metadata::written(&Value::Object(old.clone()), 1));
        let update = object_of(
            &json!({"new": 5, "b": {"x": null, "w": 3}, "a": null, "d": {"z": null}, "c": {"q": {}}}),
        );
        merge_metadata(&mut meta, Some(&old), &update, 2);
        assert_eq!(
            Metadata::Object(meta).to_value(),
            json!({"b": {"y": {"timestamp": 1}, "w": {"timestamp": 2}}, "new": {"timestamp": 2}})
        );
    }

    #[test]
    fn finder_counts_comparisons() {
        let meta = entries(Metadata::written(&json!({"a": 1, "b": 1, "c": 1}), 1));
        let mut finder = KeyFinder::default();
        finder.find(&meta, "a");
        finder.find(&meta, "b");
        assert_eq!(finder.compared(), 2);
        finder.find(&meta, "a");
        assert_eq!(finder.compared(), 2 + 2);
        finder.find(&meta, "z");
        assert_eq!(finder.compared(), 4 + 3);
    }

    #[test]
    fn large_merges_use_the_index_with_the_same_result() {
        let old: Map<String, Value> = (0..40).map(|i| (format!("k{i}"), json!(i))).collect();
        let update: Map<String, Value> = (0..40)
            .rev()
            .map(|i| {
                let v = match i % 3 {
                    0 => Value::Null,
                    1 => json!({"o": i}),
                    _ => json!(i),
                };
                (format!("k{}", i * 2), v)
            })
            .collect();
        let mut indexed = entries(Metadata::written(&Value::Object(old.clone()), 1));
        merge_metadata(
            &mut indexed,
            Some(&old),
            &object_of(&Value::Object(update.clone())),
            2,
        );
        // The same update one key at a time, which always scans.
        let mut scanned = entries(Metadata::written(&Value::Object(old.clone()), 1));
        let mut state = old.clone();
        for (k, v) in &update {
            let one = object_of(&json!({ k.as_str(): v }));
            merge_metadata(&mut scanned, Some(&state), &one, 2);
            crate::merge::merge_request(&mut state, &one);
        }
        assert_eq!(indexed, scanned);
        let keys: Vec<&str> = indexed.iter().map(|(k, _)| k.as_str()).collect();
        let state_keys: Vec<&str> = state.keys().map(String::as_str).collect();
        assert_eq!(keys, state_keys);
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![Just(Value::Null), (0i64..4).prop_map(Value::from)];
        leaf.prop_recursive(2, 10, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["x", "y"]), inner), 0..3)
                    .prop_map(|e| {
                        Value::Object(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                    }),
            ]
        })
    }

    fn state() -> impl proptest::strategy::Strategy<Value = Map<String, Value>> {
        use proptest::prelude::*;
        prop::collection::vec((prop::sample::select(vec!["a", "b", "c"]), value()), 0..4)
            .prop_map(|e| e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest::proptest! {
        /// Exact means the metadata is now the update's, written whole.
        #[test]
        fn exact_merges_are_the_update_written_whole(old in state(), update in state(), whole in proptest::prelude::any::<bool>()) {
            let update: Map<String, Value> = if whole {
                old.iter()
                    .map(|(k, v)| (k.clone(), update.get(k).cloned().unwrap_or_else(|| v.clone())))
                    .collect()
            } else {
                update
            };
            let mut meta = entries(Metadata::written(&Value::Object(old.clone()), 1));
            let request = object_of(&Value::Object(update.clone()));
            if merge_metadata(&mut meta, Some(&old), &request, 2) {
                proptest::prop_assert_eq!(Metadata::Object(meta), Metadata::written(&Value::Object(update), 2));
            }
        }
    }
}
