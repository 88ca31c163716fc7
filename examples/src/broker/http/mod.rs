//! The HTTPS side of the endpoint, as AWS IoT serves it on 443 and 8443: the AWS IoT data plane
//! (`iot-data`: publish, Device Shadow REST, retained messages), the Greengrass data plane
//! (discovery for client devices; connectivity information and CA certificates for core
//! devices) and `GET /mqtt`, the WebSocket upgrade for MQTT.
//!
//! A request is authenticated by the TLS client certificate when one was presented, else by
//! SigV4 (the `Authorization` header, or a presigned query), then routed by one table of routes to one
//! handler per resource, which asks the principal's AWS IoT policies. Every failure is an
//! [`ApiError`], turned into AWS's status, `x-amzn-ErrorType` and JSON body in one place
//! ([`error`]).

mod assets;
mod core_device;
mod discover;
pub mod error;
mod login;
mod mqtt;
mod named_shadows;
mod publish;
mod retained;
mod shadow;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use iot_auth::policy::{Action, Decision, PolicyGuard, ResourceArns};
use iot_auth::registry::CertificateRegistry;
use iot_auth::sigv4::{HttpRequest, SigV4Error, Verifier};
use iot_broker_core::codec::Limits;
use iot_broker_core::profile::Profile;
use tokio::io::{AsyncRead, AsyncWrite};

pub use self::error::{ApiError, ErrorType};
use super::authorizer::request_context;
use super::metrics::{RefusalCounts, RefusalKind, count_refusal};
use super::program::BrokerRequest;
use crate::engine::{EngineHandle, now_ms};
use crate::net::http::{Body, BodyError, header_pairs, read_body, serve_connection};
use crate::store::access_keys::SharedAccessKeys;
use crate::store::greengrass::SharedCoreDevices;

/// Everything a request handler needs, shared by every HTTPS connection.
pub struct HttpContext {
    /// The engine.
    pub engine: EngineHandle<BrokerRequest>,
    /// Certificates, things and policies.
    pub registry: Arc<RwLock<CertificateRegistry>>,
    /// The Greengrass core devices (read here; changed on the engine thread).
    pub greengrass: SharedCoreDevices,
    /// SigV4 verification against the access keys.
    pub sigv4: Verifier<SharedAccessKeys>,
    /// ARNs of this region and account.
    pub arns: ResourceArns,
    /// The broker's profile: HTTPS publish checks topics under it, MQTT over WebSocket frames
    /// packets with its limits.
    pub profile: Profile,
    /// Largest request body (AWS: 128 KiB for a publish); larger bodies get 413.
    pub max_payload: usize,
    /// Where refused signatures are counted (for the metrics).
    pub refusals: RefusalCounts,
    /// The region and account (for the dashboard login's answer).
    pub region: String,
    /// The account.
    pub account: String,
    /// How long dashboard credentials last.
    pub credential_ttl_secs: u64,
    /// Password checks running at once (argon2 is slow on purpose: bounded, not a way to
    /// exhaust the CPU).
    pub login_permits: tokio::sync::Semaphore,
    /// A hash no password matches, checked for unknown users so timing does not tell.
    pub dummy_password_hash: String,
}

impl std::fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext").finish_non_exhaustive()
    }
}

impl HttpContext {
    /// MQTT limits for WebSocket connections.
    pub fn limits(&self) -> &Limits {
        &self.profile.limits
    }

    /// Asks the caller's policies about `action` on `resource` (as `decide` asks its guard);
    /// a refusal is logged with the deciding rule, counted, and becomes a 403.
    fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        resource: &str,
        decide: impl FnOnce(&mut PolicyGuard) -> Decision,
    ) -> Result<(), ApiError> {
        let decision = decide(&mut self.guard(caller));
        if decision.is_allowed() {
            return Ok(());
        }
        count_refusal(&self.refusals, RefusalKind::HttpsPolicy, action.name());
        tracing::info!(
            principal = caller.principal,
            peer = %caller.peer,
            action = action.name(),
            resource,
            %decision,
            "HTTPS request refused by policy"
        );
        Err(ApiError::forbidden())
    }

    /// The policy guard of a caller (no client id: HTTPS has none).
    fn guard(&self, caller: &Caller) -> PolicyGuard {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        let context = request_context(
            &registry,
            &caller.principal,
            None,
            Some(&caller.peer.ip().to_string()),
        );
        PolicyGuard::new(
            registry.policies_of(&caller.principal),
            self.arns.clone(),
            context,
        )
    }
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The certificate id or the IAM user ARN.
    pub principal: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// Authenticated by a TLS client certificate (else by SigV4).
    pub by_certificate: bool,
}

/// One authenticated data-plane request, as a resource handler sees it.
#[derive(Debug)]
struct ApiRequest<'a> {
    caller: Caller,
    method: Method,
    /// The path after the route's prefix, still percent-encoded (a topic, a thing).
    rest: &'a str,
    query: &'a str,
    body: Bytes,
}

/// The data plane's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    /// `POST /topics/{topic}`.
    Publish,
    /// `GET`/`POST`/`DELETE /things/{thing}/shadow[?name=]`.
    Shadow,
    /// `GET /api/things/shadow/ListNamedShadowsForThing/{thing}`.
    NamedShadows,
    /// `GET /retainedMessage/{topic}`.
    RetainedMessage,
    /// `GET /retainedMessage?maxResults=&nextToken=`.
    RetainedMessages,
    /// `GET /greengrass/discover/thing/{thing}` (Greengrass `Discover`).
    GreengrassDiscover,
    /// `GET`/`PUT /greengrass/things/{core}/connectivityInfo`.
    ConnectivityInfo,
    /// `PUT /greengrass/v2/coreDevices/{core}/certificateAuthorities`.
    CertificateAuthorities,
}

/// How a route matches a path.
#[derive(Debug, Clone, Copy)]
enum PathPattern {
    /// The path is exactly this.
    Exact(&'static str),
    /// The path starts with this; the rest is the resource's argument.
    Prefix(&'static str),
    /// The path starts with the first and ends with the second; the middle is the argument.
    Around(&'static str, &'static str),
}

/// The routes, in the order they are tried.
const ROUTES: [(PathPattern, Resource); 8] = [
    (PathPattern::Prefix("/topics/"), Resource::Publish),
    (PathPattern::Around("/things/", "/shadow"), Resource::Shadow),
    (
        PathPattern::Prefix("/api/things/shadow/ListNamedShadowsForThing/"),
        Resource::NamedShadows,
    ),
    (
        PathPattern::Prefix("/retainedMessage/"),
        Resource::RetainedMessage,
    ),
    (
        PathPattern::Exact("/retainedMessage"),
        Resource::RetainedMessages,
    ),
    (
        PathPattern::Prefix("/greengrass/discover/thing/"),
        Resource::GreengrassDiscover,
    ),
    (
        PathPattern::Around("/greengrass/things/", "/connectivityInfo"),
        Resource::ConnectivityInfo,
    ),
    (
        PathPattern::Around("/greengrass/v2/coreDevices/", "/certificateAuthorities"),
        Resource::CertificateAuthorities,
    ),
];

/// The resource `path` names and the path's argument.
fn route(path: &str) -> Option<(Resource, &str)> {
    ROUTES.iter().find_map(|(pattern, resource)| {
        let rest = match *pattern {
            PathPattern::Exact(exact) => (path == exact).then_some("")?,
            PathPattern::Prefix(prefix) => path.strip_prefix(prefix)?,
            PathPattern::Around(prefix, suffix) => {
                path.strip_prefix(prefix)?.strip_suffix(suffix)?
            }
        };
        Some((*resource, rest))
    })
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
    serve_connection(stream, peer, move |request| {
        let context = context.clone();
        let certificate = certificate.clone();
        async move {
            handle(request, peer, certificate, &context)
                .await
                .unwrap_or_else(ApiError::into_response)
        }
    })
    .await;
}

/// The metrics reason of a SigV4 refusal.
fn sigv4_reason(error: &SigV4Error) -> &'static str {
    match error {
        SigV4Error::Unsigned => "unsigned",
        SigV4Error::Expired | SigV4Error::InvalidExpires | SigV4Error::InvalidDate => {
            "expired_or_bad_date"
        }
        SigV4Error::UnknownAccessKey(_) => "unknown_access_key",
        SigV4Error::SignatureMismatch => "signature_mismatch",
        SigV4Error::SecurityToken => "security_token",
        SigV4Error::ExpiredToken => "expired_token",
        SigV4Error::WrongRegion(_)
        | SigV4Error::WrongService(_)
        | SigV4Error::ScopeDateMismatch { .. } => "wrong_scope",
        _ => "malformed",
    }
}

/// Checks the request's SigV4 signature (presigned when the query carries one); refusals are
/// counted for the metrics.
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
            count_refusal(&context.refusals, RefusalKind::SigV4, sigv4_reason(&error));
            Err(error)
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    certificate: Option<String>,
    context: &Arc<HttpContext>,
) -> Result<Response<Body>, ApiError> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers = header_pairs(&request);
    if path == "/mqtt" && mqtt::is_upgrade(&request) {
        let by_certificate = certificate.is_some();
        let principal = match certificate {
            Some(principal) => principal,
            None => {
                authenticate_sigv4(context, "GET", &path, &query, &headers, b"").map_err(|e| {
                    tracing::info!(%peer, error = %e, "MQTT over WebSocket refused");
                    // A refused upgrade is 403 whatever the reason, as AWS answers it.
                    ApiError::new(ErrorType::Forbidden, e.to_string())
                })?
            }
        };
        return Ok(mqtt::upgrade(
            request,
            Caller {
                principal,
                peer,
                by_certificate,
            },
            context.clone(),
        ));
    }
    if let Some(asset) = assets::serve(&method, &path) {
        return Ok(asset);
    }
    if path == "/dashboard/login" {
        let body = read_body(request.into_body(), login::MAX_LOGIN_BODY)
            .await
            .map_err(|_| ApiError::invalid("The login body could not be read"))?;
        return login::handle(context, &method, &body).await;
    }
    let body = read_body(request.into_body(), context.max_payload)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(_) => ApiError::new(
                ErrorType::RequestEntityTooLarge,
                "The payload exceeds the maximum size allowed",
            ),
            BodyError::Unreadable => ApiError::invalid("The request body could not be read"),
            BodyError::TimedOut => {
                tracing::info!(%peer, "HTTPS request body not received in time; closed");
                ApiError::invalid("The request body was not received in time")
            }
        })?;
    let by_certificate = certificate.is_some();
    let principal = match certificate {
        Some(principal) => principal,
        None => authenticate_sigv4(context, method.as_str(), &path, &query, &headers, &body)
            .inspect_err(|e| tracing::info!(%peer, error = %e, "HTTPS request refused"))?,
    };
    let Some((resource, rest)) = route(&path) else {
        return Err(ApiError::new(
            ErrorType::ResourceNotFound,
            "No such resource",
        ));
    };
    let request = ApiRequest {
        caller: Caller {
            principal,
            peer,
            by_certificate,
        },
        method,
        rest,
        query: &query,
        body,
    };
    match resource {
        Resource::Publish => publish::handle(context, request).await,
        Resource::Shadow => shadow::handle(context, request).await,
        Resource::NamedShadows => named_shadows::handle(context, request).await,
        Resource::RetainedMessage => retained::get(context, request).await,
        Resource::RetainedMessages => retained::list(context, request).await,
        Resource::GreengrassDiscover => discover::handle(context, request),
        Resource::ConnectivityInfo => core_device::connectivity_info(context, request).await,
        Resource::CertificateAuthorities => {
            core_device::certificate_authorities(context, request).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_their_resource_and_argument() {
        assert_eq!(
            route("/topics/cars/1/speed"),
            Some((Resource::Publish, "cars/1/speed"))
        );
        assert_eq!(
            route("/things/car-1/shadow"),
            Some((Resource::Shadow, "car-1"))
        );
        assert_eq!(route("/things/car-1/other"), None);
        assert_eq!(
            route("/api/things/shadow/ListNamedShadowsForThing/car-1"),
            Some((Resource::NamedShadows, "car-1"))
        );
        assert_eq!(
            route("/retainedMessage/cars%2F1"),
            Some((Resource::RetainedMessage, "cars%2F1"))
        );
        assert_eq!(
            route("/retainedMessage"),
            Some((Resource::RetainedMessages, ""))
        );
        assert_eq!(route("/retainedMessages"), None);
        assert_eq!(
            route("/greengrass/discover/thing/car-1"),
            Some((Resource::GreengrassDiscover, "car-1"))
        );
        assert_eq!(
            route("/greengrass/things/core-1/connectivityInfo"),
            Some((Resource::ConnectivityInfo, "core-1"))
        );
        assert_eq!(
            route("/greengrass/v2/coreDevices/core-1/certificateAuthorities"),
            Some((Resource::CertificateAuthorities, "core-1"))
        );
        assert_eq!(route("/greengrass/things/core-1"), None);
        assert_eq!(route("/nothing"), None);
    }
}
