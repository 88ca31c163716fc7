//! The spool over the store: [`DurableSpool`] as a [`SpoolStorage`], so the spool's changes are
//! committed with the rest of the engine turn (Greengrass's `Disk` storage type, our default).

use iot_broker_core::message::Message;

use super::{SpoolStorage, SpooledMessage};
use crate::store::spool::DurableSpool;

impl SpoolStorage for DurableSpool {
    fn put(&mut self, message: &SpooledMessage) {
        self.put_message(
            message.seq,
            &message.topic,
            &message.payload,
            message.qos,
            message.retain,
        );
    }

    fn delete(&mut self, seq: u64) {
        self.delete_message(seq);
    }

    /// What the store held when the [`DurableSpool`] was opened (once).
    fn load(&mut self) -> Vec<SpooledMessage> {
        self.take_restored()
            .into_iter()
            .map(|(seq, message)| spooled(seq, message))
            .collect()
    }
}

fn spooled(seq: u64, message: Message) -> SpooledMessage {
    SpooledMessage {
        seq,
        topic: message.topic.as_str().to_owned(),
        payload: message.payload,
        qos: message.qos,
        retain: message.retain,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use mqtt_codec::QoS;

    use super::super::{Spool, SpoolConfig};
    use super::*;
    use crate::store::Store;

    use crate::store::temp_store::TempStore;

    fn open(file: &TempStore) -> (crate::store::SharedStore, Spool<DurableSpool>) {
        let store = Store::open(&file.0).expect("open store").shared();
        let storage = DurableSpool::open(store.clone()).expect("open spool");
        (store, Spool::open(SpoolConfig::default(), storage))
    }

    fn topics(spool: &Spool<DurableSpool>) -> Vec<(u64, String, QoS, bool)> {
        spool
            .messages()
            .map(|m| (m.seq, m.topic.clone(), m.qos, m.retain))
            .collect()
    }

    #[test]
    fn the_spool_survives_a_restart_of_the_store() {
        let file = TempStore::new("edge-spool-restart");
        let before;
        {
            let (store, mut spool) = open(&file);
            for (i, qos) in [
                QoS::AtLeastOnce,
                QoS::AtMostOnce,
                QoS::AtLeastOnce,
                QoS::AtLeastOnce,
            ]
            .into_iter()
            .enumerate()
            {
                let payload = Bytes::from(format!("reading {i}"));
                spool
                    .push(
                        &format!("cars/car-{i}/telemetry"),
                        payload,
                        qos,
                        i == 3,
                        true,
                    )
                    .expect("push");
            }
            // Two handed out: the first acked, the second (QoS 0) written; a third handed out
            // and not yet acknowledged when the core stops.
            let first = spool.next_unsent().expect("first");
            let second = spool.next_unsent().expect("second");
            let third = spool.next_unsent().expect("third");
            assert!(spool.acked(first.seq));
            assert!(spool.sent(second.seq));
            assert_eq!(third.seq, 3);
            store.borrow_mut().commit().expect("commit");
            before = topics(&spool);
            assert_eq!(before.len(), 2);
        }
        let (store, mut spool) = open(&file);
        assert_eq!(topics(&spool), before);
        assert_eq!(spool.in_flight(), 0, "nothing is in flight after a restart");
        let payload = spool.next_unsent().expect("oldest").payload;
        assert_eq!(payload, Bytes::from_static(b"reading 2"));
        let seq = spool
            .push(
                "cars/car-9/telemetry",
                Bytes::new(),
                QoS::AtLeastOnce,
                false,
                false,
            )
            .expect("push");
        assert_eq!(seq, 5, "seq continues after the largest kept");
        store.borrow_mut().commit().expect("commit");
        drop((store, spool));

        let (_store, spool) = open(&file);
        let seqs: Vec<u64> = spool.messages().map(|m| m.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(
            spool.bytes(),
            spool.messages().map(SpooledMessage::size).sum::<u64>()
        );
    }

    #[test]
    fn an_uncommitted_turn_is_not_spooled() {
        let file = TempStore::new("edge-spool-uncommitted");
        {
            let (store, mut spool) = open(&file);
            spool
                .push(
                    "a",
                    Bytes::from_static(b"kept"),
                    QoS::AtLeastOnce,
                    false,
                    false,
                )
                .expect("push");
            store.borrow_mut().commit().expect("commit");
            spool
                .push(
                    "b",
                    Bytes::from_static(b"lost"),
                    QoS::AtLeastOnce,
                    false,
                    false,
                )
                .expect("push");
            let first = spool.next_unsent().expect("first");
            spool.acked(first.seq);
            // The engine stops before committing this turn: neither the push nor the ack stick.
        }
        let (_store, spool) = open(&file);
        let kept: Vec<&str> = spool.messages().map(|m| m.topic.as_str()).collect();
        assert_eq!(kept, ["a"]);
    }
}
