//! The `update/accepted` document, written once from the request, and where the request's
//! sections lie in it: their sizes bound the new state's, and a section an update replaces
//! exactly is copied from here into the shadow's snapshot.

use std::ops::Range;

use crate::json_writer::{TimestampText, into_string, write_key, write_value};
use crate::metadata::write_written_value;
use crate::request_json::{Json, Object};
use crate::snapshot::PartText;

/// The `update/accepted` document up to its version, `{"state":…,"metadata":…`, and where each
/// request section (an object) lies in it: their sizes bound the new state's size, and a section
/// the update replaces exactly is copied from here into the new snapshot.
#[derive(Debug)]
pub(crate) struct AcceptedStart {
    json: Vec<u8>,
    desired: Option<SectionText>,
    reported: Option<SectionText>,
}

/// A request section's state and metadata in the accepted document, with their top-level entries.
#[derive(Debug, Default)]
struct SectionText {
    state: Range<usize>,
    state_entries: Vec<Range<usize>>,
    metadata: Range<usize>,
    metadata_entries: Vec<Range<usize>>,
}

impl AcceptedStart {
    /// Write the request's state and the metadata of everything in it, all stamped `now`.
    pub(crate) fn new(state: &Object<'_>, now: u64, payload_len: usize) -> AcceptedStart {
        // The state is about the payload's size, and its metadata a few times that.
        let mut json = Vec::with_capacity(64 + 4 * payload_len);
        let mut texts: [SectionText; 2] = Default::default();
        let mut text = TimestampText::default();
        let slot = |key: &str| match key {
            "desired" => Some(0),
            "reported" => Some(1),
            _ => None,
        };
        json.extend_from_slice(b"{\"state\":{");
        for (n, (key, value)) in state.iter().enumerate() {
            if n > 0 {
                json.push(b',');
            }
            write_key(&mut json, key);
            match (value, slot(key).and_then(|i| texts.get_mut(i))) {
                (Json::Object(entries), Some(section)) => {
                    let (range, spans) = write_entries(&mut json, entries, |json, v| v.write(json));
                    section.state = range;
                    section.state_entries = spans;
                }
                _ => value.write(&mut json),
            }
        }
        json.extend_from_slice(b"},\"metadata\":{");
        for (n, (key, value)) in state.iter().enumerate() {
            if n > 0 {
                json.push(b',');
            }
            write_key(&mut json, key);
            match (value, slot(key).and_then(|i| texts.get_mut(i))) {
                (Json::Object(entries), Some(section)) => {
                    let (range, spans) = write_entries(&mut json, entries, |json, v| {
                        write_written_value(v, now, json, &mut text)
                    });
                    section.metadata = range;
                    section.metadata_entries = spans;
                }
                _ => write_written_value(value, now, &mut json, &mut text),
            }
        }
        json.push(b'}');
        let [desired, reported] = texts;
        let present = |s: SectionText| (!s.state.is_empty()).then_some(s);
        AcceptedStart {
            json,
            desired: present(desired),
            reported: present(reported),
        }
    }

    /// Serialized bytes of the request's `desired` (`desired: false`: `reported`) object, 0 if
    /// it has none.
    pub(crate) fn section_len(&self, desired: bool) -> usize {
        let section = if desired {
            &self.desired
        } else {
            &self.reported
        };
        section.as_ref().map_or(0, |s| s.state.len())
    }

    /// A request section's state and metadata text, to copy into a snapshot.
    pub(crate) fn texts(&self, desired: bool) -> Option<(PartText<'_>, PartText<'_>)> {
        let section = if desired {
            &self.desired
        } else {
            &self.reported
        };
        let section = section.as_ref()?;
        Some((
            PartText {
                json: self.json.get(section.state.clone())?,
                entries: &section.state_entries,
            },
            PartText {
                json: self.json.get(section.metadata.clone())?,
                entries: &section.metadata_entries,
            },
        ))
    }

    /// The whole document.
    pub(crate) fn finish(mut self, version: u64, now: u64, token: Option<&str>) -> String {
        self.json.extend_from_slice(b",\"version\":");
        write_value(&mut self.json, &version);
        self.json.extend_from_slice(b",\"timestamp\":");
        write_value(&mut self.json, &now);
        if let Some(token) = token {
            self.json.push(b',');
            write_key(&mut self.json, "clientToken");
            write_value(&mut self.json, token);
        }
        self.json.push(b'}');
        into_string(self.json)
    }
}

/// Write an object entry by entry: its range in `json` and each entry's span relative to it.
fn write_entries<'j, 'a: 'j>(
    json: &mut Vec<u8>,
    entries: &'j Object<'a>,
    mut write: impl FnMut(&mut Vec<u8>, &'j Json<'a>),
) -> (Range<usize>, Vec<Range<usize>>) {
    let start = json.len();
    let mut spans = Vec::with_capacity(entries.len());
    json.push(b'{');
    for (n, (key, value)) in entries.iter().enumerate() {
        if n > 0 {
            json.push(b',');
        }
        let entry = json.len();
        write_key(json, key);
        write(json, value);
        spans.push(entry - start..json.len() - start);
    }
    json.push(b'}');
    (start..json.len(), spans)
}
