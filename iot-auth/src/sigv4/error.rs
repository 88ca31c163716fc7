//! Why a signature was not accepted.

/// A SigV4 verification failure; each says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// No `Authorization` header, or no `X-Amz-Signature` in the query.
    #[error("the request is not signed")]
    Unsigned,
    /// The `Authorization` header or the presigned query is not well-formed.
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    /// An algorithm other than AWS4-HMAC-SHA256.
    #[error("unsupported signing algorithm")]
    UnsupportedAlgorithm,
    /// `X-Amz-Date` missing or not `YYYYMMDDTHHMMSSZ`.
    #[error("missing or invalid X-Amz-Date")]
    InvalidDate,
    /// The credential scope's date is not the `X-Amz-Date` day.
    #[error("credential scope date {scope} does not match X-Amz-Date {date}")]
    ScopeDateMismatch {
        /// The scope's date.
        scope: String,
        /// The `X-Amz-Date` value.
        date: String,
    },
    /// The credential scope names another region.
    #[error("credential scope region {0} is not this endpoint's region")]
    WrongRegion(String),
    /// The credential scope names a service this endpoint does not serve.
    #[error("credential scope service {0} is not accepted here")]
    WrongService(String),
    /// The signature is too old or from the future.
    #[error("signature time outside the allowed window")]
    Expired,
    /// `X-Amz-Expires` outside 1..=604800.
    #[error("X-Amz-Expires must be 1 to 604800 seconds")]
    InvalidExpires,
    /// `host` is not among the signed headers, or a signed header is missing.
    #[error("signed headers incomplete: {0}")]
    SignedHeaders(&'static str),
    /// No credential for the access key id.
    #[error("unknown access key id {0}")]
    UnknownAccessKey(String),
    /// Temporary credentials without their session token, or with a different one.
    #[error("missing or wrong security token")]
    SecurityToken,
    /// Temporary credentials past their expiry.
    #[error("the security token included in the request is expired")]
    ExpiredToken,
    /// The signature does not match.
    #[error("signature does not match")]
    SignatureMismatch,
}
