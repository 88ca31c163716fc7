//! Greengrass discovery: `GET /greengrass/discover/thing/{thing}`, which a client device calls
//! with its certificate to learn the core devices it may connect to (AWS serves it on
//! `greengrass-ats.iot.{region}.amazonaws.com`, 8443 or 443 with ALPN `x-amzn-http-ca`).
//!
//! - TLS client certificate only (AWS: the only accepted authentication); a SigV4 caller is
//!   refused as a policy refusal is.
//! - `greengrass:Discover` on `arn:aws:iot:{region}:{account}:thing/{thing}`; thing policy
//!   variables never resolve. Refused: 403 `{"message":null,"traceId":"…"}` (AWS's
//!   troubleshooting page).
//! - 200: the discover document (one group per associated core with an endpoint).
//! - The thing is associated with no core, or none of its cores has an endpoint: 404
//!   `{"errorMessage":"The thing provided for discovery was not found"}` (AWS's documented
//!   answer for both cases; an unknown thing gets the same).

use std::sync::PoisonError;

use hyper::{Method, Response};
use iot_auth::policy::Action;
use serde_json::json;

use super::{ApiError, ApiRequest, ErrorType, HttpContext};
use crate::net::http::{Body, decode_path, new_request_id, ok_json};

/// The body of a 404 discovery answer, as AWS documents it.
pub(super) const NOT_FOUND_MESSAGE: &str = "The thing provided for discovery was not found";

/// AWS's 403 for a discovery the policy does not allow: a null message and a trace id.
fn forbidden() -> ApiError {
    ApiError::Document {
        kind: ErrorType::Forbidden,
        body: json!({"message": null, "traceId": new_request_id()}),
    }
}

pub(super) fn handle(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    if request.method != Method::GET {
        return Err(ApiError::method_not_allowed("Discover takes GET"));
    }
    let thing = decode_path(request.rest);
    let caller = &request.caller;
    if !caller.by_certificate {
        tracing::info!(
            principal = caller.principal,
            peer = %caller.peer,
            thing,
            "Greengrass discovery refused: no client certificate"
        );
        return Err(forbidden());
    }
    context
        .authorize(caller, Action::GreengrassDiscover, &thing, |guard| {
            guard.greengrass_discover(&thing)
        })
        .map_err(|_| forbidden())?;
    let answer = context
        .greengrass
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .discover(&thing, |core| context.arns.thing(core, None));
    match answer {
        Some(document) => {
            let body = serde_json::to_string(&document)
                .map_err(|e| ApiError::new(ErrorType::InternalFailure, e.to_string()))?;
            Ok(ok_json(body))
        }
        None => Err(ApiError::Document {
            kind: ErrorType::ResourceNotFound,
            body: json!({ "errorMessage": NOT_FOUND_MESSAGE }),
        }),
    }
}
