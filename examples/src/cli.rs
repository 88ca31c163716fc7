//! The cloud broker's command line: `serve` (the default) and the AWS-CLI-style administrative
//! commands. The `broker` example and the `aws-iot-broker` binary both run [`main`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::access_keys::AccessKeys;
use crate::config::BrokerConfig;
use crate::data_dir::{DataDir, Opened, write_file};
use crate::engine::now_ms;
use crate::store::DurableShadows;
use clap::{Parser, Subcommand};
use iot_auth::provision::create_keys_and_certificate;
use iot_auth::registry::{CertificateRegistry, CertificateStatus};
use iot_auth::x509::CertificateId;
use iot_shadow::{ShadowKey, ShadowService};
use serde_json::json;

/// AWS IoT Core on one machine: MQTT over TLS with X.509 client certificates, HTTPS publish and
/// MQTT over WebSocket with SigV4, IoT policies and the Device Shadow service, durable by default.
///
/// Without a command it serves (MQTT/TLS on 8883, HTTPS, WebSocket and ALPN MQTT on 8443,
/// metrics on 127.0.0.1:9464), creating the data directory with a development CA on first run.
/// The other commands act on the data directory as the AWS CLI acts on your account; run them
/// while the broker is stopped.
#[derive(Debug, Parser)]
#[command(name = "aws-iot-broker", version)]
struct Cli {
    /// Configuration file (TOML; see examples/broker.example.toml). Defaults need none.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration's `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MQTT/TLS, HTTPS and MQTT over WebSocket until SIGINT or SIGTERM (the default).
    Serve,
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
}

fn principal_id(text: &str) -> String {
    text.rsplit_once("cert/")
        .map_or(text, |(_, id)| id)
        .to_owned()
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut config = match BrokerConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => return fail(error),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        command => match admin(&config, command) {
            Ok(output) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail(error),
        },
    }
}

fn serve(config: &BrokerConfig) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(error),
    };
    runtime.block_on(async {
        let running = match crate::server::start(config).await {
            Ok(running) => running,
            Err(error) => return fail(error),
        };
        let ready = json!({
            "mqtts": running.mqtts.to_string(),
            "alpn": running.alpn.map(|a| a.to_string()),
            "plain_mqtt": running.plain_mqtt.map(|a| a.to_string()),
            "metrics": running.metrics.map(|a| a.to_string()),
            "ca": DataDir::new(&config.data_dir).ca_cert().display().to_string(),
        });
        tracing::info!(%ready, "broker ready");
        println!("READY {ready}");
        wait_for_signal().await;
        tracing::info!("shutting down: closing connections, firing wills, committing the store");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs one administrative command against the data directory; returns AWS-CLI-shaped JSON.
fn admin(config: &BrokerConfig, command: Command) -> Result<serde_json::Value, String> {
    let dir = DataDir::new(&config.data_dir);
    let now = (now_ms() / 1000) as i64;
    let Opened {
        mut store,
        mut registry,
        ca,
        ..
    } = dir.open(config, now).map_err(|e| e.to_string())?;
    let arn = |id: &str| format!("arn:aws:iot:{}:{}:cert/{id}", config.region, config.account);
    let output = match command {
        Command::Serve => return Err("serve is not an admin command".into()),
        Command::CreateThing {
            thing_name,
            thing_type_name,
            attributes,
        } => {
            let mut attrs = BTreeMap::new();
            for pair in attributes {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("attribute {pair:?} is not name=value"))?;
                attrs.insert(k.to_owned(), v.to_owned());
            }
            registry
                .create_thing(&thing_name, thing_type_name.as_deref(), attrs)
                .map_err(|e| e.to_string())?;
            json!({
                "thingName": thing_name,
                "thingArn": format!("arn:aws:iot:{}:{}:thing/{thing_name}", config.region, config.account),
            })
        }
        Command::ListThings => json!({
            "things": registry.things().map(|t| json!({
                "thingName": t.name,
                "thingTypeName": t.type_name,
                "attributes": t.attributes,
            })).collect::<Vec<_>>()
        }),
        Command::CreateKeysAndCertificate {
            set_as_active,
            out_dir,
        } => {
            let issued = create_keys_and_certificate(&mut registry, &ca, set_as_active, now)
                .map_err(|e| e.to_string())?;
            let out = out_dir.unwrap_or_else(|| dir.certs());
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let id = issued.certificate_id.as_str();
            let write = |name: &str, text: &str, private: bool| -> Result<PathBuf, String> {
                let path = out.join(format!("{id}.{name}"));
                write_file(&path, text, private).map_err(|e| e.to_string())?;
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
        Command::UpdateCertificate {
            certificate_id,
            new_status,
        } => {
            let id =
                CertificateId::parse(&principal_id(&certificate_id)).map_err(|e| e.to_string())?;
            let status: CertificateStatus = new_status.parse()?;
            registry
                .set_certificate_status(&id, status)
                .map_err(|e| e.to_string())?;
            json!({})
        }
        Command::ListCertificates => json!({
            "certificates": registry.certificates().map(|c| json!({
                "certificateArn": arn(c.certificate.id().as_str()),
                "certificateId": c.certificate.id().as_str(),
                "status": c.status.as_str(),
            })).collect::<Vec<_>>()
        }),
        Command::AttachThingPrincipal {
            thing_name,
            principal,
        } => {
            registry
                .attach_thing_principal(&thing_name, &principal_id(&principal))
                .map_err(|e| e.to_string())?;
            json!({})
        }
        Command::CreatePolicy {
            policy_name,
            policy_document,
        } => {
            let document = read_document(&policy_document)?;
            registry
                .create_policy(&policy_name, &document)
                .map_err(|e| e.to_string())?;
            json!({
                "policyName": policy_name,
                "policyArn": format!("arn:aws:iot:{}:{}:policy/{policy_name}", config.region, config.account),
                "policyDocument": document,
                "policyVersionId": "1",
            })
        }
        Command::AttachPolicy {
            policy_name,
            target,
        } => {
            registry
                .attach_policy(&policy_name, &principal_id(&target))
                .map_err(|e| e.to_string())?;
            json!({})
        }
        Command::CreateAccessKey { user_name } => {
            let mut keys = AccessKeys::load(&store, &config.account).map_err(|e| e.to_string())?;
            let key = keys.create(&user_name, now as u64)?;
            keys.save(&mut store);
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
        Command::ListAccessKeys => {
            let keys = AccessKeys::load(&store, &config.account).map_err(|e| e.to_string())?;
            json!({
                "AccessKeyMetadata": keys.iter().map(|k| json!({
                    "UserName": k.user_name,
                    "AccessKeyId": k.access_key_id,
                    "Status": if k.active { "Active" } else { "Inactive" },
                    "principal": keys.principal(k),
                })).collect::<Vec<_>>()
            })
        }
        Command::UpdateAccessKey {
            access_key_id,
            status,
        } => {
            let mut keys = AccessKeys::load(&store, &config.account).map_err(|e| e.to_string())?;
            let active = match status.as_str() {
                "Active" => true,
                "Inactive" => false,
                other => return Err(format!("status {other:?} is not Active or Inactive")),
            };
            keys.set_active(&access_key_id, active)?;
            keys.save(&mut store);
            json!({})
        }
        Command::GetThingShadow {
            thing_name,
            shadow_name,
        } => {
            let key = match shadow_name {
                Some(name) => ShadowKey::named(thing_name, name),
                None => ShadowKey::classic(thing_name),
            };
            let mut shadows = ShadowService::new(DurableShadows::new(store.shared()));
            return shadows
                .get(&key, b"", now_ms())
                .map_err(|(error, _)| error.to_json(now as u64, None));
        }
    };
    save(&mut store, &registry)?;
    Ok(output)
}

fn save(store: &mut crate::store::Store, registry: &CertificateRegistry) -> Result<(), String> {
    store.put_registry_json(&registry.to_json());
    store.commit().map_err(|e| e.to_string())
}

fn read_document(text: &str) -> Result<String, String> {
    match text.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(Path::new(path)).map_err(|e| format!("{path}: {e}")),
        None => Ok(text.to_owned()),
    }
}
