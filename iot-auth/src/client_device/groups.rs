//! The `deviceGroups` configuration: device groups selecting things by rule, each with a
//! policy; a thing's permissions are the union over the groups it belongs to.

use serde_json::{Map, Value};

use super::json::{type_name, unknown_key};
use super::policy::{ClientDevicePolicy, ClientDevicePolicyError};
use super::request::ClientDeviceRequest;
use super::rule_error::SelectionRuleError;
use super::selection_rule::SelectionRule;

/// The only `formatVersion` of `deviceGroups` (also assumed when it is absent).
pub const FORMAT_VERSION: &str = "2021-03-05";

/// Why a `deviceGroups` configuration was refused; each variant names the group, policy or
/// statement at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceGroupsError {
    /// `deviceGroups`, `definitions` or `policies` is not an object.
    #[error("{path} must be an object, found {found}")]
    NotAnObject {
        /// `deviceGroups`, `deviceGroups.definitions` or `deviceGroups.policies`.
        path: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A field `deviceGroups` does not have.
    #[error("deviceGroups.{field} is not a field (expected formatVersion, definitions, policies)")]
    UnknownField {
        /// The field.
        field: String,
    },
    /// A `formatVersion` other than [`FORMAT_VERSION`].
    #[error(
        "deviceGroups.formatVersion {found} is not supported; the only format is \"2021-03-05\""
    )]
    FormatVersion {
        /// The value found, as JSON.
        found: String,
    },
    /// A group definition is malformed: not an object, an unknown field, or `selectionRule` /
    /// `policyName` absent or not a string.
    #[error("deviceGroups.definitions.{group}: {problem}")]
    Group {
        /// The group's name.
        group: String,
        /// What is wrong.
        problem: String,
    },
    /// A group's selection rule does not parse.
    #[error("deviceGroups.definitions.{group}.selectionRule: {source}")]
    SelectionRule {
        /// The group's name.
        group: String,
        /// The parse error, with its position in the rule.
        source: SelectionRuleError,
    },
    /// A group's `policyName` names no policy under `policies`.
    #[error(
        "deviceGroups.definitions.{group}.policyName {policy:?} names no policy in deviceGroups.policies"
    )]
    UnknownPolicy {
        /// The group's name.
        group: String,
        /// The policy name it gives.
        policy: String,
    },
    /// A policy (or one of its statements) is malformed.
    #[error("deviceGroups.policies.{policy}: {source}")]
    Policy {
        /// The policy's name.
        policy: String,
        /// What is wrong, naming the statement.
        source: ClientDevicePolicyError,
    },
}

/// One device group: a selection rule and the policy its members get.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceGroup {
    name: String,
    rule: SelectionRule,
    policy_name: String,
    /// Index of the policy in [`DeviceGroups::policies`].
    policy: usize,
}

impl DeviceGroup {
    /// The group's name (its key in `definitions`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's selection rule.
    pub fn selection_rule(&self) -> &SelectionRule {
        &self.rule
    }

    /// The name of the group's policy.
    pub fn policy_name(&self) -> &str {
        &self.policy_name
    }
}

/// Which group, policy and statement allowed a request (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grant<'a> {
    /// The device group the thing belongs to.
    pub group: &'a str,
    /// That group's policy.
    pub policy: &'a str,
    /// The statement of the policy that allows the request.
    pub statement: &'a str,
}

/// Greengrass v2 client-device authorization: the `deviceGroups` configuration of
/// `aws.greengrass.clientdevices.Auth`, compiled.
///
/// A request by a thing is allowed iff some group whose selection rule matches the thing has a
/// policy with a statement allowing it; everything else is refused, including every request of
/// a thing in no group. [`DeviceGroups::default`] has no group and refuses everything.
///
/// ```
/// use iot_auth::client_device::{ClientDeviceRequest, DeviceGroups};
/// use serde_json::json;
///
/// let groups = DeviceGroups::from_json(&json!({
///     "formatVersion": "2021-03-05",
///     "definitions": {
///         "Cars": {"selectionRule": "thingName: car-*", "policyName": "Connect"},
///         "Eu": {"selectionRule": "thingName: *-eu", "policyName": "Telemetry"}},
///     "policies": {
///         "Connect": {"C": {"operations": "mqtt:connect",
///                           "resources": "mqtt:clientId:${iot:Connection.Thing.ThingName}"}},
///         "Telemetry": {"P": {"operations": "mqtt:publish", "resources": "mqtt:topic:eu/telemetry"}}}
/// })).unwrap();
/// let publish = ClientDeviceRequest::Publish { topic: "eu/telemetry" };
/// assert!(groups.authorize("car-1-eu", &publish));
/// assert!(!groups.authorize("car-1-us", &publish));
/// assert_eq!(groups.groups_of("car-1-eu").collect::<Vec<_>>(), ["Cars", "Eu"]);
///
/// // Decide once which groups a connected thing is in, then authorize each request cheaply.
/// let access = groups.for_thing("car-1-eu");
/// assert!(access.authorize(&ClientDeviceRequest::Connect { client_id: "car-1-eu" }));
/// assert_eq!(access.grant(&publish).map(|g| g.group), Some("Eu"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceGroups {
    groups: Vec<DeviceGroup>,
    policies: Vec<ClientDevicePolicy>,
}

impl DeviceGroups {
    /// Compiles the `deviceGroups` object: `formatVersion` (optional, `"2021-03-05"`),
    /// `definitions` (group name → `{selectionRule, policyName}`) and `policies` (policy name →
    /// statements, see [`ClientDevicePolicy::from_json`]); absent sections are empty. Every
    /// policy is checked, used or not; a group naming a missing policy is an error. Unknown
    /// fields are refused, so a misspelt field cannot silently grant or withhold access.
    pub fn from_json(value: &Value) -> Result<DeviceGroups, DeviceGroupsError> {
        let root = object(value, "deviceGroups")?;
        if let Some(field) = unknown_key(root, &["formatVersion", "definitions", "policies"]) {
            return Err(DeviceGroupsError::UnknownField {
                field: field.to_owned(),
            });
        }
        match root.get("formatVersion") {
            None => {}
            Some(Value::String(v)) if v == FORMAT_VERSION => {}
            Some(other) => {
                return Err(DeviceGroupsError::FormatVersion {
                    found: other.to_string(),
                });
            }
        }
        let empty = Map::new();
        let policies = match root.get("policies") {
            Some(v) => object(v, "deviceGroups.policies")?,
            None => &empty,
        }
        .iter()
        .map(|(name, body)| {
            ClientDevicePolicy::from_json(name, body).map_err(|source| DeviceGroupsError::Policy {
                policy: name.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        let groups = match root.get("definitions") {
            Some(v) => object(v, "deviceGroups.definitions")?,
            None => &empty,
        }
        .iter()
        .map(|(name, body)| parse_group(name, body, &policies))
        .collect::<Result<Vec<_>, _>>()?;
        Ok(DeviceGroups { groups, policies })
    }

    /// The groups, in configuration order.
    pub fn groups(&self) -> &[DeviceGroup] {
        &self.groups
    }

    /// The policies, in configuration order.
    pub fn policies(&self) -> &[ClientDevicePolicy] {
        &self.policies
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&ClientDevicePolicy> {
        self.policies.iter().find(|p| p.name() == name)
    }

    /// The names of the groups the thing belongs to, in configuration order.
    pub fn groups_of<'a>(&'a self, thing_name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.groups
            .iter()
            .filter(move |g| g.rule.matches(thing_name))
            .map(|g| g.name.as_str())
    }

    /// The first group, policy and statement (in configuration order) allowing `request` by
    /// the thing `thing_name`; `None` if nothing allows it.
    pub fn grant(&self, thing_name: &str, request: &ClientDeviceRequest<'_>) -> Option<Grant<'_>> {
        self.grant_among(
            self.groups.iter().filter(|g| g.rule.matches(thing_name)),
            thing_name,
            request,
        )
    }

    /// Whether `request` by the thing `thing_name` is allowed.
    pub fn authorize(&self, thing_name: &str, request: &ClientDeviceRequest<'_>) -> bool {
        self.grant(thing_name, request).is_some()
    }

    /// Evaluates the selection rules for `thing_name` once (at CONNECT) and returns what
    /// authorizes that thing's later requests without evaluating them again.
    pub fn for_thing(&self, thing_name: &str) -> ThingAccess<'_> {
        let mut members: Vec<&DeviceGroup> = Vec::new();
        for group in self.groups.iter().filter(|g| g.rule.matches(thing_name)) {
            // A second group with the same policy grants nothing more.
            if !members.iter().any(|m| m.policy == group.policy) {
                members.push(group);
            }
        }
        ThingAccess {
            groups: self,
            thing_name: thing_name.to_owned(),
            members,
        }
    }

    fn grant_among<'a>(
        &'a self,
        members: impl IntoIterator<Item = &'a DeviceGroup>,
        thing_name: &str,
        request: &ClientDeviceRequest<'_>,
    ) -> Option<Grant<'a>> {
        members.into_iter().find_map(|group| {
            let policy = self.policies.get(group.policy)?;
            let statement = policy.allowing_statement(thing_name, request)?;
            Some(Grant {
                group: &group.name,
                policy: policy.name(),
                statement: statement.name(),
            })
        })
    }
}

/// One thing's standing in the device groups, computed once by [`DeviceGroups::for_thing`].
#[derive(Debug, Clone)]
pub struct ThingAccess<'a> {
    groups: &'a DeviceGroups,
    thing_name: String,
    /// The groups the thing belongs to, one per distinct policy.
    members: Vec<&'a DeviceGroup>,
}

impl<'a> ThingAccess<'a> {
    /// The thing's name.
    pub fn thing_name(&self) -> &str {
        &self.thing_name
    }

    /// Whether the thing belongs to any group (if not, every request is refused).
    pub fn is_member(&self) -> bool {
        !self.members.is_empty()
    }

    /// What allows `request`, as [`DeviceGroups::grant`] would answer.
    pub fn grant(&self, request: &ClientDeviceRequest<'_>) -> Option<Grant<'a>> {
        self.groups
            .grant_among(self.members.iter().copied(), &self.thing_name, request)
    }

    /// Whether `request` is allowed, as [`DeviceGroups::authorize`] would answer.
    pub fn authorize(&self, request: &ClientDeviceRequest<'_>) -> bool {
        self.grant(request).is_some()
    }
}

fn object<'v>(
    value: &'v Value,
    path: &'static str,
) -> Result<&'v Map<String, Value>, DeviceGroupsError> {
    value.as_object().ok_or(DeviceGroupsError::NotAnObject {
        path,
        found: type_name(value),
    })
}

fn parse_group(
    name: &str,
    body: &Value,
    policies: &[ClientDevicePolicy],
) -> Result<DeviceGroup, DeviceGroupsError> {
    let problem = |problem: String| DeviceGroupsError::Group {
        group: name.to_owned(),
        problem,
    };
    let Value::Object(fields) = body else {
        return Err(problem(format!(
            "must be an object, found {}",
            type_name(body)
        )));
    };
    if let Some(field) = unknown_key(fields, &["selectionRule", "policyName"]) {
        return Err(problem(format!(
            "unknown field {field:?} (expected selectionRule, policyName)"
        )));
    }
    let text = |field: &str| match fields.get(field) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(problem(format!(
            "{field} must be a string, found {}",
            type_name(other)
        ))),
        None => Err(problem(format!("{field} is missing"))),
    };
    let rule = SelectionRule::parse(text("selectionRule")?).map_err(|source| {
        DeviceGroupsError::SelectionRule {
            group: name.to_owned(),
            source,
        }
    })?;
    let policy_name = text("policyName")?;
    let policy = policies
        .iter()
        .position(|p| p.name() == policy_name)
        .ok_or_else(|| DeviceGroupsError::UnknownPolicy {
            group: name.to_owned(),
            policy: policy_name.to_owned(),
        })?;
    Ok(DeviceGroup {
        name: name.to_owned(),
        rule,
        policy_name: policy_name.to_owned(),
        policy,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn groups(value: Value) -> DeviceGroups {
        DeviceGroups::from_json(&value).unwrap()
    }

    fn error(value: Value) -> DeviceGroupsError {
        DeviceGroups::from_json(&value).unwrap_err()
    }

    fn publish(topic: &str) -> ClientDeviceRequest<'_> {
        ClientDeviceRequest::Publish { topic }
    }

    /// Two groups with overlapping members and different policies.
    fn fleet() -> DeviceGroups {
        groups(json!({
            "definitions": {
                "Cars": {"selectionRule": "thingName: car-*", "policyName": "Connect"},
                "Eu": {"selectionRule": "thingName: *-eu", "policyName": "EuTopics"},
                "EuToo": {"selectionRule": "thingName: car-1-eu", "policyName": "EuTopics"},
                "Admins": {"selectionRule": "thingName: admin", "policyName": "All"}},
            "policies": {
                "Connect": {"C": {"operations": "mqtt:connect",
                                  "resources": "mqtt:clientId:${iot:Connection.Thing.ThingName}"}},
                "EuTopics": {"P": {"operations": "mqtt:publish", "resources": "mqtt:topic:eu"},
                             "S": {"operations": "mqtt:subscribe", "resources": "mqtt:topicfilter:eu/#"}},
                "All": {"A": {"operations": "*", "resources": "*"}},
                "Unused": {"U": {"operations": "*", "resources": "mqtt:topic:x"}}}
        }))
    }

    #[test]
    fn union_over_groups() {
        let g = fleet();
        let connect = |id| ClientDeviceRequest::Connect { client_id: id };
        // Cars only: connect, no publish.
        assert!(g.authorize("car-1-us", &connect("car-1-us")));
        assert!(!g.authorize("car-1-us", &publish("eu")));
        // Eu only: publish, no connect.
        assert!(g.authorize("bus-eu", &publish("eu")));
        assert!(!g.authorize("bus-eu", &connect("bus-eu")));
        // Both: both.
        assert!(g.authorize("car-1-eu", &connect("car-1-eu")));
        assert!(g.authorize("car-1-eu", &publish("eu")));
        assert!(g.authorize(
            "car-1-eu",
            &ClientDeviceRequest::Subscribe { filter: "eu/#" }
        ));
        assert!(!g.authorize(
            "car-1-eu",
            &ClientDeviceRequest::Subscribe { filter: "eu/x" }
        ));
        assert!(!g.authorize("car-1-eu", &connect("car-2-eu")));
        // Everything for the admin, nothing for a stranger.
        assert!(g.authorize("admin", &ClientDeviceRequest::Subscribe { filter: "#" }));
        assert!(!g.authorize("stranger", &connect("stranger")));
        assert!(!g.authorize("", &connect("")));
        // An unused policy grants nothing.
        assert!(!g.authorize("car-1-us", &publish("x")));
    }

    #[test]
    fn groups_of_and_grants() {
        let g = fleet();
        assert_eq!(
            g.groups_of("car-1-eu").collect::<Vec<_>>(),
            ["Cars", "Eu", "EuToo"]
        );
        assert_eq!(g.groups_of("nobody").count(), 0);
        assert_eq!(
            g.grant("car-1-eu", &publish("eu")),
            Some(Grant {
                group: "Eu",
                policy: "EuTopics",
                statement: "P"
            })
        );
        assert_eq!(g.grant("car-1-eu", &publish("us")), None);
        assert_eq!(g.groups().len(), 4);
        assert_eq!(g.groups()[1].policy_name(), "EuTopics");
        assert_eq!(
            g.groups()[1].selection_rule().to_string(),
            "thingName: *-eu"
        );
        assert_eq!(g.policies().len(), 4);
        assert!(g.policy("Unused").is_some());
        assert!(g.policy("Missing").is_none());
    }

    #[test]
    fn thing_access_agrees_with_direct_evaluation() {
        let g = fleet();
        let requests = [
            ClientDeviceRequest::Connect {
                client_id: "car-1-eu",
            },
            ClientDeviceRequest::Connect { client_id: "admin" },
            publish("eu"),
            publish("x"),
            ClientDeviceRequest::Subscribe { filter: "eu/#" },
            ClientDeviceRequest::Subscribe { filter: "#" },
        ];
        for thing in [
            "car-1-eu", "car-1-us", "bus-eu", "admin", "stranger", "car-x/+",
        ] {
            let access = g.for_thing(thing);
            assert_eq!(access.thing_name(), thing);
            assert_eq!(access.is_member(), g.groups_of(thing).next().is_some());
            for request in &requests {
                assert_eq!(
                    access.authorize(request),
                    g.authorize(thing, request),
                    "{thing} {request}"
                );
                assert_eq!(
                    access.grant(request),
                    g.grant(thing, request),
                    "{thing} {request}"
                );
            }
        }
        // "EuToo" repeats "Eu"'s policy, so it is not kept twice.
        assert_eq!(g.for_thing("car-1-eu").members.len(), 2);
    }

    #[test]
    fn empty_configurations_refuse_everything() {
        for g in [
            DeviceGroups::default(),
            groups(json!({})),
            groups(json!({"definitions": {}, "policies": {}})),
        ] {
            assert!(!g.authorize("car", &ClientDeviceRequest::Connect { client_id: "car" }));
            assert!(!g.for_thing("car").is_member());
        }
    }

    #[test]
    fn errors_name_the_culprit() {
        assert_eq!(
            error(json!([])),
            DeviceGroupsError::NotAnObject {
                path: "deviceGroups",
                found: "a list"
            }
        );
        assert_eq!(
            error(json!({"definitions": []})),
            DeviceGroupsError::NotAnObject {
                path: "deviceGroups.definitions",
                found: "a list"
            }
        );
        assert_eq!(
            error(json!({"policy": {}})),
            DeviceGroupsError::UnknownField {
                field: "policy".into()
            }
        );
        assert_eq!(
            error(json!({"formatVersion": "2022-01-01"})).to_string(),
            r#"deviceGroups.formatVersion "2022-01-01" is not supported; the only format is "2021-03-05""#
        );
        assert_eq!(
            error(
                json!({"definitions": {"G": {"selectionRule": "thingName: a", "policyName": "Nope"}},
                         "policies": {"P": {}}})
            ),
            DeviceGroupsError::UnknownPolicy {
                group: "G".into(),
                policy: "Nope".into()
            }
        );
        assert_eq!(
            error(json!({"definitions": {"G": {"selectionRule": "thingName: a OR", "policyName": "P"}},
                         "policies": {"P": {}}}))
            .to_string(),
            "deviceGroups.definitions.G.selectionRule: selection rule, byte 15: expected `thingName:`, found the end of the rule"
        );
        assert_eq!(
            error(json!({"definitions": {"G": {"selectionRule": "thingName: a"}}, "policies": {}}))
                .to_string(),
            "deviceGroups.definitions.G: policyName is missing"
        );
        assert_eq!(
            error(json!({"definitions": {"G": {"selectionRule": 1, "policyName": "P"}}}))
                .to_string(),
            "deviceGroups.definitions.G: selectionRule must be a string, found a number"
        );
        assert_eq!(
            error(json!({"definitions": {"G": {"selectionRule": "thingName: a", "policyName": "P", "x": 1}}})).to_string(),
            r#"deviceGroups.definitions.G: unknown field "x" (expected selectionRule, policyName)"#
        );
        assert_eq!(
            error(json!({"definitions": {"G": "thingName: a"}})).to_string(),
            "deviceGroups.definitions.G: must be an object, found a string"
        );
        // A broken policy is an error even when no group uses it.
        assert_eq!(
            error(
                json!({"policies": {"P": {"S": {"operations": "mqtt:retain", "resources": "*"}}}})
            )
            .to_string(),
            r#"deviceGroups.policies.P: statement "S": unknown operation "mqtt:retain" (expected mqtt:connect, mqtt:publish, mqtt:subscribe or *)"#
        );
        assert_eq!(
            error(
                json!({"policies": {"P": {"S": {"operations": "*", "resources": "mqtt:topic"}}}})
            )
            .to_string(),
            r#"deviceGroups.policies.P: statement "S": resource "mqtt:topic": must be `*` or `mqtt:clientId:…`, `mqtt:topic:…` or `mqtt:topicfilter:…`"#
        );
    }
}
