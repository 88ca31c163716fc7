//! The durable store: one redb database under the data directory holding the certificate registry,
//! shadows, retained messages, persistent sessions with their queued messages, and the edge
//! core's [`spool`] of cloud-bound messages.
//!
//! Writes are batched: the broker records changes through [`BrokerPersistence`] and
//! [`DurableShadows`] (the edge core its spool through [`spool::DurableSpool`]) into one pending
//! batch, and the engine commits it (one fsync) before it writes the packets that acknowledge
//! those changes.
//!
//! Also here: the [`data_dir`] (the store file, the development CA, server and device
//! certificates), the SigV4 [`access_keys`] and the Greengrass core devices ([`greengrass`], with
//! the [`discover_response`] they answer devices with) kept in the store.
//!
//! May import: `config/`. Must not import a program folder.

pub mod access_keys;
pub mod data_dir;
pub mod discover_response;
pub mod greengrass;
pub mod spool;
#[cfg(test)]
pub(crate) mod temp_store;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use iot_broker_core::codec::{QoS, Utf8Bytes};
use iot_broker_core::message::{Message, RetainedMessage};
use iot_broker_core::persist::{Persistence, Restored, RestoredSession, SessionRecord};
use iot_shadow::{ShadowEntry, ShadowKey, ShadowSlot, ShadowStore, StoredShadow};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Key: client id, 0x00, sequence number (8 bytes big-endian).
const MESSAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("messages");
/// Key: thing, 0x00, shadow name ("" for the classic shadow). Value: the stored shadow JSON.
const SHADOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("shadows");
/// The edge core's shadow sync records. Key: as [`SHADOWS`]. Value: the record's JSON.
const SYNC: TableDefinition<&str, &[u8]> = TableDefinition::new("shadow_sync");
/// The edge spool. Key: sequence number (8 bytes big-endian). Value: the message as
/// `encode_message` writes it.
const SPOOL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("spool");

const REGISTRY_KEY: &str = "registry";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb refused.
    #[error("store: {0}")]
    Redb(String),
    /// A stored record does not decode.
    #[error("store: corrupt record in {0}")]
    Corrupt(&'static str),
    /// The engine's commit thread could not start.
    #[error("store: cannot start the commit thread: {0}")]
    CommitThread(#[source] std::io::Error),
    /// The engine's commit thread stopped (after a failed commit).
    #[error("store: the commit thread stopped")]
    CommitStopped,
}

fn redb_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redb(e.to_string())
}

#[derive(Debug)]
enum Op {
    PutRetained(String, Vec<u8>),
    DeleteRetained(String),
    PutSession(String, Vec<u8>),
    DeleteSession(String),
    PutMessage(Vec<u8>, Vec<u8>),
    DeleteMessage(Vec<u8>),
    PutShadow(String, Vec<u8>),
    DeleteShadow(String),
    PutMeta(String, Vec<u8>),
    PutSync(String, Vec<u8>),
    PutSpool(u64, Vec<u8>),
    DeleteSpool(u64),
}

/// The database and the batch of changes not yet committed.
pub struct Store {
    db: Arc<Database>,
    pending: Vec<Op>,
    /// Every shadow, with the snapshot the shadow service last wrote of it.
    shadows: BTreeMap<String, ShadowEntry>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// A store shared by the broker's persistence and the shadow service on the engine thread.
pub type SharedStore = Rc<RefCell<Store>>;

fn message_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_id.len() + 9);
    key.extend_from_slice(client_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn shadow_key(key: &ShadowKey) -> String {
    format!("{}\0{}", key.thing, key.shadow.as_deref().unwrap_or(""))
}

/// `[qos][retain][topic len u16][topic][payload]`.
fn encode_message(message: &Message) -> Vec<u8> {
    encode_message_parts(
        message.topic.as_str(),
        &message.payload,
        message.qos,
        message.retain,
    )
}

/// [`encode_message`] from the parts of a message. The topic is at most 65,535 bytes (MQTT's).
fn encode_message_parts(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Vec<u8> {
    let topic = topic.as_bytes();
    let mut out = Vec::with_capacity(4 + topic.len() + payload.len());
    out.push(qos as u8);
    out.push(u8::from(retain));
    out.extend_from_slice(&u16::try_from(topic.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(payload);
    out
}

fn decode_message(bytes: &[u8]) -> Option<Message> {
    let (&qos, rest) = bytes.split_first()?;
    let (&retain, rest) = rest.split_first()?;
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let topic = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    let payload = rest.get(2 + len..)?;
    let qos = match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return None,
    };
    Some(Message {
        topic: Utf8Bytes::from(topic),
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain: retain == 1,
    })
}

/// First byte of a retained record since retained messages carry their time:
/// `[RETAINED_WITH_TIME][modified ms u64 big-endian][message as encode_message]`. Records written
/// before start with the message's QoS byte (0..=2), which this tag never equals.
const RETAINED_WITH_TIME: u8 = 0xFE;

fn encode_retained(retained: &RetainedMessage) -> Vec<u8> {
    let message = encode_message(&retained.message);
    let mut out = Vec::with_capacity(9 + message.len());
    out.push(RETAINED_WITH_TIME);
    out.extend_from_slice(&retained.modified_ms.to_be_bytes());
    out.extend_from_slice(&message);
    out
}

fn decode_retained(bytes: &[u8]) -> Option<RetainedMessage> {
    match bytes.split_first() {
        Some((&RETAINED_WITH_TIME, rest)) => {
            let (modified, message) = rest.split_at_checked(8)?;
            Some(RetainedMessage {
                message: decode_message(message)?,
                modified_ms: u64::from_be_bytes(modified.try_into().ok()?),
            })
        }
        // A record from before the time was stored: its time is unknown, so it is given 0 (the
        // epoch) rather than the load time, which would make it look freshly set after every
        // restart and change from one restart to the next. Rewritten with a time when next set.
        _ => Some(RetainedMessage {
            message: decode_message(bytes)?,
            modified_ms: 0,
        }),
    }
}

fn encode_session(record: &SessionRecord) -> Vec<u8> {
    let subs: Vec<serde_json::Value> = record
        .subscriptions
        .iter()
        .map(|(f, q)| serde_json::json!([f, *q as u8]))
        .collect();
    serde_json::json!({"subscriptions": subs, "disconnectedAt": record.disconnected_at_ms})
        .to_string()
        .into_bytes()
}

fn decode_session(bytes: &[u8]) -> Option<SessionRecord> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let subscriptions = v
        .get("subscriptions")?
        .as_array()?
        .iter()
        .map(|pair| {
            let filter = pair.get(0)?.as_str()?.to_owned();
            let qos = match pair.get(1)?.as_u64()? {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            };
            Some((filter, qos))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(SessionRecord {
        subscriptions,
        disconnected_at_ms: v.get("disconnectedAt").and_then(serde_json::Value::as_u64),
    })
}

/// Changes taken from the store at the end of an engine turn, committed together by a
/// [`Committer`].
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Commits [`Batch`]es of one store on any thread: the engine's group-commit thread.
#[derive(Clone)]
pub struct Committer {
    db: Arc<Database>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    /// Writes `batches`, in order, in one durable transaction (one fsync for all of them).
    pub fn commit(&self, batches: Vec<Batch>) -> Result<(), StoreError> {
        apply(&self.db, batches)
    }
}

/// Applies `batches` in order in one write transaction and commits it.
fn apply(db: &Database, batches: Vec<Batch>) -> Result<(), StoreError> {
    if batches.iter().all(Batch::is_empty) {
        return Ok(());
    }
    let txn = db.begin_write().map_err(redb_err)?;
    {
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        let mut retained = txn.open_table(RETAINED).map_err(redb_err)?;
        let mut sessions = txn.open_table(SESSIONS).map_err(redb_err)?;
        let mut messages = txn.open_table(MESSAGES).map_err(redb_err)?;
        let mut shadows = txn.open_table(SHADOWS).map_err(redb_err)?;
        let mut sync = txn.open_table(SYNC).map_err(redb_err)?;
        let mut spool = txn.open_table(SPOOL).map_err(redb_err)?;
        for op in batches.into_iter().flat_map(|batch| batch.ops) {
            match op {
                Op::PutRetained(k, v) => retained.insert(k.as_str(), v.as_slice()).map(|_| ()),
                Op::DeleteRetained(k) => retained.remove(k.as_str()).map(|_| ()),
                Op::PutSession(k, v) => sessions.insert(k.as_str(), v.as_slice()).map(|_| ()),
                Op::DeleteSession(k) => sessions.remove(k.as_str()).map(|_| ()),
                Op::PutMessage(k, v) => messages.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                Op::DeleteMessage(k) => messages.remove(k.as_slice()).map(|_| ()),
                Op::PutShadow(k, v) => shadows.insert(k.as_str(), v.as_slice()).map(|_| ()),
                Op::DeleteShadow(k) => shadows.remove(k.as_str()).map(|_| ()),
                Op::PutMeta(k, v) => meta.insert(k.as_str(), v.as_slice()).map(|_| ()),
                Op::PutSync(k, v) => sync.insert(k.as_str(), v.as_slice()).map(|_| ()),
                Op::PutSpool(seq, v) => spool
                    .insert(seq.to_be_bytes().as_slice(), v.as_slice())
                    .map(|_| ()),
                Op::DeleteSpool(seq) => spool.remove(seq.to_be_bytes().as_slice()).map(|_| ()),
            }
            .map_err(redb_err)?;
        }
    }
    txn.commit().map_err(redb_err)
}

impl Store {
    /// Opens (or creates) the database at `path` and loads the shadows into memory.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path).map_err(redb_err)?;
        {
            let txn = db.begin_write().map_err(redb_err)?;
            for t in [META, RETAINED, SESSIONS, SHADOWS, SYNC] {
                txn.open_table(t).map_err(redb_err)?;
            }
            txn.open_table(MESSAGES).map_err(redb_err)?;
            txn.open_table(SPOOL).map_err(redb_err)?;
            txn.commit().map_err(redb_err)?;
        }
        let mut shadows = BTreeMap::new();
        {
            let txn = db.begin_read().map_err(redb_err)?;
            let table = txn.open_table(SHADOWS).map_err(redb_err)?;
            for entry in table.iter().map_err(redb_err)? {
                let (k, v) = entry.map_err(redb_err)?;
                let text =
                    std::str::from_utf8(v.value()).map_err(|_| StoreError::Corrupt("shadows"))?;
                let shadow = StoredShadow::from_json(text).ok_or(StoreError::Corrupt("shadows"))?;
                shadows.insert(k.value().to_owned(), ShadowEntry::new(shadow));
            }
        }
        Ok(Store {
            db: Arc::new(db),
            pending: Vec::new(),
            shadows,
        })
    }

    /// Wraps the store for sharing on the engine thread.
    pub fn shared(self) -> SharedStore {
        Rc::new(RefCell::new(self))
    }

    /// Whether changes wait for [`commit`](Self::commit).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes every pending change in one durable transaction, on this thread (start-up, the
    /// offline admin commands, tests). The engine commits on its [`Committer`] thread instead.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        match self.take_batch() {
            Some(batch) => apply(&self.db, vec![batch]),
            None => Ok(()),
        }
    }

    /// Takes the pending changes out as one [`Batch`] for a [`Committer`]; `None` when there are
    /// none. The engine calls this at the end of a turn: later changes go into the next batch.
    pub fn take_batch(&mut self) -> Option<Batch> {
        if self.pending.is_empty() {
            return None;
        }
        Some(Batch {
            ops: std::mem::take(&mut self.pending),
        })
    }

    /// A handle that commits batches of this store from another thread.
    pub fn committer(&self) -> Committer {
        Committer {
            db: Arc::clone(&self.db),
        }
    }

    /// The saved certificate registry JSON, if any.
    pub fn registry_json(&self) -> Result<Option<serde_json::Value>, StoreError> {
        self.meta_json(REGISTRY_KEY)
    }

    /// Records the registry JSON (committed with the next batch).
    pub fn put_registry_json(&mut self, value: &serde_json::Value) {
        self.put_meta_json(REGISTRY_KEY, value);
    }

    /// A JSON document saved under `key` in the meta table (the registry, the access keys).
    pub fn meta_json(&self, key: &'static str) -> Result<Option<serde_json::Value>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(META).map_err(redb_err)?;
        let Some(value) = table.get(key).map_err(redb_err)? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|_| StoreError::Corrupt(key))
    }

    /// Records a JSON document under `key` in the meta table (committed with the next batch).
    pub fn put_meta_json(&mut self, key: &str, value: &serde_json::Value) {
        self.pending
            .push(Op::PutMeta(key.to_owned(), value.to_string().into_bytes()));
    }

    /// Records the edge core's sync record of shadow `key` (committed with the next batch).
    pub fn put_sync_record(&mut self, key: &ShadowKey, record_json: &str) {
        self.pending.push(Op::PutSync(
            shadow_key(key),
            record_json.as_bytes().to_vec(),
        ));
    }

    /// The edge core's saved sync records.
    pub fn load_sync_records(&self) -> Result<Vec<(ShadowKey, String)>, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let table = txn.open_table(SYNC).map_err(redb_err)?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(redb_err)? {
            let (k, v) = entry.map_err(redb_err)?;
            let (thing, shadow) = k
                .value()
                .split_once('\0')
                .ok_or(StoreError::Corrupt("shadow_sync"))?;
            let key = if shadow.is_empty() {
                ShadowKey::classic(thing)
            } else {
                ShadowKey::named(thing, shadow)
            };
            let text = String::from_utf8(v.value().to_vec())
                .map_err(|_| StoreError::Corrupt("shadow_sync"))?;
            records.push((key, text));
        }
        Ok(records)
    }

    /// Everything the broker restores at start-up.
    pub fn load_broker_state(&self) -> Result<Restored, StoreError> {
        let txn = self.db.begin_read().map_err(redb_err)?;
        let mut restored = Restored::default();
        let table = txn.open_table(RETAINED).map_err(redb_err)?;
        for entry in table.iter().map_err(redb_err)? {
            let (_, v) = entry.map_err(redb_err)?;
            restored
                .retained
                .push(decode_retained(v.value()).ok_or(StoreError::Corrupt("retained"))?);
        }
        let table = txn.open_table(SESSIONS).map_err(redb_err)?;
        for entry in table.iter().map_err(redb_err)? {
            let (k, v) = entry.map_err(redb_err)?;
            let record = decode_session(v.value()).ok_or(StoreError::Corrupt("sessions"))?;
            restored.sessions.insert(
                k.value().to_owned(),
                RestoredSession {
                    record,
                    messages: BTreeMap::new(),
                },
            );
        }
        let table = txn.open_table(MESSAGES).map_err(redb_err)?;
        for entry in table.iter().map_err(redb_err)? {
            let (k, v) = entry.map_err(redb_err)?;
            let key = k.value();
            let split = key
                .len()
                .checked_sub(9)
                .ok_or(StoreError::Corrupt("messages"))?;
            let client = std::str::from_utf8(key.get(..split).unwrap_or_default())
                .map_err(|_| StoreError::Corrupt("messages"))?;
            let seq_bytes: [u8; 8] = key
                .get(split + 1..)
                .and_then(|s| s.try_into().ok())
                .ok_or(StoreError::Corrupt("messages"))?;
            let message = decode_message(v.value()).ok_or(StoreError::Corrupt("messages"))?;
            if let Some(session) = restored.sessions.get_mut(client) {
                session
                    .messages
                    .insert(u64::from_be_bytes(seq_bytes), message);
            }
        }
        Ok(restored)
    }
}

/// The broker's [`Persistence`], recording into the shared store's batch.
#[derive(Debug, Clone)]
pub struct BrokerPersistence {
    store: SharedStore,
    restored: Option<Restored>,
}

impl BrokerPersistence {
    /// Persistence over `store`, handing the broker `restored` at build time.
    pub fn new(store: SharedStore, restored: Restored) -> Self {
        BrokerPersistence {
            store,
            restored: Some(restored),
        }
    }

    fn push(&self, op: Op) {
        self.store.borrow_mut().pending.push(op);
    }
}

impl Persistence for BrokerPersistence {
    fn load(&mut self) -> Restored {
        self.restored.take().unwrap_or_default()
    }

    fn put_retained(&mut self, retained: &RetainedMessage) {
        self.push(Op::PutRetained(
            retained.message.topic.as_str().to_owned(),
            encode_retained(retained),
        ));
    }

    fn delete_retained(&mut self, topic: &str) {
        self.push(Op::DeleteRetained(topic.to_owned()));
    }

    fn put_session(&mut self, client_id: &str, record: &SessionRecord) {
        self.push(Op::PutSession(client_id.to_owned(), encode_session(record)));
    }

    fn delete_session(&mut self, client_id: &str) {
        self.push(Op::DeleteSession(client_id.to_owned()));
        // Its messages were deleted one by one before, by the broker.
    }

    fn put_message(&mut self, client_id: &str, seq: u64, message: &Message) {
        self.push(Op::PutMessage(
            message_key(client_id, seq),
            encode_message(message),
        ));
    }

    fn delete_message(&mut self, client_id: &str, seq: u64) {
        self.push(Op::DeleteMessage(message_key(client_id, seq)));
    }
}

/// The shadow service's [`ShadowStore`]: reads from memory, writes into the shared batch.
#[derive(Debug, Clone)]
pub struct DurableShadows {
    store: SharedStore,
}

impl DurableShadows {
    /// Shadows over `store`.
    pub fn new(store: SharedStore) -> Self {
        DurableShadows { store }
    }
}

impl ShadowStore for DurableShadows {
    type Error = Infallible;

    fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Infallible> {
        let store = self.store.borrow();
        Ok(store
            .shadows
            .get(&shadow_key(key))
            .map(|e| e.shadow().clone()))
    }

    fn put_if_version(
        &mut self,
        key: &ShadowKey,
        expected_version: Option<u64>,
        shadow: StoredShadow,
    ) -> Result<bool, Infallible> {
        let k = shadow_key(key);
        let mut store = self.store.borrow_mut();
        let current = store.shadows.get(&k).map(ShadowEntry::version);
        if current != expected_version {
            return Ok(false);
        }
        let entry = ShadowEntry::new(shadow);
        store
            .pending
            .push(Op::PutShadow(k.clone(), entry.to_json().into_bytes()));
        store.shadows.insert(k, entry);
        Ok(true)
    }

    /// Lends the entry in memory to the shadow service, and records a changed one (its JSON is
    /// built from the snapshot the service left, not serialized again) in the batch.
    fn edit<R>(
        &mut self,
        key: &ShadowKey,
        edit: impl FnOnce(&mut ShadowSlot<'_>) -> R,
    ) -> Result<Option<R>, Infallible> {
        let mut store = self.store.borrow_mut();
        let k = shadow_key(key);
        let (k, mut entry) = match store.shadows.remove_entry(&k) {
            Some((k, e)) => (k, Some(e)),
            None => (k, None),
        };
        let mut slot = ShadowSlot::new(&mut entry);
        let result = edit(&mut slot);
        let changed = slot.is_changed();
        match entry {
            Some(entry) => {
                if changed {
                    let json = entry.to_json().into_bytes();
                    store.pending.push(Op::PutShadow(k.clone(), json));
                }
                store.shadows.insert(k, entry);
            }
            None if changed => store.pending.push(Op::DeleteShadow(k)),
            None => {}
        }
        Ok(Some(result))
    }

    fn delete(&mut self, key: &ShadowKey) -> Result<(), Infallible> {
        let k = shadow_key(key);
        let mut store = self.store.borrow_mut();
        store.shadows.remove(&k);
        store.pending.push(Op::DeleteShadow(k));
        Ok(())
    }

    fn list_named(&self, thing: &str) -> Result<Vec<String>, Infallible> {
        let prefix = format!("{thing}\0");
        Ok(self
            .store
            .borrow()
            .shadows
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            // Live shadows only, as the trait says (a tombstone is not a shadow to list).
            .filter(|(_, e)| !e.shadow().is_deleted())
            .filter_map(|(k, _)| {
                k.get(prefix.len()..)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use iot_shadow::ShadowService;

    use super::*;

    use super::temp_store::TempStore;

    #[test]
    fn shadows_updated_in_place_survive_a_reopen() {
        let file = TempStore::new("shadows-reopen");
        let lamp = ShadowKey::classic("lamp");
        let color = ShadowKey::named("lamp", "color");
        let (lamp_before, color_before) = {
            let store = Store::open(&file.0).expect("open").shared();
            let mut shadows = ShadowService::new(DurableShadows::new(store.clone()));
            for (n, update) in [
                r#"{"state":{"desired":{"on":true,"level":3}}}"#,
                r#"{"state":{"reported":{"on":false}}}"#,
                r#"{"state":{"reported":{"on":true,"level":3},"desired":{"level":null}}}"#,
            ]
            .iter()
            .enumerate()
            {
                let now = 1_000_000 + 1_000 * n as u64;
                assert!(shadows.update(&lamp, update.as_bytes(), now).is_ok());
            }
            // A refused update writes nothing.
            let pending = store.borrow().pending.len();
            let stale = r#"{"state":{"reported":{"x":1}},"version":1}"#;
            assert!(shadows.update(&lamp, stale.as_bytes(), 1_010_000).is_err());
            assert_eq!(store.borrow().pending.len(), pending);
            // A read writes nothing either.
            assert!(shadows.get(&lamp, b"", 1_010_000).is_ok());
            assert_eq!(store.borrow().pending.len(), pending);
            let named = r#"{"state":{"desired":{"rgb":[1,2,3]}}}"#;
            assert!(shadows.update(&color, named.as_bytes(), 1_020_000).is_ok());
            assert!(shadows.delete(&color, b"", 1_030_000).is_ok());
            store.borrow_mut().commit().expect("commit");
            let shadows = DurableShadows::new(store);
            (shadows.get(&lamp), shadows.get(&color))
        };
        let store = Store::open(&file.0).expect("reopen").shared();
        let shadows = DurableShadows::new(store);
        assert_eq!(shadows.get(&lamp), lamp_before);
        assert_eq!(shadows.get(&color), color_before);
        let lamp = lamp_before.ok().flatten().expect("lamp");
        assert_eq!(lamp.version, 3);
        let color = color_before.ok().flatten().expect("tombstone");
        assert_eq!((color.version, color.is_deleted()), (1, true));
        assert_eq!(shadows.list_named("lamp"), Ok(Vec::new()));
    }
}
