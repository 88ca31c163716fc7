//! The retained-message API of the AWS IoT data plane: `GET /retainedMessage/{topic}`
//! (`GetRetainedMessage`, authorized by `iot:GetRetainedMessage` on the topic) and
//! `GET /retainedMessage?maxResults=&nextToken=` (`ListRetainedMessages`, `iot:ListRetainedMessages`
//! on `*`), in the service model's JSON: the payload base64, times in epoch milliseconds.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::{Method, Response};
use iot_auth::policy::Action;
use iot_broker_core::codec::QoS;
use iot_broker_core::topic::TopicName;
use serde_json::{Value, json};

use super::{ApiError, ApiRequest, ErrorType, HttpContext};
use crate::broker::program::BrokerRequest;
use crate::net::http::{Body, decode_path, ok_json, query_param};

/// `maxResults` when the request names none (the service model allows 1–200 and documents no
/// default).
const DEFAULT_MAX_RESULTS: usize = 50;
/// The largest `maxResults`.
const MAX_RESULTS: usize = 200;

fn qos_number(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

fn only_get(request: &ApiRequest<'_>, operation: &'static str) -> Result<(), ApiError> {
    if request.method == Method::GET {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(operation))
    }
}

/// `GetRetainedMessage`: `{"topic","payload","qos","lastModifiedTime"}`, or 404.
pub(super) async fn get(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    only_get(&request, "GetRetainedMessage takes GET")?;
    let topic = decode_path(request.rest);
    context.authorize(
        &request.caller,
        Action::GetRetainedMessage,
        &topic,
        |guard| guard.get_retained_message(&topic),
    )?;
    // Wildcards and over-long topics name no retained message: the request is malformed.
    // A reserved topic is well-formed but never holds one (retain is refused there): 404 below.
    if TopicName::new(topic.as_str(), &context.profile).is_err() && !topic.starts_with('$') {
        return Err(ApiError::invalid("Invalid topic name"));
    }
    let retained = context
        .engine
        .ask(|reply| BrokerRequest::GetRetained {
            topic: topic.clone(),
            reply,
        })
        .await
        .ok_or(ApiError::EngineStopped)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorType::ResourceNotFound,
                format!("No retained message exists on topic '{topic}'"),
            )
        })?;
    let message = &retained.message;
    Ok(ok_json(
        json!({
            "topic": message.topic.as_str(),
            "payload": STANDARD.encode(&message.payload),
            "qos": qos_number(message.qos),
            "lastModifiedTime": retained.modified_ms,
        })
        .to_string(),
    ))
}

/// `ListRetainedMessages`: `{"retainedTopics":[{"topic","payloadSize","qos","lastModifiedTime"}]}`
/// with `nextToken` while more follow.
pub(super) async fn list(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    only_get(&request, "ListRetainedMessages takes GET")?;
    context.authorize(
        &request.caller,
        Action::ListRetainedMessages,
        "*",
        |guard| guard.list_retained_messages(),
    )?;
    let max = match query_param(request.query, "maxResults").map(|s| s.parse::<usize>()) {
        None => DEFAULT_MAX_RESULTS,
        Some(Ok(n)) if (1..=MAX_RESULTS).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("maxResults must be 1 to 200")),
    };
    let after = match query_param(request.query, "nextToken") {
        None => None,
        Some(token) => Some(decode_token(&token)?),
    };
    let page = context
        .engine
        .ask(|reply| BrokerRequest::ListRetained { after, max, reply })
        .await
        .ok_or(ApiError::EngineStopped)?;
    let topics: Vec<Value> = page
        .topics
        .iter()
        .map(|summary| {
            json!({
                "topic": summary.topic,
                "payloadSize": summary.payload_size,
                "qos": qos_number(summary.qos),
                "lastModifiedTime": summary.modified_ms,
            })
        })
        .collect();
    let mut body = json!({ "retainedTopics": topics });
    if let (Some(next), Value::Object(map)) = (page.next, &mut body) {
        map.insert("nextToken".into(), Value::String(encode_token(&next)));
    }
    Ok(ok_json(body.to_string()))
}

/// The opaque `nextToken` of the page that ends at `topic`.
fn encode_token(topic: &str) -> String {
    URL_SAFE_NO_PAD.encode(topic)
}

/// The topic a `nextToken` stands for.
fn decode_token(token: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid("Invalid nextToken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        for topic in ["cars/1/status", "a b/ü/#x", ""] {
            assert_eq!(decode_token(&encode_token(topic)).unwrap(), topic);
        }
        assert!(decode_token("not base64!").is_err());
    }
}
