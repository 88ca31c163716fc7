//! Network connections as the broker sees them: an id, where it is in the CONNECT handshake,
//! its keep-alive clock and publish-rate window, its cached authorization answers, and what the
//! broker wants done with it ([`Output`]).

use std::fmt;
use std::sync::Arc;

use mqtt_codec::SharedPacket;

use crate::auth::TransportInfo;
use crate::auth_cache::AuthCache;
use crate::lifecycle::DisconnectReason;
use crate::message::Message;
use crate::reserved::PublishTarget;
use crate::stats::SessionKey;

/// One network connection, named by the broker when the program opens it
/// ([`Broker::open`](crate::Broker::open)); ids are never reused while the broker runs. Only the
/// broker makes them.
///
/// ```
/// use iot_broker_core::{Broker, auth::TransportInfo, profile::Profile};
/// let mut broker = Broker::builder(Profile::standard()).build(0);
/// let (a, b) = (broker.open(TransportInfo::default(), 0), broker.open(TransportInfo::default(), 0));
/// assert_ne!(a, b);
/// assert_eq!(a.to_string(), a.get().to_string()); // for logs
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The number behind the id, for logs and metrics.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What the broker wants the program to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an output is an instruction: send the packet or close the connection"]
pub enum Output {
    /// Write `packet` to `conn`.
    Send {
        /// The connection.
        conn: ConnectionId,
        /// The packet; a PUBLISH's topic and payload are shared with every other copy.
        packet: SharedPacket,
    },
    /// Close `conn` after writing what was sent to it before; the broker has forgotten it.
    Close {
        /// The connection.
        conn: ConnectionId,
        /// Why (AWS's `disconnectReason`).
        reason: DisconnectReason,
    },
}

#[derive(Debug)]
pub(crate) enum Phase {
    /// Opened, CONNECT not yet read.
    AwaitingConnect,
    /// CONNECT accepted: bound to a session.
    Live {
        session: SessionKey,
        client_id: Arc<str>,
    },
}

/// Fixed one-second windows of PUBLISH counts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RateWindow {
    second: u64,
    count: u32,
}

impl RateWindow {
    /// Count one PUBLISH at `now_ms` if the window has room under `limit`.
    pub fn try_take(&mut self, now_ms: u64, limit: Option<u32>) -> bool {
        let Some(limit) = limit else { return true };
        let second = now_ms / 1000;
        if second != self.second {
            self.second = second;
            self.count = 0;
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }

    /// Whether the window at `now_ms` has room.
    pub fn has_room(&self, now_ms: u64, limit: Option<u32>) -> bool {
        match limit {
            None => true,
            Some(limit) => now_ms / 1000 != self.second || self.count < limit,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Connection {
    pub transport: TransportInfo,
    pub phase: Phase,
    pub opened_at_ms: u64,
    /// Enforced keep-alive in ms; 0 = none.
    pub keep_alive_ms: u64,
    pub last_activity_ms: u64,
    /// The will, with where its topic goes (judged once, at CONNECT).
    pub will: Option<(Message, PublishTarget)>,
    /// `sessionIdentifier` and `versionNumber` of this connection's lifecycle events.
    pub session_identifier: String,
    pub version: u64,
    pub rate: RateWindow,
    /// The deadline this connection has armed in the broker's timer set: its CONNECT timeout
    /// while awaiting CONNECT, then its keep-alive (re-armed lazily from `last_activity_ms`).
    pub timer: Option<u64>,
    /// The authorizer's answers about it, per topic.
    pub auth_cache: AuthCache,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_resets_each_second() {
        let mut w = RateWindow::default();
        assert!(w.try_take(1000, Some(2)));
        assert!(w.try_take(1500, Some(2)));
        assert!(!w.try_take(1999, Some(2)));
        assert!(!w.has_room(1999, Some(2)));
        assert!(w.has_room(2000, Some(2)));
        assert!(w.try_take(2000, Some(2)));
        assert!(w.try_take(5, None));
    }
}
