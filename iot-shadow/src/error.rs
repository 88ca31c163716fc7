//! The service's rejections, with AWS's codes and messages, and their JSON error document.

use serde_json::{Map, Value};

use crate::topic::ShadowKey;

/// Why a shadow request was rejected: an HTTP-style code and AWS's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowError {
    /// 400: the payload is not JSON, or not a JSON object.
    #[error("Invalid JSON")]
    InvalidJson,
    /// 400: an update without `state`.
    #[error("Missing required node: state")]
    MissingState,
    /// 400: `state` is not an object.
    #[error("State node must be an object")]
    StateNotObject,
    /// 400: `state.desired` is neither an object nor null.
    #[error("Desired node must be an object")]
    DesiredNotObject,
    /// 400: `state.reported` is neither an object nor null.
    #[error("Reported node must be an object")]
    ReportedNotObject,
    /// 400: `state` holds a key other than `desired` and `reported`.
    #[error("State contains an invalid node")]
    InvalidStateNode,
    /// 400: `version` is not a non-negative integer.
    #[error("Invalid version")]
    InvalidVersion,
    /// 400: `clientToken` is not a string of at most 64 bytes.
    #[error("Invalid clientToken")]
    InvalidClientToken,
    /// 400: objects and arrays nested deeper than the limit.
    #[error("JSON contains too many levels of nesting; maximum is {0}")]
    TooDeep(usize),
    /// 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403.
    #[error("Forbidden")]
    Forbidden,
    /// 404: no such shadow (the name is the shadow's, or the thing's for a classic shadow).
    #[error("No shadow exists with name: '{0}'")]
    NotFound(String),
    /// 409: the request's `version` is not the shadow's current version.
    #[error("Version conflict")]
    VersionConflict,
    /// 413: the resulting state, or the request, exceeds the size limit.
    #[error("The payload exceeds the maximum size allowed")]
    PayloadTooLarge,
    /// 415: the payload is not UTF-8.
    #[error("Unsupported documented encoding; supported encoding is UTF-8")]
    UnsupportedEncoding,
    /// 429: too many requests for this thing.
    #[error("Too Many Requests")]
    Throttled,
    /// 500: the store failed.
    #[error("Internal service failure")]
    Internal,
}

impl ShadowError {
    /// The HTTP-style status code AWS sends in the error document.
    pub fn code(&self) -> u16 {
        match self {
            ShadowError::InvalidJson
            | ShadowError::MissingState
            | ShadowError::StateNotObject
            | ShadowError::DesiredNotObject
            | ShadowError::ReportedNotObject
            | ShadowError::InvalidStateNode
            | ShadowError::InvalidVersion
            | ShadowError::InvalidClientToken
            | ShadowError::TooDeep(_) => 400,
            ShadowError::Unauthorized => 401,
            ShadowError::Forbidden => 403,
            ShadowError::NotFound(_) => 404,
            ShadowError::VersionConflict => 409,
            ShadowError::PayloadTooLarge => 413,
            ShadowError::UnsupportedEncoding => 415,
            ShadowError::Throttled => 429,
            ShadowError::Internal => 500,
        }
    }

    /// The 404 for `key`.
    pub fn not_found(key: &ShadowKey) -> ShadowError {
        ShadowError::NotFound(key.display_name().to_string())
    }

    /// The error document: `{"code":C,"message":"…","timestamp":T,"clientToken":"…"}`. As in AWS's
    /// examples, 404 and 409 carry no timestamp; `clientToken` appears only if the request sent one.
    ///
    /// ```
    /// use iot_shadow::ShadowError;
    /// assert_eq!(
    ///     ShadowError::VersionConflict.to_json(1591140517, Some("t1")),
    ///     r#"{"code":409,"message":"Version conflict","clientToken":"t1"}"#
    /// );
    /// assert_eq!(
    ///     ShadowError::MissingState.to_json(1591140517, None),
    ///     r#"{"code":400,"message":"Missing required node: state","timestamp":1591140517}"#
    /// );
    /// ```
    pub fn to_json(&self, timestamp: u64, client_token: Option<&str>) -> String {
        let mut doc = Map::new();
        doc.insert("code".into(), self.code().into());
        doc.insert("message".into(), self.to_string().into());
        if !matches!(
            self,
            ShadowError::NotFound(_) | ShadowError::VersionConflict
        ) {
            doc.insert("timestamp".into(), timestamp.into());
        }
        if let Some(token) = client_token {
            doc.insert("clientToken".into(), token.into());
        }
        crate::json_writer::to_json(&Value::Object(doc))
    }
}
