//! Parsing and validating the JSON of shadow requests.

use serde_json::{Map, Value};

use crate::error::ShadowError;
use crate::request_json::{Json, Object};
use crate::service::ShadowLimits;

/// One section (`desired` or `reported`) of an update request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Section<'a> {
    /// Not in the request: left as it is.
    Absent,
    /// `null`: the section is removed.
    Clear,
    /// An object merged into the section.
    Merge(&'a Object<'a>),
}

/// A validated update request, borrowing from its payload.
#[derive(Debug, Clone)]
pub(crate) struct UpdateRequest<'a> {
    /// `state`: an object holding only `desired` and `reported`, each an object or `null`.
    pub(crate) state: Object<'a>,
    pub(crate) version: Option<u64>,
    pub(crate) client_token: Option<String>,
}

impl UpdateRequest<'_> {
    /// `state.desired`.
    pub(crate) fn desired(&self) -> Section<'_> {
        self.section("desired")
    }

    /// `state.reported`.
    pub(crate) fn reported(&self) -> Section<'_> {
        self.section("reported")
    }

    fn section(&self, name: &str) -> Section<'_> {
        match crate::request_json::get(&self.state, name) {
            Some(Json::Object(fields)) => Section::Merge(fields),
            Some(Json::Null) => Section::Clear,
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
pub(crate) fn parse_update<'a>(
    payload: &'a [u8],
    limits: &ShadowLimits,
) -> Result<UpdateRequest<'a>, Rejection> {
    if payload.len() > limits.max_request_bytes {
        return Err((ShadowError::PayloadTooLarge, None));
    }
    let text =
        core::str::from_utf8(payload).map_err(|_| (ShadowError::UnsupportedEncoding, None))?;
    let Some(Json::Object(fields)) = Json::parse(text) else {
        return Err((ShadowError::InvalidJson, None));
    };
    let field = |name: &str| crate::request_json::get(&fields, name);
    let client_token = match field("clientToken") {
        None => None,
        Some(Json::String(token)) if token.len() <= limits.max_client_token_bytes => {
            Some(token.clone().into_owned())
        }
        Some(_) => return Err((ShadowError::InvalidClientToken, None)),
    };
    let reject = |e: ShadowError| (e, client_token.clone());
    let version = match field("version") {
        None => None,
        Some(Json::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => return Err(reject(ShadowError::InvalidVersion)),
    };
    let state = match fields.into_iter().find(|(k, _)| k == "state") {
        None => return Err(reject(ShadowError::MissingState)),
        Some((_, Json::Object(state))) => state,
        Some(_) => return Err(reject(ShadowError::StateNotObject)),
    };
    if state.iter().any(|(k, _)| k != "desired" && k != "reported") {
        return Err(reject(ShadowError::InvalidStateNode));
    }
    // `state` itself is level 1.
    if 1 + state.iter().map(|(_, v)| v.depth()).max().unwrap_or(0) > limits.max_depth {
        return Err(reject(ShadowError::TooDeep(limits.max_depth)));
    }
    let check = |name: &str, not_object: ShadowError| match crate::request_json::get(&state, name) {
        None | Some(Json::Null | Json::Object(_)) => Ok(()),
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
