//! The canonical request's parts: URI, query, headers (spec/aws-iot.md, "SigV4", step 1).

use core::fmt::Write as _;

/// Percent-encode `input` as SigV4 does: unreserved `A–Z a–z 0–9 - _ . ~` kept, `/` kept when
/// `keep_slash`, every other byte `%XX` in upper-case hex.
///
/// ```
/// use iot_auth::sigv4::uri_encode;
/// assert_eq!(uri_encode("a b/ሴ~", true), "a%20b/%E1%88%B4~");
/// assert_eq!(uri_encode("a/b", false), "a%2Fb");
/// ```
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decode `%XX` escapes (a malformed escape is kept as it is). `+` stays `+`.
pub(crate) fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(decoded) = hex {
                out.push(decoded);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI: the path as received, dot-segments and empty segments removed when
/// `normalize`, then encoded again (so `%3D` becomes `%253D`, as AWS signs it).
///
/// ```
/// use iot_auth::sigv4::canonical_uri;
/// assert_eq!(canonical_uri("/example1/example2/../..", true), "/");
/// assert_eq!(canonical_uri("//example//", true), "/example/");
/// assert_eq!(canonical_uri("/topics/a%2Fb", true), "/topics/a%252Fb");
/// assert_eq!(canonical_uri("/example/..", false), "/example/..");
/// ```
pub fn canonical_uri(path: &str, normalize: bool) -> String {
    let path = if path.is_empty() { "/" } else { path };
    if !normalize {
        return uri_encode(path, true);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    uri_encode(&out, true)
}

/// One query parameter, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParam {
    pub name: String,
    pub value: String,
}

/// Split a raw query string into decoded parameters.
pub(crate) fn parse_query(query: &str) -> Vec<QueryParam> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            QueryParam {
                name: percent_decode(name),
                value: percent_decode(value),
            }
        })
        .collect()
}

/// The canonical query string of `params` without those `skip` names, each name and value
/// encoded, sorted by name then value.
///
/// ```
/// use iot_auth::sigv4::canonical_query;
/// assert_eq!(canonical_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1", &[]), "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
/// assert_eq!(canonical_query("b=2&X-Amz-Signature=x&a", &["X-Amz-Signature"]), "a=&b=2");
/// ```
pub fn canonical_query(query: &str, skip: &[&str]) -> String {
    canonical_query_of(&parse_query(query), skip)
}

pub(crate) fn canonical_query_of(params: &[QueryParam], skip: &[&str]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|p| !skip.contains(&p.name.as_str()))
        .map(|p| (uri_encode(&p.name, false), uri_encode(&p.value, false)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header value as SigV4 canonicalises it: trimmed, runs of whitespace collapsed to one space.
pub(crate) fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical headers block (each `name:value\n`) for the `signed` names, in the signed list's
/// (sorted) order; several headers of one name are joined with `,`. `None` if a signed header is
/// missing.
pub(crate) fn canonical_headers(headers: &[(&str, &str)], signed: &[&str]) -> Option<String> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_value(v))
            .collect();
        if values.is_empty() {
            return None;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Some(out)
}
