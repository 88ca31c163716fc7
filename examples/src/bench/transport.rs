//! Where the broker is and how to reach it: plain TCP, or TLS (rustls) with an optional client
//! certificate. The load generator's own small transport, so it depends on no program folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::BenchError;

/// The broker's address and transport.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address to connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS settings; `None` is plain TCP.
    pub tls: Option<TlsTarget>,
}

/// TLS towards the broker.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    /// The client configuration (trusted CAs, optional client certificate).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server certificate must carry (sent as SNI).
    pub server_name: ServerName<'static>,
}

impl Target {
    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An open byte stream to the broker.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Opens a stream to `target` (TCP connect, then the TLS handshake), failing at `deadline`.
    pub async fn open(target: &Target, deadline: Instant) -> Result<Stream, BenchError> {
        let address = target.address();
        let tcp = tokio::time::timeout_at(
            deadline,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| BenchError::Timeout("TCP connect"))?
        .map_err(|error| BenchError::Connect {
            endpoint: address.clone(),
            error,
        })?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &target.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let stream =
            tokio::time::timeout_at(deadline, connector.connect(tls.server_name.clone(), tcp))
                .await
                .map_err(|_| BenchError::Timeout("TLS handshake"))?
                .map_err(|error| BenchError::Tls {
                    endpoint: address,
                    error,
                })?;
        Ok(Stream::Tls(Box::new(stream)))
    }

    /// Reads what is available into `buf` (growing it); 0 means the peer closed.
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
        }
    }

    /// Writes all of `bytes` (and flushes TLS records).
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }
}

/// A TLS client configuration trusting the CA certificates in `ca` (PEM) and, with `identity`
/// (certificate chain PEM, private key PEM), presenting that client certificate.
pub fn tls_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, BenchError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |path: &Path, reason: &dyn std::fmt::Display| BenchError::TlsFile {
        path: PathBuf::from(path),
        reason: reason.to_string(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| fail(ca, &e))? {
        roots
            .add(cert.map_err(|e| fail(ca, &e))?)
            .map_err(|e| fail(ca, &e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(ca, &e))?
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| fail(cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(cert, &e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(key, &e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| fail(cert, &e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let err = tls_config(Path::new("/nonexistent/ca.pem"), None);
        assert!(matches!(err, Err(BenchError::TlsFile { path, .. }) if path.ends_with("ca.pem")));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        // Bind then drop: the port is very likely closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let target = Target {
            host: "127.0.0.1".into(),
            port,
            tls: None,
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let result = Stream::open(&target, deadline).await;
        assert!(
            matches!(result, Err(BenchError::Connect { .. })),
            "{result:?}"
        );
    }
}
