//! One parsed X.509 certificate: its AWS id and the fields policy variables read.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, IssuerAltName, SubjectAltName};

use super::names::{AlternativeNames, DistinguishedName};

/// Why bytes are not a certificate we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateParseError {
    /// The DER does not decode as an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    Der(String),
    /// The PEM text holds no `CERTIFICATE` block, or a damaged one.
    #[error("no certificate in the PEM text")]
    NoPem,
    /// A certificate id is not 64 lower-case hex characters.
    #[error("a certificate id is 64 lower-case hex characters, got {0:?}")]
    BadId(String),
}

/// An AWS IoT certificate id: the lower-case hex SHA-256 of the certificate's DER, 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CertificateId(String);

impl CertificateId {
    /// The id of a DER-encoded certificate.
    ///
    /// ```
    /// use iot_auth::x509::CertificateId;
    /// let id = CertificateId::of_der(b"");
    /// assert_eq!(id.as_str(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /// ```
    pub fn of_der(der: &[u8]) -> Self {
        CertificateId(hex::encode(Sha256::digest(der)))
    }

    /// Checks the text form of an id (64 lower-case hex characters).
    ///
    /// ```
    /// use iot_auth::x509::CertificateId;
    /// assert!(CertificateId::parse("ABC").is_err());
    /// assert!(CertificateId::parse(&"a".repeat(64)).is_ok());
    /// ```
    pub fn parse(text: &str) -> Result<Self, CertificateParseError> {
        let ok = text.len() == crate::CERTIFICATE_ID_HEX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(CertificateId(text.to_owned()))
        } else {
            Err(CertificateParseError::BadId(text.to_owned()))
        }
    }

    /// The 64-character hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed certificate: its id, DER, validity, and the names AWS IoT's policy variables expose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    id: CertificateId,
    der: Arc<[u8]>,
    subject: DistinguishedName,
    issuer: DistinguishedName,
    subject_alt_names: AlternativeNames,
    issuer_alt_names: AlternativeNames,
    serial_number: String,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
}

impl CertificateInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateParseError> {
        let cert =
            Certificate::from_der(der).map_err(|e| CertificateParseError::Der(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let mut subject_alt_names = AlternativeNames::default();
        let mut issuer_alt_names = AlternativeNames::default();
        let mut is_ca = false;
        if let Ok(Some((_, san))) = tbs.get::<SubjectAltName>() {
            subject_alt_names = AlternativeNames::from_general_names(&san.0);
        }
        if let Ok(Some((_, ian))) = tbs.get::<IssuerAltName>() {
            issuer_alt_names = AlternativeNames::from_general_names(&ian.0);
        }
        if let Ok(Some((_, bc))) = tbs.get::<BasicConstraints>() {
            is_ca = bc.ca;
        }
        let serial_number = hex::encode_upper(tbs.serial_number.as_bytes());
        Ok(CertificateInfo {
            id: CertificateId::of_der(der),
            der: Arc::from(der),
            subject: DistinguishedName::from_name(&tbs.subject),
            issuer: DistinguishedName::from_name(&tbs.issuer),
            subject_alt_names,
            issuer_alt_names,
            serial_number,
            not_before: unix_secs(&tbs.validity.not_before),
            not_after: unix_secs(&tbs.validity.not_after),
            is_ca,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, CertificateParseError> {
        let der = first_pem_certificate(pem)?;
        Self::from_der(&der)
    }

    /// The AWS certificate id.
    pub fn id(&self) -> &CertificateId {
        &self.id
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as a PEM `CERTIFICATE` block.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.to_vec()))
    }

    /// The subject name's attributes.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The issuer name's attributes.
    pub fn issuer(&self) -> &DistinguishedName {
        &self.issuer
    }

    /// Subject alternative names.
    pub fn subject_alt_names(&self) -> &AlternativeNames {
        &self.subject_alt_names
    }

    /// Issuer alternative names.
    pub fn issuer_alt_names(&self) -> &AlternativeNames {
        &self.issuer_alt_names
    }

    /// The serial number as upper-case hex of its DER integer bytes (as `openssl x509 -serial`
    /// prints it). AWS does not document the form `${iot:Certificate.SerialNumber}` takes; this is
    /// our choice.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// Start of validity, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether the basic-constraints extension marks it as a CA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// The whole subject/issuer DN, re-encoded (used to match a device certificate's issuer to a
    /// registered CA's subject).
    pub(crate) fn raw_names(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let cert = Certificate::from_der(der).ok()?;
        let subject = cert.tbs_certificate.subject.to_der().ok()?;
        let issuer = cert.tbs_certificate.issuer.to_der().ok()?;
        Some((subject, issuer))
    }
}

fn unix_secs(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The DER of the first `CERTIFICATE` block in a PEM text.
///
/// ```
/// assert!(iot_auth::x509::first_pem_certificate("no pem here").is_err());
/// ```
pub fn first_pem_certificate(pem: &str) -> Result<Vec<u8>, CertificateParseError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|der| der.as_ref().to_vec())
        .ok_or(CertificateParseError::NoPem)
}

/// The DER of every `CERTIFICATE` block in a PEM text (a chain file), in order.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, CertificateParseError> {
    let all: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|r| r.map(|der| der.as_ref().to_vec()))
        .collect();
    match all {
        Ok(list) if !list.is_empty() => Ok(list),
        _ => Err(CertificateParseError::NoPem),
    }
}
