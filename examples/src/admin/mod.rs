//! The administrative commands (the AWS CLI's `create-thing`, `create-keys-and-certificate`,
//! `attach-policy`, ...): one [`execute`] for both ways they run. With the broker stopped the CLI
//! opens the data directory itself; while it runs, the CLI hands the command to the broker over
//! its admin socket ([`socket`]) and the engine thread executes it against the live registry,
//! access keys and store, so a new certificate or policy takes effect at once.
//!
//! May import: `store/`, `config/`. Must not import a program folder: a program hands the
//! socket the function that runs a command on its engine.

pub mod greengrass;
pub mod socket;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use iot_auth::provision::{CertificateAuthority, ProvisionError, create_keys_and_certificate};
use iot_auth::registry::{CertificateRegistry, CertificateStatus, RegistryError};
use iot_auth::x509::{CertificateId, CertificateParseError};
use iot_shadow::{ShadowKey, ShadowService};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::BrokerConfig;
use crate::engine::now_ms;
use crate::store::access_keys::{AccessKeyError, AccessKeys};
use crate::store::data_dir::{DataDir, Opened, SetupError, write_file};
use crate::store::greengrass::{CoreDeviceError, CoreDevices};
use crate::store::{DurableShadows, SharedStore, StoreError};

pub use self::greengrass::GreengrassCommand;

/// Why an administrative command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A thing attribute not written `name=value`.
    #[error("attribute {0:?} is not name=value")]
    Attribute(String),
    /// The registry refused (unknown thing, policy or certificate; a bad document; ...).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A certificate could not be made.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// Not a certificate id or ARN.
    #[error(transparent)]
    CertificateId(#[from] CertificateParseError),
    /// Not a certificate status.
    #[error("{0}")]
    CertificateStatus(String),
    /// Not `Active` or `Inactive`.
    #[error("status {0:?} is not Active or Inactive")]
    AccessKeyStatus(String),
    /// An access key could not be made or changed.
    #[error(transparent)]
    AccessKey(#[from] AccessKeyError),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The data directory could not be opened.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The store failed to load or commit.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shadow service's error document (e.g. no such shadow).
    #[error("{0}")]
    Shadow(String),
    /// A Greengrass request was refused (unknown core thing, a bad entry, a bound reached).
    #[error(transparent)]
    Greengrass(#[from] CoreDeviceError),
    /// `--connectivity-info` could not be read.
    #[error("connectivity info: {0}")]
    ConnectivityInfo(String),
    /// The running broker's admin socket could not be reached or answered badly.
    #[error("admin socket {path}: {reason}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The running broker refused the command (its own error text).
    #[error("{0}")]
    Remote(String),
    /// The broker stopped before answering.
    #[error("the broker is stopping")]
    Stopped,
}

/// An administrative command, as the AWS CLI names it (`create-thing`, `attach-policy`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
pub enum AdminCommand {
    /// Create a thing.
    CreateThing {
        /// The thing name.
        #[arg(long)]
        thing_name: String,
        /// Its thing type.
        #[arg(long)]
        thing_type_name: Option<String>,
        /// Attributes as name=value, comma-separated.
        #[arg(long, value_delimiter = ',')]
        attributes: Vec<String>,
    },
    /// List things.
    ListThings,
    /// Create a key pair and a certificate signed by the development CA, registered.
    CreateKeysAndCertificate {
        /// Register it ACTIVE (else INACTIVE).
        #[arg(long)]
        set_as_active: bool,
        /// Where to write `{id}.cert.pem`, `{id}.private.key` (0600), `{id}.public.key`
        /// (default: `{data_dir}/certs`).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Set a certificate's status (ACTIVE, INACTIVE, REVOKED, ...).
    UpdateCertificate {
        /// Certificate id or ARN.
        #[arg(long)]
        certificate_id: String,
        /// The new status.
        #[arg(long)]
        new_status: String,
    },
    /// List certificates with their statuses.
    ListCertificates,
    /// Attach a principal (certificate id or ARN) to a thing.
    AttachThingPrincipal {
        /// The thing name.
        #[arg(long)]
        thing_name: String,
        /// Certificate id or ARN.
        #[arg(long)]
        principal: String,
    },
    /// Create a policy from a JSON document (inline, or `file://path`).
    CreatePolicy {
        /// The policy name.
        #[arg(long)]
        policy_name: String,
        /// The document, or `file://path`.
        #[arg(long)]
        policy_document: String,
    },
    /// Attach a policy to a principal: a certificate (id or ARN) or an IAM user ARN (from
    /// create-access-key).
    AttachPolicy {
        /// The policy name.
        #[arg(long)]
        policy_name: String,
        /// Certificate id or ARN, or `arn:aws:iam::{account}:user/{name}`.
        #[arg(long)]
        target: String,
    },
    /// Create an access key for SigV4 clients (MQTT over WebSocket, HTTPS), as
    /// `aws iam create-access-key` does. Attach policies to the printed principal.
    CreateAccessKey {
        /// The user the key belongs to; its ARN is the policy target.
        #[arg(long)]
        user_name: String,
    },
    /// Give a user a password for the web dashboard (as `aws iam create-login-profile`); its
    /// logins get temporary credentials signing as `arn:aws:iam::{account}:user/{name}`, limited
    /// by the policies attached to that ARN.
    CreateLoginProfile {
        /// The user.
        #[arg(long)]
        user_name: String,
        /// The password (at least 8 characters).
        #[arg(long)]
        password: String,
    },
    /// List access keys (without their secrets).
    ListAccessKeys,
    /// Set an access key's status (Active or Inactive).
    UpdateAccessKey {
        /// The access key id.
        #[arg(long)]
        access_key_id: String,
        /// Active or Inactive.
        #[arg(long)]
        status: String,
    },
    /// Print a thing's shadow document.
    GetThingShadow {
        /// The thing name.
        #[arg(long)]
        thing_name: String,
        /// A named shadow (classic shadow when absent).
        #[arg(long)]
        shadow_name: Option<String>,
    },
    /// The Greengrass V2 commands (`aws greengrassv2 …`).
    #[command(flatten)]
    Greengrass(GreengrassCommand),
}

impl AdminCommand {
    /// The command as logs may show it: a password is never written out.
    pub fn log_view(&self) -> String {
        match self {
            AdminCommand::CreateLoginProfile { user_name, .. } => {
                format!("CreateLoginProfile {{ user_name: {user_name:?}, password: <redacted> }}")
            }
            other => format!("{other:?}"),
        }
    }
}

/// What a command acts on: the account's registry, access keys and store.
#[derive(Debug)]
pub struct Account<'a> {
    /// The configuration (region, account, data directory).
    pub config: &'a BrokerConfig,
    /// The store; changes are recorded in it and committed by the caller.
    pub store: SharedStore,
    /// Certificates, things and policies.
    pub registry: &'a mut CertificateRegistry,
    /// The development CA that signs new device certificates.
    pub ca: &'a CertificateAuthority,
    /// The SigV4 access keys.
    pub access_keys: &'a mut AccessKeys,
    /// The Greengrass core devices (connectivity, CAs, client device associations).
    pub greengrass: &'a mut CoreDevices,
}

/// A certificate id from an id or a certificate ARN; any other principal as given.
fn principal_id(text: &str) -> String {
    text.rsplit_once("cert/")
        .map_or(text, |(_, id)| id)
        .to_owned()
}

/// Runs one command; returns AWS-CLI-shaped JSON. The changes wait in the store for the caller's
/// commit.
pub fn execute(account: Account<'_>, command: AdminCommand) -> Result<Value, AdminError> {
    let config = account.config;
    let store = account.store.clone();
    let registry = account.registry;
    let keys = account.access_keys;
    let ca = account.ca;
    let dir = DataDir::new(&config.data_dir);
    let now = (now_ms() / 1000) as i64;
    let arn = |id: &str| format!("arn:aws:iot:{}:{}:cert/{id}", config.region, config.account);
    let output = match command {
        AdminCommand::CreateThing {
            thing_name,
            thing_type_name,
            attributes,
        } => {
            let mut attrs = BTreeMap::new();
            for pair in attributes {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| AdminError::Attribute(pair.clone()))?;
                attrs.insert(k.to_owned(), v.to_owned());
            }
            registry.create_thing(&thing_name, thing_type_name.as_deref(), attrs)?;
            json!({
                "thingName": thing_name,
                "thingArn": format!("arn:aws:iot:{}:{}:thing/{thing_name}", config.region, config.account),
            })
        }
        AdminCommand::ListThings => json!({
            "things": registry.things().map(|t| json!({
                "thingName": t.name,
                "thingTypeName": t.type_name,
                "attributes": t.attributes,
            })).collect::<Vec<_>>()
        }),
        AdminCommand::CreateKeysAndCertificate {
            set_as_active,
            out_dir,
        } => {
            let issued = create_keys_and_certificate(registry, ca, set_as_active, now)?;
            let out = out_dir.unwrap_or_else(|| dir.certs());
            std::fs::create_dir_all(&out).map_err(|error| AdminError::Io {
                path: out.clone(),
                error,
            })?;
            let id = issued.certificate_id.as_str();
            let write = |name: &str, text: &str, private: bool| -> Result<PathBuf, AdminError> {
                let path = out.join(format!("{id}.{name}"));
                write_file(&path, text, private)?;
                Ok(path)
            };
            let cert_path = write("cert.pem", &issued.certificate_pem, false)?;
            let key_path = write("private.key", &issued.private_key_pem, true)?;
            write("public.key", &issued.public_key_pem, false)?;
            json!({
                "certificateArn": arn(id),
                "certificateId": id,
                "certificatePem": issued.certificate_pem,
                "keyPair": {"PublicKey": issued.public_key_pem, "PrivateKey": issued.private_key_pem},
                "files": {"certificate": cert_path, "privateKey": key_path, "rootCA": dir.ca_cert()},
            })
        }
        AdminCommand::UpdateCertificate {
            certificate_id,
            new_status,
        } => {
            let id = CertificateId::parse(&principal_id(&certificate_id))?;
            let status: CertificateStatus =
                new_status.parse().map_err(AdminError::CertificateStatus)?;
            registry.set_certificate_status(&id, status)?;
            json!({})
        }
        AdminCommand::ListCertificates => json!({
            "certificates": registry.certificates().map(|c| json!({
                "certificateArn": arn(c.certificate.id().as_str()),
                "certificateId": c.certificate.id().as_str(),
                "status": c.status.as_str(),
            })).collect::<Vec<_>>()
        }),
        AdminCommand::AttachThingPrincipal {
            thing_name,
            principal,
        } => {
            registry.attach_thing_principal(&thing_name, &principal_id(&principal))?;
            json!({})
        }
        AdminCommand::CreatePolicy {
            policy_name,
            policy_document,
        } => {
            let document = read_document(&policy_document)?;
            registry.create_policy(&policy_name, &document)?;
            json!({
                "policyName": policy_name,
                "policyArn": format!("arn:aws:iot:{}:{}:policy/{policy_name}", config.region, config.account),
                "policyDocument": document,
                "policyVersionId": "1",
            })
        }
        AdminCommand::AttachPolicy {
            policy_name,
            target,
        } => {
            registry.attach_policy(&policy_name, &principal_id(&target))?;
            json!({})
        }
        AdminCommand::CreateAccessKey { user_name } => {
            let key = keys.create(&user_name, now as u64)?;
            keys.save(&mut store.borrow_mut());
            json!({
                "AccessKey": {
                    "UserName": key.user_name,
                    "AccessKeyId": key.access_key_id,
                    "Status": "Active",
                    "SecretAccessKey": key.secret_access_key,
                },
                "principal": keys.principal(&key),
            })
        }
        AdminCommand::CreateLoginProfile {
            user_name,
            password,
        } => {
            keys.set_login_profile(&user_name, &password)?;
            keys.save(&mut store.borrow_mut());
            json!({
                "LoginProfile": {"UserName": user_name, "CreateDate": now},
                "principal": crate::store::access_keys::user_arn(&config.account, &user_name),
            })
        }
        AdminCommand::ListAccessKeys => {
            json!({
                "AccessKeyMetadata": keys.iter().map(|k| json!({
                    "UserName": k.user_name,
                    "AccessKeyId": k.access_key_id,
                    "Status": if k.active { "Active" } else { "Inactive" },
                    "principal": keys.principal(k),
                })).collect::<Vec<_>>()
            })
        }
        AdminCommand::UpdateAccessKey {
            access_key_id,
            status,
        } => {
            let active = match status.as_str() {
                "Active" => true,
                "Inactive" => false,
                other => return Err(AdminError::AccessKeyStatus(other.to_owned())),
            };
            keys.set_active(&access_key_id, active)?;
            keys.save(&mut store.borrow_mut());
            json!({})
        }
        AdminCommand::Greengrass(command) => {
            let output = greengrass::execute(registry, account.greengrass, command, now as u64)?;
            account.greengrass.save(&mut store.borrow_mut());
            return Ok(output);
        }
        AdminCommand::GetThingShadow {
            thing_name,
            shadow_name,
        } => {
            let key = match shadow_name {
                Some(name) => ShadowKey::named(thing_name, name),
                None => ShadowKey::classic(thing_name),
            };
            let mut shadows = ShadowService::new(DurableShadows::new(store.clone()));
            return shadows
                .get(&key, b"", now_ms())
                .map_err(|(error, _)| AdminError::Shadow(error.to_json(now as u64, None)));
        }
    };
    store.borrow_mut().put_registry_json(&registry.to_json());
    Ok(output)
}

/// Makes a command independent of the caller's working directory before it travels to a running
/// broker: a `file://` policy document is read here, an output directory made absolute.
pub fn resolve_local_paths(command: AdminCommand) -> Result<AdminCommand, AdminError> {
    Ok(match command {
        AdminCommand::CreatePolicy {
            policy_name,
            policy_document,
        } => AdminCommand::CreatePolicy {
            policy_name,
            policy_document: read_document(&policy_document)?,
        },
        AdminCommand::CreateKeysAndCertificate {
            set_as_active,
            out_dir: Some(dir),
        } if dir.is_relative() => AdminCommand::CreateKeysAndCertificate {
            set_as_active,
            out_dir: Some(
                std::env::current_dir()
                    .map_err(|error| AdminError::Io {
                        path: dir.clone(),
                        error,
                    })?
                    .join(dir),
            ),
        },
        other => other,
    })
}

/// A policy document given inline or as `file://path`.
fn read_document(text: &str) -> Result<String, AdminError> {
    match text.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(Path::new(path)).map_err(|error| AdminError::Io {
            path: PathBuf::from(path),
            error,
        }),
        None => Ok(text.to_owned()),
    }
}

/// Runs one administrative command: on the data directory when the broker is stopped, else
/// through the running broker's admin socket. Returns AWS-CLI-shaped JSON.
pub fn run(config: &BrokerConfig, command: AdminCommand) -> Result<Value, AdminError> {
    run_each(config, |exec| exec(command))
}

/// Runs several commands, `script` deciding each from the answers before it (a certificate's
/// ARN, say): on the data directory when the broker is stopped (opened once, committed once at
/// the end, nothing committed if `script` fails), else one by one through the running broker's
/// admin socket.
pub fn run_each<T>(
    config: &BrokerConfig,
    script: impl FnOnce(
        &mut dyn FnMut(AdminCommand) -> Result<Value, AdminError>,
    ) -> Result<T, AdminError>,
) -> Result<T, AdminError> {
    let dir = DataDir::new(&config.data_dir);
    match dir.open(config, (now_ms() / 1000) as i64) {
        Ok(Opened {
            store,
            mut registry,
            ca,
            ..
        }) => {
            let mut access_keys = AccessKeys::load(&store, &config.account)?;
            let mut greengrass = CoreDevices::load(&store)?;
            let store = store.shared();
            let output = script(&mut |command| {
                execute(
                    Account {
                        config,
                        store: store.clone(),
                        registry: &mut registry,
                        ca: &ca,
                        access_keys: &mut access_keys,
                        greengrass: &mut greengrass,
                    },
                    command,
                )
            })?;
            store.borrow_mut().commit()?;
            Ok(output)
        }
        #[cfg(unix)]
        Err(SetupError::Locked(_)) => {
            script(&mut |command| socket::request(&config.data_dir, &resolve_local_paths(command)?))
        }
        Err(error) => Err(error.into()),
    }
}

/// The policy of web dashboard users: connect as `dashboard-*`, watch the edge cores (`edge/…`,
/// `fleet/…`) and every car (telemetry,
/// command results, lifecycle events, shadows) and talk to them (commands, shadow updates and
/// gets).
pub fn dashboard_policy(region: &str, account: &str) -> String {
    let arn = format!("arn:aws:iot:{region}:{account}");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/dashboard-*")},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                format!("{arn}:topicfilter/cars/*"),
                format!("{arn}:topicfilter/$aws/events/presence/*"),
                format!("{arn}:topicfilter/$aws/things/*"),
                format!("{arn}:topicfilter/edge/*"),
                format!("{arn}:topicfilter/fleet/*"),
            ]},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": [
                format!("{arn}:topic/cars/*"),
                format!("{arn}:topic/$aws/events/presence/*"),
                format!("{arn}:topic/$aws/things/*"),
                format!("{arn}:topic/edge/*"),
                format!("{arn}:topic/fleet/*"),
            ]},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": [
                format!("{arn}:topic/cars/*/commands"),
                format!("{arn}:topic/$aws/things/*/shadow/update"),
                format!("{arn}:topic/$aws/things/*/shadow/get"),
            ]},
        ]
    })
    .to_string()
}
