//! The requests the engine sends and the answers it reads, as JSON.

use serde_json::{Map, Value};

use crate::json_writer::ObjectWriter;
use crate::merge::diff;

use super::state::ShadowState;

/// `{"clientToken":"…"}`, the payload of a `get` or `delete`.
pub(crate) fn token_payload(token: &str) -> String {
    let mut w = ObjectWriter::new();
    w.field("clientToken", token);
    w.finish_string()
}

/// The update request that turns `from` (`None`: no shadow) into `to`: only the fields that
/// differ, `null` for those to delete, sections without changes left out.
/// `{"state":{…},"clientToken":…,"version":…}`.
pub(crate) fn update_payload(
    from: Option<&ShadowState>,
    to: &ShadowState,
    version: Option<u64>,
    token: Option<&str>,
) -> String {
    let (desired, reported) = match from {
        Some(from) => (
            diff(&from.desired, &to.desired),
            diff(&from.reported, &to.reported),
        ),
        None => (to.desired.clone(), to.reported.clone()),
    };
    let mut state = ObjectWriter::new();
    if !desired.is_empty() {
        state.field("desired", &desired);
    }
    if !reported.is_empty() {
        state.field("reported", &reported);
    }
    let mut w = ObjectWriter::new();
    w.raw("state", &state.finish())
        .optional("clientToken", token)
        .optional("version", version.as_ref());
    w.finish_string()
}

/// The payload as a JSON object.
pub(crate) fn parse_object(payload: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(doc)) => Some(doc),
        _ => None,
    }
}

pub(crate) fn client_token(doc: &Map<String, Value>) -> Option<&str> {
    doc.get("clientToken").and_then(Value::as_str)
}

pub(crate) fn version(doc: &Map<String, Value>) -> Option<u64> {
    doc.get("version").and_then(Value::as_u64)
}

/// A `get/accepted` document's state and version.
pub(crate) fn document(doc: &Map<String, Value>) -> Option<(ShadowState, u64)> {
    Some((ShadowState::from_value(doc.get("state")?)?, version(doc)?))
}

/// An `update/documents` message's current state and version.
pub(crate) fn current_document(doc: &Map<String, Value>) -> Option<(ShadowState, u64)> {
    document(doc.get("current")?.as_object()?)
}

/// An error document's code and message.
pub(crate) fn rejection(doc: &Map<String, Value>) -> Option<(u16, String)> {
    let code = doc
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())?;
    let message = doc
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(value: Value) -> ShadowState {
        ShadowState::from_value(&value).unwrap()
    }

    #[test]
    fn updates_carry_only_what_changed() {
        let from = state(json!({"desired": {"a": 1, "b": {"x": 1, "y": 2}}, "reported": {"r": 1}}));
        let to = state(json!({"desired": {"a": 1, "b": {"x": 1}}, "reported": {"r": 1}}));
        assert_eq!(
            update_payload(Some(&from), &to, Some(7), Some("t-1")),
            r#"{"state":{"desired":{"b":{"y":null}}},"clientToken":"t-1","version":7}"#
        );
        assert_eq!(
            update_payload(None, &to, None, None),
            r#"{"state":{"desired":{"a":1,"b":{"x":1}},"reported":{"r":1}}}"#
        );
        assert_eq!(token_payload("t-2"), r#"{"clientToken":"t-2"}"#);
    }

    #[test]
    fn answers_are_read_field_by_field() {
        let doc =
            parse_object(br#"{"current":{"state":{"reported":{"a":1}},"version":4}}"#).unwrap();
        assert_eq!(
            current_document(&doc),
            Some((state(json!({"reported": {"a": 1}})), 4))
        );
        let doc = parse_object(br#"{"state":{"desired":3},"version":4}"#).unwrap();
        assert_eq!(document(&doc), None);
        let doc = parse_object(br#"{"code":409,"message":"Version conflict"}"#).unwrap();
        assert_eq!(rejection(&doc), Some((409, "Version conflict".into())));
        assert_eq!(
            rejection(&parse_object(br#"{"code":70000}"#).unwrap()),
            None
        );
        assert_eq!(parse_object(b"[1]"), None);
        assert_eq!(parse_object(b"\xff"), None);
    }
}
