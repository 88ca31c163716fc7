//! The byte streams a device's session runs over (tokio): plain TCP for local development and
//! Mosquitto, TLS with the device certificate (SNI; ALPN `x-amzn-mqtt-ca` on AWS's 443), and MQTT
//! over WebSocket with a SigV4-presigned `wss://…/mqtt`.

use std::sync::Arc;
use std::time::Duration;

use iot_auth::sigv4::{Presign, presign};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::net::websocket;

/// A byte stream to a broker.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// Why a TLS client configuration could not be made from PEM files.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TlsConfigError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What was wrong.
    pub reason: String,
}

/// A TLS client configuration trusting the CA certificates in the PEM file `ca` and, with
/// `identity` (certificate chain PEM, private key PEM), presenting that client certificate.
pub fn client_tls_config(
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let error = |path: &std::path::Path| {
        let path = path.to_owned();
        move |e: &dyn std::fmt::Display| TlsConfigError {
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    let ca_error = error(ca);
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| ca_error(&e))? {
        roots
            .add(cert.map_err(|e| ca_error(&e))?)
            .map_err(|e| ca_error(&e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ca_error(&e))?
    .with_root_certificates(roots);
    let config = match identity {
        Some((certificate, key)) => {
            let cert_error = error(certificate);
            let chain = CertificateDer::pem_file_iter(certificate)
                .map_err(|e| cert_error(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| cert_error(&e))?;
            let key_error = error(key);
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| key_error(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| cert_error(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// How long opening a transport (TCP, TLS and WebSocket handshakes) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// SigV4 credentials of an IAM-style user (or temporary ones, with a session token).
#[derive(Clone, PartialEq, Eq)]
pub struct SigV4Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// The endpoint's region.
    pub region: String,
}

impl std::fmt::Debug for SigV4Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// How to reach a broker.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Plain MQTT over TCP (a local development port, a local Mosquitto).
    Tcp,
    /// MQTT over TLS; the config carries the device certificate (and ALPN `x-amzn-mqtt-ca` to
    /// use AWS's port 443).
    Tls(Arc<rustls::ClientConfig>),
    /// MQTT over WebSocket (`GET /mqtt`, subprotocol `mqtt`) over TLS, presigned with SigV4 for
    /// service `iotdevicegateway` at every connect.
    WebSocket {
        /// TLS (server verification; no client certificate needed).
        tls: Arc<rustls::ClientConfig>,
        /// What signs the URL.
        credentials: SigV4Credentials,
    },
}

/// One broker address and the way to reach it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host name (also the TLS server name, sent as SNI) or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The transport.
    pub transport: Transport,
}

/// Why a transport could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// TCP connect failed.
    #[error("connect to {endpoint}: {error}")]
    Connect {
        /// host:port.
        endpoint: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The host is not a valid TLS server name.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// The TLS handshake failed (unknown server, refused certificate, ...).
    #[error("TLS handshake with {endpoint}: {error}")]
    Tls {
        /// host:port.
        endpoint: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The WebSocket upgrade was refused (a bad signature is a 403) or failed.
    #[error("WebSocket upgrade at {endpoint}: {error}")]
    WebSocket {
        /// host:port.
        endpoint: String,
        /// Why.
        #[source]
        error: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The whole thing took longer than [`CONNECT_TIMEOUT`].
    #[error("connecting to {0} timed out")]
    Timeout(String),
}

impl Endpoint {
    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens the transport, within [`CONNECT_TIMEOUT`]. `now_secs` dates a SigV4 signature.
    pub async fn open(&self, now_secs: u64) -> Result<Box<dyn ByteStream>, TransportError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.open_inner(now_secs))
            .await
            .map_err(|_| TransportError::Timeout(self.address()))?
    }

    async fn open_inner(&self, now_secs: u64) -> Result<Box<dyn ByteStream>, TransportError> {
        let address = self.address();
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| TransportError::Connect {
                endpoint: address.clone(),
                error,
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.transport {
            Transport::Tcp => Ok(Box::new(tcp)),
            Transport::Tls(tls) => Ok(Box::new(self.tls(tls, tcp).await?)),
            Transport::WebSocket { tls, credentials } => {
                let stream = self.tls(tls, tcp).await?;
                // The Host header as browsers and the JS SDK send it: with the port unless 443.
                let host = if self.port == 443 {
                    self.host.clone()
                } else {
                    address.clone()
                };
                let path = presign(&Presign {
                    method: "GET",
                    host: &host,
                    path: "/mqtt",
                    region: &credentials.region,
                    service: "iotdevicegateway",
                    access_key_id: &credentials.access_key_id,
                    secret_access_key: &credentials.secret_access_key,
                    session_token: credentials.session_token.as_deref(),
                    now_secs,
                    expires_secs: Some(300),
                });
                let ws = websocket::connect_client(stream, &host, &path)
                    .await
                    .map_err(|error| TransportError::WebSocket {
                        endpoint: address,
                        error: Box::new(error),
                    })?;
                Ok(Box::new(ws))
            }
        }
    }

    async fn tls(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TransportError> {
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| TransportError::ServerName(self.host.clone()))?;
        tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|error| TransportError::Tls {
                endpoint: self.address(),
                error,
            })
    }
}
