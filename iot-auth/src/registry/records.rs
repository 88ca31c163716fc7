//! The records the registry keeps: CA and device certificates with their AWS statuses, things.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::x509::{CertificateId, CertificateInfo};

/// A device certificate's status, as AWS names them. Only `ACTIVE` may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    /// May connect.
    Active,
    /// Deactivated by its owner.
    Inactive,
    /// Revoked: never to connect again.
    Revoked,
    /// Being transferred to another account.
    PendingTransfer,
    /// Registered inactive (`register-certificate --status REGISTER_INACTIVE`).
    RegisterInactive,
    /// Auto-registered at a first connect, waiting to be activated.
    PendingActivation,
}

impl CertificateStatus {
    /// AWS's name, e.g. `ACTIVE`.
    ///
    /// ```
    /// use iot_auth::registry::CertificateStatus;
    /// assert_eq!(CertificateStatus::PendingActivation.as_str(), "PENDING_ACTIVATION");
    /// assert_eq!("REVOKED".parse::<CertificateStatus>(), Ok(CertificateStatus::Revoked));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Revoked => "REVOKED",
            CertificateStatus::PendingTransfer => "PENDING_TRANSFER",
            CertificateStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertificateStatus::PendingActivation => "PENDING_ACTIVATION",
        }
    }
}

impl FromStr for CertificateStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ACTIVE" => CertificateStatus::Active,
            "INACTIVE" => CertificateStatus::Inactive,
            "REVOKED" => CertificateStatus::Revoked,
            "PENDING_TRANSFER" => CertificateStatus::PendingTransfer,
            "REGISTER_INACTIVE" => CertificateStatus::RegisterInactive,
            "PENDING_ACTIVATION" => CertificateStatus::PendingActivation,
            other => return Err(format!("unknown certificate status {other:?}")),
        })
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CA certificate's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaStatus {
    /// Certificates it signed may connect.
    Active,
    /// Certificates it signed are refused.
    Inactive,
}

impl CaStatus {
    /// AWS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaStatus::Active => "ACTIVE",
            CaStatus::Inactive => "INACTIVE",
        }
    }
}

impl FromStr for CaStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(CaStatus::Active),
            "INACTIVE" => Ok(CaStatus::Inactive),
            other => Err(format!("unknown CA status {other:?}")),
        }
    }
}

impl fmt::Display for CaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRecord {
    /// The parsed certificate.
    pub certificate: CertificateInfo,
    /// Its status.
    pub status: CaStatus,
    /// Whether an unknown certificate it signed is registered as `PENDING_ACTIVATION` at its first
    /// connect (AWS's auto-registration).
    pub auto_registration: bool,
}

/// A registered device certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificateRecord {
    /// The parsed certificate.
    pub certificate: CertificateInfo,
    /// Its status.
    pub status: CertificateStatus,
    /// The registered CA it was issued by, when there is one.
    pub ca_id: Option<CertificateId>,
}

/// A thing: a name, an optional type and attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thing {
    /// The thing name.
    pub name: String,
    /// Its thing type.
    pub type_name: Option<String>,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
}
