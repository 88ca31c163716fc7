//! The `update/delta` payload's `state` and `metadata`, written straight from a shadow in one walk
//! of `desired` against `reported`: the same JSON as serializing [`delta`](crate::delta) and the
//! desired metadata of its keys, without building either as a document first.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::json_writer::{TimestampText, write_key, write_value};
use crate::metadata::{KeyFinder, Metadata};
use crate::request_json::Object;

/// A delta's JSON being written: the state and its metadata.
#[derive(Debug, Default)]
struct DeltaJson {
    state: Vec<u8>,
    metadata: Vec<u8>,
}

/// A shadow's delta as JSON, kept with the shadow's snapshot: the delta state object, the desired
/// metadata of its keys, and for each top-level key of `desired`, in order, where its entry lies
/// in both (none if that key has no delta). A top-level key the next update does not write keeps
/// its entry, so the next delta copies it instead of comparing that part of the state again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Delta {
    state: Vec<u8>,
    metadata: Vec<u8>,
    entries: Vec<Option<(Range<usize>, Range<usize>)>>,
}

/// What of the previous delta still holds for an update.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeltaReuse<'a> {
    /// The delta before the update.
    pub(crate) previous: &'a Delta,
    /// Per top-level key of `desired` before the update, whether the update left it alone (`None`:
    /// it did not touch `desired`). The n-th key left alone is the n-th such key after it.
    pub(crate) kept: Option<&'a [bool]>,
    /// The top-level keys the update wrote in `desired` and in `reported`: their entries are
    /// worked out again.
    pub(crate) written: [Option<&'a Object<'a>>; 2],
}

impl DeltaReuse<'_> {
    fn writes(&self, key: &str) -> bool {
        self.written
            .iter()
            .flatten()
            .any(|update| update.iter().any(|(k, _)| k == key))
    }

    fn writes_desired(&self, key: &str) -> bool {
        self.written[0].is_some_and(|update| update.iter().any(|(k, _)| k == key))
    }
}

impl Delta {
    /// Whether the delta has no key (then no `update/delta` message is sent).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }

    /// The delta state object.
    pub(crate) fn state(&self) -> &[u8] {
        &self.state
    }

    /// The desired metadata of the delta's keys.
    pub(crate) fn metadata(&self) -> &[u8] {
        &self.metadata
    }
}

/// The delta of `desired` against `reported` with its metadata taken from `desired_meta`: the
/// same JSON as serializing [`delta`](crate::delta) and the desired metadata of its keys. Entries
/// `reuse` says still hold are copied.
pub(crate) fn delta_of(
    desired: &Map<String, Value>,
    reported: Option<&Map<String, Value>>,
    desired_meta: Option<&Metadata>,
    reuse: Option<DeltaReuse<'_>>,
) -> Delta {
    let mut out = DeltaJson::default();
    let mut entries = Vec::with_capacity(desired.len());
    let mut text = TimestampText::default();
    let meta = desired_meta.and_then(Metadata::as_object);
    let mut finder = KeyFinder::default();
    let mut reported_in_order = reported.map(InOrder::new);
    // The previous entries of the keys still there, in order.
    let mut kept = reuse.map(|r| {
        let flags = r.kept;
        r.previous
            .entries
            .iter()
            .enumerate()
            .filter(move |(n, _)| flags.is_none_or(|f| f.get(*n).copied().unwrap_or(false)))
            .map(|(_, entry)| entry)
    });
    let mut any = false;
    out.state.push(b'{');
    out.metadata.push(b'{');
    for (key, wanted) in desired {
        let previous = match (&reuse, &mut kept) {
            (Some(r), Some(kept)) if !r.writes_desired(key) => kept.next(),
            _ => None,
        };
        let copy = match (&reuse, previous) {
            (Some(r), Some(entry)) if !r.writes(key) => Some((r.previous, entry)),
            _ => None,
        };
        let marks = (out.state.len(), out.metadata.len());
        let wrote = match copy {
            Some((_, None)) => false,
            Some((previous, Some((state, metadata)))) => {
                match (
                    previous.state.get(state.clone()),
                    previous.metadata.get(metadata.clone()),
                ) {
                    (Some(state), Some(metadata)) => {
                        if any {
                            out.state.push(b',');
                            out.metadata.push(b',');
                        }
                        out.state.extend_from_slice(state);
                        out.metadata.extend_from_slice(metadata);
                        true
                    }
                    _ => false,
                }
            }
            None => {
                let have = reported_in_order.as_mut().and_then(|r| r.get(key));
                let key_meta = || {
                    meta.and_then(|m| finder.find(m, key).and_then(|n| m.get(n)))
                        .map(|(_, m)| m)
                };
                write_entry(key, wanted, have, key_meta, any, &mut out, &mut text)
            }
        };
        entries.push(wrote.then(|| {
            // The entry without the comma before it.
            let skip = usize::from(any);
            (
                marks.0 + skip..out.state.len(),
                marks.1 + skip..out.metadata.len(),
            )
        }));
        any |= wrote;
    }
    out.state.push(b'}');
    out.metadata.push(b'}');
    Delta {
        state: out.state,
        metadata: out.metadata,
        entries,
    }
}

/// Write the delta object of `desired` against `reported`; whether it has any key.
fn write_delta(
    desired: &Map<String, Value>,
    reported: Option<&Map<String, Value>>,
    meta: Option<&[(String, Metadata)]>,
    out: &mut DeltaJson,
    text: &mut TimestampText,
) -> bool {
    let mut finder = KeyFinder::default();
    let mut reported = reported.map(InOrder::new);
    let mut any = false;
    out.state.push(b'{');
    out.metadata.push(b'{');
    for (key, wanted) in desired {
        let have = reported.as_mut().and_then(|r| r.get(key));
        let key_meta = || {
            meta.and_then(|m| finder.find(m, key).and_then(|n| m.get(n)))
                .map(|(_, m)| m)
        };
        any |= write_entry(key, wanted, have, key_meta, any, out, text);
    }
    out.state.push(b'}');
    out.metadata.push(b'}');
    any
}

/// Write `key`'s delta entry, `"key":…` in both documents (after a comma if `any`), if it has
/// one: whether it had. `meta` finds the key's desired metadata.
fn write_entry<'m>(
    key: &str,
    wanted: &Value,
    have: Option<&Value>,
    meta: impl FnOnce() -> Option<&'m Metadata>,
    any: bool,
    out: &mut DeltaJson,
    text: &mut TimestampText,
) -> bool {
    match (wanted, have) {
        (Value::Object(w), Some(Value::Object(h))) => {
            // Look before writing: most nested objects have no delta.
            if !differs(w, h) {
                return false;
            }
            let marks = (out.state.len(), out.metadata.len());
            open_entry(out, any, key);
            let child_meta = meta().and_then(Metadata::as_object);
            if write_delta(w, Some(h), child_meta, out, text) {
                true
            } else {
                out.state.truncate(marks.0);
                out.metadata.truncate(marks.1);
                false
            }
        }
        (w, Some(h)) if w == h => false,
        (w, _) => {
            open_entry(out, any, key);
            write_value(&mut out.state, w);
            let m = meta();
            match w {
                Value::Object(fields) => {
                    write_whole_metadata(fields, m.and_then(Metadata::as_object), out, text)
                }
                _ => match m {
                    Some(m) => m.write_json(&mut out.metadata, text),
                    None => out.metadata.extend_from_slice(b"null"),
                },
            }
            true
        }
    }
}

/// Whether the delta of `desired` against `reported` has any key.
fn differs(desired: &Map<String, Value>, reported: &Map<String, Value>) -> bool {
    let mut reported = InOrder::new(reported);
    desired
        .iter()
        .any(|(key, wanted)| match (wanted, reported.get(key)) {
            (Value::Object(w), Some(Value::Object(h))) => differs(w, h),
            (w, Some(h)) => w != h,
            (_, None) => true,
        })
}

/// Looks keys up in a map that is usually asked in its own order (desired and reported mostly
/// share one): the next entry is tried first, and only a miss is looked up by hash.
struct InOrder<'m> {
    map: &'m Map<String, Value>,
    next: std::iter::Peekable<serde_json::map::Iter<'m>>,
}

impl<'m> InOrder<'m> {
    fn new(map: &'m Map<String, Value>) -> InOrder<'m> {
        InOrder {
            map,
            next: map.iter().peekable(),
        }
    }

    fn get(&mut self, key: &str) -> Option<&'m Value> {
        match self.next.next_if(|(k, _)| k.as_str() == key) {
            Some((_, value)) => Some(value),
            None => self.map.get(key),
        }
    }
}

/// `,"key":` (or without the comma for the first entry) in both documents.
fn open_entry(out: &mut DeltaJson, any: bool, key: &str) {
    if any {
        out.state.push(b',');
        out.metadata.push(b',');
    }
    write_key(&mut out.state, key);
    write_key(&mut out.metadata, key);
}

/// The metadata of an object that is in the delta whole: key by key from `meta`, `null` where
/// `meta` has none.
fn write_whole_metadata(
    fields: &Map<String, Value>,
    meta: Option<&[(String, Metadata)]>,
    out: &mut DeltaJson,
    text: &mut TimestampText,
) {
    let mut finder = KeyFinder::default();
    out.metadata.push(b'{');
    for (n, (key, value)) in fields.iter().enumerate() {
        if n > 0 {
            out.metadata.push(b',');
        }
        write_key(&mut out.metadata, key);
        let m = meta
            .and_then(|m| finder.find(m, key).and_then(|i| m.get(i)))
            .map(|(_, m)| m);
        match value {
            Value::Object(sub) => {
                write_whole_metadata(sub, m.and_then(Metadata::as_object), out, text)
            }
            _ => match m {
                Some(m) => m.write_json(&mut out.metadata, text),
                None => out.metadata.extend_from_slice(b"null"),
            },
        }
    }
    out.metadata.push(b'}');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::merge::{delta, merge_request};
    use crate::metadata::merge_metadata;
    use crate::request_json::object_of;

    /// What the service wrote before: the delta as a document, then its metadata key by key.
    fn reference(desired: &Value, reported: &Value, meta: &Value) -> Option<(String, String)> {
        fn delta_metadata(delta: &Map<String, Value>, desired_meta: Option<&Value>) -> Value {
            let meta = desired_meta.and_then(Value::as_object);
            Value::Object(
                delta
                    .iter()
                    .map(|(k, v)| {
                        let m = meta.and_then(|m| m.get(k));
                        let sub = match v {
                            Value::Object(fields) => delta_metadata(fields, m),
                            _ => m.cloned().unwrap_or(Value::Null),
                        };
                        (k.clone(), sub)
                    })
                    .collect(),
            )
        }
        let d = desired.as_object()?;
        let delta = delta(d, reported.as_object());
        (!delta.is_empty()).then(|| {
            let meta = delta_metadata(&delta, Some(meta));
            (Value::Object(delta).to_string(), meta.to_string())
        })
    }

    fn check(desired: Value, reported: Value, meta: Value) {
        let expected = reference(&desired, &reported, &meta);
        let meta = Metadata::from_value(&meta);
        let got = desired.as_object().and_then(|d| {
            let delta = delta_of(d, reported.as_object(), meta.as_ref(), None);
            (!delta.is_empty()).then(|| text(&delta))
        });
        assert_eq!(got, expected);
    }

    fn text(delta: &Delta) -> (String, String) {
        (
            String::from_utf8(delta.state().to_vec()).unwrap_or_default(),
            String::from_utf8(delta.metadata().to_vec()).unwrap_or_default(),
        )
    }

    /// The delta after `desired_update` and `reported_update` (few keys each), worked out again
    /// only where they wrote, is the delta worked out whole.
    fn check_reuse(desired: Value, reported: Value, desired_update: Value, reported_update: Value) {
        let mut d = desired.as_object().cloned().unwrap_or_default();
        let mut r = reported.as_object().cloned().unwrap_or_default();
        let meta = Metadata::written(&desired, 1);
        let before = delta_of(&d, Some(&r), Some(&meta), None);
        let du = object_of(&desired_update);
        let ru = object_of(&reported_update);
        let kept: Vec<bool> = d.keys().map(|k| !du.iter().any(|(u, _)| u == k)).collect();
        let mut meta_entries = match meta {
            Metadata::Object(entries) => entries,
            _ => Vec::new(),
        };
        merge_metadata(&mut meta_entries, Some(&d), &du, 2);
        merge_request(&mut d, &du);
        merge_request(&mut r, &ru);
        let meta = Metadata::Object(meta_entries);
        let reuse = DeltaReuse {
            previous: &before,
            kept: Some(&kept),
            written: [Some(&du), Some(&ru)],
        };
        let again = delta_of(&d, Some(&r), Some(&meta), Some(reuse));
        let whole = delta_of(&d, Some(&r), Some(&meta), None);
        assert_eq!(
            text(&again),
            text(&whole),
            "{desired_update} {reported_update}"
        );
        assert_eq!(again, whole);
    }

    #[test]
    fn entries_not_written_are_copied_from_the_last_delta() {
        let desired = json!({"a": 1, "b": {"c": 2}, "d": [1], "e": "x"});
        let reported = json!({"a": 2, "b": {"c": 2}, "d": [1], "e": "y"});
        for (du, ru) in [
            (json!({}), json!({"a": 1})),
            (json!({"a": 2}), json!({})),
            (json!({"b": {"c": 3}}), json!({"e": "x"})),
            (json!({"a": null}), json!({})),
            (json!({"new": 1, "d": null}), json!({"new": 1})),
            (json!({"z": null}), json!({"b": null})),
        ] {
            check_reuse(desired.clone(), reported.clone(), du, ru);
        }
    }

    #[test]
    fn matches_the_document_built_delta() {
        let desired = json!({"a": 1, "b": {"c": 2, "d": {"e": 3}}, "f": [1], "g": {"h": {"i": 1}}});
        let reported = json!({"a": 1, "b": {"c": 2, "d": 5}, "f": [2], "g": {"h": {"i": 1}}});
        let meta = Metadata::written(&desired, 4).to_value();
        check(desired.clone(), reported, meta.clone());
        check(desired.clone(), json!({}), meta.clone());
        check(desired.clone(), desired.clone(), meta);
    }

    #[test]
    fn missing_or_mismatched_metadata_is_written_as_the_document_did() {
        let desired = json!({"a": 1, "b": {"c": 2}, "z": {"y": [1]}});
        check(desired.clone(), json!({}), json!({}));
        check(
            desired.clone(),
            json!({"b": {"c": 3}}),
            json!({"a": [], "b": {"timestamp": 1}, "z": {"y": {"timestamp": 2}}}),
        );
        check(desired, json!({"b": 7}), json!({"b": [{"timestamp": 3}]}));
    }
}
