//! The dashboard's static files, compiled into the binary (no build step, nothing fetched at run
//! time): `GET /` redirects to `/dashboard/`.

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Method, Response, StatusCode};

use crate::net::http::Body;

/// (path, content type, contents).
const FILES: [(&str, &str, &str); 5] = [
    (
        "/dashboard/",
        "text/html; charset=utf-8",
        include_str!("../../../web/index.html"),
    ),
    (
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app.js"),
    ),
    (
        "/dashboard/sigv4.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/sigv4.js"),
    ),
    (
        "/dashboard/mqtt.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/mqtt.js"),
    ),
    (
        "/dashboard/style.css",
        "text/css; charset=utf-8",
        include_str!("../../../web/style.css"),
    ),
];

/// The asset at `path` (or the redirect from `/`), if it is one; `None` for every other path.
pub(super) fn serve(method: &Method, path: &str) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if path == "/" || path == "/dashboard" {
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::FOUND;
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/dashboard/"));
        return Some(response);
    }
    let path = if path == "/dashboard/index.html" {
        "/dashboard/"
    } else {
        path
    };
    let (_, content_type, text) = FILES.iter().find(|(p, _, _)| *p == path)?;
    let mut response = Response::new(Body::new(Bytes::from_static(text.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' wss:; img-src 'self' data:; style-src 'self'",
        ),
    );
    Some(response)
}
