//! What the broker must not forget: retained messages and persistent sessions (their
//! subscriptions and the QoS 1/2 messages queued for them). The broker records every change
//! through [`Persistence`]; the program makes the changes durable before it sends the packets
//! that acknowledge them (see [`Broker`](crate::Broker)).

use std::collections::{BTreeMap, HashMap};

use mqtt_codec::QoS;

use crate::message::{Message, RetainedMessage};

/// A persistent session's lasting state (its messages are recorded apart, one by one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionRecord {
    /// Filters and their granted QoS.
    pub subscriptions: Vec<(String, QoS)>,
    /// When the client went away (Unix ms); `None` while connected.
    pub disconnected_at_ms: Option<u64>,
}

/// One persistent session as loaded at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoredSession {
    /// The session's lasting state.
    pub record: SessionRecord,
    /// Its undelivered or unacknowledged messages, by sequence number (delivery order).
    pub messages: BTreeMap<u64, Message>,
}

/// Everything loaded at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restored {
    /// Retained messages, with the time each was set.
    pub retained: Vec<RetainedMessage>,
    /// Persistent sessions by client id.
    pub sessions: BTreeMap<String, RestoredSession>,
}

/// Storage for what must outlive the process. Each call records one change; none can fail here,
/// since an implementation may buffer them and commit a batch when the program asks it to (a
/// failed commit is the program's to handle: it must not send the acknowledgements).
pub trait Persistence {
    /// Everything stored, for [`BrokerBuilder::build`](crate::BrokerBuilder::build).
    #[must_use]
    fn load(&mut self) -> Restored;
    /// Retain `retained.message` on its topic, replacing any before it; store its
    /// `modified_ms` with it.
    fn put_retained(&mut self, retained: &RetainedMessage);
    /// Delete the retained message on `topic`.
    fn delete_retained(&mut self, topic: &str);
    /// Create or update a persistent session.
    fn put_session(&mut self, client_id: &str, record: &SessionRecord);
    /// Delete a session and every message of it.
    fn delete_session(&mut self, client_id: &str);
    /// Queue `message` (already at its delivery QoS) for `client_id` under sequence number `seq`.
    fn put_message(&mut self, client_id: &str, seq: u64, message: &Message);
    /// A queued message was acknowledged or dropped.
    fn delete_message(&mut self, client_id: &str, seq: u64);
}

/// Keeps everything in memory: for tests, and for a broker that may forget on restart. A clone of
/// its [`Restored`] is what a restarted broker would load.
///
/// ```
/// use iot_broker_core::message::{Message, RetainedMessage};
/// use iot_broker_core::persist::{MemoryPersistence, Persistence};
/// use iot_broker_core::codec::QoS;
/// let mut store = MemoryPersistence::default();
/// store.put_retained(&RetainedMessage {
///     message: Message::new("cars/1/status", &b"online"[..], QoS::AtLeastOnce, true),
///     modified_ms: 1_700_000_000_000,
/// });
/// assert_eq!(store.load().retained[0].modified_ms, 1_700_000_000_000);
/// store.delete_retained("cars/1/status");
/// assert!(store.load().retained.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryPersistence {
    retained: HashMap<String, RetainedMessage>,
    sessions: BTreeMap<String, RestoredSession>,
}

impl MemoryPersistence {
    /// A store that starts out holding `restored` (e.g. what another instance saved).
    pub fn with(restored: Restored) -> MemoryPersistence {
        MemoryPersistence {
            retained: restored
                .retained
                .into_iter()
                .map(|r| (r.message.topic.as_str().to_owned(), r))
                .collect(),
            sessions: restored.sessions,
        }
    }
}

impl Persistence for MemoryPersistence {
    fn load(&mut self) -> Restored {
        let mut retained: Vec<RetainedMessage> = self.retained.values().cloned().collect();
        retained.sort_by(|a, b| a.message.topic.cmp(&b.message.topic));
        Restored {
            retained,
            sessions: self.sessions.clone(),
        }
    }

    fn put_retained(&mut self, retained: &RetainedMessage) {
        self.retained
            .insert(retained.message.topic.as_str().to_owned(), retained.clone());
    }

    fn delete_retained(&mut self, topic: &str) {
        self.retained.remove(topic);
    }

    fn put_session(&mut self, client_id: &str, record: &SessionRecord) {
        self.sessions
            .entry(client_id.to_owned())
            .or_default()
            .record = record.clone();
    }

    fn delete_session(&mut self, client_id: &str) {
        self.sessions.remove(client_id);
    }

    fn put_message(&mut self, client_id: &str, seq: u64, message: &Message) {
        self.sessions
            .entry(client_id.to_owned())
            .or_default()
            .messages
            .insert(seq, message.clone());
    }

    fn delete_message(&mut self, client_id: &str, seq: u64) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.messages.remove(&seq);
        }
    }
}

/// Persists nothing: sessions and retained messages live only as long as the broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPersistence;

impl Persistence for NoPersistence {
    fn load(&mut self) -> Restored {
        Restored::default()
    }
    fn put_retained(&mut self, _retained: &RetainedMessage) {}
    fn delete_retained(&mut self, _topic: &str) {}
    fn put_session(&mut self, _client_id: &str, _record: &SessionRecord) {}
    fn delete_session(&mut self, _client_id: &str) {}
    fn put_message(&mut self, _client_id: &str, _seq: u64, _message: &Message) {}
    fn delete_message(&mut self, _client_id: &str, _seq: u64) {}
}
