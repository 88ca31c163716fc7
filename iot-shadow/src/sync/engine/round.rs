//! A shadow's sync round: when it runs, what it decides, the local write, then the cloud's, and
//! what happens when one fails.

use crate::topic::{Operation, ShadowKey, TopicKind};

use super::ShadowSync;
use crate::sync::action::SyncAction;
use crate::sync::config::{Direction, Strategy};
use crate::sync::decide::{Decision, Target, decide, side_changed};
use crate::sync::entry::{InFlight, Phase, Plan};
use crate::sync::merge::{FieldConflict, Side};
use crate::sync::record::SyncRecord;
use crate::sync::report::{Conflict, Rejection};
use crate::sync::request::{token_payload, update_payload};
use crate::sync::state::{ShadowState, SideView};

impl ShadowSync {
    /// Something new for `key`: sync it now (real time) or at the next tick (periodic), once
    /// what is under way is done.
    pub(super) fn trigger(&mut self, key: &ShadowKey) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        entry.changed = true;
        match entry.phase {
            Phase::Idle => {}
            Phase::Parked => {
                entry.phase = Phase::Idle;
                entry.attempts = 0;
            }
            _ => return,
        }
        if !self.connected {
            return;
        }
        match self.config.strategy {
            Strategy::RealTime => self.enqueue(key, false),
            Strategy::Periodic { every_ms } => {
                self.waiting.insert(key.clone());
                if self.next_tick.is_none() {
                    self.next_tick = Some(self.now_ms.saturating_add(every_ms.max(1)));
                }
            }
        }
    }

    /// Put an idle `key` in the ready queue: at the front for a sync under way, at the back for
    /// a new one.
    pub(super) fn enqueue(&mut self, key: &ShadowKey, front: bool) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        if !matches!(entry.phase, Phase::Idle | Phase::Parked) {
            return;
        }
        if !self.connected {
            entry.phase = Phase::Idle;
            entry.changed = true;
            return;
        }
        entry.phase = Phase::Ready;
        if front {
            self.ready.push_front(key.clone());
        } else {
            self.ready.push_back(key.clone());
        }
    }

    /// Run ready shadows while the rate limit has room.
    pub(super) fn pump(&mut self) {
        if !self.connected {
            return;
        }
        self.rate.refill(self.now_ms);
        while self.rate.available() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            match self.shadows.get_mut(&key) {
                Some(entry) if entry.phase == Phase::Ready => entry.phase = Phase::Idle,
                _ => continue,
            }
            self.step(&key);
        }
    }

    /// One step of `key`'s sync: fetch the cloud if its state is not known, else decide, write
    /// the local side, then the cloud side.
    pub(super) fn step(&mut self, key: &ShadowKey) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        entry.changed = false;
        let (Some(local), Some(cloud)) = (entry.local.clone(), entry.cloud.clone()) else {
            self.send_get(key);
            return;
        };
        let decision = match entry.restore.take() {
            Some(state) => Decision {
                target: Target::Present(state),
                conflicts: Vec::new(),
            },
            None => decide(&entry.record, &local, &cloud, self.config.direction),
        };
        let persist = !decision.conflicts.is_empty();
        self.log_conflicts(key, decision.conflicts);
        let target = match decision.target {
            Target::Leave => {
                if let Some(entry) = self.shadows.get_mut(key) {
                    entry.attempts = 0;
                }
                return;
            }
            Target::Absent => None,
            Target::Present(state) => Some(state),
        };
        let plan = Plan {
            target,
            cloud,
            local_version: local.version,
            persist,
        };
        if local.state == plan.target {
            self.after_local(key, plan);
            return;
        }
        // The local side first: it is written at once, so the cloud request that follows
        // carries everything, and a 409 on it finds the local side already merged.
        let action = match (&local.state, &plan.target) {
            (Some(_), None) => SyncAction::LocalDelete { key: key.clone() },
            (from, Some(to)) => SyncAction::LocalUpdate {
                key: key.clone(),
                payload: update_payload(from.as_ref(), to, from.as_ref().and(local.version), None),
            },
            (None, None) => return,
        };
        self.actions.push_back(action);
        self.counts.local_writes += 1;
        if let Some(entry) = self.shadows.get_mut(key) {
            entry.phase = Phase::Local(Plan {
                persist: true,
                ..plan
            });
        }
    }

    /// The local side holds the plan's target: finish, or write the cloud side.
    pub(super) fn after_local(&mut self, key: &ShadowKey, plan: Plan) {
        if plan.cloud.state == plan.target {
            let cloud_version = plan.cloud.version;
            self.finish(key, plan, cloud_version);
            return;
        }
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        // Until the cloud has it too, each side's pending changes are measured against the
        // cloud's state: the local side's are then exactly what the cloud lacks.
        let record = SyncRecord {
            base: plan.cloud.state.clone(),
            local_version: plan.local_version,
            cloud_version: plan.cloud.version,
            deleted: deleted_flag(&entry.record, plan.cloud.state.as_ref()),
        };
        self.set_record(key, record, plan.persist);
        self.send_write(key, plan);
    }

    pub(super) fn send_write(&mut self, key: &ShadowKey, plan: Plan) {
        if !self.connected {
            if let Some(entry) = self.shadows.get_mut(key) {
                entry.changed = true;
            }
            return;
        }
        self.rate.refill(self.now_ms);
        if !self.rate.available() {
            // Decided again when its turn comes (against the record just written, so the
            // conflicts are not met twice).
            self.enqueue(key, true);
            return;
        }
        let token = self.next_token();
        let (operation, payload) = match (&plan.cloud.state, &plan.target) {
            (Some(_), None) => (Operation::Delete, token_payload(&token)),
            (from, Some(to)) => (
                Operation::Update,
                update_payload(
                    from.as_ref(),
                    to,
                    from.as_ref().and(plan.cloud.version),
                    Some(&token),
                ),
            ),
            (None, None) => return,
        };
        self.publish(key, operation, payload, token, Some(plan));
    }

    pub(super) fn send_get(&mut self, key: &ShadowKey) {
        if !self.connected {
            return;
        }
        self.rate.refill(self.now_ms);
        if !self.rate.available() {
            self.enqueue(key, true);
            return;
        }
        let token = self.next_token();
        let payload = token_payload(&token);
        self.publish(key, Operation::Get, payload, token, None);
    }

    pub(super) fn publish(
        &mut self,
        key: &ShadowKey,
        operation: Operation,
        payload: String,
        token: String,
        plan: Option<Plan>,
    ) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        if !self.rate.take() {
            return;
        }
        let deadline = self.now_ms.saturating_add(self.config.answer_timeout_ms);
        entry.phase = Phase::Cloud(InFlight {
            token,
            operation,
            deadline,
            plan,
        });
        self.timers.insert((deadline, key.clone()));
        self.actions.push_back(SyncAction::CloudPublish {
            topic: key.topic(TopicKind::Request(operation)),
            payload,
        });
        match operation {
            Operation::Get => self.counts.cloud_gets += 1,
            Operation::Update => self.counts.cloud_updates += 1,
            Operation::Delete => self.counts.cloud_deletes += 1,
        }
    }

    /// Both sides hold the plan's target: record it, and go on if something happened meanwhile.
    pub(super) fn finish(&mut self, key: &ShadowKey, plan: Plan, cloud_version: Option<u64>) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        let record = SyncRecord {
            deleted: deleted_flag(&entry.record, plan.target.as_ref()),
            base: plan.target,
            local_version: plan.local_version,
            cloud_version,
        };
        entry.phase = Phase::Idle;
        entry.attempts = 0;
        self.counts.synced += 1;
        self.set_record(key, record, true);
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        let base = entry.record.base.as_ref();
        let moved = |view: &Option<SideView>, recorded| {
            view.as_ref()
                .is_some_and(|v| side_changed(base, recorded, v))
        };
        let local_moved = self.config.direction != Direction::CloudToDevice
            && moved(&entry.local, entry.record.local_version);
        let cloud_moved = self.config.direction != Direction::DeviceToCloud
            && moved(&entry.cloud, entry.record.cloud_version);
        if entry.changed || entry.restore.is_some() || local_moved || cloud_moved {
            if entry.restore.is_some() {
                self.enqueue(key, true);
            } else {
                self.trigger(key);
            }
        }
    }

    pub(super) fn set_record(&mut self, key: &ShadowKey, record: SyncRecord, persist: bool) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        if entry.record == record {
            return;
        }
        entry.record = record.clone();
        if !persist {
            return;
        }
        // One queued save per shadow: a newer record replaces the one not yet taken.
        for action in &mut self.actions {
            if let SyncAction::SaveRecord { key: k, record: r } = action
                && k == key
            {
                *r = record;
                return;
            }
        }
        self.actions.push_back(SyncAction::SaveRecord {
            key: key.clone(),
            record,
        });
    }

    /// A failed attempt: try again (at once the first time, then backing off; `pause`: never at
    /// once, as after throttling), or give up.
    pub(super) fn retry(&mut self, key: &ShadowKey, side: Side, operation: Operation, pause: bool) {
        let Some(entry) = self.shadows.get_mut(key) else {
            return;
        };
        entry.attempts = entry.attempts.saturating_add(1);
        self.counts.retries += 1;
        let attempts = entry.attempts;
        if attempts > self.config.max_retries {
            self.park(
                key,
                Rejection {
                    key: key.clone(),
                    side,
                    operation,
                    code: None,
                    message: format!("gave up after {attempts} attempts"),
                },
            );
            return;
        }
        let mut delay = self.config.backoff_ms(attempts);
        if pause {
            delay = delay.max(self.config.retry_backoff_ms);
        }
        if delay == 0 || !self.connected {
            self.enqueue(key, true);
            return;
        }
        let at = self.now_ms.saturating_add(delay);
        entry.phase = Phase::Backoff(at);
        self.timers.insert((at, key.clone()));
    }

    pub(super) fn park(&mut self, key: &ShadowKey, rejection: Rejection) {
        if let Some(entry) = self.shadows.get_mut(key) {
            entry.phase = Phase::Parked;
            entry.changed = false;
        }
        self.counts.rejected += 1;
        let dropped = self.rejections.push(rejection);
        self.counts.log_dropped += u64::from(dropped);
    }

    pub(super) fn log_conflicts(&mut self, key: &ShadowKey, conflicts: Vec<FieldConflict>) {
        for c in conflicts {
            self.counts.conflicts += 1;
            let dropped = self.conflicts.push(Conflict {
                key: key.clone(),
                path: c.path,
                local: c.local,
                cloud: c.cloud,
                kept: c.kept,
            });
            self.counts.log_dropped += u64::from(dropped);
        }
    }

    pub(super) fn next_token(&mut self) -> String {
        let token = format!("{}-{}", self.token_prefix, self.token_counter);
        self.token_counter = self.token_counter.wrapping_add(1);
        token
    }
}

/// Whether a record with `base` marks a deleted shadow: no state, where there was one (or a
/// deleted one) before.
pub(super) fn deleted_flag(previous: &SyncRecord, base: Option<&ShadowState>) -> bool {
    base.is_none() && (previous.base.is_some() || previous.deleted)
}
