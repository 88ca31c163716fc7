//! The reconnecting device client (tokio): finds its broker (a fixed endpoint list, or a
//! [`Discovery`] such as Greengrass's), opens a transport, runs the [`ClientSession`] over it and
//! hands every event to the device's application, which acts on the session directly (publish,
//! subscribe, ack). When the connection ends it waits a jittered, growing delay and starts again;
//! the application's own timers keep running while it is offline.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::session::{ClientSession, CloseReason, SessionEvent};
use super::transport::{ByteStream, Endpoint, TransportError};
use crate::engine::now_ms;

/// The device's application: told every session event, woken at its own deadlines, and free to
/// publish, subscribe or acknowledge on the session it is given. Sans-IO like the session.
pub trait DeviceApp: Send {
    /// Something happened on the session (connected, a message, a delivery, closed, ...).
    fn on_event(&mut self, session: &mut ClientSession, event: SessionEvent, now_ms: u64);
    /// When the application wants [`on_timeout`](Self::on_timeout) next (Unix ms).
    fn poll_timeout(&self) -> Option<u64>;
    /// Its deadline came.
    fn on_timeout(&mut self, session: &mut ClientSession, now_ms: u64);
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[error("endpoint discovery: {0}")]
pub struct DiscoveryError(pub String);

/// Where the device's brokers are. A fixed list answers at once; Greengrass discovery asks the
/// cloud which cores the device may use.
pub trait Discovery: Send {
    /// The endpoints to try, in order.
    fn endpoints(
        &mut self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Endpoint>, DiscoveryError>> + Send + '_>>;
}

impl Discovery for Vec<Endpoint> {
    fn endpoints(
        &mut self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Endpoint>, DiscoveryError>> + Send + '_>> {
        let endpoints = self.clone();
        Box::pin(async move { Ok(endpoints) })
    }
}

/// The reconnect delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The first delay's ceiling.
    pub base: Duration,
    /// The largest delay.
    pub cap: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
        }
    }
}

/// Runs `app` on `session` until `shutdown` turns true (then DISCONNECT, as a clean device does).
/// Returns the session, with whatever it still holds unacknowledged.
pub async fn run<A: DeviceApp, D: Discovery>(
    mut session: ClientSession,
    mut discovery: D,
    app: &mut A,
    policy: ReconnectPolicy,
    mut shutdown: watch::Receiver<bool>,
) -> ClientSession {
    let seed =
        now_ms() ^ session.options().client_id.len() as u64 ^ fnv(&session.options().client_id);
    let mut backoff = Backoff::new(policy.base, policy.cap, seed);
    let mut next = 0usize;
    while !stopping(&shutdown) {
        let endpoint = match discovery.endpoints().await {
            Ok(list) if !list.is_empty() => {
                let index = next % list.len();
                list.into_iter().nth(index)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(client_id = session.options().client_id, %error, "discovery failed");
                None
            }
        };
        let connected = match endpoint {
            Some(endpoint) => match endpoint.open(now_ms() / 1000).await {
                Ok(stream) => serve_connection(&mut session, stream, app, &mut shutdown).await,
                Err(error) => {
                    log_transport_error(&session, &error);
                    false
                }
            },
            None => false,
        };
        if connected {
            backoff.reset();
        } else {
            next = next.wrapping_add(1);
        }
        if stopping(&shutdown) {
            break;
        }
        let delay = backoff.next_delay();
        idle(&mut session, app, Instant::now() + delay, &mut shutdown).await;
    }
    session
}

/// Shutdown was asked for, or whoever could ask is gone.
fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn log_transport_error(session: &ClientSession, error: &TransportError) {
    tracing::debug!(client_id = session.options().client_id, %error, "transport failed");
}

/// Offline until `until`: the application's timers still fire (its QoS 1 publishes queue).
async fn idle<A: DeviceApp>(
    session: &mut ClientSession,
    app: &mut A,
    until: Instant,
    shutdown: &mut watch::Receiver<bool>,
) {
    loop {
        let now = now_ms();
        let app_at = app.poll_timeout().map(|at| instant_at(at, now));
        let wake = app_at.map_or(until, |at| at.min(until));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = shutdown.changed() => return,
        }
        if app_at.is_some_and(|at| at <= Instant::now()) {
            app.on_timeout(session, now_ms());
            deliver_events(session, app);
        }
        if Instant::now() >= until || stopping(shutdown) {
            return;
        }
    }
}

/// The tokio instant of Unix time `at_ms`.
fn instant_at(at_ms: u64, now_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(at_ms.saturating_sub(now_ms))
}

/// Hands every pending event to the application; `Some(reason)` when the session closed.
fn deliver_events<A: DeviceApp>(session: &mut ClientSession, app: &mut A) -> Option<CloseReason> {
    let mut closed = None;
    while let Some(event) = session.poll_event() {
        if let SessionEvent::Closed(reason) = &event {
            closed = Some(reason.clone());
        }
        app.on_event(session, event, now_ms());
    }
    closed
}

/// One connection, until it ends. Returns whether the broker accepted the CONNECT.
async fn serve_connection<A: DeviceApp>(
    session: &mut ClientSession,
    mut stream: Box<dyn ByteStream>,
    app: &mut A,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    session.connect(now_ms());
    let mut accepted = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Events first (the application may publish), then write everything out.
        let before = session.stats().connects;
        let closed = deliver_events(session, app);
        accepted |= session.stats().connects > before;
        while let Some(bytes) = session.poll_transmit() {
            if stream.write_all(&bytes).await.is_err() {
                session.connection_lost();
                deliver_events(session, app);
                return accepted;
            }
        }
        if let Some(reason) = closed {
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
            tracing::debug!(client_id = session.options().client_id, %reason, "connection closed");
            return accepted;
        }
        let now = now_ms();
        let deadline = match (session.poll_timeout(), app.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = tokio::time::sleep_until(deadline.map_or_else(
            || Instant::now() + Duration::from_secs(3600),
            |at| instant_at(at, now),
        ));
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => session.connection_lost(),
                Ok(n) => session.handle_bytes(buf.get(..n).unwrap_or_default(), now_ms()),
            },
            () = sleep => {
                let now = now_ms();
                session.handle_timeout(now);
                if app.poll_timeout().is_some_and(|at| at <= now) {
                    app.on_timeout(session, now);
                }
            }
            _ = shutdown.changed() => session.disconnect(now_ms()),
        }
    }
}
