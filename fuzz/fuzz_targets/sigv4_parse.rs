//! Arbitrary requests through SigV4 verification, header and presigned forms: the input, split at
//! newlines, is method, path, query, then `name: value` header lines, with the body after a blank
//! line. Nothing panics; the canonicalisation helpers accept any text.
#![no_main]

use iot_auth::sigv4::{Credential, HttpRequest, MemoryCredentials, Verifier, canonical_query, uri_encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.split('\n');
    let method = lines.next().unwrap_or("GET");
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    let headers: Vec<(&str, &str)> = lines
        .map(|l| l.split_once(':').map_or((l, ""), |(n, v)| (n, v)))
        .collect();
    let mut store = MemoryCredentials::default();
    store.insert(
        "AKIDEXAMPLE",
        Credential {
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            principal: "fuzz".into(),
            expires_at: None,
        },
    );
    let verifier = Verifier::new(store, "us-east-1", &["iotdevicegateway", "iotdata", "service"]);
    let request = HttpRequest {
        method,
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let _ = verifier.verify_header(&request, 1_440_938_160);
    let _ = verifier.verify_presigned(&request, 1_440_938_160);
    let _ = canonical_query(query, &[]);
    let _ = uri_encode(path, true);
});
