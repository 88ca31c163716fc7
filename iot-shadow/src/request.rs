//! Parsing and validating the JSON of shadow requests.

use serde_json::{Map, Value};

use crate::error::ShadowError;
use crate::merge::depth;
use crate::service::ShadowLimits;

/// One section (`desired` or `reported`) of an update request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Section<'a> {
    /// Not in the request: left as it is.
    Absent,
    /// `null`: the section is removed.
    Clear,
    /// An object merged into the section.
    Merge(&'a Map<String, Value>),
}

/// A validated update request.
#[derive(Debug, Clone)]
pub(crate) struct UpdateRequest {
    /// `state`: an object holding only `desired` and `reported`, each an object or `null`.
    pub(crate) state: Map<String, Value>,
    pub(crate) version: Option<u64>,
    pub(crate) client_token: Option<String>,
}

impl UpdateRequest {
    /// `state.desired`.
    pub(crate) fn desired(&self) -> Section<'_> {
        self.section("desired")
    }

    /// `state.reported`.
    pub(crate) fn reported(&self) -> Section<'_> {
        self.section("reported")
    }

    fn section(&self, name: &str) -> Section<'_> {
        match self.state.get(name) {
            Some(Value::Object(fields)) => Section::Merge(fields),
            Some(Value::Null) => Section::Clear,
            // Validation let nothing else through.
            _ => Section::Absent,
        }
    }
}

/// A request's failure, with the client token when one could be read (it is echoed in the error).
pub(crate) type Rejection = (ShadowError, Option<String>);

fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, ShadowError> {
    let text = core::str::from_utf8(payload).map_err(|_| ShadowError::UnsupportedEncoding)?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(ShadowError::InvalidJson),
    }
}

fn client_token(
    fields: &Map<String, Value>,
    limits: &ShadowLimits,
) -> Result<Option<String>, ShadowError> {
    match fields.get("clientToken") {
        None => Ok(None),
        Some(Value::String(token)) if token.len() <= limits.max_client_token_bytes => {
            Ok(Some(token.clone()))
        }
        Some(_) => Err(ShadowError::InvalidClientToken),
    }
}

/// The client token of a `get` or `delete` request: an empty payload or a JSON object whose
/// `clientToken` is echoed; anything else in it is ignored.
pub(crate) fn parse_token_only(
    payload: &[u8],
    limits: &ShadowLimits,
) -> Result<Option<String>, Rejection> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let fields = parse_object(payload).map_err(|e| (e, None))?;
    client_token(&fields, limits).map_err(|e| (e, None))
}

/// Parse and validate an update request.
pub(crate) fn parse_update(
    payload: &[u8],
    limits: &ShadowLimits,
) -> Result<UpdateRequest, Rejection> {
    if payload.len() > limits.max_request_bytes {
        return Err((ShadowError::PayloadTooLarge, None));
    }
    let mut fields = parse_object(payload).map_err(|e| (e, None))?;
    let client_token = client_token(&fields, limits).map_err(|e| (e, None))?;
    let reject = |e: ShadowError| (e, client_token.clone());
    let version = match fields.get("version") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| reject(ShadowError::InvalidVersion))?,
        ),
    };
    let state = match fields.shift_remove("state") {
        None => return Err(reject(ShadowError::MissingState)),
        Some(Value::Object(state)) => state,
        Some(_) => return Err(reject(ShadowError::StateNotObject)),
    };
    if state.keys().any(|k| k != "desired" && k != "reported") {
        return Err(reject(ShadowError::InvalidStateNode));
    }
    // `state` itself is level 1.
    if 1 + state.values().map(depth).max().unwrap_or(0) > limits.max_depth {
        return Err(reject(ShadowError::TooDeep(limits.max_depth)));
    }
    let check = |name: &str, not_object: ShadowError| match state.get(name) {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(_) => Err(reject(not_object)),
    };
    check("desired", ShadowError::DesiredNotObject)?;
    check("reported", ShadowError::ReportedNotObject)?;
    Ok(UpdateRequest {
        state,
        version,
        client_token,
    })
}
