//! A development PKI and an in-memory TLS pair for the handshake tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex, RwLock};

use iot_auth::endpoint::{SniResolver, certified_key, server_config};
use iot_auth::provision::{CertificateAuthority, DeviceCertificateRequest, IssuedCertificate};
use iot_auth::registry::{CertificateRegistry, CertificateStatus, Refusal};
use iot_auth::verifier::RegistryClientVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, ServerConnection};

/// 2026-09-21T…: the tests' "now".
pub const NOW: i64 = 1_790_000_000;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A time provider that answers a fixed instant, so expiry tests do not depend on the clock.
#[derive(Debug)]
pub struct FixedTime(pub i64);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            self.0 as u64,
        )))
    }
}

pub struct Pki {
    pub ca: CertificateAuthority,
    pub server: IssuedCertificate,
    pub registry: Arc<RwLock<CertificateRegistry>>,
    pub refusals: Arc<Mutex<Vec<Refusal>>>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = CertificateAuthority::generate("Test CA", NOW).unwrap();
        let server = ca
            .issue_server(&["localhost".into(), "*.iot.test".into()], NOW)
            .unwrap();
        let mut registry = CertificateRegistry::new();
        registry
            .register_ca_pem(&ca.certificate_pem(), false)
            .unwrap();
        Pki {
            ca,
            server,
            registry: Arc::new(RwLock::new(registry)),
            refusals: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Issues a device certificate and registers it with `status`.
    pub fn device(&self, name: &str, status: CertificateStatus) -> IssuedCertificate {
        let issued = self
            .ca
            .issue_device(&DeviceCertificateRequest::new(name, NOW))
            .unwrap();
        self.registry
            .write()
            .unwrap()
            .register_certificate_der(&issued.certificate_der, status)
            .unwrap();
        issued
    }

    pub fn verifier(&self, mandatory: bool) -> Arc<RegistryClientVerifier> {
        let refusals = self.refusals.clone();
        let verifier = if mandatory {
            RegistryClientVerifier::new(self.registry.clone(), provider())
        } else {
            RegistryClientVerifier::optional(self.registry.clone(), provider())
        };
        Arc::new(verifier.with_observer(Arc::new(move |r: &Refusal| {
            refusals.lock().unwrap().push(r.clone());
        })))
    }

    pub fn server_config(
        &self,
        verifier: Arc<RegistryClientVerifier>,
        alpn: &[&[u8]],
        now: i64,
    ) -> Arc<rustls::ServerConfig> {
        let key = certified_key(
            &self.server.certificate_pem,
            &self.server.private_key_pem,
            &provider(),
        )
        .unwrap();
        let resolver = Arc::new(SniResolver::new(
            key,
            vec!["localhost".into(), "*.iot.test".into()],
            true,
        ));
        let mut config = server_config(provider(), verifier, resolver, alpn).unwrap();
        config.time_provider = Arc::new(FixedTime(now));
        Arc::new(config)
    }

    pub fn client_config(
        &self,
        device: Option<&IssuedCertificate>,
        alpn: &[&[u8]],
        now: i64,
    ) -> ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.certificate_der().to_vec()))
            .unwrap();
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match device {
            Some(device) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(device.certificate_der.clone())],
                    PrivateKeyDer::from_pem_slice(device.private_key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.time_provider = Arc::new(FixedTime(now));
        config
    }

    pub fn refusals(&self) -> Vec<Refusal> {
        std::mem::take(&mut *self.refusals.lock().unwrap())
    }
}

/// The outcome of an in-memory handshake.
pub struct Handshake {
    pub server: ServerConnection,
    pub client: ClientConnection,
    pub server_error: Option<rustls::Error>,
    pub client_error: Option<rustls::Error>,
}

/// Runs a handshake between two in-memory connections, then the client sends `hello` as
/// application data and the server reads it (so a TLS 1.3 server's late certificate check
/// completes).
pub fn handshake(
    client_config: ClientConfig,
    server_config: Arc<rustls::ServerConfig>,
    sni: &str,
) -> Handshake {
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
    let mut server = ServerConnection::new(server_config).unwrap();
    let mut server_error = None;
    let mut client_error = None;
    let _ = std::io::Write::write_all(&mut client.writer(), b"hello");
    for _ in 0..20 {
        let mut moved = false;
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut slice = buf.as_slice();
            while !slice.is_empty() && server_error.is_none() {
                server.read_tls(&mut slice).unwrap();
                if let Err(e) = server.process_new_packets() {
                    server_error = Some(e);
                }
            }
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            moved = true;
            let mut slice = buf.as_slice();
            while !slice.is_empty() && client_error.is_none() {
                client.read_tls(&mut slice).unwrap();
                if let Err(e) = client.process_new_packets() {
                    client_error = Some(e);
                }
            }
        }
        if !moved || server_error.is_some() || client_error.is_some() {
            break;
        }
    }
    Handshake {
        server,
        client,
        server_error,
        client_error,
    }
}

impl Handshake {
    /// Whether both sides completed and the server received the client's first bytes.
    pub fn succeeded(&mut self) -> bool {
        if self.server_error.is_some()
            || self.client_error.is_some()
            || self.server.is_handshaking()
        {
            return false;
        }
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut self.server.reader(), &mut got).is_ok() && &got == b"hello"
    }
}
