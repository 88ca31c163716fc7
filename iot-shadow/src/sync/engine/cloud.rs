//! Reading the cloud's answers and documents: what each tells of the cloud's shadow.

use crate::topic::{Operation, ShadowKey, TopicKind};

use super::ShadowSync;
use super::round::deleted_flag;
use crate::sync::config::Direction;
use crate::sync::entry::{InFlight, Phase};
use crate::sync::merge::{FieldConflict, Side};
use crate::sync::record::SyncRecord;
use crate::sync::report::Rejection;
use crate::sync::request::{client_token, current_document, document, rejection, version};
use crate::sync::state::{ShadowState, SideView};

impl ShadowSync {
    /// A cloud message on one of `key`'s topics, parsed: pair it with the request in flight by
    /// token and operation, or read it as another client's news.
    pub(super) fn on_cloud_document(
        &mut self,
        key: &ShadowKey,
        kind: TopicKind,
        doc: &serde_json::Map<String, serde_json::Value>,
    ) {
        let token = client_token(doc);
        let ours = self
            .shadows
            .get(key)
            .is_some_and(|entry| match &entry.phase {
                Phase::Cloud(flight) => {
                    token == Some(flight.token.as_str()) && answers(kind) == Some(flight.operation)
                }
                _ => false,
            });
        match (kind, ours) {
            (TopicKind::Accepted(Operation::Get), true) => match document(doc) {
                Some((state, v)) => self.on_fetched(
                    key,
                    SideView {
                        version: Some(v),
                        state: Some(state),
                    },
                ),
                None => self.counts.malformed += 1,
            },
            (TopicKind::Accepted(Operation::Update), true) => match version(doc) {
                Some(v) => self.on_updated(key, v),
                None => self.counts.malformed += 1,
            },
            (TopicKind::Accepted(Operation::Delete), true) => self.on_deleted(key, version(doc)),
            (TopicKind::Rejected(op), true) => match rejection(doc) {
                Some((404, _)) if op == Operation::Get => self.on_fetched(key, SideView::absent()),
                Some((404, _)) if op == Operation::Delete => self.on_deleted(key, None),
                Some((409, _)) if op == Operation::Update => {
                    // The cloud moved: fetch it and merge again.
                    self.take_flight(key);
                    if let Some(entry) = self.shadows.get_mut(key) {
                        entry.cloud = None;
                    }
                    self.retry(key, Side::Cloud, op, false);
                }
                Some((code, message)) => self.on_failure(key, op, code, message),
                None => self.counts.malformed += 1,
            },
            (TopicKind::Documents, _) => match current_document(doc) {
                Some((state, v)) => self.on_documents(key, state, v, token),
                None => self.counts.malformed += 1,
            },
            (TopicKind::Accepted(Operation::Delete), false) => {
                self.on_foreign_delete(key, version(doc));
            }
            // Other clients' answers, and topics the engine does not subscribe to.
            _ => {}
        }
    }

    /// The in-flight request of `key`, its timer cancelled; the phase becomes `Idle`.
    pub(super) fn take_flight(&mut self, key: &ShadowKey) -> Option<InFlight> {
        let entry = self.shadows.get_mut(key)?;
        let Phase::Cloud(flight) = std::mem::take(&mut entry.phase) else {
            return None;
        };
        self.timers.remove(&(flight.deadline, key.clone()));
        Some(flight)
    }

    /// A `get` answered: the cloud's state (or its absence).
    pub(super) fn on_fetched(&mut self, key: &ShadowKey, cloud: SideView) {
        self.take_flight(key);
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        let applied = entry
            .unconfirmed
            .take()
            .filter(|plan| plan.target == cloud.state);
        let cloud_version = cloud.version;
        entry.cloud = Some(cloud);
        if let Some(plan) = applied {
            // An abandoned write that did reach the cloud: synced as far as it went.
            let record = SyncRecord {
                deleted: deleted_flag(&entry.record, plan.target.as_ref()),
                base: plan.target,
                local_version: plan.local_version,
                cloud_version,
            };
            self.set_record(key, record, true);
        }
        self.enqueue(key, true);
    }

    /// Our `update` accepted at `version`: the cloud now holds the plan's target.
    pub(super) fn on_updated(&mut self, key: &ShadowKey, version: u64) {
        let Some(plan) = self.take_flight(key).and_then(|f| f.plan) else {
            return;
        };
        if let Some(entry) = self.shadows.get_mut(key) {
            // An `update/documents` of this very version, come first, is the better account.
            if entry.cloud.as_ref().and_then(|c| c.version) != Some(version) {
                entry.cloud = Some(SideView {
                    version: Some(version),
                    state: plan.target.clone(),
                });
            }
        }
        self.finish(key, plan, Some(version));
    }

    /// Our `delete` accepted (`version`: the version it deleted), or answered 404 (`None`: it was
    /// gone already).
    pub(super) fn on_deleted(&mut self, key: &ShadowKey, deleted: Option<u64>) {
        let Some(plan) = self.take_flight(key).and_then(|f| f.plan) else {
            return;
        };
        let expected = plan.cloud.version;
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        let raced = deleted.is_some_and(|v| expected.is_some_and(|e| e != v));
        if raced {
            // The cloud changed between the merge and the delete (a delete takes no version):
            // that change is lost in the cloud. Both ways, the change wins: put it back on both
            // sides if it is known (an `update/documents` told it).
            let lost = entry
                .cloud
                .as_ref()
                .filter(|c| c.version == deleted)
                .and_then(|c| c.state.clone());
            let restore = self.config.direction == Direction::BetweenDeviceAndCloud;
            let kept = if restore && lost.is_some() {
                Side::Cloud
            } else {
                Side::Local
            };
            let conflict = FieldConflict {
                path: String::new(),
                local: serde_json::Value::Null,
                cloud: lost
                    .as_ref()
                    .map_or(serde_json::Value::Null, ShadowState::to_value),
                kept,
            };
            if restore {
                entry.restore = lost;
            }
            self.log_conflicts(key, vec![conflict]);
        }
        if let Some(entry) = self.shadows.get_mut(key) {
            entry.cloud = Some(SideView {
                version: deleted.or(expected),
                state: None,
            });
        }
        self.finish(key, plan, deleted.or(expected));
    }

    /// A request refused: retried after a pause if the refusal may pass (429, 5xx), parked if
    /// not. The cloud's state as known stays: nothing says it moved, and if it did, the version
    /// the retried update carries makes it a 409.
    pub(super) fn on_failure(
        &mut self,
        key: &ShadowKey,
        operation: Operation,
        code: u16,
        message: String,
    ) {
        self.take_flight(key);
        if code == 429 || code >= 500 {
            self.retry(key, Side::Cloud, operation, true);
            return;
        }
        self.park(
            key,
            Rejection {
                key: key.clone(),
                side: Side::Cloud,
                operation,
                code: Some(code),
                message,
            },
        );
    }

    /// `update/documents`: the cloud's state after an update (ours, or another client's).
    pub(super) fn on_documents(
        &mut self,
        key: &ShadowKey,
        state: ShadowState,
        v: u64,
        token: Option<&str>,
    ) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        let echo = matches!(&entry.phase, Phase::Cloud(f)
            if f.operation == Operation::Update && token == Some(f.token.as_str()));
        if let Some(known) = &entry.cloud
            && let Some(k) = known.version
        {
            // Older than what is known, or the state before a delete of this version: stale.
            if v < k || (v == k && known.state.is_none()) {
                self.counts.stale_ignored += 1;
                return;
            }
            if v == k && known.state.as_ref() == Some(&state) {
                return;
            }
        }
        entry.cloud = Some(SideView {
            version: Some(v),
            state: Some(state),
        });
        if !echo && self.config.direction != Direction::DeviceToCloud {
            self.trigger(key);
        }
    }

    /// Another client's `delete/accepted`.
    pub(super) fn on_foreign_delete(&mut self, key: &ShadowKey, deleted: Option<u64>) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        match (entry.cloud.as_ref(), deleted) {
            // A tombstone older than the shadow known: it was re-created since. Ignored.
            (Some(known), Some(v)) if known.version.is_some_and(|k| v < k) => {
                self.counts.stale_ignored += 1;
                return;
            }
            (Some(known), Some(_)) if known.state.is_none() => return,
            (Some(known), Some(v)) if known.version.is_some() => {
                entry.cloud = Some(SideView {
                    version: Some(v),
                    state: None,
                });
            }
            // Nothing to compare with: fetch the cloud's state rather than trust it.
            _ => entry.cloud = None,
        }
        if self.config.direction != Direction::DeviceToCloud {
            self.trigger(key);
        }
    }
}

/// The request an answer topic answers.
fn answers(kind: TopicKind) -> Option<Operation> {
    match kind {
        TopicKind::Accepted(op) | TopicKind::Rejected(op) => Some(op),
        _ => None,
    }
}
