//! `GET /api/things/shadow/ListNamedShadowsForThing/{thing}?nextToken=&pageSize=`: a thing's
//! named shadows, `pageSize` (1–100, default 25) at a time, authorized by
//! `iot:ListNamedShadowsForThing`.

use hyper::{Method, Response};
use iot_auth::policy::Action;
use iot_shadow::is_valid_thing_name;
use serde_json::{Value, json};

use super::{ApiError, ApiRequest, HttpContext};
use crate::broker::program::BrokerRequest;
use crate::engine::now_ms;
use crate::net::http::{Body, decode_path, ok_json, query_param};

pub(super) async fn handle(
    context: &HttpContext,
    request: ApiRequest<'_>,
) -> Result<Response<Body>, ApiError> {
    if request.method != Method::GET {
        return Err(ApiError::method_not_allowed(
            "ListNamedShadowsForThing takes GET",
        ));
    }
    let thing = decode_path(request.rest);
    if !is_valid_thing_name(&thing) {
        return Err(ApiError::invalid("Invalid thing name"));
    }
    let action = Action::ListNamedShadowsForThing;
    context.authorize(&request.caller, action, &thing, |guard| {
        guard.shadow(action, &thing, None)
    })?;
    let page_size = match query_param(request.query, "pageSize").map(|s| s.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("pageSize must be 1 to 100")),
    };
    let start = query_param(request.query, "nextToken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let names = context
        .engine
        .ask(|reply| BrokerRequest::ListNamedShadows { thing, reply })
        .await
        .ok_or(ApiError::EngineStopped)??;
    let page: Vec<&String> = names.iter().skip(start).take(page_size).collect();
    let mut body = json!({"results": page, "timestamp": now_ms() / 1000});
    if start + page.len() < names.len()
        && let Value::Object(map) = &mut body
    {
        map.insert(
            "nextToken".into(),
            Value::String((start + page.len()).to_string()),
        );
    }
    Ok(ok_json(body.to_string()))
}
