//! Presigning a URL the way AWS IoT's device SDKs do for MQTT over WebSocket: the query carries
//! the algorithm, credential, date, expiry and signed headers (`host`), the signature is over the
//! canonical request with an empty payload hash, and a session token is appended after signing
//! (outside the canonical query), as AWS's own samples do.

use super::canonical::{canonical_query, canonical_uri, uri_encode};
use super::signing::{hmac, sha256_hex, signing_key, string_to_sign};
use super::{ALGORITHM, canonical_request};

/// What to presign.
#[derive(Debug, Clone, Copy)]
pub struct Presign<'a> {
    /// The HTTP method (`GET` for `/mqtt`).
    pub method: &'a str,
    /// The `Host` the client will send, with `:port` when it sends one.
    pub host: &'a str,
    /// The path (`/mqtt`).
    pub path: &'a str,
    /// The region of the endpoint.
    pub region: &'a str,
    /// The service (`iotdevicegateway` for MQTT over WebSocket).
    pub service: &'a str,
    /// The access key id.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// A session token of temporary credentials, appended after signing.
    pub session_token: Option<&'a str>,
    /// The signing time, Unix seconds.
    pub now_secs: u64,
    /// `X-Amz-Expires` (1–604800 s), or none (the verifier then allows ±15 min).
    pub expires_secs: Option<u64>,
}

/// `YYYYMMDDTHHMMSSZ` of Unix seconds (proleptic Gregorian, UTC).
///
/// ```
/// assert_eq!(iot_auth::sigv4::format_amz_date(1_440_938_160), "20150830T123600Z");
/// ```
pub fn format_amz_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The presigned `path?query` for `request`.
///
/// ```
/// use iot_auth::sigv4::{Presign, presign};
/// let url = presign(&Presign {
///     method: "GET", host: "localhost:8443", path: "/mqtt", region: "us-east-1",
///     service: "iotdevicegateway", access_key_id: "AKIDEXAMPLE",
///     secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token: Some("tok/en"),
///     now_secs: 1_440_938_160, expires_secs: Some(300),
/// });
/// assert!(url.starts_with("/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiotdevicegateway%2Faws4_request"));
/// assert!(url.ends_with("&X-Amz-Security-Token=tok%2Fen"));
/// ```
pub fn presign(request: &Presign<'_>) -> String {
    let amz_date = format_amz_date(request.now_secs);
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let mut query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}",
        uri_encode(&format!("{}/{scope}", request.access_key_id), false)
    );
    if let Some(expires) = request.expires_secs {
        query.push_str(&format!("&X-Amz-Expires={expires}"));
    }
    query.push_str("&X-Amz-SignedHeaders=host");
    let canonical = canonical_request(
        request.method,
        &canonical_uri(request.path, true),
        &canonical_query(&query, &[]),
        &format!("host:{}\n", request.host.trim()),
        "host",
        &sha256_hex(b""),
    );
    let key = signing_key(
        request.secret_access_key,
        date,
        request.region,
        request.service,
    );
    let signature = hex::encode(hmac(
        &key,
        string_to_sign(&amz_date, &scope, &canonical).as_bytes(),
    ));
    let mut url = format!("{}?{query}&X-Amz-Signature={signature}", request.path);
    if let Some(token) = request.session_token {
        url.push_str(&format!(
            "&X-Amz-Security-Token={}",
            uri_encode(token, false)
        ));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::parse_amz_date;

    #[test]
    fn dates_round_trip_through_the_parser() {
        for secs in [0, 951_782_400, 1_440_938_160, 4_102_444_799, 1_709_164_800] {
            assert_eq!(parse_amz_date(&format_amz_date(secs)), Some(secs), "{secs}");
        }
    }
}
