//! Development provisioning with rcgen, as `aws iot create-keys-and-certificate` does it for a
//! developer: a CA, device keys and certificates signed by it, registered and activated, and a
//! server certificate for the broker's host names.
//!
//! Keys are ECDSA P-256 (AWS issues RSA 2048; any key a registered CA signed is accepted).
//!
//! ```
//! use iot_auth::provision::{CertificateAuthority, create_keys_and_certificate};
//! use iot_auth::registry::{CertificateRegistry, CertificateStatus};
//!
//! let now = 1_790_000_000;
//! let ca = CertificateAuthority::generate("Development CA", now).unwrap();
//! let mut registry = CertificateRegistry::new();
//! registry.register_ca_pem(&ca.certificate_pem(), false).unwrap();
//! let issued = create_keys_and_certificate(&mut registry, &ca, true, now).unwrap();
//! let record = registry.certificate(&issued.certificate_id).unwrap();
//! assert_eq!(record.status, CertificateStatus::Active);
//! assert!(issued.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::registry::{CertificateRegistry, CertificateStatus, RegistryError};
use crate::x509::CertificateId;

/// Ten years, in seconds: the development CA's lifetime.
const CA_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;
/// What AWS gives its certificates: valid until 2049-12-31T23:59:59Z.
pub const AWS_DEVICE_NOT_AFTER: i64 = 2_524_607_999;
/// Server certificates: 825 days, the longest browsers accept.
const SERVER_LIFETIME_SECS: i64 = 825 * 24 * 3600;

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// rcgen could not make or parse a key or certificate.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A time outside what X.509 can carry.
    #[error("invalid validity time {0}")]
    Time(i64),
    /// Registering the result failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn datetime(secs: i64) -> Result<OffsetDateTime, ProvisionError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| ProvisionError::Time(secs))
}

/// A serial number unique per key and time: 16 bytes of SHA-256, positive.
fn serial(key: &KeyPair, now: i64, label: &str) -> SerialNumber {
    let mut hash = Sha256::new();
    hash.update(key.public_key_raw());
    hash.update(now.to_be_bytes());
    hash.update(label.as_bytes());
    let digest = hash.finalize();
    let mut bytes: Vec<u8> = digest.iter().take(16).copied().collect();
    if let Some(first) = bytes.first_mut() {
        *first &= 0x7f;
        *first |= 0x01;
    }
    SerialNumber::from_slice(&bytes)
}

/// The extended key usage a device certificate is issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// TLS client authentication (what a device needs).
    ClientAuth,
    /// TLS server authentication only (refused as a client certificate).
    ServerAuth,
}

/// What to put in a device certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificateRequest {
    /// Subject CN. AWS uses `AWS IoT Certificate`; a thing name is handy for policy variables.
    pub common_name: String,
    /// Extra subject attributes (`O`, `OU`, `C`, …) as (rcgen type, value).
    pub organization: Option<String>,
    /// Subject `OU`.
    pub organizational_unit: Option<String>,
    /// Subject `C`.
    pub country: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Extended key usage.
    pub purpose: KeyPurpose,
}

impl DeviceCertificateRequest {
    /// A client certificate for `common_name`, valid from an hour before `now` until
    /// [`AWS_DEVICE_NOT_AFTER`].
    pub fn new(common_name: &str, now: i64) -> Self {
        DeviceCertificateRequest {
            common_name: common_name.to_owned(),
            organization: None,
            organizational_unit: None,
            country: None,
            dns_names: Vec::new(),
            not_before: now - 3600,
            not_after: AWS_DEVICE_NOT_AFTER.max(now + 3600),
            purpose: KeyPurpose::ClientAuth,
        }
    }
}

/// A key pair and the certificate issued for it, in the shapes `create-keys-and-certificate`
/// returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The AWS certificate id.
    pub certificate_id: CertificateId,
    /// PEM certificate.
    pub certificate_pem: String,
    /// DER certificate.
    pub certificate_der: Vec<u8>,
    /// PKCS#8 PEM private key. Write it with owner-only permissions.
    pub private_key_pem: String,
    /// PEM public key.
    pub public_key_pem: String,
}

/// A certificate authority that signs device and server certificates.
#[derive(Debug)]
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
    certificate_der: Vec<u8>,
    private_key_pem: String,
}

impl CertificateAuthority {
    /// Generates a self-signed CA named `common_name`, valid ten years from an hour before `now`.
    pub fn generate(common_name: &str, now: i64) -> Result<Self, ProvisionError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "aws-iot-rs development");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = datetime(now - 3600)?;
        params.not_after = datetime(now + CA_LIFETIME_SECS)?;
        params.serial_number = Some(serial(&key, now, common_name));
        let cert = params.self_signed(&key)?;
        let private_key_pem = key.serialize_pem();
        Ok(CertificateAuthority {
            certificate_pem: cert.pem(),
            certificate_der: cert.der().to_vec(),
            private_key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA saved earlier as PEM certificate and PEM private key.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, ProvisionError> {
        let key = KeyPair::from_pem(private_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(certificate_pem, key)?;
        let certificate_der = crate::x509::first_pem_certificate(certificate_pem)
            .map_err(|_| ProvisionError::Generate(rcgen::Error::CouldNotParseCertificate))?;
        Ok(CertificateAuthority {
            issuer,
            certificate_pem: certificate_pem.to_owned(),
            certificate_der,
            private_key_pem: private_key_pem.to_owned(),
        })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        self.certificate_pem.clone()
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The CA private key, PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// Issues a device (client) certificate with a new key.
    pub fn issue_device(
        &self,
        request: &DeviceCertificateRequest,
    ) -> Result<IssuedCertificate, ProvisionError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(request.dns_names.clone())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, request.common_name.as_str());
        if let Some(o) = &request.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &request.organizational_unit {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        if let Some(c) = &request.country {
            dn.push(DnType::CountryName, c.as_str());
        }
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match request.purpose {
            KeyPurpose::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            KeyPurpose::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        }];
        params.not_before = datetime(request.not_before)?;
        params.not_after = datetime(request.not_after)?;
        params.serial_number = Some(serial(&key, request.not_before, &request.common_name));
        params.use_authority_key_identifier_extension = true;
        self.sign(params, key)
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses), valid 825 days.
    pub fn issue_server(
        &self,
        names: &[String],
        now: i64,
    ) -> Result<IssuedCertificate, ProvisionError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().map_or("localhost", String::as_str),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = datetime(now - 3600)?;
        params.not_after = datetime(now + SERVER_LIFETIME_SECS)?;
        params.serial_number = Some(serial(&key, now, "server"));
        params.use_authority_key_identifier_extension = true;
        self.sign(params, key)
    }

    fn sign(
        &self,
        params: CertificateParams,
        key: KeyPair,
    ) -> Result<IssuedCertificate, ProvisionError> {
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            certificate_id: CertificateId::of_der(cert.der()),
            certificate_pem: cert.pem(),
            certificate_der: cert.der().to_vec(),
            private_key_pem: key.serialize_pem(),
            public_key_pem: key.public_key_pem(),
        })
    }
}

/// `aws iot create-keys-and-certificate [--set-as-active]`: a new key pair and a certificate from
/// `ca` (CN `AWS IoT Certificate`, as AWS names them), registered `ACTIVE` or `INACTIVE`.
pub fn create_keys_and_certificate(
    registry: &mut CertificateRegistry,
    ca: &CertificateAuthority,
    set_as_active: bool,
    now: i64,
) -> Result<IssuedCertificate, ProvisionError> {
    let issued = ca.issue_device(&DeviceCertificateRequest::new("AWS IoT Certificate", now))?;
    let status = if set_as_active {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    };
    registry.register_certificate_der(&issued.certificate_der, status)?;
    Ok(issued)
}
