//! The Greengrass V2 administrative commands (the AWS CLI's `aws greengrassv2 …`): which client
//! devices may discover which core device, and where each core device is reached.
//!
//! ```text
//! batch-associate-client-device-with-core-device --core-device-thing-name C --thing-names a,b
//! batch-disassociate-client-device-from-core-device --core-device-thing-name C --thing-names a,b
//! list-client-devices-associated-with-core-device --core-device-thing-name C
//! update-connectivity-info --thing-name C --connectivity-info Id=lan,HostAddress=10.0.0.2,PortNumber=8883[,Metadata=…] […]
//! update-connectivity-info --thing-name C --connectivity-info '[{"Id":"lan","HostAddress":"10.0.0.2","PortNumber":8883}]'
//! get-connectivity-info --thing-name C
//! ```
//!
//! Things must exist in the registry: an unknown core is refused whole (AWS's
//! `ResourceNotFoundException`), an unknown client device is an entry of `errorEntries`.

use clap::Subcommand;
use iot_auth::registry::CertificateRegistry;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AdminError;
use crate::store::discover_response::ConnectivityInfo;
use crate::store::greengrass::CoreDevices;

/// A Greengrass V2 command, as the AWS CLI names it.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
pub enum GreengrassCommand {
    /// Let client devices discover a core device (`{"errorEntries": [...]}` lists the things that
    /// could not be associated).
    BatchAssociateClientDeviceWithCoreDevice {
        /// The core device's thing name.
        #[arg(long)]
        core_device_thing_name: String,
        /// Client device thing names, comma-separated (1 to 100).
        #[arg(long, value_delimiter = ',', required = true)]
        thing_names: Vec<String>,
    },
    /// Stop client devices from discovering a core device.
    BatchDisassociateClientDeviceFromCoreDevice {
        /// The core device's thing name.
        #[arg(long)]
        core_device_thing_name: String,
        /// Client device thing names, comma-separated (1 to 100).
        #[arg(long, value_delimiter = ',', required = true)]
        thing_names: Vec<String>,
    },
    /// List the client devices associated with a core device.
    ListClientDevicesAssociatedWithCoreDevice {
        /// The core device's thing name.
        #[arg(long)]
        core_device_thing_name: String,
    },
    /// Replace a core device's connectivity information (what discovery hands client devices).
    UpdateConnectivityInfo {
        /// The core device's thing name.
        #[arg(long)]
        thing_name: String,
        /// Entries as `Id=…,HostAddress=…,PortNumber=…[,Metadata=…]` (one argument each), or a
        /// JSON list of `{"Id","HostAddress","PortNumber","Metadata"}` (`[]` clears).
        #[arg(long, num_args = 1.., required = true)]
        connectivity_info: Vec<String>,
    },
    /// Print a core device's connectivity information.
    GetConnectivityInfo {
        /// The core device's thing name.
        #[arg(long)]
        thing_name: String,
    },
}

/// One `Id=…,HostAddress=…,PortNumber=…,Metadata=…` entry (keys in any case).
fn parse_shorthand(text: &str) -> Result<ConnectivityInfo, AdminError> {
    let bad = |why: &str| AdminError::ConnectivityInfo(format!("{text:?}: {why}"));
    let (mut id, mut host, mut port, mut metadata) = (None, None, None, String::new());
    for pair in text.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("expected Key=value pairs separated by commas"))?;
        match key.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(value.to_owned()),
            "hostaddress" => host = Some(value.to_owned()),
            "portnumber" => {
                port = Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| bad("PortNumber must be 1 to 65535"))?,
                );
            }
            "metadata" => metadata = value.to_owned(),
            other => return Err(bad(&format!("unknown key {other:?}"))),
        }
    }
    Ok(ConnectivityInfo {
        id: id.ok_or_else(|| bad("Id is missing"))?,
        host_address: host.ok_or_else(|| bad("HostAddress is missing"))?,
        port_number: port.ok_or_else(|| bad("PortNumber is missing"))?,
        metadata,
    })
}

/// The entries of `--connectivity-info`: each argument a JSON list or object, or shorthand.
///
/// ```
/// use iot_examples::admin::greengrass::parse_connectivity_info;
/// let entries = parse_connectivity_info(&[
///     "Id=lan,HostAddress=10.0.0.2,PortNumber=8883".to_owned(),
///     r#"{"Id":"wifi","HostAddress":"core.local","PortNumber":443,"Metadata":"b"}"#.to_owned(),
/// ]).unwrap();
/// assert_eq!(entries[0].host_address, "10.0.0.2");
/// assert_eq!(entries[1].port_number, 443);
/// assert!(parse_connectivity_info(&["Id=a,PortNumber=1".to_owned()]).is_err());
/// ```
pub fn parse_connectivity_info(items: &[String]) -> Result<Vec<ConnectivityInfo>, AdminError> {
    let mut entries = Vec::new();
    for item in items {
        let trimmed = item.trim_start();
        if trimmed.starts_with('[') {
            let list: Vec<ConnectivityInfo> = serde_json::from_str(trimmed)
                .map_err(|e| AdminError::ConnectivityInfo(e.to_string()))?;
            entries.extend(list);
        } else if trimmed.starts_with('{') {
            entries.push(
                serde_json::from_str(trimmed)
                    .map_err(|e| AdminError::ConnectivityInfo(e.to_string()))?,
            );
        } else {
            entries.push(parse_shorthand(item)?);
        }
    }
    Ok(entries)
}

/// An entry in the PascalCase of the Greengrass API's `ConnectivityInfo`.
pub fn connectivity_json(info: &ConnectivityInfo) -> Value {
    json!({
        "Id": info.id,
        "HostAddress": info.host_address,
        "PortNumber": info.port_number,
        "Metadata": info.metadata,
    })
}

/// Runs one Greengrass command against the registry's things; returns AWS-CLI-shaped JSON. The
/// caller saves `cores` when the command changed them.
pub(super) fn execute(
    registry: &CertificateRegistry,
    cores: &mut CoreDevices,
    command: GreengrassCommand,
    now_secs: u64,
) -> Result<Value, AdminError> {
    let exists = |thing: &str| registry.thing(thing).is_some();
    Ok(match command {
        GreengrassCommand::BatchAssociateClientDeviceWithCoreDevice {
            core_device_thing_name,
            thing_names,
        } => {
            let errors =
                cores.batch_associate(&core_device_thing_name, &thing_names, exists, now_secs)?;
            json!({ "errorEntries": errors })
        }
        GreengrassCommand::BatchDisassociateClientDeviceFromCoreDevice {
            core_device_thing_name,
            thing_names,
        } => {
            let errors = cores.batch_disassociate(&core_device_thing_name, &thing_names, exists)?;
            json!({ "errorEntries": errors })
        }
        GreengrassCommand::ListClientDevicesAssociatedWithCoreDevice {
            core_device_thing_name,
        } => {
            let devices = cores.associated_client_devices(&core_device_thing_name, exists)?;
            json!({
                "associatedClientDevices": devices.iter().map(|(thing, at)| json!({
                    "thingName": thing,
                    "associationTimestamp": at,
                })).collect::<Vec<_>>()
            })
        }
        GreengrassCommand::UpdateConnectivityInfo {
            thing_name,
            connectivity_info,
        } => {
            let entries = parse_connectivity_info(&connectivity_info)?;
            let version = cores.update_connectivity_info(&thing_name, entries, exists)?;
            json!({ "Version": version })
        }
        GreengrassCommand::GetConnectivityInfo { thing_name } => {
            let entries = cores.connectivity_info(&thing_name, exists)?;
            json!({ "ConnectivityInfo": entries.iter().map(connectivity_json).collect::<Vec<_>>() })
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shorthand_needs_every_required_key_and_a_port() {
        for bad in [
            "Id=a,HostAddress=h",
            "HostAddress=h,PortNumber=1",
            "Id=a,HostAddress=h,PortNumber=99999",
            "Id=a,HostAddress=h,PortNumber=1,Colour=red",
            "just text",
        ] {
            assert!(parse_connectivity_info(&[bad.to_owned()]).is_err(), "{bad}");
        }
        let ok = parse_connectivity_info(&["id=a,hostAddress=h,portNumber=1,metadata=m".into()])
            .unwrap();
        assert_eq!(ok[0].metadata, "m");
        assert!(parse_connectivity_info(&["[]".into()]).unwrap().is_empty());
    }

    #[test]
    fn commands_answer_in_the_aws_shapes() {
        let mut registry = CertificateRegistry::new();
        for thing in ["core", "car-1"] {
            registry
                .create_thing(thing, None, Default::default())
                .unwrap();
        }
        let mut cores = CoreDevices::default();
        let mut run = |command| execute(&registry, &mut cores, command, 1_700_000_000);
        let answer = run(
            GreengrassCommand::BatchAssociateClientDeviceWithCoreDevice {
                core_device_thing_name: "core".into(),
                thing_names: vec!["car-1".into(), "car-2".into()],
            },
        )
        .unwrap();
        assert_eq!(
            answer,
            json!({"errorEntries":[{"thingName":"car-2","code":"ResourceNotFoundException","message":"Thing car-2 not found"}]})
        );
        let answer = run(
            GreengrassCommand::ListClientDevicesAssociatedWithCoreDevice {
                core_device_thing_name: "core".into(),
            },
        )
        .unwrap();
        assert_eq!(
            answer,
            json!({"associatedClientDevices":[{"thingName":"car-1","associationTimestamp":1_700_000_000}]})
        );
        let answer = run(GreengrassCommand::UpdateConnectivityInfo {
            thing_name: "core".into(),
            connectivity_info: vec!["Id=lan,HostAddress=10.0.0.2,PortNumber=8883".into()],
        })
        .unwrap();
        assert_eq!(answer, json!({"Version":"1"}));
        let answer = run(GreengrassCommand::GetConnectivityInfo {
            thing_name: "core".into(),
        })
        .unwrap();
        assert_eq!(
            answer,
            json!({"ConnectivityInfo":[{"Id":"lan","HostAddress":"10.0.0.2","PortNumber":8883,"Metadata":""}]})
        );
        assert!(matches!(
            run(GreengrassCommand::GetConnectivityInfo {
                thing_name: "ghost".into()
            }),
            Err(AdminError::Greengrass(_))
        ));
    }
}
