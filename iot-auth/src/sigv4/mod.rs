//! AWS Signature Version 4 verification: the `Authorization` header form (HTTPS publish, shadow
//! REST) and the presigned-URL form (MQTT over WebSocket, service `iotdevicegateway`, with the
//! security token appended after signing as AWS IoT's clients do). See spec/aws-iot.md, "SigV4".
//! The device side's [`presign`] makes such URLs.
//!
//! ```
//! use iot_auth::sigv4::{Credential, HttpRequest, MemoryCredentials, Verifier};
//! let mut store = MemoryCredentials::default();
//! store.insert("AKIDEXAMPLE", Credential {
//!     secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
//!     session_token: None,
//!     principal: "123456789012/AKIDEXAMPLE".into(),
//!     expires_at: None,
//! });
//! let verifier = Verifier::new(store, "us-east-1", &["service"]);
//! // AWS's `get-vanilla` test vector.
//! let request = HttpRequest {
//!     method: "GET", path: "/", query: "",
//!     headers: &[
//!         ("Host", "example.amazonaws.com"),
//!         ("X-Amz-Date", "20150830T123600Z"),
//!         ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
//!     ],
//!     body: b"",
//! };
//! let verified = verifier.verify_header(&request, 1_440_938_160).unwrap();
//! assert_eq!(verified.principal, "123456789012/AKIDEXAMPLE");
//! ```

mod canonical;
mod credentials;
mod error;
mod presign;
mod signing;
mod time;

use subtle::ConstantTimeEq;

pub use canonical::{canonical_query, canonical_uri, uri_encode};
pub use credentials::{Credential, CredentialStore, MemoryCredentials};
pub use error::SigV4Error;
pub use presign::{Presign, format_amz_date, presign};
pub use signing::{SigningKeyCache, sha256_hex, signing_key, string_to_sign};
pub use time::parse_amz_date;

use canonical::{canonical_headers, canonical_query_of, parse_query};

/// An HTTP request as received, for verification.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path as received (still percent-encoded), without the query.
    pub path: &'a str,
    /// The raw query string after `?`, or empty.
    pub query: &'a str,
    /// Every header as received (names in any case; a name may repeat).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (empty for `GET /mqtt`).
    pub body: &'a [u8],
}

impl HttpRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id that signed.
    pub access_key_id: String,
    /// The principal the credential maps to.
    pub principal: String,
    /// The signing region.
    pub region: String,
    /// The signing service.
    pub service: String,
    /// `X-Amz-Date` as Unix seconds.
    pub signed_at: u64,
    /// Until when a presigned URL is valid (Unix seconds), if it said.
    pub expires_at: Option<u64>,
}

/// What the signature claims, from the `Authorization` header or the query.
struct Claim<'a> {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    amz_date: &'a str,
    signed_headers: Vec<String>,
    signature: String,
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Largest `X-Amz-Expires`: seven days.
const MAX_EXPIRES: u64 = 604_800;

/// Checks SigV4 signatures for one endpoint (its region and the services it answers to).
#[derive(Debug)]
pub struct Verifier<S> {
    store: S,
    region: String,
    services: Vec<String>,
    /// How far `X-Amz-Date` of a header-signed request may be from now, in seconds.
    pub header_skew_secs: u64,
    /// How far a presigned URL without `X-Amz-Expires` may be from now, in seconds.
    pub presigned_skew_secs: u64,
    /// Whether paths are normalised (dot segments, empty segments) before encoding: true for
    /// AWS IoT and every service but S3.
    pub normalize_path: bool,
    /// Whether derived signing keys are cached.
    pub cache_keys: bool,
    cache: SigningKeyCache,
}

impl<S: CredentialStore> Verifier<S> {
    /// A verifier for `region` accepting the `services` (e.g. `iotdevicegateway`, and `iotdata`
    /// as boto3 signs HTTPS publish), with AWS IoT's time windows (header ±5 min, presigned
    /// without `X-Amz-Expires` ±15 min) and a signing-key cache.
    pub fn new(store: S, region: &str, services: &[&str]) -> Verifier<S> {
        Verifier {
            store,
            region: region.to_owned(),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            header_skew_secs: 300,
            presigned_skew_secs: 900,
            normalize_path: true,
            cache_keys: true,
            cache: SigningKeyCache::default(),
        }
    }

    /// The credential store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The credential store, e.g. to add a key (call [`forget_key`](Self::forget_key) after
    /// changing or removing one).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Drop cached signing keys of `access_key_id`.
    pub fn forget_key(&self, access_key_id: &str) {
        self.cache.forget(access_key_id);
    }

    /// Verify a request signed in its `Authorization` header, at `now` (Unix seconds).
    pub fn verify_header(
        &self,
        request: &HttpRequest<'_>,
        now: u64,
    ) -> Result<Verified, SigV4Error> {
        let authorization = request
            .header("authorization")
            .ok_or(SigV4Error::Unsigned)?;
        let amz_date = request
            .header("x-amz-date")
            .ok_or(SigV4Error::InvalidDate)?;
        let claim = parse_authorization(authorization, amz_date)?;
        let signed_at = self.check_scope(&claim)?;
        if now.abs_diff(signed_at) > self.header_skew_secs {
            return Err(SigV4Error::Expired);
        }
        let credential = self.credential(&claim, now)?;
        if let Some(token) = &credential.session_token {
            let sent = request.header("x-amz-security-token").unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
                return Err(SigV4Error::SecurityToken);
            }
        }
        let query = canonical_query(request.query, &[]);
        let payload = payload_hash(request);
        self.check_signature(request, &claim, &credential, &[query], &payload)?;
        Ok(verified(claim, credential, signed_at, None))
    }

    /// Verify a presigned URL (the signature in the query), at `now` (Unix seconds).
    pub fn verify_presigned(
        &self,
        request: &HttpRequest<'_>,
        now: u64,
    ) -> Result<Verified, SigV4Error> {
        let params = parse_query(request.query);
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.as_str())
        };
        let signature = param("X-Amz-Signature").ok_or(SigV4Error::Unsigned)?;
        if param("X-Amz-Algorithm") != Some(ALGORITHM) {
            return Err(SigV4Error::UnsupportedAlgorithm);
        }
        let credential_text =
            param("X-Amz-Credential").ok_or(SigV4Error::Malformed("no X-Amz-Credential"))?;
        let amz_date = param("X-Amz-Date").ok_or(SigV4Error::InvalidDate)?;
        let signed_headers =
            param("X-Amz-SignedHeaders").ok_or(SigV4Error::Malformed("no X-Amz-SignedHeaders"))?;
        let claim = build_claim(credential_text, signed_headers, signature, amz_date)?;
        let signed_at = self.check_scope(&claim)?;
        let expires_at = match param("X-Amz-Expires") {
            Some(text) => {
                let secs: u64 = text.parse().map_err(|_| SigV4Error::InvalidExpires)?;
                if !(1..=MAX_EXPIRES).contains(&secs) {
                    return Err(SigV4Error::InvalidExpires);
                }
                if now.saturating_add(self.presigned_skew_secs) < signed_at
                    || now > signed_at.saturating_add(secs)
                {
                    return Err(SigV4Error::Expired);
                }
                Some(signed_at.saturating_add(secs))
            }
            None => {
                if now.abs_diff(signed_at) > self.presigned_skew_secs {
                    return Err(SigV4Error::Expired);
                }
                None
            }
        };
        let credential = self.credential(&claim, now)?;
        let token = param("X-Amz-Security-Token");
        if let Some(expected) = &credential.session_token {
            let sent = token.unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(SigV4Error::SecurityToken);
            }
        }
        // AWS IoT's clients append the token after signing; ordinary presigning signs it.
        let mut queries = vec![canonical_query_of(
            &params,
            &["X-Amz-Signature", "X-Amz-Security-Token"],
        )];
        if token.is_some() {
            queries.push(canonical_query_of(&params, &["X-Amz-Signature"]));
        }
        let payload = payload_hash(request);
        self.check_signature(request, &claim, &credential, &queries, &payload)?;
        Ok(verified(claim, credential, signed_at, expires_at))
    }

    /// Check date, region, service; return the signing time.
    fn check_scope(&self, claim: &Claim<'_>) -> Result<u64, SigV4Error> {
        let signed_at = parse_amz_date(claim.amz_date).ok_or(SigV4Error::InvalidDate)?;
        if claim.amz_date.get(..8) != Some(claim.scope_date.as_str()) {
            return Err(SigV4Error::ScopeDateMismatch {
                scope: claim.scope_date.clone(),
                date: claim.amz_date.to_owned(),
            });
        }
        if claim.region != self.region {
            return Err(SigV4Error::WrongRegion(claim.region.clone()));
        }
        if !self.services.contains(&claim.service) {
            return Err(SigV4Error::WrongService(claim.service.clone()));
        }
        if !claim.signed_headers.iter().any(|h| h == "host") {
            return Err(SigV4Error::SignedHeaders("host is not signed"));
        }
        Ok(signed_at)
    }

    fn credential(&self, claim: &Claim<'_>, now: u64) -> Result<Credential, SigV4Error> {
        let credential = self
            .store
            .credential(&claim.access_key_id)
            .ok_or_else(|| SigV4Error::UnknownAccessKey(claim.access_key_id.clone()))?;
        if credential.expires_at.is_some_and(|at| now >= at) {
            return Err(SigV4Error::ExpiredToken);
        }
        Ok(credential)
    }

    /// Compare the claimed signature with ours for each candidate canonical query.
    fn check_signature(
        &self,
        request: &HttpRequest<'_>,
        claim: &Claim<'_>,
        credential: &Credential,
        queries: &[String],
        payload: &str,
    ) -> Result<(), SigV4Error> {
        let signed = claim.signed_headers.join(";");
        let key = if self.cache_keys {
            self.cache.get(
                &claim.access_key_id,
                &credential.secret_access_key,
                &claim.scope_date,
                &claim.region,
                &claim.service,
            )
        } else {
            signing_key(
                &credential.secret_access_key,
                &claim.scope_date,
                &claim.region,
                &claim.service,
            )
        };
        let scope = format!(
            "{}/{}/{}/aws4_request",
            claim.scope_date, claim.region, claim.service
        );
        let mut ok = false;
        for query in queries {
            let canonical =
                canonical_request_of(request, &signed, query, payload, self.normalize_path)
                    .ok_or(SigV4Error::SignedHeaders("a signed header is missing"))?;
            let to_sign = string_to_sign(claim.amz_date, &scope, &canonical);
            let expected = hex::encode(signing::hmac(&key, to_sign.as_bytes()));
            ok |= bool::from(expected.as_bytes().ct_eq(claim.signature.as_bytes()));
        }
        if ok {
            Ok(())
        } else {
            Err(SigV4Error::SignatureMismatch)
        }
    }
}

/// The canonical request from its parts (each already canonical; `headers` ends with `\n`).
pub fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{payload_hash}")
}

/// The canonical request for `request` as the verifier builds it: `signed_headers` as in the
/// signature (`host;x-amz-date`), `query` already canonical (see [`canonical_query`]), `payload`
/// the hex SHA-256 of the body. `None` if a signed header is missing.
pub fn canonical_request_of(
    request: &HttpRequest<'_>,
    signed_headers: &str,
    query: &str,
    payload: &str,
    normalize_path: bool,
) -> Option<String> {
    let signed: Vec<&str> = signed_headers.split(';').collect();
    let headers = canonical_headers(request.headers, &signed)?;
    Some(canonical_request(
        request.method,
        &canonical_uri(request.path, normalize_path),
        query,
        &headers,
        signed_headers,
        payload,
    ))
}

/// The payload hash a request is signed with: `x-amz-content-sha256` if sent, else the hex
/// SHA-256 of the body.
pub fn payload_hash(request: &HttpRequest<'_>) -> String {
    match request.header("x-amz-content-sha256") {
        Some(hash) => hash.trim().to_owned(),
        None => sha256_hex(request.body),
    }
}

fn verified(
    claim: Claim<'_>,
    credential: Credential,
    signed_at: u64,
    expires_at: Option<u64>,
) -> Verified {
    Verified {
        access_key_id: claim.access_key_id,
        principal: credential.principal,
        region: claim.region,
        service: claim.service,
        signed_at,
        expires_at,
    }
}

/// Parse `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
fn parse_authorization<'a>(value: &str, amz_date: &'a str) -> Result<Claim<'a>, SigV4Error> {
    let rest = value
        .trim()
        .strip_prefix(ALGORITHM)
        .ok_or(SigV4Error::UnsupportedAlgorithm)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, v) = part
            .trim()
            .split_once('=')
            .ok_or(SigV4Error::Malformed("Authorization component without '='"))?;
        match name {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return Err(SigV4Error::Malformed("unknown Authorization component")),
        }
    }
    build_claim(
        credential.ok_or(SigV4Error::Malformed("no Credential"))?,
        signed.ok_or(SigV4Error::Malformed("no SignedHeaders"))?,
        signature.ok_or(SigV4Error::Malformed("no Signature"))?,
        amz_date,
    )
}

fn build_claim<'a>(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &'a str,
) -> Result<Claim<'a>, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::Malformed(
            "credential scope is not key/date/region/service/aws4_request",
        ));
    };
    if *terminator != "aws4_request" || key.is_empty() {
        return Err(SigV4Error::Malformed(
            "credential scope is not key/date/region/service/aws4_request",
        ));
    }
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(SigV4Error::Malformed("empty name in SignedHeaders"));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::Malformed("signature is not 64 hex digits"));
    }
    Ok(Claim {
        access_key_id: (*key).to_owned(),
        scope_date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        amz_date,
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}
