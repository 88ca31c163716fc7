//! The edge core's spool in the store: the `spool` table (sequence number to message) and
//! [`DurableSpool`], which records the spool's changes into the store's pending batch so they are
//! committed with the rest of the engine turn. The edge core's `SpoolStorage` is implemented over
//! it in the edge folder (the store imports no program folder).

use bytes::Bytes;
use iot_broker_core::codec::QoS;
use iot_broker_core::message::Message;
use redb::{ReadableDatabase, ReadableTable};

use super::{
    Op, SPOOL, SharedStore, Store, StoreError, decode_message, encode_message_parts, redb_err,
};

impl Store {
    /// The committed spool: every message with its sequence number, oldest first.
    pub fn load_spool(&self) -> Result<Vec<(u64, Message)>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(SPOOL).map_err(redb_err)?;
        let mut messages = Vec::new();
        for entry in table.iter().map_err(redb_err)? {
            let (k, v) = entry.map_err(redb_err)?;
            let seq: [u8; 8] = k
                .value()
                .try_into()
                .map_err(|_| StoreError::Corrupt("spool"))?;
            let message = decode_message(v.value()).ok_or(StoreError::Corrupt("spool"))?;
            messages.push((u64::from_be_bytes(seq), message));
        }
        Ok(messages)
    }
}

/// The spool's records in the shared store: writes go into the pending batch (committed by the
/// engine with everything else), reads happen once, at [`open`](Self::open).
#[derive(Debug, Clone)]
pub struct DurableSpool {
    store: SharedStore,
    restored: Vec<(u64, Message)>,
}

impl DurableSpool {
    /// The spool over `store`, reading what it committed.
    pub fn open(store: SharedStore) -> Result<Self, StoreError> {
        let restored = store.borrow().load_spool()?;
        Ok(DurableSpool { store, restored })
    }

    /// What was read at [`open`](Self::open), oldest first; empty after the first call.
    pub fn take_restored(&mut self) -> Vec<(u64, Message)> {
        std::mem::take(&mut self.restored)
    }

    /// Records message `seq` (committed with the next batch). The topic is at most 65,535 bytes.
    pub fn put_message(&self, seq: u64, topic: &str, payload: &Bytes, qos: QoS, retain: bool) {
        let record = encode_message_parts(topic, payload, qos, retain);
        self.store
            .borrow_mut()
            .pending
            .push(Op::PutSpool(seq, record));
    }

    /// Forgets message `seq` (committed with the next batch).
    pub fn delete_message(&self, seq: u64) {
        self.store.borrow_mut().pending.push(Op::DeleteSpool(seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::temp_store::TempStore;

    #[test]
    fn spool_records_survive_a_reopen_in_order() {
        let file = TempStore::new("spool-records");
        {
            let store = Store::open(&file.0).expect("open").shared();
            let spool = DurableSpool::open(store.clone()).expect("spool");
            assert!(spool.restored.is_empty());
            // 256 sorts after 2 only with big-endian keys.
            for seq in [256, 2, 3] {
                spool.put_message(
                    seq,
                    "cars/1/telemetry",
                    &Bytes::from(seq.to_string()),
                    QoS::AtLeastOnce,
                    seq == 3,
                );
            }
            spool.delete_message(3);
            spool.delete_message(99);
            store.borrow_mut().commit().expect("commit");
        }
        let store = Store::open(&file.0).expect("reopen").shared();
        let mut spool = DurableSpool::open(store).expect("spool");
        let restored = spool.take_restored();
        let seqs: Vec<u64> = restored.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [2, 256]);
        let (_, message) = &restored[1];
        assert_eq!(message.topic.as_str(), "cars/1/telemetry");
        assert_eq!(message.payload, Bytes::from_static(b"256"));
        assert_eq!((message.qos, message.retain), (QoS::AtLeastOnce, false));
        assert!(spool.take_restored().is_empty());
    }

    #[test]
    fn uncommitted_spool_changes_are_not_read_back() {
        let file = TempStore::new("spool-uncommitted");
        {
            let store = Store::open(&file.0).expect("open").shared();
            let spool = DurableSpool::open(store.clone()).expect("spool");
            spool.put_message(1, "t", &Bytes::new(), QoS::AtMostOnce, false);
            assert!(store.borrow().has_pending());
        }
        let store = Store::open(&file.0).expect("reopen");
        assert!(store.load_spool().expect("load").is_empty());
    }
}
