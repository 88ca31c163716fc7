//! Making the core known to the cloud: its thing, certificate and policy, through the cloud
//! broker's admin interface (its socket when it runs, its data directory when it is stopped), as
//! `aws iot create-thing`, `create-keys-and-certificate` and `attach-policy` would.

use std::path::Path;

use serde_json::{Value, json};

use crate::admin::{AdminCommand, AdminError};
use crate::config::BrokerConfig;
use crate::config::edge::EdgeConfig;

/// Why the core could not be provisioned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// An admin command failed.
    #[error("provisioning the core: {0}")]
    Admin(#[from] AdminError),
    /// A credential file could not be written.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// An answer lacked a field.
    #[error("provisioning the core: the answer to {0} lacks what was expected")]
    Answer(&'static str),
}

/// The core's cloud policy: connect as itself; relay the cars' topics and the fleet summary;
/// sync the cars' shadows; publish its status (retained); Greengrass's data plane for itself.
pub fn core_policy(cloud: &BrokerConfig, core: &str) -> String {
    let arn = format!("arn:aws:iot:{}:{}", cloud.region, cloud.account);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/{core}")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"], "Resource": [
                format!("{arn}:topic/cars/*"),
                format!("{arn}:topic/fleet/{core}/*"),
                format!("{arn}:topic/edge/{core}/*"),
                format!("{arn}:topic/$aws/things/*/shadow/*"),
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                format!("{arn}:topicfilter/cars/*"),
                format!("{arn}:topicfilter/$aws/things/*/shadow/*"),
            ]},
            {"Effect": "Allow", "Action": "greengrass:*", "Resource": [
                format!("{arn}:thing/{core}"),
                format!("arn:aws:greengrass:{}:{}:/greengrass/things/{core}/connectivityInfo", cloud.region, cloud.account),
            ]},
        ]
    })
    .to_string()
}

fn copy(from: &Path, to: &Path, private: bool) -> Result<(), ProvisionError> {
    let error = |error| ProvisionError::File {
        path: to.to_owned(),
        error,
    };
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let text = std::fs::read_to_string(from).map_err(|error| ProvisionError::File {
        path: from.to_owned(),
        error,
    })?;
    crate::store::data_dir::write_file(to, &text, private).map_err(|e| ProvisionError::File {
        path: to.to_owned(),
        error: std::io::Error::other(e.to_string()),
    })
}

/// Makes the core `edge.thing_name` a thing of the cloud `cloud` with a certificate (written to
/// `edge.cloud.certificate` and `edge.cloud.private_key`) and its policy, unless its certificate
/// file already exists. Returns whether anything was made.
pub fn provision_core(cloud: &BrokerConfig, edge: &EdgeConfig) -> Result<bool, ProvisionError> {
    if edge.cloud.certificate.exists() && edge.cloud.private_key.exists() {
        return Ok(false);
    }
    let core = edge.thing_name.clone();
    let out_dir = edge.data_dir.join("core");
    crate::admin::run_each(cloud, |exec| {
        // The thing may exist from an earlier run whose files were removed.
        let _ = exec(AdminCommand::CreateThing {
            thing_name: core.clone(),
            thing_type_name: Some("greengrass-core".into()),
            attributes: Vec::new(),
        });
        let issued = exec(AdminCommand::CreateKeysAndCertificate {
            set_as_active: true,
            out_dir: Some(out_dir.clone()),
        })?;
        let field = |name: &str| {
            issued
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| AdminError::Remote(format!("no {name}")))
        };
        let arn = field("certificateArn")?;
        let id = field("certificateId")?;
        exec(AdminCommand::AttachThingPrincipal {
            thing_name: core.clone(),
            principal: arn.clone(),
        })?;
        let policy = format!("{core}-policy");
        let _ = exec(AdminCommand::CreatePolicy {
            policy_name: policy.clone(),
            policy_document: core_policy(cloud, &core),
        });
        exec(AdminCommand::AttachPolicy {
            policy_name: policy,
            target: arn,
        })?;
        copy(
            &out_dir.join(format!("{id}.cert.pem")),
            &edge.cloud.certificate,
            false,
        )
        .map_err(|e| AdminError::Remote(e.to_string()))?;
        copy(
            &out_dir.join(format!("{id}.private.key")),
            &edge.cloud.private_key,
            true,
        )
        .map_err(|e| AdminError::Remote(e.to_string()))?;
        Ok(())
    })?;
    Ok(true)
}

/// Lets client devices `things` discover core `core` (Greengrass's
/// `BatchAssociateClientDeviceWithCoreDevice`, 100 at a time), through the cloud's admin
/// interface.
pub fn associate_client_devices(
    cloud: &BrokerConfig,
    core: &str,
    things: &[String],
) -> Result<(), ProvisionError> {
    crate::admin::run_each(cloud, |exec| {
        for chunk in things.chunks(100) {
            exec(AdminCommand::Greengrass(
                crate::admin::GreengrassCommand::BatchAssociateClientDeviceWithCoreDevice {
                    core_device_thing_name: core.to_owned(),
                    thing_names: chunk.to_vec(),
                },
            ))?;
        }
        Ok(())
    })?;
    Ok(())
}
