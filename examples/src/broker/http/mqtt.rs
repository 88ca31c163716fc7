//! `GET /mqtt` upgraded to a WebSocket carrying MQTT, for a caller already authenticated (SigV4
//! presigned URL or client certificate): the byte stream becomes an ordinary MQTT connection of
//! the engine, with the caller as its principal.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use iot_broker_core::auth::TransportInfo;

use super::{Caller, HttpContext};
use crate::engine::connection;
use crate::net::http::Body;
use crate::net::websocket;

/// Whether `request` asks for a WebSocket upgrade.
pub(super) fn is_upgrade(request: &Request<Incoming>) -> bool {
    request.method() == Method::GET
        && request
            .headers()
            .get(hyper::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

pub(super) fn upgrade(
    request: Request<Incoming>,
    caller: Caller,
    context: Arc<HttpContext>,
) -> Response<Body> {
    websocket::upgrade(request, move |stream| async move {
        let transport = TransportInfo {
            principal: Some(Arc::from(caller.principal.as_str())),
            remote_addr: Some(Arc::from(caller.peer.to_string())),
        };
        connection::serve(
            stream,
            transport,
            context.engine.clone(),
            context.limits().clone(),
        )
        .await;
    })
}
