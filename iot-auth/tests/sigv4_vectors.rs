//! AWS's SigV4 test suite, as shipped inside the `aws-sigv4` crate package
//! (`aws-signing-test-suite/v4/`): for every case, our canonical request and string to sign must
//! equal AWS's, and the signed requests (header form and presigned form) must verify.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use iot_auth::sigv4::{
    Credential, HttpRequest, MemoryCredentials, Verifier, canonical_query, canonical_request_of,
    canonical_uri, parse_amz_date, payload_hash, string_to_sign,
};

/// The suite's folder, found through `cargo metadata` (works with any CARGO_HOME).
fn suite() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws-sigv4")
        .expect("aws-sigv4 is a dev-dependency");
    let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
    manifest.parent().unwrap().join("aws-signing-test-suite/v4")
}

/// A request parsed from the suite's HTTP text form.
struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parsed {
    fn parse(text: &str) -> Parsed {
        let (head, body) = match text.split_once("\n\n") {
            Some((h, b)) => (h, b.as_bytes().to_vec()),
            None => (text.trim_end_matches('\n'), Vec::new()),
        };
        let mut lines = head.lines();
        let request_line = lines.next().unwrap();
        let method = request_line.split(' ').next().unwrap().to_owned();
        let target = request_line[method.len() + 1..]
            .trim_end_matches(" HTTP/1.1")
            .to_owned();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (target, String::new()),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                // A folded continuation line belongs to the header before it.
                let last = headers.last_mut().unwrap();
                last.1.push('\n');
                last.1.push_str(line);
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        Parsed {
            method,
            path,
            query,
            headers,
            body,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&HttpRequest<'_>) -> R) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        f(&HttpRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

#[test]
fn every_case_of_the_official_suite() {
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(suite())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(entries.len() >= 40, "the suite has 40 cases");
    for dir in entries {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(context) = read(&dir, "context.json") else {
            // Legacy cases carry only a request and its canonical form: check the URI.
            let signed = Parsed::parse(&read(&dir, "header-signed-request.txt").unwrap());
            let canonical = read(&dir, "header-canonical-request.txt").unwrap();
            assert_eq!(
                canonical_uri(&signed.path, true),
                canonical.lines().nth(1).unwrap(),
                "{name}"
            );
            checked += 1;
            continue;
        };
        let context: serde_json::Value = serde_json::from_str(&context).unwrap();
        let creds = &context["credentials"];
        let mut store = MemoryCredentials::default();
        store.insert(
            creds["access_key_id"].as_str().unwrap(),
            Credential {
                secret_access_key: creds["secret_access_key"].as_str().unwrap().to_owned(),
                session_token: creds["token"].as_str().map(str::to_owned),
                principal: "suite".into(),
                expires_at: None,
            },
        );
        let region = context["region"].as_str().unwrap();
        let service = context["service"].as_str().unwrap();
        let normalize = context["normalize"].as_bool().unwrap();
        let omit_token = context["omit_session_token"].as_bool().unwrap_or(false);
        let mut verifier = Verifier::new(store, region, &[service]);
        verifier.normalize_path = normalize;
        let stamp = context["timestamp"]
            .as_str()
            .unwrap()
            .replace(['-', ':'], "");
        let now = parse_amz_date(&stamp).unwrap();
        let scope = format!("{}/{region}/{service}/aws4_request", &stamp[..8]);

        // Header form.
        let signed = Parsed::parse(&read(&dir, "header-signed-request.txt").unwrap());
        let authorization = signed.header("authorization").unwrap();
        let signed_headers = authorization
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        let canonical = signed
            .with(|r| {
                canonical_request_of(
                    r,
                    &signed_headers,
                    &canonical_query(r.query, &[]),
                    &payload_hash(r),
                    normalize,
                )
            })
            .unwrap();
        assert_eq!(
            canonical,
            read(&dir, "header-canonical-request.txt").unwrap(),
            "{name}"
        );
        assert_eq!(
            string_to_sign(&stamp, &scope, &canonical),
            read(&dir, "header-string-to-sign.txt").unwrap(),
            "{name}"
        );
        signed
            .with(|r| verifier.verify_header(r, now))
            .unwrap_or_else(|e| panic!("{name} header form: {e}"));

        // Presigned form.
        let signed = Parsed::parse(&read(&dir, "query-signed-request.txt").unwrap());
        let skip: &[&str] = if omit_token {
            &["X-Amz-Signature", "X-Amz-Security-Token"]
        } else {
            &["X-Amz-Signature"]
        };
        let params: std::collections::BTreeMap<String, String> = signed
            .query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.replace("%3B", ";")))
            .collect();
        let canonical = signed
            .with(|r| {
                canonical_request_of(
                    r,
                    &params["X-Amz-SignedHeaders"],
                    &canonical_query(r.query, skip),
                    &payload_hash(r),
                    normalize,
                )
            })
            .unwrap();
        assert_eq!(
            canonical,
            read(&dir, "query-canonical-request.txt").unwrap(),
            "{name}"
        );
        assert_eq!(
            string_to_sign(&stamp, &scope, &canonical),
            read(&dir, "query-string-to-sign.txt").unwrap(),
            "{name}"
        );
        signed
            .with(|r| verifier.verify_presigned(r, now))
            .unwrap_or_else(|e| panic!("{name} presigned form: {e}"));
        // One second past `X-Amz-Expires` it no longer verifies.
        let expires: u64 = context["expiration_in_seconds"].as_u64().unwrap();
        assert!(
            signed
                .with(|r| verifier.verify_presigned(r, now + expires + 1))
                .is_err()
        );
        checked += 1;
    }
    assert_eq!(checked, 40);
}
