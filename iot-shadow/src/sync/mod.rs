//! Shadow sync for an edge core: keeps the shadows of a local [`ShadowService`](crate::ShadowService)
//! and their twins in AWS IoT Core in step, over the cloud's MQTT shadow topics, with Greengrass's
//! directions, strategies and conflict rule, decided by versions and never by clocks.
//!
//! [`ShadowSync`] is sans-IO: the caller hands in local changes, cloud messages, connects and the
//! time, and carries out the [`SyncAction`]s it hands back.
//!
//! # The rule
//!
//! This is the contract users rely on.
//!
//! - **Record.** Per shadow the engine keeps a [`SyncRecord`]: the state both sides had at the
//!   last sync (`base`: `desired` and `reported`, or none), the local and the cloud version then,
//!   and whether the shadow was deleted then. The caller persists it ([`SyncAction::SaveRecord`],
//!   [`SyncRecord::to_json`]) and hands it back after a restart.
//! - **What changed.** A side changed if it gained or lost its shadow, or its version moved from
//!   the record's. Changes are computed leaf by leaf as a diff against `base`: objects key by key,
//!   arrays compared whole, a missing key (`null`) is a deleted leaf. Metadata and timestamps are
//!   not synced: each side stamps its own.
//! - **Merge** ([`three_way_merge`]), per leaf: changed on one side only → that side's value;
//!   changed on both to the same value → that value, no conflict; changed on both to different
//!   values → with [`Direction::BetweenDeviceAndCloud`], `desired` takes the cloud's value and
//!   `reported` the local one (Greengrass's rule). With [`Direction::DeviceToCloud`] the cloud
//!   becomes a copy of the local shadow (cloud changes are overwritten, never brought down, and
//!   do not start a sync); [`Direction::CloudToDevice`] is the reverse. Every discarded change is
//!   a [`Conflict`] (path, both values, who won), counted and drained with
//!   [`ShadowSync::conflicts`]: nothing is lost silently.
//! - **Deletes.** Deleted on one side and unchanged on the other since the record → deleted on
//!   the other side too. Deleted on one side and changed on the other → the change wins: the
//!   shadow is re-created on the deleting side with the changed side's state (a conflict with
//!   path `""`). A deletion is a state compared by versions, not an event replayed, so an old
//!   tombstone cannot delete a re-created shadow; another client's `delete/accepted` whose
//!   version is older than the cloud version known is ignored as stale. A cloud `delete` takes no
//!   version: if the cloud changed in between (the `delete/accepted` names another version than
//!   the one merged), the lost state, when an `update/documents` told it, is put back on both
//!   sides (one-way directions: logged only).
//! - **No cloud shadow.** A `get` answered 404: if the local shadow has state it is created in the
//!   cloud; if neither side has one, nothing happens. One-way directions leave the other side
//!   alone while the source side has no shadow and had none at the last sync.
//! - **Versions, not wall clocks.** A cloud update carries `"version"`: the cloud version the
//!   merge saw (an optimistic lock; none when creating). `update/rejected` 409 means the cloud
//!   moved: the engine fetches it (`get`) and merges again. Retries are counted and bounded: the
//!   first goes at once (it fetches new information), later ones back off
//!   ([`SyncConfig::retry_backoff_ms`] doubling), and after [`SyncConfig::max_retries`] in a row
//!   the shadow is parked until something new happens to it. 429 and 5xx are retried the same
//!   way; other refusals (400, 403, 413) park it at once, as a [`Rejection`].
//! - **Writes, local first.** Both sides are brought to the merged state with only the fields
//!   that differ (`null` for deleted ones). The local side is written first
//!   ([`SyncAction::LocalUpdate`], carrying the local version so a device's write that slipped in
//!   makes it fail rather than be overwritten), then the cloud. The caller applies a local write
//!   at once and calls [`ShadowSync::local_applied`] before anything else touches that shadow: the
//!   engine knows its own writes by their content, records their version, and does not take them
//!   for device changes.
//! - **One request in flight per shadow**, paired with its answer by `clientToken`. Changes made
//!   meanwhile (on either side) are merged into the next request, not queued one by one.
//! - **Connects.** On [`ShadowSync::cloud_connected`], a full sync: every shadow's cloud state is
//!   fetched with a `get`, within [`SyncConfig::max_outbound_per_second`] (100 by default), and
//!   merged; shadows that changed on neither side cost that `get` and nothing more. Then, with
//!   [`Strategy::RealTime`], every local change and every cloud `update/documents` starts a sync;
//!   with [`Strategy::Periodic`], changes are collected and synced on the period.
//!   [`ShadowSync::cloud_lost`] abandons the requests in flight; they are redone after the next
//!   connect.
//!
//! # Crash safety
//!
//! Records are saved only at points where they are true: after the sync is complete, or after
//! the local side was written (then with the cloud's state as `base`, so that what the local side
//! holds is exactly what the cloud still lacks). A restart from any saved record merges again to
//! the same result; at worst a conflict is reported twice.

mod action;
mod config;
mod decide;
mod engine;
mod entry;
mod merge;
mod rate;
mod record;
mod report;
mod request;
mod state;

pub use action::SyncAction;
pub use config::{DEFAULT_MAX_OUTBOUND_PER_SECOND, Direction, Strategy, SyncConfig};
pub use engine::ShadowSync;
pub use merge::{FieldConflict, Merged, Side, three_way_merge};
pub use record::{SyncRecord, SyncRecordError};
pub use report::{Conflict, Rejection, SyncStats};
pub use state::ShadowState;
