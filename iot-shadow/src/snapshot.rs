//! A live shadow serialized once: `{"state":…,"metadata":…,"version":N}` (the form of
//! `update/documents`), with where each section's JSON lies in it.
//!
//! The service keeps the snapshot of the last update with the stored shadow: it is the next
//! update's `previous` document, a section the next update leaves alone is copied from it rather
//! than serialized again, the size check reads the sections' lengths from it, and the durable
//! form of the shadow is the snapshot with the timestamp added.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::delta_document::Delta;
use crate::document::StoredShadow;
use crate::json_writer::{TimestampText, into_string, write_key, write_value};
use crate::metadata::Metadata;
use crate::request_json::Object;

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

/// A shadow's JSON, the byte range of each present section in it, and of each section's top-level
/// entries (`"key":value`, relative to the section's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    json: String,
    parts: [Option<Range<usize>>; 4],
    entries: [Vec<Range<usize>>; 4],
    /// The shadow's delta, when the service worked it out with the snapshot.
    delta: Option<Delta>,
}

/// One section's JSON (state or metadata) and its top-level entries' spans within it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartText<'a> {
    /// The object's JSON.
    pub(crate) json: &'a [u8],
    /// Each `"key":value`, relative to the object's start.
    pub(crate) entries: &'a [Range<usize>],
}

/// How much of a section (state and metadata) a new snapshot copies rather than serializes.
#[derive(Debug, Clone, Default)]
pub(crate) enum Reuse<'u> {
    /// Nothing: serialize it afresh.
    #[default]
    Nothing,
    /// All of it, from this text (the section did not change since the previous snapshot, or it
    /// is now exactly what the request wrote).
    Copy {
        state: PartText<'u>,
        metadata: PartText<'u>,
    },
    /// The previous snapshot's top-level entries the update did not touch.
    Entries(&'u Untouched<'u>),
}

/// An update that names only a few top-level keys of a section, and which of the section's
/// entries it leaves alone, noted before it is applied. Those entries keep their values and their
/// order (merging only changes, removes or appends the keys it names), so after the update the
/// n-th untouched entry is the n-th one noted here.
#[derive(Debug, Clone)]
pub(crate) struct Untouched<'u> {
    update: &'u Object<'u>,
    state: Vec<bool>,
    metadata: Vec<bool>,
}

impl<'u> Untouched<'u> {
    /// Updates naming more keys than this are serialized afresh (most entries change anyway).
    pub(crate) const MAX_KEYS: usize = 8;

    /// Note which entries of `state` and `metadata` `update` leaves alone.
    pub(crate) fn before(
        update: &'u Object<'u>,
        state: Option<&Map<String, Value>>,
        metadata: Option<&Metadata>,
    ) -> Untouched<'u> {
        let touches = |key: &str| update.iter().any(|(k, _)| k == key);
        Untouched {
            update,
            state: state
                .map(|s| s.keys().map(|k| !touches(k)).collect())
                .unwrap_or_default(),
            metadata: metadata
                .and_then(Metadata::as_object)
                .map(|m| m.iter().map(|(k, _)| !touches(k)).collect())
                .unwrap_or_default(),
        }
    }

    fn touches(&self, key: &str) -> bool {
        self.update.iter().any(|(k, _)| k == key)
    }

    /// Per entry of the state section before the update, whether the update left it alone.
    pub(crate) fn state(&self) -> &[bool] {
        &self.state
    }
}

impl Snapshot {
    /// Serialize `shadow`.
    pub(crate) fn of(shadow: &StoredShadow) -> Snapshot {
        Snapshot::build(shadow, None, &Reuse::Nothing, &Reuse::Nothing)
    }

    /// Serialize `shadow`, copying what `desired` and `reported` say may be copied; `previous`
    /// is the snapshot of the same shadow before the change.
    pub(crate) fn build(
        shadow: &StoredShadow,
        previous: Option<&Snapshot>,
        desired: &Reuse<'_>,
        reported: &Reuse<'_>,
    ) -> Snapshot {
        let capacity = previous.map_or(256, |p| p.json.len() + 64);
        let mut out = Builder {
            json: Vec::with_capacity(capacity),
            parts: Default::default(),
            entries: Default::default(),
        };
        let mut text = TimestampText::default();
        out.json.extend_from_slice(b"{\"state\":{");
        let mut first = true;
        for (part, name, section, reuse) in [
            (Part::Desired, "desired", shadow.desired.as_ref(), desired),
            (
                Part::Reported,
                "reported",
                shadow.reported.as_ref(),
                reported,
            ),
        ] {
            let Some(section) = section else { continue };
            out.open_part(&mut first, name);
            let source = match reuse {
                Reuse::Nothing => Source::Nothing,
                Reuse::Copy { state, .. } => Source::Copy(*state),
                Reuse::Entries(untouched) => {
                    Source::from_previous(previous, part, untouched, &untouched.state)
                }
            };
            out.write_part(part, source, section.iter(), |json, value| {
                write_value(json, value)
            });
        }
        out.json.extend_from_slice(b"},\"metadata\":{");
        let mut first = true;
        for (part, name, meta, reuse) in [
            (
                Part::DesiredMetadata,
                "desired",
                shadow.desired_metadata.as_ref(),
                desired,
            ),
            (
                Part::ReportedMetadata,
                "reported",
                shadow.reported_metadata.as_ref(),
                reported,
            ),
        ] {
            let Some(meta) = meta else { continue };
            out.open_part(&mut first, name);
            let Some(entries) = meta.as_object() else {
                // Not an object's metadata (never written so): no entries to track.
                let start = out.json.len();
                meta.write_json(&mut out.json, &mut text);
                out.set_part(part, start, Vec::new());
                continue;
            };
            let source = match reuse {
                Reuse::Nothing => Source::Nothing,
                Reuse::Copy { metadata, .. } => Source::Copy(*metadata),
                Reuse::Entries(untouched) => {
                    Source::from_previous(previous, part, untouched, &untouched.metadata)
                }
            };
            let pairs = entries.iter().map(|(k, m)| (k, m));
            out.write_part(part, source, pairs, |json, m| m.write_json(json, &mut text));
        }
        out.json.extend_from_slice(b"},\"version\":");
        write_value(&mut out.json, &shadow.version);
        out.json.push(b'}');
        Snapshot {
            // Checked once here, so everything built from it is text without another check.
            json: into_string(out.json),
            parts: out.parts,
            entries: out.entries,
            delta: None,
        }
    }

    /// The shadow's delta, if kept.
    pub(crate) fn delta(&self) -> Option<&Delta> {
        self.delta.as_ref()
    }

    /// Keep the shadow's delta with its snapshot.
    pub(crate) fn set_delta(&mut self, delta: Delta) {
        self.delta = Some(delta);
    }

    /// One section's text, to copy into a later snapshot.
    pub(crate) fn text(&self, part: Part) -> Option<PartText<'_>> {
        Some(PartText {
            json: self.part(part)?,
            entries: self.entries.get(part.index())?,
        })
    }

    /// The whole JSON.
    pub(crate) fn json(&self) -> &str {
        &self.json
    }

    /// One section's JSON, if the shadow has that section.
    pub(crate) fn part(&self, part: Part) -> Option<&[u8]> {
        let range = self.parts.get(part.index())?.clone()?;
        self.json.as_bytes().get(range)
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
        let open = self.json.strip_suffix('}').unwrap_or(&self.json);
        let mut json = String::with_capacity(self.json.len() + 48);
        json.push_str(open);
        json.push_str(",\"timestamp\":");
        json.push_str(&shadow.timestamp.to_string());
        if let Some(at) = shadow.deleted_at {
            json.push_str(",\"deletedAt\":");
            json.push_str(&at.to_string());
        }
        json.push('}');
        json
    }
}

/// A snapshot being written.
struct Builder {
    json: Vec<u8>,
    parts: [Option<Range<usize>>; 4],
    entries: [Vec<Range<usize>>; 4],
}

/// Where a part being written may copy from.
enum Source<'a> {
    Nothing,
    /// The whole part.
    Copy(PartText<'a>),
    /// The previous part's entries flagged untouched, in order, for the entries `untouched`
    /// does not name.
    Entries(PartText<'a>, &'a Untouched<'a>, &'a [bool]),
}

impl<'a> Source<'a> {
    fn from_previous(
        previous: Option<&'a Snapshot>,
        part: Part,
        untouched: &'a Untouched<'a>,
        kept: &'a [bool],
    ) -> Source<'a> {
        match previous.and_then(|p| p.text(part)) {
            Some(text) => Source::Entries(text, untouched, kept),
            None => Source::Nothing,
        }
    }
}

impl Builder {
    /// `,"name":` (no comma for the first part).
    fn open_part(&mut self, first: &mut bool, name: &str) {
        if !*first {
            self.json.push(b',');
        }
        *first = false;
        write_key(&mut self.json, name);
    }

    fn set_part(&mut self, part: Part, start: usize, entries: Vec<Range<usize>>) {
        let end = self.json.len();
        if let Some(slot) = self.parts.get_mut(part.index()) {
            *slot = Some(start..end);
        }
        if let Some(slot) = self.entries.get_mut(part.index()) {
            *slot = entries;
        }
    }

    /// Write one part, an object whose entries are `entries`, copying what `source` allows.
    fn write_part<'e, V>(
        &mut self,
        part: Part,
        source: Source<'_>,
        entries: impl Iterator<Item = (&'e String, V)>,
        mut write: impl FnMut(&mut Vec<u8>, V),
    ) {
        let start = self.json.len();
        if let Source::Copy(text) = source {
            self.json.extend_from_slice(text.json);
            self.set_part(part, start, text.entries.to_vec());
            return;
        }
        // Untouched previous entries, in order, to copy.
        let (mut copies, untouched) = match source {
            Source::Entries(text, untouched, kept) => {
                let copies = text
                    .entries
                    .iter()
                    .zip(kept.iter())
                    .filter(|(_, kept)| **kept)
                    .filter_map(move |(r, _)| text.json.get(r.clone()));
                (Some(copies), Some(untouched))
            }
            _ => (None, None),
        };
        let mut spans = Vec::new();
        self.json.push(b'{');
        for (n, (key, value)) in entries.enumerate() {
            if n > 0 {
                self.json.push(b',');
            }
            let entry_start = self.json.len();
            let copy = match (&mut copies, untouched) {
                (Some(copies), Some(untouched)) if !untouched.touches(key) => copies.next(),
                _ => None,
            };
            match copy {
                Some(bytes) => self.json.extend_from_slice(bytes),
                None => {
                    write_key(&mut self.json, key);
                    write(&mut self.json, value);
                }
            }
            spans.push(entry_start - start..self.json.len() - start);
        }
        self.json.push(b'}');
        self.set_part(part, start, spans);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::merge::merge_request;
    use crate::metadata::merge_metadata;
    use crate::request_json::object_of;

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
            assert_eq!(snapshot.json().as_bytes(), plain(&s).as_slice());
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
        let same = Reuse::Copy {
            state: previous.text(Part::Desired).unwrap(),
            metadata: previous.text(Part::DesiredMetadata).unwrap(),
        };
        let next = Snapshot::build(&after, Some(&previous), &same, &Reuse::Nothing);
        assert_eq!(next.json().as_bytes(), plain(&after).as_slice());
        assert_eq!(next, Snapshot::of(&after));
    }

    /// Apply `update` to the reported section of `before` the way the service does, building the
    /// new snapshot from the previous one's untouched entries.
    fn reported_update(before: &StoredShadow, update: &Value) -> (StoredShadow, Snapshot) {
        let previous = Snapshot::of(before);
        let update = object_of(update);
        let untouched = Untouched::before(
            &update,
            before.reported.as_ref(),
            before.reported_metadata.as_ref(),
        );
        let mut after = before.clone();
        after.version += 1;
        let state = after.reported.get_or_insert_with(Map::new);
        if let Some(Metadata::Object(meta)) = &mut after.reported_metadata {
            merge_metadata(meta, Some(state), &update, 6);
        }
        merge_request(state, &update);
        let reuse = Reuse::Entries(&untouched);
        let same = Reuse::Copy {
            state: previous.text(Part::Desired).unwrap(),
            metadata: previous.text(Part::DesiredMetadata).unwrap(),
        };
        let next = Snapshot::build(&after, Some(&previous), &same, &reuse);
        (after, next)
    }

    #[test]
    fn untouched_entries_are_copied_and_the_rest_written() {
        let before = shadow(
            json!({"desired": {"a": 1}, "reported": {"a": 1, "b": {"c": 2}, "d": [1], "e": "x"}}),
            1,
        );
        for update in [
            json!({"b": {"c": 3}}),
            json!({"a": null}),
            json!({"new": true, "d": null}),
            json!({"e": {"f": 1}, "a": 2}),
            json!({"zz": null}),
            json!({}),
        ] {
            let (after, next) = reported_update(&before, &update);
            assert_eq!(next.json().as_bytes(), plain(&after).as_slice(), "{update}");
            assert_eq!(next, Snapshot::of(&after), "{update}");
        }
    }

    #[test]
    fn durable_json_is_to_json() {
        let mut s = shadow(json!({"desired": {"a": [1, 2]}}), 4);
        assert_eq!(Snapshot::of(&s).durable_json(&s), s.to_json());
        s.deleted_at = Some(9);
        assert_eq!(Snapshot::of(&s).durable_json(&s), s.to_json());
    }
}
