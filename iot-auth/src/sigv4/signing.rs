//! Hashes, the signing key and the string to sign (spec/aws-iot.md, "SigV4", steps 2 and 3), and a
//! cache of derived signing keys.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex SHA-256 of `data`.
///
/// ```
/// use iot_auth::sigv4::sha256_hex;
/// assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// ```
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key for one (secret, date, region, service): `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date),
/// region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// `AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hex sha256 of canonical request}`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Derived signing keys by (access key id, date, region, service): the four HMACs are paid once a
/// day per key instead of once per request.
#[derive(Debug, Default)]
pub struct SigningKeyCache {
    keys: Mutex<HashMap<KeyScope, [u8; 32]>>,
}

/// (access key id, date, region, service).
type KeyScope = (String, String, String, String);

/// Most keys kept before the cache starts over (keys are per day, so it never needs many).
const CACHE_LIMIT: usize = 10_000;

impl SigningKeyCache {
    /// The key for these parts, derived from `secret` on a miss.
    pub fn get(
        &self,
        access_key_id: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let id = (
            access_key_id.to_owned(),
            date.to_owned(),
            region.to_owned(),
            service.to_owned(),
        );
        if let Ok(keys) = self.keys.lock() {
            if let Some(key) = keys.get(&id) {
                return *key;
            }
        }
        let key = signing_key(secret, date, region, service);
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= CACHE_LIMIT {
                keys.clear();
            }
            keys.insert(id, key);
        }
        key
    }

    /// Forget every key of `access_key_id` (its secret changed or was revoked).
    pub fn forget(&self, access_key_id: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|(id, ..), _| id != access_key_id);
        }
    }
}
