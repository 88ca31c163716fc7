//! An accepted update, applied to the stored shadow in place, and its answers written once.
//!
//! The stored shadow is changed where it lies when the result is sure to fit the size limit
//! (a merged section is never larger, serialized, than the old section plus the update's); only
//! otherwise is it copied first, so a refused update leaves it as it was. The new state is
//! serialized once (sections the update leaves alone are copied from the last snapshot) and that
//! one serialization is the `current` document, the next update's `previous`, the size check and
//! the durable form.

use serde_json::{Map, Value};

use crate::delta_document::delta_json;
use crate::document::StoredShadow;
use crate::entry::{ShadowEntry, ShadowSlot};
use crate::error::ShadowError;
use crate::json_writer::{ObjectWriter, TimestampText, into_string, write_key, write_value};
use crate::merge::merge_request;
use crate::metadata::{Metadata, merge_metadata, write_written};
use crate::request::{Section, UpdateRequest};
use crate::request_json::Object;
use crate::service::ShadowLimits;
use crate::snapshot::{Part, Reuse, Snapshot, Untouched};

/// The `update/accepted` document up to its version, `{"state":…,"metadata":…`, and the
/// serialized sizes of the request's sections, which bound the new state's size.
#[derive(Debug)]
pub(crate) struct AcceptedStart {
    json: Vec<u8>,
    desired_len: usize,
    reported_len: usize,
}

impl AcceptedStart {
    /// Write the request's state and the metadata of everything in it, all stamped `now`.
    pub(crate) fn new(state: &Object<'_>, now: u64, payload_len: usize) -> AcceptedStart {
        // The state is about the payload's size, and its metadata a few times that.
        let mut json = Vec::with_capacity(64 + 4 * payload_len);
        json.extend_from_slice(b"{\"state\":{");
        let (mut desired_len, mut reported_len) = (0, 0);
        for (n, (key, value)) in state.iter().enumerate() {
            if n > 0 {
                json.push(b',');
            }
            write_key(&mut json, key);
            let start = json.len();
            value.write(&mut json);
            let len = json.len() - start;
            match key.as_ref() {
                "desired" => desired_len = len,
                "reported" => reported_len = len,
                _ => {}
            }
        }
        json.extend_from_slice(b"},\"metadata\":");
        write_written(state, now, &mut json, &mut TimestampText::default());
        AcceptedStart {
            json,
            desired_len,
            reported_len,
        }
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

/// What an accepted update leaves to publish besides `update/accepted`.
#[derive(Debug)]
pub(crate) struct Written {
    /// The new version.
    pub(crate) version: u64,
    /// The `update/delta` payload, if the delta is not empty.
    pub(crate) delta: Option<String>,
    /// The `update/documents` payload.
    pub(crate) documents: String,
}

/// The parts of an update that do not depend on the stored shadow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpdateContext<'a> {
    pub(crate) request: &'a UpdateRequest<'a>,
    pub(crate) accepted: &'a AcceptedStart,
    pub(crate) limits: &'a ShadowLimits,
    /// Epoch seconds.
    pub(crate) now: u64,
}

/// Apply the update to the shadow in `slot`.
pub(crate) fn update_slot(
    slot: &mut ShadowSlot<'_>,
    cx: UpdateContext<'_>,
) -> Result<Written, ShadowError> {
    // What is stored: a live shadow, a tombstone (whose version a new shadow continues), or nothing.
    let (live, base_version) = match slot.get().map(ShadowEntry::shadow) {
        Some(s) if s.is_deleted() => {
            let expired = s
                .deleted_at
                .is_some_and(|at| cx.now.saturating_sub(at) >= cx.limits.tombstone_seconds);
            let version = s.version;
            if expired {
                slot.set(None);
                (false, None)
            } else {
                (false, Some(version))
            }
        }
        Some(s) => (true, Some(s.version)),
        None => (false, None),
    };
    let base = base_version.unwrap_or(0);
    if cx.request.version.is_some_and(|v| v != base) {
        return Err(ShadowError::VersionConflict);
    }
    let version = base.saturating_add(1);
    if !live {
        let mut shadow = StoredShadow::default();
        let (snapshot, written) = apply(&mut shadow, None, version, cx)?;
        slot.set(Some(ShadowEntry::with_snapshot(shadow, snapshot)));
        return Ok(written);
    }
    let fresh = match slot.get() {
        Some(entry) if entry.snapshot().is_none() => Some(Snapshot::of(entry.shadow())),
        _ => None,
    };
    let previous_len = fresh
        .as_ref()
        .or_else(|| slot.get().and_then(ShadowEntry::snapshot))
        .map_or(0, |p| bound(p, cx));
    if previous_len <= cx.limits.max_state_bytes {
        // Sure to fit: change the stored shadow where it lies.
        let Some(entry) = slot.get_mut() else {
            return Err(ShadowError::Internal);
        };
        let (shadow, kept) = entry.open();
        let previous = fresh.or(kept);
        let (snapshot, written) = apply(shadow, previous.as_ref(), version, cx)?;
        entry.set_snapshot(snapshot);
        Ok(written)
    } else {
        // Might not fit: work on a copy, and keep it only if it does.
        let Some(entry) = slot.get() else {
            return Err(ShadowError::Internal);
        };
        let mut shadow = entry.shadow().clone();
        let previous = fresh.or_else(|| entry.snapshot().cloned());
        let (snapshot, written) = apply(&mut shadow, previous.as_ref(), version, cx)?;
        slot.set(Some(ShadowEntry::with_snapshot(shadow, snapshot)));
        Ok(written)
    }
}

/// The most the state can take serialized after the update: per section, what it took before plus
/// what the update's section takes (nothing for a cleared section).
fn bound(previous: &Snapshot, cx: UpdateContext<'_>) -> usize {
    let section = |section: Section<'_>, part: Part, update_len: usize| match section {
        Section::Absent => previous.part_len(part),
        Section::Clear => 0,
        Section::Merge(_) => previous.part_len(part) + update_len,
    };
    section(cx.request.desired(), Part::Desired, cx.accepted.desired_len)
        + section(
            cx.request.reported(),
            Part::Reported,
            cx.accepted.reported_len,
        )
}

/// Apply the update to `shadow` (whose snapshot is `previous`, if it existed), making it
/// `version`: merge, stamp, serialize, check the size, and write the delta and documents payloads.
/// On a size refusal `shadow` has been changed; callers pass a shadow they can drop then.
fn apply<'a>(
    shadow: &mut StoredShadow,
    previous: Option<&Snapshot>,
    version: u64,
    cx: UpdateContext<'a>,
) -> Result<(Snapshot, Written), ShadowError> {
    let desired = cx.request.desired();
    let reported = cx.request.reported();
    // What the new snapshot can copy from the previous one, noted before anything changes.
    let reuse =
        |section: Section<'a>, state: Option<&Map<String, Value>>, meta: Option<&Metadata>| {
            match section {
                _ if previous.is_none() => Reuse::Nothing,
                Section::Absent => Reuse::Whole,
                Section::Merge(update) if update.len() <= Untouched::MAX_KEYS => {
                    Reuse::Entries(Untouched::before(update, state, meta))
                }
                _ => Reuse::Nothing,
            }
        };
    let reuse_desired = reuse(
        desired,
        shadow.desired.as_ref(),
        shadow.desired_metadata.as_ref(),
    );
    let reuse_reported = reuse(
        reported,
        shadow.reported.as_ref(),
        shadow.reported_metadata.as_ref(),
    );
    apply_section(
        &mut shadow.desired,
        &mut shadow.desired_metadata,
        desired,
        cx.now,
    );
    apply_section(
        &mut shadow.reported,
        &mut shadow.reported_metadata,
        reported,
        cx.now,
    );
    shadow.version = version;
    shadow.timestamp = cx.now;
    shadow.deleted_at = None;
    let snapshot = Snapshot::build(shadow, previous, &reuse_desired, &reuse_reported);
    if snapshot.state_len() > cx.limits.max_state_bytes {
        return Err(ShadowError::PayloadTooLarge);
    }
    let token = cx.request.client_token.as_deref();
    let delta = shadow.desired.as_ref().and_then(|d| {
        let delta = delta_json(
            d,
            shadow.reported.as_ref(),
            shadow.desired_metadata.as_ref(),
        )?;
        let mut doc = ObjectWriter::new();
        doc.field("version", &shadow.version)
            .field("timestamp", &cx.now)
            .raw("state", &delta.state)
            .raw("metadata", &delta.metadata)
            .optional("clientToken", token);
        Some(doc.finish_string())
    });
    let documents = documents(previous, &snapshot, cx.now, token);
    let written = Written {
        version: shadow.version,
        delta,
        documents,
    };
    Ok((snapshot, written))
}

/// The `update/documents` payload: `{"previous":…,"current":…,"timestamp":T,"clientToken":…}`,
/// put together from the snapshots' text.
fn documents(
    previous: Option<&Snapshot>,
    current: &Snapshot,
    now: u64,
    token: Option<&str>,
) -> String {
    let previous_len = previous.map_or(0, |p| p.json().len());
    let mut doc = String::with_capacity(previous_len + current.json().len() + 128);
    doc.push('{');
    if let Some(previous) = previous {
        doc.push_str("\"previous\":");
        doc.push_str(previous.json());
        doc.push(',');
    }
    doc.push_str("\"current\":");
    doc.push_str(current.json());
    doc.push_str(",\"timestamp\":");
    doc.push_str(&now.to_string());
    if let Some(token) = token {
        doc.push_str(",\"clientToken\":");
        doc.push_str(&serde_json::to_string(token).unwrap_or_default());
    }
    doc.push('}');
    doc
}

/// Apply one section of an update to the section and its metadata (both `None` when empty).
fn apply_section(
    state: &mut Option<Map<String, Value>>,
    meta: &mut Option<Metadata>,
    update: Section<'_>,
    now: u64,
) {
    match update {
        Section::Absent => {}
        Section::Clear => {
            *state = None;
            *meta = None;
        }
        Section::Merge(fields) => {
            let section = state.get_or_insert_with(Map::new);
            if !matches!(meta, Some(Metadata::Object(_))) {
                *meta = Some(Metadata::Object(Vec::new()));
            }
            if let Some(Metadata::Object(entries)) = meta {
                merge_metadata(entries, Some(section), fields, now);
            }
            merge_request(section, fields);
            if section.is_empty() {
                *state = None;
                *meta = None;
            }
        }
    }
}
