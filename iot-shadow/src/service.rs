//! The Device Shadow service: requests in (as MQTT publishes or REST-style calls), documents and
//! answers out as values, the store behind a trait. Time comes in as an argument.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::document::StoredShadow;
use crate::error::ShadowError;
use crate::json_writer::{ObjectWriter, to_json};
use crate::merge::{delta_metadata, leaf_metadata, merge, merge_metadata};
use crate::request::{Rejection, Section, parse_token_only, parse_update};
use crate::store::ShadowStore;
use crate::topic::{Operation, ShadowKey, TopicKind, parse_topic};

/// The service's limits, AWS's defaults from [`ShadowLimits::aws`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShadowLimits {
    /// Largest `desired` plus `reported`, serialized, in bytes (AWS: 8192; Greengrass up to 30720).
    pub max_state_bytes: usize,
    /// Largest update request payload.
    pub max_request_bytes: usize,
    /// Deepest nesting of objects and arrays, counting `state` as level 1.
    pub max_depth: usize,
    /// Longest `clientToken`, in bytes.
    pub max_client_token_bytes: usize,
    /// Requests per second per thing before 429 (0: unlimited).
    pub max_requests_per_second_per_thing: u32,
    /// How long a deleted shadow's version is remembered, in seconds (AWS: 48 hours).
    pub tombstone_seconds: u64,
}

impl ShadowLimits {
    /// AWS IoT's defaults.
    pub const fn aws() -> ShadowLimits {
        ShadowLimits {
            max_state_bytes: 8192,
            max_request_bytes: 128 * 1024,
            max_depth: 6,
            max_client_token_bytes: 64,
            max_requests_per_second_per_thing: 20,
            tombstone_seconds: 48 * 3600,
        }
    }
}

impl Default for ShadowLimits {
    fn default() -> ShadowLimits {
        ShadowLimits::aws()
    }
}

/// A message the service publishes: a response topic and its JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowMessage {
    /// e.g. `$aws/things/lamp/shadow/update/accepted`.
    pub topic: String,
    /// The JSON document.
    pub payload: String,
}

/// The result of an accepted update: the `update/accepted` document, and every message to publish
/// (accepted, then delta if the delta is non-empty, then documents).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The `update/accepted` document (the REST response body).
    pub accepted: Value,
    /// The messages for subscribers.
    pub messages: Vec<ShadowMessage>,
}

/// The Device Shadow service over a store.
///
/// ```
/// use iot_shadow::{MemoryShadowStore, ShadowService};
/// let mut shadows = ShadowService::new(MemoryShadowStore::default());
/// let out = shadows
///     .handle_publish("$aws/things/lamp/shadow/update", br#"{"state":{"desired":{"on":true}}}"#, 1_000_000)
///     .unwrap();
/// let topics: Vec<&str> = out.iter().map(|m| m.topic.as_str()).collect();
/// assert_eq!(topics, [
///     "$aws/things/lamp/shadow/update/accepted",
///     "$aws/things/lamp/shadow/update/delta",
///     "$aws/things/lamp/shadow/update/documents",
/// ]);
/// assert_eq!(out[1].payload,
///     r#"{"version":1,"timestamp":1000,"state":{"on":true},"metadata":{"on":{"timestamp":1000}}}"#);
/// // Not a shadow request: left to the broker.
/// assert!(shadows.handle_publish("cars/1/telemetry", b"{}", 0).is_none());
/// ```
#[derive(Debug)]
pub struct ShadowService<S> {
    store: S,
    limits: ShadowLimits,
    /// Per thing: the second being counted and the requests in it.
    rate: HashMap<String, (u64, u32)>,
}

impl<S: ShadowStore> ShadowService<S> {
    /// A service with AWS's limits.
    pub fn new(store: S) -> ShadowService<S> {
        ShadowService::with_limits(store, ShadowLimits::aws())
    }

    /// A service with the given limits.
    pub fn with_limits(store: S, limits: ShadowLimits) -> ShadowService<S> {
        ShadowService {
            store,
            limits,
            rate: HashMap::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The limits in force.
    pub fn limits(&self) -> &ShadowLimits {
        &self.limits
    }

    /// Handle a PUBLISH to `topic` at `now_ms` (epoch milliseconds). `None` if `topic` is not a
    /// shadow request topic; otherwise the messages to publish in answer (on `/accepted`,
    /// `/rejected`, `/delta`, `/documents`).
    pub fn handle_publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> Option<Vec<ShadowMessage>> {
        let parsed = parse_topic(topic)?;
        let TopicKind::Request(op) = parsed.kind else {
            return None;
        };
        let key = parsed.key;
        let now = now_ms / 1000;
        let message = |kind: TopicKind, payload: String| ShadowMessage {
            topic: key.topic(kind),
            payload,
        };
        let result = match op {
            Operation::Get => self
                .get(&key, payload, now_ms)
                .map(|doc| vec![message(TopicKind::Accepted(op), to_json(&doc))]),
            Operation::Update => self.update(&key, payload, now_ms).map(|o| o.messages),
            Operation::Delete => self
                .delete(&key, payload, now_ms)
                .map(|doc| vec![message(TopicKind::Accepted(op), to_json(&doc))]),
        };
        Some(match result {
            Ok(messages) => messages,
            Err((error, token)) => vec![message(
                TopicKind::Rejected(op),
                error.to_json(now, token.as_deref()),
            )],
        })
    }

    fn throttle(&mut self, thing: &str, now: u64) -> Result<(), ShadowError> {
        let limit = self.limits.max_requests_per_second_per_thing;
        if limit == 0 {
            return Ok(());
        }
        if self.rate.len() > 10_000 {
            self.rate.retain(|_, (second, _)| *second == now);
        }
        if !self.rate.contains_key(thing) {
            self.rate.insert(thing.to_string(), (now, 0));
        }
        let Some(entry) = self.rate.get_mut(thing) else {
            return Ok(());
        };
        if entry.0 != now {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return Err(ShadowError::Throttled);
        }
        entry.1 += 1;
        Ok(())
    }

    /// The live shadow at `key`, and the version an update must build on (a recent tombstone's
    /// version, so a re-created shadow continues its versions; 0 for a new shadow).
    fn load(
        &mut self,
        key: &ShadowKey,
        now: u64,
    ) -> Result<(Option<StoredShadow>, Option<u64>), ShadowError> {
        let stored = self.store.get(key).map_err(|_| ShadowError::Internal)?;
        match stored {
            Some(s) if s.is_deleted() => {
                let expired = s
                    .deleted_at
                    .is_some_and(|at| now.saturating_sub(at) >= self.limits.tombstone_seconds);
                if expired {
                    self.store.delete(key).map_err(|_| ShadowError::Internal)?;
                    Ok((None, None))
                } else {
                    Ok((None, Some(s.version)))
                }
            }
            Some(s) => {
                let version = s.version;
                Ok((Some(s), Some(version)))
            }
            None => Ok((None, None)),
        }
    }

    /// Read a shadow (the `get/accepted` document, also the REST GET body). `payload` is the
    /// request's (empty, or JSON with a `clientToken`).
    pub fn get(
        &mut self,
        key: &ShadowKey,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Value, Rejection> {
        let now = now_ms / 1000;
        let token = parse_token_only(payload, &self.limits)?;
        self.throttle(&key.thing, now)
            .map_err(|e| (e, token.clone()))?;
        match self.load(key, now).map_err(|e| (e, token.clone()))? {
            (Some(shadow), _) => Ok(shadow.get_document(now, token.as_deref())),
            (None, _) => Err((ShadowError::not_found(key), token)),
        }
    }

    /// Delete a shadow: the `delete/accepted` document. Its version is remembered for
    /// [`ShadowLimits::tombstone_seconds`].
    pub fn delete(
        &mut self,
        key: &ShadowKey,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Value, Rejection> {
        let now = now_ms / 1000;
        let token = parse_token_only(payload, &self.limits)?;
        let fail = |e: ShadowError| (e, token.clone());
        self.throttle(&key.thing, now).map_err(fail)?;
        let (Some(shadow), _) = self.load(key, now).map_err(fail)? else {
            return Err(fail(ShadowError::not_found(key)));
        };
        let tombstone = StoredShadow {
            version: shadow.version,
            timestamp: now,
            deleted_at: Some(now),
            ..StoredShadow::default()
        };
        let written = self
            .store
            .put_if_version(key, Some(shadow.version), tombstone)
            .map_err(|_| fail(ShadowError::Internal))?;
        if !written {
            return Err(fail(ShadowError::VersionConflict));
        }
        let mut doc = Map::new();
        doc.insert("version".into(), shadow.version.into());
        doc.insert("timestamp".into(), now.into());
        if let Some(t) = &token {
            doc.insert("clientToken".into(), t.clone().into());
        }
        Ok(Value::Object(doc))
    }

    /// Apply an update request (the JSON payload of `.../update` or a REST POST).
    pub fn update(
        &mut self,
        key: &ShadowKey,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<UpdateOutcome, Rejection> {
        let now = now_ms / 1000;
        let request = parse_update(payload, &self.limits)?;
        let token = request.client_token.clone();
        let fail = |e: ShadowError| (e, token.clone());
        self.throttle(&key.thing, now).map_err(fail)?;
        let (current, stored_version) = self.load(key, now).map_err(fail)?;
        let base_version = stored_version.unwrap_or(0);
        if request.version.is_some_and(|v| v != base_version) {
            return Err(fail(ShadowError::VersionConflict));
        }

        // The previous document is only needed for update/documents; take it before the sections
        // are moved into the new shadow.
        let previous = current.as_ref().map(StoredShadow::snapshot_json);
        let old = current.unwrap_or_default();
        let (desired, desired_metadata) =
            apply_section(old.desired, old.desired_metadata, &request.desired, now);
        let (reported, reported_metadata) =
            apply_section(old.reported, old.reported_metadata, &request.reported, now);
        let size = [&desired, &reported]
            .into_iter()
            .flatten()
            .map(serialized_len)
            .sum::<usize>();
        if size > self.limits.max_state_bytes {
            return Err(fail(ShadowError::PayloadTooLarge));
        }
        let new = StoredShadow {
            desired,
            reported,
            desired_metadata,
            reported_metadata,
            version: base_version.saturating_add(1),
            timestamp: now,
            deleted_at: None,
        };
        let delta = new.delta();
        let current_snapshot = new.snapshot_json();
        let delta_meta =
            (!delta.is_empty()).then(|| delta_metadata(&delta, new.desired_metadata.as_ref()));
        let written = self
            .store
            .put_if_version(key, stored_version, new)
            .map_err(|_| fail(ShadowError::Internal))?;
        if !written {
            return Err(fail(ShadowError::VersionConflict));
        }
        let version = base_version.saturating_add(1);

        let with_token = |mut doc: Map<String, Value>| {
            if let Some(t) = &token {
                doc.insert("clientToken".into(), t.clone().into());
            }
            Value::Object(doc)
        };
        // AWS's order: state, metadata, version, timestamp, clientToken.
        let mut accepted = Map::new();
        let request_metadata = leaf_metadata(&request.state, now);
        accepted.insert("state".into(), request.state);
        accepted.insert("metadata".into(), request_metadata);
        accepted.insert("version".into(), version.into());
        accepted.insert("timestamp".into(), now.into());
        let accepted = with_token(accepted);

        let mut messages = vec![ShadowMessage {
            topic: key.topic(TopicKind::Accepted(Operation::Update)),
            payload: to_json(&accepted),
        }];
        if let Some(meta) = delta_meta {
            let mut doc = ObjectWriter::new();
            doc.field("version", &version)
                .field("timestamp", &now)
                .field("state", &delta)
                .field("metadata", &meta)
                .optional("clientToken", token.as_deref());
            messages.push(ShadowMessage {
                topic: key.topic(TopicKind::Delta),
                payload: doc.finish_string(),
            });
        }
        let mut documents = ObjectWriter::new();
        if let Some(previous) = &previous {
            documents.raw("previous", previous);
        }
        documents
            .raw("current", &current_snapshot)
            .field("timestamp", &now)
            .optional("clientToken", token.as_deref());
        messages.push(ShadowMessage {
            topic: key.topic(TopicKind::Documents),
            payload: documents.finish_string(),
        });
        Ok(UpdateOutcome { accepted, messages })
    }

    /// The names of `thing`'s named shadows.
    pub fn list_named(&self, thing: &str) -> Result<Vec<String>, ShadowError> {
        self.store
            .list_named(thing)
            .map_err(|_| ShadowError::Internal)
    }
}

/// Apply one section of an update: the new section and its metadata (both `None` when empty).
fn apply_section(
    old: Option<Map<String, Value>>,
    old_meta: Option<Value>,
    update: &Section,
    now: u64,
) -> (Option<Map<String, Value>>, Option<Value>) {
    match update {
        Section::Absent => (old, old_meta),
        Section::Clear => (None, None),
        Section::Merge(fields) => {
            let mut state = old.unwrap_or_default();
            let mut meta = match old_meta {
                Some(Value::Object(meta)) => meta,
                _ => Map::new(),
            };
            merge_metadata(&mut meta, Some(&state), fields, now);
            merge(&mut state, fields);
            if state.is_empty() {
                (None, None)
            } else {
                (Some(state), Some(Value::Object(meta)))
            }
        }
    }
}

/// Bytes `section` takes serialized, without building the string.
fn serialized_len(section: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a JSON value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, section);
    counter.0
}
