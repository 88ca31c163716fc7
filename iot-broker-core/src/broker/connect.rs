//! CONNECT, takeover, and the end of a connection (will, lifecycle event, session clean-up).

use std::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{Connect, ConnectReturnCode, Packet, PubRel, Publish, QoS, QosPid, Utf8Bytes};

use super::deadlines::Timer;
use super::publish::publish_target;
use super::{Broker, PRESENCE_RESET_MS, Presence, slot};
use crate::auth::{Authorizer, Client, ConnectDenied, ConnectRequest};
use crate::connection::{ConnectionId, Output, Phase};
use crate::lifecycle::{self, DisconnectReason, EventContext};
use crate::message::Message;
use crate::persist::Persistence;
use crate::profile::DeniedConnect;
use crate::reserved::PublishTarget;
use crate::service::ReservedTopicService;
use crate::session::Session;
use crate::stats::SessionKey;

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    pub(super) fn on_connect(
        &mut self,
        conn: ConnectionId,
        connect: Connect<Utf8Bytes, Bytes>,
        now_ms: u64,
    ) {
        let client_id: Arc<str> = if connect.client_id.is_empty() {
            if !connect.clean_session {
                // MQTT-3.1.3-8: an empty id needs a clean session.
                return self.refuse_with_code(conn, ConnectReturnCode::IdentifierRejected, now_ms);
            }
            Arc::from(format!("auto-{}", self.ids.next_id()))
        } else {
            Arc::from(connect.client_id.as_str())
        };
        if self.profile.reserved_namespace && client_id.starts_with('$') {
            return self.refuse_with_code(conn, ConnectReturnCode::IdentifierRejected, now_ms);
        }
        // The will's topic is judged here, once: its publication at the end reuses the verdict.
        let will = connect.will.map(|w| {
            let target = publish_target(&self.profile, &w.topic);
            let will = Message {
                topic: w.topic,
                payload: w.payload,
                qos: w.qos,
                retain: w.retain,
            };
            (will, target)
        });
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        let transport = connection.transport.clone();
        let client = Client {
            conn,
            client_id: &client_id,
            principal: transport.principal.as_deref(),
            remote_addr: transport.remote_addr.as_deref(),
        };
        let request = ConnectRequest {
            client,
            username: connect.username.as_deref(),
            password: connect.password.as_deref(),
            clean_session: connect.clean_session,
            will_topic: will.as_ref().map(|(w, _)| w.topic.as_str()),
        };
        let mut decision = self.authorizer.connect(&request);
        if let (Ok(()), Some((will, target))) = (decision, &will) {
            if *target == PublishTarget::Forbidden
                || !self.authorizer.publish(&client, &will.topic, will.retain)
            {
                decision = Err(ConnectDenied::NotAuthorized);
            }
        }
        if let Err(denied) = decision {
            return self.refuse_denied(conn, &client_id, denied, now_ms);
        }

        // A live connection with this id is taken over: closed, its will published.
        let existing = self.by_client_id.get(&client_id).copied();
        if let Some(old) = existing
            .and_then(|key| slot(&mut self.sessions, key))
            .and_then(|s| s.conn)
        {
            self.close(old, DisconnectReason::DuplicateClientId, now_ms);
        }
        // Closing may have removed a clean session: look again.
        let existing = self.by_client_id.get(&client_id).copied();
        let (key, session_present) = match existing {
            Some(key) if !connect.clean_session => (key, true),
            other => {
                if let Some(key) = other {
                    self.remove_session(key);
                }
                let session = Session::new(Arc::clone(&client_id), !connect.clean_session);
                if session.persistent {
                    self.persistence.put_session(&client_id, &session.record());
                }
                (self.insert_session(session), false)
            }
        };
        if let Some(session) = slot(&mut self.sessions, key) {
            session.conn = Some(conn);
            session.disconnected_at_ms = None;
            session.output_congested = false;
            self.timers
                .disarm(&mut session.timers.expiry, Timer::SessionExpiry(key));
        }

        let version = self.next_version(&client_id, session_present, now_ms);
        let session_identifier = self.ids.next_id();
        let keep_alive = self.profile.keep_alive.effective(connect.keep_alive);
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        connection.phase = Phase::Live {
            session: key,
            client_id: Arc::clone(&client_id),
        };
        connection.keep_alive_ms = u64::from(keep_alive) * 1000;
        connection.last_activity_ms = now_ms;
        connection.will = will;
        connection.session_identifier = session_identifier;
        connection.version = version;
        self.arm_keep_alive(conn);
        self.stats.connects_accepted += 1;
        self.send_connack(conn, session_present, ConnectReturnCode::Accepted);

        if self.profile.lifecycle_events {
            if let Some(payload) = self.event_payload(conn, |ctx, version| {
                lifecycle::connected(ctx, now_ms, version)
            }) {
                self.emit_event("connected", &client_id, payload, now_ms);
            }
        }
        self.resend_inflight(key, conn, now_ms);
        self.pump(key, now_ms);
    }

    /// The lifecycle `versionNumber` for a new connection of `client_id`.
    fn next_version(&mut self, client_id: &Arc<str>, resumed: bool, now_ms: u64) -> u64 {
        let Some(presence) = self.presence.get_mut(client_id) else {
            self.presence.insert(
                Arc::clone(client_id),
                Presence {
                    version: 0,
                    live: 1,
                    last_seen_ms: now_ms,
                    armed: None,
                },
            );
            return 0;
        };
        let version = if presence.live > 0
            || resumed
            || now_ms.saturating_sub(presence.last_seen_ms) < PRESENCE_RESET_MS
        {
            presence.version + 1
        } else {
            0
        };
        presence.version = version;
        presence.live += 1;
        presence.last_seen_ms = now_ms;
        if presence.armed.is_some() {
            // In use again: its reset waits for the end of this connection.
            self.timers.disarm(
                &mut presence.armed,
                Timer::PresenceReset(Arc::clone(client_id)),
            );
        }
        version
    }

    /// Refuse a CONNECT with a CONNACK return code (both profiles: client id rules).
    fn refuse_with_code(&mut self, conn: ConnectionId, code: ConnectReturnCode, now_ms: u64) {
        self.stats.connects_refused += 1;
        self.send_connack(conn, false, code);
        self.close(conn, DisconnectReason::ClientError, now_ms);
    }

    /// Refuse a CONNECT the authorizer denied, as the profile says.
    fn refuse_denied(
        &mut self,
        conn: ConnectionId,
        client_id: &str,
        denied: ConnectDenied,
        now_ms: u64,
    ) {
        self.stats.connects_refused += 1;
        self.stats.auth_failures += 1;
        match self.profile.denied_connect {
            DeniedConnect::ConnAckCode => {
                let code = match denied {
                    ConnectDenied::BadCredentials => ConnectReturnCode::BadUsernameOrPassword,
                    ConnectDenied::NotAuthorized => ConnectReturnCode::NotAuthorized,
                };
                self.send_connack(conn, false, code);
            }
            DeniedConnect::CloseWithoutConnAck => {
                if self.profile.lifecycle_events {
                    let session_identifier = self.ids.next_id();
                    let payload = self.connections.get(&conn).map(|c| {
                        let ctx = EventContext {
                            client_id,
                            session_identifier: &session_identifier,
                            principal: c.transport.principal.as_deref(),
                            ip_address: c.transport.remote_addr.as_deref(),
                        };
                        lifecycle::connect_failed(&ctx, now_ms, "AUTHORIZATION_FAILED")
                    });
                    if let Some(payload) = payload {
                        self.emit_event("connect_failed", client_id, payload, now_ms);
                    }
                }
            }
        }
        self.close(conn, DisconnectReason::AuthError, now_ms);
    }

    /// End `conn`: tell the program to close it, publish its will unless the client said
    /// DISCONNECT, announce it, and end or park its session.
    pub(super) fn close(&mut self, conn: ConnectionId, reason: DisconnectReason, now_ms: u64) {
        let payload = if self.profile.lifecycle_events {
            self.event_payload(conn, |ctx, version| {
                lifecycle::disconnected(ctx, now_ms, reason, version)
            })
        } else {
            None
        };
        let Some(mut connection) = self.connections.remove(&conn) else {
            return;
        };
        self.timers
            .disarm(&mut connection.timer, Timer::Connection(conn));
        // Keyed by connection: a takeover's older connection never touches the newer one's state.
        self.authorizer.forget(conn);
        self.stats.disconnects += 1;
        self.outputs.push_back(Output::Close { conn, reason });
        let Phase::Live {
            session: key,
            client_id,
        } = connection.phase
        else {
            return;
        };
        if let Some(presence) = self.presence.get_mut(&client_id) {
            presence.live = presence.live.saturating_sub(1);
            presence.last_seen_ms = now_ms;
        }
        let persistent = match slot(&mut self.sessions, key) {
            Some(session) if session.conn == Some(conn) => {
                session.conn = None;
                session.disconnected_at_ms = Some(now_ms);
                session.output_congested = false;
                // In-flight age and the publish rate run only while connected.
                let timers = &mut session.timers;
                self.timers
                    .disarm(&mut timers.inflight_age, Timer::InflightAge(key));
                self.timers
                    .disarm(&mut timers.rate_held, Timer::RateHeld(key));
                session.persistent
            }
            _ => true, // not this connection's session any more: leave it alone
        };
        if !persistent {
            self.remove_session(key);
        } else if let Some(session) = slot(&mut self.sessions, key) {
            if session.conn.is_none() {
                self.persistence
                    .put_session(&session.client_id, &session.record());
                self.arm_expiry(key);
            }
        }
        self.arm_presence(&client_id);
        if reason.publishes_will() {
            if let Some((will, target)) = connection.will {
                // A will on a shadow topic reaches subscribers, not the shadow service.
                self.ingest(will, target, Some(&client_id), false, now_ms);
            }
        }
        if let Some(payload) = payload {
            self.emit_event("disconnected", &client_id, payload, now_ms);
        }
    }

    /// Build an event for live connection `conn` from its identity fields.
    pub(super) fn event_payload(
        &self,
        conn: ConnectionId,
        build: impl FnOnce(&EventContext<'_>, u64) -> String,
    ) -> Option<String> {
        let connection = self.connections.get(&conn)?;
        let Phase::Live { client_id, .. } = &connection.phase else {
            return None;
        };
        if !lifecycle::has_events(client_id) {
            return None;
        }
        let ctx = EventContext {
            client_id,
            session_identifier: &connection.session_identifier,
            principal: connection.transport.principal.as_deref(),
            ip_address: connection.transport.remote_addr.as_deref(),
        };
        Some(build(&ctx, connection.version))
    }

    /// Publish a lifecycle event for `client_id`.
    pub(super) fn emit_event(
        &mut self,
        event_type: &str,
        client_id: &str,
        payload: String,
        now_ms: u64,
    ) {
        if !self.profile.lifecycle_events || !lifecycle::has_events(client_id) {
            return;
        }
        let message = Message {
            topic: Utf8Bytes::from(lifecycle::event_topic(event_type, client_id)),
            payload: Bytes::from(payload),
            qos: QoS::AtLeastOnce,
            retain: false,
        };
        self.route(&message, now_ms);
    }

    /// Send again what a resumed session left unacknowledged, in order.
    fn resend_inflight(&mut self, key: SessionKey, conn: ConnectionId, now_ms: u64) {
        let dup = self.profile.redelivery_sets_dup;
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };
        if let (false, Some(max_age)) = (
            session.inflight.is_empty(),
            self.profile.max_inflight_age_ms,
        ) {
            self.timers.arm(
                &mut session.timers.inflight_age,
                now_ms.saturating_add(max_age),
                Timer::InflightAge(key),
            );
        }
        for inflight in session.inflight.iter_mut() {
            inflight.sent_at_ms = now_ms;
            let packet = if inflight.released {
                Packet::PubRel(PubRel::new(inflight.pid))
            } else {
                self.stats.publishes_sent += 1;
                Packet::Publish(Publish {
                    dup,
                    qos_pid: QosPid::from_parts(inflight.message.qos, inflight.pid),
                    retain: inflight.message.retain,
                    topic: inflight.message.topic.clone(),
                    payload: inflight.message.payload.clone(),
                })
            };
            self.outputs.push_back(Output::Send { conn, packet });
        }
    }
}
