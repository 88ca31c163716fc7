//! PUBLISH in (authorization, reserved topics, retained, QoS 2 hold), routing to sessions, and
//! delivery out through each session's queue and in-flight window.

use bytes::Bytes;
use mqtt_codec::{
    Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish, QoS, QosPid, Utf8Bytes,
};

use super::deadlines::Timer;
use super::timers::next_second;
use super::{Broker, slot};
use crate::auth::{Authorizer, Client};
use crate::auth_cache::{Question, topic_hash};
use crate::connection::{ConnectionId, Output, Phase};
use crate::inflight::Inflight;
use crate::lifecycle::DisconnectReason;
use crate::message::{Message, RetainedMessage};
use crate::persist::Persistence;
use crate::profile::{DeniedPublish, OverlapPolicy, Profile};
use crate::reserved::{PublishTarget, classify_publish};
use crate::router::fold_per_subscriber;
use crate::service::{ReservedKind, ReservedRequest, ReservedTopicService};
use crate::session::{Enqueued, Queued};
use crate::stats::SessionKey;

/// Where a message published to `topic` goes under `profile` (every topic is an ordinary one
/// without a reserved namespace). Asked once per message, where it enters the broker: a client's
/// PUBLISH, a will at CONNECT, a server-side [`publish`](Broker::publish).
pub(super) fn publish_target(profile: &Profile, topic: &str) -> PublishTarget {
    if profile.reserved_namespace {
        classify_publish(topic)
    } else {
        PublishTarget::Ordinary
    }
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    pub(super) fn on_publish(
        &mut self,
        conn: ConnectionId,
        key: SessionKey,
        publish: Publish<Utf8Bytes, Bytes>,
        now_ms: u64,
    ) {
        self.stats.publishes_received += 1;
        self.stats.payload_bytes_received += publish.payload.len() as u64;
        let limit = self.profile.max_publishes_per_second;
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        if !connection.rate.try_take(now_ms, limit) {
            // Over the rate: discarded, and a QoS 1 message is not acknowledged (AWS).
            self.stats.dropped_rate_limited += 1;
            return;
        }
        let Phase::Live { client_id, .. } = &connection.phase else {
            return;
        };
        let client_id = client_id.clone();
        // The one judgement of this message's topic (the codec has checked its form and limits).
        let target = publish_target(&self.profile, &publish.topic);
        if target == PublishTarget::Forbidden
            || (target != PublishTarget::Ordinary && publish.retain)
        {
            return self.close(conn, DisconnectReason::ForbiddenAccess, now_ms);
        }
        let client = Client {
            conn,
            client_id: &client_id,
            principal: connection.transport.principal.as_deref(),
            remote_addr: connection.transport.remote_addr.as_deref(),
        };
        let version = Self::auth_version(&self.authorizer, self.auth_epoch);
        let authorizer = &mut self.authorizer;
        let (topic, retain) = (&publish.topic, publish.retain);
        let hash = topic_hash(topic);
        let allowed = connection.auth_cache.answer(
            version,
            topic,
            hash,
            Question::Publish { retain },
            || authorizer.publish(&client, topic, retain),
        );
        let ack = match publish.qos_pid {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(pid) => Some(Packet::PubAck(PubAck::new(pid))),
            QosPid::ExactlyOnce(pid) => Some(Packet::PubRec(PubRec::new(pid))),
        };
        if !allowed {
            self.stats.auth_failures += 1;
            match self.profile.denied_publish {
                DeniedPublish::Disconnect => {
                    return self.close(conn, DisconnectReason::AuthError, now_ms);
                }
                DeniedPublish::DropAndAcknowledge => {
                    if let Some(ack) = ack {
                        self.send(conn, ack);
                    }
                    return;
                }
            }
        }
        if let QosPid::ExactlyOnce(pid) = publish.qos_pid {
            // Exactly once: the id is held until PUBREL; a resend before that is not routed again.
            let first = slot(&mut self.sessions, key)
                .is_some_and(|session| session.incoming_qos2.insert(pid.get()));
            if !first {
                if let Some(ack) = ack {
                    self.send(conn, ack);
                }
                return;
            }
        }
        let message = Message {
            qos: publish.qos(),
            retain: publish.retain,
            topic: publish.topic,
            payload: publish.payload,
        };
        self.ingest(message, target, Some(&client_id), true, now_ms);
        // Routed, queued, retained and recorded: the broker has taken responsibility.
        if let Some(ack) = ack {
            self.send(conn, ack);
        }
    }

    /// Take a message in whose topic [`publish_target`] judged `target` where it entered: hand
    /// reserved topics to their service (when `to_service`), keep it if retained, route it to
    /// subscribers, and show an ordinary one to the service's
    /// [`observe`](ReservedTopicService::observe). A `Forbidden` target goes nowhere (a client's PUBLISH or will to one is
    /// refused before it gets here; a server-side publish to one is dropped).
    pub(super) fn ingest(
        &mut self,
        message: Message,
        target: PublishTarget,
        client_id: Option<&str>,
        to_service: bool,
        now_ms: u64,
    ) {
        let kind = match target {
            PublishTarget::Ordinary => None,
            PublishTarget::ShadowRequest => Some(ReservedKind::Shadow),
            PublishTarget::BasicIngest => Some(ReservedKind::BasicIngest),
            PublishTarget::Forbidden => return,
        };
        if kind.is_none() && message.retain {
            self.keep_retained(&message, now_ms);
        }
        // Shadow requests reach the topic's subscribers too; Basic Ingest only its rule.
        if kind != Some(ReservedKind::BasicIngest) {
            self.route(&message, now_ms);
        }
        let Some(kind) = kind else {
            // Wills included: a watcher (a bridge) sees every ordinary message.
            for answer in self.reserved.observe(&message, client_id, now_ms) {
                self.route(&answer, now_ms);
            }
            return;
        };
        if !to_service {
            return;
        }
        self.stats.reserved_requests += 1;
        let request = ReservedRequest {
            kind,
            client_id,
            topic: &message.topic,
            payload: &message.payload,
        };
        let answers = self.reserved.handle(&request, now_ms);
        for answer in answers {
            self.route(&answer, now_ms);
        }
    }

    /// Store or delete (empty payload) the retained message on `message`'s topic, set at
    /// `now_ms`.
    fn keep_retained(&mut self, message: &Message, now_ms: u64) {
        if message.payload.is_empty() {
            if self.retained.set(&message.topic, None).is_some() {
                self.persistence.delete_retained(&message.topic);
            }
        } else {
            let retained = RetainedMessage {
                message: message.clone(),
                modified_ms: now_ms,
            };
            self.persistence.put_retained(&retained);
            self.retained.set(&message.topic, Some(retained));
        }
    }

    /// Deliver `message` to every matching subscription (live deliveries carry RETAIN=0).
    ///
    /// No topic check here. A client's PUBLISH and will and a server-side publish were judged
    /// once where they came in, before [`ingest`](Self::ingest). The other callers are the
    /// server's own messages, which skip what a client PUBLISH needs on purpose: the
    /// reserved-topic service's answers, lifecycle events and
    /// [`deliver_service_message`](Broker::deliver_service_message) go to reserved topics no
    /// client may publish to (`…/accepted`, `$aws/events/…`), are never retained and never
    /// handed to a service.
    pub(super) fn route(&mut self, message: &Message, now_ms: u64) {
        let mut matches = self.router.matches(&message.topic);
        if self.profile.overlap == OverlapPolicy::HighestQos {
            matches = fold_per_subscriber(matches);
        }
        let hash = topic_hash(&message.topic);
        for m in matches {
            let delivery = Message {
                topic: message.topic.clone(),
                payload: message.payload.clone(),
                qos: message.qos.min(m.qos),
                retain: false,
            };
            self.deliver(m.subscriber, delivery, hash, now_ms);
        }
    }

    /// Queue `message` (at its delivery QoS; its topic's [`topic_hash`] is `hash`) for one
    /// session and send what the window allows.
    pub(super) fn deliver(&mut self, key: SessionKey, message: Message, hash: u64, now_ms: u64) {
        let max_queued = self.profile.max_queued;
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };
        let connected = session.conn.is_some();
        if !connected && (message.qos == QoS::AtMostOnce || !session.persistent) {
            return; // QoS 0 is never queued for an absent client
        }
        if message.qos == QoS::AtMostOnce && session.output_congested {
            self.stats.dropped_congested += 1;
            return; // nor for a congested one
        }
        let seq = if message.qos == QoS::AtMostOnce {
            None
        } else {
            session.take_seq()
        };
        let (outcome, _dropped) = session.enqueue(
            Queued {
                seq,
                message,
                topic_hash: hash,
            },
            max_queued,
        );
        match outcome {
            Enqueued::Queued | Enqueued::EvictedQos0 => {
                if outcome == Enqueued::EvictedQos0 {
                    self.stats.dropped_qos0_evicted += 1;
                }
                if let (Some(seq), Some(queued)) = (seq, session.queue.back()) {
                    self.persistence
                        .put_message(&session.client_id, seq, &queued.message);
                }
            }
            Enqueued::Refused => self.stats.dropped_queue_full += 1,
        }
        if connected {
            self.pump(key, now_ms);
        }
    }

    /// Move queued messages of a connected session out, as far as the in-flight window, the
    /// publish rate and the connection's output budget allow. A queue the rate holds back arms
    /// a timer for the next second; one behind a full window waits for an acknowledgement or
    /// the in-flight age timer; a congested connection waits for
    /// [`output_ready`](Broker::output_ready).
    pub(super) fn pump(&mut self, key: SessionKey, now_ms: u64) {
        // Packet ids are 16 bits: the window can never hold more.
        let max_inflight = self.profile.max_inflight.min(usize::from(u16::MAX) - 1);
        let limit = self.profile.max_publishes_per_second;
        let max_age = self.profile.max_inflight_age_ms;
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };
        let Some(conn) = session.conn else { return };
        if session.output_congested {
            return;
        }
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        // Borrowed, not cloned: the loop touches other fields of both.
        let client = Client {
            conn,
            client_id: &session.client_id,
            principal: connection.transport.principal.as_deref(),
            remote_addr: connection.transport.remote_addr.as_deref(),
        };
        // Asked once per pump, and only if a delivery needs an answer.
        let mut version = None;
        while let Some(front) = session.queue.front() {
            let acknowledged = front.message.qos != QoS::AtMostOnce;
            if acknowledged && session.inflight.len() >= max_inflight {
                break;
            }
            if !connection.rate.has_room(now_ms, limit) {
                if acknowledged {
                    self.timers.arm(
                        &mut session.timers.rate_held,
                        next_second(now_ms),
                        Timer::RateHeld(key),
                    );
                    break;
                }
                session.queue.pop_front();
                self.stats.dropped_rate_limited += 1;
                continue;
            }
            let Some(queued) = session.queue.pop_front() else {
                break;
            };
            let version = *version
                .get_or_insert_with(|| Self::auth_version(&self.authorizer, self.auth_epoch));
            let authorizer = &mut self.authorizer;
            let topic = &queued.message.topic;
            let allowed = connection.auth_cache.answer(
                version,
                topic,
                queued.topic_hash,
                Question::Receive,
                || authorizer.receive(&client, topic),
            );
            if !allowed {
                self.stats.receive_denied += 1;
                if let Some(seq) = queued.seq {
                    self.persistence.delete_message(client.client_id, seq);
                }
                continue;
            }
            connection.rate.try_take(now_ms, limit);
            let message = queued.message;
            let qos_pid = if acknowledged {
                let pid = session.inflight.push(queued.seq, message.clone(), now_ms);
                if let Some(max_age) = max_age {
                    self.timers.arm(
                        &mut session.timers.inflight_age,
                        now_ms.saturating_add(max_age),
                        Timer::InflightAge(key),
                    );
                }
                QosPid::from_parts(message.qos, pid)
            } else {
                QosPid::AtMostOnce
            };
            self.stats.publishes_sent += 1;
            self.stats.payload_bytes_sent += message.payload.len() as u64;
            self.outputs.push_back(Output::Send {
                conn,
                packet: Packet::Publish(Publish {
                    dup: false,
                    qos_pid,
                    retain: message.retain,
                    topic: message.topic,
                    payload: message.payload,
                }),
            });
        }
    }

    pub(super) fn on_puback(&mut self, key: SessionKey, pid: PacketId, now_ms: u64) {
        self.settle(key, pid, |i| i.message.qos == QoS::AtLeastOnce, now_ms);
    }

    pub(super) fn on_pubcomp(&mut self, key: SessionKey, pid: PacketId, now_ms: u64) {
        self.settle(key, pid, |i| i.released, now_ms);
    }

    /// A delivery is done: forget it (and its stored copy) and let the next one out.
    fn settle(
        &mut self,
        key: SessionKey,
        pid: PacketId,
        matches: impl Fn(&Inflight) -> bool,
        now_ms: u64,
    ) {
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };
        if let Some(done) = session.inflight.take(pid, matches) {
            if let Some(seq) = done.seq {
                self.persistence.delete_message(&session.client_id, seq);
            }
            self.pump(key, now_ms);
        }
    }

    pub(super) fn on_pubrec(&mut self, conn: ConnectionId, key: SessionKey, pid: PacketId) {
        if let Some(session) = slot(&mut self.sessions, key) {
            if let Some(inflight) = session
                .inflight
                .find_mut(pid, |i| i.message.qos == QoS::ExactlyOnce)
            {
                inflight.released = true;
            }
        }
        // PUBREL even for an unknown id, so a client that lost track can finish the exchange.
        self.send(conn, Packet::PubRel(PubRel::new(pid)));
    }

    pub(super) fn on_pubrel(&mut self, conn: ConnectionId, key: SessionKey, pid: PacketId) {
        if let Some(session) = slot(&mut self.sessions, key) {
            session.incoming_qos2.remove(&pid.get());
        }
        self.send(conn, Packet::PubComp(PubComp::new(pid)));
    }
}
