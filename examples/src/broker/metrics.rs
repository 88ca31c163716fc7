//! The Prometheus text endpoint (`GET /metrics` on a loopback address): connections, messages and
//! bytes in and out, drops, authorization failures, TLS refusals by reason, shadow requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::program::{BrokerRequest, MetricsSnapshot};
use crate::engine::EngineHandle;

/// Authentication refusals counted by reason code: TLS handshakes refused by the registry under
/// the registry's codes, SigV4 signatures refused under codes starting with [`SIGV4_PREFIX`].
pub type RefusalCounts = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// The prefix of SigV4 refusal reasons in [`RefusalCounts`].
pub const SIGV4_PREFIX: &str = "sigv4_";

/// Counts one refusal.
pub fn count_refusal(refusals: &RefusalCounts, reason: &'static str) {
    *refusals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(reason)
        .or_default() += 1;
}

/// Renders the metrics text.
pub fn render(state: &MetricsSnapshot, refusals: &BTreeMap<&'static str, u64>) -> String {
    let s = &state.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "aws_iot_connections",
        "gauge",
        "Open MQTT connections.",
        state.connections as u64,
    );
    metric(
        "aws_iot_sessions",
        "gauge",
        "Live and persistent sessions.",
        state.sessions as u64,
    );
    metric(
        "aws_iot_retained_messages",
        "gauge",
        "Retained messages.",
        state.retained as u64,
    );
    metric(
        "aws_iot_connects_accepted_total",
        "counter",
        "CONNECTs accepted.",
        s.connects_accepted,
    );
    metric(
        "aws_iot_connects_refused_total",
        "counter",
        "CONNECTs refused.",
        s.connects_refused,
    );
    metric(
        "aws_iot_disconnects_total",
        "counter",
        "Connections ended.",
        s.disconnects,
    );
    metric(
        "aws_iot_messages_received_total",
        "counter",
        "PUBLISH packets received.",
        s.publishes_received,
    );
    metric(
        "aws_iot_messages_sent_total",
        "counter",
        "PUBLISH packets sent.",
        s.publishes_sent,
    );
    metric(
        "aws_iot_payload_bytes_received_total",
        "counter",
        "Payload bytes received.",
        s.payload_bytes_received,
    );
    metric(
        "aws_iot_payload_bytes_sent_total",
        "counter",
        "Payload bytes sent.",
        s.payload_bytes_sent,
    );
    metric(
        "aws_iot_dropped_queue_full_total",
        "counter",
        "Messages dropped: offline queue full.",
        s.dropped_queue_full,
    );
    metric(
        "aws_iot_dropped_qos0_evicted_total",
        "counter",
        "QoS 0 messages evicted from a full queue.",
        s.dropped_qos0_evicted,
    );
    metric(
        "aws_iot_dropped_rate_limited_total",
        "counter",
        "Messages dropped by the publish rate limit.",
        s.dropped_rate_limited,
    );
    metric(
        "aws_iot_dropped_expired_total",
        "counter",
        "Deliveries dropped unacknowledged after the retry period.",
        s.dropped_expired,
    );
    metric(
        "aws_iot_receive_denied_total",
        "counter",
        "Deliveries refused by iot:Receive.",
        s.receive_denied,
    );
    metric(
        "aws_iot_auth_failures_total",
        "counter",
        "Connect, publish and subscribe authorization failures.",
        s.auth_failures,
    );
    metric(
        "aws_iot_reserved_requests_total",
        "counter",
        "Requests to reserved-topic services.",
        s.reserved_requests,
    );
    metric(
        "aws_iot_sessions_expired_total",
        "counter",
        "Persistent sessions expired.",
        s.sessions_expired,
    );
    for &(name, value) in &state.counters {
        metric(
            &format!("aws_iot_{name}_total"),
            "counter",
            &format!("{name}."),
            value,
        );
    }
    let _ = writeln!(
        out,
        "# HELP aws_iot_tls_refusals_total TLS handshakes refused by the certificate registry.\n# TYPE aws_iot_tls_refusals_total counter"
    );
    for (reason, count) in refusals
        .iter()
        .filter(|(r, _)| !r.starts_with(SIGV4_PREFIX))
    {
        let _ = writeln!(
            out,
            "aws_iot_tls_refusals_total{{reason=\"{reason}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP aws_iot_sigv4_refusals_total SigV4 signatures refused (HTTPS and MQTT over WebSocket).\n# TYPE aws_iot_sigv4_refusals_total counter"
    );
    for (reason, count) in refusals {
        if let Some(reason) = reason.strip_prefix(SIGV4_PREFIX) {
            let _ = writeln!(
                out,
                "aws_iot_sigv4_refusals_total{{reason=\"{reason}\"}} {count}"
            );
        }
    }
    out
}

/// Serves `GET /metrics` until the listener task is dropped.
pub async fn serve(
    listener: TcpListener,
    engine: EngineHandle<BrokerRequest>,
    refusals: RefusalCounts,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let engine = engine.clone();
        let refusals = refusals.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let engine = engine.clone();
            let refusals = refusals.clone();
            async move { Ok::<_, Infallible>(answer(&request, &engine, &refusals).await) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: &Request<Incoming>,
    engine: &EngineHandle<BrokerRequest>,
    refusals: &RefusalCounts,
) -> Response<Full<Bytes>> {
    let (status, body) = if request.method() != Method::GET || request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, String::new())
    } else {
        let counts = refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match engine.ask(|reply| BrokerRequest::Metrics { reply }).await {
            Some(snapshot) => (StatusCode::OK, render(&snapshot, &counts)),
            None => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
