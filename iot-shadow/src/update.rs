//! An accepted update, applied to the stored shadow in place, and its answers written once.
//!
//! The stored shadow is changed where it lies when the result is sure to fit the size limit
//! (a merged section is never larger, serialized, than the old section plus the update's); only
//! otherwise is it copied first, so a refused update leaves it as it was.
//!
//! The new state is serialized once, and that one serialization is the `current` document, the
//! next update's `previous`, the size check and the durable form. Little of it is serialized
//! afresh: a section the update leaves alone is copied from the last snapshot, a section it
//! replaces exactly (a device resending its whole state) from the accepted document, and of a
//! section it changes in a few keys only those entries are written. The delta likewise keeps the
//! entries of the top-level keys the update did not write.

use serde_json::{Map, Value};

use crate::accepted::AcceptedStart;
use crate::delta_document::{Delta, DeltaReuse, delta_of};
use crate::document::StoredShadow;
use crate::entry::{ShadowEntry, ShadowSlot};
use crate::error::ShadowError;
use crate::json_writer::ObjectWriter;
use crate::merge::merge_request;
use crate::metadata::{Metadata, merge_metadata};
use crate::request::{Section, UpdateRequest};
use crate::request_json::Object;
use crate::service::ShadowLimits;
use crate::snapshot::{Part, PartText, Reuse, Snapshot, Untouched};

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
    let most = fresh
        .as_ref()
        .or_else(|| slot.get().and_then(ShadowEntry::snapshot))
        .map_or(0, |p| bound(p, cx));
    if most <= cx.limits.max_state_bytes {
        // Sure to fit: change the stored shadow where it lies (the size check in `apply` cannot
        // refuse it then).
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
    section(
        cx.request.desired(),
        Part::Desired,
        cx.accepted.section_len(true),
    ) + section(
        cx.request.reported(),
        Part::Reported,
        cx.accepted.section_len(false),
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
    // Which entries of each section a small update leaves alone, noted before anything changes.
    let untouched = |section: Section<'a>,
                     state: Option<&Map<String, Value>>,
                     meta: Option<&Metadata>| match section {
        Section::Merge(update) if update.len() <= Untouched::MAX_KEYS && previous.is_some() => {
            Some(Untouched::before(update, state, meta))
        }
        _ => None,
    };
    let desired_untouched = untouched(
        desired,
        shadow.desired.as_ref(),
        shadow.desired_metadata.as_ref(),
    );
    let reported_untouched = untouched(
        reported,
        shadow.reported.as_ref(),
        shadow.reported_metadata.as_ref(),
    );
    let desired_exact = apply_section(
        &mut shadow.desired,
        &mut shadow.desired_metadata,
        desired,
        cx.now,
    );
    let reported_exact = apply_section(
        &mut shadow.reported,
        &mut shadow.reported_metadata,
        reported,
        cx.now,
    );
    shadow.version = version;
    shadow.timestamp = cx.now;
    shadow.deleted_at = None;
    // What the new snapshot copies: an unchanged section from the previous one, a section the
    // update replaced exactly from the request as the accepted document wrote it, the untouched
    // entries of a section a small update changed.
    let reuse_desired = reuse_for(
        desired,
        (Part::Desired, Part::DesiredMetadata),
        desired_exact.then(|| cx.accepted.texts(true)).flatten(),
        previous,
        desired_untouched.as_ref(),
    );
    let reuse_reported = reuse_for(
        reported,
        (Part::Reported, Part::ReportedMetadata),
        reported_exact.then(|| cx.accepted.texts(false)).flatten(),
        previous,
        reported_untouched.as_ref(),
    );
    let mut snapshot = Snapshot::build(shadow, previous, &reuse_desired, &reuse_reported);
    if snapshot.state_len() > cx.limits.max_state_bytes {
        return Err(ShadowError::PayloadTooLarge);
    }
    // The delta: entries of top-level keys this update did not write hold as they were.
    let delta_reuse = previous.and_then(Snapshot::delta).and_then(|previous| {
        Some(DeltaReuse {
            previous,
            kept: match desired {
                Section::Absent => None,
                _ => Some(desired_untouched.as_ref()?.state()),
            },
            written: [
                written_keys(desired, desired_untouched.as_ref())?,
                written_keys(reported, reported_untouched.as_ref())?,
            ],
        })
    });
    let delta = match &shadow.desired {
        Some(d) => delta_of(
            d,
            shadow.reported.as_ref(),
            shadow.desired_metadata.as_ref(),
            delta_reuse,
        ),
        None => Delta::default(),
    };
    let token = cx.request.client_token.as_deref();
    let delta_message = (!delta.is_empty()).then(|| {
        let mut doc = ObjectWriter::new();
        doc.field("version", &shadow.version)
            .field("timestamp", &cx.now)
            .raw("state", delta.state())
            .raw("metadata", delta.metadata())
            .optional("clientToken", token);
        doc.finish_string()
    });
    snapshot.set_delta(delta);
    let documents = documents(previous, &snapshot, cx.now, token);
    let written = Written {
        version: shadow.version,
        delta: delta_message,
        documents,
    };
    Ok((snapshot, written))
}

/// What a new snapshot copies of a section: all of it from the request, as the accepted document
/// wrote it, when the update replaced it exactly (`replaced`); all of it from the previous
/// snapshot when the update left it alone; the entries a small update did not touch; else nothing.
fn reuse_for<'r>(
    section: Section<'r>,
    parts: (Part, Part),
    replaced: Option<(PartText<'r>, PartText<'r>)>,
    previous: Option<&'r Snapshot>,
    untouched: Option<&'r Untouched<'r>>,
) -> Reuse<'r> {
    if let Some((state, metadata)) = replaced {
        return Reuse::Copy { state, metadata };
    }
    match (section, previous, untouched) {
        (Section::Absent, Some(previous), _) => {
            match (previous.text(parts.0), previous.text(parts.1)) {
                (Some(state), Some(metadata)) => Reuse::Copy { state, metadata },
                _ => Reuse::Nothing,
            }
        }
        (_, _, Some(untouched)) => Reuse::Entries(untouched),
        _ => Reuse::Nothing,
    }
}

/// The top-level keys an update wrote in a section, for reusing the delta: `Some(None)` for
/// none, `None` when the update changed more than a few keys or cleared the section (the delta is
/// then worked out whole).
fn written_keys<'r>(
    section: Section<'r>,
    untouched: Option<&Untouched<'_>>,
) -> Option<Option<&'r Object<'r>>> {
    match section {
        Section::Absent => Some(None),
        Section::Merge(update) => untouched.map(|_| Some(update)),
        Section::Clear => None,
    }
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
/// Returns whether the section is now exactly the update's object, state and metadata.
fn apply_section(
    state: &mut Option<Map<String, Value>>,
    meta: &mut Option<Metadata>,
    update: Section<'_>,
    now: u64,
) -> bool {
    match update {
        Section::Absent => false,
        Section::Clear => {
            *state = None;
            *meta = None;
            false
        }
        Section::Merge(fields) => {
            let section = state.get_or_insert_with(Map::new);
            if !matches!(meta, Some(Metadata::Object(_))) {
                *meta = Some(Metadata::Object(Vec::new()));
            }
            let meta_exact = match meta {
                Some(Metadata::Object(entries)) => {
                    merge_metadata(entries, Some(section), fields, now)
                }
                _ => false,
            };
            let state_exact = merge_request(section, fields);
            if section.is_empty() {
                *state = None;
                *meta = None;
                return false;
            }
            meta_exact && state_exact
        }
    }
}
