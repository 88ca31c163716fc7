//! The edge core's spool of cloud-bound messages, sans-IO: every message the core sends to the
//! cloud is pushed here first and leaves only once the cloud has it (written for QoS 0, its
//! PUBACK for QoS 1), so a cloud outage costs no QoS 1 message up to the spool's size.
//!
//! The contract is the Greengrass v2 nucleus spooler's (`mqtt.spooler`), kept durable and never
//! silent:
//! - FIFO: messages are handed out oldest first; a handed-out message the cloud session will not
//!   resend (the session was reset, or a send failed) goes back in its place, before anything newer.
//! - Size: a message counts its topic bytes plus its payload bytes. The spool never holds more
//!   than [`SpoolConfig::max_bytes`] (default 2,621,440, Greengrass's `maxSizeInBytes`).
//! - Full: the oldest QoS 0 messages not handed out are dropped until the new message fits; when
//!   even dropping every one of them would not make room, nothing is dropped and the new message
//!   is refused with [`SpoolError::Full`] ("Message spool is full"). A QoS 1 message is never
//!   dropped once accepted.
//! - Offline: a QoS 0 message pushed while the cloud is unreachable is refused
//!   ([`SpoolError::Qos0Offline`]) unless [`SpoolConfig::keep_qos0_when_offline`].
//! - Every refusal and every drop is counted in [`SpoolStats`].
//! - Every insert and removal goes to the [`SpoolStorage`] (`put`/`delete`), so the storage mirrors
//!   the spool and a restarted core finds what it had not delivered, in order, all unsent again.
//!   Whether a message was handed out is not stored: after a restart nothing is in flight.
//!
//! Memory: the in-memory index holds every message, payload (`Bytes`) included, so the spool's
//! memory is bounded by the same `max_bytes`, plus a small fixed cost per message. A payload that
//! is a slice of a received frame keeps that frame alive: a few header bytes more per message.
//!
//! Greengrass's `maxPublishRetry` has no counterpart: a QoS 1 message stays until acknowledged,
//! the device session retries it.

mod durable;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use mqtt_codec::QoS;

/// Greengrass's default `maxSizeInBytes`: 2.5 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 2_621_440;

/// The longest topic name MQTT can carry (its length is a 16-bit field).
const MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// How big the spool is and what it does with QoS 0 while offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The most bytes (topic + payload, summed over the messages) the spool holds.
    pub max_bytes: u64,
    /// Keep QoS 0 messages pushed while the cloud is offline (Greengrass's
    /// `keepQos0WhenOffline`); when false they are refused and counted.
    pub keep_qos0_when_offline: bool,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            keep_qos0_when_offline: false,
        }
    }
}

/// One message in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledMessage {
    /// Its place in the spool: larger is newer. Names it for [`Spool::sent`] and [`Spool::acked`].
    pub seq: u64,
    /// The cloud topic to publish on.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// QoS 0 or 1.
    pub qos: QoS,
    /// The RETAIN flag to publish with.
    pub retain: bool,
}

impl SpooledMessage {
    /// What it counts against [`SpoolConfig::max_bytes`]: topic bytes plus payload bytes.
    pub fn size(&self) -> u64 {
        message_size(&self.topic, &self.payload)
    }
}

fn message_size(topic: &str, payload: &[u8]) -> u64 {
    let topic = u64::try_from(topic.len()).unwrap_or(u64::MAX);
    let payload = u64::try_from(payload.len()).unwrap_or(u64::MAX);
    topic.saturating_add(payload)
}

/// Why [`Spool::push`] refused a message. Every refusal but [`SpoolError::Qos2`] (a caller's
/// mistake) and [`SpoolError::TopicTooLong`] is counted in [`SpoolStats`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    /// The message does not fit, even after dropping every QoS 0 message not handed out.
    #[error(
        "Message spool is full: a message of {size} bytes does not fit ({queued_bytes} of {max_bytes} bytes queued)"
    )]
    Full {
        /// The refused message's size.
        size: u64,
        /// Bytes in the spool when it was refused.
        queued_bytes: u64,
        /// The spool's size.
        max_bytes: u64,
    },
    /// The message alone is bigger than the whole spool.
    #[error("message of {size} bytes is larger than the whole spool ({max_bytes} bytes)")]
    TooLarge {
        /// The refused message's size.
        size: u64,
        /// The spool's size.
        max_bytes: u64,
    },
    /// A QoS 0 message while the cloud is offline, and QoS 0 is not kept offline.
    #[error("QoS 0 message dropped: the cloud is offline and QoS 0 is not kept while offline")]
    Qos0Offline,
    /// QoS 2 was asked for: AWS IoT Core has no QoS 2, cloud-bound messages are QoS 0 or 1.
    #[error("QoS 2 is not spooled: AWS IoT Core has no QoS 2")]
    Qos2,
    /// The topic is longer than MQTT can carry.
    #[error("topic of {len} bytes is longer than MQTT's 65,535")]
    TopicTooLong {
        /// The topic's length in bytes.
        len: usize,
    },
    /// Every sequence number was used (only after loading a storage whose largest is `u64::MAX`).
    #[error("spool sequence numbers are exhausted")]
    SeqExhausted,
}

/// Where the spool keeps its messages across restarts. The spool calls `put` for every message it
/// accepts and `delete` for every message it removes (delivered or dropped), so the storage holds
/// exactly the spool's messages; `load` is called once, by [`Spool::open`].
pub trait SpoolStorage {
    /// Keep `message` (a new one; its `seq` was never put before).
    fn put(&mut self, message: &SpooledMessage);
    /// Forget the message `seq` (a no-op when unknown).
    fn delete(&mut self, seq: u64);
    /// Every message kept, in any order.
    fn load(&mut self) -> Vec<SpooledMessage>;
}

/// A [`SpoolStorage`] in memory: for tests, and for Greengrass's `Memory` storage type (the spool
/// survives a lost cloud link, not a restart of the process).
#[derive(Debug, Clone, Default)]
pub struct MemorySpoolStorage {
    messages: BTreeMap<u64, SpooledMessage>,
}

impl MemorySpoolStorage {
    /// An empty storage.
    pub fn new() -> Self {
        MemorySpoolStorage::default()
    }

    /// The messages kept, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &SpooledMessage> {
        self.messages.values()
    }
}

impl SpoolStorage for MemorySpoolStorage {
    fn put(&mut self, message: &SpooledMessage) {
        self.messages.insert(message.seq, message.clone());
    }

    fn delete(&mut self, seq: u64) {
        self.messages.remove(&seq);
    }

    fn load(&mut self) -> Vec<SpooledMessage> {
        self.messages.values().cloned().collect()
    }
}

/// What the spool did since it was opened (counters) and holds now (gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Messages accepted by [`Spool::push`].
    pub accepted: u64,
    /// Messages delivered: written (QoS 0, [`Spool::sent`]) or acknowledged (QoS 1,
    /// [`Spool::acked`]).
    pub delivered: u64,
    /// QoS 0 messages dropped to make room for a newer message (or, at open, to fit a smaller
    /// `max_bytes`).
    pub dropped_qos0_evicted: u64,
    /// QoS 0 messages refused while offline ([`SpoolError::Qos0Offline`]).
    pub dropped_qos0_offline: u64,
    /// Messages refused because the spool was full ([`SpoolError::Full`], [`SpoolError::SeqExhausted`]).
    pub refused_full: u64,
    /// Messages refused because they alone exceed the spool ([`SpoolError::TooLarge`]).
    pub refused_too_large: u64,
    /// Messages in the spool now, handed out or not.
    pub queued: usize,
    /// Their bytes (topic + payload).
    pub queued_bytes: u64,
    /// Messages handed out and not yet delivered.
    pub in_flight: usize,
}

/// The spool: a bounded FIFO of cloud-bound messages over a [`SpoolStorage`].
///
/// ```
/// use bytes::Bytes;
/// use iot_examples::edge::spool::{MemorySpoolStorage, Spool, SpoolConfig, SpoolError};
/// use mqtt_codec::QoS;
///
/// let config = SpoolConfig { max_bytes: 32, keep_qos0_when_offline: false };
/// let mut spool = Spool::open(config, MemorySpoolStorage::new());
///
/// // Offline: QoS 1 is kept, QoS 0 refused (and counted).
/// let first = spool.push("cars/1", Bytes::from_static(b"hello"), QoS::AtLeastOnce, false, false)?;
/// assert_eq!(
///     spool.push("cars/1", Bytes::from_static(b"x"), QoS::AtMostOnce, false, false),
///     Err(SpoolError::Qos0Offline)
/// );
///
/// // Online: hand out the oldest; it stays until its PUBACK.
/// let message = spool.next_unsent().expect("one message");
/// assert_eq!((message.seq, message.topic.as_str()), (first, "cars/1"));
/// assert_eq!((spool.len(), spool.in_flight()), (1, 1));
/// spool.acked(message.seq);
/// assert_eq!(spool.len(), 0);
/// assert_eq!(spool.stats().delivered, 1);
/// # Ok::<(), SpoolError>(())
/// ```
#[derive(Debug)]
pub struct Spool<S: SpoolStorage> {
    config: SpoolConfig,
    storage: S,
    /// Every message, by seq.
    messages: BTreeMap<u64, SpooledMessage>,
    /// The seqs not handed out.
    unsent: BTreeSet<u64>,
    /// The QoS 0 seqs not handed out: the ones eviction may drop, oldest first.
    unsent_qos0: BTreeSet<u64>,
    /// Bytes of `unsent_qos0`.
    unsent_qos0_bytes: u64,
    /// Bytes of `messages`.
    bytes: u64,
    next_seq: u64,
    stats: SpoolStats,
}

impl<S: SpoolStorage> Spool<S> {
    /// A spool over `storage`, holding what it kept: oldest first, nothing handed out. Sequence
    /// numbers continue after the largest loaded (from 1 when empty). Should the storage hold more
    /// than `max_bytes` (the size was lowered), the oldest QoS 0 messages are dropped to fit
    /// (counted as evicted); QoS 1 messages are all kept and new messages are refused until the
    /// spool is back under its size.
    pub fn open(config: SpoolConfig, mut storage: S) -> Self {
        let loaded = storage.load();
        let mut spool = Spool {
            config,
            storage,
            messages: BTreeMap::new(),
            unsent: BTreeSet::new(),
            unsent_qos0: BTreeSet::new(),
            unsent_qos0_bytes: 0,
            bytes: 0,
            next_seq: 1,
            stats: SpoolStats::default(),
        };
        let loaded: BTreeMap<u64, SpooledMessage> =
            loaded.into_iter().map(|m| (m.seq, m)).collect();
        for message in loaded.into_values() {
            spool.next_seq = spool.next_seq.max(message.seq.saturating_add(1));
            spool.insert(message);
        }
        while spool.bytes > spool.config.max_bytes && spool.evict_oldest_qos0() {}
        spool
    }

    /// Adds a message bound for the cloud; `online` says whether the cloud link is up now.
    /// Returns its seq.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Qos0Offline`] for QoS 0 while offline (unless kept offline),
    /// [`SpoolError::TooLarge`] when it alone exceeds `max_bytes`, [`SpoolError::Full`] when
    /// dropping every QoS 0 message not handed out would not make room (then none is dropped),
    /// [`SpoolError::Qos2`] and [`SpoolError::TopicTooLong`] for what MQTT towards AWS cannot
    /// carry, [`SpoolError::SeqExhausted`] never in practice.
    pub fn push(
        &mut self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        online: bool,
    ) -> Result<u64, SpoolError> {
        match qos {
            QoS::ExactlyOnce => return Err(SpoolError::Qos2),
            QoS::AtMostOnce if !online && !self.config.keep_qos0_when_offline => {
                self.stats.dropped_qos0_offline += 1;
                return Err(SpoolError::Qos0Offline);
            }
            QoS::AtMostOnce | QoS::AtLeastOnce => {}
        }
        if topic.len() > MAX_TOPIC_LEN {
            return Err(SpoolError::TopicTooLong { len: topic.len() });
        }
        let size = message_size(topic, &payload);
        let max_bytes = self.config.max_bytes;
        if size > max_bytes {
            self.stats.refused_too_large += 1;
            return Err(SpoolError::TooLarge { size, max_bytes });
        }
        // Bytes to free for it to fit; eviction frees at most `unsent_qos0_bytes`, and drops
        // nothing unless that is enough.
        let over = self.bytes.saturating_add(size).saturating_sub(max_bytes);
        if over > self.unsent_qos0_bytes {
            self.stats.refused_full += 1;
            return Err(SpoolError::Full {
                size,
                queued_bytes: self.bytes,
                max_bytes,
            });
        }
        let seq = self.next_seq;
        let Some(next) = seq.checked_add(1) else {
            self.stats.refused_full += 1;
            return Err(SpoolError::SeqExhausted);
        };
        while self.bytes.saturating_add(size) > max_bytes && self.evict_oldest_qos0() {}
        self.next_seq = next;
        let message = SpooledMessage {
            seq,
            topic: topic.to_owned(),
            payload,
            qos,
            retain,
        };
        self.storage.put(&message);
        self.insert(message);
        self.stats.accepted += 1;
        Ok(seq)
    }

    /// The oldest message not handed out yet, now handed out: it stays in the spool until
    /// [`sent`](Self::sent) or [`acked`](Self::acked), and eviction no longer touches it. The
    /// payload is shared, not copied.
    pub fn next_unsent(&mut self) -> Option<SpooledMessage> {
        let seq = self.unsent.pop_first()?;
        let message = self.messages.get(&seq)?;
        if self.unsent_qos0.remove(&seq) {
            self.unsent_qos0_bytes = self.unsent_qos0_bytes.saturating_sub(message.size());
        }
        Some(message.clone())
    }

    /// A handed-out QoS 0 message was written: it leaves the spool. Returns whether it did;
    /// an unknown seq, a message not handed out, or a QoS 1 message (it waits for its PUBACK) is
    /// ignored.
    pub fn sent(&mut self, seq: u64) -> bool {
        let handed_out_qos0 = !self.unsent.contains(&seq)
            && self
                .messages
                .get(&seq)
                .is_some_and(|m| m.qos == QoS::AtMostOnce);
        handed_out_qos0 && self.deliver(seq)
    }

    /// A handed-out message got its PUBACK: it leaves the spool. Returns whether it did; an
    /// unknown seq or a message not handed out is ignored.
    pub fn acked(&mut self, seq: u64) -> bool {
        !self.unsent.contains(&seq) && self.deliver(seq)
    }

    /// A handed-out message was not taken by the cloud session (its queue was full, the link
    /// dropped before it was written): it goes back to its place among the unsent, before
    /// anything newer (Greengrass's "a failed send returns to the front"). Returns whether it
    /// did; an unknown seq or a message not handed out is ignored.
    pub fn put_back(&mut self, seq: u64) -> bool {
        if self.unsent.contains(&seq) {
            return false;
        }
        let Some(message) = self.messages.get(&seq) else {
            return false;
        };
        if message.qos == QoS::AtMostOnce {
            self.unsent_qos0.insert(seq);
            self.unsent_qos0_bytes = self.unsent_qos0_bytes.saturating_add(message.size());
        }
        self.unsent.insert(seq)
    }

    /// The cloud session was reset and will resend nothing handed out: every handed-out message
    /// is unsent again, each in its place (oldest first, before anything newer).
    pub fn requeue(&mut self) {
        let handed_out: Vec<u64> = self
            .messages
            .keys()
            .filter(|seq| !self.unsent.contains(seq))
            .copied()
            .collect();
        for seq in handed_out {
            self.put_back(seq);
        }
    }

    /// Messages in the spool, handed out or not.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the spool holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Bytes in the spool (topic + payload, summed).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Messages handed out and not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.messages.len().saturating_sub(self.unsent.len())
    }

    /// Messages in the spool, oldest first, handed out or not.
    pub fn messages(&self) -> impl Iterator<Item = &SpooledMessage> {
        self.messages.values()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// The storage it mirrors into.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage back, the spool closed.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Counters since [`open`](Self::open) and the gauges now.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            queued: self.messages.len(),
            queued_bytes: self.bytes,
            in_flight: self.in_flight(),
            ..self.stats
        }
    }

    /// Adds a message with a new seq to the index, unsent (the storage is the caller's business).
    fn insert(&mut self, message: SpooledMessage) {
        let seq = message.seq;
        let size = message.size();
        if message.qos == QoS::AtMostOnce {
            self.unsent_qos0.insert(seq);
            self.unsent_qos0_bytes = self.unsent_qos0_bytes.saturating_add(size);
        }
        self.unsent.insert(seq);
        self.messages.insert(seq, message);
        self.bytes = self.bytes.saturating_add(size);
    }

    /// Removes a message from the index and the storage; returns whether it was there.
    fn remove(&mut self, seq: u64) -> bool {
        let Some(message) = self.messages.remove(&seq) else {
            return false;
        };
        let size = message.size();
        self.unsent.remove(&seq);
        if self.unsent_qos0.remove(&seq) {
            self.unsent_qos0_bytes = self.unsent_qos0_bytes.saturating_sub(size);
        }
        self.bytes = self.bytes.saturating_sub(size);
        self.storage.delete(seq);
        true
    }

    fn deliver(&mut self, seq: u64) -> bool {
        let removed = self.remove(seq);
        if removed {
            self.stats.delivered += 1;
        }
        removed
    }

    /// Drops the oldest QoS 0 message not handed out; false when there is none.
    fn evict_oldest_qos0(&mut self) -> bool {
        let Some(&seq) = self.unsent_qos0.first() else {
            return false;
        };
        let removed = self.remove(seq);
        if removed {
            self.stats.dropped_qos0_evicted += 1;
        }
        removed
    }
}
