//! What happens with the passing of time: CONNECT and keep-alive timeouts, expired persistent
//! sessions, deliveries unacknowledged too long, and queues held back by the publish rate.

use super::{Broker, PRESENCE_RESET_MS};
use crate::auth::Authorizer;
use crate::connection::{ConnectionId, Phase};
use crate::lifecycle::DisconnectReason;
use crate::persist::Persistence;
use crate::service::ReservedTopicService;
use crate::stats::SessionKey;

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    /// Let time pass to `now_ms`: call it about once a second. Closes connections that sent no
    /// CONNECT in time or were silent for 1.5 times their keep-alive (their wills fire), drops
    /// deliveries unacknowledged past the retry period, ends expired persistent sessions and
    /// sends what the publish rate held back.
    pub fn tick(&mut self, now_ms: u64) {
        let connect_timeout = self.profile.connect_timeout_ms;
        let overdue: Vec<(ConnectionId, DisconnectReason)> = self
            .connections
            .iter()
            .filter_map(|(id, c)| match c.phase {
                Phase::AwaitingConnect
                    if now_ms.saturating_sub(c.opened_at_ms) >= connect_timeout =>
                {
                    Some((*id, DisconnectReason::ClientError))
                }
                Phase::Live { .. }
                    if c.keep_alive_ms > 0
                        && now_ms.saturating_sub(c.last_activity_ms)
                            >= c.keep_alive_ms.saturating_mul(3) / 2 =>
                {
                    Some((*id, DisconnectReason::KeepAliveTimeout))
                }
                _ => None,
            })
            .collect();
        for (conn, reason) in overdue {
            self.close(conn, reason, now_ms);
        }

        let expiry = self.profile.session_expiry_ms;
        let max_age = self.profile.max_inflight_age_ms;
        let mut expired = Vec::new();
        let mut live = Vec::new();
        for (index, session) in self.sessions.iter_mut().enumerate() {
            let Some(session) = session else { continue };
            let key = SessionKey(u32::try_from(index).unwrap_or(u32::MAX));
            match (session.conn, session.disconnected_at_ms, expiry) {
                (None, Some(at), Some(expiry)) if now_ms.saturating_sub(at) >= expiry => {
                    expired.push(key);
                }
                (Some(_), _, _) => {
                    if let Some(max_age) = max_age {
                        let before = session.inflight.len();
                        let persistence = &mut self.persistence;
                        let client_id = session.client_id.clone();
                        session.inflight.retain(|i| {
                            let keep = now_ms.saturating_sub(i.sent_at_ms) < max_age;
                            if let (false, Some(seq)) = (keep, i.seq) {
                                persistence.delete_message(&client_id, seq);
                            }
                            keep
                        });
                        self.stats.dropped_expired += (before - session.inflight.len()) as u64;
                    }
                    if !session.queue.is_empty() {
                        live.push(key);
                    }
                }
                _ => {}
            }
        }
        for key in expired {
            self.stats.sessions_expired += 1;
            self.remove_session(key);
        }
        for key in live {
            self.pump(key, now_ms);
        }

        let sessions = &self.by_client_id;
        self.presence.retain(|client_id, p| {
            p.live > 0
                || now_ms.saturating_sub(p.last_seen_ms) < PRESENCE_RESET_MS
                || sessions.contains_key(client_id)
        });
    }
}
