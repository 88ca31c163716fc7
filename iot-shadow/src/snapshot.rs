//! A live shadow serialized once: `{"state":…,"metadata":…,"version":N}` (the form of
//! `update/documents`), with where each section's JSON lies in it.
//!
//! The service keeps the snapshot of the last update with the stored shadow: it is the next
//! update's `previous` document, a section the next update leaves alone is copied from it rather
//! than serialized again, the size check reads the sections' lengths from it, and the durable
//! form of the shadow is the snapshot with the timestamp added.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::document::StoredShadow;
use crate::json_writer::{TimestampText, into_string, write_value};

/// The four sections, in the order they appear in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Desired,
    Reported,
    DesiredMetadata,
    ReportedMetadata,
}

impl Part {
    fn index(self) -> usize {
        match self {
            Part::Desired => 0,
            Part::Reported => 1,
            Part::DesiredMetadata => 2,
            Part::ReportedMetadata => 3,
        }
    }
}

/// A shadow's JSON and the byte range of each present section in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    json: Vec<u8>,
    parts: [Option<Range<usize>>; 4],
}

/// Which sections of a new snapshot may be copied from the previous one (they did not change).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Unchanged {
    /// `desired` and its metadata.
    pub(crate) desired: bool,
    /// `reported` and its metadata.
    pub(crate) reported: bool,
}

impl Snapshot {
    /// Serialize `shadow`.
    pub(crate) fn of(shadow: &StoredShadow) -> Snapshot {
        Snapshot::build(shadow, None, Unchanged::default())
    }

    /// Serialize `shadow`, copying the sections marked unchanged from `previous` (the snapshot of
    /// the same shadow before the change).
    pub(crate) fn build(
        shadow: &StoredShadow,
        previous: Option<&Snapshot>,
        unchanged: Unchanged,
    ) -> Snapshot {
        let copy = |part: Part, same: bool| previous.filter(|_| same).and_then(|p| p.part(part));
        let capacity = previous.map_or(256, |p| p.json.len() + 64);
        let mut json = Vec::with_capacity(capacity);
        let mut parts: [Option<Range<usize>>; 4] = Default::default();
        let mut text = TimestampText::default();
        json.extend_from_slice(b"{\"state\":{");
        let state = [
            (
                Part::Desired,
                "desired",
                shadow.desired.as_ref(),
                unchanged.desired,
            ),
            (
                Part::Reported,
                "reported",
                shadow.reported.as_ref(),
                unchanged.reported,
            ),
        ];
        let mut first = true;
        for (part, name, section, same) in state {
            let Some(section) = section else { continue };
            let range = write_part(&mut json, &mut first, name, copy(part, same), |buf| {
                write_section(buf, section)
            });
            set(&mut parts, part, range);
        }
        json.extend_from_slice(b"},\"metadata\":{");
        let metadata = [
            (
                Part::DesiredMetadata,
                "desired",
                shadow.desired_metadata.as_ref(),
                unchanged.desired,
            ),
            (
                Part::ReportedMetadata,
                "reported",
                shadow.reported_metadata.as_ref(),
                unchanged.reported,
            ),
        ];
        let mut first = true;
        for (part, name, meta, same) in metadata {
            let Some(meta) = meta else { continue };
            let range = write_part(&mut json, &mut first, name, copy(part, same), |buf| {
                meta.write_json(buf, &mut text)
            });
            set(&mut parts, part, range);
        }
        json.extend_from_slice(b"},\"version\":");
        write_value(&mut json, &shadow.version);
        json.push(b'}');
        Snapshot { json, parts }
    }

    /// The whole JSON.
    pub(crate) fn json(&self) -> &[u8] {
        &self.json
    }

    /// One section's JSON, if the shadow has that section.
    pub(crate) fn part(&self, part: Part) -> Option<&[u8]> {
        let range = self.parts.get(part.index())?.clone()?;
        self.json.get(range)
    }

    /// Serialized bytes of `desired` plus `reported`: what the size limit counts.
    pub(crate) fn state_len(&self) -> usize {
        self.part_len(Part::Desired) + self.part_len(Part::Reported)
    }

    /// Serialized bytes of one section (0 when absent).
    pub(crate) fn part_len(&self, part: Part) -> usize {
        self.part(part).map_or(0, <[u8]>::len)
    }

    /// The durable form ([`StoredShadow::to_json`]) of the shadow this snapshot was taken of,
    /// which has `timestamp` (and, for a tombstone, `deletedAt`) after the version.
    pub(crate) fn durable_json(&self, shadow: &StoredShadow) -> String {
        // A snapshot always ends with the `}` of its object.
        let open = self.json.strip_suffix(b"}").unwrap_or(&self.json);
        let mut json = Vec::with_capacity(self.json.len() + 48);
        json.extend_from_slice(open);
        json.extend_from_slice(b",\"timestamp\":");
        write_value(&mut json, &shadow.timestamp);
        if let Some(at) = shadow.deleted_at {
            json.extend_from_slice(b",\"deletedAt\":");
            write_value(&mut json, &at);
        }
        json.push(b'}');
        into_string(json)
    }
}

/// Write `"name":` and the section (copied if `copy` holds it), returning the section's range.
fn write_part(
    json: &mut Vec<u8>,
    first: &mut bool,
    name: &str,
    copy: Option<&[u8]>,
    serialize: impl FnOnce(&mut Vec<u8>),
) -> Range<usize> {
    if !*first {
        json.push(b',');
    }
    *first = false;
    crate::json_writer::write_key(json, name);
    let start = json.len();
    match copy {
        Some(bytes) => json.extend_from_slice(bytes),
        None => serialize(json),
    }
    start..json.len()
}

fn set(parts: &mut [Option<Range<usize>>; 4], part: Part, range: Range<usize>) {
    if let Some(slot) = parts.get_mut(part.index()) {
        *slot = Some(range);
    }
}

fn write_section(buf: &mut Vec<u8>, section: &Map<String, Value>) {
    write_value(buf, section);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::metadata::Metadata;

    fn shadow(state: Value, version: u64) -> StoredShadow {
        let section = |name: &str| state.get(name).and_then(Value::as_object).cloned();
        let meta = |name: &str| state.get(name).map(|v| Metadata::written(v, 5));
        StoredShadow {
            desired: section("desired"),
            reported: section("reported"),
            desired_metadata: meta("desired"),
            reported_metadata: meta("reported"),
            version,
            timestamp: 5,
            deleted_at: None,
        }
    }

    /// The snapshot as the service wrote it before it kept snapshots: serde_json of each part.
    fn plain(shadow: &StoredShadow) -> Vec<u8> {
        let mut state = Map::new();
        let mut meta = Map::new();
        if let Some(d) = &shadow.desired {
            state.insert("desired".into(), Value::Object(d.clone()));
        }
        if let Some(r) = &shadow.reported {
            state.insert("reported".into(), Value::Object(r.clone()));
        }
        if let Some(d) = &shadow.desired_metadata {
            meta.insert("desired".into(), d.to_value());
        }
        if let Some(r) = &shadow.reported_metadata {
            meta.insert("reported".into(), r.to_value());
        }
        let doc = json!({"state": state, "metadata": meta, "version": shadow.version});
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    #[test]
    fn serializes_as_serde_json_does() {
        for state in [
            json!({}),
            json!({"desired": {"a": 1}}),
            json!({"reported": {"b": [1, {"c": "\"q\""}]}}),
            json!({"desired": {"a": 1.5}, "reported": {"a": null, "z": {"y": true}}}),
        ] {
            let s = shadow(state, 3);
            let snapshot = Snapshot::of(&s);
            assert_eq!(snapshot.json(), plain(&s).as_slice());
        }
    }

    #[test]
    fn parts_locate_each_section() {
        let s = shadow(json!({"desired": {"a": 1}, "reported": {"bb": "x"}}), 2);
        let snapshot = Snapshot::of(&s);
        assert_eq!(snapshot.part(Part::Desired), Some(&br#"{"a":1}"#[..]));
        assert_eq!(snapshot.part(Part::Reported), Some(&br#"{"bb":"x"}"#[..]));
        assert_eq!(
            snapshot.part(Part::ReportedMetadata),
            Some(&br#"{"bb":{"timestamp":5}}"#[..])
        );
        assert_eq!(snapshot.state_len(), 7 + 10);
        let only = Snapshot::of(&shadow(json!({"reported": {"b": 1}}), 1));
        assert_eq!(only.part(Part::Desired), None);
        assert_eq!(only.part_len(Part::DesiredMetadata), 0);
    }

    #[test]
    fn unchanged_sections_are_copied_from_the_previous_snapshot() {
        let before = shadow(json!({"desired": {"a": 1}, "reported": {"b": 2}}), 1);
        let previous = Snapshot::of(&before);
        let mut after = before.clone();
        after.version = 2;
        after.reported = Some(json!({"b": 3}).as_object().cloned().unwrap_or_default());
        let unchanged = Unchanged {
            desired: true,
            reported: false,
        };
        let next = Snapshot::build(&after, Some(&previous), unchanged);
        assert_eq!(next.json(), plain(&after).as_slice());
        assert_eq!(next, Snapshot::of(&after));
    }

    #[test]
    fn durable_json_is_to_json() {
        let mut s = shadow(json!({"desired": {"a": [1, 2]}}), 4);
        assert_eq!(Snapshot::of(&s).durable_json(&s), s.to_json());
        s.deleted_at = Some(9);
        assert_eq!(Snapshot::of(&s).durable_json(&s), s.to_json());
    }
}
