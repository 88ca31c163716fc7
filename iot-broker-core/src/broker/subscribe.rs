//! SUBSCRIBE and UNSUBSCRIBE: authorization, the per-connection limit, retained messages for the
//! new subscriptions, and the subscription lifecycle events.

use bytes::Bytes;
use mqtt_codec::{
    Packet, QoS, ReturnCodes, SubAck, Subscribe, SubscribeReturnCode, UnsubAck, Unsubscribe,
    Utf8Bytes, split_shared,
};

use super::{Broker, slot};
use crate::auth::{Authorizer, Client};
use crate::auth_cache::topic_hash;
use crate::connection::{ConnectionId, Phase};
use crate::lifecycle::{self, DisconnectReason};
use crate::message::Message;
use crate::persist::Persistence;
use crate::profile::DeniedSubscribe;
use crate::reserved::{SubscribeTarget, classify_subscribe};
use crate::service::ReservedTopicService;
use crate::stats::SessionKey;
use crate::topic::has_wildcard;

/// What to do with one filter of a SUBSCRIBE.
enum Verdict {
    Grant(Utf8Bytes, QoS),
    Refuse,
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    pub(super) fn on_subscribe(
        &mut self,
        conn: ConnectionId,
        key: SessionKey,
        subscribe: Subscribe<Bytes>,
        now_ms: u64,
    ) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        let Phase::Live { client_id, .. } = &connection.phase else {
            return;
        };
        let client_id = client_id.clone();
        let client = Client {
            conn,
            client_id: &client_id,
            principal: connection.transport.principal.as_deref(),
            remote_addr: connection.transport.remote_addr.as_deref(),
        };
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };

        // Judge every filter before acting on any, so a refusal that closes the connection
        // leaves the session as it was.
        let mut verdicts = Vec::with_capacity(subscribe.filters.len());
        let mut held = session.subscriptions.len();
        let mut over_limit = false;
        for (filter, qos) in subscribe.filters.iter_shared() {
            if self.profile.reserved_namespace
                && classify_subscribe(&filter) == SubscribeTarget::Forbidden
            {
                return self.close(conn, DisconnectReason::ForbiddenAccess, now_ms);
            }
            if !self.authorizer.subscribe(&client, &filter) {
                self.stats.auth_failures += 1;
                match self.profile.denied_subscribe {
                    DeniedSubscribe::Disconnect => {
                        return self.close(conn, DisconnectReason::AuthError, now_ms);
                    }
                    DeniedSubscribe::Failure => {
                        verdicts.push(Verdict::Refuse);
                        continue;
                    }
                }
            }
            let known = session.subscriptions.contains_key(filter.as_str())
                || verdicts
                    .iter()
                    .any(|v| matches!(v, Verdict::Grant(f, _) if *f == filter));
            if !known {
                if self
                    .profile
                    .max_subscriptions_per_connection
                    .is_some_and(|max| held >= max)
                {
                    over_limit = true;
                    verdicts.push(Verdict::Refuse);
                    continue;
                }
                held += 1;
            }
            verdicts.push(Verdict::Grant(filter, qos));
        }

        let mut codes = Vec::with_capacity(verdicts.len());
        let mut granted: Vec<(Utf8Bytes, QoS)> = Vec::new();
        for verdict in verdicts {
            match verdict {
                Verdict::Grant(filter, qos) if self.router.subscribe(&filter, key, qos).is_ok() => {
                    session.subscriptions.insert(filter.as_str().into(), qos);
                    codes.push(SubscribeReturnCode::Success(qos));
                    granted.push((filter, qos));
                }
                _ => codes.push(SubscribeReturnCode::Failure),
            }
        }
        if session.persistent && !granted.is_empty() {
            self.persistence
                .put_session(&session.client_id, &session.record());
        }
        if let Ok(return_codes) = ReturnCodes::from_codes(&codes) {
            self.send(
                conn,
                Packet::SubAck(SubAck {
                    packet_id: subscribe.packet_id,
                    return_codes,
                }),
            );
        }
        for (filter, qos) in &granted {
            self.send_retained(key, filter, *qos, now_ms);
        }
        if !granted.is_empty() && self.profile.lifecycle_events {
            let topics: Vec<&str> = granted.iter().map(|(f, _)| f.as_str()).collect();
            if let Some(payload) = self.event_payload(conn, |ctx, _| {
                lifecycle::subscriptions(ctx, now_ms, "subscribed", &topics)
            }) {
                self.emit_event("subscribed", &client_id, payload, now_ms);
            }
        }
        if over_limit {
            // AWS: the filters past the limit are refused and the connection closed.
            self.close(conn, DisconnectReason::ClientError, now_ms);
        }
    }

    /// The retained messages a new subscription to `filter` receives (RETAIN=1).
    fn send_retained(&mut self, key: SessionKey, filter: &str, granted: QoS, now_ms: u64) {
        if split_shared(filter).is_some() {
            return; // shared subscriptions never get retained messages on subscribe
        }
        let found: Vec<Message> = if self.profile.retained_to_wildcards {
            self.retained
                .matching(filter, self.profile.multi_level_rule)
                .into_iter()
                .map(|(_, r)| r.message.clone())
                .collect()
        } else if has_wildcard(filter) {
            Vec::new() // AWS: only a filter equal to the topic gets its retained message
        } else {
            self.retained
                .get(filter)
                .map(|r| r.message.clone())
                .into_iter()
                .collect()
        };
        for message in found {
            let delivery = Message {
                qos: message.qos.min(granted),
                retain: true,
                ..message
            };
            let hash = topic_hash(&delivery.topic);
            self.deliver(key, delivery, hash, now_ms);
        }
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        conn: ConnectionId,
        key: SessionKey,
        unsubscribe: Unsubscribe<Bytes>,
        now_ms: u64,
    ) {
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };
        let filters: Vec<Utf8Bytes> = unsubscribe.filters.iter_shared().collect();
        let mut changed = false;
        for filter in &filters {
            if session.subscriptions.remove(filter.as_str()).is_some() {
                self.router.unsubscribe(filter, &key);
                changed = true;
            }
        }
        if session.persistent && changed {
            self.persistence
                .put_session(&session.client_id, &session.record());
        }
        let client_id = session.client_id.clone();
        self.send(conn, Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id)));
        if self.profile.lifecycle_events {
            let topics: Vec<&str> = filters.iter().map(Utf8Bytes::as_str).collect();
            if let Some(payload) = self.event_payload(conn, |ctx, _| {
                lifecycle::subscriptions(ctx, now_ms, "unsubscribed", &topics)
            }) {
                self.emit_event("unsubscribed", &client_id, payload, now_ms);
            }
        }
    }
}
