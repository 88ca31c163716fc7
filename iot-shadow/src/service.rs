//! The Device Shadow service: requests in (as MQTT publishes or REST-style calls), documents and
//! answers out as values, the store behind a trait. Time comes in as an argument.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::accepted::AcceptedStart;
use crate::document::StoredShadow;
use crate::entry::{ShadowEntry, ShadowSlot};
use crate::error::ShadowError;
use crate::json_writer::to_json;
use crate::merge::leaf_metadata;
use crate::request::{Rejection, UpdateRequest, parse_token_only, parse_update};
use crate::request_json::to_map;
use crate::store::ShadowStore;
use crate::topic::{Operation, ShadowKey, TopicKind, parse_topic};
use crate::update::{UpdateContext, update_slot};

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
            Operation::Update => self
                .apply_update(&key, payload, now_ms)
                .map(|(_, _, messages)| messages),
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
        let Some(entry) = self.rate.get_mut(thing) else {
            self.rate.insert(thing.to_string(), (now, 1));
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
        let tombstone_seconds = self.limits.tombstone_seconds;
        let found = self.store.edit(key, |slot| {
            live(slot, now, tombstone_seconds).map(|s| s.get_document(now, token.as_deref()))
        });
        match found {
            Ok(found) => found.flatten().ok_or((ShadowError::not_found(key), token)),
            Err(_) => Err((ShadowError::Internal, token)),
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
        let tombstone_seconds = self.limits.tombstone_seconds;
        let deleted = self.store.edit(key, |slot| {
            let version = live(slot, now, tombstone_seconds)?.version;
            let tombstone = StoredShadow {
                version,
                timestamp: now,
                deleted_at: Some(now),
                ..StoredShadow::default()
            };
            slot.set(Some(ShadowEntry::new(tombstone)));
            Some(version)
        });
        let version = match deleted {
            Ok(Some(Some(version))) => version,
            Ok(Some(None)) => return Err(fail(ShadowError::not_found(key))),
            Ok(None) => return Err(fail(ShadowError::VersionConflict)),
            Err(_) => return Err(fail(ShadowError::Internal)),
        };
        let mut doc = Map::new();
        doc.insert("version".into(), version.into());
        doc.insert("timestamp".into(), now.into());
        if let Some(t) = &token {
            doc.insert("clientToken".into(), t.clone().into());
        }
        Ok(Value::Object(doc))
    }

    /// Apply an update request (the JSON payload of `.../update` or a REST POST).
    ///
    /// The `update/accepted` document comes back both as a `Value` and as the first message's
    /// payload; building the `Value` (a map per metadata leaf) is most of the cost of a large
    /// update, which [`handle_publish`](Self::handle_publish) does without.
    pub fn update(
        &mut self,
        key: &ShadowKey,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<UpdateOutcome, Rejection> {
        let (request, version, messages) = self.apply_update(key, payload, now_ms)?;
        let now = now_ms / 1000;
        // AWS's order: state, metadata, version, timestamp, clientToken.
        let state = Value::Object(to_map(&request.state));
        let metadata = leaf_metadata(&state, now);
        let mut accepted = Map::new();
        accepted.insert("state".into(), state);
        accepted.insert("metadata".into(), metadata);
        accepted.insert("version".into(), version.into());
        accepted.insert("timestamp".into(), now.into());
        if let Some(t) = request.client_token {
            accepted.insert("clientToken".into(), t.into());
        }
        Ok(UpdateOutcome {
            accepted: Value::Object(accepted),
            messages,
        })
    }

    /// Apply an update: the request, the new version and the messages to publish (accepted, then
    /// delta if the delta is non-empty, then documents).
    fn apply_update<'p>(
        &mut self,
        key: &ShadowKey,
        payload: &'p [u8],
        now_ms: u64,
    ) -> Result<(UpdateRequest<'p>, u64, Vec<ShadowMessage>), Rejection> {
        let now = now_ms / 1000;
        let request = parse_update(payload, &self.limits)?;
        let fail = |e: ShadowError| (e, request.client_token.clone());
        self.throttle(&key.thing, now).map_err(fail)?;
        let accepted = AcceptedStart::new(&request.state, now, payload.len());
        let cx = UpdateContext {
            request: &request,
            accepted: &accepted,
            limits: &self.limits,
            now,
        };
        let written = match self.store.edit(key, |slot| update_slot(slot, cx)) {
            Ok(Some(Ok(written))) => written,
            Ok(Some(Err(error))) => return Err(fail(error)),
            Ok(None) => return Err(fail(ShadowError::VersionConflict)),
            Err(_) => return Err(fail(ShadowError::Internal)),
        };
        let token = request.client_token.as_deref();
        let mut messages = Vec::with_capacity(3);
        messages.push(ShadowMessage {
            topic: key.topic(TopicKind::Accepted(Operation::Update)),
            payload: accepted.finish(written.version, now, token),
        });
        if let Some(delta) = written.delta {
            messages.push(ShadowMessage {
                topic: key.topic(TopicKind::Delta),
                payload: delta,
            });
        }
        messages.push(ShadowMessage {
            topic: key.topic(TopicKind::Documents),
            payload: written.documents,
        });
        Ok((request, written.version, messages))
    }

    /// The names of `thing`'s named shadows.
    pub fn list_named(&self, thing: &str) -> Result<Vec<String>, ShadowError> {
        self.store
            .list_named(thing)
            .map_err(|_| ShadowError::Internal)
    }
}

/// The live shadow in `slot`; an expired tombstone is removed on the way (a recent one still
/// counts as no shadow).
fn live<'s>(
    slot: &'s mut ShadowSlot<'_>,
    now: u64,
    tombstone_seconds: u64,
) -> Option<&'s StoredShadow> {
    let expired = slot.get().map(ShadowEntry::shadow).is_some_and(|s| {
        s.deleted_at
            .is_some_and(|at| now.saturating_sub(at) >= tombstone_seconds)
    });
    if expired {
        slot.set(None);
    }
    slot.get()
        .map(ShadowEntry::shadow)
        .filter(|s| !s.is_deleted())
}
