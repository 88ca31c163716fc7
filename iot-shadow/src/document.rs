//! A stored shadow and the JSON documents the service answers with.

use serde_json::{Map, Value};

use crate::json_writer::{ObjectWriter, sections};
use crate::merge::delta;

/// One shadow as the store keeps it: the state sections, their metadata, the version, and, once
/// deleted, when (a tombstone, so a shadow re-created within 48 hours continues its versions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredShadow {
    /// `state.desired`, absent when empty.
    pub desired: Option<Map<String, Value>>,
    /// `state.reported`, absent when empty.
    pub reported: Option<Map<String, Value>>,
    /// `metadata.desired`, mirroring `desired`.
    pub desired_metadata: Option<Value>,
    /// `metadata.reported`, mirroring `reported`.
    pub reported_metadata: Option<Value>,
    /// The version: 1 after the first accepted update, +1 for each one after.
    pub version: u64,
    /// Epoch seconds of the last accepted update.
    pub timestamp: u64,
    /// Epoch seconds of the deletion, for a deleted shadow.
    pub deleted_at: Option<u64>,
}

impl StoredShadow {
    /// Whether this is a tombstone of a deleted shadow.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// `{"desired":…,"reported":…}` with the sections present.
    pub(crate) fn state_json(&self) -> Map<String, Value> {
        let mut state = Map::new();
        if let Some(d) = &self.desired {
            state.insert("desired".into(), Value::Object(d.clone()));
        }
        if let Some(r) = &self.reported {
            state.insert("reported".into(), Value::Object(r.clone()));
        }
        state
    }

    pub(crate) fn metadata_json(&self) -> Map<String, Value> {
        let mut meta = Map::new();
        if let Some(d) = &self.desired_metadata {
            meta.insert("desired".into(), d.clone());
        }
        if let Some(r) = &self.reported_metadata {
            meta.insert("reported".into(), r.clone());
        }
        meta
    }

    /// The delta of desired against reported, empty if there is no desired state.
    pub fn delta(&self) -> Map<String, Value> {
        match &self.desired {
            Some(d) => delta(d, self.reported.as_ref()),
            None => Map::new(),
        }
    }

    /// The `get/accepted` document (also the REST GET body): state with `delta` when non-empty,
    /// metadata, version, timestamp (`now`), and the request's client token.
    pub fn get_document(&self, now: u64, client_token: Option<&str>) -> Value {
        let mut state = self.state_json();
        let delta = self.delta();
        if !delta.is_empty() {
            state.insert("delta".into(), Value::Object(delta));
        }
        let mut doc = Map::new();
        doc.insert("state".into(), Value::Object(state));
        doc.insert("metadata".into(), Value::Object(self.metadata_json()));
        doc.insert("version".into(), self.version.into());
        doc.insert("timestamp".into(), now.into());
        if let Some(token) = client_token {
            doc.insert("clientToken".into(), token.into());
        }
        Value::Object(doc)
    }

    /// `{"state":…,"metadata":…,"version":N}`, as in `update/documents`, serialized straight from
    /// the stored sections.
    pub(crate) fn snapshot_json(&self) -> Vec<u8> {
        let mut w = ObjectWriter::new();
        w.raw(
            "state",
            &sections(self.desired.as_ref(), self.reported.as_ref()),
        )
        .raw(
            "metadata",
            &sections(
                self.desired_metadata.as_ref(),
                self.reported_metadata.as_ref(),
            ),
        )
        .field("version", &self.version);
        w.finish()
    }

    /// Serialize for a durable store.
    ///
    /// ```
    /// use iot_shadow::StoredShadow;
    /// let shadow = StoredShadow { version: 3, timestamp: 10, deleted_at: Some(11), ..Default::default() };
    /// assert_eq!(StoredShadow::from_json(&shadow.to_json()).unwrap(), shadow);
    /// ```
    pub fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.raw(
            "state",
            &sections(self.desired.as_ref(), self.reported.as_ref()),
        )
        .raw(
            "metadata",
            &sections(
                self.desired_metadata.as_ref(),
                self.reported_metadata.as_ref(),
            ),
        )
        .field("version", &self.version)
        .field("timestamp", &self.timestamp)
        .optional("deletedAt", self.deleted_at.as_ref());
        w.finish_string()
    }

    /// Read what [`to_json`](Self::to_json) wrote; `None` if it is not such a document.
    pub fn from_json(text: &str) -> Option<StoredShadow> {
        let doc: Value = serde_json::from_str(text).ok()?;
        let state = doc.get("state")?.as_object()?;
        let meta = doc.get("metadata")?.as_object()?;
        Some(StoredShadow {
            desired: state.get("desired").and_then(Value::as_object).cloned(),
            reported: state.get("reported").and_then(Value::as_object).cloned(),
            desired_metadata: meta.get("desired").cloned(),
            reported_metadata: meta.get("reported").cloned(),
            version: doc.get("version")?.as_u64()?,
            timestamp: doc.get("timestamp")?.as_u64()?,
            deleted_at: doc.get("deletedAt").and_then(Value::as_u64),
        })
    }
}
