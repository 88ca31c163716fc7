//! What a client device asks of the local broker: the operation and the resource it names.

use std::fmt;

/// An MQTT operation a client-device policy can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `mqtt:connect`, on `mqtt:clientId:{id}` resources.
    Connect,
    /// `mqtt:publish`, on `mqtt:topic:{topic}` resources.
    Publish,
    /// `mqtt:subscribe`, on `mqtt:topicfilter:{filter}` resources.
    Subscribe,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 3] = [Operation::Connect, Operation::Publish, Operation::Subscribe];

    /// The name in policies, e.g. `mqtt:publish`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Connect => "mqtt:connect",
            Operation::Publish => "mqtt:publish",
            Operation::Subscribe => "mqtt:subscribe",
        }
    }

    /// The operation named `name` (case-sensitive), if any.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            Operation::Connect => 1,
            Operation::Publish => 2,
            Operation::Subscribe => 4,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A request to authorize: the operation with the client id, topic or topic filter it acts on.
///
/// The thing asking is given separately (in Greengrass the thing name is the MQTT client id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientDeviceRequest<'a> {
    /// CONNECT with this client id: resource `mqtt:clientId:{client_id}`.
    Connect {
        /// The MQTT client id.
        client_id: &'a str,
    },
    /// PUBLISH to this topic: resource `mqtt:topic:{topic}`.
    Publish {
        /// The topic name.
        topic: &'a str,
    },
    /// SUBSCRIBE to this filter: resource `mqtt:topicfilter:{filter}`, matched as a string
    /// (`a/+` is allowed only by a resource naming `a/+` itself, or by `*`).
    Subscribe {
        /// The topic filter, as sent.
        filter: &'a str,
    },
}

impl<'a> ClientDeviceRequest<'a> {
    /// The operation asked for.
    pub fn operation(&self) -> Operation {
        match self {
            ClientDeviceRequest::Connect { .. } => Operation::Connect,
            ClientDeviceRequest::Publish { .. } => Operation::Publish,
            ClientDeviceRequest::Subscribe { .. } => Operation::Subscribe,
        }
    }

    /// The client id, topic or filter the request names.
    pub fn resource_value(&self) -> &'a str {
        match *self {
            ClientDeviceRequest::Connect { client_id } => client_id,
            ClientDeviceRequest::Publish { topic } => topic,
            ClientDeviceRequest::Subscribe { filter } => filter,
        }
    }
}

/// The operation and the resource as a policy writes it, e.g. `mqtt:publish on mqtt:topic:cars/1`.
impl fmt::Display for ClientDeviceRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            ClientDeviceRequest::Connect { .. } => "clientId",
            ClientDeviceRequest::Publish { .. } => "topic",
            ClientDeviceRequest::Subscribe { .. } => "topicfilter",
        };
        write!(
            f,
            "{} on mqtt:{kind}:{}",
            self.operation(),
            self.resource_value()
        )
    }
}
