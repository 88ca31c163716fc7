//! The `update/delta` payload's `state` and `metadata`, written straight from a shadow in one walk
//! of `desired` against `reported`: the same JSON as serializing [`delta`](crate::delta) and the
//! desired metadata of its keys, without building either as a document first.

use serde_json::{Map, Value};

use crate::json_writer::{TimestampText, write_key, write_value};
use crate::metadata::{KeyFinder, Metadata};

/// A delta's JSON: the state and its metadata.
#[derive(Debug, Default)]
pub(crate) struct DeltaJson {
    /// The delta state object.
    pub(crate) state: Vec<u8>,
    /// The desired metadata of each key in `state`.
    pub(crate) metadata: Vec<u8>,
}

/// The delta of `desired` against `reported` with its metadata taken from `desired_meta`; `None`
/// when the delta is empty.
pub(crate) fn delta_json(
    desired: &Map<String, Value>,
    reported: Option<&Map<String, Value>>,
    desired_meta: Option<&Metadata>,
) -> Option<DeltaJson> {
    let mut out = DeltaJson::default();
    let mut text = TimestampText::default();
    let meta = desired_meta.and_then(Metadata::as_object);
    write_delta(desired, reported, meta, &mut out, &mut text).then_some(out)
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
        let key_meta = |finder: &mut KeyFinder| {
            meta.and_then(|m| finder.find(m, key).and_then(|n| m.get(n)))
                .map(|(_, m)| m)
        };
        match (wanted, have) {
            (Value::Object(w), Some(Value::Object(h))) => {
                // Look before writing: most nested objects have no delta.
                if !differs(w, h) {
                    continue;
                }
                let marks = (out.state.len(), out.metadata.len());
                open_entry(out, any, key);
                let child_meta = key_meta(&mut finder).and_then(Metadata::as_object);
                if write_delta(w, Some(h), child_meta, out, text) {
                    any = true;
                } else {
                    out.state.truncate(marks.0);
                    out.metadata.truncate(marks.1);
                }
            }
            (w, Some(h)) if w == h => {}
            (w, _) => {
                open_entry(out, any, key);
                any = true;
                write_value(&mut out.state, w);
                let m = key_meta(&mut finder);
                match w {
                    Value::Object(fields) => {
                        write_whole_metadata(fields, m.and_then(Metadata::as_object), out, text)
                    }
                    _ => match m {
                        Some(m) => m.write_json(&mut out.metadata, text),
                        None => out.metadata.extend_from_slice(b"null"),
                    },
                }
            }
        }
    }
    out.state.push(b'}');
    out.metadata.push(b'}');
    any
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
    use crate::merge::delta;

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
            delta_json(d, reported.as_object(), meta.as_ref()).map(|j| {
                (
                    String::from_utf8(j.state).unwrap_or_default(),
                    String::from_utf8(j.metadata).unwrap_or_default(),
                )
            })
        });
        assert_eq!(got, expected);
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
