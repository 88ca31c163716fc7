//! The Greengrass discovery document: what `GET /greengrass/discover/thing/{thing}` answers, as
//! AWS documents it (the same for Greengrass V1 and V2; in V2 every core device is a group of its
//! own, `greengrassV2-coreDevice-{coreThingName}`):
//!
//! ```json
//! {"GGGroups":[{"GGGroupId":"greengrassV2-coreDevice-core-1",
//!   "Cores":[{"thingArn":"arn:aws:iot:us-east-1:123456789012:thing/core-1",
//!             "Connectivity":[{"id":"lan","hostAddress":"192.168.1.5","portNumber":8883,"metadata":""}]}],
//!   "CAs":["-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n"]}]}
//! ```
//!
//! The broker writes it, the device reads it: one definition of the wire shape. Reading also
//! takes the PascalCase connectivity keys (`Id`, `HostAddress`, …) one of AWS's own examples
//! shows.

use serde::{Deserialize, Serialize};

/// The group id AWS gives the one-core group of a V2 core device.
///
/// ```
/// use iot_examples::store::discover_response::group_id;
/// assert_eq!(group_id("core-1"), "greengrassV2-coreDevice-core-1");
/// ```
pub fn group_id(core_thing_name: &str) -> String {
    format!("greengrassV2-coreDevice-{core_thing_name}")
}

/// One way to reach a core's MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectivityInfo {
    /// The entry's id (e.g. `AUTOIP_192.168.1.4_1`, or a name an operator chose).
    #[serde(alias = "Id")]
    pub id: String,
    /// An IP address or DNS name; a device uses it as the TLS server name too.
    #[serde(alias = "HostAddress")]
    pub host_address: String,
    /// The port (usually 8883).
    #[serde(alias = "PortNumber")]
    pub port_number: u16,
    /// Free text about the endpoint.
    #[serde(alias = "Metadata", default)]
    pub metadata: String,
}

/// A core of a group: its thing ARN and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredCore {
    /// `arn:aws:iot:{region}:{account}:thing/{core}`.
    #[serde(rename = "thingArn")]
    pub thing_arn: String,
    /// Its endpoints, in the order the core reported them.
    #[serde(rename = "Connectivity")]
    pub connectivity: Vec<ConnectivityInfo>,
}

/// A Greengrass group (in V2: one core device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredGroup {
    /// `greengrassV2-coreDevice-{core}` (see [`group_id`]).
    #[serde(rename = "GGGroupId")]
    pub group_id: String,
    /// The group's cores (one in V2).
    #[serde(rename = "Cores")]
    pub cores: Vec<DiscoveredCore>,
    /// PEM CA certificates a device trusts to verify the core's server certificate.
    #[serde(rename = "CAs")]
    pub cas: Vec<String>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverResponse {
    /// One group per core the device is associated with (and that has an endpoint).
    #[serde(rename = "GGGroups")]
    pub groups: Vec<DiscoveredGroup>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn sample() -> DiscoverResponse {
        DiscoverResponse {
            groups: vec![DiscoveredGroup {
                group_id: group_id("core-1"),
                cores: vec![DiscoveredCore {
                    thing_arn: "arn:aws:iot:us-east-1:123456789012:thing/core-1".into(),
                    connectivity: vec![ConnectivityInfo {
                        id: "lan".into(),
                        host_address: "192.168.1.5".into(),
                        port_number: 8883,
                        metadata: String::new(),
                    }],
                }],
                cas: vec!["-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into()],
            }],
        }
    }

    #[test]
    fn writes_the_documented_names_and_types() {
        let value = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            value,
            json!({"GGGroups":[{"GGGroupId":"greengrassV2-coreDevice-core-1",
                "Cores":[{"thingArn":"arn:aws:iot:us-east-1:123456789012:thing/core-1",
                  "Connectivity":[{"id":"lan","hostAddress":"192.168.1.5","portNumber":8883,"metadata":""}]}],
                "CAs":["-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"]}]})
        );
        let back: DiscoverResponse = serde_json::from_value(value).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn reads_the_pascal_case_connectivity_of_the_curl_example() {
        let info: ConnectivityInfo = serde_json::from_value(json!(
            {"Id":"AUTOIP_192.168.1.4_1","HostAddress":"192.168.1.5","PortNumber":8883,"Metadata":""}
        ))
        .unwrap();
        assert_eq!(info.host_address, "192.168.1.5");
        assert_eq!(info.port_number, 8883);
        // A port out of range or a missing host is refused.
        assert!(
            serde_json::from_value::<ConnectivityInfo>(
                json!({"id":"a","hostAddress":"h","portNumber":70000})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<ConnectivityInfo>(json!({"id":"a","portNumber":1})).is_err()
        );
    }
}
