//! Who is this client and may it do that: X.509 client-certificate identities and their registry,
//! AWS Signature Version 4 verification, and AWS IoT policy evaluation.
//!
//! - [`x509`]: certificate parsing, the AWS certificate id, the fields policy variables read.
//! - [`registry`]: CA and device certificates with AWS's statuses, things, policies, attachments;
//!   the handshake-time check.
//! - [`verifier`]: the rustls `ClientCertVerifier` enforcing the registry; [`endpoint`]: SNI, ALPN
//!   and the server configuration of an AWS IoT endpoint.
//! - [`provision`]: a development CA and `create-keys-and-certificate` (rcgen).
//! - [`sigv4`]: SigV4 verification, header and presigned forms.
//! - [`policy`]: policy documents, compiled and evaluated.
//! - [`client_device`]: Greengrass v2 client-device authorization (device groups, selection
//!   rules, allow-only policies) for the edge core's local broker.
//!
//! This crate does no I/O and reads no clock: time comes in as an argument (rustls passes it to
//! the verifier). It knows nothing of MQTT sockets.
//!
//! ```
//! assert_eq!(iot_auth::CERTIFICATE_ID_HEX_LEN, 64);
//! ```

/// Length of an AWS IoT certificate id: the lower-case hex SHA-256 of the certificate's DER.
pub const CERTIFICATE_ID_HEX_LEN: usize = 64;

pub mod client_device;
pub mod endpoint;
pub mod policy;
pub mod provision;
pub mod registry;
pub mod sigv4;
pub mod verifier;
pub mod x509;
