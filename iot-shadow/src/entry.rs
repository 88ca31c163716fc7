//! What a store keeps per key ([`ShadowEntry`]: the shadow and the JSON the service last wrote of
//! it) and how it lends one to the service for a change in place ([`ShadowSlot`]).

use crate::document::StoredShadow;
use crate::snapshot::Snapshot;

/// A stored shadow with, when the service wrote it, its serialized snapshot. Keeping the snapshot
/// saves the next update from serializing the previous document again, and gives a durable store
/// the shadow's JSON ([`to_json`](Self::to_json)) without a second serialization.
///
/// The snapshot is only ever set by the service together with the shadow it was taken of; an entry
/// made from a shadow ([`new`](Self::new)) has none, and the shadow is read-only through an entry,
/// so the two cannot disagree.
///
/// ```
/// use iot_shadow::{ShadowEntry, StoredShadow};
/// let entry = ShadowEntry::new(StoredShadow { version: 2, ..Default::default() });
/// assert_eq!(entry.version(), 2);
/// assert_eq!(entry.to_json(), entry.shadow().to_json());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowEntry {
    shadow: StoredShadow,
    snapshot: Option<Snapshot>,
}

impl ShadowEntry {
    /// An entry for `shadow`, with no snapshot yet.
    pub fn new(shadow: StoredShadow) -> ShadowEntry {
        ShadowEntry {
            shadow,
            snapshot: None,
        }
    }

    /// An entry for `shadow` with `snapshot`, which must be `shadow`'s.
    pub(crate) fn with_snapshot(shadow: StoredShadow, snapshot: Snapshot) -> ShadowEntry {
        ShadowEntry {
            shadow,
            snapshot: Some(snapshot),
        }
    }

    /// The shadow.
    pub fn shadow(&self) -> &StoredShadow {
        &self.shadow
    }

    /// The shadow, without the snapshot.
    pub fn into_shadow(self) -> StoredShadow {
        self.shadow
    }

    /// The shadow's version.
    pub fn version(&self) -> u64 {
        self.shadow.version
    }

    /// The shadow's durable JSON, as [`StoredShadow::to_json`] writes it, built from the snapshot
    /// when there is one.
    pub fn to_json(&self) -> String {
        match &self.snapshot {
            Some(snapshot) => snapshot.durable_json(&self.shadow),
            None => self.shadow.to_json(),
        }
    }

    /// The snapshot, if the service left one.
    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The shadow to change in place and the snapshot taken out (it no longer describes the
    /// shadow once that changes; put the new one back with [`set_snapshot`](Self::set_snapshot)).
    pub(crate) fn open(&mut self) -> (&mut StoredShadow, Option<Snapshot>) {
        (&mut self.shadow, self.snapshot.take())
    }

    /// Attach the snapshot of the shadow as it is now.
    pub(crate) fn set_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }
}

impl From<StoredShadow> for ShadowEntry {
    fn from(shadow: StoredShadow) -> ShadowEntry {
        ShadowEntry::new(shadow)
    }
}

/// The entry at one key, lent by [`ShadowStore::edit`](crate::ShadowStore::edit): reading it is
/// free; taking it mutably or replacing it marks it changed, and the store writes it back (or
/// deletes the key, if the slot was emptied) only then.
///
/// ```
/// use iot_shadow::{ShadowEntry, ShadowSlot, StoredShadow};
/// let mut stored = Some(ShadowEntry::new(StoredShadow { version: 1, ..Default::default() }));
/// let mut slot = ShadowSlot::new(&mut stored);
/// assert_eq!(slot.get().map(ShadowEntry::version), Some(1));
/// assert!(!slot.is_changed());
/// slot.set(None);
/// assert!(slot.is_changed());
/// assert_eq!(stored, None);
/// ```
#[derive(Debug)]
pub struct ShadowSlot<'a> {
    entry: &'a mut Option<ShadowEntry>,
    changed: bool,
}

impl<'a> ShadowSlot<'a> {
    /// A slot over a store's entry (`None`: nothing stored at the key).
    pub fn new(entry: &'a mut Option<ShadowEntry>) -> ShadowSlot<'a> {
        ShadowSlot {
            entry,
            changed: false,
        }
    }

    /// The entry, to read.
    pub fn get(&self) -> Option<&ShadowEntry> {
        self.entry.as_ref()
    }

    /// The entry, to change in place; marks the slot changed.
    pub fn get_mut(&mut self) -> Option<&mut ShadowEntry> {
        self.changed = true;
        self.entry.as_mut()
    }

    /// Replace the entry (`None`: remove the key); marks the slot changed.
    pub fn set(&mut self, entry: Option<ShadowEntry>) {
        self.changed = true;
        *self.entry = entry;
    }

    /// Whether the entry was taken mutably or replaced.
    pub fn is_changed(&self) -> bool {
        self.changed
    }
}
