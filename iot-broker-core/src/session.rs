//! One client's session: its subscriptions, the messages in flight to it, the queue behind them,
//! and the QoS 2 packet ids it has sent us and not yet released.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use mqtt_codec::{PacketId, QoS};

use crate::connection::ConnectionId;
use crate::message::Message;
use crate::persist::SessionRecord;

/// A delivery sent and not yet fully acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub pid: PacketId,
    /// Sequence number in the persistent store, if the session is persistent.
    pub seq: Option<u64>,
    pub message: Message,
    /// QoS 2: PUBREC received and PUBREL sent, waiting for PUBCOMP.
    pub released: bool,
    pub sent_at_ms: u64,
}

/// A delivery waiting for room in the in-flight window (or for the client to come back).
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub seq: Option<u64>,
    pub message: Message,
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

#[derive(Debug)]
pub(crate) struct Session {
    pub client_id: Arc<str>,
    pub persistent: bool,
    pub conn: Option<ConnectionId>,
    pub subscriptions: BTreeMap<Box<str>, QoS>,
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Queued>,
    pub incoming_qos2: BTreeSet<u16>,
    pub disconnected_at_ms: Option<u64>,
    next_pid: u16,
    next_seq: u64,
}

impl Session {
    pub fn new(client_id: Arc<str>, persistent: bool) -> Session {
        Session {
            client_id,
            persistent,
            conn: None,
            subscriptions: BTreeMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            incoming_qos2: BTreeSet::new(),
            disconnected_at_ms: None,
            next_pid: 1,
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

    /// A packet id not in flight (the window is far smaller than the id space).
    pub fn next_packet_id(&mut self) -> PacketId {
        loop {
            let candidate = PacketId::new(self.next_pid);
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            if let Some(pid) = candidate {
                if !self.inflight.iter().any(|i| i.pid == pid) {
                    return pid;
                }
            }
        }
    }

    /// Remove the in-flight entry for `pid` if `matches` accepts it.
    pub fn take_inflight(
        &mut self,
        pid: PacketId,
        matches: impl Fn(&Inflight) -> bool,
    ) -> Option<Inflight> {
        let at = self
            .inflight
            .iter()
            .position(|i| i.pid == pid && matches(i))?;
        self.inflight.remove(at)
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

    #[test]
    fn packet_ids_skip_those_in_flight_and_wrap() {
        let mut s = Session::new(Arc::from("c"), false);
        s.next_pid = u16::MAX;
        let a = s.next_packet_id();
        assert_eq!(a.get(), u16::MAX);
        s.inflight.push_back(Inflight {
            pid: PacketId::new(1).unwrap(),
            seq: None,
            message: msg(QoS::AtLeastOnce).message,
            released: false,
            sent_at_ms: 0,
        });
        assert_eq!(s.next_packet_id().get(), 2);
    }
}
