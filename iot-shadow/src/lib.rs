//! The AWS IoT Device Shadow engine: document merge, delta, metadata and versions, named shadows,
//! and the request/response topics and JSON of the AWS service.
//!
//! This crate does no I/O and reads no clock: time comes in as an argument. It is filled in by its
//! own issue; for now it holds the names every part of the workspace agrees on.
//!
//! ```
//! assert_eq!(iot_shadow::MAX_DOCUMENT_STATE_BYTES, 8192);
//! ```

/// AWS's default limit on the size of a shadow's `desired` plus `reported` state, in bytes.
pub const MAX_DOCUMENT_STATE_BYTES: usize = 8192;
