//! The JSON of an update request, parsed for one use: keys and strings borrowed from the payload
//! where they need no unescaping, objects as entry lists (no hash table per object). It reads as
//! serde_json's `Value` would (the last of duplicate keys wins, in the first one's place) and
//! writes the same JSON.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::json_writer::{write_key, write_str, write_value};

/// A JSON value of a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's entries in order, each key once.
pub(crate) type Object<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

/// Above this many entries, duplicate keys are looked for with a hash set rather than by pairs.
const PAIRWISE_LIMIT: usize = 8;

impl<'a> Json<'a> {
    /// Parse `text`; `None` if it is not JSON.
    pub(crate) fn parse(text: &'a str) -> Option<Json<'a>> {
        serde_json::from_str(text).ok()
    }

    /// As a serde_json value.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.clone().into_owned()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(entries) => Value::Object(to_map(entries)),
        }
    }

    /// Append this value's JSON (serde_json's text for the same value).
    pub(crate) fn write(&self, buf: &mut Vec<u8>) {
        match self {
            Json::Null => buf.extend_from_slice(b"null"),
            Json::Bool(true) => buf.extend_from_slice(b"true"),
            Json::Bool(false) => buf.extend_from_slice(b"false"),
            Json::Number(n) => write_value(buf, n),
            Json::String(s) => write_str(buf, s),
            Json::Array(items) => {
                buf.push(b'[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    item.write(buf);
                }
                buf.push(b']');
            }
            Json::Object(entries) => write_object(entries, buf),
        }
    }

    /// Nesting depth counting each object and array as one level (a scalar adds none).
    pub(crate) fn depth(&self) -> usize {
        match self {
            Json::Object(entries) => 1 + entries.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            Json::Array(items) => 1 + items.iter().map(Json::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// `value` as a request's JSON, for tests that build requests with `json!`.
#[cfg(test)]
pub(crate) fn from_value(value: &Value) -> Json<'static> {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(n.clone()),
        Value::String(s) => Json::String(Cow::Owned(s.clone())),
        Value::Array(items) => Json::Array(items.iter().map(from_value).collect()),
        Value::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), from_value(v)))
                .collect(),
        ),
    }
}

/// The entries of `value` as a request's object (none if it is not an object), for tests.
#[cfg(test)]
pub(crate) fn object_of(value: &Value) -> Object<'static> {
    match from_value(value) {
        Json::Object(entries) => entries,
        _ => Vec::new(),
    }
}

/// The value at `key` in `entries`.
pub(crate) fn get<'j, 'a>(entries: &'j Object<'a>, key: &str) -> Option<&'j Json<'a>> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// `entries` as a serde_json map.
pub(crate) fn to_map(entries: &Object<'_>) -> Map<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (k.clone().into_owned(), v.to_value()))
        .collect()
}

/// Append the JSON of an object.
pub(crate) fn write_object(entries: &Object<'_>, buf: &mut Vec<u8>) {
    buf.push(b'{');
    for (n, (key, value)) in entries.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        write_key(buf, key);
        value.write(buf);
    }
    buf.push(b'}');
}

/// Make keys unique as a JSON map reads them: the last value of a repeated key, in the place of
/// its first appearance.
fn dedup(entries: &mut Object<'_>) {
    let repeated = if entries.len() <= PAIRWISE_LIMIT {
        entries
            .iter()
            .enumerate()
            .any(|(n, (k, _))| entries.iter().skip(n + 1).any(|(other, _)| other == k))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        !entries.iter().all(|(k, _)| seen.insert(k.as_ref()))
    };
    if !repeated {
        return;
    }
    let mut unique: Object<'_> = Vec::with_capacity(entries.len());
    let mut places: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (key, value) in entries.drain(..) {
        match places.get(key.as_ref()).and_then(|&n| unique.get_mut(n)) {
            Some((_, slot)) => *slot = value,
            None => {
                places.insert(key.clone().into_owned(), unique.len());
                unique.push((key, value));
            }
        }
    }
    *entries = unique;
}

/// A key, borrowed from the payload when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds [`Json`] as serde_json's own `Value` visitor builds a `Value`.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some((Key(key), value)) = map.next_entry()? {
            entries.push((key, value));
        }
        dedup(&mut entries);
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// serde_json's reading and writing of `text`, and ours.
    fn both(text: &str) -> (Option<String>, Option<String>) {
        let theirs = serde_json::from_str::<Value>(text)
            .ok()
            .map(|v| v.to_string());
        let ours = Json::parse(text).map(|j| {
            let mut buf = Vec::new();
            j.write(&mut buf);
            assert_eq!(Some(j.to_value()), serde_json::from_str::<Value>(text).ok());
            String::from_utf8(buf).unwrap_or_default()
        });
        (theirs, ours)
    }

    #[test]
    fn reads_and_writes_as_serde_json() {
        for text in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":-2,"e":1.5e3,"f":"x\"y\\z\u0001"}}"#,
            r#" { "k\n" : "é\/", "n" : 18446744073709551615, "m": -9223372036854775808 } "#,
            r#"{"big":1e400}"#,
            r#"{"a":1,"b":2,"a":{"x":3}}"#,
            r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k3":"again"}"#,
            r#"[1,2,{"a":[]},{}]"#,
            "3",
            "{\"a\":1} x",
            "{\"a\":",
            "",
        ] {
            let (theirs, ours) = both(text);
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn keys_and_strings_without_escapes_are_borrowed() {
        let text = r#"{"plain":"text","esc\u0041":"a\nb"}"#;
        let Some(Json::Object(entries)) = Json::parse(text) else {
            panic!("not an object");
        };
        assert!(matches!(
            entries.first(),
            Some((Cow::Borrowed("plain"), Json::String(Cow::Borrowed("text"))))
        ));
        assert!(
            matches!(entries.get(1), Some((Cow::Owned(k), Json::String(Cow::Owned(_)))) if k == "escA")
        );
    }

    #[test]
    fn depth_and_lookup() {
        let json = Json::parse(r#"{"a":[{"b":{}}],"c":1}"#);
        assert_eq!(json.as_ref().map(Json::depth), Some(4));
        let Some(Json::Object(entries)) = json else {
            panic!("not an object");
        };
        assert_eq!(get(&entries, "c"), Some(&Json::Number(1.into())));
        assert_eq!(get(&entries, "z"), None);
    }

    fn text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["a", "b", "c", "\"q\"", "é", "d\\e"]);
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:e}")),
            "[a-z \\\\\"\\n]{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|entries| {
                    let body: Vec<String> = entries
                        .into_iter()
                        .map(|(k, v)| {
                            format!("{}:{v}", serde_json::to_string(k).unwrap_or_default())
                        })
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_reads_and_writes_as_serde_json(text in text()) {
            let (theirs, ours) = both(&text);
            prop_assert_eq!(ours, theirs);
        }
    }
}
