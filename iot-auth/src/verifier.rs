//! The rustls `ClientCertVerifier` that enforces the certificate registry during the TLS handshake,
//! so an unknown, expired, inactive or revoked certificate is refused before any MQTT byte is read.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::registry::{CertificateIdentity, CertificateRegistry, Refusal};

/// What the verifier tells whoever watches refusals (the program logs them and counts them).
pub type RefusalObserver = Arc<dyn Fn(&Refusal) + Send + Sync>;

/// A rustls client-certificate verifier backed by a shared [`CertificateRegistry`]: chain to a
/// registered `ACTIVE` CA (rustls-webpki), valid now, usable for client authentication, and the
/// certificate itself registered `ACTIVE`.
///
/// Each refusal reaches the observer with its distinct [`Refusal`], and rustls fails the handshake
/// with the nearest TLS alert (`unknown_ca`, `certificate_expired`, `certificate_revoked`, …). An
/// auto-registering CA's unknown certificate is registered `PENDING_ACTIVATION` here.
///
/// After the handshake, [`identity`](Self::identity) turns the peer certificate into the identity
/// the broker authorizes with. Session resumption must stay off (see
/// [`crate::endpoint::server_config`]): a resumed session skips this check.
pub struct RegistryClientVerifier {
    registry: Arc<RwLock<CertificateRegistry>>,
    provider: Arc<CryptoProvider>,
    mandatory: bool,
    observer: Option<RefusalObserver>,
}

impl fmt::Debug for RegistryClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClientVerifier")
            .field("mandatory", &self.mandatory)
            .finish_non_exhaustive()
    }
}

impl RegistryClientVerifier {
    /// A verifier that requires a client certificate (port 8883).
    pub fn new(registry: Arc<RwLock<CertificateRegistry>>, provider: Arc<CryptoProvider>) -> Self {
        RegistryClientVerifier {
            registry,
            provider,
            mandatory: true,
            observer: None,
        }
    }

    /// A verifier for a port where a certificate is optional (443: WebSocket and SigV4 clients have
    /// none). A certificate that is sent is still checked in full.
    pub fn optional(
        registry: Arc<RwLock<CertificateRegistry>>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        RegistryClientVerifier {
            mandatory: false,
            ..Self::new(registry, provider)
        }
    }

    /// Calls `observer` with every refusal.
    pub fn with_observer(mut self, observer: RefusalObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The identity of a connection's verified peer certificate chain (from
    /// `ServerConnection::peer_certificates`).
    pub fn identity(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Option<CertificateIdentity> {
        let end_entity = peer_certificates?.first()?;
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .identity_of(end_entity.as_ref())
    }

    fn refuse(&self, refusal: Refusal) -> rustls::Error {
        if let Some(observer) = &self.observer {
            observer(&refusal);
        }
        let error = match &refusal {
            Refusal::UnknownCa => CertificateError::UnknownIssuer,
            Refusal::Expired { .. } => CertificateError::Expired,
            Refusal::NotYetValid { .. } => CertificateError::NotValidYet,
            Refusal::WrongKeyUsage => CertificateError::InvalidPurpose,
            Refusal::Malformed(_) => CertificateError::BadEncoding,
            Refusal::NotActive {
                status: crate::registry::CertificateStatus::Revoked,
                ..
            } => CertificateError::Revoked,
            _ => CertificateError::Other(OtherError(Arc::new(refusal))),
        };
        rustls::Error::InvalidCertificate(error)
    }
}

fn unix_secs(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

impl ClientCertVerifier for RegistryClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// No CA names are sent: clients send their one certificate regardless, and the registry's CAs
    /// change at run time.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        let outcome = self
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .authenticate(end_entity.as_ref(), &chain, unix_secs(now));
        match outcome {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(refusal @ Refusal::AutoRegistered { .. }) => {
                self.registry
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .auto_register(end_entity.as_ref());
                Err(self.refuse(refusal))
            }
            Err(refusal) => Err(self.refuse(refusal)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
