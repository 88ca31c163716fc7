//! What the engine asks its caller to do.

use crate::topic::ShadowKey;

use super::record::SyncRecord;

/// Something for the caller to do, from [`ShadowSync::poll_action`](super::ShadowSync::poll_action).
#[derive(Debug, Clone, PartialEq)]
pub enum SyncAction {
    /// Publish a `get`, `update` or `delete` request to the cloud, at QoS 1.
    CloudPublish {
        /// The request topic, e.g. `$aws/things/car-1/shadow/update`.
        topic: String,
        /// The JSON payload, with the `clientToken` the answer will echo.
        payload: String,
    },
    /// Apply this update request document to the local shadow service
    /// ([`ShadowService::update`](crate::ShadowService::update)), then, before anything else
    /// touches that shadow, call [`local_applied`](super::ShadowSync::local_applied) with the
    /// stored shadow as it is now, whether the update was accepted or not. It carries the
    /// `version` the local shadow has, so a device's write that slipped in makes it fail (409)
    /// rather than be overwritten.
    LocalUpdate {
        /// Which shadow.
        key: ShadowKey,
        /// `{"state":{…},"version":N}`; nulls delete fields.
        payload: String,
    },
    /// Delete the local shadow ([`ShadowService::delete`](crate::ShadowService::delete)), then
    /// call [`local_applied`](super::ShadowSync::local_applied) as for a `LocalUpdate`.
    LocalDelete {
        /// Which shadow.
        key: ShadowKey,
    },
    /// Persist this shadow's sync record (replacing the previous one), to be handed back to
    /// [`ShadowSync::new`](super::ShadowSync::new) after a restart.
    SaveRecord {
        /// Which shadow.
        key: ShadowKey,
        /// Its record.
        record: SyncRecord,
    },
}
