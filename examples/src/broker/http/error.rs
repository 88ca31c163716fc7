//! Every way an HTTPS request to the data plane fails, and the one place it becomes a response:
//! AWS's status code, the `x-amzn-ErrorType` header AWS SDKs read to pick the exception
//! (boto3's `ResourceNotFoundException`, `ConflictException`, …), and a JSON body with a
//! `message` (or the body AWS documents for the operation, as Greengrass discovery's).

use std::borrow::Cow;

use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use iot_auth::sigv4::SigV4Error;
use iot_shadow::ShadowError;
use serde_json::json;

use crate::engine::now_ms;
use crate::net::http::{Body, json_response, new_request_id};
use crate::store::greengrass::CoreDeviceError;

/// The error types of the AWS IoT data plane (`iot-data` service model) and of the Greengrass V2
/// data plane (`ValidationException`, `AccessDeniedException`, `ServiceQuotaExceededException`),
/// each with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorType {
    /// 400: the request is not valid.
    InvalidRequest,
    /// 401: no credentials.
    Unauthorized,
    /// 403: credentials refused, or the policy denies the action.
    Forbidden,
    /// 404: no such shadow, retained message or resource.
    ResourceNotFound,
    /// 405: the verb is not served on this resource.
    MethodNotAllowed,
    /// 409: the shadow's version is not the one the update named.
    Conflict,
    /// 413: the body is over the limit.
    RequestEntityTooLarge,
    /// 415: the document is not UTF-8.
    UnsupportedDocumentEncoding,
    /// 429: over a rate limit.
    Throttling,
    /// 500: an unexpected failure.
    InternalFailure,
    /// 503: the service is stopping or cannot serve now.
    ServiceUnavailable,
    /// 400 (Greengrass): the request does not satisfy the API's constraints.
    Validation,
    /// 403 (Greengrass): the policy does not allow the action.
    AccessDenied,
    /// 402 (Greengrass): a quota was reached.
    ServiceQuotaExceeded,
}

impl ErrorType {
    /// Every type; for a status shared by two, the `iot-data` one comes first.
    pub const ALL: [ErrorType; 14] = [
        ErrorType::InvalidRequest,
        ErrorType::Unauthorized,
        ErrorType::Forbidden,
        ErrorType::ResourceNotFound,
        ErrorType::MethodNotAllowed,
        ErrorType::Conflict,
        ErrorType::RequestEntityTooLarge,
        ErrorType::UnsupportedDocumentEncoding,
        ErrorType::Throttling,
        ErrorType::InternalFailure,
        ErrorType::ServiceUnavailable,
        ErrorType::Validation,
        ErrorType::AccessDenied,
        ErrorType::ServiceQuotaExceeded,
    ];

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorType::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorType::Forbidden => StatusCode::FORBIDDEN,
            ErrorType::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::Conflict => StatusCode::CONFLICT,
            ErrorType::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::UnsupportedDocumentEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::Throttling => StatusCode::TOO_MANY_REQUESTS,
            ErrorType::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Validation => StatusCode::BAD_REQUEST,
            ErrorType::AccessDenied => StatusCode::FORBIDDEN,
            ErrorType::ServiceQuotaExceeded => StatusCode::PAYMENT_REQUIRED,
        }
    }

    /// The exception name sent in `x-amzn-ErrorType`.
    ///
    /// ```
    /// use iot_examples::broker::http::error::ErrorType;
    /// assert_eq!(ErrorType::from_status(409).name(), "ConflictException");
    /// assert_eq!(ErrorType::from_status(404).name(), "ResourceNotFoundException");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "InvalidRequestException",
            ErrorType::Unauthorized => "UnauthorizedException",
            ErrorType::Forbidden => "ForbiddenException",
            ErrorType::ResourceNotFound => "ResourceNotFoundException",
            ErrorType::MethodNotAllowed => "MethodNotAllowedException",
            ErrorType::Conflict => "ConflictException",
            ErrorType::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorType::UnsupportedDocumentEncoding => "UnsupportedDocumentEncodingException",
            ErrorType::Throttling => "ThrottlingException",
            ErrorType::InternalFailure => "InternalFailureException",
            ErrorType::ServiceUnavailable => "ServiceUnavailableException",
            ErrorType::Validation => "ValidationException",
            ErrorType::AccessDenied => "AccessDeniedException",
            ErrorType::ServiceQuotaExceeded => "ServiceQuotaExceededException",
        }
    }

    /// The type of an error status (unknown statuses are internal failures; a status two types
    /// share gives the `iot-data` one).
    pub fn from_status(status: u16) -> ErrorType {
        ErrorType::ALL
            .into_iter()
            .find(|t| t.status().as_u16() == status)
            .unwrap_or(ErrorType::InternalFailure)
    }
}

/// Why a data-plane request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// An error of `kind` with AWS's body `{"message": …, "traceId": …}`.
    #[error("{kind:?}: {message}")]
    Aws {
        /// The error type.
        kind: ErrorType,
        /// What was wrong.
        message: Cow<'static, str>,
    },
    /// The shadow service refused: its own JSON (`{"code": …, "message": …}`) is the body, its
    /// code the status.
    #[error(transparent)]
    Shadow(#[from] ShadowError),
    /// The SigV4 signature was missing (401) or refused (403).
    #[error(transparent)]
    Signature(#[from] SigV4Error),
    /// The engine stopped, or its store commit failed, before answering.
    #[error("the broker is stopping")]
    EngineStopped,
    /// An error of `kind` whose body AWS documents in a shape of its own (Greengrass discovery's
    /// `{"errorMessage": …}`): sent as given.
    #[error("{kind:?}: {body}")]
    Document {
        /// The error type.
        kind: ErrorType,
        /// The whole body.
        body: serde_json::Value,
    },
    /// The Greengrass core devices refused a change or a read.
    #[error(transparent)]
    Greengrass(#[from] CoreDeviceError),
}

impl ApiError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorType, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::Aws {
            kind,
            message: message.into(),
        }
    }

    /// A 400 `InvalidRequestException`.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorType::InvalidRequest, message)
    }

    /// A 403 `ForbiddenException` for a policy refusal (the reason is logged, not sent).
    pub fn forbidden() -> ApiError {
        ApiError::new(ErrorType::Forbidden, "Forbidden")
    }

    /// A 405 `MethodNotAllowedException`.
    pub fn method_not_allowed(message: &'static str) -> ApiError {
        ApiError::new(ErrorType::MethodNotAllowed, message)
    }

    /// The error's type.
    pub fn kind(&self) -> ErrorType {
        match self {
            ApiError::Aws { kind, .. } => *kind,
            ApiError::Shadow(error) => ErrorType::from_status(error.code()),
            ApiError::Signature(SigV4Error::Unsigned) => ErrorType::Unauthorized,
            ApiError::Signature(_) => ErrorType::Forbidden,
            ApiError::EngineStopped => ErrorType::ServiceUnavailable,
            ApiError::Document { kind, .. } => *kind,
            ApiError::Greengrass(CoreDeviceError::ThingNotFound(_)) => ErrorType::ResourceNotFound,
            ApiError::Greengrass(CoreDeviceError::QuotaExceeded(_)) => {
                ErrorType::ServiceQuotaExceeded
            }
            ApiError::Greengrass(_) => ErrorType::Validation,
        }
    }

    /// The response: status, `x-amzn-ErrorType`, `x-amzn-RequestId` and a JSON body.
    pub fn into_response(self) -> Response<Body> {
        let kind = self.kind();
        let request_id = new_request_id();
        let body = match &self {
            ApiError::Shadow(error) => error.to_json(now_ms() / 1000, None),
            ApiError::Document { body, .. } => body.to_string(),
            ApiError::Signature(SigV4Error::Unsigned) => json!({
                "message": "Missing authentication: a client certificate or a SigV4 signature",
                "traceId": request_id,
            })
            .to_string(),
            other => json!({"message": other.message(), "traceId": request_id}).to_string(),
        };
        let mut response = json_response(kind.status(), body, &request_id);
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(kind.name()));
        response
    }

    fn message(&self) -> String {
        match self {
            ApiError::Aws { message, .. } => message.to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_status() {
        for kind in ErrorType::ALL {
            let back = ErrorType::from_status(kind.status().as_u16());
            match kind {
                // Greengrass's types share their status with an iot-data one, which wins.
                ErrorType::Validation => assert_eq!(back, ErrorType::InvalidRequest),
                ErrorType::AccessDenied => assert_eq!(back, ErrorType::Forbidden),
                _ => assert_eq!(back, kind),
            }
            assert!(kind.name().ends_with("Exception"));
        }
    }

    #[test]
    fn greengrass_errors_carry_their_types_and_documents_their_bodies() {
        let cases = [
            (
                CoreDeviceError::ThingNotFound("c".into()),
                404,
                "ResourceNotFoundException",
            ),
            (
                CoreDeviceError::Validation("v".into()),
                400,
                "ValidationException",
            ),
            (
                CoreDeviceError::QuotaExceeded("q".into()),
                402,
                "ServiceQuotaExceededException",
            ),
        ];
        for (error, status, name) in cases {
            let response = ApiError::from(error).into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers().get("x-amzn-ErrorType").unwrap(), name);
        }
        let response = ApiError::Document {
            kind: ErrorType::ResourceNotFound,
            body: json!({"errorMessage": "gone"}),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn shadow_errors_carry_their_type_and_body() {
        let response = ApiError::from(ShadowError::VersionConflict).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers().get("x-amzn-ErrorType").unwrap(),
            "ConflictException"
        );
        let response = ApiError::from(ShadowError::NotFound("car".into())).into_response();
        assert_eq!(
            response.headers().get("x-amzn-ErrorType").unwrap(),
            "ResourceNotFoundException"
        );
    }
}
