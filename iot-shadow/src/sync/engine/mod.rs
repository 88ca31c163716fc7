//! The sync state machine: events in (local changes, cloud messages, connects, timeouts), actions
//! out (cloud requests, local writes, records to save).

mod cloud;
mod round;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::MAX_TOKEN_PREFIX_BYTES;
use crate::document::StoredShadow;
use crate::topic::{Operation, ShadowKey, TopicKind, parse_topic};

use super::action::SyncAction;
use super::config::{Direction, SyncConfig};
use super::entry::{Phase, ShadowEntry};
use super::merge::Side;
use super::rate::RateLimit;
use super::record::SyncRecord;
use super::report::{BoundedLog, Conflict, Rejection, SyncStats};
use super::request::parse_object;
use super::state::SideView;

/// The shadow sync engine of an edge core: keeps each synced shadow of the local shadow service
/// and its twin in AWS IoT Core in step, by the rules in the [module docs](super).
///
/// Sans-IO: the caller hands in local changes, cloud messages, connects and the time, and carries
/// out the [`SyncAction`]s from [`poll_action`](Self::poll_action) (publish to the cloud, write
/// the local shadow, save a record), calling [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout)'s deadline passes. Times are epoch milliseconds from the
/// caller's clock.
///
/// Bounds: one cloud request in flight and one local write outstanding per shadow; the action
/// queue holds at most a few actions per shadow (a queued `SaveRecord` is replaced by a newer one
/// for the same shadow, queued cloud requests are dropped when the cloud is lost); the ready
/// queue holds each shadow at most once; the conflict and rejection logs keep the newest
/// [`max_logged`](SyncConfig::max_logged) entries each. Memory: the last synced state and the last
/// seen local and cloud states of each shadow.
///
/// ```
/// use iot_shadow::sync::{ShadowSync, SyncAction, SyncConfig};
/// use iot_shadow::{MemoryShadowStore, ShadowKey, ShadowService, ShadowStore};
///
/// let key = ShadowKey::classic("car-1");
/// let mut local = ShadowService::new(MemoryShadowStore::default());
/// let mut cloud = ShadowService::new(MemoryShadowStore::default());
/// let mut sync = ShadowSync::new(SyncConfig::default(), []);
/// sync.add_shadow(key.clone());
/// let now = 1_700_000_000_000;
///
/// // While the cloud is away, the car reports to the edge and the owner sets a color in the cloud.
/// local.update(&key, br#"{"state":{"reported":{"speed":3}}}"#, now).unwrap();
/// sync.local_changed(&key, local.store().get(&key).unwrap().as_ref(), now);
/// cloud.update(&key, br#"{"state":{"desired":{"color":"red"}}}"#, now).unwrap();
///
/// // Back online: requests go to the cloud, its answers come back, local writes are applied.
/// sync.cloud_connected(now);
/// while let Some(action) = sync.poll_action() {
///     match action {
///         SyncAction::CloudPublish { topic, payload } => {
///             for answer in cloud.handle_publish(&topic, payload.as_bytes(), now).unwrap() {
///                 let mine = local.store().get(&key).unwrap();
///                 sync.cloud_message(&answer.topic, answer.payload.as_bytes(), mine.as_ref(), now);
///             }
///         }
///         SyncAction::LocalUpdate { key, payload } => {
///             let _ = local.update(&key, payload.as_bytes(), now);
///             sync.local_applied(&key, local.store().get(&key).unwrap().as_ref());
///         }
///         SyncAction::LocalDelete { key } => {
///             let _ = local.delete(&key, b"", now);
///             sync.local_applied(&key, local.store().get(&key).unwrap().as_ref());
///         }
///         SyncAction::SaveRecord { key, record } => { /* store record.to_json() under key */ }
///     }
/// }
/// let state = |s: &ShadowService<MemoryShadowStore>| {
///     s.store().get(&key).unwrap().map(|s| (s.desired, s.reported))
/// };
/// assert_eq!(state(&local), state(&cloud));
/// assert_eq!(sync.stats().cloud_updates, 1);
/// ```
#[derive(Debug)]
pub struct ShadowSync {
    config: SyncConfig,
    token_prefix: String,
    token_counter: u64,
    shadows: BTreeMap<ShadowKey, ShadowEntry>,
    actions: VecDeque<SyncAction>,
    /// Shadows whose sync may go on as soon as the rate limit allows; each at most once (its
    /// phase is `Ready` while it is here).
    ready: VecDeque<ShadowKey>,
    /// Periodic strategy: changed shadows waiting for the next tick.
    waiting: BTreeSet<ShadowKey>,
    next_tick: Option<u64>,
    /// Answer deadlines and retry times, one at most per shadow.
    timers: BTreeSet<(u64, ShadowKey)>,
    rate: RateLimit,
    connected: bool,
    now_ms: u64,
    conflicts: BoundedLog<Conflict>,
    rejections: BoundedLog<Rejection>,
    counts: SyncStats,
}

impl ShadowSync {
    /// An engine with `config`, resuming the shadows of `records` (as saved from
    /// [`SyncAction::SaveRecord`]s; they are synced as if added with
    /// [`add_shadow`](Self::add_shadow)). Nothing is sent before
    /// [`cloud_connected`](Self::cloud_connected).
    pub fn new(
        config: SyncConfig,
        records: impl IntoIterator<Item = (ShadowKey, SyncRecord)>,
    ) -> ShadowSync {
        let mut prefix = config.client_token_prefix.clone();
        let mut cut = prefix.len().min(MAX_TOKEN_PREFIX_BYTES);
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
        ShadowSync {
            rate: RateLimit::new(config.max_outbound_per_second),
            conflicts: BoundedLog::new(config.max_logged),
            rejections: BoundedLog::new(config.max_logged),
            config,
            token_prefix: prefix,
            token_counter: 0,
            shadows: records
                .into_iter()
                .map(|(key, record)| (key, ShadowEntry::new(record)))
                .collect(),
            actions: VecDeque::new(),
            ready: VecDeque::new(),
            waiting: BTreeSet::new(),
            next_tick: None,
            timers: BTreeSet::new(),
            connected: false,
            now_ms: 0,
            counts: SyncStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// Start syncing `key` (nothing if it is synced already). While connected, its sync starts at
    /// once.
    pub fn add_shadow(&mut self, key: ShadowKey) {
        if self.shadows.contains_key(&key) {
            return;
        }
        self.shadows
            .insert(key.clone(), ShadowEntry::new(SyncRecord::default()));
        if self.connected {
            self.enqueue(&key, false);
            self.pump();
        }
    }

    /// Stop syncing `key`; its record, if it was synced. Answers still to come for it are ignored.
    pub fn remove_shadow(&mut self, key: &ShadowKey) -> Option<SyncRecord> {
        let entry = self.shadows.remove(key)?;
        if let Some(at) = entry.timer() {
            self.timers.remove(&(at, key.clone()));
        }
        self.ready.retain(|k| k != key);
        self.waiting.remove(key);
        Some(entry.record)
    }

    /// Whether `key` is synced.
    pub fn is_synced(&self, key: &ShadowKey) -> bool {
        self.shadows.contains_key(key)
    }

    /// `key`'s sync record as the engine holds it.
    pub fn record(&self, key: &ShadowKey) -> Option<&SyncRecord> {
        self.shadows.get(key).map(|e| &e.record)
    }

    /// The synced shadow a cloud topic belongs to, to look up the local shadow that
    /// [`cloud_message`](Self::cloud_message) wants.
    pub fn key_of(&self, topic: &str) -> Option<ShadowKey> {
        parse_topic(topic)
            .map(|t| t.key)
            .filter(|key| self.shadows.contains_key(key))
    }

    /// The cloud topics to subscribe to (QoS 1) for `key`, before
    /// [`cloud_connected`](Self::cloud_connected): `get`, `update` and `delete` `/accepted` and
    /// `/rejected`, and `update/documents`.
    pub fn cloud_subscriptions(&self, key: &ShadowKey) -> Vec<String> {
        [
            TopicKind::Accepted(Operation::Get),
            TopicKind::Rejected(Operation::Get),
            TopicKind::Accepted(Operation::Update),
            TopicKind::Rejected(Operation::Update),
            TopicKind::Documents,
            TopicKind::Accepted(Operation::Delete),
            TopicKind::Rejected(Operation::Delete),
        ]
        .into_iter()
        .map(|kind| key.topic(kind))
        .collect()
    }

    /// After any local change of `key` (a device's update, a delete): the local stored shadow as
    /// it is now (`None` or a tombstone if there is none). A change the engine already knows of
    /// (its own write, reported again) is ignored.
    pub fn local_changed(&mut self, key: &ShadowKey, local: Option<&StoredShadow>, now_ms: u64) {
        self.advance_clock(now_ms);
        self.observe_local(key, SideView::of_local(local), false);
        self.pump();
    }

    /// The caller applied a [`SyncAction::LocalUpdate`] or [`SyncAction::LocalDelete`] of `key`
    /// (whether it was accepted or not): the local stored shadow as it is now. If it holds what
    /// the engine wrote, its new version is recorded and not taken for a local change; if not
    /// (the write was refused), the sync is retried.
    pub fn local_applied(&mut self, key: &ShadowKey, local: Option<&StoredShadow>) {
        self.observe_local(key, SideView::of_local(local), true);
        self.pump();
    }

    /// A message from the cloud on one of the [`cloud_subscriptions`](Self::cloud_subscriptions),
    /// with the local stored shadow of the shadow it names (see [`key_of`](Self::key_of)).
    /// `false` if it is not a topic of a synced shadow (a request topic included).
    ///
    /// Answers pair with the shadow's request by `clientToken`; other clients' answers are
    /// ignored, except a `delete/accepted` (the shadow was deleted in the cloud, unless the
    /// version it deleted is older than the one known: a stale tombstone, ignored) and
    /// `update/documents`, which tells the cloud's new state and starts a sync.
    pub fn cloud_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        local: Option<&StoredShadow>,
        now_ms: u64,
    ) -> bool {
        let Some(parsed) = parse_topic(topic) else {
            return false;
        };
        let key = parsed.key;
        if matches!(parsed.kind, TopicKind::Request(_)) || !self.shadows.contains_key(&key) {
            return false;
        }
        self.advance_clock(now_ms);
        self.observe_local(&key, SideView::of_local(local), false);
        match parse_object(payload) {
            Some(doc) => self.on_cloud_document(&key, parsed.kind, &doc),
            None => self.counts.malformed += 1,
        }
        self.pump();
        true
    }

    /// The cloud connection is up (again) and subscribed: a full sync. Every shadow's cloud state
    /// is fetched (`get`, within the rate limit) and merged; shadows that changed on neither side
    /// cost that `get` and nothing more.
    pub fn cloud_connected(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        self.connected = true;
        self.ready.clear();
        self.waiting.clear();
        self.next_tick = None;
        self.timers.clear();
        let mut keys = Vec::new();
        for (key, entry) in &mut self.shadows {
            entry.abandon();
            entry.cloud = None;
            entry.attempts = 0;
            entry.changed = true;
            if !matches!(entry.phase, Phase::Local(_)) {
                entry.phase = Phase::Ready;
                keys.push(key.clone());
            }
        }
        self.ready.extend(keys);
        self.pump();
    }

    /// The cloud connection is lost: requests in flight are abandoned (their answers, if they
    /// come, are ignored) and queued cloud requests dropped; every shadow syncs again after the
    /// next [`cloud_connected`](Self::cloud_connected). Local changes are still taken meanwhile.
    pub fn cloud_lost(&mut self) {
        self.connected = false;
        self.ready.clear();
        self.waiting.clear();
        self.next_tick = None;
        self.timers.clear();
        for entry in self.shadows.values_mut() {
            entry.abandon();
            entry.cloud = None;
            if !matches!(entry.phase, Phase::Local(_) | Phase::Parked) {
                entry.phase = Phase::Idle;
                entry.changed = true;
            }
        }
        self.actions
            .retain(|a| !matches!(a, SyncAction::CloudPublish { .. }));
    }

    /// The next thing to do, `None` when there is nothing.
    pub fn poll_action(&mut self) -> Option<SyncAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work: an answer deadline, a retry, a
    /// periodic tick, the rate limit's next token. `None` when nothing waits.
    pub fn poll_timeout(&self) -> Option<u64> {
        let timer = self.timers.first().map(|(at, _)| *at);
        let tick = self.next_tick.filter(|_| !self.waiting.is_empty());
        let rate = (self.connected && !self.ready.is_empty())
            .then(|| self.rate.next_token_at().unwrap_or(self.now_ms));
        [timer, tick, rate].into_iter().flatten().min()
    }

    /// Time passed: requests unanswered past their deadline are retried, backed-off retries and
    /// the periodic batch go, and shadows waiting for the rate limit take their turn.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        let now = self.now_ms;
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key.clone()));
            let Some(entry) = self.shadows.get_mut(&key) else {
                continue;
            };
            match std::mem::take(&mut entry.phase) {
                Phase::Cloud(flight) if flight.deadline == at => {
                    // Lost: what became of it is learned by fetching the cloud's state again.
                    let operation = flight.operation;
                    entry.phase = Phase::Cloud(flight);
                    entry.abandon();
                    entry.cloud = None;
                    self.retry(&key, Side::Cloud, operation, false);
                }
                Phase::Backoff(until) if until == at => self.enqueue(&key, true),
                other => entry.phase = other,
            }
        }
        if self.next_tick.is_some_and(|tick| tick <= now) {
            self.next_tick = None;
            for key in std::mem::take(&mut self.waiting) {
                self.enqueue(&key, false);
            }
        }
        self.pump();
    }

    /// Counters and gauges.
    pub fn stats(&self) -> SyncStats {
        let mut stats = self.counts;
        stats.shadows = self.shadows.len();
        for entry in self.shadows.values() {
            match entry.phase {
                Phase::Cloud(_) => stats.in_flight += 1,
                Phase::Parked => stats.parked += 1,
                _ => {}
            }
            if entry.changed
                || matches!(
                    entry.phase,
                    Phase::Ready | Phase::Backoff(_) | Phase::Local(_)
                )
            {
                stats.pending += 1;
            }
        }
        stats
    }

    /// The conflicts met since the last call, oldest first (drained), for the log.
    pub fn conflicts(&mut self) -> impl Iterator<Item = Conflict> + '_ {
        self.conflicts.drain()
    }

    /// The rejections and give-ups since the last call, oldest first (drained), for the log.
    pub fn rejections(&mut self) -> impl Iterator<Item = Rejection> + '_ {
        self.rejections.drain()
    }

    // ---- events ----

    fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// The local shadow as it is now; `applied`: after the engine's own write.
    fn observe_local(&mut self, key: &ShadowKey, view: SideView, applied: bool) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        if let Phase::Local(plan) = &entry.phase {
            if view.state == plan.target {
                let Phase::Local(mut plan) = std::mem::take(&mut entry.phase) else {
                    return;
                };
                plan.local_version = view.version;
                entry.local = Some(view);
                self.after_local(key, plan);
                return;
            }
            entry.local = Some(view);
            entry.changed = true;
            if applied {
                // Refused (a device's write slipped in, throttled, too large): merge again.
                entry.phase = Phase::Idle;
                self.reject_local(key, Operation::Update);
                self.retry(key, Side::Local, Operation::Update, false);
            }
            return;
        }
        if entry.local.as_ref() == Some(&view) {
            return;
        }
        entry.local = Some(view);
        if applied || self.config.direction == Direction::CloudToDevice {
            return;
        }
        self.trigger(key);
    }

    fn reject_local(&mut self, key: &ShadowKey, operation: Operation) {
        // Counted as a retry, not a rejection; logged so a write that never takes is visible.
        let dropped = self.rejections.push(Rejection {
            key: key.clone(),
            side: Side::Local,
            operation,
            code: None,
            message: "local write not applied".into(),
        });
        self.counts.log_dropped += u64::from(dropped);
    }
}
