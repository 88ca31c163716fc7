//! `POST /topics/{topic}?qos=&retain=`: publish as AWS IoT's data plane does. The topic is the
//! rest of the path, percent-decoded (raw `/` as curl sends it, or one `%2F`-joined segment as
//! boto3 sends it); answered after the commit, like a PUBACK.

use bytes::Bytes;
use hyper::{Method, Response};
use iot_auth::policy::Action;
use iot_broker_core::codec::QoS;
use iot_broker_core::topic::{TopicName, TopicRefusal};
use serde_json::json;

use super::{ApiError, ApiRequest, HttpContext};
use crate::net::http::{Body, json_response, new_request_id, query_param};

pub(super) async fn handle(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    if request.method != Method::POST {
        return Err(ApiError::method_not_allowed("Publish takes POST"));
    }
    let topic = percent_encoding::percent_decode_str(request.rest)
        .decode_utf8()
        .map_err(|_| ApiError::invalid("The topic is not UTF-8"))?;
    let qos = match query_param(request.query, "qos").as_deref() {
        None | Some("0") => QoS::AtMostOnce,
        Some("1") => QoS::AtLeastOnce,
        Some(_) => return Err(ApiError::invalid("qos must be 0 or 1")),
    };
    let retain = match query_param(request.query, "retain").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("retain must be true or false")),
    };
    let caller = &request.caller;
    // Reserved topics a device may not publish to (lifecycle events, shadow responses) are as
    // closed to HTTPS as to MQTT; shadow requests and Basic Ingest are open.
    let name = match TopicName::new(topic.as_ref(), &context.profile) {
        Ok(name) => name,
        Err(TopicRefusal::Reserved) => {
            tracing::info!(principal = caller.principal, topic = %topic, "HTTPS publish to a reserved topic refused");
            return Err(ApiError::forbidden());
        }
        Err(_) => return Err(ApiError::invalid("Invalid topic name")),
    };
    context.authorize(caller, Action::Publish, name.as_str(), |guard| {
        guard.publish(name.as_str(), retain)
    })?;
    let payload: Bytes = request.body;
    context
        .engine
        .publish(name, payload, qos, retain)
        .await
        .ok_or(ApiError::EngineStopped)?;
    let request_id = new_request_id();
    Ok(json_response(
        hyper::StatusCode::OK,
        json!({"message": "OK", "traceId": request_id}).to_string(),
        &request_id,
    ))
}
