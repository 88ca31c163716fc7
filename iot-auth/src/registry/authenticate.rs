//! The handshake-time check of a client certificate: a chain to a registered CA (rustls-webpki),
//! validity, client-auth key usage, then the CA's and the certificate's registry status.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use super::{CaStatus, CertificateRegistry, CertificateStatus};
use crate::x509::{CertificateId, CertificateInfo};

/// Why a client certificate was refused. Each has a stable [`code`](Refusal::code) for logs and
/// metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes are not a certificate.
    Malformed(String),
    /// It does not chain to any registered CA.
    UnknownCa,
    /// It chains to a registered CA that is `INACTIVE`.
    CaInactive(CertificateId),
    /// Past its `notAfter`.
    Expired {
        /// `notAfter`, Unix seconds.
        not_after: i64,
        /// The time of the check.
        now: i64,
    },
    /// Before its `notBefore`.
    NotYetValid {
        /// `notBefore`, Unix seconds.
        not_before: i64,
        /// The time of the check.
        now: i64,
    },
    /// Its extended key usage does not allow TLS client authentication.
    WrongKeyUsage,
    /// Another chain-validation failure (bad signature, CA used as end entity, …).
    InvalidChain(String),
    /// Chains to an active CA but is not registered (and auto-registration is off).
    Unregistered(CertificateId),
    /// Just auto-registered as `PENDING_ACTIVATION`: refused until someone activates it.
    AutoRegistered {
        /// The new certificate.
        certificate_id: CertificateId,
        /// The CA that signed it.
        ca_id: CertificateId,
    },
    /// Registered, but its status is not `ACTIVE`.
    NotActive {
        /// The certificate.
        certificate_id: CertificateId,
        /// Its status (`INACTIVE`, `REVOKED`, …).
        status: CertificateStatus,
    },
}

impl Refusal {
    /// A short stable name: `unknown_ca`, `ca_inactive`, `expired`, `not_yet_valid`,
    /// `wrong_key_usage`, `invalid_chain`, `malformed`, `unregistered`, `pending_activation`,
    /// `inactive`, `revoked`, `not_active`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::UnknownCa => "unknown_ca",
            Refusal::CaInactive(_) => "ca_inactive",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::WrongKeyUsage => "wrong_key_usage",
            Refusal::InvalidChain(_) => "invalid_chain",
            Refusal::Unregistered(_) => "unregistered",
            Refusal::AutoRegistered { .. } => "pending_activation",
            Refusal::NotActive { status, .. } => match status {
                CertificateStatus::Inactive => "inactive",
                CertificateStatus::Revoked => "revoked",
                CertificateStatus::PendingActivation => "pending_activation",
                _ => "not_active",
            },
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(e) => write!(f, "malformed client certificate: {e}"),
            Refusal::UnknownCa => {
                f.write_str("client certificate is not signed by a registered CA")
            }
            Refusal::CaInactive(id) => write!(f, "the CA certificate {id} is INACTIVE"),
            Refusal::Expired { not_after, now } => {
                write!(
                    f,
                    "client certificate expired (notAfter {not_after}, now {now})"
                )
            }
            Refusal::NotYetValid { not_before, now } => write!(
                f,
                "client certificate not yet valid (notBefore {not_before}, now {now})"
            ),
            Refusal::WrongKeyUsage => f.write_str(
                "client certificate's key usage does not allow TLS client authentication",
            ),
            Refusal::InvalidChain(e) => write!(f, "client certificate chain is invalid: {e}"),
            Refusal::Unregistered(id) => write!(f, "certificate {id} is not registered"),
            Refusal::AutoRegistered {
                certificate_id,
                ca_id,
            } => write!(
                f,
                "certificate {certificate_id} auto-registered as PENDING_ACTIVATION under CA {ca_id}"
            ),
            Refusal::NotActive {
                certificate_id,
                status,
            } => write!(f, "certificate {certificate_id} is {status}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// A client certificate that passed [`CertificateRegistry::authenticate`]: who the broker is
/// talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    certificate: Arc<CertificateInfo>,
    ca_id: CertificateId,
}

impl CertificateIdentity {
    /// The certificate id, which is the principal policies and things attach to.
    pub fn certificate_id(&self) -> &CertificateId {
        self.certificate.id()
    }

    /// The parsed certificate (for `${iot:Certificate.…}` variables).
    pub fn certificate(&self) -> &Arc<CertificateInfo> {
        &self.certificate
    }

    /// The registered CA it chains to.
    pub fn ca_id(&self) -> &CertificateId {
        &self.ca_id
    }
}

impl CertificateRegistry {
    /// Checks a client certificate (and any intermediates it sent) at time `now` (Unix seconds):
    /// a valid chain for TLS client authentication to a registered CA, that CA `ACTIVE`, the
    /// certificate registered and `ACTIVE`.
    ///
    /// An unregistered certificate from an active CA with auto-registration on is refused with
    /// [`Refusal::AutoRegistered`]; the caller registers it with
    /// [`auto_register`](Self::auto_register) (this method takes `&self` so handshakes can share a
    /// read lock).
    pub fn authenticate(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        now: i64,
    ) -> Result<CertificateIdentity, Refusal> {
        let info =
            CertificateInfo::from_der(end_entity).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let ca_id = self.verify_chain(end_entity, intermediates, &info, now)?;
        let ca = self.cas.get(&ca_id).ok_or(Refusal::UnknownCa)?;
        if ca.status != CaStatus::Active {
            return Err(Refusal::CaInactive(ca_id));
        }
        let id = info.id().clone();
        let Some(record) = self.certificates.get(&id) else {
            return Err(if ca.auto_registration {
                Refusal::AutoRegistered {
                    certificate_id: id,
                    ca_id,
                }
            } else {
                Refusal::Unregistered(id)
            });
        };
        if record.status != CertificateStatus::Active {
            return Err(Refusal::NotActive {
                certificate_id: id,
                status: record.status,
            });
        }
        Ok(CertificateIdentity {
            certificate: Arc::new(record.certificate.clone()),
            ca_id,
        })
    }

    /// The identity of a certificate that a handshake just verified (no cryptography: the record
    /// and its CA are looked up). `None` if it is not, or no longer, registered and `ACTIVE`.
    pub fn identity_of(&self, end_entity: &[u8]) -> Option<CertificateIdentity> {
        let id = CertificateId::of_der(end_entity);
        let record = self.certificates.get(&id)?;
        let ca_id = record.ca_id.clone()?;
        let usable = record.status == CertificateStatus::Active
            && self
                .cas
                .get(&ca_id)
                .is_some_and(|ca| ca.status == CaStatus::Active);
        usable.then(|| CertificateIdentity {
            certificate: Arc::new(record.certificate.clone()),
            ca_id,
        })
    }

    /// Registers a certificate refused with [`Refusal::AutoRegistered`] as `PENDING_ACTIVATION`.
    /// Returns whether it was new (so the caller announces it once on
    /// `$aws/events/certificates/registered/{caCertificateId}`).
    pub fn auto_register(&mut self, end_entity: &[u8]) -> bool {
        self.register_certificate_der(end_entity, CertificateStatus::PendingActivation)
            .is_ok()
    }

    /// Runs webpki's path building against the registered CAs; returns the CA that anchors it.
    fn verify_chain(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        info: &CertificateInfo,
        now: i64,
    ) -> Result<CertificateId, Refusal> {
        let anchors: Vec<(CertificateId, rustls_pki_types::TrustAnchor<'_>)> = self
            .cas
            .iter()
            .filter_map(|(id, ca)| {
                let der = CertificateDer::from(ca.certificate.der());
                webpki::anchor_from_trusted_cert(&der)
                    .ok()
                    .map(|a| (id.clone(), a.to_owned()))
            })
            .collect();
        if anchors.is_empty() {
            return Err(Refusal::UnknownCa);
        }
        let trust: Vec<_> = anchors.iter().map(|(_, a)| a.clone()).collect();
        let der = CertificateDer::from(end_entity);
        let cert = EndEntityCert::try_from(&der).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let chain: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|d| CertificateDer::from(*d))
            .collect();
        let secs = u64::try_from(now).unwrap_or(0);
        let path = cert
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &trust,
                &chain,
                UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
                KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(|e| match e {
                webpki::Error::UnknownIssuer => Refusal::UnknownCa,
                webpki::Error::CertExpired { .. } => Refusal::Expired {
                    not_after: info.not_after(),
                    now,
                },
                webpki::Error::CertNotValidYet { .. } => Refusal::NotYetValid {
                    not_before: info.not_before(),
                    now,
                },
                webpki::Error::RequiredEkuNotFoundContext(_) => Refusal::WrongKeyUsage,
                other => Refusal::InvalidChain(format!("{other:?}")),
            })?;
        let anchor = path.anchor();
        anchors
            .into_iter()
            .find(|(_, a)| a == anchor)
            .map(|(id, _)| id)
            .ok_or(Refusal::UnknownCa)
    }
}
