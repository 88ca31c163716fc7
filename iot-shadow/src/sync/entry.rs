//! What the engine holds for one shadow between calls.

use crate::topic::Operation;

use super::record::SyncRecord;
use super::state::{ShadowState, SideView};

/// A sync under way: the state both sides are to end with, and what it was merged from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// The state both sides are to have; `None`: no shadow.
    pub(crate) target: Option<ShadowState>,
    /// The cloud as it was merged.
    pub(crate) cloud: SideView,
    /// The local version that holds `target` (once the local side has it).
    pub(crate) local_version: Option<u64>,
    /// Whether the record written on the way must be saved (a local write or conflicts happened;
    /// otherwise a crash before the end only repeats the same merge).
    pub(crate) persist: bool,
}

/// A cloud request awaiting its answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InFlight {
    pub(crate) token: String,
    pub(crate) operation: Operation,
    /// When the answer counts as lost.
    pub(crate) deadline: u64,
    /// The sync an `update` or `delete` carries out; `None` for a `get`.
    pub(crate) plan: Option<Plan>,
}

/// Where a shadow's sync stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Phase {
    /// Nothing under way.
    #[default]
    Idle,
    /// In the ready queue, waiting for its turn under the rate limit.
    Ready,
    /// A cloud request in flight (one at most per shadow).
    Cloud(InFlight),
    /// A local write handed out, awaiting `local_applied`.
    Local(Plan),
    /// Waiting to retry until this time.
    Backoff(u64),
    /// Given up on until something new happens to it.
    Parked,
}

/// One synced shadow.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShadowEntry {
    pub(crate) record: SyncRecord,
    /// The local shadow as last seen; `None` before the caller has shown it.
    pub(crate) local: Option<SideView>,
    /// The cloud shadow as last learned; `None` when it must be fetched (after a (re)connect,
    /// a 409, a failure).
    pub(crate) cloud: Option<SideView>,
    pub(crate) phase: Phase,
    /// Something happened since the current sync began: another one is due after it.
    pub(crate) changed: bool,
    /// Failed attempts in a row.
    pub(crate) attempts: u32,
    /// A state to put back on both sides, lost to a cloud delete that raced a cloud change.
    pub(crate) restore: Option<ShadowState>,
    /// A cloud write abandoned without an answer (lost, or the connection dropped): if the next
    /// `get` shows its target, it was applied, and is recorded as such rather than taken for a
    /// cloud change.
    pub(crate) unconfirmed: Option<Plan>,
}

impl ShadowEntry {
    pub(crate) fn new(record: SyncRecord) -> ShadowEntry {
        ShadowEntry {
            record,
            ..ShadowEntry::default()
        }
    }

    /// Leave the request in flight, if any, unanswered: keep its plan to recognise it by.
    pub(crate) fn abandon(&mut self) {
        if let Phase::Cloud(flight) = std::mem::take(&mut self.phase) {
            if flight.plan.is_some() {
                self.unconfirmed = flight.plan;
            }
        }
    }

    /// When this shadow's timer fires, if it has one.
    pub(crate) fn timer(&self) -> Option<u64> {
        match &self.phase {
            Phase::Cloud(flight) => Some(flight.deadline),
            Phase::Backoff(at) => Some(*at),
            _ => None,
        }
    }
}
