//! Client device auth on the core, as Greengrass's `aws.greengrass.clientdevices.Auth` does it:
//! the TLS listener admits only certificates from the client devices' CA; the thing name is the
//! MQTT client id; what a device may do is the union of the allow-only policies of the device
//! groups whose selection rule matches its thing name ([`iot_auth::client_device`]).
//!
//! Not checked here (Greengrass asks the cloud): that the certificate is attached to the thing
//! named by the client id. Any certificate from the configured CA may claim any thing name its
//! groups allow; keep the CA to your fleet.

use std::collections::{BTreeMap, HashMap};

use iot_auth::client_device::{ClientDeviceRequest, DeviceGroups};
use iot_broker_core::ConnectionId;
use iot_broker_core::auth::{Authorizer, Client, ConnectDenied, ConnectRequest};

/// Refusals by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceRefusals {
    /// `mqtt:connect` refused.
    pub connect: u64,
    /// `mqtt:publish` refused.
    pub publish: u64,
    /// `mqtt:subscribe` refused.
    pub subscribe: u64,
}

/// The local broker's [`Authorizer`].
#[derive(Debug)]
pub struct ClientDeviceAuthorizer {
    groups: DeviceGroups,
    /// Bumped whenever `groups` is replaced, so the broker drops its cached answers.
    generation: u64,
    /// The thing of each admitted connection.
    things: HashMap<ConnectionId, String>,
    refusals: DeviceRefusals,
}

impl ClientDeviceAuthorizer {
    /// An authorizer over `groups`.
    pub fn new(groups: DeviceGroups) -> Self {
        ClientDeviceAuthorizer {
            groups,
            generation: 0,
            things: HashMap::new(),
            refusals: DeviceRefusals::default(),
        }
    }

    /// Replace the device groups (a new deployment's configuration). Connections keep their
    /// thing; every later question is answered by the new groups, and the broker drops the
    /// answers it cached under the old ones (the generation changes).
    pub fn replace_groups(&mut self, groups: DeviceGroups) {
        self.groups = groups;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Refusals so far.
    pub fn refusals(&self) -> DeviceRefusals {
        self.refusals
    }

    /// The things connected now, with how many connections each has (a takeover briefly has
    /// two).
    pub fn connected_things(&self) -> BTreeMap<&str, usize> {
        let mut things = BTreeMap::new();
        for thing in self.things.values() {
            *things.entry(thing.as_str()).or_insert(0) += 1;
        }
        things
    }

    fn allowed(&mut self, client: &Client<'_>, request: &ClientDeviceRequest<'_>) -> bool {
        let Some(thing) = self.things.get(&client.conn) else {
            return false;
        };
        self.groups.authorize(thing, request)
    }
}

impl Authorizer for ClientDeviceAuthorizer {
    fn connect(&mut self, request: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        let client_id = request.client.client_id;
        if request.client.principal.is_none() {
            self.refusals.connect += 1;
            tracing::info!(client_id, "mqtt:connect refused: no client certificate");
            return Err(ConnectDenied::NotAuthorized);
        }
        let thing = client_id;
        if !self
            .groups
            .authorize(thing, &ClientDeviceRequest::Connect { client_id })
        {
            self.refusals.connect += 1;
            tracing::info!(client_id, "mqtt:connect refused by the device groups");
            return Err(ConnectDenied::NotAuthorized);
        }
        self.things.insert(request.client.conn, thing.to_owned());
        Ok(())
    }

    fn publish(&mut self, client: &Client<'_>, topic: &str, _retain: bool) -> bool {
        let allowed = self.allowed(client, &ClientDeviceRequest::Publish { topic });
        if !allowed {
            self.refusals.publish += 1;
            tracing::info!(client_id = client.client_id, topic, "mqtt:publish refused");
        }
        allowed
    }

    fn subscribe(&mut self, client: &Client<'_>, filter: &str) -> bool {
        let allowed = self.allowed(client, &ClientDeviceRequest::Subscribe { filter });
        if !allowed {
            self.refusals.subscribe += 1;
            tracing::info!(
                client_id = client.client_id,
                filter,
                "mqtt:subscribe refused"
            );
        }
        allowed
    }

    /// Changes only when the groups are [replaced](ClientDeviceAuthorizer::replace_groups): a
    /// connection's thing is fixed at CONNECT and the broker's cache is per connection.
    fn generation(&self) -> u64 {
        self.generation
    }

    fn forget(&mut self, conn: ConnectionId) {
        self.things.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_the_groups_changes_the_generation() {
        let groups = || {
            DeviceGroups::from_json(&crate::config::edge::default_device_groups())
                .expect("the default groups are valid")
        };
        let mut authorizer = ClientDeviceAuthorizer::new(groups());
        let before = authorizer.generation();
        authorizer.replace_groups(groups());
        assert_ne!(authorizer.generation(), before);
    }
}
