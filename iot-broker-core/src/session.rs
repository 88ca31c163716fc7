//! One client's session: its subscriptions, the messages in flight to it, the queue behind them,
//! and the QoS 2 packet ids it has sent us and not yet released.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use mqtt_codec::QoS;

use crate::connection::ConnectionId;
use crate::inflight::InflightWindow;
use crate::message::Message;
use crate::persist::SessionRecord;

/// A delivery waiting for room in the in-flight window (or for the client to come back).
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub seq: Option<u64>,
    pub message: Message,
    /// The topic's [`topic_hash`](crate::auth_cache::topic_hash), for the authorization cache.
    pub topic_hash: u64,
}

/// What happened when a message was put in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued, nothing lost.
    Queued,
    /// Queued after dropping the oldest queued QoS 0 message.
    EvictedQos0,
    /// The queue is full of QoS 1/2 messages: the new one was dropped.
    Refused,
}

/// The deadlines a session has armed in the broker's timer set (`None`: none armed). Each is the
/// time of the one entry of its kind, so a session never has more than three.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimers {
    /// Persistent-session expiry (armed while disconnected).
    pub expiry: Option<u64>,
    /// The oldest in-flight delivery reaching `max_inflight_age_ms` (armed while connected).
    pub inflight_age: Option<u64>,
    /// The next second, for a queue the publish rate held back.
    pub rate_held: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub client_id: Arc<str>,
    pub persistent: bool,
    pub conn: Option<ConnectionId>,
    pub subscriptions: BTreeMap<Box<str>, QoS>,
    pub inflight: InflightWindow,
    pub queue: VecDeque<Queued>,
    pub incoming_qos2: BTreeSet<u16>,
    pub disconnected_at_ms: Option<u64>,
    pub timers: SessionTimers,
    /// Its connection's output buffer is over budget (see `Broker::output_congested`): no
    /// PUBLISH goes out, QoS 0 is dropped, QoS 1/2 waits in the queue. Cleared whenever the
    /// session is bound to a connection or loses it.
    pub output_congested: bool,
    next_seq: u64,
}

impl Session {
    pub fn new(client_id: Arc<str>, persistent: bool) -> Session {
        Session {
            client_id,
            persistent,
            conn: None,
            subscriptions: BTreeMap::new(),
            inflight: InflightWindow::default(),
            queue: VecDeque::new(),
            incoming_qos2: BTreeSet::new(),
            disconnected_at_ms: None,
            timers: SessionTimers::default(),
            output_congested: false,
            next_seq: 1,
        }
    }

    /// A sequence number for the persistent store, if this session is persistent.
    pub fn take_seq(&mut self) -> Option<u64> {
        if !self.persistent {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(seq)
    }

    /// Continue numbering after `seq` (used when restoring).
    pub fn seen_seq(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
    }

    /// Put a message at the back of the queue, bounded by `max`.
    pub fn enqueue(&mut self, queued: Queued, max: usize) -> (Enqueued, Option<Queued>) {
        if self.queue.len() < max {
            self.queue.push_back(queued);
            return (Enqueued::Queued, None);
        }
        if let Some(at) = self
            .queue
            .iter()
            .position(|q| q.message.qos == QoS::AtMostOnce)
        {
            let evicted = self.queue.remove(at);
            self.queue.push_back(queued);
            return (Enqueued::EvictedQos0, evicted);
        }
        (Enqueued::Refused, Some(queued))
    }

    /// The state a persistent store keeps.
    pub fn record(&self) -> SessionRecord {
        SessionRecord {
            subscriptions: self
                .subscriptions
                .iter()
                .map(|(f, q)| (f.to_string(), *q))
                .collect(),
            disconnected_at_ms: self.disconnected_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(qos: QoS) -> Queued {
        Queued {
            seq: None,
            message: Message::new("t", &b""[..], qos, false),
            topic_hash: 0,
        }
    }

    #[test]
    fn full_queue_evicts_oldest_qos0_then_refuses() {
        let mut s = Session::new(Arc::from("c"), false);
        assert_eq!(s.enqueue(msg(QoS::AtLeastOnce), 2).0, Enqueued::Queued);
        assert_eq!(s.enqueue(msg(QoS::AtMostOnce), 2).0, Enqueued::Queued);
        assert_eq!(s.enqueue(msg(QoS::AtLeastOnce), 2).0, Enqueued::EvictedQos0);
        assert_eq!(s.enqueue(msg(QoS::AtLeastOnce), 2).0, Enqueued::Refused);
        assert_eq!(s.queue.len(), 2);
    }
}
