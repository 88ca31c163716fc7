//! HTTP/1.1 plumbing shared by every HTTPS endpoint: serving one connection with hyper (header
//! read timeout, upgrades for WebSocket), bounded bodies read within a deadline, JSON responses
//! with a request id, and query and header helpers.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};

/// How long a client may take to send a request's headers (slow clients do not hold a task).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's body once its headers are in (a body sent a
/// byte at a time does not hold a task).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The body type of every response.
pub type Body = Full<Bytes>;

/// Serves HTTP/1.1 on one connection (upgrades allowed) with `handle` answering each request.
pub async fn serve_connection<S, F, Fut>(stream: S, peer: SocketAddr, handle: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let handle = handle.clone();
        async move { Ok::<_, Infallible>(handle(request).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Longer than the limit.
    #[error("the body exceeds {0} bytes")]
    TooLarge(usize),
    /// The connection failed or the body was cut short.
    #[error("the request body could not be read")]
    Unreadable,
    /// Not all there within [`BODY_READ_TIMEOUT`].
    #[error("the request body did not arrive in time")]
    TimedOut,
}

/// Reads a whole body of at most `limit` bytes within [`BODY_READ_TIMEOUT`].
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Ok(Err(_)) => Err(BodyError::Unreadable),
    }
}

/// A fresh request id (a UUID), as AWS sends in `x-amzn-RequestId`.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A JSON response with `x-amzn-RequestId: {request_id}`.
pub fn json_response(status: StatusCode, body: String, request_id: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

/// A `200 OK` JSON response with a new request id.
pub fn ok_json(body: String) -> Response<Body> {
    json_response(StatusCode::OK, body, &new_request_id())
}

/// A plain-text response (for refusals before any API is reached, e.g. a bad upgrade).
pub fn text_response(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// The percent-decoded value of query parameter `name` (the first one), if present.
///
/// ```
/// use iot_examples::net::http::query_param;
/// assert_eq!(query_param("qos=1&retain=true", "retain").as_deref(), Some("true"));
/// assert_eq!(query_param("name=a%2Fb", "name").as_deref(), Some("a/b"));
/// assert_eq!(query_param("flag", "flag").as_deref(), Some(""));
/// assert_eq!(query_param("qos=1", "retain"), None);
/// ```
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
    })
}

/// Percent-decodes a path segment (lossy: invalid UTF-8 becomes U+FFFD).
pub fn decode_path(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The request's headers as text pairs (values that are not visible ASCII are left out).
pub fn header_pairs<B>(request: &Request<B>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}
