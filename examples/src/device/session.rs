//! The MQTT client session of a device, sans-IO: bytes and the time go in, bytes to write, events
//! for the application and the next deadline come out (the quinn-proto shape). No tokio, no
//! clock, no socket here; [`super::client`] drives it over a real transport.
//!
//! The rules it keeps:
//! - CONNECT on every new transport, with the session's clean flag, will, keep-alive and user
//!   name; nothing but the CONNECT goes out before the CONNACK; no CONNACK within the response
//!   timeout ends the connection.
//! - Keep-alive: a PINGREQ when nothing was sent for the keep-alive interval; no PINGRESP within
//!   the response timeout ends the connection.
//! - QoS 1 publishes are kept until their PUBACK, at most `max_inflight` on the wire and
//!   `max_queued` waiting (offline too); after a reconnect the unacknowledged ones go again with
//!   DUP=1 and their packet ids, before anything newer. QoS 0 while offline is dropped and counted.
//! - Inbound QoS 1 is acknowledged only when the application says it took the message
//!   ([`ClientSession::ack`]); an ack from before a reconnect is ignored (the broker will resend,
//!   and the id may name another message now).
//! - The subscription set is the application's: when the broker did not keep the session
//!   (CONNACK session-present 0) every subscription is sent again; when it did, only those whose
//!   SUBACK never came.
//! - Anything malformed or out of place from the broker ends the connection with a reason; the
//!   caller reconnects. Nothing here panics on input.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    ConnectReturnCode, DecodeError, PacketId, QoS, QosPid, SharedPacket, SubscribeReturnCode,
    TopicError, decode_buf, validate_topic_filter, validate_topic_name,
};

use super::options::SessionOptions;

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No transport.
    Offline,
    /// CONNECT sent; waiting for the CONNACK until the deadline (Unix ms).
    Connecting {
        /// When the CONNACK is overdue.
        deadline_ms: u64,
    },
    /// CONNACK accepted.
    Connected,
}

/// Names one [`ClientSession::publish`] call, so its [`SessionEvent::Delivered`] can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishId(u64);

/// What [`ClientSession::publish`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// QoS 0, written.
    Sent,
    /// QoS 1, kept until its PUBACK ([`SessionEvent::Delivered`] with this id).
    Accepted(PublishId),
    /// QoS 0 while offline: dropped (and counted).
    Dropped,
}

/// The handle that acknowledges one inbound QoS 1 message ([`ClientSession::ack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken {
    connection: u64,
    pid: PacketId,
}

/// A message the broker delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The topic.
    pub topic: String,
    /// The payload (a slice of the received frame).
    pub payload: Bytes,
    /// The delivery QoS.
    pub qos: QoS,
    /// RETAIN: a retained message sent on subscribe.
    pub retain: bool,
    /// For QoS 1: hand it to [`ClientSession::ack`] once the message is taken care of.
    pub ack: Option<AckToken>,
}

/// Why the session wants its transport closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// No CONNACK within the response timeout.
    #[error("no CONNACK within the response timeout")]
    ConnAckTimeout,
    /// No PINGRESP within the response timeout.
    #[error("no PINGRESP within the response timeout")]
    KeepAliveTimeout,
    /// The broker refused the CONNECT.
    #[error("CONNECT refused: {0:?}")]
    Refused(ConnectReturnCode),
    /// The broker sent bytes that are not MQTT.
    #[error("malformed packet from the broker: {0}")]
    Malformed(DecodeError),
    /// The broker sent a packet a client never receives, or one out of order.
    #[error("unexpected {0} from the broker")]
    Unexpected(&'static str),
    /// The application asked to disconnect.
    #[error("disconnected by the application")]
    Requested,
    /// The transport closed or failed.
    #[error("the connection was lost")]
    ConnectionLost,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// CONNACK accepted; `session_present` says whether the broker kept the session.
    Connected {
        /// CONNACK session-present.
        session_present: bool,
    },
    /// A delivered message.
    Message(InboundMessage),
    /// A QoS 1 publish was acknowledged by the broker.
    Delivered(PublishId),
    /// A SUBACK: each filter with what the broker granted.
    Subscribed(Vec<(String, SubscribeReturnCode)>),
    /// An UNSUBACK.
    Unsubscribed(Vec<String>),
    /// The session ended the connection: close the transport (after writing what
    /// [`ClientSession::poll_transmit`] still has), then reconnect unless `Requested`.
    Closed(CloseReason),
}

/// A refusal of an application call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The topic or filter is not valid under the session's limits.
    #[error("invalid topic {topic:?}: {error}")]
    Topic {
        /// The topic or filter.
        topic: String,
        /// What is wrong.
        error: TopicError,
    },
    /// The payload is over the limit.
    #[error("payload of {0} bytes is over the limit")]
    PayloadTooLarge(usize),
    /// QoS 2 is not offered by this client (AWS IoT has none).
    #[error("QoS 2 is not supported")]
    QoS2,
    /// `max_inflight + max_queued` QoS 1 messages are already waiting.
    #[error("the publish queue is full")]
    QueueFull,
}

/// Counters of the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// CONNACKs accepted.
    pub connects: u64,
    /// PUBLISH packets written (resends included).
    pub publishes_sent: u64,
    /// QoS 1 publishes written again (after a reconnect, or unacknowledged for the retry
    /// interval).
    pub resent: u64,
    /// QoS 0 publishes dropped while offline.
    pub dropped_offline: u64,
    /// QoS 0 publishes dropped over the publish rate.
    pub dropped_rate: u64,
    /// Messages received.
    pub messages_received: u64,
}

#[derive(Debug, Clone)]
struct Outgoing {
    id: PublishId,
    topic: String,
    payload: Bytes,
    retain: bool,
    /// Set once it has a packet id and went on the wire.
    pid: Option<PacketId>,
    /// When it was last written on this connection; `None`: (re)send it.
    sent_at_ms: Option<u64>,
    /// Written before (DUP on the next write).
    dup: bool,
}

/// One device's MQTT session (see the module docs for its rules).
///
/// ```
/// use iot_examples::device::{ClientSession, SessionEvent, SessionOptions};
/// use mqtt_codec::QoS;
///
/// let mut session = ClientSession::new(SessionOptions::new("car-1"));
/// session.subscribe(&[("cars/car-1/commands", QoS::AtLeastOnce)], 0).unwrap();
/// session.connect(0);
/// let connect = session.poll_transmit().unwrap();
/// assert_eq!(connect[0], 0x10); // CONNECT, and nothing else before the CONNACK
/// assert!(session.poll_transmit().is_none());
/// session.handle_bytes(&[0x20, 0x02, 0x00, 0x00], 5); // CONNACK: accepted, no session kept
/// assert_eq!(session.poll_event(), Some(SessionEvent::Connected { session_present: false }));
/// let subscribe = session.poll_transmit().unwrap();
/// assert_eq!(subscribe[0], 0x82); // the subscription set, sent again
/// assert_eq!(session.poll_timeout(), Some(30_005)); // PINGREQ after 30 s of silence
/// ```
#[derive(Debug)]
pub struct ClientSession {
    options: SessionOptions,
    state: SessionState,
    /// Counts transports; an [`AckToken`] of an older one is stale.
    connection: u64,
    read: BytesMut,
    write: BytesMut,
    events: VecDeque<SessionEvent>,
    /// On the wire, awaiting PUBACK, in send order.
    inflight: VecDeque<Outgoing>,
    /// Waiting for room in the window (or for a connection).
    queued: VecDeque<Outgoing>,
    /// The subscriptions the application wants, with their QoS.
    subscriptions: BTreeMap<String, QoS>,
    pending_subscribe: HashMap<PacketId, Vec<(String, QoS)>>,
    pending_unsubscribe: HashMap<PacketId, Vec<String>>,
    /// Filters subscribed (or unsubscribed) while offline, or whose SUBACK (UNSUBACK) never came:
    /// owed to a broker that kept the session.
    unconfirmed_subscribe: BTreeSet<String>,
    unconfirmed_unsubscribe: BTreeSet<String>,
    next_pid: u16,
    next_publish: u64,
    last_sent_ms: u64,
    ping_deadline_ms: Option<u64>,
    /// The current one-second publish-rate window and what it used.
    rate_second: u64,
    rate_used: u32,
    stats: SessionStats,
}

impl ClientSession {
    /// A session, offline until [`connect`](Self::connect).
    pub fn new(options: SessionOptions) -> Self {
        ClientSession {
            options,
            state: SessionState::Offline,
            connection: 0,
            read: BytesMut::new(),
            write: BytesMut::new(),
            events: VecDeque::new(),
            inflight: VecDeque::new(),
            queued: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            pending_subscribe: HashMap::new(),
            pending_unsubscribe: HashMap::new(),
            unconfirmed_subscribe: BTreeSet::new(),
            unconfirmed_unsubscribe: BTreeSet::new(),
            next_pid: 0,
            next_publish: 0,
            last_sent_ms: 0,
            ping_deadline_ms: None,
            rate_second: 0,
            rate_used: 0,
            stats: SessionStats::default(),
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Where it is.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Its counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// QoS 1 publishes not yet acknowledged (on the wire and queued).
    pub fn unacknowledged(&self) -> usize {
        self.inflight.len() + self.queued.len()
    }

    /// The subscriptions the session keeps (and restores).
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, QoS)> {
        self.subscriptions.iter().map(|(f, q)| (f.as_str(), *q))
    }

    /// A new transport is up: write the CONNECT. Whatever the previous transport left unread or
    /// unwritten is dropped (unacknowledged publishes are kept and resent after the CONNACK).
    pub fn connect(&mut self, now_ms: u64) {
        self.connection += 1;
        self.read.clear();
        self.write.clear();
        self.forget_pending();
        self.ping_deadline_ms = None;
        let options = &self.options;
        let will = options.will.as_ref().map(|w| mqtt_codec::Will {
            topic: w.topic.as_str(),
            payload: &w.payload[..],
            qos: w.qos,
            retain: w.retain,
        });
        let connect = mqtt_codec::BorrowedPacket::Connect(mqtt_codec::Connect {
            client_id: options.client_id.as_str(),
            clean_session: options.clean_session,
            keep_alive: options.keep_alive_secs,
            will,
            username: options.username.as_deref(),
            password: options.password.as_deref(),
        });
        write_packet(&mut self.write, &mut self.last_sent_ms, &connect, now_ms);
        self.state = SessionState::Connecting {
            deadline_ms: now_ms.saturating_add(self.options.response_timeout_ms),
        };
    }

    /// The transport closed (or failed): [`SessionEvent::Closed`] with
    /// [`CloseReason::ConnectionLost`] unless the session had closed it already. Unacknowledged
    /// QoS 1 publishes stay for the next connection.
    pub fn connection_lost(&mut self) {
        if self.state != SessionState::Offline {
            self.close(CloseReason::ConnectionLost);
        }
    }

    /// (Un)subscribes never answered are owed to the next connection.
    fn forget_pending(&mut self) {
        for (_, list) in self.pending_subscribe.drain() {
            self.unconfirmed_subscribe
                .extend(list.into_iter().map(|(filter, _)| filter));
        }
        for (_, list) in self.pending_unsubscribe.drain() {
            self.unconfirmed_unsubscribe.extend(list);
        }
    }

    /// Bytes read from the transport. Packets are handled as soon as they are whole; a malformed
    /// or unexpected one ends the connection ([`SessionEvent::Closed`]) and the rest is dropped.
    pub fn handle_bytes(&mut self, bytes: &[u8], now_ms: u64) {
        if self.state == SessionState::Offline {
            return;
        }
        self.read.extend_from_slice(bytes);
        loop {
            match decode_buf(&mut self.read, &self.options.limits) {
                Ok(Some(packet)) => {
                    if let Err(reason) = self.on_packet(packet, now_ms) {
                        self.close(reason);
                        return;
                    }
                    if self.state == SessionState::Offline {
                        return;
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    self.close(CloseReason::Malformed(error));
                    return;
                }
            }
        }
    }

    /// What to write to the transport next, if anything.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.write.is_empty()).then(|| self.write.split().freeze())
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next (Unix ms).
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            SessionState::Offline => None,
            SessionState::Connecting { deadline_ms } => Some(deadline_ms),
            SessionState::Connected => {
                let ping = (self.options.keep_alive_secs > 0).then(|| {
                    self.last_sent_ms
                        .saturating_add(u64::from(self.options.keep_alive_secs) * 1000)
                });
                [ping, self.ping_deadline_ms, self.pump_deadline()]
                    .into_iter()
                    .flatten()
                    .min()
            }
        }
    }

    /// The time has come (or passed): send a PINGREQ, or end a connection whose CONNACK or
    /// PINGRESP is overdue.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        match self.state {
            SessionState::Offline => {}
            SessionState::Connecting { deadline_ms } => {
                if now_ms >= deadline_ms {
                    self.close(CloseReason::ConnAckTimeout);
                }
            }
            SessionState::Connected => {
                if self.ping_deadline_ms.is_some_and(|d| now_ms >= d) {
                    self.close(CloseReason::KeepAliveTimeout);
                    return;
                }
                self.pump(now_ms);
                let keep_alive = u64::from(self.options.keep_alive_secs) * 1000;
                if keep_alive > 0
                    && now_ms >= self.last_sent_ms.saturating_add(keep_alive)
                    && self.ping_deadline_ms.is_none()
                {
                    self.encode(&mqtt_codec::BorrowedPacket::PingReq, now_ms);
                    self.ping_deadline_ms =
                        Some(now_ms.saturating_add(self.options.response_timeout_ms));
                }
            }
        }
    }

    /// Publish `payload` on `topic`. QoS 1 is kept until acknowledged, across reconnects;
    /// QoS 0 goes now or, offline, is dropped.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        now_ms: u64,
    ) -> Result<PublishOutcome, SessionError> {
        validate_topic_name(topic, &self.options.limits).map_err(|error| SessionError::Topic {
            topic: topic.to_owned(),
            error,
        })?;
        let payload = payload.into();
        if payload.len() > self.options.limits.max_payload_size {
            return Err(SessionError::PayloadTooLarge(payload.len()));
        }
        match qos {
            QoS::ExactlyOnce => Err(SessionError::QoS2),
            QoS::AtMostOnce => {
                if self.state != SessionState::Connected {
                    self.stats.dropped_offline += 1;
                    return Ok(PublishOutcome::Dropped);
                }
                if !self.take_rate(now_ms) {
                    self.stats.dropped_rate += 1;
                    return Ok(PublishOutcome::Dropped);
                }
                self.stats.publishes_sent += 1;
                let packet = mqtt_codec::BorrowedPacket::Publish(mqtt_codec::Publish {
                    dup: false,
                    qos_pid: QosPid::AtMostOnce,
                    retain,
                    topic,
                    payload: &payload[..],
                });
                self.encode(&packet, now_ms);
                Ok(PublishOutcome::Sent)
            }
            QoS::AtLeastOnce => {
                if self.unacknowledged()
                    >= self
                        .options
                        .max_inflight
                        .saturating_add(self.options.max_queued)
                {
                    return Err(SessionError::QueueFull);
                }
                self.next_publish += 1;
                let id = PublishId(self.next_publish);
                self.queued.push_back(Outgoing {
                    id,
                    topic: topic.to_owned(),
                    payload,
                    retain,
                    pid: None,
                    sent_at_ms: None,
                    dup: false,
                });
                self.pump(now_ms);
                Ok(PublishOutcome::Accepted(id))
            }
        }
    }

    /// Add filters to the subscription set (sent now when connected, else after the CONNACK).
    /// QoS 2 is asked as QoS 1.
    pub fn subscribe(&mut self, filters: &[(&str, QoS)], now_ms: u64) -> Result<(), SessionError> {
        for (filter, _) in filters {
            validate_topic_filter(filter, &self.options.limits).map_err(|error| {
                SessionError::Topic {
                    topic: (*filter).to_owned(),
                    error,
                }
            })?;
        }
        let list: Vec<(String, QoS)> = filters
            .iter()
            .map(|(f, q)| ((*f).to_owned(), (*q).min(QoS::AtLeastOnce)))
            .collect();
        for (filter, qos) in &list {
            self.subscriptions.insert(filter.clone(), *qos);
            self.unconfirmed_unsubscribe.remove(filter);
        }
        if self.state == SessionState::Connected {
            self.send_subscribe(list, now_ms);
        } else {
            self.unconfirmed_subscribe
                .extend(list.into_iter().map(|(filter, _)| filter));
        }
        Ok(())
    }

    /// Remove filters from the subscription set (and from the broker when connected).
    pub fn unsubscribe(&mut self, filters: &[&str], now_ms: u64) {
        let list: Vec<String> = filters
            .iter()
            .filter(|f| self.subscriptions.remove(**f).is_some())
            .map(|f| (*f).to_owned())
            .collect();
        for filter in &list {
            self.unconfirmed_subscribe.remove(filter);
        }
        if self.state != SessionState::Connected {
            self.unconfirmed_unsubscribe.extend(list);
            return;
        }
        self.send_unsubscribe(list, now_ms);
    }

    fn send_unsubscribe(&mut self, list: Vec<String>, now_ms: u64) {
        for chunk in list.chunks(self.options.limits.max_filters_per_subscribe.max(1)) {
            let pid = self.allocate_pid();
            let Ok(wire) = mqtt_codec::UnsubscribeFilters::from_list(chunk) else {
                continue;
            };
            let packet = mqtt_codec::Packet::<&str, Bytes>::Unsubscribe(mqtt_codec::Unsubscribe {
                packet_id: pid,
                filters: wire,
            });
            self.encode(&packet, now_ms);
            self.pending_unsubscribe.insert(pid, chunk.to_vec());
        }
    }

    /// The application took an inbound QoS 1 message: acknowledge it (if it came on this
    /// connection; an older one's message will be sent again by the broker).
    pub fn ack(&mut self, token: AckToken, now_ms: u64) {
        if token.connection == self.connection && self.state == SessionState::Connected {
            let packet = mqtt_codec::BorrowedPacket::PubAck(mqtt_codec::PubAck::new(token.pid));
            self.encode(&packet, now_ms);
        }
    }

    /// End the connection cleanly: DISCONNECT (the will is not published), then
    /// [`SessionEvent::Closed`] with [`CloseReason::Requested`].
    pub fn disconnect(&mut self, now_ms: u64) {
        if self.state == SessionState::Connected {
            self.encode(&mqtt_codec::BorrowedPacket::Disconnect, now_ms);
        }
        if self.state != SessionState::Offline {
            self.close(CloseReason::Requested);
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = SessionState::Offline;
        self.ping_deadline_ms = None;
        self.forget_pending();
        self.events.push_back(SessionEvent::Closed(reason));
    }

    fn encode<T: AsRef<str>, B: AsRef<[u8]>>(
        &mut self,
        packet: &mqtt_codec::Packet<T, B>,
        now_ms: u64,
    ) {
        write_packet(&mut self.write, &mut self.last_sent_ms, packet, now_ms);
    }

    fn pid_in_use(&self, pid: PacketId) -> bool {
        self.inflight.iter().any(|o| o.pid == Some(pid))
            || self.pending_subscribe.contains_key(&pid)
            || self.pending_unsubscribe.contains_key(&pid)
    }

    /// The next free packet id. At most `max_inflight` publishes plus the pending (un)subscribes
    /// hold ids, far fewer than 65535, so one is always free.
    fn allocate_pid(&mut self) -> PacketId {
        loop {
            self.next_pid = self.next_pid.wrapping_add(1);
            if let Some(pid) = PacketId::new(self.next_pid)
                && !self.pid_in_use(pid)
            {
                return pid;
            }
        }
    }

    /// One more PUBLISH in this second's budget? (Counts it if so.)
    fn take_rate(&mut self, now_ms: u64) -> bool {
        let limit = self.options.max_publishes_per_second;
        if limit == 0 {
            return true;
        }
        let second = now_ms / 1000;
        if second != self.rate_second {
            self.rate_second = second;
            self.rate_used = 0;
        }
        if self.rate_used >= limit {
            return false;
        }
        self.rate_used += 1;
        true
    }

    /// Writes what may go now, oldest first, within the rate: queued publishes take packet ids
    /// while the window has room, then every in-flight publish owed a write (never written on
    /// this connection, or unacknowledged for the retry interval) goes out, DUP when it went
    /// out before.
    fn pump(&mut self, now_ms: u64) {
        if self.state != SessionState::Connected {
            return;
        }
        let window = self
            .options
            .max_inflight
            .clamp(1, usize::from(u16::MAX) / 2);
        while self.inflight.len() < window {
            let Some(mut outgoing) = self.queued.pop_front() else {
                break;
            };
            outgoing.pid = Some(self.allocate_pid());
            self.inflight.push_back(outgoing);
        }
        let retry = self.options.retry_interval_ms;
        for at in 0..self.inflight.len() {
            let due = self.inflight.get(at).is_some_and(|o| match o.sent_at_ms {
                None => true,
                Some(sent) => retry > 0 && now_ms >= sent.saturating_add(retry),
            });
            if !due {
                continue;
            }
            if !self.take_rate(now_ms) {
                return;
            }
            let Some(outgoing) = self.inflight.get_mut(at) else {
                continue;
            };
            let Some(pid) = outgoing.pid else { continue };
            outgoing.sent_at_ms = Some(now_ms);
            let dup = std::mem::replace(&mut outgoing.dup, true);
            let packet = mqtt_codec::BorrowedPacket::Publish(mqtt_codec::Publish {
                dup,
                qos_pid: QosPid::AtLeastOnce(pid),
                retain: outgoing.retain,
                topic: outgoing.topic.as_str(),
                payload: &outgoing.payload[..],
            });
            write_packet(&mut self.write, &mut self.last_sent_ms, &packet, now_ms);
            self.stats.publishes_sent += 1;
            if dup {
                self.stats.resent += 1;
            }
        }
    }

    /// When [`pump`](Self::pump) has more to write: the next rate window if it stopped on the
    /// rate, else the earliest retry.
    fn pump_deadline(&self) -> Option<u64> {
        if self.inflight.iter().any(|o| o.sent_at_ms.is_none()) {
            return Some((self.rate_second + 1) * 1000);
        }
        let retry = self.options.retry_interval_ms;
        if retry == 0 {
            return None;
        }
        self.inflight
            .iter()
            .filter_map(|o| o.sent_at_ms)
            .min()
            .map(|sent| sent.saturating_add(retry))
    }

    fn send_subscribe(&mut self, list: Vec<(String, QoS)>, now_ms: u64) {
        for chunk in list.chunks(self.options.limits.max_filters_per_subscribe.max(1)) {
            let Ok(wire) = mqtt_codec::SubscribeFilters::from_list(chunk) else {
                continue;
            };
            let pid = self.allocate_pid();
            let packet = mqtt_codec::Packet::<&str, Bytes>::Subscribe(mqtt_codec::Subscribe {
                packet_id: pid,
                filters: wire,
            });
            self.encode(&packet, now_ms);
            self.pending_subscribe.insert(pid, chunk.to_vec());
        }
    }

    fn on_packet(&mut self, packet: SharedPacket, now_ms: u64) -> Result<(), CloseReason> {
        use mqtt_codec::Packet;
        let connected = self.state == SessionState::Connected;
        match packet {
            Packet::ConnAck(ack) => {
                if !matches!(self.state, SessionState::Connecting { .. }) {
                    return Err(CloseReason::Unexpected("CONNACK"));
                }
                if ack.code != ConnectReturnCode::Accepted {
                    return Err(CloseReason::Refused(ack.code));
                }
                self.on_connack(ack.session_present, now_ms);
            }
            _ if !connected => return Err(CloseReason::Unexpected("packet before CONNACK")),
            Packet::Publish(publish) => {
                let ack = match publish.qos_pid {
                    QosPid::AtMostOnce => None,
                    QosPid::AtLeastOnce(pid) => Some(AckToken {
                        connection: self.connection,
                        pid,
                    }),
                    // Never subscribed at QoS 2, so never delivered at QoS 2.
                    QosPid::ExactlyOnce(_) => return Err(CloseReason::Unexpected("QoS 2 PUBLISH")),
                };
                self.stats.messages_received += 1;
                self.events.push_back(SessionEvent::Message(InboundMessage {
                    topic: publish.topic.as_str().to_owned(),
                    payload: publish.payload,
                    qos: publish.qos_pid.qos(),
                    retain: publish.retain,
                    ack,
                }));
            }
            Packet::PubAck(ack) => {
                let at = self
                    .inflight
                    .iter()
                    .position(|o| o.pid == Some(ack.packet_id));
                // An id we do not hold (acknowledged twice): harmless, ignored.
                if let Some(done) = at.and_then(|at| self.inflight.remove(at)) {
                    self.events.push_back(SessionEvent::Delivered(done.id));
                    self.pump(now_ms);
                }
            }
            Packet::SubAck(ack) => {
                let Some(filters) = self.pending_subscribe.remove(&ack.packet_id) else {
                    return Ok(()); // for a SUBSCRIBE of an earlier connection
                };
                let codes: Vec<SubscribeReturnCode> = ack.return_codes.iter().collect();
                if codes.len() != filters.len() {
                    return Err(CloseReason::Unexpected("SUBACK with the wrong count"));
                }
                let results: Vec<(String, SubscribeReturnCode)> =
                    filters.into_iter().map(|(f, _)| f).zip(codes).collect();
                for (filter, code) in &results {
                    if *code == SubscribeReturnCode::Failure {
                        // Refused: not asked again at every reconnect.
                        self.subscriptions.remove(filter);
                    }
                }
                self.events.push_back(SessionEvent::Subscribed(results));
            }
            Packet::UnsubAck(ack) => {
                if let Some(filters) = self.pending_unsubscribe.remove(&ack.packet_id) {
                    self.events.push_back(SessionEvent::Unsubscribed(filters));
                }
            }
            Packet::PingResp => self.ping_deadline_ms = None,
            Packet::Connect(_) => return Err(CloseReason::Unexpected("CONNECT")),
            Packet::Subscribe(_) => return Err(CloseReason::Unexpected("SUBSCRIBE")),
            Packet::Unsubscribe(_) => return Err(CloseReason::Unexpected("UNSUBSCRIBE")),
            Packet::PingReq => return Err(CloseReason::Unexpected("PINGREQ")),
            Packet::Disconnect => return Err(CloseReason::Unexpected("DISCONNECT")),
            Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                return Err(CloseReason::Unexpected("QoS 2 flow packet"));
            }
        }
        Ok(())
    }

    fn on_connack(&mut self, session_present: bool, now_ms: u64) {
        self.state = SessionState::Connected;
        self.stats.connects += 1;
        self.events
            .push_back(SessionEvent::Connected { session_present });
        let owed_subscribe = std::mem::take(&mut self.unconfirmed_subscribe);
        let owed_unsubscribe = std::mem::take(&mut self.unconfirmed_unsubscribe);
        let again: Vec<(String, QoS)> = if !session_present || self.options.clean_session {
            // The broker forgot the subscriptions (or never kept them): all of them again.
            self.subscriptions
                .iter()
                .map(|(f, q)| (f.clone(), *q))
                .collect()
        } else {
            // It kept them: only what it never confirmed, and what was dropped meanwhile.
            let unsubscribe: Vec<String> = owed_unsubscribe.into_iter().collect();
            if !unsubscribe.is_empty() {
                self.send_unsubscribe(unsubscribe, now_ms);
            }
            owed_subscribe
                .into_iter()
                .filter_map(|f| self.subscriptions.get(&f).map(|q| (f, *q)))
                .collect()
        };
        if !again.is_empty() {
            self.send_subscribe(again, now_ms);
        }
        // Unacknowledged publishes first, with DUP and their ids, then what waited.
        for outgoing in &mut self.inflight {
            outgoing.sent_at_ms = None;
        }
        self.pump(now_ms);
    }
}

/// Appends `packet` to `write` and notes when something was last sent (keep-alive counts from it).
/// Every packet built by the session was validated (topics, filters, payload size) before, so
/// encoding cannot fail; if it ever did, nothing is written.
fn write_packet<T: AsRef<str>, B: AsRef<[u8]>>(
    write: &mut BytesMut,
    last_sent_ms: &mut u64,
    packet: &mqtt_codec::Packet<T, B>,
    now_ms: u64,
) {
    if packet.encode(write).is_ok() {
        *last_sent_ms = (*last_sent_ms).max(now_ms);
    }
}
