//! The part of a shadow that is synced: its `desired` and `reported` sections, and what the engine
//! knows of one side (state and version).

use serde_json::{Map, Value};

use crate::document::StoredShadow;

/// A shadow's state as the sync engine compares and merges it: the `desired` and `reported`
/// sections, each empty when absent. Metadata and timestamps are not part of it (each side stamps
/// its own), nor is the version (each side counts its own).
///
/// ```
/// use iot_shadow::sync::ShadowState;
/// use serde_json::json;
/// let state = ShadowState::from_value(&json!({"reported": {"on": true}})).unwrap();
/// assert!(state.desired.is_empty());
/// assert_eq!(state.to_value(), json!({"reported": {"on": true}}));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShadowState {
    /// `state.desired`.
    pub desired: Map<String, Value>,
    /// `state.reported`.
    pub reported: Map<String, Value>,
}

impl ShadowState {
    /// The state of a live stored shadow; `None` for a tombstone.
    pub fn of(shadow: &StoredShadow) -> Option<ShadowState> {
        if shadow.is_deleted() {
            return None;
        }
        Some(ShadowState {
            desired: shadow.desired.clone().unwrap_or_default(),
            reported: shadow.reported.clone().unwrap_or_default(),
        })
    }

    /// `{"desired":…,"reported":…}`, empty sections left out.
    pub fn to_value(&self) -> Value {
        let mut state = Map::new();
        if !self.desired.is_empty() {
            state.insert("desired".into(), Value::Object(self.desired.clone()));
        }
        if !self.reported.is_empty() {
            state.insert("reported".into(), Value::Object(self.reported.clone()));
        }
        Value::Object(state)
    }

    /// Read a `state` object as [`to_value`](Self::to_value) writes it and the service answers
    /// it (a `delta` in it is ignored). `None` if it is not an object or a section is neither an
    /// object nor absent.
    pub fn from_value(state: &Value) -> Option<ShadowState> {
        let state = state.as_object()?;
        let section = |name: &str| match state.get(name) {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(fields)) => Some(fields.clone()),
            Some(_) => None,
        };
        Some(ShadowState {
            desired: section("desired")?,
            reported: section("reported")?,
        })
    }
}

/// What the engine knows of one side of a shadow: its state (`None`: no shadow, or a tombstone)
/// and its version (a tombstone's included; `None` when the side does not say, as a 404 does not).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SideView {
    pub(crate) version: Option<u64>,
    pub(crate) state: Option<ShadowState>,
}

impl SideView {
    /// The view of a local stored shadow (a tombstone, or nothing at all).
    pub(crate) fn of_local(shadow: Option<&StoredShadow>) -> SideView {
        SideView {
            version: shadow.map(|s| s.version),
            state: shadow.and_then(ShadowState::of),
        }
    }

    /// No shadow, version unknown (a `get` answered 404).
    pub(crate) fn absent() -> SideView {
        SideView::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tombstones_have_no_state() {
        let dead = StoredShadow {
            version: 4,
            deleted_at: Some(10),
            ..StoredShadow::default()
        };
        assert_eq!(ShadowState::of(&dead), None);
        let view = SideView::of_local(Some(&dead));
        assert_eq!(view.version, Some(4));
        assert_eq!(view.state, None);
        assert_eq!(SideView::of_local(None), SideView::absent());
    }

    #[test]
    fn live_shadow_with_no_sections_is_an_empty_state() {
        let live = StoredShadow {
            version: 2,
            ..StoredShadow::default()
        };
        assert_eq!(ShadowState::of(&live), Some(ShadowState::default()));
        assert_eq!(ShadowState::default().to_value(), json!({}));
    }

    #[test]
    fn from_value_refuses_non_objects() {
        assert_eq!(ShadowState::from_value(&json!([])), None);
        assert_eq!(ShadowState::from_value(&json!({"desired": 3})), None);
        let state = ShadowState::from_value(&json!({"desired": {"a": 1}, "delta": {"a": 1}}));
        assert_eq!(state.map(|s| s.desired.len()), Some(1));
    }
}
