//! The engine: one thread that owns an `iot-broker-core` state machine, feeds it what the
//! connection tasks report, hands the store's changes to the commit thread, then hands each
//! connection the packets the broker emitted. Shared by every program that runs a broker (the
//! cloud broker, the edge core's local broker); [`connection`] is the tokio side of one MQTT
//! connection and [`outbox`] its bounded output queue.
//!
//! One thread, because the broker is a single state machine; the socket work runs on tokio and
//! the fsync on the [`commit`] thread. The durability contract of `iot-broker-core` holds per
//! turn: process a batch of events → hand the turn's changes to the commit thread (group commit:
//! one fsync for every batch waiting) → write the turn's packets and answers only once that commit
//! is reported. Turns go on while a commit runs; their packets wait behind it, in order, so nothing
//! leaves before what came before it, and nothing acknowledges what a crash could still lose.
//!
//! A program talks to its engine with its own request enum ([`Program::Request`]): each variant
//! carries a [`Reply`] of the exact type its caller awaits, so the compiler proves every caller
//! gets the answer it asked for. No `Any`, no downcasts.
//!
//! May import: `store/`. Must not import a program folder.

pub mod commit;
pub mod connection;
pub mod outbox;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use iot_broker_core::auth::{Authorizer, TransportInfo};
use iot_broker_core::codec::{DecodeError, QoS, SharedPacket};
use iot_broker_core::persist::Persistence;
use iot_broker_core::service::ReservedTopicService;
use iot_broker_core::topic::TopicName;
use iot_broker_core::{Broker, ConnectionId, Output};
use tokio::sync::oneshot;

use crate::store::{SharedStore, StoreError};
use commit::{GroupCommit, MAX_HELD_TURNS};
pub use outbox::{Outbox, Pushed, ToConnection};

/// Events processed per turn before committing and flushing.
const MAX_BATCH: usize = 512;

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
    /// The packets one socket read completed, in order.
    Packets {
        /// Whose.
        conn: ConnectionId,
        /// The packets.
        packets: Vec<SharedPacket>,
        /// What they count for against the connection's inbound budget
        /// ([`Outbox::add_inbound`]).
        bytes: usize,
    },
    /// The connection's output came back under half its budget after the broker was told it was
    /// congested.
    OutputReady(ConnectionId),
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
    /// QoS 0 PUBLISH packets dropped so far over connections' output budgets.
    pub dropped_output: u64,
    /// Unix milliseconds at the start of this request.
    pub now_ms: u64,
    answers: &'a mut Vec<Box<dyn FnOnce() + Send>>,
}

impl<P: Program + ?Sized> std::fmt::Debug for Turn<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("commits", &self.commits)
            .field("dropped_output", &self.dropped_output)
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
    output_budget: usize,
}

impl<Q> Clone for EngineHandle<Q> {
    fn clone(&self) -> Self {
        EngineHandle {
            tx: self.tx.clone(),
            output_budget: self.output_budget,
        }
    }
}

/// The engine's side of its event channel, for [`run`].
#[derive(Debug)]
pub struct Events<Q> {
    rx: Receiver<Event<Q>>,
}

/// A new engine channel: the handle connections and programs send through, and the events
/// [`run`] takes. Each connection's output is bounded by `output_budget` bytes (see
/// [`outbox`]). The channel itself is bounded per connection: a connection's reader stops
/// reading while the engine has not processed `output_budget` bytes of its packets.
pub fn channel<Q>(output_budget: usize) -> (EngineHandle<Q>, Events<Q>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (EngineHandle { tx, output_budget }, Events { rx })
}

impl<Q> EngineHandle<Q> {
    /// Sends one event; `false` when the engine has stopped.
    pub fn send(&self, event: Event<Q>) -> bool {
        self.tx.send(event).is_ok()
    }

    /// The byte budget of each connection's output.
    pub fn output_budget(&self) -> usize {
        self.output_budget
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

/// A turn's packets and answers, waiting for the commit that holds the turn's changes (or, for a
/// turn without changes, for the commits of the turns before it: order is kept).
struct Held {
    seq: u64,
    outputs: Vec<Output>,
    answers: Vec<Box<dyn FnOnce() + Send>>,
}

/// The engine's state besides the broker and the program.
struct EngineState {
    /// Looked up once per delivery: keyed with a fast hash (connection ids are not chosen by
    /// clients).
    outboxes: HashMap<ConnectionId, Outbox, foldhash::fast::RandomState>,
    answers: Vec<Box<dyn FnOnce() + Send>>,
    held: VecDeque<Held>,
    commit: GroupCommit,
    /// QoS 0 PUBLISH packets dropped over connections' output budgets.
    dropped_output: u64,
    /// Connections to wake after a delivery.
    touched: Vec<ConnectionId>,
}

/// Runs the engine until shutdown or until every handle is dropped. Returns an error if the store
/// cannot commit: then nothing of the failed batch was acknowledged.
pub fn run<P: Program>(
    mut program: P,
    mut broker: BrokerOf<P>,
    store: SharedStore,
    events: Events<P::Request>,
) -> Result<(), StoreError> {
    let commit = GroupCommit::start(store.borrow().committer())?;
    let mut state = EngineState {
        outboxes: HashMap::default(),
        answers: Vec::new(),
        held: VecDeque::new(),
        commit,
        dropped_output: 0,
        touched: Vec::new(),
    };
    let mut last_tick = Instant::now();
    let mut batch: Vec<Event<P::Request>> = Vec::with_capacity(MAX_BATCH);
    loop {
        if state.held.len() >= MAX_HELD_TURNS {
            // Back-pressure: take no new events until the disk catches up.
            state.commit.wait_one()?;
            state.release(&mut broker);
            continue;
        }
        // Wake for the broker's next deadline, and at least once a second for the program.
        let mut wait = Duration::from_secs(1).saturating_sub(last_tick.elapsed());
        if let Some(at) = broker.poll_timeout() {
            wait = wait.min(Duration::from_millis(at.saturating_sub(now_ms())));
        }
        let mut disconnected = false;
        crossbeam_channel::select! {
            recv(events.rx) -> event => match event {
                Ok(event) => batch.push(event),
                Err(_) => disconnected = true,
            },
            recv(state.commit.reports()) -> report => {
                if let Ok(report) = report {
                    state.commit.on_report(report).inspect_err(|error| {
                        tracing::error!(%error, "store commit failed; stopping without acknowledging");
                    })?;
                }
            },
            default(wait) => {},
        }
        if disconnected {
            broker.shutdown(now_ms());
            state.end_turn(&mut program, &mut broker, &store)?;
            state.commit.wait_all()?;
            state.release(&mut broker);
            return Ok(());
        }
        while let Ok(report) = state.commit.reports().try_recv() {
            state.commit.on_report(report)?;
        }
        state.release(&mut broker);
        while batch.len() < MAX_BATCH {
            match events.rx.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let now = now_ms();
        let mut shutdown = None;
        for event in batch.drain(..) {
            match event {
                Event::Open {
                    transport,
                    outbox,
                    reply,
                } => {
                    let conn = broker.open(transport, now);
                    state.outboxes.insert(conn, outbox);
                    let _ = reply.send(conn);
                }
                Event::Packets {
                    conn,
                    packets,
                    bytes,
                } => {
                    for packet in packets {
                        broker.handle_packet(conn, packet, now);
                    }
                    if let Some(outbox) = state.outboxes.get(&conn) {
                        outbox.processed_inbound(bytes);
                    }
                }
                Event::OutputReady(conn) => broker.output_ready(conn, now),
                Event::DecodeError(conn, error) => broker.handle_decode_error(conn, &error, now),
                Event::Lost(conn) => {
                    broker.connection_lost(conn, now);
                    state.outboxes.remove(&conn);
                }
                Event::Publish {
                    topic,
                    payload,
                    qos,
                    retain,
                    reply,
                } => {
                    broker.publish(topic, payload, qos, retain, now);
                    state.answers.push(Box::new(move || {
                        let _ = reply.send(());
                    }));
                }
                Event::Request(request) => {
                    let mut turn = Turn {
                        broker: &mut broker,
                        store: &store,
                        commits: state.commit.commits(),
                        dropped_output: state.dropped_output,
                        now_ms: now,
                        answers: &mut state.answers,
                    };
                    program.handle(&mut turn, request);
                }
                Event::Shutdown(reply) => {
                    broker.shutdown(now);
                    shutdown = Some(reply);
                }
            }
        }
        let now = now_ms();
        if broker.poll_timeout().is_some_and(|at| at <= now) {
            broker.tick(now);
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
        }
        state.end_turn(&mut program, &mut broker, &store)?;
        if let Some(reply) = shutdown {
            state.commit.wait_all()?;
            state.release(&mut broker);
            let _ = reply.send(());
            return Ok(());
        }
    }
}

impl EngineState {
    /// Ends a turn: the program's once-a-turn work, then the turn's changes go to the commit
    /// thread and its packets and answers wait for that commit (or leave now when nothing is
    /// waiting for the disk).
    fn end_turn<P: Program>(
        &mut self,
        program: &mut P,
        broker: &mut BrokerOf<P>,
        store: &SharedStore,
    ) -> Result<(), StoreError> {
        {
            let mut turn = Turn {
                broker,
                store,
                commits: self.commit.commits(),
                dropped_output: self.dropped_output,
                now_ms: now_ms(),
                answers: &mut self.answers,
            };
            program.after_events(&mut turn);
        }
        let batch = store.borrow_mut().take_batch();
        let seq = match batch {
            Some(batch) => self.commit.submit(batch),
            None if self.commit.waiting() => self.commit.submitted(),
            None => {
                // Nothing waits for the disk: deliver now.
                for answer in self.answers.drain(..) {
                    answer();
                }
                while let Some(output) = broker.poll_output() {
                    self.deliver(broker, output);
                }
                self.wake();
                return Ok(());
            }
        };
        let mut outputs = Vec::new();
        while let Some(output) = broker.poll_output() {
            outputs.push(output);
        }
        self.held.push_back(Held {
            seq,
            outputs,
            answers: std::mem::take(&mut self.answers),
        });
        Ok(())
    }

    /// Delivers the held turns whose commit is durable, in order.
    fn release<A: Authorizer, R: ReservedTopicService, S: Persistence>(
        &mut self,
        broker: &mut Broker<A, R, S>,
    ) {
        let durable = self.commit.durable();
        while self.held.front().is_some_and(|held| held.seq <= durable) {
            let Some(held) = self.held.pop_front() else {
                break;
            };
            for answer in held.answers {
                answer();
            }
            for output in held.outputs {
                self.deliver(broker, output);
            }
        }
        self.wake();
    }

    /// Hands one output to its connection under the output budget's policy.
    fn deliver<A: Authorizer, R: ReservedTopicService, S: Persistence>(
        &mut self,
        broker: &mut Broker<A, R, S>,
        output: Output,
    ) {
        match output {
            Output::Send { conn, packet } => {
                let Some(outbox) = self.outboxes.get(&conn) else {
                    return;
                };
                match outbox.push_quiet(ToConnection::Packet(packet)) {
                    Pushed::Queued => {}
                    Pushed::Congested => broker.output_congested(conn),
                    Pushed::Dropped => self.dropped_output += 1,
                    Pushed::Gone => return,
                }
                if self.touched.last() != Some(&conn) {
                    self.touched.push(conn);
                }
            }
            Output::Close { conn, reason } => {
                if let Some(outbox) = self.outboxes.remove(&conn) {
                    outbox.push(ToConnection::Close(reason));
                }
            }
        }
    }

    /// Wakes the writers of the connections that got packets.
    fn wake(&mut self) {
        for conn in self.touched.drain(..) {
            if let Some(outbox) = self.outboxes.get(&conn) {
                outbox.wake_writer();
            }
        }
    }
}
