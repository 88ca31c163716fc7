//! What a Greengrass core device tells the cloud about itself, over HTTPS with its certificate:
//!
//! - `PUT /greengrass/things/{core}/connectivityInfo` (`UpdateConnectivityInfo`), body
//!   `{"ConnectivityInfo":[{"Id","HostAddress","PortNumber","Metadata"}]}`, answer
//!   `{"Version":"…"}`; `GET` the same path (`GetConnectivityInfo`) answers
//!   `{"ConnectivityInfo":[…]}`. Authorized by `greengrass:UpdateConnectivityInfo` /
//!   `greengrass:GetConnectivityInfo` on
//!   `arn:aws:greengrass:{region}:{account}:/greengrass/things/{core}/connectivityInfo`.
//! - `PUT /greengrass/v2/coreDevices/{core}/certificateAuthorities` (`PutCertificateAuthorities`,
//!   what the client device auth component calls), body `{"coreDeviceCertificates":["PEM", …]}`,
//!   answer `{}`. AWS does not publish this call's HTTP binding: the path is ours, the member
//!   name the SDK's. Authorized by `greengrass:PutCertificateAuthorities` on `thing/{core}`.
//!
//! Errors in Greengrass's types: 400 `ValidationException`, 403 `AccessDeniedException`, 404
//! `ResourceNotFoundException` (no such thing), 402 `ServiceQuotaExceededException`. Changes go
//! through the engine and are committed before the answer.

use hyper::{Method, Response};
use iot_auth::policy::Action;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiRequest, Caller, ErrorType, HttpContext};
use crate::admin::greengrass::connectivity_json;
use crate::broker::program::BrokerRequest;
use crate::net::http::{Body, decode_path, ok_json};
use crate::store::discover_response::ConnectivityInfo;

/// `UpdateConnectivityInfo`'s body.
#[derive(Debug, Deserialize)]
struct UpdateConnectivityInfoBody {
    #[serde(rename = "ConnectivityInfo")]
    connectivity_info: Vec<ConnectivityInfo>,
}

/// `PutCertificateAuthorities`' body.
#[derive(Debug, Deserialize)]
struct PutCertificateAuthoritiesBody {
    #[serde(rename = "coreDeviceCertificates")]
    core_device_certificates: Vec<String>,
}

/// A policy refusal, in Greengrass's type.
fn access_denied(
    context: &HttpContext,
    caller: &Caller,
    action: Action,
    resource: &str,
    decide: impl FnOnce(&mut iot_auth::policy::PolicyGuard) -> iot_auth::policy::Decision,
) -> Result<(), ApiError> {
    context
        .authorize(caller, action, resource, decide)
        .map_err(|_| {
            ApiError::new(
                ErrorType::AccessDenied,
                format!("The caller is not authorized to perform {action}"),
            )
        })
}

/// A JSON body, or a `ValidationException` saying why not.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorType::Validation, e.to_string()))
}

/// `GET`/`PUT /greengrass/things/{core}/connectivityInfo`.
pub(super) async fn connectivity_info(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    let core = decode_path(request.rest);
    let resource = context.arns.connectivity_info(&core);
    match request.method {
        Method::GET => {
            let action = Action::GreengrassGetConnectivityInfo;
            access_denied(context, &request.caller, action, &resource, |guard| {
                guard.greengrass_connectivity_info(action, &core)
            })?;
            let entries: Vec<serde_json::Value> = {
                let registry = context
                    .registry
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let cores = context
                    .greengrass
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cores
                    .connectivity_info(&core, |thing| registry.thing(thing).is_some())?
                    .iter()
                    .map(connectivity_json)
                    .collect()
            };
            Ok(ok_json(json!({ "ConnectivityInfo": entries }).to_string()))
        }
        Method::PUT => {
            let action = Action::GreengrassUpdateConnectivityInfo;
            access_denied(context, &request.caller, action, &resource, |guard| {
                guard.greengrass_connectivity_info(action, &core)
            })?;
            let body: UpdateConnectivityInfoBody = parse(&request.body)?;
            let version = context
                .engine
                .ask(|reply| BrokerRequest::UpdateConnectivityInfo {
                    core: core.clone(),
                    entries: body.connectivity_info,
                    reply,
                })
                .await
                .ok_or(ApiError::EngineStopped)??;
            tracing::info!(core, version, "connectivity information updated");
            Ok(ok_json(json!({ "Version": version }).to_string()))
        }
        _ => Err(ApiError::method_not_allowed(
            "connectivityInfo takes GET or PUT",
        )),
    }
}

/// `PUT /greengrass/v2/coreDevices/{core}/certificateAuthorities`.
pub(super) async fn certificate_authorities(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    if request.method != Method::PUT {
        return Err(ApiError::method_not_allowed(
            "PutCertificateAuthorities takes PUT",
        ));
    }
    let core = decode_path(request.rest);
    let action = Action::GreengrassPutCertificateAuthorities;
    access_denied(context, &request.caller, action, &core, |guard| {
        guard.greengrass_put_certificate_authorities(&core)
    })?;
    let body: PutCertificateAuthoritiesBody = parse(&request.body)?;
    let count = body.core_device_certificates.len();
    context
        .engine
        .ask(|reply| BrokerRequest::PutCertificateAuthorities {
            core: core.clone(),
            pems: body.core_device_certificates,
            reply,
        })
        .await
        .ok_or(ApiError::EngineStopped)??;
    tracing::info!(core, count, "core device CA certificates uploaded");
    Ok(ok_json("{}".to_owned()))
}
