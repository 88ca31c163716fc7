//! What a sync makes of a shadow: whether each side changed since the last sync, and the state
//! (or the absence of a shadow) both sides are to end with, deletes included.

use serde_json::Value;

use super::config::Direction;
use super::merge::{FieldConflict, Side, three_way_merge};
use super::record::SyncRecord;
use super::state::{ShadowState, SideView};

/// What both sides are to have after the sync.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// Nothing to do, and nothing to record (one-way: the source has no shadow and had none).
    Leave,
    /// No shadow on either side.
    Absent,
    /// This state on both sides.
    Present(ShadowState),
}

/// The target and the changes it discards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub(crate) target: Target,
    pub(crate) conflicts: Vec<FieldConflict>,
}

/// Whether a side moved since the record: it gained or lost its shadow, or its version moved
/// (any way: after 48 hours a re-created shadow starts again at 1), or its state differs from the
/// base (so a record whose base is the other side's state still shows this side's changes).
pub(crate) fn side_changed(
    base: Option<&ShadowState>,
    recorded_version: Option<u64>,
    now: &SideView,
) -> bool {
    match (base, now.state.as_ref()) {
        (None, None) => false,
        (Some(base), Some(state)) => recorded_version != now.version || base != state,
        _ => true,
    }
}

/// The whole shadow as a value for a conflict: its state, or `null` for none.
fn whole(state: Option<&ShadowState>) -> Value {
    state.map_or(Value::Null, ShadowState::to_value)
}

fn whole_conflict(
    local: Option<&ShadowState>,
    cloud: Option<&ShadowState>,
    kept: Side,
) -> FieldConflict {
    FieldConflict {
        path: String::new(),
        local: whole(local),
        cloud: whole(cloud),
        kept,
    }
}

/// Decide a shadow's sync from the record and both sides as they are now.
pub(crate) fn decide(
    record: &SyncRecord,
    local: &SideView,
    cloud: &SideView,
    direction: Direction,
) -> Decision {
    let base = record.base.as_ref();
    let local_changed = side_changed(base, record.local_version, local);
    let cloud_changed = side_changed(base, record.cloud_version, cloud);
    let (l, c) = (local.state.as_ref(), cloud.state.as_ref());
    let present = |state: &ShadowState, conflicts| Decision {
        target: Target::Present(state.clone()),
        conflicts,
    };
    let source = match direction {
        Direction::BetweenDeviceAndCloud => None,
        Direction::DeviceToCloud => Some(Side::Local),
        Direction::CloudToDevice => Some(Side::Cloud),
    };
    match (l, c) {
        (Some(l), Some(c)) => {
            let merged = three_way_merge(base, l, c, direction);
            Decision {
                target: Target::Present(merged.state),
                conflicts: merged.conflicts,
            }
        }
        (None, None) => Decision {
            target: Target::Absent,
            conflicts: Vec::new(),
        },
        // One side has a shadow, the other none.
        (Some(l), None) => match source {
            None if cloud_changed && !local_changed => absent(),
            // Deleted in the cloud and changed here: the change wins, the delete is discarded.
            None if cloud_changed => present(l, vec![whole_conflict(Some(l), None, Side::Local)]),
            // Created here (or re-created since both were deleted).
            None => present(l, Vec::new()),
            Some(Side::Local) => {
                let discarded = cloud_changed.then(|| whole_conflict(Some(l), None, Side::Local));
                present(l, discarded.into_iter().collect())
            }
            Some(Side::Cloud) if !cloud_changed => leave(),
            Some(Side::Cloud) => {
                let discarded = local_changed.then(|| whole_conflict(Some(l), None, Side::Cloud));
                Decision {
                    target: Target::Absent,
                    conflicts: discarded.into_iter().collect(),
                }
            }
        },
        (None, Some(c)) => match source {
            None if local_changed && !cloud_changed => absent(),
            None if local_changed => present(c, vec![whole_conflict(None, Some(c), Side::Cloud)]),
            None => present(c, Vec::new()),
            Some(Side::Cloud) => {
                let discarded = local_changed.then(|| whole_conflict(None, Some(c), Side::Cloud));
                present(c, discarded.into_iter().collect())
            }
            Some(Side::Local) if !local_changed => leave(),
            Some(Side::Local) => {
                let discarded = cloud_changed.then(|| whole_conflict(None, Some(c), Side::Local));
                Decision {
                    target: Target::Absent,
                    conflicts: discarded.into_iter().collect(),
                }
            }
        },
    }
}

fn absent() -> Decision {
    Decision {
        target: Target::Absent,
        conflicts: Vec::new(),
    }
}

fn leave() -> Decision {
    Decision {
        target: Target::Leave,
        conflicts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(value: Value) -> ShadowState {
        ShadowState::from_value(&value).unwrap()
    }

    fn view(version: u64, value: Option<Value>) -> SideView {
        SideView {
            version: Some(version),
            state: value.map(state),
        }
    }

    fn synced(value: Value, local_version: u64, cloud_version: u64) -> SyncRecord {
        SyncRecord {
            base: Some(state(value)),
            local_version: Some(local_version),
            cloud_version: Some(cloud_version),
            deleted: false,
        }
    }

    const BOTH: Direction = Direction::BetweenDeviceAndCloud;

    #[test]
    fn delete_against_unchanged_deletes_the_other_side() {
        let record = synced(json!({"reported": {"a": 1}}), 3, 7);
        let d = decide(
            &record,
            &view(3, None),
            &view(7, Some(json!({"reported": {"a": 1}}))),
            BOTH,
        );
        assert_eq!(d.target, Target::Absent);
        assert!(d.conflicts.is_empty());
        let d = decide(
            &record,
            &view(3, Some(json!({"reported": {"a": 1}}))),
            &SideView::absent(),
            BOTH,
        );
        assert_eq!(d.target, Target::Absent);
    }

    #[test]
    fn delete_against_a_change_loses_and_is_reported() {
        let record = synced(json!({"reported": {"a": 1}}), 3, 7);
        let changed = json!({"reported": {"a": 2}});
        let d = decide(
            &record,
            &view(3, None),
            &view(8, Some(changed.clone())),
            BOTH,
        );
        assert_eq!(d.target, Target::Present(state(changed.clone())));
        assert_eq!(d.conflicts.len(), 1);
        assert_eq!(d.conflicts[0].path, "");
        assert_eq!(d.conflicts[0].local, Value::Null);
        assert_eq!(d.conflicts[0].kept, Side::Cloud);
        // A version bump alone is a change.
        let same = json!({"reported": {"a": 1}});
        let d = decide(
            &record,
            &view(4, Some(same.clone())),
            &SideView::absent(),
            BOTH,
        );
        assert_eq!(d.target, Target::Present(state(same)));
    }

    #[test]
    fn a_recreated_shadow_is_not_deleted_by_its_old_tombstone() {
        // Deleted on both sides at the last sync; re-created in the cloud since. The local
        // tombstone is as it was: the re-created shadow comes down.
        let record = SyncRecord {
            base: None,
            local_version: Some(3),
            cloud_version: Some(7),
            deleted: true,
        };
        let again = json!({"desired": {"on": true}});
        let d = decide(&record, &view(3, None), &view(8, Some(again.clone())), BOTH);
        assert_eq!(d.target, Target::Present(state(again)));
        assert!(d.conflicts.is_empty());
    }

    #[test]
    fn nothing_on_either_side_is_nothing() {
        let d = decide(
            &SyncRecord::default(),
            &SideView::absent(),
            &SideView::absent(),
            BOTH,
        );
        assert_eq!(d.target, Target::Absent);
    }

    #[test]
    fn a_new_local_shadow_is_created_in_the_cloud() {
        let mine = json!({"reported": {"speed": 3}});
        let d = decide(
            &SyncRecord::default(),
            &view(1, Some(mine.clone())),
            &SideView::absent(),
            BOTH,
        );
        assert_eq!(d.target, Target::Present(state(mine)));
    }

    #[test]
    fn one_way_leaves_the_sink_alone_while_the_source_never_had_a_shadow() {
        let theirs = json!({"reported": {"speed": 3}});
        let d = decide(
            &SyncRecord::default(),
            &SideView::absent(),
            &view(4, Some(theirs.clone())),
            Direction::DeviceToCloud,
        );
        assert_eq!(d.target, Target::Leave);
        // …but a source's delete is copied, and the sink's changes it discards are reported.
        let record = synced(json!({"reported": {"a": 1}}), 3, 7);
        let d = decide(
            &record,
            &view(3, None),
            &view(8, Some(theirs)),
            Direction::DeviceToCloud,
        );
        assert_eq!(d.target, Target::Absent);
        assert_eq!(d.conflicts.len(), 1);
        let d = decide(
            &record,
            &view(3, None),
            &view(7, Some(json!({"reported": {"a": 1}}))),
            Direction::CloudToDevice,
        );
        assert_eq!(
            d.target,
            Target::Present(state(json!({"reported": {"a": 1}})))
        );
        assert_eq!(d.conflicts.len(), 1);
    }

    #[test]
    fn side_changed_compares_existence_version_and_content() {
        let base = state(json!({"reported": {"a": 1}}));
        assert!(!side_changed(
            Some(&base),
            Some(2),
            &view(2, Some(json!({"reported": {"a": 1}})))
        ));
        assert!(side_changed(
            Some(&base),
            Some(2),
            &view(3, Some(json!({"reported": {"a": 1}})))
        ));
        assert!(side_changed(
            Some(&base),
            Some(2),
            &view(2, Some(json!({"reported": {"a": 2}})))
        ));
        assert!(side_changed(Some(&base), Some(2), &view(2, None)));
        assert!(!side_changed(None, Some(2), &view(5, None)));
        assert!(side_changed(None, None, &view(1, Some(json!({})))));
    }
}
