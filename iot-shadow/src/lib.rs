//! The AWS IoT Device Shadow service as a library: document merge, delta, metadata and versions,
//! classic and named shadows, and the request/response topics and JSON of the AWS service, so a
//! device written against AWS does not notice the difference.
//!
//! It does no I/O and reads no clock: requests come in as (topic, payload, now) and the answers
//! come out as [`ShadowMessage`]s; shadows live in a [`ShadowStore`] ([`MemoryShadowStore`] here,
//! a durable one in the broker program).
//!
//! The device's side of the same protocol is [`DeviceShadow`]: it keeps a device's reported state,
//! turns desired changes into [`ShadowEvent::Delta`]s for the application, pairs answers with
//! requests by `clientToken`, and resyncs after a reconnect, a version conflict or a lost answer.
//!
//! An edge core's side is [`sync::ShadowSync`]: it keeps a local shadow service's shadows and
//! their twins in the cloud in step (three-way merge against the last synced state, versions for
//! conflicts and deletes, Greengrass's directions and strategies).
//!
//! ```
//! use iot_shadow::{MemoryShadowStore, ShadowService};
//!
//! let mut shadows = ShadowService::new(MemoryShadowStore::default());
//! let now_ms = 1_591_140_517_000;
//! shadows.handle_publish("$aws/things/lamp/shadow/update",
//!     br#"{"state":{"reported":{"on":false}}}"#, now_ms).unwrap();
//! let answer = shadows.handle_publish("$aws/things/lamp/shadow/get", b"", now_ms).unwrap();
//! assert_eq!(answer[0].topic, "$aws/things/lamp/shadow/get/accepted");
//! assert_eq!(answer[0].payload, concat!(
//!     r#"{"state":{"reported":{"on":false}},"metadata":{"reported":{"on":{"timestamp":1591140517}}},"#,
//!     r#""version":1,"timestamp":1591140517}"#));
//! ```

mod accepted;
mod delta_document;
mod device;
mod document;
mod entry;
mod error;
mod json_writer;
mod merge;
mod metadata;
mod request;
mod request_json;
mod service;
mod snapshot;
mod store;
pub mod sync;
mod topic;
mod update;

pub use device::{
    DEFAULT_ANSWER_TIMEOUT_MS, DEFAULT_MAX_PENDING, DeviceShadow, DeviceShadowError,
    MAX_TOKEN_PREFIX_BYTES, ShadowEvent, ShadowRequest, VersionPolicy,
};
pub use document::StoredShadow;
pub use entry::{ShadowEntry, ShadowSlot};
pub use error::ShadowError;
pub use merge::{delta, diff, leaf_metadata, merge};
pub use metadata::Metadata;
pub use service::{ShadowLimits, ShadowMessage, ShadowService, UpdateOutcome};
pub use store::{MemoryShadowStore, ShadowStore};
pub use topic::{
    Operation, ShadowKey, ShadowTopic, TopicKind, is_valid_shadow_name, is_valid_thing_name,
    parse_topic,
};

/// AWS's default limit on the size of a shadow's `desired` plus `reported` state, in bytes.
pub const MAX_DOCUMENT_STATE_BYTES: usize = 8192;
