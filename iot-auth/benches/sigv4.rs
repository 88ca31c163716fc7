//! SigV4 verifications per second, with and without the signing-key cache: a WebSocket `GET /mqtt`
//! presigned URL and an HTTPS publish with a header signature, both made by AWS's `aws-sigv4`.
//!
//! Run: `cargo bench -p iot-auth --bench sigv4`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use criterion::{Criterion, Throughput};
use iot_auth::sigv4::{Credential, HttpRequest, MemoryCredentials, Verifier};

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const NOW: u64 = 1_764_072_000;
const HOST: &str = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com";

struct Signed {
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn signed(
    method: &'static str,
    path_and_query: &str,
    body: &[u8],
    service: &str,
    presign: bool,
) -> Signed {
    let identity = Credentials::new(KEY, SECRET, None, None, "bench").into();
    let mut settings = SigningSettings::default();
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
        query.push_str(&format!(
            "{name}={}",
            iot_auth::sigv4::uri_encode(value, false)
        ));
    }
    let mut all = vec![("Host".to_owned(), HOST.to_owned())];
    for (name, value) in instructions.headers() {
        all.push((name.to_owned(), value.to_owned()));
    }
    Signed {
        method,
        path,
        query,
        headers: all,
        body: body.to_vec(),
    }
}

fn verifier(cache: bool) -> Verifier<MemoryCredentials> {
    let mut store = MemoryCredentials::default();
    store.insert(
        KEY,
        Credential {
            secret_access_key: SECRET.into(),
            session_token: None,
            principal: "bench".into(),
            expires_at: None,
        },
    );
    let mut v = Verifier::new(store, "eu-west-1", &["iotdevicegateway", "iotdata"]);
    v.cache_keys = cache;
    v
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let ws = signed("GET", "/mqtt", b"", "iotdevicegateway", true);
    let publish = signed(
        "POST",
        "/topics/cars%2F1%2Ftelemetry?qos=1",
        br#"{"speed":88,"rpm":3100}"#,
        "iotdata",
        false,
    );
    let mut group = c.benchmark_group("sigv4");
    group.throughput(Throughput::Elements(1));
    for cache in [true, false] {
        let v = verifier(cache);
        let label = if cache { "key cache" } else { "no key cache" };
        for (name, s, presigned) in [
            ("websocket presigned", &ws, true),
            ("https header", &publish, false),
        ] {
            let headers: Vec<(&str, &str)> = s
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let request = HttpRequest {
                method: s.method,
                path: &s.path,
                query: &s.query,
                headers: &headers,
                body: &s.body,
            };
            group.bench_function(format!("{name}, {label}"), |b| {
                b.iter(|| {
                    let out = if presigned {
                        v.verify_presigned(black_box(&request), NOW)
                    } else {
                        v.verify_header(black_box(&request), NOW)
                    };
                    black_box(out.unwrap())
                })
            });
        }
    }
    group.finish();
    c.final_summary();
}
