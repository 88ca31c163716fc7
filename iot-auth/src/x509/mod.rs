//! X.509 client certificates: parsing with `x509-cert`, the AWS certificate id, and the subject,
//! issuer and alternative-name fields that `${iot:Certificate.…}` policy variables read.

mod certificate;
mod names;

pub use certificate::{
    CertificateId, CertificateInfo, CertificateParseError, first_pem_certificate, pem_certificates,
};
pub use names::{AlternativeNames, DistinguishedName, DnAttribute};
