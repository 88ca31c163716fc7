//! Requests and presigned URLs made by AWS's own signer (the `aws-sigv4` crate) verify; flipping
//! any signed byte makes verification fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use iot_auth::sigv4::{Credential, HttpRequest, MemoryCredentials, SigV4Error, Verifier};
use proptest::prelude::*;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEBYaDGV4YW1wbGUvdG9rZW4/+=";
const NOW: u64 = 1_764_072_000; // 2025-11-25T12:00:00Z
const HOST: &str = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com";

/// A request as the signer leaves it: method, path, query, headers, body.
#[derive(Debug, Clone)]
struct Signed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    fn verify(
        &self,
        verifier: &Verifier<MemoryCredentials>,
        presigned: bool,
        now: u64,
    ) -> Result<(), SigV4Error> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = HttpRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        if presigned {
            verifier.verify_presigned(&request, now).map(|_| ())
        } else {
            verifier.verify_header(&request, now).map(|_| ())
        }
    }
}

fn percent(value: &str) -> String {
    iot_auth::sigv4::uri_encode(value, false)
}

/// Sign with `aws-sigv4`: `path_and_query` as sent on the wire.
fn aws_sign(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    service: &str,
    presign: bool,
    token: Option<&str>,
    token_mode: SessionTokenMode,
) -> Signed {
    let identity = Credentials::new(KEY, SECRET, token.map(str::to_owned), None, "test").into();
    let mut settings = SigningSettings::default();
    settings.session_token_mode = token_mode;
    if presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(NOW))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = format!("https://{HOST}{path_and_query}");
    let headers = [("host", HOST)];
    let signable = SignableRequest::new(
        method,
        uri.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (path, mut query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (path_and_query.to_owned(), String::new()),
    };
    for (name, value) in instructions.params() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("{name}={}", percent(value)));
    }
    let mut all = vec![("Host".to_owned(), HOST.to_owned())];
    for (name, value) in instructions.headers() {
        all.push((name.to_owned(), value.to_owned()));
    }
    Signed {
        method: method.into(),
        path,
        query,
        headers: all,
        body: body.to_vec(),
    }
}

fn verifier(token: Option<&str>) -> Verifier<MemoryCredentials> {
    let mut store = MemoryCredentials::default();
    store.insert(
        KEY,
        Credential {
            secret_access_key: SECRET.into(),
            session_token: token.map(str::to_owned),
            principal: format!("123456789012/{KEY}"),
            expires_at: None,
        },
    );
    Verifier::new(store, "eu-west-1", &["iotdevicegateway", "iotdata"])
}

#[test]
fn websocket_presigned_urls_verify() {
    let v = verifier(None);
    let url = aws_sign(
        "GET",
        "/mqtt",
        b"",
        "iotdevicegateway",
        true,
        None,
        SessionTokenMode::Include,
    );
    url.verify(&v, true, NOW).unwrap();
    url.verify(&v, true, NOW + 300).unwrap();
    assert_eq!(url.verify(&v, true, NOW + 301), Err(SigV4Error::Expired));
    // With temporary credentials, both the IoT style (token appended after signing) and
    // ordinary presigning (token signed) verify.
    let v = verifier(Some(TOKEN));
    for mode in [SessionTokenMode::Exclude, SessionTokenMode::Include] {
        let url = aws_sign(
            "GET",
            "/mqtt",
            b"",
            "iotdevicegateway",
            true,
            Some(TOKEN),
            mode,
        );
        assert!(url.query.contains("X-Amz-Security-Token="), "{mode:?}");
        url.verify(&v, true, NOW).unwrap();
    }
    // Without the token the temporary credential is refused.
    let url = aws_sign(
        "GET",
        "/mqtt",
        b"",
        "iotdevicegateway",
        true,
        None,
        SessionTokenMode::Include,
    );
    assert_eq!(url.verify(&v, true, NOW), Err(SigV4Error::SecurityToken));
}

#[test]
fn https_publish_with_header_signatures_verifies() {
    let v = verifier(None);
    // boto3's shape: the topic's `/` sent as `%2F`, signed with service `iotdata`.
    for (path, service) in [
        ("/topics/cars%2F1%2Ftelemetry?qos=1", "iotdata"),
        (
            "/topics/cars/1/telemetry?qos=1&retain=true",
            "iotdevicegateway",
        ),
    ] {
        let request = aws_sign(
            "POST",
            path,
            br#"{"speed":88}"#,
            service,
            false,
            None,
            SessionTokenMode::Include,
        );
        request
            .verify(&v, false, NOW)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            request.verify(&v, false, NOW + 301),
            Err(SigV4Error::Expired)
        );
        let mut tampered = request.clone();
        tampered.body = br#"{"speed":89}"#.to_vec();
        assert_eq!(
            tampered.verify(&v, false, NOW),
            Err(SigV4Error::SignatureMismatch)
        );
    }
}

#[test]
fn scope_checks() {
    let v = verifier(None);
    let other_service = aws_sign(
        "GET",
        "/mqtt",
        b"",
        "s3",
        true,
        None,
        SessionTokenMode::Include,
    );
    assert_eq!(
        other_service.verify(&v, true, NOW),
        Err(SigV4Error::WrongService("s3".into()))
    );
    let mut store = MemoryCredentials::default();
    store.insert(
        "OTHER",
        Credential {
            secret_access_key: "x".into(),
            session_token: None,
            principal: "p".into(),
            expires_at: None,
        },
    );
    let unknown = Verifier::new(store, "eu-west-1", &["iotdevicegateway"]);
    let url = aws_sign(
        "GET",
        "/mqtt",
        b"",
        "iotdevicegateway",
        true,
        None,
        SessionTokenMode::Include,
    );
    assert_eq!(
        url.verify(&unknown, true, NOW),
        Err(SigV4Error::UnknownAccessKey(KEY.into()))
    );
    let wrong_region = Verifier::new(
        verifier(None).store().clone(),
        "us-east-1",
        &["iotdevicegateway"],
    );
    assert_eq!(
        url.verify(&wrong_region, true, NOW),
        Err(SigV4Error::WrongRegion("eu-west-1".into()))
    );
}

/// Replace the character at `at` in `text` by a different one from the same class, so the
/// change is one the canonical form keeps.
fn flip(text: &str, at: usize) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let c = *chars.get(at)?;
    let replacement = match c {
        '0'..='8' | 'a'..='y' | 'A'..='Y' => char::from(c as u8 + 1),
        '9' => '0',
        'z' => 'a',
        'Z' => 'A',
        _ => return None,
    };
    let mut out = chars;
    out[at] = replacement;
    Some(out.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_flipped_byte_fails(presign in any::<bool>(), part in 0..4usize, at in any::<prop::sample::Index>()) {
        let v = verifier(None);
        let request = aws_sign("POST", "/topics/cars/7?qos=1", b"payload-42", "iotdata", presign, None, SessionTokenMode::Include);
        prop_assert!(request.verify(&v, presign, NOW).is_ok());
        let mut tampered = request.clone();
        let flipped = match part {
            0 => flip(&request.path, at.index(request.path.len())).map(|p| tampered.path = p),
            1 => flip(&request.query, at.index(request.query.len())).map(|q| tampered.query = q),
            2 => {
                let i = at.index(request.headers.len());
                let (_, value) = &request.headers[i];
                flip(value, at.index(value.len())).map(|v| tampered.headers[i].1 = v)
            }
            _ => {
                let i = at.index(tampered.body.len());
                tampered.body[i] ^= 0x01;
                Some(())
            }
        };
        prop_assume!(flipped.is_some());
        prop_assert!(tampered.verify(&v, presign, NOW).is_err(), "{:?}", tampered);
    }
}

/// Our presigner (the device side) signs exactly as AWS's signer does, and its URLs verify.
#[test]
fn our_presigned_urls_match_aws_and_verify() {
    let signature = |query: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Signature="))
            .unwrap()
            .to_owned()
    };
    for token in [None, Some(TOKEN)] {
        let ours = iot_auth::sigv4::presign(&iot_auth::sigv4::Presign {
            method: "GET",
            host: HOST,
            path: "/mqtt",
            region: "eu-west-1",
            service: "iotdevicegateway",
            access_key_id: KEY,
            secret_access_key: SECRET,
            session_token: token,
            now_secs: NOW,
            expires_secs: Some(300),
        });
        let aws = aws_sign(
            "GET",
            "/mqtt",
            b"",
            "iotdevicegateway",
            true,
            token,
            SessionTokenMode::Exclude,
        );
        let (path, query) = ours.split_once('?').unwrap();
        assert_eq!(path, "/mqtt");
        assert_eq!(signature(query), signature(&aws.query), "token {token:?}");
        let signed = Signed {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            headers: vec![("Host".to_owned(), HOST.to_owned())],
            body: Vec::new(),
        };
        signed.verify(&verifier(token), true, NOW + 299).unwrap();
    }
}

/// Temporary credentials stop at their expiry, whatever the signature's own window says.
#[test]
fn expired_temporary_credentials_are_refused() {
    let mut store = MemoryCredentials::default();
    store.insert(
        KEY,
        Credential {
            secret_access_key: SECRET.into(),
            session_token: Some(TOKEN.into()),
            principal: "arn:aws:iam::123456789012:user/dashboard".into(),
            expires_at: Some(NOW + 60),
        },
    );
    let v = Verifier::new(store, "eu-west-1", &["iotdevicegateway"]);
    let url = aws_sign(
        "GET",
        "/mqtt",
        b"",
        "iotdevicegateway",
        true,
        Some(TOKEN),
        SessionTokenMode::Exclude,
    );
    url.verify(&v, true, NOW + 59).unwrap();
    assert_eq!(
        url.verify(&v, true, NOW + 60),
        Err(SigV4Error::ExpiredToken)
    );
}
