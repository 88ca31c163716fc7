//! The engine: one thread that owns an `iot-broker-core` state machine, feeds it what the
//! connection tasks report, commits the store, then hands each connection the packets the broker
//! emitted. Shared by every program that runs a broker (the cloud broker, the edge core's local
//! broker); [`connection`] is the tokio side of one MQTT connection.
//!
//! One thread, because the broker is a single state machine; the socket work runs on tokio. The
//! order inside one turn is the durability contract of `iot-broker-core`: process events →
//! commit the store (one fsync for the whole batch) → only then write the acknowledgements.
//!
//! A program talks to its engine with its own request enum ([`Program::Request`]): each variant
//! carries a [`Reply`] of the exact type its caller awaits, so the compiler proves every caller
//! gets the answer it asked for. No `Any`, no downcasts.
//!
//! May import: `store/`. Must not import a program folder.

pub mod connection;

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use iot_broker_core::auth::{Authorizer, TransportInfo};
use iot_broker_core::codec::{DecodeError, QoS, SharedPacket};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::persist::Persistence;
use iot_broker_core::service::ReservedTopicService;
use iot_broker_core::topic::TopicName;
use iot_broker_core::{Broker, ConnectionId, Output};
use tokio::sync::{mpsc, oneshot};

use crate::store::{SharedStore, StoreError};

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

/// Where the engine sends a connection's packets.
pub type Outbox = mpsc::UnboundedSender<ToConnection>;

/// The sending half of a typed answer: what a request's caller awaits. The engine sends it only
/// after the turn's commit, so an answer never reports a change a crash could still lose.
pub type Reply<T> = oneshot::Sender<T>;

/// What the outside world asks of the engine. `Q` is the program's own request enum.
#[derive(Debug)]
pub enum Event<Q> {
    /// A transport connected: register it; the reply carries its id.
    Open {
        /// Who it is.
        transport: TransportInfo,
        /// Where its packets go.
        outbox: Outbox,
        /// The id the broker gave it.
        reply: Reply<ConnectionId>,
    },
    /// A decoded packet.
    Packet(ConnectionId, SharedPacket),
    /// The bytes did not decode: the broker closes the connection.
    DecodeError(ConnectionId, DecodeError),
    /// The transport went away.
    Lost(ConnectionId),
    /// A server-side publish (HTTPS publish, a bridge), already authorized by the caller.
    Publish {
        /// The topic.
        topic: TopicName,
        /// The payload.
        payload: Bytes,
        /// QoS 0 or 1.
        qos: QoS,
        /// RETAIN.
        retain: bool,
        /// Answered after the commit that holds it.
        reply: Reply<()>,
    },
    /// A program request, answered by [`Program::handle`].
    Request(Q),
    /// Stop: wills fire, persistent sessions stay, the store is committed.
    Shutdown(Reply<()>),
}

/// A program's part of the engine: its broker's outside parts and how it answers its requests.
pub trait Program {
    /// The broker's authorizer.
    type Authorizer: Authorizer;
    /// The broker's reserved-topic service.
    type Reserved: ReservedTopicService;
    /// The broker's persistence.
    type Persistence: Persistence;
    /// The program's request enum (each variant with its own typed [`Reply`]).
    type Request: Send + 'static;

    /// Answers `request` on the engine thread. Changes recorded in the store are committed at the
    /// end of the turn; answers go through [`Turn::reply`] so they leave after that commit.
    fn handle(&mut self, turn: &mut Turn<'_, Self>, request: Self::Request);

    /// Runs once per engine turn, after the turn's events and before its commit, and at least
    /// once a second when nothing happens: the program's own timers and the work that follows
    /// from several events (the cloud broker saves its registry here; the edge core drains its
    /// bridge, spool and shadow sync). Default: nothing.
    fn after_events(&mut self, turn: &mut Turn<'_, Self>) {
        let _ = turn;
    }
}

/// The broker of program `P`.
pub type BrokerOf<P> =
    Broker<<P as Program>::Authorizer, <P as Program>::Reserved, <P as Program>::Persistence>;

/// What a request handler may touch during one engine turn.
pub struct Turn<'a, P: Program + ?Sized> {
    /// The broker.
    pub broker: &'a mut BrokerOf<P>,
    /// The store (changes recorded in it are committed at the end of the turn).
    pub store: &'a SharedStore,
    /// Store commits so far.
    pub commits: u64,
    /// Unix milliseconds at the start of this request.
    pub now_ms: u64,
    answers: &'a mut Vec<Box<dyn FnOnce() + Send>>,
}

impl<P: Program + ?Sized> std::fmt::Debug for Turn<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("commits", &self.commits)
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

impl<P: Program + ?Sized> Turn<'_, P> {
    /// Sends `answer` to `reply` once the turn's changes are committed (dropped, so the caller
    /// sees the engine as stopped, if the commit fails).
    pub fn reply<T: Send + 'static>(&mut self, reply: Reply<T>, answer: T) {
        self.answers.push(Box::new(move || {
            let _ = reply.send(answer);
        }));
    }

    /// Runs `action` once the turn's changes are committed (never, if the commit fails): for
    /// anything that tells the outside world about a change, such as bytes that acknowledge it.
    pub fn after_commit(&mut self, action: impl FnOnce() + Send + 'static) {
        self.answers.push(Box::new(action));
    }
}

/// Sends events to the engine thread.
#[derive(Debug)]
pub struct EngineHandle<Q> {
    tx: Sender<Event<Q>>,
}

impl<Q> Clone for EngineHandle<Q> {
    fn clone(&self) -> Self {
        EngineHandle {
            tx: self.tx.clone(),
        }
    }
}

impl<Q> EngineHandle<Q> {
    /// A handle over a channel's sending side.
    pub fn new(tx: Sender<Event<Q>>) -> Self {
        EngineHandle { tx }
    }

    /// Sends one event; `false` when the engine has stopped.
    pub fn send(&self, event: Event<Q>) -> bool {
        self.tx.send(event).is_ok()
    }

    /// Registers a connection.
    pub async fn open(&self, transport: TransportInfo, outbox: Outbox) -> Option<ConnectionId> {
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

    /// Publishes from the server side; `None` when the engine stopped or the commit failed.
    pub async fn publish(
        &self,
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Option<()> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Event::Publish {
            topic,
            payload,
            qos,
            retain,
            reply,
        }) {
            return None;
        }
        rx.await.ok()
    }

    /// Sends the request `make` builds around a fresh reply channel and awaits the answer;
    /// `None` when the engine stopped (or its commit failed) before answering. For example
    /// `engine.ask(|reply| BrokerRequest::Metrics { reply })` awaits exactly the type that
    /// variant's reply carries.
    pub async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Q) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Event::Request(make(reply))) {
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

/// What a turn collected to hand out after its commit.
struct Pending {
    outboxes: HashMap<ConnectionId, Outbox>,
    answers: Vec<Box<dyn FnOnce() + Send>>,
    commits: u64,
}

/// Runs the engine until shutdown or until every handle is dropped. Returns an error if the store
/// cannot commit: then nothing of the failed batch was acknowledged.
pub fn run<P: Program>(
    mut program: P,
    mut broker: BrokerOf<P>,
    store: SharedStore,
    events: Receiver<Event<P::Request>>,
) -> Result<(), StoreError> {
    let mut pending = Pending {
        outboxes: HashMap::new(),
        answers: Vec::new(),
        commits: 0,
    };
    let mut last_tick = Instant::now();
    loop {
        let wait = Duration::from_secs(1).saturating_sub(last_tick.elapsed());
        let first = match events.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                broker.shutdown(now_ms());
                after_events(&mut program, &mut broker, &store, &mut pending);
                flush(&mut broker, &store, &mut pending)?;
                return Ok(());
            }
        };
        let mut batch: Vec<Event<P::Request>> = first.into_iter().collect();
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
                    pending.outboxes.insert(conn, outbox);
                    let _ = reply.send(conn);
                }
                Event::Packet(conn, packet) => broker.handle_packet(conn, packet, now),
                Event::DecodeError(conn, error) => broker.handle_decode_error(conn, &error, now),
                Event::Lost(conn) => {
                    broker.connection_lost(conn, now);
                    pending.outboxes.remove(&conn);
                }
                Event::Publish {
                    topic,
                    payload,
                    qos,
                    retain,
                    reply,
                } => {
                    broker.publish(topic, payload, qos, retain, now);
                    pending.answers.push(Box::new(move || {
                        let _ = reply.send(());
                    }));
                }
                Event::Request(request) => {
                    let mut turn = Turn {
                        broker: &mut broker,
                        store: &store,
                        commits: pending.commits,
                        now_ms: now,
                        answers: &mut pending.answers,
                    };
                    program.handle(&mut turn, request);
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
        after_events(&mut program, &mut broker, &store, &mut pending);
        flush(&mut broker, &store, &mut pending)?;
        if let Some(reply) = shutdown {
            let _ = reply.send(());
            return Ok(());
        }
    }
}

/// The program's once-a-turn work.
fn after_events<P: Program>(
    program: &mut P,
    broker: &mut BrokerOf<P>,
    store: &SharedStore,
    pending: &mut Pending,
) {
    let mut turn = Turn {
        broker,
        store,
        commits: pending.commits,
        now_ms: now_ms(),
        answers: &mut pending.answers,
    };
    program.after_events(&mut turn);
}

/// Commit, then deliver: the order that makes every acknowledgement durable.
fn flush<A: Authorizer, R: ReservedTopicService, S: Persistence>(
    broker: &mut Broker<A, R, S>,
    store: &SharedStore,
    pending: &mut Pending,
) -> Result<(), StoreError> {
    {
        let mut store = store.borrow_mut();
        if store.has_pending() {
            if let Err(error) = store.commit() {
                tracing::error!(%error, "store commit failed; stopping without acknowledging");
                // The answers are dropped unsent: their callers see the engine as stopped.
                return Err(error);
            }
            pending.commits += 1;
        }
    }
    for answer in pending.answers.drain(..) {
        answer();
    }
    while let Some(output) = broker.poll_output() {
        match output {
            Output::Send { conn, packet } => {
                if let Some(outbox) = pending.outboxes.get(&conn) {
                    let _ = outbox.send(ToConnection::Packet(packet));
                }
            }
            Output::Close { conn, reason } => {
                if let Some(outbox) = pending.outboxes.remove(&conn) {
                    let _ = outbox.send(ToConnection::Close(reason));
                }
            }
        }
    }
    Ok(())
}
