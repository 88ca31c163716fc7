//! AWS IoT lifecycle events: why a connection ended ([`DisconnectReason`], the one part a
//! program sees), and the JSON the broker publishes on `$aws/events/presence/...` and
//! `$aws/events/subscriptions/...` (spec/aws-iot.md, "Lifecycle events").

use core::fmt::{self, Write as _};

/// Why a connection ended, with AWS's `disconnectReason` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT (the only end without a will).
    ClientInitiated,
    /// A protocol violation: malformed packet, second CONNECT, oversize payload.
    ClientError,
    /// The transport closed or failed.
    ConnectionLost,
    /// Another connection took the client id over.
    DuplicateClientId,
    /// Silence for 1.5 times the keep-alive.
    KeepAliveTimeout,
    /// The authorizer refused an action.
    AuthError,
    /// An operation on a reserved topic that AWS does not open to clients.
    ForbiddenAccess,
    /// The broker is shutting down.
    ServerInitiated,
    /// The owner asked for it (AWS's DeleteConnection API).
    ApiInitiated,
    /// The connection broke a rate limit.
    Throttled,
    /// The broker failed.
    ServerError,
}

impl DisconnectReason {
    /// AWS's name for it, as in the `disconnected` event.
    ///
    /// ```
    /// use iot_broker_core::lifecycle::DisconnectReason;
    /// assert_eq!(DisconnectReason::KeepAliveTimeout.as_str(), "MQTT_KEEP_ALIVE_TIMEOUT");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientInitiated => "CLIENT_INITIATED_DISCONNECT",
            DisconnectReason::ClientError => "CLIENT_ERROR",
            DisconnectReason::ConnectionLost => "CONNECTION_LOST",
            DisconnectReason::DuplicateClientId => "DUPLICATE_CLIENTID",
            DisconnectReason::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            DisconnectReason::AuthError => "AUTH_ERROR",
            DisconnectReason::ForbiddenAccess => "FORBIDDEN_ACCESS",
            DisconnectReason::ServerInitiated => "SERVER_INITIATED_DISCONNECT",
            DisconnectReason::ApiInitiated => "API_INITIATED_DISCONNECT",
            DisconnectReason::Throttled => "THROTTLED",
            DisconnectReason::ServerError => "SERVER_ERROR",
        }
    }

    /// Whether the will is published when a live connection ends this way.
    pub const fn publishes_will(self) -> bool {
        !matches!(self, DisconnectReason::ClientInitiated)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity fields every event of one connection shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventContext<'a> {
    /// The client id.
    pub(crate) client_id: &'a str,
    /// A dashed UUID, one per connection.
    pub(crate) session_identifier: &'a str,
    /// The certificate id or other principal, if known.
    pub(crate) principal: Option<&'a str>,
    /// The peer's IP address, if known.
    pub(crate) ip_address: Option<&'a str>,
}

/// Whether `client_id` gets lifecycle events (AWS sends none for ids with `#` or `+`, which could
/// not be topic levels).
pub(crate) fn has_events(client_id: &str) -> bool {
    !client_id.contains(['#', '+']) && !client_id.is_empty()
}

/// `$aws/events/presence/{connected|disconnected|connect_failed}/{clientId}` or
/// `$aws/events/subscriptions/{subscribed|unsubscribed}/{clientId}`.
pub(crate) fn event_topic(event_type: &str, client_id: &str) -> String {
    let family = match event_type {
        "subscribed" | "unsubscribed" => "subscriptions",
        _ => "presence",
    };
    format!("$aws/events/{family}/{event_type}/{client_id}")
}

/// The `connected` event.
pub(crate) fn connected(ctx: &EventContext<'_>, timestamp_ms: u64, version: u64) -> String {
    let mut out = head(ctx, timestamp_ms, "connected");
    ip(&mut out, ctx);
    let _ = write!(out, ",\"versionNumber\":{version}}}");
    out
}

/// The `disconnected` event.
pub(crate) fn disconnected(
    ctx: &EventContext<'_>,
    timestamp_ms: u64,
    reason: DisconnectReason,
    version: u64,
) -> String {
    let mut out = head(ctx, timestamp_ms, "disconnected");
    let _ = write!(
        out,
        ",\"clientInitiatedDisconnect\":{},\"disconnectReason\":\"{}\",\"versionNumber\":{version}}}",
        reason == DisconnectReason::ClientInitiated,
        reason.as_str()
    );
    out
}

/// The `connect_failed` event (`connectFailureReason` is `AUTHORIZATION_FAILED` for a refused
/// CONNECT).
pub(crate) fn connect_failed(
    ctx: &EventContext<'_>,
    timestamp_ms: u64,
    failure_reason: &str,
) -> String {
    let mut out = format!(
        "{{\"clientId\":{},\"timestamp\":{timestamp_ms},\"eventType\":\"connect_failed\",\"connectFailureReason\":{}",
        Json(ctx.client_id),
        Json(failure_reason)
    );
    if let Some(principal) = ctx.principal {
        let _ = write!(out, ",\"principalIdentifier\":{}", Json(principal));
    }
    let _ = write!(
        out,
        ",\"sessionIdentifier\":{}",
        Json(ctx.session_identifier)
    );
    ip(&mut out, ctx);
    out.push('}');
    out
}

/// The `subscribed` or `unsubscribed` event for the filters of one packet.
pub(crate) fn subscriptions<S: AsRef<str>>(
    ctx: &EventContext<'_>,
    timestamp_ms: u64,
    event_type: &str,
    topics: &[S],
) -> String {
    let mut out = head(ctx, timestamp_ms, event_type);
    out.push_str(",\"topics\":[");
    for (i, topic) in topics.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", Json(topic.as_ref()));
    }
    out.push_str("]}");
    out
}

fn head(ctx: &EventContext<'_>, timestamp_ms: u64, event_type: &str) -> String {
    let mut out = format!(
        "{{\"clientId\":{},\"timestamp\":{timestamp_ms},\"eventType\":{},\"sessionIdentifier\":{}",
        Json(ctx.client_id),
        Json(event_type),
        Json(ctx.session_identifier)
    );
    if let Some(principal) = ctx.principal {
        let _ = write!(out, ",\"principalIdentifier\":{}", Json(principal));
    }
    out
}

fn ip(out: &mut String, ctx: &EventContext<'_>) {
    if let Some(ip) = ctx.ip_address {
        let _ = write!(out, ",\"ipAddress\":{}", Json(ip));
    }
}

/// A string as a JSON string literal.
struct Json<'a>(&'a str);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// Makes the per-connection `sessionIdentifier` UUIDs: version-4-shaped, from a seed the program
/// draws at random and a counter, so they are unique per broker run and reproducible in tests.
#[derive(Debug, Clone)]
pub(crate) struct SessionIds {
    state: u64,
}

impl SessionIds {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> SessionIds {
        SessionIds { state: seed }
    }

    /// The next identifier.
    pub(crate) fn next_id(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x4000; // version 4
        let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }

    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example identity.
    fn aws_example() -> EventContext<'static> {
        EventContext {
            client_id: "186b5",
            session_identifier: "00000000-0000-0000-0000-000000000000",
            principal: Some("12345678901234567890123456789012"),
            ip_address: Some("192.0.2.0"),
        }
    }

    #[test]
    fn topics() {
        assert_eq!(
            event_topic("connected", "car1"),
            "$aws/events/presence/connected/car1"
        );
        assert_eq!(
            event_topic("subscribed", "car1"),
            "$aws/events/subscriptions/subscribed/car1"
        );
    }

    #[test]
    fn connected_as_aws_documents_it() {
        assert_eq!(
            connected(&aws_example(), 1573002230757, 0),
            r#"{"clientId":"186b5","timestamp":1573002230757,"eventType":"connected","sessionIdentifier":"00000000-0000-0000-0000-000000000000","principalIdentifier":"12345678901234567890123456789012","ipAddress":"192.0.2.0","versionNumber":0}"#
        );
    }

    #[test]
    fn disconnected_as_aws_documents_it() {
        assert_eq!(
            disconnected(
                &aws_example(),
                1573002340451,
                DisconnectReason::ClientInitiated,
                0
            ),
            r#"{"clientId":"186b5","timestamp":1573002340451,"eventType":"disconnected","sessionIdentifier":"00000000-0000-0000-0000-000000000000","principalIdentifier":"12345678901234567890123456789012","clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT","versionNumber":0}"#
        );
    }

    #[test]
    fn subscriptions_escape_topics() {
        let ctx = EventContext {
            client_id: "c",
            session_identifier: "s",
            principal: None,
            ip_address: None,
        };
        assert_eq!(
            subscriptions(&ctx, 5, "subscribed", &["foo/bar", "dog/\"cat\""]),
            r#"{"clientId":"c","timestamp":5,"eventType":"subscribed","sessionIdentifier":"s","topics":["foo/bar","dog/\"cat\""]}"#
        );
    }

    #[test]
    fn session_ids_are_distinct_version_4_uuids() {
        let mut ids = SessionIds::new(7);
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
