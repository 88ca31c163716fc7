//! One connection's output: the packets the engine has handed it and its writer has not yet
//! written, bounded by a byte budget.
//!
//! Policy when full (the budget is `[limits] output_budget_bytes`):
//! - a QoS 0 PUBLISH that would take the queue over the budget is dropped and counted (an empty
//!   queue takes one message of any size);
//! - everything else (acknowledgements, CONNACK, QoS 1/2 deliveries already in the session's
//!   in-flight window) is queued: each is bounded elsewhere (the in-flight window, and the reader,
//!   which reads no more from a client while its output is over budget);
//! - the first time the queue goes over budget the engine tells the broker
//!   (`Broker::output_congested`), which then holds QoS 1 in the session queue and drops QoS 0
//!   early; when the writer has brought it under half the budget it reports
//!   [`Event::OutputReady`](super::Event::OutputReady) and the flow resumes.
//!
//! The reader is bounded by the same budget: it reads no more while the output is over it, or
//! while its own packets the engine has not yet processed are.
//!
//! Bytes count from the moment the engine queues a packet until the writer's `write` of it
//! returns, so what sits in the writer's buffer is inside the budget too.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use iot_broker_core::codec::{Packet, QoS, SharedPacket};
use iot_broker_core::lifecycle::DisconnectReason;
use tokio::sync::Notify;

/// What the engine hands a connection's writer.
#[derive(Debug)]
pub enum ToConnection {
    /// Write this packet.
    Packet(SharedPacket),
    /// Write what came before, then close.
    Close(DisconnectReason),
}

/// The bytes a queued item counts for: its in-memory size plus the topic and payload it keeps
/// alive (a conservative bound: a fanned-out payload is shared, not copied).
pub fn cost(item: &ToConnection) -> usize {
    let own = size_of::<ToConnection>();
    match item {
        ToConnection::Packet(Packet::Publish(publish)) => {
            own + publish.topic.as_str().len() + publish.payload.len()
        }
        _ => own,
    }
}

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued within the budget.
    Queued,
    /// Queued, and the queue just went over its budget: tell the broker it is congested.
    Congested,
    /// A QoS 0 PUBLISH over the budget: dropped (and counted).
    Dropped,
    /// The writer has gone: nothing queued.
    Gone,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<ToConnection>,
    /// Queued plus being written.
    bytes: usize,
    /// Bytes of this connection's packets sent to the engine and not yet processed by it.
    inbound: usize,
    /// Over budget since the broker was told; cleared when the writer reports room.
    congested: bool,
    /// The writer has stopped: pushes are refused.
    gone: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    budget: usize,
    /// Wakes the writer: something was queued.
    queued: Notify,
    /// Wakes the reader: the output came back under budget.
    room: Notify,
    /// Wakes a writer stuck in a write: a close was queued.
    closing: Notify,
    close_queued: AtomicBool,
    /// The loss of the connection was reported to the engine (by the reader or the writer).
    lost_reported: AtomicBool,
    dropped: AtomicU64,
}

/// One connection's bounded output queue, shared by the engine (which pushes) and the
/// connection's writer (which takes) and reader (which waits while it is over budget).
///
/// ```
/// use iot_examples::engine::outbox::{Outbox, Pushed, ToConnection};
/// use iot_broker_core::codec::{Packet, PacketId, PubAck};
/// let outbox = Outbox::new(1024);
/// let ack = Packet::PubAck(PubAck::new(PacketId::new(1).unwrap()));
/// assert_eq!(outbox.push(ToConnection::Packet(ack)), Pushed::Queued);
/// assert_eq!(outbox.take(usize::MAX).len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// An empty outbox holding at most about `budget` bytes (see the module's policy).
    pub fn new(budget: usize) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                budget: budget.max(1),
                queued: Notify::new(),
                room: Notify::new(),
                closing: Notify::new(),
                close_queued: AtomicBool::new(false),
                lost_reported: AtomicBool::new(false),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (every change is
        // one field update), so a poisoned lock is used as is.
        self.shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` under the budget policy and wakes the writer.
    pub fn push(&self, item: ToConnection) -> Pushed {
        let pushed = self.push_quiet(item);
        if matches!(pushed, Pushed::Queued | Pushed::Congested) {
            self.wake_writer();
        }
        pushed
    }

    /// [`push`](Self::push) without waking the writer: the engine queues a turn's packets this
    /// way and wakes each writer once with [`wake_writer`](Self::wake_writer).
    pub fn push_quiet(&self, item: ToConnection) -> Pushed {
        let size = cost(&item);
        let closing = matches!(item, ToConnection::Close(_));
        let mut queue = self.lock();
        if queue.gone {
            return Pushed::Gone;
        }
        // An empty queue takes anything, so a message larger than the budget still goes out.
        let over = queue.bytes > 0 && queue.bytes.saturating_add(size) > self.shared.budget;
        if over && is_qos0_publish(&item) {
            drop(queue);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Pushed::Dropped;
        }
        queue.bytes = queue.bytes.saturating_add(size);
        queue.items.push_back(item);
        let newly_congested = over && !queue.congested;
        if newly_congested {
            queue.congested = true;
        }
        drop(queue);
        if closing {
            self.shared.close_queued.store(true, Ordering::Release);
            self.shared.closing.notify_one();
        }
        if newly_congested {
            Pushed::Congested
        } else {
            Pushed::Queued
        }
    }

    /// Wakes the writer to take what was queued.
    pub fn wake_writer(&self) {
        self.shared.queued.notify_one();
    }

    /// Takes queued items for writing, in order, up to about `max_bytes` (at least one item).
    /// Their bytes stay counted until [`written`](Self::written).
    pub fn take(&self, max_bytes: usize) -> Vec<ToConnection> {
        let mut queue = self.lock();
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        while let Some(item) = queue.items.front() {
            let size = cost(item);
            if !taken.is_empty() && bytes.saturating_add(size) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            if let Some(item) = queue.items.pop_front() {
                taken.push(item);
            }
        }
        taken
    }

    /// Waits until something is queued, then takes as [`take`](Self::take) does.
    pub async fn next(&self, max_bytes: usize) -> Vec<ToConnection> {
        loop {
            let queued = self.shared.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            let taken = self.take(max_bytes);
            if !taken.is_empty() {
                return taken;
            }
            queued.await;
        }
    }

    /// The writer wrote items worth `bytes` (as [`cost`] counts them). Returns `true` when the
    /// queue was congested and is now under half its budget: the writer reports
    /// [`Event::OutputReady`](super::Event::OutputReady).
    pub fn written(&self, bytes: usize) -> bool {
        let mut queue = self.lock();
        queue.bytes = queue.bytes.saturating_sub(bytes);
        let under = queue.bytes <= self.shared.budget;
        let ready = queue.congested && queue.bytes <= self.shared.budget / 2;
        if ready {
            queue.congested = false;
        }
        drop(queue);
        if under {
            self.shared.room.notify_waiters();
        }
        ready
    }

    /// The reader sent the engine packets worth `bytes` (as [`cost`] counts them).
    pub fn add_inbound(&self, bytes: usize) {
        let mut queue = self.lock();
        queue.inbound = queue.inbound.saturating_add(bytes);
    }

    /// The engine processed packets worth `bytes` of this connection.
    pub fn processed_inbound(&self, bytes: usize) {
        let mut queue = self.lock();
        let was_over = queue.inbound > self.shared.budget;
        queue.inbound = queue.inbound.saturating_sub(bytes);
        let under = queue.inbound <= self.shared.budget;
        drop(queue);
        if was_over && under {
            self.shared.room.notify_waiters();
        }
    }

    /// Waits until both the output queue and the packets the engine has not yet processed are
    /// within the budget (the reader calls this before each read).
    pub async fn room(&self) {
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let queue = self.lock();
                if queue.gone
                    || (queue.bytes <= self.shared.budget && queue.inbound <= self.shared.budget)
                {
                    return;
                }
            }
            room.await;
        }
    }

    /// Resolves once a [`ToConnection::Close`] has been queued.
    pub async fn close_queued(&self) {
        loop {
            let closing = self.shared.closing.notified();
            tokio::pin!(closing);
            closing.as_mut().enable();
            if self.shared.close_queued.load(Ordering::Acquire) {
                return;
            }
            closing.await;
        }
    }

    /// The writer stopped: refuse further pushes, free what is queued, release a waiting reader.
    pub fn shut(&self) {
        let mut queue = self.lock();
        queue.gone = true;
        queue.items.clear();
        queue.bytes = 0;
        drop(queue);
        self.shared.room.notify_waiters();
    }

    /// `true` the first time it is called: whoever loses the connection first reports it.
    pub fn claim_lost_report(&self) -> bool {
        !self.shared.lost_reported.swap(true, Ordering::AcqRel)
    }

    /// Bytes queued or being written.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// QoS 0 PUBLISH packets dropped over the budget.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

fn is_qos0_publish(item: &ToConnection) -> bool {
    matches!(item, ToConnection::Packet(Packet::Publish(p)) if p.qos_pid.qos() == QoS::AtMostOnce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use iot_broker_core::codec::{PacketId, PubAck, Publish, QosPid};

    fn publish(qos_pid: QosPid, len: usize) -> ToConnection {
        ToConnection::Packet(Packet::Publish(Publish {
            dup: false,
            qos_pid,
            retain: false,
            topic: "t".into(),
            payload: Bytes::from(vec![0u8; len]),
        }))
    }

    fn qos1(pid: u16, len: usize) -> ToConnection {
        publish(QosPid::AtLeastOnce(PacketId::new(pid).unwrap()), len)
    }

    #[test]
    fn qos0_over_budget_is_dropped_and_counted_qos1_is_queued() {
        let outbox = Outbox::new(1000);
        assert_eq!(
            outbox.push(publish(QosPid::AtMostOnce, 600)),
            Pushed::Queued
        );
        assert_eq!(
            outbox.push(publish(QosPid::AtMostOnce, 600)),
            Pushed::Dropped
        );
        assert_eq!(outbox.dropped(), 1);
        assert_eq!(outbox.push(qos1(1, 600)), Pushed::Congested);
        // Reported once until the writer makes room.
        assert_eq!(outbox.push(qos1(2, 600)), Pushed::Queued);
        let ack = ToConnection::Packet(Packet::PubAck(PubAck::new(PacketId::new(9).unwrap())));
        assert_eq!(outbox.push(ack), Pushed::Queued);
        assert_eq!(outbox.take(usize::MAX).len(), 4);
    }

    #[test]
    fn room_is_reported_once_under_half_the_budget() {
        let outbox = Outbox::new(1000);
        outbox.push(qos1(1, 700));
        assert_eq!(outbox.push(qos1(2, 700)), Pushed::Congested);
        let first = outbox.take(1);
        assert_eq!(first.len(), 1);
        assert!(!outbox.written(cost(&first[0])), "still over half");
        let second = outbox.take(1);
        assert!(outbox.written(cost(&second[0])));
        assert_eq!(outbox.bytes(), 0);
        assert!(!outbox.written(0), "reported once");
    }

    #[test]
    fn an_empty_queue_takes_one_message_larger_than_the_budget() {
        let outbox = Outbox::new(100);
        assert_eq!(
            outbox.push(publish(QosPid::AtMostOnce, 500)),
            Pushed::Queued
        );
        assert_eq!(outbox.push(publish(QosPid::AtMostOnce, 1)), Pushed::Dropped);
    }

    #[test]
    fn take_is_bounded_but_takes_at_least_one() {
        let outbox = Outbox::new(usize::MAX);
        for pid in 1..=4 {
            outbox.push(qos1(pid, 100));
        }
        assert_eq!(outbox.take(1).len(), 1);
        assert_eq!(outbox.take(2 * cost(&qos1(1, 100))).len(), 2);
        assert_eq!(outbox.take(usize::MAX).len(), 1);
        assert!(outbox.take(usize::MAX).is_empty());
    }

    #[test]
    fn a_shut_outbox_refuses_and_frees() {
        let outbox = Outbox::new(1000);
        outbox.push(qos1(1, 10));
        outbox.shut();
        assert_eq!(outbox.bytes(), 0);
        assert_eq!(outbox.push(qos1(2, 10)), Pushed::Gone);
        assert!(outbox.claim_lost_report());
        assert!(!outbox.claim_lost_report());
    }

    #[tokio::test]
    async fn a_reader_waits_for_room_and_a_close_wakes_a_stuck_writer() {
        let outbox = Outbox::new(100);
        outbox.push(qos1(1, 200));
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let taken = outbox.take(usize::MAX);
        outbox.written(cost(&taken[0]));
        waiting.await.unwrap();

        let closing = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.close_queued().await }
        });
        outbox.push(ToConnection::Close(DisconnectReason::ServerInitiated));
        closing.await.unwrap();
    }
}
