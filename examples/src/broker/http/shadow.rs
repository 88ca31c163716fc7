//! The Device Shadow REST API: `GET`, `POST` and `DELETE /things/{thing}/shadow[?name={shadow}]`
//! (classic and named shadows), authorized by `iot:GetThingShadow`, `iot:UpdateThingShadow` and
//! `iot:DeleteThingShadow`. Answers are the shadow service's documents; errors its JSON with the
//! matching `x-amzn-ErrorType`. Updates and deletes notify MQTT subscribers as over MQTT.

use hyper::{Method, Response};
use iot_auth::policy::Action;
use iot_shadow::{Operation, ShadowKey, is_valid_shadow_name, is_valid_thing_name};

use super::{ApiError, ApiRequest, HttpContext};
use crate::broker::program::BrokerRequest;
use crate::net::http::{Body, decode_path, ok_json, query_param};

pub(super) async fn handle(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    let (action, operation) = match request.method {
        Method::GET => (Action::GetThingShadow, Operation::Get),
        Method::POST => (Action::UpdateThingShadow, Operation::Update),
        Method::DELETE => (Action::DeleteThingShadow, Operation::Delete),
        _ => {
            return Err(ApiError::method_not_allowed(
                "The shadow takes GET, POST or DELETE",
            ));
        }
    };
    let thing = decode_path(request.rest);
    let name = query_param(request.query, "name").map(|n| n.into_owned());
    let caller = &request.caller;
    context.authorize(caller, action, &thing, |guard| {
        guard.shadow(action, &thing, name.as_deref())
    })?;
    if !is_valid_thing_name(&thing) || !name.as_deref().is_none_or(is_valid_shadow_name) {
        return Err(ApiError::invalid("Invalid thing or shadow name"));
    }
    let key = match name {
        Some(name) => ShadowKey::named(thing, name),
        None => ShadowKey::classic(thing),
    };
    let body = request.body;
    let document = context
        .engine
        .ask(|reply| BrokerRequest::Shadow {
            key,
            operation,
            body,
            reply,
        })
        .await
        .ok_or(ApiError::EngineStopped)??;
    Ok(ok_json(document.to_string()))
}
