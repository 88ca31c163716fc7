//! The Prometheus text endpoint (`GET /metrics` on a loopback address): connections, messages and
//! bytes in and out, drops, authorization failures, TLS refusals by reason, shadow requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::program::{BrokerRequest, MetricsSnapshot};
use crate::engine::EngineHandle;
use crate::net::accept::{AcceptStats, Acceptor};
use crate::net::http::serve_connection;

/// What refused a request outside the engine (the MQTT authorizer counts its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalKind {
    /// A TLS handshake refused by the certificate registry; the label is the registry's code.
    Tls,
    /// A SigV4 signature refused (HTTPS and MQTT over WebSocket); the label is the reason.
    SigV4,
    /// An HTTPS data-plane request a policy denied; the label is the action (`iot:Publish`).
    HttpsPolicy,
}

impl RefusalKind {
    /// The metric's name, label and help text.
    fn metric(self) -> (&'static str, &'static str, &'static str) {
        match self {
            RefusalKind::Tls => (
                "aws_iot_tls_refusals_total",
                "reason",
                "TLS handshakes refused by the certificate registry.",
            ),
            RefusalKind::SigV4 => (
                "aws_iot_sigv4_refusals_total",
                "reason",
                "SigV4 signatures refused (HTTPS and MQTT over WebSocket).",
            ),
            RefusalKind::HttpsPolicy => (
                "aws_iot_https_authorization_refused_total",
                "action",
                "HTTPS data-plane requests denied by the caller's policies.",
            ),
        }
    }
}

/// Refusals counted by kind and label, shared by the listeners and the metrics endpoint.
pub type RefusalCounts = Arc<Mutex<BTreeMap<(RefusalKind, &'static str), u64>>>;

/// Counts one refusal of `kind` labelled `label`.
pub fn count_refusal(refusals: &RefusalCounts, kind: RefusalKind, label: &'static str) {
    *refusals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((kind, label))
        .or_default() += 1;
}

/// Renders the metrics text.
pub fn render(
    state: &MetricsSnapshot,
    refusals: &BTreeMap<(RefusalKind, &'static str), u64>,
    listeners: &[(&'static str, Arc<AcceptStats>)],
) -> String {
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
        "aws_iot_dropped_output_budget_total",
        "counter",
        "QoS 0 deliveries dropped: the receiver's unwritten output was over output_budget_bytes.",
        s.dropped_congested,
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
    for kind in [
        RefusalKind::Tls,
        RefusalKind::SigV4,
        RefusalKind::HttpsPolicy,
    ] {
        let (name, label, help) = kind.metric();
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for ((_, value), count) in refusals
            .range((kind, "")..)
            .take_while(|((k, _), _)| *k == kind)
        {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
        }
    }
    type Counter = fn(&AcceptStats) -> u64;
    let listener_metrics: [(&str, &str, Counter); 2] = [
        (
            "aws_iot_connections_over_cap_total",
            "Connections closed on accept: the listener was at listeners.max_connections.",
            AcceptStats::over_cap,
        ),
        (
            "aws_iot_accept_errors_total",
            "Failed accept calls (out of file descriptors or memory).",
            AcceptStats::errors,
        ),
    ];
    for (name, help, value) in listener_metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (listener, stats) in listeners {
            let _ = writeln!(out, "{name}{{listener=\"{listener}\"}} {}", value(stats));
        }
    }
    out
}

/// Serves `GET /metrics` until the listener task is dropped.
pub async fn serve(
    mut acceptor: Acceptor,
    engine: EngineHandle<BrokerRequest>,
    refusals: RefusalCounts,
    listeners: Vec<(&'static str, Arc<AcceptStats>)>,
) {
    let listeners = Arc::new(listeners);
    loop {
        let (stream, peer, permit) = acceptor.next().await;
        let engine = engine.clone();
        let refusals = refusals.clone();
        let listeners = listeners.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, move |request| {
                let engine = engine.clone();
                let refusals = refusals.clone();
                let listeners = listeners.clone();
                async move { answer(&request, &engine, &refusals, &listeners).await }
            })
            .await;
            drop(permit);
        });
    }
}

async fn answer(
    request: &Request<Incoming>,
    engine: &EngineHandle<BrokerRequest>,
    refusals: &RefusalCounts,
    listeners: &[(&'static str, Arc<AcceptStats>)],
) -> Response<Full<Bytes>> {
    let (status, body) = if request.method() != Method::GET || request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, String::new())
    } else {
        let counts = refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match engine.ask(|reply| BrokerRequest::Metrics { reply }).await {
            Some(snapshot) => (StatusCode::OK, render(&snapshot, &counts, listeners)),
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
