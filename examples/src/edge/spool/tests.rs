//! The spool's rules, one test each, and a property test against a model.

use std::collections::BTreeMap;

use bytes::Bytes;
use mqtt_codec::QoS;
use proptest::prelude::*;

use super::*;

const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;

fn spool(max_bytes: u64) -> Spool<MemorySpoolStorage> {
    let config = SpoolConfig {
        max_bytes,
        keep_qos0_when_offline: false,
    };
    Spool::open(config, MemorySpoolStorage::new())
}

/// Pushes a message of `size` bytes (a one-byte topic and `size - 1` payload bytes), online.
fn push(spool: &mut Spool<MemorySpoolStorage>, size: usize, qos: QoS) -> Result<u64, SpoolError> {
    let payload = Bytes::from(vec![b'x'; size.saturating_sub(1)]);
    spool.push("t", payload, qos, false, true)
}

fn seqs(spool: &Spool<MemorySpoolStorage>) -> Vec<u64> {
    spool.messages().map(|m| m.seq).collect()
}

fn assert_mirrored(spool: &Spool<MemorySpoolStorage>) {
    let stored: Vec<&SpooledMessage> = spool.storage().messages().collect();
    let held: Vec<&SpooledMessage> = spool.messages().collect();
    assert_eq!(stored, held, "the storage mirrors the spool");
}

#[test]
fn defaults_are_greengrass_s() {
    let config = SpoolConfig::default();
    assert_eq!(config.max_bytes, 2_621_440);
    assert!(!config.keep_qos0_when_offline);
}

#[test]
fn messages_are_handed_out_oldest_first() {
    let mut spool = spool(100);
    for topic in ["a", "b", "c"] {
        spool
            .push(topic, Bytes::from_static(b"p"), Q1, true, false)
            .expect("push");
    }
    let handed: Vec<(u64, String)> = std::iter::from_fn(|| spool.next_unsent())
        .map(|m| (m.seq, m.topic))
        .collect();
    assert_eq!(handed, [(1, "a".into()), (2, "b".into()), (3, "c".into())]);
    assert_eq!((spool.len(), spool.in_flight()), (3, 3));
    assert!(spool.next_unsent().is_none());
}

#[test]
fn size_is_topic_plus_payload() {
    let mut spool = spool(100);
    spool
        .push("abc", Bytes::from_static(b"12345"), Q1, false, true)
        .expect("push");
    assert_eq!(spool.bytes(), 8);
    assert_eq!(spool.messages().map(SpooledMessage::size).sum::<u64>(), 8);
}

#[test]
fn full_drops_the_oldest_unsent_qos0_messages_and_never_qos1() {
    let mut spool = spool(10);
    let a = push(&mut spool, 3, Q0).expect("a");
    let b = push(&mut spool, 3, Q1).expect("b");
    let c = push(&mut spool, 3, Q0).expect("c");
    // 9 of 10 bytes: 4 more need 3 freed, the oldest QoS 0 (a) is dropped, not c, never b.
    let d = push(&mut spool, 4, Q1).expect("d");
    assert_eq!(seqs(&spool), [b, c, d]);
    assert!(!seqs(&spool).contains(&a));
    assert_eq!(spool.bytes(), 10);
    // 7 more need 7 freed: c's 3 bytes are not enough, so nothing is dropped.
    assert!(matches!(
        push(&mut spool, 7, Q0),
        Err(SpoolError::Full {
            size: 7,
            queued_bytes: 10,
            max_bytes: 10
        })
    ));
    assert_eq!(seqs(&spool), [b, c, d]);
    // 3 more: c goes.
    let e = push(&mut spool, 3, Q0).expect("e");
    assert_eq!(seqs(&spool), [b, d, e]);
    let stats = spool.stats();
    assert_eq!((stats.dropped_qos0_evicted, stats.refused_full), (2, 1));
    assert_eq!(
        (stats.accepted, stats.queued, stats.queued_bytes),
        (5, 3, 10)
    );
    assert_mirrored(&spool);
}

#[test]
fn a_handed_out_qos0_message_is_not_dropped() {
    let mut spool = spool(6);
    let a = push(&mut spool, 3, Q0).expect("a");
    push(&mut spool, 3, Q1).expect("b");
    assert_eq!(spool.next_unsent().map(|m| m.seq), Some(a));
    let refused = push(&mut spool, 1, Q0);
    assert!(matches!(refused, Err(SpoolError::Full { .. })));
    assert_eq!(spool.len(), 2);
    // Back among the unsent, it may be dropped again.
    assert!(spool.put_back(a));
    push(&mut spool, 1, Q0).expect("fits once a is dropped");
    assert_eq!(spool.stats().dropped_qos0_evicted, 1);
}

#[test]
fn a_spool_of_qos1_refuses_when_full_and_counts() {
    let mut spool = spool(10);
    push(&mut spool, 5, Q1).expect("a");
    push(&mut spool, 5, Q1).expect("b");
    let error = push(&mut spool, 1, Q1).expect_err("full");
    assert!(error.to_string().starts_with("Message spool is full"));
    assert_eq!(spool.stats().refused_full, 1);
    assert_eq!(spool.len(), 2);
}

#[test]
fn a_message_bigger_than_the_spool_is_refused() {
    let mut spool = spool(10);
    push(&mut spool, 5, Q0).expect("a");
    assert_eq!(
        push(&mut spool, 11, Q1),
        Err(SpoolError::TooLarge {
            size: 11,
            max_bytes: 10
        })
    );
    assert_eq!(
        spool.len(),
        1,
        "nothing dropped for a message that can never fit"
    );
    assert_eq!(spool.stats().refused_too_large, 1);
    push(&mut spool, 10, Q1).expect("exactly the spool's size fits once a is dropped");
}

#[test]
fn qos0_while_offline_is_refused_unless_kept() {
    let mut spool = spool(100);
    assert_eq!(
        spool.push("t", Bytes::new(), Q0, false, false),
        Err(SpoolError::Qos0Offline)
    );
    spool
        .push("t", Bytes::new(), Q0, false, true)
        .expect("online");
    spool
        .push("t", Bytes::new(), Q1, false, false)
        .expect("QoS 1 offline");
    assert_eq!(spool.stats().dropped_qos0_offline, 1);
    assert_eq!(spool.len(), 2);

    let config = SpoolConfig {
        max_bytes: 100,
        keep_qos0_when_offline: true,
    };
    let mut keeping = Spool::open(config, MemorySpoolStorage::new());
    keeping
        .push("t", Bytes::new(), Q0, false, false)
        .expect("kept offline");
    assert_eq!(keeping.stats().dropped_qos0_offline, 0);
}

#[test]
fn what_mqtt_towards_aws_cannot_carry_is_refused() {
    let mut spool = spool(200_000);
    assert_eq!(
        spool.push("t", Bytes::new(), QoS::ExactlyOnce, false, true),
        Err(SpoolError::Qos2)
    );
    let long = "t".repeat(65_536);
    assert_eq!(
        spool.push(&long, Bytes::new(), Q1, false, true),
        Err(SpoolError::TopicTooLong { len: 65_536 })
    );
    spool
        .push(&long[1..], Bytes::new(), Q1, false, true)
        .expect("65,535 bytes is a topic");
    assert_eq!(spool.len(), 1);
}

#[test]
fn requeue_puts_every_handed_out_message_back_in_order() {
    let mut spool = spool(100);
    for _ in 0..5 {
        push(&mut spool, 2, Q1).expect("push");
    }
    for _ in 0..3 {
        spool.next_unsent().expect("handed out");
    }
    assert!(spool.acked(2));
    spool.requeue();
    assert_eq!(spool.in_flight(), 0);
    let order: Vec<u64> = std::iter::from_fn(|| spool.next_unsent())
        .map(|m| m.seq)
        .collect();
    assert_eq!(order, [1, 3, 4, 5]);
}

#[test]
fn a_message_put_back_goes_before_anything_newer() {
    let mut spool = spool(100);
    for _ in 0..3 {
        push(&mut spool, 2, Q1).expect("push");
    }
    let first = spool.next_unsent().expect("first");
    spool.next_unsent().expect("second");
    assert!(spool.put_back(first.seq));
    assert!(!spool.put_back(first.seq), "already unsent");
    assert!(!spool.put_back(42), "unknown");
    assert_eq!(spool.next_unsent().map(|m| m.seq), Some(1));
    assert_eq!(spool.next_unsent().map(|m| m.seq), Some(3));
}

#[test]
fn sent_and_acked_remove_only_what_they_name() {
    let mut spool = spool(100);
    let q0 = push(&mut spool, 2, Q0).expect("q0");
    let q1 = push(&mut spool, 2, Q1).expect("q1");
    let waiting = push(&mut spool, 2, Q1).expect("waiting");
    assert!(!spool.acked(q0), "not handed out");
    assert!(!spool.sent(q0), "not handed out");
    spool.next_unsent().expect("q0");
    spool.next_unsent().expect("q1");
    assert!(!spool.acked(99) && !spool.sent(99), "unknown");
    assert!(!spool.sent(q1), "a QoS 1 message waits for its PUBACK");
    assert!(!spool.acked(waiting), "not handed out");
    assert!(spool.sent(q0));
    assert!(spool.acked(q1));
    assert!(!spool.acked(q1), "already gone");
    assert_eq!(seqs(&spool), [waiting]);
    assert_eq!(spool.stats().delivered, 2);
    assert_mirrored(&spool);
}

#[test]
fn reopening_keeps_the_order_and_continues_the_seqs() {
    let mut spool = spool(100);
    for _ in 0..4 {
        push(&mut spool, 2, Q1).expect("push");
    }
    let first = spool.next_unsent().expect("first");
    spool.next_unsent().expect("second, in flight when closed");
    spool.acked(first.seq);
    let config = *spool.config();
    let mut spool = Spool::open(config, spool.into_storage());
    assert_eq!(seqs(&spool), [2, 3, 4]);
    assert_eq!((spool.in_flight(), spool.bytes()), (0, 6));
    assert_eq!(push(&mut spool, 2, Q1), Ok(5));
    assert_eq!(spool.next_unsent().map(|m| m.seq), Some(2));
    assert_eq!(spool.stats().accepted, 1, "counters start again at open");
}

#[test]
fn opening_with_a_smaller_size_drops_qos0_and_keeps_qos1() {
    let mut spool = spool(100);
    for qos in [Q1, Q0, Q1, Q0] {
        push(&mut spool, 10, qos).expect("push");
    }
    let config = SpoolConfig {
        max_bytes: 15,
        keep_qos0_when_offline: false,
    };
    let mut spool = Spool::open(config, spool.into_storage());
    assert_eq!(seqs(&spool), [1, 3]);
    assert_eq!(spool.bytes(), 20);
    assert_eq!(spool.stats().dropped_qos0_evicted, 2);
    assert!(matches!(
        push(&mut spool, 1, Q0),
        Err(SpoolError::Full { .. })
    ));
    assert_mirrored(&spool);
    let first = spool.next_unsent().expect("first");
    spool.acked(first.seq);
    push(&mut spool, 5, Q1).expect("room again");
}

#[test]
fn a_storage_at_the_last_seq_refuses_instead_of_wrapping() {
    let mut storage = MemorySpoolStorage::new();
    storage.put(&SpooledMessage {
        seq: u64::MAX,
        topic: "t".into(),
        payload: Bytes::new(),
        qos: Q1,
        retain: false,
    });
    let mut spool = Spool::open(SpoolConfig::default(), storage);
    assert_eq!(push(&mut spool, 1, Q1), Err(SpoolError::SeqExhausted));
    assert_eq!(spool.len(), 1);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    Push {
        topic_len: usize,
        payload_len: usize,
        qos1: bool,
        online: bool,
    },
    Next,
    /// Ack (or, for `sent`, write) a handed-out message picked by index, or an unknown seq.
    Ack(usize),
    Sent(usize),
    PutBack(usize),
    Requeue,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..4, 0usize..9, any::<bool>(), any::<bool>()).prop_map(
            |(topic_len, payload_len, qos1, online)| Step::Push { topic_len, payload_len, qos1, online }
        ),
        3 => Just(Step::Next),
        2 => any::<usize>().prop_map(Step::Ack),
        2 => any::<usize>().prop_map(Step::Sent),
        1 => any::<usize>().prop_map(Step::PutBack),
        1 => Just(Step::Requeue),
        1 => Just(Step::Reopen),
    ]
}

/// What the model keeps of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Modeled {
    qos: QoS,
    size: u64,
    handed_out: bool,
}

/// A slow, obvious spool: the reference the real one must agree with.
#[derive(Debug, Default)]
struct Model {
    messages: BTreeMap<u64, Modeled>,
    next_seq: u64,
}

impl Model {
    fn bytes(&self) -> u64 {
        self.messages.values().map(|m| m.size).sum()
    }

    fn push(&mut self, config: SpoolConfig, size: u64, qos: QoS, online: bool) -> Option<u64> {
        if qos == Q0 && !online && !config.keep_qos0_when_offline {
            return None;
        }
        let droppable: u64 = self
            .messages
            .values()
            .filter(|m| m.qos == Q0 && !m.handed_out)
            .map(|m| m.size)
            .sum();
        if size > config.max_bytes || self.bytes() + size > config.max_bytes + droppable {
            return None;
        }
        while self.bytes() + size > config.max_bytes {
            let oldest = self
                .messages
                .iter()
                .find(|(_, m)| m.qos == Q0 && !m.handed_out)
                .map(|(seq, _)| *seq)?;
            self.messages.remove(&oldest);
        }
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        self.messages.insert(
            seq,
            Modeled {
                qos,
                size,
                handed_out: false,
            },
        );
        Some(seq)
    }

    fn handed_out(&self, pick: usize) -> Option<u64> {
        let handed: Vec<u64> = self
            .messages
            .iter()
            .filter(|(_, m)| m.handed_out)
            .map(|(seq, _)| *seq)
            .collect();
        // One pick in four names a seq never used.
        if pick % 4 == 3 || handed.is_empty() {
            return Some(1_000_000 + pick as u64 % 7);
        }
        handed.get(pick % handed.len()).copied()
    }
}

fn run(config: SpoolConfig, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut spool = Spool::open(config, MemorySpoolStorage::new());
    let mut model = Model::default();
    let mut unacked_qos1 = BTreeSet::new();
    for step in steps {
        match step {
            Step::Push {
                topic_len,
                payload_len,
                qos1,
                online,
            } => {
                let qos = if qos1 { Q1 } else { Q0 };
                let topic = "t".repeat(topic_len);
                let payload = Bytes::from(vec![0; payload_len]);
                let got = spool.push(&topic, payload, qos, false, online).ok();
                let size = (topic_len + payload_len) as u64;
                prop_assert_eq!(got, model.push(config, size, qos, online));
                if let (Some(seq), true) = (got, qos1) {
                    unacked_qos1.insert(seq);
                }
            }
            Step::Next => {
                let expected =
                    model
                        .messages
                        .iter_mut()
                        .find(|(_, m)| !m.handed_out)
                        .map(|(seq, m)| {
                            m.handed_out = true;
                            *seq
                        });
                prop_assert_eq!(spool.next_unsent().map(|m| m.seq), expected);
            }
            Step::Ack(pick) => {
                let Some(seq) = model.handed_out(pick) else {
                    continue;
                };
                let expected = model.messages.remove(&seq).is_some();
                prop_assert_eq!(spool.acked(seq), expected);
                unacked_qos1.remove(&seq);
            }
            Step::Sent(pick) => {
                let Some(seq) = model.handed_out(pick) else {
                    continue;
                };
                let is_qos0 = model.messages.get(&seq).is_some_and(|m| m.qos == Q0);
                if is_qos0 {
                    model.messages.remove(&seq);
                }
                prop_assert_eq!(spool.sent(seq), is_qos0);
            }
            Step::PutBack(pick) => {
                let Some(seq) = model.handed_out(pick) else {
                    continue;
                };
                let known = model.messages.get_mut(&seq).map(|m| m.handed_out = false);
                prop_assert_eq!(spool.put_back(seq), known.is_some());
            }
            Step::Requeue => {
                spool.requeue();
                model
                    .messages
                    .values_mut()
                    .for_each(|m| m.handed_out = false);
            }
            Step::Reopen => {
                spool = Spool::open(config, spool.into_storage());
                model
                    .messages
                    .values_mut()
                    .for_each(|m| m.handed_out = false);
                model.next_seq = model.messages.keys().last().map_or(1, |seq| seq + 1);
            }
        }
        prop_assert!(spool.bytes() <= config.max_bytes);
        prop_assert_eq!(spool.bytes(), model.bytes());
        let held: Vec<u64> = seqs(&spool);
        prop_assert_eq!(&held, &model.messages.keys().copied().collect::<Vec<_>>());
        let in_flight = model.messages.values().filter(|m| m.handed_out).count();
        prop_assert_eq!(spool.in_flight(), in_flight);
        for seq in &unacked_qos1 {
            prop_assert!(held.contains(seq), "QoS 1 message {} was dropped", seq);
        }
        let stored: Vec<&SpooledMessage> = spool.storage().messages().collect();
        prop_assert_eq!(stored, spool.messages().collect::<Vec<_>>());
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_spool_agrees_with_its_model(
        max_bytes in 4u64..40,
        keep_qos0_when_offline in any::<bool>(),
        steps in proptest::collection::vec(step(), 0..80),
    ) {
        run(SpoolConfig { max_bytes, keep_qos0_when_offline }, steps)?;
    }
}
