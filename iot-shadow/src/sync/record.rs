//! The durable per-shadow sync record: what both sides agreed on at the last sync.

use serde_json::{Map, Value};

use super::state::ShadowState;

/// What a shadow's last sync left: the state both sides had (`base`), each side's version then,
/// and whether the shadow was deleted then. The engine measures each side's changes against it;
/// the caller persists it (the engine hands out [`SaveRecord`](super::SyncAction::SaveRecord)s)
/// and gives it back to [`ShadowSync::new`](super::ShadowSync::new) after a restart.
///
/// While a sync is under way the engine may hold (and save) a record whose `base` is the state of
/// the side not yet written, so that each side's pending changes are still measured right if the
/// sync is cut short.
///
/// ```
/// use iot_shadow::sync::{ShadowState, SyncRecord};
/// use serde_json::json;
/// let record = SyncRecord {
///     base: ShadowState::from_value(&json!({"reported": {"on": true}})),
///     local_version: Some(4),
///     cloud_version: Some(17),
///     deleted: false,
/// };
/// let text = record.to_json();
/// assert_eq!(text, r#"{"base":{"reported":{"on":true}},"localVersion":4,"cloudVersion":17,"deleted":false}"#);
/// assert_eq!(SyncRecord::from_json(&text), Ok(record));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncRecord {
    /// The synced state; `None` if there was no shadow (never synced, or deleted).
    pub base: Option<ShadowState>,
    /// The local shadow's version then (a tombstone's version after a delete).
    pub local_version: Option<u64>,
    /// The cloud shadow's version then.
    pub cloud_version: Option<u64>,
    /// Whether the shadow was deleted at that sync (a tombstone), rather than never synced.
    pub deleted: bool,
}

/// Why a stored sync record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncRecordError {
    /// Not JSON holding an object.
    #[error("sync record is not a JSON object: {0}")]
    InvalidJson(String),
    /// A field is of the wrong type.
    #[error("sync record field `{0}` is of the wrong type")]
    InvalidField(&'static str),
}

impl SyncRecord {
    /// `{"base":…|null,"localVersion":N|null,"cloudVersion":N|null,"deleted":bool}`.
    pub fn to_json(&self) -> String {
        let mut doc = Map::new();
        doc.insert(
            "base".into(),
            self.base
                .as_ref()
                .map_or(Value::Null, ShadowState::to_value),
        );
        doc.insert("localVersion".into(), self.local_version.into());
        doc.insert("cloudVersion".into(), self.cloud_version.into());
        doc.insert("deleted".into(), self.deleted.into());
        crate::json_writer::to_json(&Value::Object(doc))
    }

    /// Read what [`to_json`](Self::to_json) wrote. Missing fields take their defaults.
    pub fn from_json(text: &str) -> Result<SyncRecord, SyncRecordError> {
        let doc = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => return Err(SyncRecordError::InvalidJson("not an object".into())),
            Err(e) => return Err(SyncRecordError::InvalidJson(e.to_string())),
        };
        let version = |name: &'static str| match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or(SyncRecordError::InvalidField(name)),
        };
        let base = match doc.get("base") {
            None | Some(Value::Null) => None,
            Some(state) => {
                Some(ShadowState::from_value(state).ok_or(SyncRecordError::InvalidField("base"))?)
            }
        };
        let deleted = match doc.get("deleted") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or(SyncRecordError::InvalidField("deleted"))?,
        };
        Ok(SyncRecord {
            base,
            local_version: version("localVersion")?,
            cloud_version: version("cloudVersion")?,
            deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_tombstone_round_trips() {
        let record = SyncRecord {
            base: None,
            local_version: Some(3),
            cloud_version: None,
            deleted: true,
        };
        assert_eq!(
            record.to_json(),
            r#"{"base":null,"localVersion":3,"cloudVersion":null,"deleted":true}"#
        );
        assert_eq!(SyncRecord::from_json(&record.to_json()), Ok(record));
    }

    #[test]
    fn an_empty_object_is_a_fresh_record() {
        assert_eq!(SyncRecord::from_json("{}"), Ok(SyncRecord::default()));
    }

    #[test]
    fn bad_records_are_refused_with_the_field() {
        assert!(matches!(
            SyncRecord::from_json("[1]"),
            Err(SyncRecordError::InvalidJson(_))
        ));
        assert!(matches!(
            SyncRecord::from_json("{"),
            Err(SyncRecordError::InvalidJson(_))
        ));
        assert_eq!(
            SyncRecord::from_json(r#"{"localVersion":-1}"#),
            Err(SyncRecordError::InvalidField("localVersion"))
        );
        assert_eq!(
            SyncRecord::from_json(&json!({"base": {"desired": 1}}).to_string()),
            Err(SyncRecordError::InvalidField("base"))
        );
        assert_eq!(
            SyncRecord::from_json(r#"{"deleted":"yes"}"#),
            Err(SyncRecordError::InvalidField("deleted"))
        );
    }
}
