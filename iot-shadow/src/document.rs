//! A stored shadow and the JSON documents the service answers with.

use serde_json::{Map, Value};

use crate::merge::delta;
use crate::metadata::Metadata;
use crate::snapshot::Snapshot;

/// One shadow as the store keeps it: the state sections, their metadata, the version, and, once
/// deleted, when (a tombstone, so a shadow re-created within 48 hours continues its versions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredShadow {
    /// `state.desired`, absent when empty.
    pub desired: Option<Map<String, Value>>,
    /// `state.reported`, absent when empty.
    pub reported: Option<Map<String, Value>>,
    /// `metadata.desired`, mirroring `desired`.
    pub desired_metadata: Option<Metadata>,
    /// `metadata.reported`, mirroring `reported`.
    pub reported_metadata: Option<Metadata>,
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
            meta.insert("desired".into(), d.to_value());
        }
        if let Some(r) = &self.reported_metadata {
            meta.insert("reported".into(), r.to_value());
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

    /// Serialize for a durable store.
    ///
    /// ```
    /// use iot_shadow::StoredShadow;
    /// let shadow = StoredShadow { version: 3, timestamp: 10, deleted_at: Some(11), ..Default::default() };
    /// assert_eq!(StoredShadow::from_json(&shadow.to_json()).unwrap(), shadow);
    /// ```
    pub fn to_json(&self) -> String {
        Snapshot::of(self).durable_json(self)
    }

    /// Read what [`to_json`](Self::to_json) wrote; `None` if it is not such a document.
    pub fn from_json(text: &str) -> Option<StoredShadow> {
        let doc: Value = serde_json::from_str(text).ok()?;
        let state = doc.get("state")?.as_object()?;
        let meta = doc.get("metadata")?.as_object()?;
        let metadata = |name: &str| match meta.get(name) {
            None => Some(None),
            Some(value) => Metadata::from_value(value).map(Some),
        };
        Some(StoredShadow {
            desired: state.get("desired").and_then(Value::as_object).cloned(),
            reported: state.get("reported").and_then(Value::as_object).cloned(),
            desired_metadata: metadata("desired")?,
            reported_metadata: metadata("reported")?,
            version: doc.get("version")?.as_u64()?,
            timestamp: doc.get("timestamp")?.as_u64()?,
            deleted_at: doc.get("deletedAt").and_then(Value::as_u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durable_json_round_trips_with_metadata() {
        let text = concat!(
            r#"{"state":{"desired":{"a":[1,{"b":null}]},"reported":{"c":"x"}},"#,
            r#""metadata":{"desired":{"a":[{"timestamp":4},{"b":{"timestamp":4}}]},"#,
            r#""reported":{"c":{"timestamp":6}}},"version":7,"timestamp":6}"#
        );
        let shadow = StoredShadow::from_json(text);
        assert_eq!(
            shadow.as_ref().map(StoredShadow::to_json).as_deref(),
            Some(text)
        );
        assert_eq!(
            shadow.and_then(|s| s.reported_metadata),
            Some(Metadata::Object(vec![("c".into(), Metadata::Timestamp(6))]))
        );
    }

    #[test]
    fn metadata_that_is_not_metadata_is_refused() {
        let text = r#"{"state":{},"metadata":{"desired":{"a":"when"}},"version":1,"timestamp":1}"#;
        assert_eq!(StoredShadow::from_json(text), None);
        assert_eq!(StoredShadow::from_json(r#"{"state":{}}"#), None);
        assert_eq!(StoredShadow::from_json("[]"), None);
    }

    #[test]
    fn get_document_shows_metadata_as_aws_does() {
        let shadow = StoredShadow {
            desired: json!({"on": true}).as_object().cloned(),
            desired_metadata: Some(Metadata::written(&json!({"on": true}), 3)),
            version: 1,
            timestamp: 3,
            ..StoredShadow::default()
        };
        assert_eq!(
            shadow.get_document(4, None),
            json!({"state": {"desired": {"on": true}, "delta": {"on": true}},
                   "metadata": {"desired": {"on": {"timestamp": 3}}}, "version": 1, "timestamp": 4})
        );
    }
}
