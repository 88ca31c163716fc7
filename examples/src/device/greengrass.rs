//! Greengrass from the device side (tokio): a small HTTPS client for the Greengrass data plane,
//! authenticated by the device's certificate ([`discover`], and for core devices
//! [`update_connectivity_info`] and [`put_certificate_authorities`]), and
//! [`GreengrassDiscovery`], the [`Discovery`] that sends a client device to its core devices.
//!
//! Every call is bounded: [`REQUEST_TIMEOUT`] for connect, TLS, request and answer together, and
//! [`MAX_RESPONSE_BYTES`] of answer body. HTTP/1.1 with hyper over the same TLS transport the
//! MQTT session uses ([`Endpoint`] with [`Transport::Tls`]; offer ALPN `x-amzn-http-ca` in its
//! config to use a 443-style port).
//!
//! ```no_run
//! # async fn example(cloud: iot_examples::device::Endpoint, fallback: Vec<iot_examples::device::Endpoint>,
//! #     cert_pem: &str, key_pem: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use iot_examples::device::{Discovery, greengrass::{DeviceIdentity, GreengrassDiscovery}};
//! let identity = DeviceIdentity::from_pem(cert_pem, key_pem)?;
//! let mut discovery = GreengrassDiscovery::new("car-1", cloud, identity, fallback);
//! // The core's endpoints when the car is associated with one (or the last answer while the
//! // cloud is unreachable); the fallback (the cloud's MQTT endpoints) otherwise.
//! let endpoints = discovery.endpoints().await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use super::client::{Discovery, DiscoveryError};
use super::transport::{Endpoint, Transport, TransportError};
use crate::engine::now_ms;
use crate::store::discover_response::{ConnectivityInfo, DiscoverResponse, DiscoveredGroup};

/// How long one data-plane call may take, connect to last body byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer body read (a device in 10 groups of 10 CAs each stays well under).
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// Characters left as they are in a path segment (thing names are `A-Z a-z 0-9 : _ -`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b':');

/// Why a Greengrass data-plane call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GreengrassError {
    /// The endpoint is not TLS (the data plane needs the device certificate).
    #[error("the Greengrass data plane needs a TLS endpoint with the device certificate")]
    NotTls,
    /// Connecting (TCP, TLS) failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// HTTP failed (the connection broke, the answer was not HTTP/1.1).
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a bad host for the `Host` header).
    #[error("request: {0}")]
    Request(String),
    /// The whole call took longer than [`REQUEST_TIMEOUT`].
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer body was larger than [`MAX_RESPONSE_BYTES`] or cut short.
    #[error("the answer body exceeds {MAX_RESPONSE_BYTES} bytes or was cut short")]
    Body,
    /// Discovery found no core device for the thing (404: not associated with any core, or none
    /// of its cores has an endpoint).
    #[error("no core device for this thing: {0}")]
    NoCoreDevice(String),
    /// Any other refusal: status, AWS's error type (`x-amzn-ErrorType`) and message.
    #[error("{status} {error_type}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The exception name, empty when the answer named none.
        error_type: String,
        /// What the body said.
        message: String,
    },
    /// A 200 whose body is not the expected JSON.
    #[error("unexpected answer: {0}")]
    Json(String),
    /// A certificate or key in PEM could not be read, or a TLS configuration not built.
    #[error("device identity: {0}")]
    Identity(String),
}

/// A device's certificate chain and private key, for TLS to the cloud and to its cores.
pub struct DeviceIdentity {
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("certificates", &self.certificates.len())
            .finish_non_exhaustive()
    }
}

impl Clone for DeviceIdentity {
    fn clone(&self) -> Self {
        DeviceIdentity {
            certificates: self.certificates.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl DeviceIdentity {
    /// From the certificate (chain) and private key PEM files' text.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, GreengrassError> {
        let certificates = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GreengrassError::Identity(format!("certificate: {e}")))?;
        if certificates.is_empty() {
            return Err(GreengrassError::Identity(
                "no certificate in the PEM".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| GreengrassError::Identity(format!("private key: {e}")))?;
        Ok(DeviceIdentity { certificates, key })
    }

    /// A TLS client configuration presenting this identity and trusting exactly the PEM
    /// certificates `trusted`, offering `alpn`.
    pub fn tls_config(
        &self,
        trusted: &[String],
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ClientConfig>, GreengrassError> {
        let mut roots = rustls::RootCertStore::empty();
        for pem in trusted {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| GreengrassError::Identity(format!("CA: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| GreengrassError::Identity(format!("CA: {e}")))?;
            }
        }
        if roots.is_empty() {
            return Err(GreengrassError::Identity(
                "no CA certificate to trust".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| GreengrassError::Identity(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(self.certificates.clone(), self.key.clone_key())
            .map_err(|e| GreengrassError::Identity(e.to_string()))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// One answer as read: status, `x-amzn-ErrorType`, body.
struct Answer {
    status: StatusCode,
    error_type: String,
    body: Bytes,
}

impl Answer {
    /// The refusal this answer stands for.
    fn refusal(&self) -> GreengrassError {
        let json: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let message = ["message", "errorMessage", "Message"]
            .iter()
            .find_map(|k| json.get(k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        GreengrassError::Status {
            status: self.status.as_u16(),
            error_type: self.error_type.clone(),
            message,
        }
    }

    /// The body as `T` on a 2xx, else the refusal.
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, GreengrassError> {
        if !self.status.is_success() {
            return Err(self.refusal());
        }
        serde_json::from_slice(&self.body).map_err(|e| GreengrassError::Json(e.to_string()))
    }
}

/// One HTTP/1.1 exchange with `cloud` within [`REQUEST_TIMEOUT`].
async fn call(
    cloud: &Endpoint,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Answer, GreengrassError> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(cloud, method, path, body))
        .await
        .map_err(|_| GreengrassError::Timeout(REQUEST_TIMEOUT))?
}

async fn exchange(
    cloud: &Endpoint,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Answer, GreengrassError> {
    if !matches!(cloud.transport, Transport::Tls(_)) {
        return Err(GreengrassError::NotTls);
    }
    let stream = cloud.open(now_ms() / 1000).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let host = if cloud.port == 443 {
        cloud.host.clone()
    } else {
        cloud.address()
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host)
        .header(CONNECTION, "close");
    let payload = match body {
        Some(json) => {
            request = request.header(CONTENT_TYPE, "application/json");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(payload))
        .map_err(|e| GreengrassError::Request(e.to_string()))?;
    let answer = async move {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|_| GreengrassError::Body)?
            .to_bytes();
        Ok::<_, GreengrassError>(Answer {
            status,
            error_type,
            body,
        })
    };
    // The connection is driven alongside; it ends once the answer is read and `sender` dropped.
    let (answer, _) = tokio::join!(answer, connection);
    answer
}

/// `Discover`: `GET /greengrass/discover/thing/{thing}` with the device's certificate. A 404
/// (no associated core with an endpoint) is [`GreengrassError::NoCoreDevice`].
pub async fn discover(
    cloud: &Endpoint,
    thing_name: &str,
) -> Result<DiscoverResponse, GreengrassError> {
    let path = format!(
        "/greengrass/discover/thing/{}",
        utf8_percent_encode(thing_name, SEGMENT)
    );
    let answer = call(cloud, Method::GET, &path, None).await?;
    if answer.status == StatusCode::NOT_FOUND {
        let GreengrassError::Status { message, .. } = answer.refusal() else {
            return Err(GreengrassError::NoCoreDevice(String::new()));
        };
        return Err(GreengrassError::NoCoreDevice(message));
    }
    answer.json()
}

/// `UpdateConnectivityInfo` for core device `core` (what a core's IP detector reports): returns
/// the new version.
pub async fn update_connectivity_info(
    cloud: &Endpoint,
    core: &str,
    entries: &[ConnectivityInfo],
) -> Result<String, GreengrassError> {
    let path = format!(
        "/greengrass/things/{}/connectivityInfo",
        utf8_percent_encode(core, SEGMENT)
    );
    let body = json!({
        "ConnectivityInfo": entries.iter().map(|e| json!({
            "Id": e.id,
            "HostAddress": e.host_address,
            "PortNumber": e.port_number,
            "Metadata": e.metadata,
        })).collect::<Vec<_>>()
    });
    let answer: Value = call(cloud, Method::PUT, &path, Some(body)).await?.json()?;
    answer
        .get("Version")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| GreengrassError::Json("no Version in the answer".into()))
}

/// `PutCertificateAuthorities` for core device `core`: the PEM CA certificates client devices
/// will trust to verify its local broker.
pub async fn put_certificate_authorities(
    cloud: &Endpoint,
    core: &str,
    pems: &[String],
) -> Result<(), GreengrassError> {
    let path = format!(
        "/greengrass/v2/coreDevices/{}/certificateAuthorities",
        utf8_percent_encode(core, SEGMENT)
    );
    let body = json!({ "coreDeviceCertificates": pems });
    let _: Value = call(cloud, Method::PUT, &path, Some(body)).await?.json()?;
    Ok(())
}

/// Where [`GreengrassDiscovery`] sent the device last, for its log and its tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoverySource {
    /// The cloud's fresh answer: the thing's cores.
    Cores,
    /// The cloud could not be asked: the last answer that named cores.
    Cached,
    /// No core (the cloud said so, or nothing was ever learned): the fallback endpoints.
    Fallback,
}

/// A [`Discovery`] by Greengrass: asks the cloud ([`discover`]) which core devices the thing may
/// use and answers endpoints to each core's connectivity entries, in the answer's order (TLS
/// trusting exactly that group's CAs, presenting the device certificate, server name = the
/// entry's host address). When the thing has no core it answers the fallback endpoints (the
/// cloud's MQTT endpoints); when the cloud cannot be asked it answers the last endpoints it
/// learned (kept in memory, one answer), so a car behind a core keeps reconnecting to its core
/// while the cloud is down, else the fallback. Every choice is logged.
#[derive(Debug)]
pub struct GreengrassDiscovery {
    thing_name: String,
    cloud: Endpoint,
    identity: DeviceIdentity,
    fallback: Vec<Endpoint>,
    last_good: Option<Vec<Endpoint>>,
    last_source: Option<DiscoverySource>,
}

impl GreengrassDiscovery {
    /// Discovery for `thing_name`, asking `cloud` (its HTTPS data-plane endpoint, TLS with the
    /// device certificate), connecting to cores as `identity`, else to `fallback`.
    pub fn new(
        thing_name: &str,
        cloud: Endpoint,
        identity: DeviceIdentity,
        fallback: Vec<Endpoint>,
    ) -> Self {
        GreengrassDiscovery {
            thing_name: thing_name.to_owned(),
            cloud,
            identity,
            fallback,
            last_good: None,
            last_source: None,
        }
    }

    /// What the last [`endpoints`](Discovery::endpoints) answered from.
    pub fn last_source(&self) -> Option<DiscoverySource> {
        self.last_source
    }

    /// The endpoints of one group: its connectivity entries under a TLS config trusting its CAs.
    fn group_endpoints(&self, group: &DiscoveredGroup) -> Result<Vec<Endpoint>, GreengrassError> {
        let tls = self.identity.tls_config(&group.cas, &[])?;
        Ok(group
            .cores
            .iter()
            .flat_map(|core| core.connectivity.iter())
            .map(|entry| Endpoint {
                host: entry.host_address.clone(),
                port: entry.port_number,
                transport: Transport::Tls(tls.clone()),
            })
            .collect())
    }

    /// Every usable endpoint of an answer (a group whose CAs do not load is skipped and logged).
    fn answer_endpoints(&self, answer: &DiscoverResponse) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        for group in &answer.groups {
            match self.group_endpoints(group) {
                Ok(list) => endpoints.extend(list),
                Err(error) => tracing::warn!(
                    thing = self.thing_name,
                    group = group.group_id,
                    %error,
                    "Greengrass group skipped"
                ),
            }
        }
        endpoints
    }

    /// Decides from one call's outcome.
    fn choose(&mut self, outcome: Result<DiscoverResponse, GreengrassError>) -> Vec<Endpoint> {
        let thing = self.thing_name.as_str();
        let (source, endpoints) = match outcome {
            Ok(answer) => {
                let endpoints = self.answer_endpoints(&answer);
                if endpoints.is_empty() {
                    tracing::info!(thing, "Greengrass discovery: no usable core; the fallback");
                    self.last_good = None;
                    (DiscoverySource::Fallback, self.fallback.clone())
                } else {
                    let hosts: Vec<String> = endpoints.iter().map(Endpoint::address).collect();
                    tracing::info!(thing, ?hosts, "Greengrass discovery: the cores");
                    self.last_good = Some(endpoints.clone());
                    (DiscoverySource::Cores, endpoints)
                }
            }
            Err(GreengrassError::NoCoreDevice(message)) => {
                tracing::info!(
                    thing,
                    message,
                    "Greengrass discovery: no core; the fallback"
                );
                self.last_good = None;
                (DiscoverySource::Fallback, self.fallback.clone())
            }
            Err(error) => match &self.last_good {
                Some(cached) => {
                    let hosts: Vec<String> = cached.iter().map(Endpoint::address).collect();
                    tracing::warn!(thing, %error, ?hosts, "Greengrass discovery failed: the last cores");
                    (DiscoverySource::Cached, cached.clone())
                }
                None => {
                    tracing::warn!(thing, %error, "Greengrass discovery failed: the fallback");
                    (DiscoverySource::Fallback, self.fallback.clone())
                }
            },
        };
        self.last_source = Some(source);
        endpoints
    }
}

impl Discovery for GreengrassDiscovery {
    fn endpoints(
        &mut self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Endpoint>, DiscoveryError>> + Send + '_>> {
        Box::pin(async move {
            let outcome = discover(&self.cloud, &self.thing_name).await;
            Ok(self.choose(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::discover_response::{DiscoveredCore, group_id};

    fn identity_and_ca() -> (DeviceIdentity, String) {
        let ca =
            iot_auth::provision::CertificateAuthority::generate("test CA", 1_700_000_000).unwrap();
        let mut registry = iot_auth::registry::CertificateRegistry::new();
        let issued = iot_auth::provision::create_keys_and_certificate(
            &mut registry,
            &ca,
            true,
            1_700_000_000,
        )
        .unwrap();
        let identity =
            DeviceIdentity::from_pem(&issued.certificate_pem, &issued.private_key_pem).unwrap();
        (identity, ca.certificate_pem())
    }

    fn fallback() -> Vec<Endpoint> {
        vec![Endpoint {
            host: "cloud.example".into(),
            port: 8883,
            transport: Transport::Tcp,
        }]
    }

    fn answer(cas: Vec<String>) -> DiscoverResponse {
        DiscoverResponse {
            groups: vec![DiscoveredGroup {
                group_id: group_id("core-1"),
                cores: vec![DiscoveredCore {
                    thing_arn: "arn:aws:iot:us-east-1:123456789012:thing/core-1".into(),
                    connectivity: vec![
                        ConnectivityInfo {
                            id: "lan".into(),
                            host_address: "10.0.0.2".into(),
                            port_number: 8883,
                            metadata: String::new(),
                        },
                        ConnectivityInfo {
                            id: "dns".into(),
                            host_address: "core.local".into(),
                            port_number: 443,
                            metadata: String::new(),
                        },
                    ],
                }],
                cas,
            }],
        }
    }

    fn discovery(identity: DeviceIdentity) -> GreengrassDiscovery {
        GreengrassDiscovery::new("car-1", fallback()[0].clone(), identity, fallback())
    }

    fn hosts(endpoints: &[Endpoint]) -> Vec<String> {
        endpoints.iter().map(Endpoint::address).collect()
    }

    #[test]
    fn cores_then_cache_while_the_cloud_is_away_then_fallback_once_unassociated() {
        let (identity, ca) = identity_and_ca();
        let mut d = discovery(identity);
        let cores = d.choose(Ok(answer(vec![ca.clone()])));
        assert_eq!(hosts(&cores), ["10.0.0.2:8883", "core.local:443"]);
        assert!(matches!(cores[0].transport, Transport::Tls(_)));
        assert_eq!(d.last_source(), Some(DiscoverySource::Cores));

        let cached = d.choose(Err(GreengrassError::Timeout(REQUEST_TIMEOUT)));
        assert_eq!(hosts(&cached), hosts(&cores));
        assert_eq!(d.last_source(), Some(DiscoverySource::Cached));

        let unassociated = d.choose(Err(GreengrassError::NoCoreDevice("gone".into())));
        assert_eq!(hosts(&unassociated), ["cloud.example:8883"]);
        // The cloud said "no core": the cache is forgotten.
        let later = d.choose(Err(GreengrassError::Timeout(REQUEST_TIMEOUT)));
        assert_eq!(hosts(&later), ["cloud.example:8883"]);
        assert_eq!(d.last_source(), Some(DiscoverySource::Fallback));
    }

    #[test]
    fn a_failure_before_any_answer_falls_back() {
        let (identity, _) = identity_and_ca();
        let mut d = discovery(identity);
        let endpoints = d.choose(Err(GreengrassError::Status {
            status: 500,
            error_type: String::new(),
            message: String::new(),
        }));
        assert_eq!(hosts(&endpoints), ["cloud.example:8883"]);
        assert_eq!(d.last_source(), Some(DiscoverySource::Fallback));
    }

    #[test]
    fn a_group_without_usable_cas_is_skipped() {
        let (identity, _) = identity_and_ca();
        let mut d = discovery(identity);
        let endpoints = d.choose(Ok(answer(vec!["not pem".into()])));
        assert_eq!(hosts(&endpoints), ["cloud.example:8883"]);
        let endpoints = d.choose(Ok(answer(vec![])));
        assert_eq!(d.last_source(), Some(DiscoverySource::Fallback));
        assert_eq!(endpoints.len(), 1);
    }

    #[test]
    fn identities_need_a_certificate_and_a_key() {
        assert!(matches!(
            DeviceIdentity::from_pem("", ""),
            Err(GreengrassError::Identity(_))
        ));
    }

    #[tokio::test]
    async fn a_plain_endpoint_is_refused_and_an_unreachable_cloud_is_an_error() {
        let plain = fallback()[0].clone();
        assert!(matches!(
            discover(&plain, "car-1").await,
            Err(GreengrassError::NotTls)
        ));
        let (identity, ca) = identity_and_ca();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let closed = Endpoint {
            host: "localhost".into(),
            port,
            transport: Transport::Tls(identity.tls_config(&[ca], &[]).unwrap()),
        };
        assert!(matches!(
            discover(&closed, "car-1").await,
            Err(GreengrassError::Transport(_))
        ));
    }
}
