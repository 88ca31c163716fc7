//! Resources of client-device policy statements: `mqtt:clientId:{id}`, `mqtt:topic:{topic}`,
//! `mqtt:topicfilter:{filter}` or `*`, with the `${iot:Connection.Thing.ThingName}` variable.

use std::fmt;

use super::request::{ClientDeviceRequest, Operation};

/// The only policy variable client-device policies know.
pub const THING_NAME_VARIABLE: &str = "${iot:Connection.Thing.ThingName}";

/// The longest AWS IoT thing name.
pub const MAX_THING_NAME_LEN: usize = 128;

/// Whether `name` is a valid AWS IoT thing name: 1 to 128 ASCII letters, digits, `:`, `_`, `-`.
///
/// Only such names are substituted for [`THING_NAME_VARIABLE`]: a client id holding `/`, `+`
/// or `#` must not widen the topics a policy grants.
pub fn is_valid_thing_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_THING_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// Why a resource string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// Not `*` and not `mqtt:{type}:{value}`.
    #[error("must be `*` or `mqtt:clientId:…`, `mqtt:topic:…` or `mqtt:topicfilter:…`")]
    Shape,
    /// `mqtt:{type}:` with a type other than `clientId`, `topic`, `topicfilter`.
    #[error("the resource type must be `clientId`, `topic` or `topicfilter` (case-sensitive)")]
    UnknownType,
    /// Nothing after the type.
    #[error("the resource names no client id, topic or filter")]
    EmptyValue,
}

/// What a resource names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ResourceType {
    ClientId,
    Topic,
    TopicFilter,
}

impl ResourceType {
    fn of(operation: Operation) -> ResourceType {
        match operation {
            Operation::Connect => ResourceType::ClientId,
            Operation::Publish => ResourceType::Topic,
            Operation::Subscribe => ResourceType::TopicFilter,
        }
    }
}

/// One piece of a resource value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Piece {
    Text(String),
    ThingName,
}

/// A compiled resource.
///
/// Values are literal: a `*` inside one (`mqtt:topic:a/*`, `mqtt:clientId:*`) is the character
/// `*`, and `+`/`#` in a `mqtt:topicfilter:` value match only a filter written the same way.
/// `${iot:Connection.Thing.ThingName}` is replaced by the thing's name when that is a valid thing
/// name ([`is_valid_thing_name`]); any other `${…}` variable, or an invalid name, makes the
/// resource match nothing. A `${` without a closing `}` is literal text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    source: String,
    scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    /// `*`: every client id, topic and filter.
    Everything,
    /// `mqtt:{type}:{value}`; `pieces` is `None` when the value holds an unknown variable.
    Named {
        kind: ResourceType,
        pieces: Option<Vec<Piece>>,
    },
}

impl Resource {
    /// Parses a resource string.
    pub fn parse(text: &str) -> Result<Resource, ResourceError> {
        let scope = if text == "*" {
            Scope::Everything
        } else {
            let rest = text.strip_prefix("mqtt:").ok_or(ResourceError::Shape)?;
            let (kind, value) = rest.split_once(':').ok_or(ResourceError::Shape)?;
            let kind = match kind {
                "clientId" => ResourceType::ClientId,
                "topic" => ResourceType::Topic,
                "topicfilter" => ResourceType::TopicFilter,
                _ => return Err(ResourceError::UnknownType),
            };
            if value.is_empty() {
                return Err(ResourceError::EmptyValue);
            }
            Scope::Named {
                kind,
                pieces: pieces(value),
            }
        };
        Ok(Resource {
            source: text.to_owned(),
            scope,
        })
    }

    /// The resource as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this resource covers what `request` names, for the thing `thing_name`.
    pub fn covers(&self, thing_name: &str, request: &ClientDeviceRequest<'_>) -> bool {
        let (kind, pieces) = match &self.scope {
            Scope::Everything => return true,
            Scope::Named { kind, pieces } => (kind, pieces),
        };
        if *kind != ResourceType::of(request.operation()) {
            return false;
        }
        let Some(pieces) = pieces else {
            return false;
        };
        let mut rest = request.resource_value();
        for piece in pieces {
            let text = match piece {
                Piece::Text(text) => text.as_str(),
                Piece::ThingName if is_valid_thing_name(thing_name) => thing_name,
                Piece::ThingName => return false,
            };
            match rest.strip_prefix(text) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// Whether the value uses a `${…}` variable other than the thing name, so it matches nothing.
    pub fn has_unknown_variable(&self) -> bool {
        matches!(self.scope, Scope::Named { pieces: None, .. })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Splits a value into text and thing-name pieces; `None` if it names an unknown variable.
fn pieces(value: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = rest.get(start..).unwrap_or_default();
        let Some(end) = after.find('}') else {
            break;
        };
        let variable = after.get(..=end).unwrap_or_default();
        if variable != THING_NAME_VARIABLE {
            return None;
        }
        text.push_str(rest.get(..start).unwrap_or_default());
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::ThingName);
        rest = after.get(end + 1..).unwrap_or_default();
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn covers(resource: &str, thing: &str, request: ClientDeviceRequest<'_>) -> bool {
        Resource::parse(resource).unwrap().covers(thing, &request)
    }

    fn publish(topic: &str) -> ClientDeviceRequest<'_> {
        ClientDeviceRequest::Publish { topic }
    }

    fn subscribe(filter: &str) -> ClientDeviceRequest<'_> {
        ClientDeviceRequest::Subscribe { filter }
    }

    #[test]
    fn types_must_fit_the_operation() {
        let connect = ClientDeviceRequest::Connect { client_id: "car" };
        assert!(covers("mqtt:clientId:car", "car", connect));
        assert!(!covers("mqtt:topic:car", "car", connect));
        assert!(!covers("mqtt:clientId:car", "car", publish("car")));
        assert!(covers("mqtt:topic:car", "car", publish("car")));
        assert!(!covers("mqtt:topicfilter:car", "car", publish("car")));
        assert!(covers("mqtt:topicfilter:car", "car", subscribe("car")));
        for request in [connect, publish("a/b"), subscribe("#")] {
            assert!(covers("*", "car", request));
        }
    }

    #[test]
    fn values_are_literal() {
        assert!(!covers(
            "mqtt:clientId:*",
            "car",
            ClientDeviceRequest::Connect { client_id: "car" }
        ));
        assert!(covers(
            "mqtt:clientId:*",
            "car",
            ClientDeviceRequest::Connect { client_id: "*" }
        ));
        assert!(!covers("mqtt:topic:a/*", "car", publish("a/b")));
        assert!(covers("mqtt:topic:a/*", "car", publish("a/*")));
        assert!(covers(
            "mqtt:topicfilter:client/+/status",
            "car",
            subscribe("client/+/status")
        ));
        assert!(!covers(
            "mqtt:topicfilter:client/+/status",
            "car",
            subscribe("client/c1/status")
        ));
        assert!(!covers("mqtt:topicfilter:a/#", "car", subscribe("a/b")));
        assert!(!covers("mqtt:topicfilter:a/#", "car", subscribe("a/+")));
        assert!(!covers("mqtt:topic:a", "car", publish("a/")));
        assert!(!covers("mqtt:topic:A", "car", publish("a")));
    }

    #[test]
    fn thing_name_variable() {
        let r = "mqtt:topic:cars/${iot:Connection.Thing.ThingName}/telemetry";
        assert!(covers(r, "car-1", publish("cars/car-1/telemetry")));
        assert!(!covers(r, "car-1", publish("cars/car-2/telemetry")));
        assert!(!covers(r, "car-1", publish("cars/car-1/telemetry/x")));
        let twice =
            "mqtt:topic:${iot:Connection.Thing.ThingName}/${iot:Connection.Thing.ThingName}";
        assert!(covers(twice, "c", publish("c/c")));
        assert!(!covers(twice, "c", publish("c/d")));
        let id = "mqtt:clientId:${iot:Connection.Thing.ThingName}";
        assert!(covers(
            id,
            "car:1",
            ClientDeviceRequest::Connect { client_id: "car:1" }
        ));
        assert!(!covers(
            id,
            "car-1",
            ClientDeviceRequest::Connect { client_id: "car-2" }
        ));
    }

    #[test]
    fn invalid_thing_names_are_not_substituted() {
        let r = "mqtt:topicfilter:cars/${iot:Connection.Thing.ThingName}/#";
        assert!(covers(r, "ok", subscribe("cars/ok/#")));
        assert!(!covers(r, "+", subscribe("cars/+/#")));
        assert!(!covers(r, "a/b", subscribe("cars/a/b/#")));
        assert!(!covers(r, "", subscribe("cars//#")));
        let long = "x".repeat(MAX_THING_NAME_LEN + 1);
        assert!(!covers(r, &long, subscribe(&format!("cars/{long}/#"))));
        // A resource without the variable does not care about the name.
        assert!(covers("mqtt:topic:t", "a/b", publish("t")));
    }

    #[test]
    fn unknown_variables_match_nothing() {
        for r in [
            "mqtt:topic:${iot:Connection.Thing.Unknown}",
            "mqtt:topic:${iot:Connection.Thing.ThingName*}",
            "mqtt:topic:${iot:ClientId}/x",
            "mqtt:topic:a/${}",
        ] {
            let resource = Resource::parse(r).unwrap();
            assert!(resource.has_unknown_variable(), "{r}");
            for topic in ["", "a", r.trim_start_matches("mqtt:topic:"), "a/car/x"] {
                assert!(!resource.covers("car", &publish(topic)), "{r} {topic}");
            }
        }
        // An unclosed `${` is text.
        let r = "mqtt:topic:a/${iot:Connection.Thing.ThingName";
        assert!(covers(
            r,
            "car",
            publish("a/${iot:Connection.Thing.ThingName")
        ));
    }

    #[test]
    fn malformed() {
        assert_eq!(Resource::parse(""), Err(ResourceError::Shape));
        assert_eq!(Resource::parse("**"), Err(ResourceError::Shape));
        assert_eq!(Resource::parse("mqtt:topic"), Err(ResourceError::Shape));
        assert_eq!(Resource::parse("iot:topic:a"), Err(ResourceError::Shape));
        assert_eq!(
            Resource::parse("mqtt:clientid:a"),
            Err(ResourceError::UnknownType)
        );
        assert_eq!(Resource::parse("mqtt:*:a"), Err(ResourceError::UnknownType));
        assert_eq!(
            Resource::parse("mqtt:topic:"),
            Err(ResourceError::EmptyValue)
        );
        assert_eq!(
            Resource::parse("mqtt:topic:a:b").unwrap().as_str(),
            "mqtt:topic:a:b"
        );
    }
}
