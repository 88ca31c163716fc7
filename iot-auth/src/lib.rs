//! Who is this client and may it do that: X.509 client-certificate identities and their registry,
//! AWS Signature Version 4 verification, and AWS IoT policy evaluation.
//!
//! This crate does no I/O and reads no clock; it knows nothing of MQTT sockets. So far it holds
//! [`sigv4`] verification (header and presigned forms, checked against AWS's test suite and the
//! `aws-sigv4` signer); X.509 identities and policies follow.
//!
//! ```
//! assert_eq!(iot_auth::CERTIFICATE_ID_HEX_LEN, 64);
//! ```

/// Length of an AWS IoT certificate id: the lower-case hex SHA-256 of the certificate's DER.
pub const CERTIFICATE_ID_HEX_LEN: usize = 64;

pub mod sigv4;
