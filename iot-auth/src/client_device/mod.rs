//! Greengrass v2 client-device authorization: may this local device (thing name = MQTT client
//! id) `mqtt:connect`, `mqtt:publish` or `mqtt:subscribe` on the edge core's local broker?
//!
//! This is the `deviceGroups` configuration of AWS IoT Greengrass's client device auth component
//! (`aws.greengrass.clientdevices.Auth`), compiled ([`DeviceGroups`]) and evaluated:
//!
//! - Device groups select things with a [`SelectionRule`] (`thingName: car-* OR thingName: depot`,
//!   `AND` binding tighter than `OR`, `*` at either end of a value, `\:` for a colon).
//! - Each group has one [`ClientDevicePolicy`] of named statements allowing operations
//!   (`mqtt:connect`, `mqtt:publish`, `mqtt:subscribe`, `*`) on resources
//!   (`mqtt:clientId:{id}`, `mqtt:topic:{topic}`, `mqtt:topicfilter:{filter}`, or `*` for all).
//!   Resource values are literal: no wildcard, and a filter resource allows only the filter
//!   written the same way. The one variable is `${iot:Connection.Thing.ThingName}`; a resource
//!   with any other `${…}` variable matches nothing.
//! - Policies only allow; a request is allowed iff some group the thing belongs to has a policy
//!   with a statement allowing it (the union over groups). Everything else is refused.
//!
//! Pure logic: no I/O, no clock. Caching decisions for a trust window is the caller's business;
//! [`DeviceGroups::for_thing`] evaluates the selection rules once per connection.
//!
//! ```
//! use iot_auth::client_device::{ClientDeviceRequest, DeviceGroups};
//! use serde_json::json;
//!
//! let groups = DeviceGroups::from_json(&json!({
//!     "formatVersion": "2021-03-05",
//!     "definitions": {
//!         "MyDeviceGroup": {
//!             "selectionRule": "thingName: MyClientDevice* OR thingName: Other",
//!             "policyName": "MyPolicy"}},
//!     "policies": {
//!         "MyPolicy": {
//!             "AllowConnect": {
//!                 "statementDescription": "Allow client devices to connect as themselves.",
//!                 "operations": ["mqtt:connect"],
//!                 "resources": ["mqtt:clientId:${iot:Connection.Thing.ThingName}"]},
//!             "AllowPublish": {
//!                 "operations": ["mqtt:publish"],
//!                 "resources": ["mqtt:topic:cars/${iot:Connection.Thing.ThingName}/telemetry"]}}}
//! })).unwrap();
//!
//! // A member connecting under its own name.
//! assert!(groups.authorize("MyClientDevice1", &ClientDeviceRequest::Connect { client_id: "MyClientDevice1" }));
//! // A member publishing on another thing's topic.
//! assert!(!groups.authorize("Other", &ClientDeviceRequest::Publish { topic: "cars/MyClientDevice1/telemetry" }));
//! // A thing in no group.
//! assert!(!groups.authorize("Stranger", &ClientDeviceRequest::Connect { client_id: "Stranger" }));
//! ```

mod groups;
mod json;
mod policy;
mod request;
mod resource;
mod rule_error;
mod rule_lexer;
mod selection_rule;

pub use groups::{
    DeviceGroup, DeviceGroups, DeviceGroupsError, FORMAT_VERSION, Grant, ThingAccess,
};
pub use policy::{ClientDevicePolicy, ClientDevicePolicyError, PolicyStatement};
pub use request::{ClientDeviceRequest, Operation};
pub use resource::{
    MAX_THING_NAME_LEN, Resource, ResourceError, THING_NAME_VARIABLE, is_valid_thing_name,
};
pub use rule_error::{SelectionRuleError, SelectionRuleErrorKind, TokenKind};
pub use selection_rule::{MAX_SELECTION_RULE_BYTES, SelectionRule};
