//! The broker state machine. The program opens connections, feeds it decoded packets and the
//! time, calls [`Broker::tick`] when [`Broker::poll_timeout`] says something is due, and
//! carries out the [`Output`]s it polls: packets to write and connections to close.
//!
//! Durability contract: the broker records every change that must survive a crash through its
//! [`Persistence`] before it emits the packet that acknowledges it (a PUBACK, a SUBACK of a
//! persistent session). A program with a durable store commits the store before writing the
//! outputs it has polled, so a crash never loses what a client was told was taken.
//!
//! Bounds: each session holds at most `max_inflight` deliveries in flight and `max_queued`
//! behind them (when full, the oldest queued QoS 0 goes, else the new message; both counted);
//! each connection caches at most 64 topics' authorization answers (emptied when full, then
//! refilled); the timer set holds at most one entry per connection, three per session and one per
//! presence record. The program bounds its output bytes per connection and reports crossing
//! the budget with [`Broker::output_congested`]: from then on the connection gets no PUBLISH,
//! its QoS 0 deliveries are dropped and counted, its QoS 1/2 wait in the session queue, until
//! [`Broker::output_ready`]. Acknowledgements are never held.

mod congestion;
mod connect;
mod deadlines;
mod publish;
mod retained;
mod subscribe;
mod timers;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{ConnAck, ConnectReturnCode, DecodeError, Packet, QoS, SharedPacket};

use crate::auth::{AllowAll, Authorizer, TransportInfo};
use crate::auth_cache::{AuthCache, AuthVersion, topic_hash};
use crate::connection::{Connection, ConnectionId, Output, Phase, RateWindow};
use crate::lifecycle::{DisconnectReason, SessionIds};
use crate::message::{Message, RetainedMessage};
use crate::persist::{NoPersistence, Persistence};
use crate::profile::Profile;
use crate::retained::RetainedStore;
use crate::router::Router;
use crate::service::{NoReservedServices, ReservedTopicService};
use crate::session::{Queued, Session};
use crate::stats::{SessionKey, Stats};
use crate::topic::TopicName;
use deadlines::{Deadlines, Timer};

/// Lifecycle `versionNumber` bookkeeping for one client id.
#[derive(Debug, Clone, Copy)]
struct Presence {
    version: u64,
    live: u32,
    last_seen_ms: u64,
    /// The deadline of its reset timer, armed while nothing uses it.
    armed: Option<u64>,
}

/// How long after its last connection a client id's `versionNumber` starts again at 0.
const PRESENCE_RESET_MS: u64 = 3_600_000;

/// Builds a [`Broker`] from a profile and the parts the program plugs in.
///
/// ```
/// use iot_broker_core::{Broker, profile::Profile, persist::MemoryPersistence};
/// let broker = Broker::builder(Profile::aws_iot())
///     .persistence(MemoryPersistence::default())
///     .seed(42)
///     .build(1_700_000_000_000);
/// assert_eq!(broker.session_count(), 0);
/// ```
#[derive(Debug)]
#[must_use = "a builder makes no broker until `build`"]
pub struct BrokerBuilder<A, R, P> {
    profile: Profile,
    authorizer: A,
    reserved: R,
    persistence: P,
    seed: u64,
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> BrokerBuilder<A, R, P> {
    /// Ask `authorizer` before every connect, publish, subscribe and delivery.
    pub fn authorizer<A2: Authorizer>(self, authorizer: A2) -> BrokerBuilder<A2, R, P> {
        BrokerBuilder {
            profile: self.profile,
            authorizer,
            reserved: self.reserved,
            persistence: self.persistence,
            seed: self.seed,
        }
    }

    /// Hand publishes to AWS's reserved topics to `reserved`.
    pub fn reserved<R2: ReservedTopicService>(self, reserved: R2) -> BrokerBuilder<A, R2, P> {
        BrokerBuilder {
            profile: self.profile,
            authorizer: self.authorizer,
            reserved,
            persistence: self.persistence,
            seed: self.seed,
        }
    }

    /// Record retained messages and persistent sessions in `persistence`, and start from what it
    /// holds.
    pub fn persistence<P2: Persistence>(self, persistence: P2) -> BrokerBuilder<A, R, P2> {
        BrokerBuilder {
            profile: self.profile,
            authorizer: self.authorizer,
            reserved: self.reserved,
            persistence,
            seed: self.seed,
        }
    }

    /// Seed for lifecycle `sessionIdentifier`s and assigned client ids (the program passes a
    /// random one; tests a fixed one).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The broker, with the persisted sessions and retained messages restored at `now_ms`.
    #[must_use]
    pub fn build(self, now_ms: u64) -> Broker<A, R, P> {
        let mut broker = Broker {
            router: Router::new(self.profile.multi_level_rule),
            profile: self.profile,
            authorizer: self.authorizer,
            reserved: self.reserved,
            persistence: self.persistence,
            retained: RetainedStore::new(),
            sessions: Vec::new(),
            free_keys: Vec::new(),
            by_client_id: HashMap::new(),
            connections: BTreeMap::new(),
            next_conn: 1,
            outputs: VecDeque::new(),
            ids: SessionIds::new(self.seed),
            presence: HashMap::new(),
            stats: Stats::default(),
            timers: Deadlines::default(),
            auth_epoch: 0,
        };
        broker.restore(now_ms);
        broker
    }
}

/// The sans-IO MQTT broker.
///
/// ```
/// use bytes::Bytes;
/// use iot_broker_core::{Broker, Output, auth::TransportInfo, profile::Profile};
/// use iot_broker_core::codec::{Connect, Packet, QoS, Subscribe, SubscribeFilters, PacketId};
///
/// let mut broker = Broker::builder(Profile::standard()).build(0);
/// let conn = broker.open(TransportInfo::default(), 0);
/// broker.handle_packet(conn, Packet::Connect(Connect {
///     client_id: "car1".into(), clean_session: true, keep_alive: 60,
///     will: None, username: None, password: None,
/// }), 0);
/// let Some(Output::Send { packet: Packet::ConnAck(ack), .. }) = broker.poll_output() else { panic!() };
/// assert!(!ack.session_present);
/// ```
#[derive(Debug)]
pub struct Broker<A = AllowAll, R = NoReservedServices, P = NoPersistence> {
    profile: Profile,
    authorizer: A,
    reserved: R,
    persistence: P,
    router: Router<SessionKey>,
    retained: RetainedStore<RetainedMessage>,
    sessions: Vec<Option<Session>>,
    free_keys: Vec<u32>,
    by_client_id: HashMap<Arc<str>, SessionKey>,
    connections: BTreeMap<ConnectionId, Connection>,
    next_conn: u64,
    outputs: VecDeque<Output>,
    ids: SessionIds,
    presence: HashMap<Arc<str>, Presence>,
    stats: Stats,
    timers: Deadlines,
    /// Bumped by every [`Broker::authorizer_mut`]: cached answers given before are stale.
    auth_epoch: u64,
}

impl Broker {
    /// Start building a broker for `profile` that allows everything, serves no reserved topics
    /// and persists nothing; the builder swaps each part.
    pub fn builder(profile: Profile) -> BrokerBuilder<AllowAll, NoReservedServices, NoPersistence> {
        BrokerBuilder {
            profile,
            authorizer: AllowAll,
            reserved: NoReservedServices,
            persistence: NoPersistence,
            seed: 0,
        }
    }
}

/// The session in `key`'s slot (a free function so callers can borrow other fields alongside).
fn slot(sessions: &mut [Option<Session>], key: SessionKey) -> Option<&mut Session> {
    sessions.get_mut(key.0 as usize).and_then(Option::as_mut)
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    /// The profile in force (the program decodes with its `limits`).
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The authorizer, to read it (counters, connected things) without touching the cached
    /// answers.
    pub fn authorizer(&self) -> &A {
        &self.authorizer
    }

    /// The authorizer, e.g. to change policies at run time. Every call drops the answers the
    /// broker has cached (they may be about to change); to only read it, use
    /// [`authorizer`](Self::authorizer).
    pub fn authorizer_mut(&mut self) -> &mut A {
        self.auth_epoch = self.auth_epoch.wrapping_add(1);
        &mut self.authorizer
    }

    /// What cached authorization answers must have been given under to be used now.
    fn auth_version(authorizer: &A, epoch: u64) -> AuthVersion {
        AuthVersion {
            generation: authorizer.generation(),
            epoch,
        }
    }

    /// The reserved-topic service.
    pub fn reserved_mut(&mut self) -> &mut R {
        &mut self.reserved
    }

    /// The persistence, e.g. to commit what the last calls recorded.
    pub fn persistence_mut(&mut self) -> &mut P {
        &mut self.persistence
    }

    /// Open connections (with or without a CONNECT yet).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Sessions held, connected or not.
    pub fn session_count(&self) -> usize {
        self.by_client_id.len()
    }

    /// Retained messages held.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// `client_id`'s subscriptions, if it has a session.
    pub fn subscriptions(&self, client_id: &str) -> Option<Vec<(String, QoS)>> {
        let session = self.session_of(client_id)?;
        Some(
            session
                .subscriptions
                .iter()
                .map(|(f, q)| (f.to_string(), *q))
                .collect(),
        )
    }

    /// How many deliveries to `client_id` are in flight and how many wait behind them.
    pub fn pending(&self, client_id: &str) -> Option<(usize, usize)> {
        let session = self.session_of(client_id)?;
        Some((session.inflight.len(), session.queue.len()))
    }

    /// Whether `client_id` has a live connection.
    pub fn is_connected(&self, client_id: &str) -> bool {
        self.session_of(client_id)
            .is_some_and(|session| session.conn.is_some())
    }

    fn session_of(&self, client_id: &str) -> Option<&Session> {
        let key = self.by_client_id.get(client_id)?;
        self.sessions.get(key.0 as usize)?.as_ref()
    }

    /// The next thing to do, in order.
    #[must_use = "an output is an instruction: send the packet or close the connection"]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A new network connection, which must send CONNECT within the profile's connect timeout.
    #[must_use = "the id names the connection in every later call"]
    pub fn open(&mut self, transport: TransportInfo, now_ms: u64) -> ConnectionId {
        let id = ConnectionId(self.next_conn);
        self.next_conn += 1;
        let mut connection = Connection {
            transport,
            phase: Phase::AwaitingConnect,
            opened_at_ms: now_ms,
            keep_alive_ms: 0,
            last_activity_ms: now_ms,
            will: None,
            session_identifier: String::new(),
            version: 0,
            rate: RateWindow::default(),
            timer: None,
            auth_cache: AuthCache::default(),
        };
        let deadline = now_ms.saturating_add(self.profile.connect_timeout_ms);
        self.timers
            .arm(&mut connection.timer, deadline, Timer::Connection(id));
        self.connections.insert(id, connection);
        id
    }

    /// A packet from `conn`, decoded with [`profile().limits`](Profile::limits).
    pub fn handle_packet(&mut self, conn: ConnectionId, packet: SharedPacket, now_ms: u64) {
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        connection.last_activity_ms = now_ms;
        let live = match &connection.phase {
            Phase::AwaitingConnect => None,
            Phase::Live { session, .. } => Some(*session),
        };
        let Some(key) = live else {
            match packet {
                Packet::Connect(connect) => self.on_connect(conn, connect, now_ms),
                // The first packet must be CONNECT (MQTT-3.1.0-1).
                _ => self.close(conn, DisconnectReason::ClientError, now_ms),
            }
            return;
        };
        match packet {
            Packet::Publish(publish) => self.on_publish(conn, key, publish, now_ms),
            Packet::PubAck(ack) => self.on_puback(key, ack.packet_id, now_ms),
            Packet::PubRec(rec) if self.profile.limits.qos2 => {
                self.on_pubrec(conn, key, rec.packet_id)
            }
            Packet::PubRel(rel) if self.profile.limits.qos2 => {
                self.on_pubrel(conn, key, rel.packet_id)
            }
            Packet::PubComp(comp) if self.profile.limits.qos2 => {
                self.on_pubcomp(key, comp.packet_id, now_ms)
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(conn, key, subscribe, now_ms),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(conn, key, unsubscribe, now_ms),
            Packet::PingReq => self.send(conn, Packet::PingResp),
            Packet::Disconnect => self.close(conn, DisconnectReason::ClientInitiated, now_ms),
            // A second CONNECT, a server-to-client packet, or QoS 2 flow where QoS 2 is off.
            _ => self.close(conn, DisconnectReason::ClientError, now_ms),
        }
    }

    /// `conn` sent bytes that do not decode: before CONNECT the client may get a CONNACK code
    /// (bad protocol level, client id too long); then the connection is closed and, if it was
    /// live, its will published.
    pub fn handle_decode_error(&mut self, conn: ConnectionId, error: &DecodeError, now_ms: u64) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        if matches!(connection.phase, Phase::AwaitingConnect) {
            self.stats.connects_refused += 1;
            if let Some(code) = error.connack_code() {
                self.send_connack(conn, false, code);
            }
        }
        self.close(conn, DisconnectReason::ClientError, now_ms);
    }

    /// The transport of `conn` closed or failed.
    pub fn connection_lost(&mut self, conn: ConnectionId, now_ms: u64) {
        self.close(conn, DisconnectReason::ConnectionLost, now_ms);
    }

    /// Close `client_id`'s connection for `reason` (e.g. [`DisconnectReason::ApiInitiated`]).
    /// Returns whether it was connected.
    pub fn disconnect_client(
        &mut self,
        client_id: &str,
        reason: DisconnectReason,
        now_ms: u64,
    ) -> bool {
        let conn = self.session_of(client_id).and_then(|s| s.conn);
        match conn {
            Some(conn) => {
                self.close(conn, reason, now_ms);
                true
            }
            None => false,
        }
    }

    /// Close every connection as the server going away: wills fire, persistent sessions stay.
    pub fn shutdown(&mut self, now_ms: u64) {
        let conns: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for conn in conns {
            self.close(conn, DisconnectReason::ServerInitiated, now_ms);
        }
    }

    /// Deliver a message one of the server's own services emits outside a PUBLISH (the shadow
    /// REST API's `/accepted`, `/delta` and `/documents` notices): routed to subscribers as the
    /// reserved-topic service's answers are (reserved topics included), never retained, never
    /// handed to a service.
    pub fn deliver_service_message(&mut self, message: &Message, now_ms: u64) {
        // No topic check: the server's own notices go to reserved topics no client may publish
        // to, and `route` neither retains nor hands to a service.
        self.route(message, now_ms);
    }

    /// Publish from the server side (HTTPS publish, a rule): retained, routed and handed to the
    /// reserved-topic service like a client's PUBLISH, after the caller has authorized it.
    pub fn publish(
        &mut self,
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        now_ms: u64,
    ) {
        // `topic` was validated by the caller, perhaps under another profile: its reserved
        // namespace is judged here, under this broker's, once.
        let target = publish::publish_target(&self.profile, topic.as_str());
        let message = Message {
            topic: topic.into_inner(),
            payload,
            qos,
            retain,
        };
        self.ingest(message, target, None, true, now_ms);
    }

    fn send(&mut self, conn: ConnectionId, packet: SharedPacket) {
        self.outputs.push_back(Output::Send { conn, packet });
    }

    fn send_connack(&mut self, conn: ConnectionId, session_present: bool, code: ConnectReturnCode) {
        self.send(
            conn,
            Packet::ConnAck(ConnAck {
                session_present,
                code,
            }),
        );
    }

    /// A new session in a free slot.
    fn insert_session(&mut self, session: Session) -> SessionKey {
        let client_id = Arc::clone(&session.client_id);
        let key = match self.free_keys.pop() {
            Some(index) => {
                if let Some(place) = self.sessions.get_mut(index as usize) {
                    *place = Some(session);
                }
                SessionKey(index)
            }
            None => {
                let index = u32::try_from(self.sessions.len()).unwrap_or(u32::MAX);
                self.sessions.push(Some(session));
                SessionKey(index)
            }
        };
        self.by_client_id.insert(client_id, key);
        key
    }

    /// Drop a session: its subscriptions, queue, timers and stored state.
    fn remove_session(&mut self, key: SessionKey) {
        let Some(mut session) = self.sessions.get_mut(key.0 as usize).and_then(Option::take) else {
            return;
        };
        for filter in session.subscriptions.keys() {
            self.router.unsubscribe(filter, &key);
        }
        let timers = &mut session.timers;
        self.timers
            .disarm(&mut timers.expiry, Timer::SessionExpiry(key));
        self.timers
            .disarm(&mut timers.inflight_age, Timer::InflightAge(key));
        self.timers
            .disarm(&mut timers.rate_held, Timer::RateHeld(key));
        self.by_client_id.remove(&session.client_id);
        self.free_keys.push(key.0);
        if session.persistent {
            self.persistence.delete_session(&session.client_id);
        }
        self.arm_presence(&session.client_id);
    }

    /// Arm a disconnected persistent session's expiry, if the profile has one.
    fn arm_expiry(&mut self, key: SessionKey) {
        let Some(expiry) = self.profile.session_expiry_ms else {
            return;
        };
        let Some(session) = slot(&mut self.sessions, key) else {
            return;
        };
        if let (None, Some(at)) = (session.conn, session.disconnected_at_ms) {
            self.timers.arm(
                &mut session.timers.expiry,
                at.saturating_add(expiry),
                Timer::SessionExpiry(key),
            );
        }
    }

    /// Rebuild retained messages and persistent sessions from the store.
    fn restore(&mut self, now_ms: u64) {
        let restored = self.persistence.load();
        for retained in restored.retained {
            let topic = retained.message.topic.clone();
            self.retained.set(&topic, Some(retained));
        }
        for (client_id, stored) in restored.sessions {
            let mut session = Session::new(Arc::from(client_id.as_str()), true);
            session.disconnected_at_ms = Some(stored.record.disconnected_at_ms.unwrap_or(now_ms));
            for (seq, message) in stored.messages {
                session.seen_seq(seq);
                session.queue.push_back(Queued {
                    seq: Some(seq),
                    topic_hash: topic_hash(&message.topic),
                    message,
                });
            }
            let subscriptions = stored.record.subscriptions;
            let key = self.insert_session(session);
            self.arm_expiry(key);
            for (filter, qos) in subscriptions {
                if self.router.subscribe(&filter, key, qos).is_ok() {
                    if let Some(session) = slot(&mut self.sessions, key) {
                        session.subscriptions.insert(filter.into(), qos);
                    }
                }
            }
        }
    }
}
