//! The service answers byte for byte as a plain model of the rules does: the model below is the
//! straightforward version (whole JSON documents, cloned, merged and serialized every time) that
//! the service's in-place updates, kept snapshots and written-once answers must not differ from.
//! Random sequences of updates, deletes and time passing go to the model, to the service over the
//! in-memory store (which lends its entries and keeps snapshots) and to the service over a store
//! with only the required methods (which works on copies); all three must agree on every payload.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;

use iot_shadow::{
    MemoryShadowStore, ShadowError, ShadowKey, ShadowLimits, ShadowService, ShadowStore,
    StoredShadow, delta, leaf_metadata, merge,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A store with only the required methods: the service's `edit` falls back to copies.
#[derive(Debug, Default)]
struct CopyingStore(MemoryShadowStore);

impl ShadowStore for CopyingStore {
    type Error = Infallible;
    fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Infallible> {
        self.0.get(key)
    }
    fn put_if_version(
        &mut self,
        key: &ShadowKey,
        expected: Option<u64>,
        shadow: StoredShadow,
    ) -> Result<bool, Infallible> {
        self.0.put_if_version(key, expected, shadow)
    }
    fn delete(&mut self, key: &ShadowKey) -> Result<(), Infallible> {
        self.0.delete(key)
    }
    fn list_named(&self, thing: &str) -> Result<Vec<String>, Infallible> {
        self.0.list_named(thing)
    }
}

/// The rules on whole documents.
#[derive(Debug, Clone, Default)]
struct Model {
    desired: Option<Map<String, Value>>,
    reported: Option<Map<String, Value>>,
    desired_meta: Option<Map<String, Value>>,
    reported_meta: Option<Map<String, Value>>,
    version: u64,
    /// `None`: nothing stored; `Some(None)`: live; `Some(Some(t))`: deleted at `t`.
    stored: Option<Option<u64>>,
}

const TOMBSTONE_SECONDS: u64 = 20;
const MAX_STATE_BYTES: usize = 160;

fn limits() -> ShadowLimits {
    let mut limits = ShadowLimits::aws();
    limits.max_state_bytes = MAX_STATE_BYTES;
    limits.max_requests_per_second_per_thing = 0;
    limits.tombstone_seconds = TOMBSTONE_SECONDS;
    limits
}

fn sections(desired: Option<&Map<String, Value>>, reported: Option<&Map<String, Value>>) -> Value {
    let mut out = Map::new();
    if let Some(d) = desired {
        out.insert("desired".into(), Value::Object(d.clone()));
    }
    if let Some(r) = reported {
        out.insert("reported".into(), Value::Object(r.clone()));
    }
    Value::Object(out)
}

/// Metadata merged as the rules say: written paths stamped, nulled paths dropped, emptied objects
/// gone, objects merged where the old state held an object.
fn merge_meta(
    meta: &mut Map<String, Value>,
    old: Option<&Map<String, Value>>,
    update: &Map<String, Value>,
    now: u64,
) {
    for (key, value) in update {
        match value {
            Value::Null => {
                meta.shift_remove(key);
            }
            Value::Object(fields) => {
                let old_child = old.and_then(|s| s.get(key)).and_then(Value::as_object);
                let reuse = old_child.is_some() && matches!(meta.get(key), Some(Value::Object(_)));
                if !reuse {
                    meta.insert(key.clone(), Value::Object(Map::new()));
                }
                let emptied = match meta.get_mut(key) {
                    Some(Value::Object(child)) => {
                        merge_meta(child, old_child, fields, now);
                        child.is_empty()
                    }
                    _ => true,
                };
                if emptied {
                    meta.shift_remove(key);
                }
            }
            other => {
                meta.insert(key.clone(), leaf_metadata(other, now));
            }
        }
    }
}

fn delta_meta(delta: &Map<String, Value>, meta: Option<&Value>) -> Value {
    let meta = meta.and_then(Value::as_object);
    Value::Object(
        delta
            .iter()
            .map(|(k, v)| {
                let m = meta.and_then(|m| m.get(k));
                let sub = match v {
                    Value::Object(fields) => delta_meta(fields, m),
                    _ => m.cloned().unwrap_or(Value::Null),
                };
                (k.clone(), sub)
            })
            .collect(),
    )
}

fn apply_section(
    state: &mut Option<Map<String, Value>>,
    meta: &mut Option<Map<String, Value>>,
    update: Option<&Value>,
    now: u64,
) {
    match update {
        None => {}
        Some(Value::Null) => {
            *state = None;
            *meta = None;
        }
        Some(Value::Object(fields)) => {
            let mut s = state.take().unwrap_or_default();
            let mut m = meta.take().unwrap_or_default();
            merge_meta(&mut m, Some(&s), fields, now);
            merge(&mut s, fields);
            if !s.is_empty() {
                *state = Some(s);
                *meta = Some(m);
            }
        }
        Some(_) => panic!("the generator sends objects or null"),
    }
}

impl Model {
    fn snapshot(&self) -> String {
        let meta = sections(self.desired_meta.as_ref(), self.reported_meta.as_ref());
        let doc = json!({
            "state": sections(self.desired.as_ref(), self.reported.as_ref()),
            "metadata": meta,
            "version": self.version,
        });
        doc.to_string()
    }

    /// The payloads an update publishes, or its error document.
    fn update(&mut self, request: &Value, now: u64) -> Vec<String> {
        let token = request.get("clientToken").and_then(Value::as_str);
        let error = |e: ShadowError| vec![e.to_json(now, token)];
        // An expired tombstone is forgotten first.
        if let Some(Some(at)) = self.stored {
            if now.saturating_sub(at) >= TOMBSTONE_SECONDS {
                *self = Model::default();
            }
        }
        let live = self.stored == Some(None);
        let base = if self.stored.is_some() {
            self.version
        } else {
            0
        };
        if request
            .get("version")
            .and_then(Value::as_u64)
            .is_some_and(|v| v != base)
        {
            return error(ShadowError::VersionConflict);
        }
        let previous = live.then(|| self.snapshot());
        let mut next = if live { self.clone() } else { Model::default() };
        let state = &request["state"];
        apply_section(
            &mut next.desired,
            &mut next.desired_meta,
            state.get("desired"),
            now,
        );
        apply_section(
            &mut next.reported,
            &mut next.reported_meta,
            state.get("reported"),
            now,
        );
        let size = [&next.desired, &next.reported]
            .into_iter()
            .flatten()
            .map(|s| Value::Object(s.clone()).to_string().len())
            .sum::<usize>();
        if size > MAX_STATE_BYTES {
            return error(ShadowError::PayloadTooLarge);
        }
        next.version = base + 1;
        next.stored = Some(None);
        *self = next;

        let mut accepted = Map::new();
        accepted.insert("state".into(), state.clone());
        accepted.insert("metadata".into(), leaf_metadata(state, now));
        accepted.insert("version".into(), self.version.into());
        accepted.insert("timestamp".into(), now.into());
        if let Some(t) = token {
            accepted.insert("clientToken".into(), t.into());
        }
        let mut out = vec![Value::Object(accepted).to_string()];
        let delta = match &self.desired {
            Some(d) => delta(d, self.reported.as_ref()),
            None => Map::new(),
        };
        if !delta.is_empty() {
            let meta = self.desired_meta.clone().map(Value::Object);
            let mut doc = Map::new();
            doc.insert("version".into(), self.version.into());
            doc.insert("timestamp".into(), now.into());
            doc.insert("state".into(), Value::Object(delta.clone()));
            doc.insert("metadata".into(), delta_meta(&delta, meta.as_ref()));
            if let Some(t) = token {
                doc.insert("clientToken".into(), t.into());
            }
            out.push(Value::Object(doc).to_string());
        }
        let mut documents = String::from("{");
        if let Some(p) = previous {
            documents.push_str(&format!("\"previous\":{p},"));
        }
        documents.push_str(&format!(
            "\"current\":{},\"timestamp\":{now}",
            self.snapshot()
        ));
        if let Some(t) = token {
            documents.push_str(&format!(",\"clientToken\":{}", json!(t)));
        }
        documents.push('}');
        out.push(documents);
        out
    }

    fn delete(&mut self, now: u64) {
        if let Some(Some(at)) = self.stored {
            if now.saturating_sub(at) >= TOMBSTONE_SECONDS {
                *self = Model::default();
            }
        }
        if self.stored == Some(None) {
            *self = Model {
                version: self.version,
                stored: Some(Some(now)),
                ..Model::default()
            };
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Update(Value),
    /// Send the current sections back whole (as devices do), numbers changed by `bump`.
    Resend {
        desired: bool,
        reported: bool,
        bump: i64,
    },
    Delete,
    Wait(u64),
}

/// `value` with every integer changed by `bump`.
fn bumped(value: &Value, bump: i64) -> Value {
    match value {
        Value::Number(n) => n.as_i64().map_or(value.clone(), |n| json!(n + bump)),
        Value::Array(items) => Value::Array(items.iter().map(|v| bumped(v, bump)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), bumped(v, bump)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (-50i64..50).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => "[a-c\"é]{0,3}".prop_map(Value::from),
        1 => (-5.0f64..5.0).prop_map(Value::from),
        2 => Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(vec!["x", "y", "z"]), inner), 0..3)
                .prop_map(|entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect()
                )),
        ]
    })
}

fn section() -> impl Strategy<Value = Option<Value>> {
    let keys = prop::sample::select(vec!["a", "b", "c", "d", "e\n"]);
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        5 => prop::collection::vec((keys, value()), 0..4).prop_map(|entries| Some(Value::Object(
            entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
        ))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let update = (
        section(),
        section(),
        prop::option::of(0u64..6),
        prop::option::of("[a-z]{1,3}"),
        any::<bool>(),
    )
        .prop_map(|(desired, reported, version, token, reported_first)| {
            let mut state = Map::new();
            let mut put = |name: &str, s: Option<Value>| {
                if let Some(s) = s {
                    state.insert(name.into(), s);
                }
            };
            if reported_first {
                put("reported", reported);
                put("desired", desired);
            } else {
                put("desired", desired);
                put("reported", reported);
            }
            let mut request = Map::new();
            request.insert("state".into(), Value::Object(state));
            if let Some(v) = version {
                request.insert("version".into(), v.into());
            }
            if let Some(t) = token {
                request.insert("clientToken".into(), t.into());
            }
            Step::Update(Value::Object(request))
        });
    let resend = (any::<bool>(), any::<bool>(), -1i64..2).prop_map(|(desired, reported, bump)| {
        Step::Resend {
            desired,
            reported,
            bump,
        }
    });
    prop_oneof![
        12 => update,
        4 => resend,
        1 => Just(Step::Delete),
        2 => (1u64..15).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn service_answers_as_the_model(steps in prop::collection::vec(step(), 1..14)) {
        let key = ShadowKey::classic("car");
        let topic = "$aws/things/car/shadow";
        let mut model = Model::default();
        let mut lending = ShadowService::with_limits(MemoryShadowStore::default(), limits());
        let mut copying = ShadowService::with_limits(CopyingStore::default(), limits());
        let mut now = 1_000u64;
        for step in steps {
            let step = match step {
                Step::Resend { desired, reported, bump } => {
                    let mut state = Map::new();
                    for (name, wanted, section) in [
                        ("desired", desired, &model.desired),
                        ("reported", reported, &model.reported),
                    ] {
                        if let (true, Some(section)) = (wanted, section) {
                            state.insert(name.into(), bumped(&Value::Object(section.clone()), bump));
                        }
                    }
                    Step::Update(json!({ "state": state }))
                }
                other => other,
            };
            match step {
                Step::Resend { .. } => {}
                Step::Update(request) => {
                    let payload = request.to_string();
                    // The service reads the payload, so the model does too (reading a float
                    // may land one unit off what was written; both must land on the same one).
                    let read: Value = serde_json::from_str(&payload).unwrap();
                    let expected = model.update(&read, now);
                    for service in [&mut lending as &mut dyn Publish, &mut copying] {
                        let got = service.publish(&format!("{topic}/update"), payload.as_bytes(), now * 1000);
                        prop_assert_eq!(&got, &expected, "{}", payload);
                    }
                    // The REST answer is the accepted document.
                    let mut rest = ShadowService::with_limits(MemoryShadowStore::default(), limits());
                    if let Ok(outcome) = rest.update(&key, payload.as_bytes(), now * 1000) {
                        prop_assert_eq!(outcome.accepted.to_string(), outcome.messages[0].payload.clone());
                    }
                }
                Step::Delete => {
                    model.delete(now);
                    let a = lending.publish(&format!("{topic}/delete"), b"", now * 1000);
                    let b = copying.publish(&format!("{topic}/delete"), b"", now * 1000);
                    prop_assert_eq!(a, b);
                }
                Step::Wait(seconds) => now += seconds,
            }
            // What is stored reads back the same from both stores.
            let a = lending.get(&key, b"", now * 1000);
            let b = copying.get(&key, b"", now * 1000);
            prop_assert_eq!(a, b);
        }
    }
}

/// Both services behind one signature, so a test can loop over them.
trait Publish {
    fn publish(&mut self, topic: &str, payload: &[u8], now_ms: u64) -> Vec<String>;
}

impl<S: ShadowStore> Publish for ShadowService<S> {
    fn publish(&mut self, topic: &str, payload: &[u8], now_ms: u64) -> Vec<String> {
        self.handle_publish(topic, payload, now_ms)
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.payload)
            .collect()
    }
}

#[test]
fn a_refused_update_leaves_the_stored_shadow_as_it_was() {
    // However close to the limit the shadow was, a refusal leaves no trace.
    let key = ShadowKey::classic("car");
    for filler in [10usize, 120] {
        let mut service = ShadowService::with_limits(MemoryShadowStore::default(), limits());
        let first = json!({"state": {"reported": {"fill": "x".repeat(filler)}}}).to_string();
        assert!(service.update(&key, first.as_bytes(), 1_000).is_ok());
        let before = service.get(&key, b"", 2_000);
        let huge = json!({"state": {"desired": {"big": "y".repeat(200)}}}).to_string();
        let refused = service.update(&key, huge.as_bytes(), 2_000);
        assert_eq!(
            refused.err().map(|e| e.0),
            Some(ShadowError::PayloadTooLarge)
        );
        assert_eq!(service.get(&key, b"", 2_000), before);
        let small = br#"{"state":{"reported":{"n":1}}}"#;
        let next = service.update(&key, small, 3_000);
        assert_eq!(
            next.map(|o| o.accepted["version"].clone()).ok(),
            Some(json!(2))
        );
    }
}
