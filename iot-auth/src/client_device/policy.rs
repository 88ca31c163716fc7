//! Client-device policies: named, allow-only statements of operations on resources.

use serde_json::Value;

use super::json::{string_list, type_name, unknown_key};
use super::request::{ClientDeviceRequest, Operation};
use super::resource::{Resource, ResourceError};

const STATEMENT_FIELDS: [&str; 4] = ["statementDescription", "operations", "resources", "effect"];

/// Why a policy of the `deviceGroups` configuration was refused; `statement` names the statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientDevicePolicyError {
    /// The policy is not an object of named statements.
    #[error("must be an object of named statements, found {found}")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A statement is not an object.
    #[error("statement {statement:?} must be an object, found {found}")]
    StatementNotAnObject {
        /// The statement's name.
        statement: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A statement holds a field that statements do not have.
    #[error(
        "statement {statement:?}: unknown field {field:?} (statements have operations, resources, statementDescription, effect)"
    )]
    UnknownField {
        /// The statement's name.
        statement: String,
        /// The field.
        field: String,
    },
    /// `operations` or `resources` is absent, empty, or not a string or list of strings; or
    /// `statementDescription` is not a string.
    #[error("statement {statement:?}: {field} must be {expected}")]
    Field {
        /// The statement's name.
        statement: String,
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// An operation other than `mqtt:connect`, `mqtt:publish`, `mqtt:subscribe`, `mqtt:*`, `*`.
    #[error(
        "statement {statement:?}: unknown operation {operation:?} (expected mqtt:connect, mqtt:publish, mqtt:subscribe or *)"
    )]
    UnknownOperation {
        /// The statement's name.
        statement: String,
        /// The operation as written.
        operation: String,
    },
    /// A resource that is not `*` or `mqtt:{clientId|topic|topicfilter}:{value}`.
    #[error("statement {statement:?}: resource {resource:?}: {reason}")]
    MalformedResource {
        /// The statement's name.
        statement: String,
        /// The resource as written.
        resource: String,
        /// What is wrong with it.
        reason: ResourceError,
    },
    /// An `effect` other than `ALLOW`: these policies cannot deny.
    #[error(
        "statement {statement:?}: effect {effect:?} is not ALLOW; client-device policies are allow-only"
    )]
    Effect {
        /// The statement's name.
        statement: String,
        /// The effect as written.
        effect: String,
    },
}

/// One named statement: it allows each of its operations on each of its resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyStatement {
    name: String,
    description: Option<String>,
    /// Bit set of [`Operation::bit`].
    operations: u8,
    resources: Vec<Resource>,
}

impl PolicyStatement {
    /// The statement's name (its key in the policy).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `statementDescription`, if given.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Whether the statement lists `operation` (or `*`).
    pub fn has_operation(&self, operation: Operation) -> bool {
        self.operations & operation.bit() != 0
    }

    /// The statement's resources.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// Whether the statement allows `request` by the thing `thing_name`.
    pub fn allows(&self, thing_name: &str, request: &ClientDeviceRequest<'_>) -> bool {
        self.has_operation(request.operation())
            && self.resources.iter().any(|r| r.covers(thing_name, request))
    }

    fn from_json(name: &str, value: &Value) -> Result<PolicyStatement, ClientDevicePolicyError> {
        let statement = || name.to_owned();
        let Value::Object(fields) = value else {
            return Err(ClientDevicePolicyError::StatementNotAnObject {
                statement: statement(),
                found: type_name(value),
            });
        };
        if let Some(field) = unknown_key(fields, &STATEMENT_FIELDS) {
            return Err(ClientDevicePolicyError::UnknownField {
                statement: statement(),
                field: field.to_owned(),
            });
        }
        let list = |field: &'static str, expected: &'static str| {
            fields
                .get(field)
                .and_then(string_list)
                .filter(|items| !items.is_empty())
                .ok_or_else(|| ClientDevicePolicyError::Field {
                    statement: statement(),
                    field,
                    expected,
                })
        };
        let mut operations = 0u8;
        for op in list("operations", "a string or a non-empty list of operations")? {
            operations |= match op {
                "*" | "mqtt:*" => Operation::ALL.iter().fold(0, |bits, o| bits | o.bit()),
                _ => Operation::from_name(op)
                    .map(Operation::bit)
                    .ok_or_else(|| ClientDevicePolicyError::UnknownOperation {
                        statement: statement(),
                        operation: op.to_owned(),
                    })?,
            };
        }
        let resources = list("resources", "a string or a non-empty list of resources")?
            .into_iter()
            .map(|text| {
                Resource::parse(text).map_err(|reason| ClientDevicePolicyError::MalformedResource {
                    statement: statement(),
                    resource: text.to_owned(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let description = match fields.get("statementDescription") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                return Err(ClientDevicePolicyError::Field {
                    statement: statement(),
                    field: "statementDescription",
                    expected: "a string",
                });
            }
        };
        match fields.get("effect") {
            None => {}
            Some(Value::String(effect)) if effect.eq_ignore_ascii_case("allow") => {}
            Some(other) => {
                return Err(ClientDevicePolicyError::Effect {
                    statement: statement(),
                    effect: other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_owned),
                });
            }
        }
        Ok(PolicyStatement {
            name: name.to_owned(),
            description,
            operations,
            resources,
        })
    }
}

/// One named policy of the `deviceGroups` configuration: allow-only statements, any of which
/// may allow a request (there is no Deny).
///
/// ```
/// use iot_auth::client_device::{ClientDevicePolicy, ClientDeviceRequest};
/// use serde_json::json;
///
/// let policy = ClientDevicePolicy::from_json("cars", &json!({
///     "AllowOwnTopics": {"operations": ["mqtt:publish", "mqtt:subscribe"],
///                        "resources": ["mqtt:topic:cars/${iot:Connection.Thing.ThingName}",
///                                      "mqtt:topicfilter:cars/${iot:Connection.Thing.ThingName}/#"]}
/// })).unwrap();
/// assert!(policy.allows("car-1", &ClientDeviceRequest::Publish { topic: "cars/car-1" }));
/// assert!(policy.allows("car-1", &ClientDeviceRequest::Subscribe { filter: "cars/car-1/#" }));
/// assert!(!policy.allows("car-1", &ClientDeviceRequest::Subscribe { filter: "cars/car-1/x" }));
/// assert!(!policy.allows("car-1", &ClientDeviceRequest::Connect { client_id: "car-1" }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientDevicePolicy {
    name: String,
    statements: Vec<PolicyStatement>,
}

impl ClientDevicePolicy {
    /// Compiles a policy from its JSON: an object whose keys name statements, each
    /// `{"operations": […], "resources": […], "statementDescription"?: "…", "effect"?: "ALLOW"}`
    /// (`operations` and `resources` may also be a single string). Stricter than Greengrass,
    /// which ignores such statements, a statement without operations or resources is refused.
    pub fn from_json(
        name: &str,
        value: &Value,
    ) -> Result<ClientDevicePolicy, ClientDevicePolicyError> {
        let Value::Object(statements) = value else {
            return Err(ClientDevicePolicyError::NotAnObject {
                found: type_name(value),
            });
        };
        Ok(ClientDevicePolicy {
            name: name.to_owned(),
            statements: statements
                .iter()
                .map(|(name, statement)| PolicyStatement::from_json(name, statement))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The policy's name (its key in `policies`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The statements, in configuration order.
    pub fn statements(&self) -> &[PolicyStatement] {
        &self.statements
    }

    /// The first statement allowing `request` by the thing `thing_name`, if any.
    pub fn allowing_statement(
        &self,
        thing_name: &str,
        request: &ClientDeviceRequest<'_>,
    ) -> Option<&PolicyStatement> {
        self.statements
            .iter()
            .find(|statement| statement.allows(thing_name, request))
    }

    /// Whether some statement allows `request` by the thing `thing_name`.
    pub fn allows(&self, thing_name: &str, request: &ClientDeviceRequest<'_>) -> bool {
        self.allowing_statement(thing_name, request).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn policy(value: Value) -> ClientDevicePolicy {
        ClientDevicePolicy::from_json("p", &value).unwrap()
    }

    fn error(value: Value) -> ClientDevicePolicyError {
        ClientDevicePolicy::from_json("p", &value).unwrap_err()
    }

    const CONNECT: ClientDeviceRequest<'static> = ClientDeviceRequest::Connect { client_id: "car" };
    const PUBLISH: ClientDeviceRequest<'static> = ClientDeviceRequest::Publish { topic: "t" };
    const SUBSCRIBE: ClientDeviceRequest<'static> =
        ClientDeviceRequest::Subscribe { filter: "t/#" };

    #[test]
    fn star_operation_and_resource_allow_everything() {
        let p = policy(json!({"All": {"operations": ["*"], "resources": ["*"]}}));
        for request in [CONNECT, PUBLISH, SUBSCRIBE] {
            assert!(p.allows("car", &request));
        }
        let p = policy(json!({"All": {"operations": "mqtt:*", "resources": "*"}}));
        assert!(p.allows("any", &SUBSCRIBE));
    }

    #[test]
    fn operations_and_resources_are_a_cross_product() {
        let p = policy(json!({"S": {
            "operations": ["mqtt:publish", "mqtt:subscribe"],
            "resources": ["mqtt:topic:t", "mqtt:topicfilter:t/#"]}}));
        assert!(p.allows("car", &PUBLISH));
        assert!(p.allows("car", &SUBSCRIBE));
        assert!(!p.allows("car", &CONNECT));
        assert!(!p.allows("car", &ClientDeviceRequest::Publish { topic: "t/#" }));
        assert!(!p.allows("car", &ClientDeviceRequest::Subscribe { filter: "t" }));
    }

    #[test]
    fn operation_without_fitting_resource_allows_nothing() {
        let p = policy(json!({"S": {"operations": "mqtt:connect", "resources": "mqtt:topic:car"}}));
        assert!(!p.allows("car", &CONNECT));
        let p = policy(json!({"S": {"operations": "mqtt:publish", "resources": "*"}}));
        assert!(p.allows("car", &PUBLISH));
        assert!(!p.allows("car", &CONNECT));
    }

    #[test]
    fn any_statement_may_allow_and_reports_which() {
        let p = policy(json!({
            "A": {"statementDescription": "connect", "operations": "mqtt:connect",
                  "resources": "mqtt:clientId:${iot:Connection.Thing.ThingName}"},
            "B": {"operations": "mqtt:publish", "resources": "mqtt:topic:t", "effect": "ALLOW"}}));
        assert_eq!(p.allowing_statement("car", &CONNECT).unwrap().name(), "A");
        assert_eq!(
            p.allowing_statement("car", &CONNECT).unwrap().description(),
            Some("connect")
        );
        assert_eq!(p.allowing_statement("car", &PUBLISH).unwrap().name(), "B");
        assert!(p.allowing_statement("other", &CONNECT).is_none());
        assert_eq!(p.statements().len(), 2);
        assert!(policy(json!({})).statements().is_empty());
    }

    #[test]
    fn errors_name_the_statement() {
        assert_eq!(
            error(json!([])),
            ClientDevicePolicyError::NotAnObject { found: "a list" }
        );
        assert_eq!(
            error(json!({"S": "x"})),
            ClientDevicePolicyError::StatementNotAnObject {
                statement: "S".into(),
                found: "a string"
            }
        );
        assert_eq!(
            error(json!({"S": {"operations": "*", "resources": "*", "resource": "*"}})),
            ClientDevicePolicyError::UnknownField {
                statement: "S".into(),
                field: "resource".into()
            }
        );
        let e = error(json!({"S": {"resources": "*"}}));
        assert!(
            matches!(
                e,
                ClientDevicePolicyError::Field {
                    field: "operations",
                    ..
                }
            ),
            "{e}"
        );
        let e = error(json!({"S": {"operations": [], "resources": "*"}}));
        assert!(
            matches!(
                e,
                ClientDevicePolicyError::Field {
                    field: "operations",
                    ..
                }
            ),
            "{e}"
        );
        let e = error(json!({"S": {"operations": ["*", 1], "resources": "*"}}));
        assert!(
            matches!(
                e,
                ClientDevicePolicyError::Field {
                    field: "operations",
                    ..
                }
            ),
            "{e}"
        );
        let e = error(json!({"S": {"operations": "*"}}));
        assert!(
            matches!(
                e,
                ClientDevicePolicyError::Field {
                    field: "resources",
                    ..
                }
            ),
            "{e}"
        );
        let e =
            error(json!({"S": {"operations": "*", "resources": "*", "statementDescription": 3}}));
        assert!(
            matches!(
                e,
                ClientDevicePolicyError::Field {
                    field: "statementDescription",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            error(json!({"S": {"operations": "mqtt:Publish", "resources": "*"}})),
            ClientDevicePolicyError::UnknownOperation {
                statement: "S".into(),
                operation: "mqtt:Publish".into()
            }
        );
        assert_eq!(
            error(json!({"S": {"operations": "iot:Publish", "resources": "*"}})).to_string(),
            r#"statement "S": unknown operation "iot:Publish" (expected mqtt:connect, mqtt:publish, mqtt:subscribe or *)"#
        );
        assert_eq!(
            error(json!({"S": {"operations": "*", "resources": ["*", "mqtt:thing:x"]}})),
            ClientDevicePolicyError::MalformedResource {
                statement: "S".into(),
                resource: "mqtt:thing:x".into(),
                reason: ResourceError::UnknownType,
            }
        );
        assert_eq!(
            error(json!({"S": {"operations": "*", "resources": "*", "effect": "DENY"}})),
            ClientDevicePolicyError::Effect {
                statement: "S".into(),
                effect: "DENY".into()
            }
        );
    }
}
