//! The HTTPS side of the endpoint, as AWS IoT serves it on 443 and 8443: `POST /topics/{topic}`
//! (publish), the Device Shadow REST API (`GET`/`POST`/`DELETE /things/{thing}/shadow[?name=]`,
//! `GET /api/things/shadow/ListNamedShadowsForThing/{thing}`) and `GET /mqtt`, the WebSocket
//! upgrade for MQTT (see [`crate::websocket`]).
//!
//! A request is authenticated by the TLS client certificate when one was presented, else by
//! SigV4 (the `Authorization` header, or a presigned query), then authorized by the principal's
//! AWS IoT policies. Responses carry AWS's status codes and JSON bodies (spec, "HTTPS publish").

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use iot_auth::policy::{Action, PolicyGuard, ResourceArns};
use iot_auth::registry::CertificateRegistry;
use iot_auth::sigv4::{HttpRequest, SigV4Error, Verifier};
use iot_broker_core::codec::{Limits, QoS};
use iot_broker_core::message::Message;
use iot_broker_core::profile::Profile;
use iot_broker_core::topic::{TopicName, TopicRefusal};
use iot_shadow::{
    Operation, ShadowError, ShadowKey, TopicKind, is_valid_shadow_name, is_valid_thing_name,
};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use crate::access_keys::SharedAccessKeys;
use crate::authorizer::request_context;
use crate::engine::{EngineHandle, Event, now_ms};
use crate::metrics::{RefusalCounts, count_refusal};
use crate::shadows::CloudServices;

/// How long a client may take to send a request's headers (slow clients do not hold a task).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything a request handler needs, shared by every HTTPS connection.
pub struct HttpContext {
    /// The engine.
    pub engine: EngineHandle,
    /// Certificates, things and policies.
    pub registry: Arc<RwLock<CertificateRegistry>>,
    /// SigV4 verification against the access keys.
    pub sigv4: Verifier<SharedAccessKeys>,
    /// ARNs of this region and account.
    pub arns: ResourceArns,
    /// MQTT limits for WebSocket connections.
    pub limits: Limits,
    /// Largest HTTPS publish body (AWS: 128 KiB); larger bodies get 413.
    pub max_payload: usize,
    /// Where refused signatures are counted (for the metrics).
    pub refusals: RefusalCounts,
}

/// The metrics reason of a SigV4 refusal.
fn sigv4_reason(error: &SigV4Error) -> &'static str {
    match error {
        SigV4Error::Unsigned => "sigv4_unsigned",
        SigV4Error::Expired | SigV4Error::InvalidExpires | SigV4Error::InvalidDate => {
            "sigv4_expired_or_bad_date"
        }
        SigV4Error::UnknownAccessKey(_) => "sigv4_unknown_access_key",
        SigV4Error::SignatureMismatch => "sigv4_signature_mismatch",
        SigV4Error::SecurityToken => "sigv4_security_token",
        SigV4Error::WrongRegion(_)
        | SigV4Error::WrongService(_)
        | SigV4Error::ScopeDateMismatch { .. } => "sigv4_wrong_scope",
        _ => "sigv4_malformed",
    }
}

impl std::fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext").finish_non_exhaustive()
    }
}

/// The body type of every response.
pub type Body = Full<Bytes>;

/// An error response in AWS's shape: `{"message": …, "traceId": …}` with `x-amzn-ErrorType`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let trace = uuid::Uuid::new_v4().to_string();
    let body = json!({"message": message, "traceId": trace}).to_string();
    let mut response = json_response(status, body, &trace);
    if let Ok(value) = HeaderValue::from_str(kind) {
        response.headers_mut().insert("x-amzn-ErrorType", value);
    }
    response
}

fn json_response(status: StatusCode, body: String, trace: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(trace) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

/// A shadow service error as the REST API returns it: the status is the error's code, the body
/// the same JSON the MQTT `/rejected` topics carry.
fn shadow_error(e: &ShadowError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        e.to_json(now_ms() / 1000, None),
        &uuid::Uuid::new_v4().to_string(),
    )
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The certificate id or the IAM user ARN.
    pub principal: String,
    /// The client's address.
    pub peer: SocketAddr,
}

/// Serves HTTP/1.1 on one TLS connection. `certificate` is the verified client certificate's
/// principal, if the client presented one.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    certificate: Option<String>,
    context: Arc<HttpContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let context = context.clone();
        let certificate = certificate.clone();
        async move { Ok::<_, Infallible>(handle(request, peer, certificate, context).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "HTTPS connection ended with an error");
    }
}

fn headers_of(request: &Request<Incoming>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Checks the request's SigV4 signature (presigned when the query carries one).
pub fn authenticate_sigv4(
    context: &HttpContext,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<String, SigV4Error> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = HttpRequest {
        method,
        path,
        query,
        headers: &headers,
        body,
    };
    let now = now_ms() / 1000;
    let verified = if query.contains("X-Amz-Signature=") {
        context.sigv4.verify_presigned(&request, now)
    } else {
        context.sigv4.verify_header(&request, now)
    };
    match verified {
        Ok(verified) => Ok(verified.principal),
        Err(error) => {
            count_refusal(&context.refusals, sigv4_reason(&error));
            Err(error)
        }
    }
}

/// The policy guard of a principal for an HTTPS request (no client id: HTTPS has none).
fn guard_for(context: &HttpContext, caller: &Caller) -> PolicyGuard {
    let registry = context
        .registry
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let request_context = request_context(
        &registry,
        &caller.principal,
        None,
        Some(&caller.peer.ip().to_string()),
    );
    PolicyGuard::new(
        registry.policies_of(&caller.principal),
        context.arns.clone(),
        request_context,
    )
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
    })
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    certificate: Option<String>,
    context: Arc<HttpContext>,
) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers = headers_of(&request);
    let is_upgrade = request
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if path == "/mqtt" && is_upgrade && method == Method::GET {
        let principal = match certificate {
            Some(principal) => Ok(principal),
            None => authenticate_sigv4(&context, "GET", &path, &query, &headers, b""),
        };
        return match principal {
            Ok(principal) => {
                crate::websocket::upgrade(request, Caller { principal, peer }, context)
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "MQTT over WebSocket refused");
                error(StatusCode::FORBIDDEN, "ForbiddenException", &e.to_string())
            }
        };
    }
    let body = match Limited::new(request.into_body(), context.max_payload)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                "The payload exceeds the size limit",
            );
        }
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "The request body could not be read",
            );
        }
    };
    let principal = match certificate {
        Some(principal) => principal,
        None => match authenticate_sigv4(&context, method.as_str(), &path, &query, &headers, &body)
        {
            Ok(principal) => principal,
            Err(SigV4Error::Unsigned) => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    "Missing authentication: a client certificate or a SigV4 signature",
                );
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "HTTPS request refused");
                return error(StatusCode::FORBIDDEN, "ForbiddenException", &e.to_string());
            }
        },
    };
    let caller = Caller { principal, peer };
    if let Some(topic) = path.strip_prefix("/topics/") {
        if method != Method::POST {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedException",
                "Publish takes POST",
            );
        }
        return publish(&context, &caller, topic, &query, body).await;
    }
    if let Some(rest) = path.strip_prefix("/things/")
        && let Some(thing) = rest.strip_suffix("/shadow")
    {
        let thing = percent_encoding::percent_decode_str(thing)
            .decode_utf8_lossy()
            .into_owned();
        let name = query_param(&query, "name").map(|n| n.into_owned());
        return shadow(&context, &caller, &method, thing, name, body).await;
    }
    if let Some(thing) = path.strip_prefix("/api/things/shadow/ListNamedShadowsForThing/") {
        if method != Method::GET {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedException",
                "ListNamedShadowsForThing takes GET",
            );
        }
        let thing = percent_encoding::percent_decode_str(thing)
            .decode_utf8_lossy()
            .into_owned();
        return list_named(&context, &caller, thing, &query).await;
    }
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        "No such resource",
    )
}

async fn publish(
    context: &HttpContext,
    caller: &Caller,
    encoded_topic: &str,
    query: &str,
    payload: Bytes,
) -> Response<Body> {
    let invalid =
        |message: &str| error(StatusCode::BAD_REQUEST, "InvalidRequestException", message);
    let Ok(topic) = percent_encoding::percent_decode_str(encoded_topic).decode_utf8() else {
        return invalid("The topic is not UTF-8");
    };
    let qos = match query_param(query, "qos").as_deref() {
        None | Some("0") => QoS::AtMostOnce,
        Some("1") => QoS::AtLeastOnce,
        Some(_) => return invalid("qos must be 0 or 1"),
    };
    let retain = match query_param(query, "retain").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return invalid("retain must be true or false"),
    };
    // Reserved topics a device may not publish to (lifecycle events, shadow responses) are as
    // closed to HTTPS as to MQTT; shadow requests and Basic Ingest are open.
    let name = match TopicName::new(topic.as_ref(), &Profile::aws_iot()) {
        Ok(name) => name,
        Err(TopicRefusal::Reserved) => {
            tracing::info!(principal = caller.principal, topic = %topic, "HTTPS publish to a reserved topic refused");
            return error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
        }
        Err(_) => return invalid("Invalid topic name"),
    };
    let decision = guard_for(context, caller).publish(name.as_str(), retain);
    if !decision.is_allowed() {
        tracing::info!(principal = caller.principal, topic = %topic, retain, %decision, "HTTPS publish refused");
        return error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
    }
    let (reply, answer) = oneshot::channel();
    let sent = context.engine.send(Event::Publish {
        topic: name,
        payload,
        qos,
        retain,
        reply,
    });
    if !sent || answer.await != Ok(true) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            "Internal failure",
        );
    }
    let trace = uuid::Uuid::new_v4().to_string();
    json_response(
        StatusCode::OK,
        json!({"message": "OK", "traceId": trace}).to_string(),
        &trace,
    )
}

async fn shadow(
    context: &HttpContext,
    caller: &Caller,
    method: &Method,
    thing: String,
    name: Option<String>,
    body: Bytes,
) -> Response<Body> {
    let action = match *method {
        Method::GET => Action::GetThingShadow,
        Method::POST => Action::UpdateThingShadow,
        Method::DELETE => Action::DeleteThingShadow,
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedException",
                "The shadow takes GET, POST or DELETE",
            );
        }
    };
    let decision = guard_for(context, caller).shadow(action, &thing, name.as_deref());
    if !decision.is_allowed() {
        tracing::info!(principal = caller.principal, thing, ?action, %decision, "shadow REST refused");
        return error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
    }
    if !is_valid_thing_name(&thing) || !name.as_deref().is_none_or(is_valid_shadow_name) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "Invalid thing or shadow name",
        );
    }
    let key = match name {
        Some(name) => ShadowKey::named(thing, name),
        None => ShadowKey::classic(thing),
    };
    let answer = context
        .engine
        .query(move |state| {
            let now = now_ms();
            let Some(services) = state.reserved().downcast_mut::<CloudServices>() else {
                return Err(ShadowError::Internal);
            };
            let shadows = services.shadows();
            let outcome = match action {
                Action::GetThingShadow => shadows.get(&key, &body, now),
                Action::DeleteThingShadow => shadows.delete(&key, &body, now).inspect(|doc| {
                    // Subscribers of delete/accepted hear of it, as after an MQTT delete.
                    state.deliver(&Message::new(
                        key.topic(TopicKind::Accepted(Operation::Delete)),
                        doc.to_string(),
                        QoS::AtLeastOnce,
                        false,
                    ));
                }),
                _ => shadows.update(&key, &body, now).map(|outcome| {
                    for message in outcome.messages {
                        state.deliver(&Message::new(
                            message.topic.as_str(),
                            message.payload.into_bytes(),
                            QoS::AtLeastOnce,
                            false,
                        ));
                    }
                    outcome.accepted
                }),
            };
            outcome.map_err(|(e, _token)| e)
        })
        .await;
    match answer {
        Some(Ok(document)) => json_response(
            StatusCode::OK,
            document.to_string(),
            &uuid::Uuid::new_v4().to_string(),
        ),
        Some(Err(e)) => shadow_error(&e),
        None => shadow_error(&ShadowError::Internal),
    }
}

async fn list_named(
    context: &HttpContext,
    caller: &Caller,
    thing: String,
    query: &str,
) -> Response<Body> {
    if !is_valid_thing_name(&thing) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "Invalid thing name",
        );
    }
    let decision =
        guard_for(context, caller).shadow(Action::ListNamedShadowsForThing, &thing, None);
    if !decision.is_allowed() {
        return error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
    }
    let page_size = match query_param(query, "pageSize").map(|s| s.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "pageSize must be 1 to 100",
            );
        }
    };
    let start = query_param(query, "nextToken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let names = context
        .engine
        .query(move |state| {
            state
                .reserved()
                .downcast_mut::<CloudServices>()
                .ok_or(ShadowError::Internal)
                .and_then(|s| s.shadows().list_named(&thing))
        })
        .await;
    let names = match names {
        Some(Ok(names)) => names,
        Some(Err(e)) => return shadow_error(&e),
        None => return shadow_error(&ShadowError::Internal),
    };
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
    json_response(
        StatusCode::OK,
        body.to_string(),
        &uuid::Uuid::new_v4().to_string(),
    )
}
