//! The engine thread: owns the sans-IO broker, feeds it what the connection tasks report, commits
//! the store, then hands each connection the packets the broker emitted.
//!
//! One thread, because the broker is a single state machine; the socket work runs on tokio. The
//! order inside one turn is the durability contract of `iot-broker-core`: process events →
//! commit the store (one fsync for the whole batch) → only then write the acknowledgements.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use iot_auth::registry::CertificateRegistry;
use iot_broker_core::auth::{Authorizer, TransportInfo};
use iot_broker_core::codec::{DecodeError, QoS, SharedPacket};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::message::Message;
use iot_broker_core::persist::Persistence;
use iot_broker_core::service::ReservedTopicService;
use iot_broker_core::stats::Stats;
use iot_broker_core::topic::TopicName;
use iot_broker_core::{Broker, ConnectionId, Output};
use tokio::sync::{mpsc, oneshot};

use crate::store::SharedStore;

/// Events processed per turn before committing and flushing.
const MAX_BATCH: usize = 512;

/// What the engine sends a connection task.
#[derive(Debug)]
pub enum ToConnection {
    /// Write this packet.
    Packet(SharedPacket),
    /// Write what came before, then close.
    Close(DisconnectReason),
}

/// What the outside world asks of the engine.
pub enum Event {
    /// A transport connected: register it; the reply carries its id.
    Open {
        /// Who it is.
        transport: TransportInfo,
        /// Where its packets go.
        outbox: mpsc::UnboundedSender<ToConnection>,
        /// The id the broker gave it.
        reply: oneshot::Sender<ConnectionId>,
    },
    /// A decoded packet.
    Packet(ConnectionId, SharedPacket),
    /// The bytes did not decode: the broker closes the connection.
    DecodeError(ConnectionId, DecodeError),
    /// The transport went away.
    Lost(ConnectionId),
    /// A server-side publish (HTTPS); the reply says whether it was durable and routed.
    Publish {
        /// The topic.
        topic: TopicName,
        /// The payload.
        payload: Bytes,
        /// QoS 0 or 1.
        qos: QoS,
        /// RETAIN.
        retain: bool,
        /// Answered after the commit.
        reply: oneshot::Sender<bool>,
    },
    /// A question for (or a change to) the engine's state, run on the engine thread; what it
    /// returns is delivered after the turn's commit, so an answer never reports a change that a
    /// crash could still lose.
    Query(Ask),
    /// Stop: wills fire, persistent sessions stay, the store is committed.
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Open { transport, .. } => f
                .debug_struct("Open")
                .field("transport", transport)
                .finish(),
            Event::Packet(conn, packet) => {
                f.debug_tuple("Packet").field(conn).field(packet).finish()
            }
            Event::DecodeError(conn, e) => {
                f.debug_tuple("DecodeError").field(conn).field(e).finish()
            }
            Event::Lost(conn) => f.debug_tuple("Lost").field(conn).finish(),
            Event::Publish {
                topic, qos, retain, ..
            } => f
                .debug_struct("Publish")
                .field("topic", topic)
                .field("qos", qos)
                .field("retain", retain)
                .finish(),
            Event::Query(_) => f.write_str("Query"),
            Event::Shutdown(_) => f.write_str("Shutdown"),
        }
    }
}

/// Hands a query's answer over; run after the commit.
pub type Deliver = Box<dyn FnOnce() + Send>;

/// A query: runs on the engine thread, returns how to deliver its answer.
pub type Ask = Box<dyn FnOnce(&mut dyn EngineState) -> Deliver + Send>;

/// What a [`Event::Query`] can look at.
pub trait EngineState {
    /// The broker's reserved-topic service (downcast to the program's type, e.g. the shadows).
    fn reserved(&mut self) -> &mut dyn std::any::Any;
    /// Delivers a message a service of the server emits (the shadow REST API's notices).
    fn deliver(&mut self, message: &Message);
    /// The store (changes recorded in it are committed at the end of the turn).
    fn store(&self) -> SharedStore;
    /// Broker counters.
    fn stats(&self) -> Stats;
    /// Open connections.
    fn connections(&self) -> usize;
    /// Live and persistent sessions.
    fn sessions(&self) -> usize;
    /// Retained messages.
    fn retained(&self) -> usize;
    /// Extra counters of the program (shadow requests, store commits).
    fn counters(&self) -> Vec<(&'static str, u64)>;
}

/// Sends events to the engine thread.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    tx: Sender<Event>,
}

impl EngineHandle {
    /// A handle over a channel's sending side.
    pub fn new(tx: Sender<Event>) -> Self {
        EngineHandle { tx }
    }

    /// Sends one event; `false` when the engine has stopped.
    pub fn send(&self, event: Event) -> bool {
        self.tx.send(event).is_ok()
    }

    /// Registers a connection.
    pub async fn open(
        &self,
        transport: TransportInfo,
        outbox: mpsc::UnboundedSender<ToConnection>,
    ) -> Option<ConnectionId> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Event::Open {
            transport,
            outbox,
            reply,
        }) {
            return None;
        }
        rx.await.ok()
    }

    /// Asks the engine a question.
    pub async fn query<T: Send + 'static>(
        &self,
        ask: impl FnOnce(&mut dyn EngineState) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Event::Query(Box::new(move |state| {
            let answer = ask(state);
            Box::new(move || {
                let _ = reply.send(answer);
            })
        })));
        if !sent {
            return None;
        }
        rx.await.ok()
    }

    /// Stops the engine and waits for its last commit.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.send(Event::Shutdown(reply)) {
            let _ = rx.await;
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

struct State<'a, A: Authorizer, R: ReservedTopicService, P: Persistence> {
    broker: &'a mut Broker<A, R, P>,
    store: &'a SharedStore,
    counters: Vec<(&'static str, u64)>,
}

impl<A: Authorizer, R: ReservedTopicService + 'static, P: Persistence> EngineState
    for State<'_, A, R, P>
{
    fn reserved(&mut self) -> &mut dyn std::any::Any {
        self.broker.reserved_mut()
    }
    fn deliver(&mut self, message: &Message) {
        self.broker.deliver_service_message(message, now_ms());
    }
    fn store(&self) -> SharedStore {
        self.store.clone()
    }
    fn stats(&self) -> Stats {
        self.broker.stats()
    }
    fn connections(&self) -> usize {
        self.broker.connection_count()
    }
    fn sessions(&self) -> usize {
        self.broker.session_count()
    }
    fn retained(&self) -> usize {
        self.broker.retained_count()
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.counters.clone()
    }
}

/// Extra counters the engine reports besides the broker's.
pub type Counters<A, R, P> = fn(&mut Broker<A, R, P>) -> Vec<(&'static str, u64)>;

/// Runs the engine until shutdown or until every handle is dropped. Returns an error if the store
/// cannot commit: then nothing of the failed batch was acknowledged.
///
/// When `registry` is given, its JSON is saved with the next commit whenever it changed (say, a
/// certificate auto-registered during a handshake).
pub fn run<A: Authorizer, R: ReservedTopicService + 'static, P: Persistence>(
    mut broker: Broker<A, R, P>,
    store: SharedStore,
    events: Receiver<Event>,
    counters: Counters<A, R, P>,
    registry: Option<Arc<RwLock<CertificateRegistry>>>,
) -> Result<(), crate::store::StoreError> {
    let mut saved_generation = registry.as_ref().map(|r| {
        r.read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation()
    });
    let mut outboxes: HashMap<ConnectionId, mpsc::UnboundedSender<ToConnection>> = HashMap::new();
    let mut publish_replies: Vec<oneshot::Sender<bool>> = Vec::new();
    let mut answers: Vec<Deliver> = Vec::new();
    let mut last_tick = Instant::now();
    let mut commits = 0u64;
    loop {
        let wait = Duration::from_secs(1).saturating_sub(last_tick.elapsed());
        let first = match events.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                broker.shutdown(now_ms());
                flush(
                    &mut broker,
                    &store,
                    &mut outboxes,
                    &mut publish_replies,
                    &mut answers,
                    &mut commits,
                )?;
                return Ok(());
            }
        };
        let mut batch: Vec<Event> = first.into_iter().collect();
        while batch.len() < MAX_BATCH {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let mut shutdown = None;
        for event in batch {
            let now = now_ms();
            match event {
                Event::Open {
                    transport,
                    outbox,
                    reply,
                } => {
                    let conn = broker.open(transport, now);
                    outboxes.insert(conn, outbox);
                    let _ = reply.send(conn);
                }
                Event::Packet(conn, packet) => broker.handle_packet(conn, packet, now),
                Event::DecodeError(conn, error) => broker.handle_decode_error(conn, &error, now),
                Event::Lost(conn) => {
                    broker.connection_lost(conn, now);
                    outboxes.remove(&conn);
                }
                Event::Publish {
                    topic,
                    payload,
                    qos,
                    retain,
                    reply,
                } => {
                    broker.publish(topic, payload, qos, retain, now);
                    publish_replies.push(reply);
                }
                Event::Query(ask) => {
                    let extra = counters(&mut broker);
                    let mut state = State {
                        broker: &mut broker,
                        store: &store,
                        counters: extra,
                    };
                    state.counters.push(("store_commits", commits));
                    answers.push(ask(&mut state));
                }
                Event::Shutdown(reply) => {
                    broker.shutdown(now);
                    shutdown = Some(reply);
                }
            }
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            broker.tick(now_ms());
            last_tick = Instant::now();
        }
        if let Some(registry) = &registry {
            let registry = registry.read().unwrap_or_else(PoisonError::into_inner);
            if Some(registry.generation()) != saved_generation {
                saved_generation = Some(registry.generation());
                store.borrow_mut().put_registry_json(&registry.to_json());
            }
        }
        flush(
            &mut broker,
            &store,
            &mut outboxes,
            &mut publish_replies,
            &mut answers,
            &mut commits,
        )?;
        if let Some(reply) = shutdown {
            let _ = reply.send(());
            return Ok(());
        }
    }
}

/// Commit, then deliver: the order that makes every acknowledgement durable.
fn flush<A: Authorizer, R: ReservedTopicService, P: Persistence>(
    broker: &mut Broker<A, R, P>,
    store: &SharedStore,
    outboxes: &mut HashMap<ConnectionId, mpsc::UnboundedSender<ToConnection>>,
    publish_replies: &mut Vec<oneshot::Sender<bool>>,
    answers: &mut Vec<Deliver>,
    commits: &mut u64,
) -> Result<(), crate::store::StoreError> {
    {
        let mut store = store.borrow_mut();
        if store.has_pending() {
            if let Err(error) = store.commit() {
                tracing::error!(%error, "store commit failed; stopping without acknowledging");
                return Err(error);
            }
            *commits += 1;
        }
    }
    // Sent only after a successful commit; a failed one drops the senders (HTTPS answers 500).
    for reply in publish_replies.drain(..) {
        let _ = reply.send(true);
    }
    for deliver in answers.drain(..) {
        deliver();
    }
    while let Some(output) = broker.poll_output() {
        match output {
            Output::Send { conn, packet } => {
                if let Some(outbox) = outboxes.get(&conn) {
                    let _ = outbox.send(ToConnection::Packet(packet));
                }
            }
            Output::Close { conn, reason } => {
                if let Some(outbox) = outboxes.remove(&conn) {
                    let _ = outbox.send(ToConnection::Close(reason));
                }
            }
        }
    }
    Ok(())
}
