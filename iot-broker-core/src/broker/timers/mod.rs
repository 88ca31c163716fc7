//! What happens with the passing of time: CONNECT and keep-alive timeouts, expired persistent
//! sessions, deliveries unacknowledged too long, queues held back by the publish rate, and the
//! lifecycle `versionNumber` records of client ids long gone. Each is a deadline in the
//! broker's [`Deadlines`](super::deadlines::Deadlines), never a scan: `tick` costs what is due.

use std::sync::Arc;

use super::deadlines::{Timer, fired};
use super::{Broker, PRESENCE_RESET_MS, slot};
use crate::auth::Authorizer;
use crate::connection::{ConnectionId, Phase};
use crate::lifecycle::DisconnectReason;
use crate::persist::Persistence;
use crate::service::ReservedTopicService;
use crate::stats::SessionKey;

/// How often one `tick` takes what became due while it ran (only zero-length profile settings,
/// such as a session expiry of 0, make anything due at once); the rest waits for the next call,
/// which [`Broker::poll_timeout`] asks for at once.
const TICK_ROUNDS: usize = 3;

/// A session's kinds of timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SessionTimer {
    Expiry,
    InflightAge,
    RateHeld,
}

/// The entries one round of `tick` took, by owner.
#[derive(Debug, Default)]
struct Due {
    connections: Vec<(ConnectionId, u64)>,
    sessions: Vec<(SessionKey, SessionTimer, u64)>,
    presence: Vec<(Arc<str>, u64)>,
}

impl Due {
    fn is_empty(&self) -> bool {
        self.connections.is_empty() && self.sessions.is_empty() && self.presence.is_empty()
    }
}

/// When a connection silent since `last_activity_ms` times out: 1.5 times its keep-alive.
fn keep_alive_deadline(last_activity_ms: u64, keep_alive_ms: u64) -> u64 {
    last_activity_ms.saturating_add(keep_alive_ms.saturating_mul(3) / 2)
}

/// The start of the second after `now_ms`, when the publish rate has room again.
pub(super) fn next_second(now_ms: u64) -> u64 {
    (now_ms / 1000).saturating_add(1).saturating_mul(1000)
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    /// The earliest time (Unix epoch ms) at which [`tick`](Self::tick) has something to do, or
    /// `None` when nothing waits for time. Changes after every call that takes input; a program
    /// sleeps until the earliest of this and its next input, then ticks.
    ///
    /// ```
    /// use iot_broker_core::{Broker, auth::TransportInfo, profile::Profile};
    /// let mut broker = Broker::builder(Profile::standard()).build(0);
    /// assert_eq!(broker.poll_timeout(), None);
    /// let conn = broker.open(TransportInfo::default(), 1_000);
    /// // It must send CONNECT within the connect timeout.
    /// assert_eq!(broker.poll_timeout(), Some(1_000 + broker.profile().connect_timeout_ms));
    /// broker.tick(11_000);
    /// assert_eq!(broker.connection_count(), 0);
    /// # let _ = conn;
    /// ```
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Let time pass to `now_ms`: handle what is due by then (see
    /// [`poll_timeout`](Self::poll_timeout)). Closes connections that sent no CONNECT in time
    /// or were silent for 1.5 times their keep-alive (their wills fire), drops deliveries
    /// unacknowledged past the retry period, ends expired persistent sessions, sends what the
    /// publish rate held back and forgets the lifecycle version of client ids gone for an
    /// hour. Costs what is due, not what is held: calling it often (the old once a second) is
    /// harmless.
    pub fn tick(&mut self, now_ms: u64) {
        for _ in 0..TICK_ROUNDS {
            let due = self.take_due(now_ms);
            if due.is_empty() {
                return;
            }
            self.run_due(due, now_ms);
        }
    }

    fn take_due(&mut self, now_ms: u64) -> Due {
        let mut due = Due::default();
        while let Some((at, timer)) = self.timers.pop_due(now_ms) {
            match timer {
                Timer::Connection(conn) => due.connections.push((conn, at)),
                Timer::SessionExpiry(key) => due.sessions.push((key, SessionTimer::Expiry, at)),
                Timer::InflightAge(key) => {
                    due.sessions.push((key, SessionTimer::InflightAge, at));
                }
                Timer::RateHeld(key) => due.sessions.push((key, SessionTimer::RateHeld, at)),
                Timer::PresenceReset(client_id) => due.presence.push((client_id, at)),
            }
        }
        due
    }

    /// Handle one round's entries in the order a full scan would meet them: connections by id,
    /// then sessions by slot (expired ones removed before the others' queues move), then
    /// presence records.
    fn run_due(&mut self, mut due: Due, now_ms: u64) {
        due.connections.sort_unstable();
        for (conn, at) in due.connections {
            self.connection_timer(conn, at, now_ms);
        }
        due.sessions.sort_unstable();
        let mut expired = Vec::new();
        let mut pump = Vec::new();
        for group in due.sessions.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(key, _, _)) = group.first() else {
                continue;
            };
            match self.session_timers(key, group, now_ms) {
                SessionDue::Expired => expired.push(key),
                SessionDue::Pump => pump.push(key),
                SessionDue::Nothing => {}
            }
        }
        for key in expired {
            self.stats.sessions_expired += 1;
            self.remove_session(key);
        }
        for key in pump {
            self.pump(key, now_ms);
        }
        for (client_id, at) in due.presence {
            self.presence_timer(&client_id, at, now_ms);
        }
    }

    /// A connection's CONNECT timeout or keep-alive woke: close it if it is overdue, else arm
    /// the deadline its state gives now (keep-alive is re-armed here, lazily, from its last
    /// packet, not on every packet).
    fn connection_timer(&mut self, conn: ConnectionId, at: u64, now_ms: u64) {
        let connect_timeout = self.profile.connect_timeout_ms;
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        if !fired(&mut c.timer, at) {
            return;
        }
        let (overdue, deadline, reason) = match c.phase {
            Phase::AwaitingConnect => (
                now_ms.saturating_sub(c.opened_at_ms) >= connect_timeout,
                c.opened_at_ms.saturating_add(connect_timeout),
                DisconnectReason::ClientError,
            ),
            Phase::Live { .. } if c.keep_alive_ms > 0 => (
                now_ms.saturating_sub(c.last_activity_ms) >= c.keep_alive_ms.saturating_mul(3) / 2,
                keep_alive_deadline(c.last_activity_ms, c.keep_alive_ms),
                DisconnectReason::KeepAliveTimeout,
            ),
            Phase::Live { .. } => return,
        };
        if overdue {
            self.close(conn, reason, now_ms);
        } else {
            self.timers
                .arm(&mut c.timer, deadline, Timer::Connection(conn));
        }
    }

    /// A session's timers woke: whether it expired, or its queue may move now.
    fn session_timers(
        &mut self,
        key: SessionKey,
        woke: &[(SessionKey, SessionTimer, u64)],
        now_ms: u64,
    ) -> SessionDue {
        let expiry = self.profile.session_expiry_ms;
        let max_age = self.profile.max_inflight_age_ms;
        let Some(session) = slot(&mut self.sessions, key) else {
            return SessionDue::Nothing;
        };
        let (mut any, mut aged, mut rate) = (false, false, false);
        for &(_, kind, at) in woke {
            let timers = &mut session.timers;
            let live = match kind {
                SessionTimer::Expiry => fired(&mut timers.expiry, at),
                SessionTimer::InflightAge => fired(&mut timers.inflight_age, at),
                SessionTimer::RateHeld => fired(&mut timers.rate_held, at),
            };
            any |= live;
            aged |= live && kind == SessionTimer::InflightAge;
            rate |= live && kind == SessionTimer::RateHeld;
        }
        if !any {
            return SessionDue::Nothing;
        }
        match (session.conn, session.disconnected_at_ms, expiry) {
            (None, Some(at), Some(expiry)) => {
                if now_ms.saturating_sub(at) >= expiry {
                    return SessionDue::Expired;
                }
                let deadline = at.saturating_add(expiry);
                self.timers.arm(
                    &mut session.timers.expiry,
                    deadline,
                    Timer::SessionExpiry(key),
                );
                SessionDue::Nothing
            }
            (Some(_), _, _) => {
                if let (true, Some(max_age)) = (aged, max_age) {
                    let persistence = &mut self.persistence;
                    let client_id = &session.client_id;
                    let dropped = session.inflight.drop_older_than(now_ms, max_age, |i| {
                        if let Some(seq) = i.seq {
                            persistence.delete_message(client_id, seq);
                        }
                    });
                    self.stats.dropped_expired += dropped as u64;
                    if let Some(oldest) = session.inflight.oldest_sent_at() {
                        self.timers.arm(
                            &mut session.timers.inflight_age,
                            oldest.saturating_add(max_age),
                            Timer::InflightAge(key),
                        );
                    }
                }
                if (aged || rate) && !session.queue.is_empty() {
                    SessionDue::Pump
                } else {
                    SessionDue::Nothing
                }
            }
            _ => SessionDue::Nothing,
        }
    }

    /// A client id's presence record woke: forget it if it has been unused for an hour.
    fn presence_timer(&mut self, client_id: &Arc<str>, at: u64, now_ms: u64) {
        let Some(presence) = self.presence.get_mut(client_id) else {
            return;
        };
        if !fired(&mut presence.armed, at) {
            return;
        }
        if presence.live > 0 || self.by_client_id.contains_key(client_id) {
            return; // armed again when its last connection or session ends
        }
        if now_ms.saturating_sub(presence.last_seen_ms) >= PRESENCE_RESET_MS {
            self.presence.remove(client_id);
        } else {
            self.timers.arm(
                &mut presence.armed,
                presence.last_seen_ms.saturating_add(PRESENCE_RESET_MS),
                Timer::PresenceReset(Arc::clone(client_id)),
            );
        }
    }

    /// Arm `client_id`'s presence reset if nothing uses the record any more: no live
    /// connection, no session.
    pub(super) fn arm_presence(&mut self, client_id: &Arc<str>) {
        if self.by_client_id.contains_key(client_id) {
            return;
        }
        let Some(presence) = self.presence.get_mut(client_id) else {
            return;
        };
        if presence.live == 0 {
            self.timers.rearm(
                &mut presence.armed,
                presence.last_seen_ms.saturating_add(PRESENCE_RESET_MS),
                Timer::PresenceReset(Arc::clone(client_id)),
            );
        }
    }

    /// Arm `conn`'s keep-alive from its last packet (none when its keep-alive is 0), replacing
    /// its CONNECT timeout.
    pub(super) fn arm_keep_alive(&mut self, conn: ConnectionId) {
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        if c.keep_alive_ms > 0 {
            let deadline = keep_alive_deadline(c.last_activity_ms, c.keep_alive_ms);
            self.timers
                .rearm(&mut c.timer, deadline, Timer::Connection(conn));
        } else {
            self.timers.disarm(&mut c.timer, Timer::Connection(conn));
        }
    }
}

/// What a session's woken timers call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionDue {
    Nothing,
    Expired,
    Pump,
}

#[cfg(test)]
mod tests;
