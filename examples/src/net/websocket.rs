//! MQTT over WebSocket as a byte stream: an upgrade request answered (RFC 6455) with subprotocol
//! `mqtt` (SDK v2, mqtt.js, paho) or `mqttv3.1` (JS SDK v1), the one offered echoed; after it the
//! binary frames' bytes are handed to whoever serves the stream (a packet may span frames); the
//! connection lives at most 24 hours, as on AWS. Authentication is the caller's, before this.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION,
};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::http::{Body, text_response};

/// The longest a WebSocket connection lives (AWS: 24 hours).
pub const MAX_WEBSOCKET_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Subprotocols accepted, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The client offered subprotocols, none of them MQTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported WebSocket subprotocol: offer mqtt")]
pub struct UnsupportedSubprotocol;

/// Picks the subprotocol to echo from a `Sec-WebSocket-Protocol` header (a comma-separated list).
///
/// ```
/// use iot_examples::net::websocket::choose_subprotocol;
/// assert_eq!(choose_subprotocol(Some("mqtt")), Ok(Some("mqtt")));
/// assert_eq!(choose_subprotocol(Some("wamp, mqttv3.1")), Ok(Some("mqttv3.1")));
/// assert_eq!(choose_subprotocol(None), Ok(None));
/// assert!(choose_subprotocol(Some("wamp")).is_err());
/// ```
pub fn choose_subprotocol(
    offered: Option<&str>,
) -> Result<Option<&'static str>, UnsupportedSubprotocol> {
    let Some(offered) = offered else {
        return Ok(None);
    };
    offered
        .split(',')
        .map(str::trim)
        .find_map(|p| SUBPROTOCOLS.iter().find(|s| s.eq_ignore_ascii_case(p)))
        .map(|p| Some(*p))
        .ok_or(UnsupportedSubprotocol)
}

/// Answers an authenticated upgrade request with `101 Switching Protocols` and, once hyper hands
/// the connection over, calls `serve` with a byte stream carrying the binary frames' contents
/// (both ways). `serve` returning, or the 24 hours passing, closes the WebSocket.
pub fn upgrade<F, Fut>(mut request: Request<Incoming>, serve: F) -> Response<Body>
where
    F: FnOnce(DuplexStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return text_response(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    if request
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut response = text_response(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only");
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let offered = request
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let Ok(protocol) = choose_subprotocol(offered) else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "unsupported WebSocket subprotocol: offer mqtt",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
                let lifetime = tokio::time::timeout(MAX_WEBSOCKET_LIFETIME, serve(byte_stream(ws)));
                if lifetime.await.is_err() {
                    tracing::info!("WebSocket connection closed after 24 hours");
                }
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::UPGRADE,
        HeaderValue::from_static("websocket"),
    );
    headers.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    }
    response
}

/// A byte stream over a WebSocket: what is written to the returned end goes out in binary
/// frames, what arrives in binary frames is read from it (a message may span frames). The pipe
/// holds 64 KiB each way, so a slow reader back-pressures the other side. Dropping the returned
/// end closes the WebSocket; a close or error from the peer ends the stream.
pub fn byte_stream<S>(ws: WebSocketStream<S>) -> DuplexStream
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (user_side, pump_side) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pump(ws, pump_side));
    user_side
}

/// Opens the WebSocket on `stream` (TLS already done) as a client: `GET {path_and_query}` with
/// `Host: {host}` and subprotocol `mqtt`, and returns the byte stream over it.
pub async fn connect_client<S>(
    stream: S,
    host: &str,
    path_and_query: &str,
) -> Result<DuplexStream, tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let request = Request::builder()
        .method("GET")
        .uri(format!("wss://{host}{path_and_query}"))
        .header("Host", host)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header(
            "Sec-WebSocket-Key",
            tokio_tungstenite::tungstenite::handshake::client::generate_key(),
        )
        .header("Sec-WebSocket-Protocol", "mqtt")
        .body(())?;
    let (ws, _response) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(byte_stream(ws))
}

async fn pump<S>(ws: WebSocketStream<S>, pump_side: DuplexStream)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut from_user, mut to_user) = tokio::io::split(pump_side);
    let (mut sink, mut stream) = ws.split();
    let inbound = async {
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    if to_user.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                // Text frames are not MQTT; a close or an error ends it.
                Ok(Message::Text(_) | Message::Close(_)) | Err(_) => break,
            }
        }
        let _ = to_user.shutdown().await;
    };
    let outbound = async {
        let mut buf = BytesMut::with_capacity(8192);
        loop {
            match from_user.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let frame = buf.split().freeze();
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
    // Either side ended: closing the pipe lets the user see the connection lost (on the broker
    // a will fires as for TCP) or finish its own close.
}
