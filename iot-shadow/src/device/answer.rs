//! Reading the service's answer documents; every field is checked, nothing is assumed.

use serde_json::{Map, Value};

use super::error::DeviceShadowError;

/// The payload as a JSON object.
pub(super) fn parse_object(
    topic: &str,
    payload: &[u8],
) -> Result<Map<String, Value>, DeviceShadowError> {
    let invalid = |detail: String| DeviceShadowError::InvalidJson {
        topic: topic.to_string(),
        detail,
    };
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(doc)) => Ok(doc),
        Ok(_) => Err(invalid("not an object".to_string())),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// The echoed `clientToken`, if it is a string.
pub(super) fn client_token(doc: &Map<String, Value>) -> Option<&str> {
    doc.get("clientToken").and_then(Value::as_str)
}

fn invalid(topic: &str, field: &'static str) -> DeviceShadowError {
    DeviceShadowError::InvalidField {
        topic: topic.to_string(),
        field,
    }
}

/// A required non-negative integer field.
pub(super) fn required_u64(
    topic: &str,
    doc: &Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<u64, DeviceShadowError> {
    doc.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(topic, field))
}

/// A required object field.
pub(super) fn required_object<'a>(
    topic: &str,
    doc: &'a Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<&'a Map<String, Value>, DeviceShadowError> {
    doc.get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| invalid(topic, field))
}

/// An optional state section: absent means empty, anything but an object is an error.
pub(super) fn section(
    topic: &str,
    state: &Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<Map<String, Value>, DeviceShadowError> {
    match state.get(name) {
        None => Ok(Map::new()),
        Some(Value::Object(fields)) => Ok(fields.clone()),
        Some(_) => Err(invalid(topic, field)),
    }
}

/// An error document's code and message.
pub(super) fn rejection(
    topic: &str,
    doc: &Map<String, Value>,
) -> Result<(u16, String), DeviceShadowError> {
    let code = doc
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .ok_or_else(|| invalid(topic, "code"))?;
    let message = doc
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((code, message))
}
