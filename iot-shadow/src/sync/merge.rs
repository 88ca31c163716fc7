//! The three-way merge of shadow states, field by field, against the last synced state.

use serde_json::{Map, Value};

use super::config::Direction;
use super::state::ShadowState;

/// One of the two sides a shadow is synced between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The edge's own shadow service.
    Local,
    /// AWS IoT Core's.
    Cloud,
}

/// A field where one side's change was discarded by the rule: changed on both sides to different
/// values, or (one-way directions) changed on the side that does not win.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldConflict {
    /// A JSON Pointer into the state (`/desired/light/on`); `""` for the whole shadow (a delete
    /// against an edit).
    pub path: String,
    /// The local value (`null`: deleted, or no shadow).
    pub local: Value,
    /// The cloud's value (`null`: deleted, or no shadow).
    pub cloud: Value,
    /// Whose value was kept.
    pub kept: Side,
}

/// A merged state and the conflicts met on the way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    /// The state both sides are to have.
    pub state: ShadowState,
    /// The fields where a change was discarded, in document order.
    pub conflicts: Vec<FieldConflict>,
}

/// How a section settles a field changed on the losing side.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Each side's change is kept; a field both changed differently takes this side's value.
    Prefer(Side),
    /// The result is this side's state; the other side's changes are discarded (and reported).
    Mirror(Side),
}

/// Merge `local` and `cloud`, both descended from `base` (`None`: no common state, as for a first
/// sync), field by field: a leaf changed on one side only takes that side's value; one changed on
/// both sides to the same value is no conflict; one changed on both to different values is a
/// conflict settled by `direction` (both ways: the cloud's value in `desired`, the local one in
/// `reported`; one-way: the source side's, and every change of the other side is a conflict).
/// Objects merge key by key, arrays and scalars are leaves compared whole, a missing key is a
/// `null` (deleted) leaf.
///
/// ```
/// use iot_shadow::sync::{Direction, ShadowState, Side, three_way_merge};
/// use serde_json::json;
/// let state = |v| ShadowState::from_value(&v).unwrap();
/// let base = state(json!({"desired": {"color": "red", "level": 1}}));
/// let local = state(json!({"desired": {"color": "blue", "level": 1}, "reported": {"on": true}}));
/// let cloud = state(json!({"desired": {"color": "green", "level": 2}}));
/// let merged = three_way_merge(Some(&base), &local, &cloud, Direction::BetweenDeviceAndCloud);
/// assert_eq!(merged.state.to_value(),
///     json!({"desired": {"color": "green", "level": 2}, "reported": {"on": true}}));
/// assert_eq!(merged.conflicts[0].path, "/desired/color");
/// assert_eq!(merged.conflicts[0].kept, Side::Cloud);
/// ```
pub fn three_way_merge(
    base: Option<&ShadowState>,
    local: &ShadowState,
    cloud: &ShadowState,
    direction: Direction,
) -> Merged {
    let (desired_rule, reported_rule) = match direction {
        Direction::BetweenDeviceAndCloud => (Rule::Prefer(Side::Cloud), Rule::Prefer(Side::Local)),
        Direction::DeviceToCloud => (Rule::Mirror(Side::Local), Rule::Mirror(Side::Local)),
        Direction::CloudToDevice => (Rule::Mirror(Side::Cloud), Rule::Mirror(Side::Cloud)),
    };
    let empty = ShadowState::default();
    let base = base.unwrap_or(&empty);
    let mut conflicts = Vec::new();
    let mut path = String::from("/desired");
    let desired = merge_maps(
        &mut path,
        &base.desired,
        &local.desired,
        &cloud.desired,
        desired_rule,
        &mut conflicts,
    );
    path.clear();
    path.push_str("/reported");
    let reported = merge_maps(
        &mut path,
        &base.reported,
        &local.reported,
        &cloud.reported,
        reported_rule,
        &mut conflicts,
    );
    Merged {
        state: ShadowState { desired, reported },
        conflicts,
    }
}

/// Append `key` to a JSON Pointer (`~` as `~0`, `/` as `~1`).
fn push_segment(path: &mut String, key: &str) {
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

fn merge_maps(
    path: &mut String,
    base: &Map<String, Value>,
    local: &Map<String, Value>,
    cloud: &Map<String, Value>,
    rule: Rule,
    conflicts: &mut Vec<FieldConflict>,
) -> Map<String, Value> {
    let keys = local
        .keys()
        .chain(cloud.keys().filter(|k| !local.contains_key(*k)))
        .chain(
            base.keys()
                .filter(|k| !local.contains_key(*k) && !cloud.contains_key(*k)),
        );
    let mut merged = Map::new();
    for key in keys {
        let len = path.len();
        push_segment(path, key);
        let value = merge_values(
            path,
            base.get(key),
            local.get(key),
            cloud.get(key),
            rule,
            conflicts,
        );
        path.truncate(len);
        if let Some(value) = value {
            merged.insert(key.clone(), value);
        }
    }
    merged
}

/// A `null` value counts as no value.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// The object a value holds, an empty one for no value, `None` for a scalar or an array.
fn object_or_none(value: Option<&Value>) -> Option<Option<&Map<String, Value>>> {
    match value {
        None => Some(None),
        Some(Value::Object(fields)) => Some(Some(fields)),
        Some(_) => None,
    }
}

fn merge_values(
    path: &mut String,
    base: Option<&Value>,
    local: Option<&Value>,
    cloud: Option<&Value>,
    rule: Rule,
    conflicts: &mut Vec<FieldConflict>,
) -> Option<Value> {
    let (base, local, cloud) = (present(base), present(local), present(cloud));
    if local == cloud {
        return local.cloned();
    }
    let local_changed = local != base;
    let cloud_changed = cloud != base;
    let winner = match rule {
        Rule::Prefer(_) if !cloud_changed => return local.cloned(),
        Rule::Prefer(_) if !local_changed => return cloud.cloned(),
        Rule::Prefer(side) => side,
        // The source's value stands; only the other side's changes are conflicts.
        Rule::Mirror(Side::Local) if !cloud_changed => return local.cloned(),
        Rule::Mirror(Side::Cloud) if !local_changed => return cloud.cloned(),
        Rule::Mirror(side) => side,
    };
    if let (Some(l), Some(c)) = (object_or_none(local), object_or_none(cloud)) {
        // Objects (or an object against a deleted key): leaf by leaf.
        let empty = Map::new();
        let b = base.and_then(Value::as_object).unwrap_or(&empty);
        let merged = merge_maps(
            path,
            b,
            l.unwrap_or(&empty),
            c.unwrap_or(&empty),
            rule,
            conflicts,
        );
        return (!merged.is_empty()).then_some(Value::Object(merged));
    }
    conflicts.push(FieldConflict {
        path: path.clone(),
        local: local.cloned().unwrap_or(Value::Null),
        cloud: cloud.cloned().unwrap_or(Value::Null),
        kept: winner,
    });
    match winner {
        Side::Local => local.cloned(),
        Side::Cloud => cloud.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn state(value: Value) -> ShadowState {
        ShadowState::from_value(&value).unwrap()
    }

    fn both_ways(base: Value, local: Value, cloud: Value) -> Merged {
        three_way_merge(
            Some(&state(base)),
            &state(local),
            &state(cloud),
            Direction::BetweenDeviceAndCloud,
        )
    }

    #[test]
    fn one_side_changes_take_that_side() {
        let m = both_ways(
            json!({"reported": {"a": 1, "b": 1}}),
            json!({"reported": {"a": 2, "b": 1}}),
            json!({"reported": {"a": 1, "b": 3}}),
        );
        assert_eq!(m.state.to_value(), json!({"reported": {"a": 2, "b": 3}}));
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn same_change_on_both_sides_is_no_conflict() {
        let m = both_ways(
            json!({"desired": {"a": 1}}),
            json!({"desired": {"a": 5, "new": [1, 2]}}),
            json!({"desired": {"a": 5, "new": [1, 2]}}),
        );
        assert_eq!(
            m.state.to_value(),
            json!({"desired": {"a": 5, "new": [1, 2]}})
        );
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn conflicts_give_desired_to_the_cloud_and_reported_to_the_device() {
        let m = both_ways(
            json!({"desired": {"a": 1}, "reported": {"a": 1}}),
            json!({"desired": {"a": 2}, "reported": {"a": 2}}),
            json!({"desired": {"a": 3}, "reported": {"a": 3}}),
        );
        assert_eq!(
            m.state.to_value(),
            json!({"desired": {"a": 3}, "reported": {"a": 2}})
        );
        assert_eq!(
            m.conflicts,
            vec![
                FieldConflict {
                    path: "/desired/a".into(),
                    local: json!(2),
                    cloud: json!(3),
                    kept: Side::Cloud
                },
                FieldConflict {
                    path: "/reported/a".into(),
                    local: json!(2),
                    cloud: json!(3),
                    kept: Side::Local
                },
            ]
        );
    }

    #[test]
    fn nested_objects_merge_leaf_by_leaf() {
        let m = both_ways(
            json!({"reported": {"light": {"on": false, "level": 1}}}),
            json!({"reported": {"light": {"on": true, "level": 1}}}),
            json!({"reported": {"light": {"on": false, "level": 7, "color": "red"}}}),
        );
        assert_eq!(
            m.state.to_value(),
            json!({"reported": {"light": {"on": true, "level": 7, "color": "red"}}})
        );
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn arrays_are_compared_whole() {
        let m = both_ways(
            json!({"reported": {"rgb": [1, 2, 3]}}),
            json!({"reported": {"rgb": [9, 2, 3]}}),
            json!({"reported": {"rgb": [1, 2, 9]}}),
        );
        assert_eq!(m.state.to_value(), json!({"reported": {"rgb": [9, 2, 3]}}));
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].path, "/reported/rgb");
    }

    #[test]
    fn deletes_are_changes_too() {
        // Local deleted `a`; the cloud left it: deleted. The cloud deleted `b`, local changed it:
        // a conflict (reported: the device wins, so `b` stays with the device's value).
        let m = both_ways(
            json!({"reported": {"a": 1, "b": 1}}),
            json!({"reported": {"b": 2}}),
            json!({"reported": {"a": 1}}),
        );
        assert_eq!(m.state.to_value(), json!({"reported": {"b": 2}}));
        assert_eq!(m.conflicts[0].cloud, Value::Null);
        // A deleted object against a new leaf in it: its other leaves go, the new one stays.
        let m = both_ways(
            json!({"desired": {"o": {"x": 1}}}),
            json!({"desired": {}}),
            json!({"desired": {"o": {"x": 1, "y": 2}}}),
        );
        assert_eq!(m.state.to_value(), json!({"desired": {"o": {"y": 2}}}));
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn an_object_against_a_scalar_is_one_conflict() {
        let m = both_ways(
            json!({"desired": {"o": 1}}),
            json!({"desired": {"o": {"x": 1}}}),
            json!({"desired": {"o": 2}}),
        );
        assert_eq!(m.state.to_value(), json!({"desired": {"o": 2}}));
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].path, "/desired/o");
    }

    #[test]
    fn without_a_base_every_difference_is_a_conflict() {
        let m = three_way_merge(
            None,
            &state(json!({"reported": {"a": 1, "b": 1}})),
            &state(json!({"reported": {"a": 2, "c": 1}})),
            Direction::BetweenDeviceAndCloud,
        );
        assert_eq!(
            m.state.to_value(),
            json!({"reported": {"a": 1, "b": 1, "c": 1}})
        );
        assert_eq!(m.conflicts.len(), 1);
    }

    #[test]
    fn one_way_mirrors_the_source_and_reports_the_other_sides_changes() {
        let base = state(json!({"desired": {"a": 1, "b": 1}}));
        let local = state(json!({"desired": {"a": 2, "b": 1}}));
        let cloud = state(json!({"desired": {"a": 1, "b": 3, "c": 1}}));
        let up = three_way_merge(Some(&base), &local, &cloud, Direction::DeviceToCloud);
        assert_eq!(up.state, local);
        let paths: Vec<&str> = up.conflicts.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/desired/b", "/desired/c"]);
        assert!(up.conflicts.iter().all(|c| c.kept == Side::Local));
        let down = three_way_merge(Some(&base), &local, &cloud, Direction::CloudToDevice);
        assert_eq!(down.state, cloud);
        let paths: Vec<&str> = down.conflicts.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/desired/a"]);
    }

    #[test]
    fn paths_are_json_pointers() {
        let m = both_ways(
            json!({"reported": {"a/b": {"~x": 1}}}),
            json!({"reported": {"a/b": {"~x": 2}}}),
            json!({"reported": {"a/b": {"~x": 3}}}),
        );
        assert_eq!(m.conflicts[0].path, "/reported/a~1b/~0x");
    }

    // Leaves on paths none of which is a prefix of another, so "changed on one side only" is
    // well defined leaf by leaf.
    const PATHS: [&str; 6] = ["/a", "/b", "/o/x", "/o/y", "/p/q/r", "/arr"];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..3).prop_map(Value::from),
            "[ab]".prop_map(Value::from),
            prop::collection::vec(0i64..2, 0..3).prop_map(Value::from),
        ]
    }

    /// For each path: absent or a leaf.
    fn section() -> impl Strategy<Value = Vec<Option<Value>>> {
        prop::collection::vec(prop::option::of(leaf()), PATHS.len())
    }

    /// For each path: unchanged, or set to a new value / deleted.
    fn edits() -> impl Strategy<Value = Vec<Option<Option<Value>>>> {
        prop::collection::vec(
            prop_oneof![2 => Just(None), 1 => prop::option::of(leaf()).prop_map(Some)],
            PATHS.len(),
        )
    }

    fn build(leaves: &[Option<Value>]) -> Map<String, Value> {
        let mut root = Value::Object(Map::new());
        for (path, value) in PATHS.iter().zip(leaves) {
            if let Some(value) = value {
                let pointer_parent = path.rsplit_once('/').unwrap().0;
                let mut node = &mut root;
                for part in pointer_parent.split('/').skip(1) {
                    node = node
                        .as_object_mut()
                        .unwrap()
                        .entry(part)
                        .or_insert_with(|| Value::Object(Map::new()));
                }
                let last = path.rsplit('/').next().unwrap();
                node.as_object_mut()
                    .unwrap()
                    .insert(last.to_string(), value.clone());
            }
        }
        root.as_object().cloned().unwrap()
    }

    fn apply(leaves: &[Option<Value>], edits: &[Option<Option<Value>>]) -> Vec<Option<Value>> {
        leaves
            .iter()
            .zip(edits)
            .map(|(v, e)| match e {
                Some(new) => new.clone(),
                None => v.clone(),
            })
            .collect()
    }

    fn at(section: &Map<String, Value>, path: &str) -> Option<Value> {
        Value::Object(section.clone()).pointer(path).cloned()
    }

    proptest! {
        #[test]
        fn merging_is_deterministic_and_one_sided_changes_win(
            base in section(),
            local_edits in edits(),
            cloud_edits in edits(),
            direction in prop_oneof![
                Just(Direction::BetweenDeviceAndCloud),
                Just(Direction::DeviceToCloud),
                Just(Direction::CloudToDevice),
            ],
        ) {
            let local = apply(&base, &local_edits);
            let cloud = apply(&base, &cloud_edits);
            let as_state = |leaves: &[Option<Value>]| ShadowState {
                desired: build(leaves),
                reported: build(leaves),
            };
            let (b, l, c) = (as_state(&base), as_state(&local), as_state(&cloud));
            let first = three_way_merge(Some(&b), &l, &c, direction);
            let again = three_way_merge(Some(&b.clone()), &l.clone(), &c.clone(), direction);
            prop_assert_eq!(&first, &again);
            // The same inputs built in another key order merge to the same result.
            let reversed = |m: &Map<String, Value>| m.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
            let l_rev = ShadowState { desired: reversed(&l.desired), reported: reversed(&l.reported) };
            prop_assert_eq!(&three_way_merge(Some(&b), &l_rev, &c, direction).state, &first.state);

            for (i, path) in PATHS.iter().enumerate() {
                let local_changed = local[i] != base[i];
                let cloud_changed = cloud[i] != base[i];
                for (section, merged) in [
                    ("desired", &first.state.desired),
                    ("reported", &first.state.reported),
                ] {
                    let got = at(merged, path);
                    let conflict = first
                        .conflicts
                        .iter()
                        .any(|c| c.path == format!("/{section}{path}"));
                    match direction {
                        Direction::BetweenDeviceAndCloud => {
                            if local_changed && !cloud_changed {
                                prop_assert_eq!(&got, &local[i]);
                            }
                            if cloud_changed && !local_changed {
                                prop_assert_eq!(&got, &cloud[i]);
                            }
                            if !local_changed && !cloud_changed {
                                prop_assert_eq!(&got, &base[i]);
                            }
                            let differ = local_changed && cloud_changed && local[i] != cloud[i];
                            prop_assert_eq!(conflict, differ);
                            if differ {
                                let winner = if section == "desired" { &cloud[i] } else { &local[i] };
                                prop_assert_eq!(&got, winner);
                            }
                        }
                        Direction::DeviceToCloud => {
                            prop_assert_eq!(&got, &local[i]);
                            prop_assert_eq!(conflict, cloud_changed && local[i] != cloud[i]);
                        }
                        Direction::CloudToDevice => {
                            prop_assert_eq!(&got, &cloud[i]);
                            prop_assert_eq!(conflict, local_changed && local[i] != cloud[i]);
                        }
                    }
                }
            }
        }
    }
}
