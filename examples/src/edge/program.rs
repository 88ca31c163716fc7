//! The edge core's part of the engine: the local broker's owner, on the engine thread, sans-IO
//! apart from the channel its cloud bytes leave by. It holds the core's MQTT session to the
//! cloud ([`ClientSession`], the same one the cars use), the durable spool, the shadow sync
//! engine and the local handlers, and each turn:
//!
//! 1. relays what the local broker accepted (the bridge's tap): towards the cloud into the
//!    spool, towards the handlers into their calls;
//! 2. runs the handlers' timers and routes what they publish (as coming from `Pubsub`);
//! 3. takes the cloud session's events: cloud messages are relayed locally or handed to shadow
//!    sync; a PUBACK takes its message out of the spool;
//! 4. runs shadow sync (cloud requests, local shadow writes, records to save);
//! 5. drains the spool into the session, at most `max_inflight` unacknowledged at once;
//! 6. sends the session's bytes to the cloud link after the turn's commit, so a cloud PUBACK
//!    for a message from the cloud, or a spool message, never leaves before the store holds
//!    what it depends on.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use iot_broker_core::codec::QoS;
use iot_broker_core::message::Message;
use iot_broker_core::topic::TopicName;
use iot_shadow::sync::{ShadowSync, SyncAction, SyncStats};
use iot_shadow::{ShadowKey, ShadowStore, StoredShadow, parse_topic};
use serde_json::json;
use tokio::sync::mpsc;

use super::bridge::{BridgeEndpoint, Relay, Visited};
use super::device_auth::{ClientDeviceAuthorizer, DeviceRefusals};
use super::handlers::{HandlerMessage, HandlerOutput, LocalHandler, ShadowReport};
use super::services::{EdgeServices, Observed};
use super::spool::{Spool, SpoolError, SpoolStats};
use crate::device::{ClientSession, PublishId, PublishOutcome, SessionEvent};
use crate::engine::{Program, Reply, Turn};
use crate::store::BrokerPersistence;
use crate::store::spool::DurableSpool;

/// Chunks of bytes waiting for the cloud link's socket at most; when full the link is declared
/// broken (the session reconnects and resends what is unacknowledged).
pub const CLOUD_WRITE_QUEUE: usize = 4096;

/// What the edge core's tasks ask its engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum EdgeRequest {
    /// The cloud link opened a transport: start the session on it.
    CloudUp {
        /// Names this transport; later reports of an older one are ignored.
        epoch: u64,
        /// Where the session's bytes go.
        to_cloud: mpsc::Sender<Bytes>,
    },
    /// Bytes from the cloud.
    CloudBytes {
        /// The transport.
        epoch: u64,
        /// What was read.
        bytes: Bytes,
    },
    /// The transport closed.
    CloudDown {
        /// The transport.
        epoch: u64,
    },
    /// The core's state, for the status log, metrics and tests.
    Status {
        /// The answer.
        reply: Reply<EdgeStatus>,
    },
    /// Stop: tell the cloud the core goes offline and disconnect cleanly.
    Stop {
        /// Answered once the goodbye is on its way.
        reply: Reply<()>,
    },
}

/// The core's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeStatus {
    /// Whether the cloud session is connected.
    pub cloud_connected: bool,
    /// Things of the client devices connected now.
    pub things: Vec<String>,
    /// Open local connections.
    pub local_connections: usize,
    /// The spool.
    pub spool: SpoolStats,
    /// Shadow sync.
    pub sync: SyncStats,
    /// Local refusals by operation.
    pub refusals: DeviceRefusals,
    /// The core's own counters.
    pub counters: EdgeCounters,
}

/// The core's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeCounters {
    /// Messages from the cloud relayed locally (to the broker or the handlers).
    pub from_cloud: u64,
    /// Messages the cloud acknowledged (spool drained).
    pub to_cloud: u64,
    /// Cloud-bound messages the spool refused.
    pub spool_refused: u64,
    /// Handler calls.
    pub handler_calls: u64,
    /// Handler messages dropped over their per-call bound.
    pub handler_dropped: u64,
    /// Relayed messages whose topic the target refused.
    pub relay_refused: u64,
    /// Cloud connections accepted.
    pub cloud_connects: u64,
}

/// A handler and its filters, split into levels.
type Handler = (Box<dyn LocalHandler>, Vec<Vec<String>>);

/// The edge core program.
pub struct EdgeCore {
    thing_name: String,
    session: ClientSession,
    link: Option<(u64, mpsc::Sender<Bytes>)>,
    link_broken: Arc<AtomicBool>,
    spool: Spool<DurableSpool>,
    max_inflight: usize,
    in_cloud: HashMap<PublishId, u64>,
    sync: ShadowSync,
    sync_all: bool,
    synced_things: BTreeSet<String>,
    handlers: Vec<Handler>,
    counters: EdgeCounters,
    /// Handlers' shadow reports waiting to be applied (this turn).
    reports: Vec<ShadowReport>,
    status_topic: String,
    last_things: Vec<String>,
    next_status_ms: u64,
    stopping: bool,
}

impl std::fmt::Debug for EdgeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeCore")
            .field("thing_name", &self.thing_name)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// How often the core's status is published while nothing changes.
pub const STATUS_EVERY_MS: u64 = 10_000;

/// The status topic of core `thing`: `edge/{thing}/status` (retained; the core's will sets
/// `"online": false` there when its link dies).
pub fn status_topic(thing: &str) -> String {
    format!("edge/{thing}/status")
}

fn filter_levels(filter: &str) -> Vec<String> {
    filter.split('/').map(str::to_owned).collect()
}

fn filter_matches(levels: &[String], topic: &str) -> bool {
    let mut parts = topic.split('/');
    for level in levels {
        if level == "#" {
            return true;
        }
        match parts.next() {
            Some(part) if level == "+" || level == part => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

/// What the program needs at start.
pub struct EdgeParts {
    /// The core's thing name.
    pub thing_name: String,
    /// Its cloud session (subscriptions are added here).
    pub session: ClientSession,
    /// The spool, opened on the store.
    pub spool: Spool<DurableSpool>,
    /// Spool messages unacknowledged in the cloud at once.
    pub max_inflight: usize,
    /// Shadow sync, with its saved records.
    pub sync: ShadowSync,
    /// Sync every thing that connects (`things = ["*"]`), besides those listed.
    pub sync_all: bool,
    /// Things whose classic shadow is synced from the start.
    pub sync_things: Vec<String>,
    /// The handlers.
    pub handlers: Vec<Box<dyn LocalHandler>>,
}

impl std::fmt::Debug for EdgeParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeParts")
            .field("thing_name", &self.thing_name)
            .finish_non_exhaustive()
    }
}

impl EdgeCore {
    /// The program from its parts.
    pub fn new(parts: EdgeParts, now_ms: u64) -> Self {
        let mut session = parts.session;
        let mut sync = parts.sync;
        // Every synced shadow's answers and documents, classic and named, with six wildcard
        // filters (the cloud allows 50 subscriptions per connection; a set per car would not
        // fit).
        let filters = [
            "$aws/things/+/shadow/get/+",
            "$aws/things/+/shadow/update/+",
            "$aws/things/+/shadow/delete/+",
            "$aws/things/+/shadow/name/+/get/+",
            "$aws/things/+/shadow/name/+/update/+",
            "$aws/things/+/shadow/name/+/delete/+",
        ];
        let list: Vec<(&str, QoS)> = filters.iter().map(|f| (*f, QoS::AtLeastOnce)).collect();
        if let Err(error) = session.subscribe(&list, now_ms) {
            tracing::error!(%error, "edge: cannot subscribe to the shadow topics");
        }
        let mut synced_things = BTreeSet::new();
        for thing in parts.sync_things {
            sync.add_shadow(ShadowKey::classic(thing.as_str()));
            synced_things.insert(thing);
        }
        let handlers = parts
            .handlers
            .into_iter()
            .map(|h| {
                let filters = h.filters().iter().map(|f| filter_levels(f)).collect();
                (h, filters)
            })
            .collect();
        EdgeCore {
            status_topic: status_topic(&parts.thing_name),
            thing_name: parts.thing_name,
            session,
            link: None,
            link_broken: Arc::new(AtomicBool::new(false)),
            spool: parts.spool,
            max_inflight: parts.max_inflight.max(1),
            in_cloud: HashMap::new(),
            sync,
            sync_all: parts.sync_all,
            synced_things,
            handlers,
            counters: EdgeCounters::default(),
            reports: Vec::new(),
            last_things: Vec::new(),
            next_status_ms: 0,
            stopping: false,
        }
    }

    /// The subscriptions the core asks of the cloud for bridge mappings from `IotCore`.
    pub fn subscribe_cloud(&mut self, filters: &[String], now_ms: u64) {
        let list: Vec<(&str, QoS)> = filters
            .iter()
            .map(|f| (f.as_str(), QoS::AtLeastOnce))
            .collect();
        if let Err(error) = self.session.subscribe(&list, now_ms) {
            tracing::error!(%error, "edge: a bridge mapping's filter is refused by the cloud session");
        }
    }

    fn status(turn: &mut Turn<'_, Self>, this: &Self) -> EdgeStatus {
        EdgeStatus {
            cloud_connected: this.online(),
            things: connected_things(turn),
            local_connections: turn.broker.connection_count(),
            spool: this.spool.stats(),
            sync: this.sync.stats(),
            refusals: turn.broker.authorizer().refusals(),
            counters: this.counters,
        }
    }

    fn online(&self) -> bool {
        self.session.state() == crate::device::SessionState::Connected
    }

    /// A relay towards the cloud: into the spool.
    fn spool_for_cloud(&mut self, relay: &Relay, payload: Bytes, original_qos: QoS) {
        let online = self.online();
        match self
            .spool
            .push(&relay.topic, payload, original_qos, false, online)
        {
            Ok(_) => {}
            Err(SpoolError::Qos0Offline) => {}
            Err(error) => {
                self.counters.spool_refused += 1;
                tracing::warn!(topic = relay.topic, %error, "edge: cloud-bound message refused");
            }
        }
    }

    /// Publishes into the local broker as the bridge, having been at `visited`.
    fn to_local(
        turn: &mut Turn<'_, Self>,
        counters: &mut EdgeCounters,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        visited: Visited,
    ) {
        let profile = turn.broker.profile().clone();
        let Ok(name) = TopicName::new(topic, &profile) else {
            counters.relay_refused += 1;
            tracing::warn!(topic, "edge: relayed topic refused by the local broker");
            return;
        };
        let now = turn.now_ms;
        turn.broker.reserved_mut().inject(visited);
        turn.broker.publish(name, payload, qos, false, now);
    }

    /// Hands a message to every handler whose filters match; returns what they published.
    fn call_handlers(&mut self, topic: &str, payload: &[u8], now_ms: u64) -> Vec<HandlerMessage> {
        let mut out = HandlerOutput::default();
        for (handler, filters) in &mut self.handlers {
            if filters.iter().any(|f| filter_matches(f, topic)) {
                self.counters.handler_calls += 1;
                handler.on_message(topic, payload, now_ms, &mut out);
            }
        }
        self.reports.extend(out.take_reports());
        let (messages, dropped) = out.take();
        self.counters.handler_dropped += dropped;
        messages
    }

    /// Routes one relay decided by the bridge; returns handler output to route next.
    fn relay(
        turn: &mut Turn<'_, Self>,
        this: &mut Self,
        relay: Relay,
        payload: Bytes,
        original_qos: QoS,
    ) -> Vec<HandlerMessage> {
        match relay.target {
            BridgeEndpoint::IotCore => {
                this.spool_for_cloud(&relay, payload, original_qos);
                Vec::new()
            }
            BridgeEndpoint::LocalMqtt => {
                Self::to_local(
                    turn,
                    &mut this.counters,
                    &relay.topic,
                    payload,
                    relay.qos,
                    relay.visited,
                );
                Vec::new()
            }
            BridgeEndpoint::Pubsub => this.call_handlers(&relay.topic, &payload, turn.now_ms),
        }
    }

    /// Relays until nothing is left: what the local broker observed, what handlers published.
    fn drain_relays(
        turn: &mut Turn<'_, Self>,
        this: &mut Self,
        mut from_handlers: Vec<HandlerMessage>,
    ) {
        // Each hop adds an endpoint to a message's visited set, so this ends after three hops of
        // any one message; handler output is bounded per call.
        loop {
            Self::apply_reports(turn, this);
            let observed = turn.broker.reserved_mut().take_observed();
            if observed.is_empty() && from_handlers.is_empty() {
                return;
            }
            for item in observed {
                match item {
                    Observed::Relay {
                        relay,
                        payload,
                        original_qos,
                    } => {
                        let more = Self::relay(turn, this, relay, payload, original_qos);
                        from_handlers.extend(more);
                    }
                    Observed::ShadowChanged(key) => {
                        this.track_thing(&key.thing);
                        let local = local_shadow(turn, &key);
                        this.sync.add_shadow(key.clone());
                        this.sync.local_changed(&key, local.as_ref(), turn.now_ms);
                    }
                }
            }
            for message in std::mem::take(&mut from_handlers) {
                let bridge = turn.broker.reserved_mut().bridge().clone();
                let relays = bridge.relays(
                    BridgeEndpoint::Pubsub,
                    Visited::at(BridgeEndpoint::Pubsub),
                    &message.topic,
                    message.qos,
                );
                for relay in relays {
                    let more = Self::relay(turn, this, relay, message.payload.clone(), message.qos);
                    from_handlers.extend(more);
                }
            }
        }
    }

    /// Applies the handlers' shadow reports to the local shadows (answers go to local
    /// subscribers, the change is synced like a device's).
    fn apply_reports(turn: &mut Turn<'_, Self>, this: &mut Self) {
        let now = turn.now_ms;
        for report in std::mem::take(&mut this.reports) {
            let key = ShadowKey::classic(report.thing.as_str());
            let body = json!({"state": {"reported": report.reported}}).to_string();
            match turn
                .broker
                .reserved_mut()
                .shadows()
                .update(&key, body.as_bytes(), now)
            {
                Ok(outcome) => {
                    deliver_shadow_messages(turn, outcome.messages);
                    this.track_thing(&report.thing);
                    let local = local_shadow(turn, &key);
                    this.sync.add_shadow(key.clone());
                    this.sync.local_changed(&key, local.as_ref(), now);
                }
                Err((error, _)) => {
                    tracing::warn!(thing = report.thing, %error, "edge: a handler's shadow report was refused");
                }
            }
        }
    }

    fn track_thing(&mut self, thing: &str) {
        if self.sync_all && !self.synced_things.contains(thing) {
            self.synced_things.insert(thing.to_owned());
            self.sync.add_shadow(ShadowKey::classic(thing));
        }
    }

    /// One cloud session event.
    fn cloud_event(turn: &mut Turn<'_, Self>, this: &mut Self, event: SessionEvent) {
        let now = turn.now_ms;
        match event {
            SessionEvent::Connected { session_present } => {
                this.counters.cloud_connects += 1;
                tracing::info!(session_present, "edge: connected to the cloud");
                this.next_status_ms = 0;
                this.sync.cloud_connected(now);
            }
            SessionEvent::Message(message) => {
                let consumed = if parse_topic(&message.topic).is_some() {
                    let key = parse_topic(&message.topic).map(|t| t.key);
                    let local = key.as_ref().and_then(|k| local_shadow(turn, k));
                    this.sync
                        .cloud_message(&message.topic, &message.payload, local.as_ref(), now)
                } else {
                    false
                };
                if !consumed {
                    this.counters.from_cloud += 1;
                    let bridge = turn.broker.reserved_mut().bridge().clone();
                    let relays = bridge.relays(
                        BridgeEndpoint::IotCore,
                        Visited::at(BridgeEndpoint::IotCore),
                        &message.topic,
                        message.qos,
                    );
                    let mut from_handlers = Vec::new();
                    for relay in relays {
                        from_handlers.extend(Self::relay(
                            turn,
                            this,
                            relay,
                            message.payload.clone(),
                            message.qos,
                        ));
                    }
                    Self::drain_relays(turn, this, from_handlers);
                }
                if let Some(ack) = message.ack {
                    // Sent after this turn's commit, like every byte to the cloud.
                    this.session.ack(ack, now);
                }
            }
            SessionEvent::Delivered(id) => {
                if let Some(seq) = this.in_cloud.remove(&id) {
                    this.spool.acked(seq);
                    this.counters.to_cloud += 1;
                }
            }
            SessionEvent::Closed(reason) => {
                tracing::info!(%reason, "edge: the cloud connection closed");
                // Dropping the sender ends the link's writer: it closes the transport.
                this.link = None;
                this.sync.cloud_lost();
            }
            _ => {}
        }
    }

    fn run_sync(turn: &mut Turn<'_, Self>, this: &mut Self) {
        let now = turn.now_ms;
        if this.sync.poll_timeout().is_some_and(|at| at <= now) {
            this.sync.handle_timeout(now);
        }
        while let Some(action) = this.sync.poll_action() {
            match action {
                SyncAction::CloudPublish { topic, payload } => {
                    if let Err(error) = this.session.publish(
                        &topic,
                        payload.into_bytes(),
                        QoS::AtLeastOnce,
                        false,
                        now,
                    ) {
                        tracing::warn!(topic, %error, "edge: a shadow sync request was refused");
                    }
                }
                SyncAction::LocalUpdate { key, payload } => {
                    let shadows = turn.broker.reserved_mut().shadows();
                    match shadows.update(&key, payload.as_bytes(), now) {
                        Ok(outcome) => deliver_shadow_messages(turn, outcome.messages),
                        Err((error, _)) => {
                            tracing::warn!(thing = key.thing, %error, "edge: a synced update was refused locally");
                        }
                    }
                    let local = local_shadow(turn, &key);
                    this.sync.local_applied(&key, local.as_ref());
                }
                SyncAction::LocalDelete { key } => {
                    let shadows = turn.broker.reserved_mut().shadows();
                    if let Ok(document) = shadows.delete(&key, b"", now) {
                        let message = Message::new(
                            key.topic(iot_shadow::TopicKind::Accepted(
                                iot_shadow::Operation::Delete,
                            ))
                            .as_str(),
                            document.to_string(),
                            QoS::AtLeastOnce,
                            false,
                        );
                        turn.broker.deliver_service_message(&message, now);
                    }
                    let local = local_shadow(turn, &key);
                    this.sync.local_applied(&key, local.as_ref());
                }
                SyncAction::SaveRecord { key, record } => {
                    turn.store
                        .borrow_mut()
                        .put_sync_record(&key, &record.to_json());
                }
            }
        }
    }

    fn drain_spool(&mut self, now_ms: u64) {
        if !self.online() {
            return;
        }
        while self.in_cloud.len() < self.max_inflight {
            let Some(message) = self.spool.next_unsent() else {
                return;
            };
            match self.session.publish(
                &message.topic,
                message.payload.clone(),
                QoS::AtLeastOnce,
                message.retain,
                now_ms,
            ) {
                Ok(PublishOutcome::Accepted(id)) => {
                    self.in_cloud.insert(id, message.seq);
                }
                Ok(_) => {
                    self.spool.acked(message.seq);
                }
                Err(crate::device::SessionError::QueueFull) => {
                    // The session's own queue is full (sync requests, status): try next turn.
                    self.spool.put_back(message.seq);
                    return;
                }
                Err(error) => {
                    // Not valid towards the cloud (a topic over AWS's limits): never will be.
                    tracing::warn!(topic = message.topic, %error, "edge: spooled message refused by the cloud session; dropped");
                    self.counters.relay_refused += 1;
                    self.spool.acked(message.seq);
                }
            }
        }
    }

    fn publish_status(turn: &mut Turn<'_, Self>, this: &mut Self, force: bool) {
        let now = turn.now_ms;
        if !this.online() {
            return;
        }
        let things = connected_things(turn);
        for thing in &things {
            this.track_thing(thing);
        }
        if !force && things == this.last_things && now < this.next_status_ms {
            return;
        }
        let body = json!({
            "online": !this.stopping,
            "core": this.thing_name,
            "things": things,
            "spool": {"queued": this.spool.len(), "bytes": this.spool.bytes()},
            "at": now,
        });
        if let Err(error) = this.session.publish(
            &this.status_topic,
            body.to_string(),
            QoS::AtLeastOnce,
            true,
            now,
        ) {
            tracing::warn!(%error, "edge: the status could not be published");
        }
        this.last_things = things;
        this.next_status_ms = now + STATUS_EVERY_MS;
    }

    /// Sends the session's bytes after the commit.
    fn transmit(turn: &mut Turn<'_, Self>, this: &mut Self) {
        let mut chunks = Vec::new();
        while let Some(bytes) = this.session.poll_transmit() {
            chunks.push(bytes);
        }
        if chunks.is_empty() {
            return;
        }
        let Some((_, tx)) = &this.link else {
            return;
        };
        let tx = tx.clone();
        let broken = this.link_broken.clone();
        turn.after_commit(move || {
            for chunk in chunks {
                if tx.try_send(chunk).is_err() {
                    broken.store(true, Ordering::Relaxed);
                    return;
                }
            }
        });
    }
}

/// Routes the local shadow service's answers to local subscribers (QoS 1, as the service sends
/// them).
fn deliver_shadow_messages(
    turn: &mut Turn<'_, EdgeCore>,
    messages: Vec<iot_shadow::ShadowMessage>,
) {
    let now = turn.now_ms;
    for m in messages {
        let message = Message::new(
            m.topic.as_str(),
            m.payload.into_bytes(),
            QoS::AtLeastOnce,
            false,
        );
        turn.broker.deliver_service_message(&message, now);
    }
}

/// The things of the client devices connected now, sorted.
fn connected_things(turn: &mut Turn<'_, EdgeCore>) -> Vec<String> {
    turn.broker
        .authorizer()
        .connected_things()
        .keys()
        .map(|t| (*t).to_owned())
        .collect()
}

/// The local stored shadow at `key` (its tombstone included).
fn local_shadow(turn: &mut Turn<'_, EdgeCore>, key: &ShadowKey) -> Option<StoredShadow> {
    turn.broker
        .reserved_mut()
        .shadows()
        .store()
        .get(key)
        .ok()
        .flatten()
}

impl Program for EdgeCore {
    type Authorizer = ClientDeviceAuthorizer;
    type Reserved = EdgeServices;
    type Persistence = BrokerPersistence;
    type Request = EdgeRequest;

    fn handle(&mut self, turn: &mut Turn<'_, Self>, request: EdgeRequest) {
        let now = turn.now_ms;
        match request {
            EdgeRequest::CloudUp { epoch, to_cloud } => {
                self.link = Some((epoch, to_cloud));
                self.link_broken.store(false, Ordering::Relaxed);
                self.session.connect(now);
            }
            EdgeRequest::CloudBytes { epoch, bytes } => {
                if self.link.as_ref().is_some_and(|(e, _)| *e == epoch) {
                    self.session.handle_bytes(&bytes, now);
                }
            }
            EdgeRequest::CloudDown { epoch } => {
                if self.link.as_ref().is_some_and(|(e, _)| *e == epoch) {
                    self.link = None;
                    self.session.connection_lost();
                }
            }
            EdgeRequest::Status { reply } => {
                let status = Self::status(turn, self);
                turn.reply(reply, status);
            }
            EdgeRequest::Stop { reply } => {
                self.stopping = true;
                Self::publish_status(turn, self, true);
                self.session.disconnect(now);
                Self::transmit(turn, self);
                turn.reply(reply, ());
            }
        }
    }

    fn after_events(&mut self, turn: &mut Turn<'_, Self>) {
        let now = turn.now_ms;
        if self.link_broken.swap(false, Ordering::Relaxed) && self.link.is_some() {
            tracing::warn!("edge: the cloud link fell behind its write queue; reconnecting");
            self.link = None;
            self.session.connection_lost();
        }
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
        // Local traffic first, then the handlers' timers.
        let mut from_handlers = Vec::new();
        let mut out = HandlerOutput::default();
        for (handler, _) in &mut self.handlers {
            if handler.poll_timeout().is_some_and(|at| at <= now) {
                handler.on_timeout(now, &mut out);
            }
        }
        self.reports.extend(out.take_reports());
        let (messages, dropped) = out.take();
        self.counters.handler_dropped += dropped;
        from_handlers.extend(messages);
        Self::drain_relays(turn, self, from_handlers);
        // The cloud session's events (a message may relay locally, a PUBACK frees the spool).
        while let Some(event) = self.session.poll_event() {
            Self::cloud_event(turn, self, event);
        }
        Self::run_sync(turn, self);
        Self::publish_status(turn, self, false);
        self.drain_spool(now);
        // Events raised by what was just written (a QoS 0 drop, a refusal) wait for next turn.
        Self::transmit(turn, self);
    }
}
