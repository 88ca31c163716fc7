//! The TLS side of an AWS IoT endpoint: server certificate chosen by SNI, ALPN protocols of port
//! 443, and a `rustls::ServerConfig` with the registry's client-certificate verifier and no session
//! resumption.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN for MQTT with an X.509 client certificate on port 443.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";
/// ALPN for HTTPS with an X.509 client certificate on port 443.
pub const ALPN_HTTP_CA: &[u8] = b"x-amzn-http-ca";
/// ALPN for MQTT with a custom authorizer on port 443.
pub const ALPN_MQTT: &[u8] = b"mqtt";
/// Plain HTTP/1.1 ALPN (browsers and SDKs offer it for WebSocket and HTTPS).
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// What a connection on port 443 is, from the ALPN protocol the handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port443Route {
    /// `x-amzn-mqtt-ca`: MQTT, client certificate required.
    MqttWithCertificate,
    /// `x-amzn-http-ca`: HTTPS, client certificate required.
    HttpsWithCertificate,
    /// `mqtt`: MQTT with a custom authorizer.
    MqttCustomAuth,
    /// No ALPN or `http/1.1`: HTTP, i.e. SigV4 HTTPS or MQTT over WebSocket.
    Http,
}

/// Routes a port-443 connection by its negotiated ALPN protocol.
///
/// ```
/// use iot_auth::endpoint::{Port443Route, route_443};
/// assert_eq!(route_443(Some(b"x-amzn-mqtt-ca")), Port443Route::MqttWithCertificate);
/// assert_eq!(route_443(None), Port443Route::Http);
/// ```
pub fn route_443(alpn: Option<&[u8]>) -> Port443Route {
    match alpn {
        Some(ALPN_MQTT_CA) => Port443Route::MqttWithCertificate,
        Some(ALPN_HTTP_CA) => Port443Route::HttpsWithCertificate,
        Some(ALPN_MQTT) => Port443Route::MqttCustomAuth,
        _ => Port443Route::Http,
    }
}

/// Why an endpoint could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The certificate chain PEM holds no certificate.
    #[error("no certificate in the server certificate PEM")]
    NoCertificate,
    /// The key PEM holds no private key, or one the provider cannot use.
    #[error("unusable server private key: {0}")]
    Key(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Chooses the server certificate by SNI: the names served are exact host names or `*.domain`
/// wildcards. Without SNI, or for a name not served, the handshake is refused when `require_sni`
/// (AWS's behaviour); otherwise the one certificate is used.
pub struct SniResolver {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
    require_sni: bool,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field("names", &self.names)
            .field("require_sni", &self.require_sni)
            .finish_non_exhaustive()
    }
}

impl SniResolver {
    /// A resolver serving `key` for `names`.
    pub fn new(key: Arc<CertifiedKey>, names: Vec<String>, require_sni: bool) -> Self {
        SniResolver {
            key,
            names: names.into_iter().map(|n| n.to_ascii_lowercase()).collect(),
            require_sni,
        }
    }

    /// Whether `name` (an SNI host name) is served.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # fn key() -> Arc<rustls::sign::CertifiedKey> {
    /// #   let ca = iot_auth::provision::CertificateAuthority::generate("ca", 1_790_000_000).unwrap();
    /// #   let s = ca.issue_server(&["localhost".into()], 1_790_000_000).unwrap();
    /// #   let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// #   iot_auth::endpoint::certified_key(&s.certificate_pem, &s.private_key_pem, &provider).unwrap()
    /// # }
    /// use iot_auth::endpoint::SniResolver;
    /// let resolver = SniResolver::new(key(), vec!["*.iot.local".into(), "localhost".into()], true);
    /// assert!(resolver.serves("abc-ats.iot.local"));
    /// assert!(resolver.serves("LOCALHOST"));
    /// assert!(!resolver.serves("a.b.iot.local"));
    /// assert!(!resolver.serves("example.com"));
    /// ```
    pub fn serves(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.names
            .iter()
            .any(|served| match served.strip_prefix("*.") {
                Some(domain) => name
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
                None => *served == name,
            })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) if self.serves(name) => Some(self.key.clone()),
            Some(_) | None if self.require_sni => None,
            _ => Some(self.key.clone()),
        }
    }
}

/// Loads a PEM certificate chain and private key into a rustls `CertifiedKey`.
pub fn certified_key(
    chain_pem: &str,
    key_pem: &str,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, EndpointError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| EndpointError::NoCertificate)?;
    if chain.is_empty() {
        return Err(EndpointError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| EndpointError::Key(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| EndpointError::Key(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// A `ServerConfig` for one listener: TLS 1.2 and 1.3, the given client verifier, the SNI
/// resolver, the ALPN protocols to accept (empty: no ALPN), and no session tickets or session-id
/// resumption (as AWS; resumption would also skip the client-certificate check).
pub fn server_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    resolver: Arc<SniResolver>,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, EndpointError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
