//! Starting and stopping the edge core: its data directory (store, CA, server certificate), the
//! engine thread with the local broker and the [`EdgeCore`] program, the TLS listener for client
//! devices, and the link to the cloud.
//!
//! ```text
//! {data_dir}/store.redb        local shadows, sessions, retained messages, the spool, sync records
//! {data_dir}/ca/ca.pem, ca.key the core's own CA (devices trust it after discovery)
//! {data_dir}/server/           the local broker's server certificate, issued at every start
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iot_auth::client_device::DeviceGroups;
use iot_auth::endpoint::{EndpointError, SniResolver, certified_key, server_config};
use iot_auth::x509::CertificateId;
use iot_broker_core::Broker;
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::profile::Profile;
use iot_shadow::ShadowService;
use iot_shadow::sync::{ShadowSync, SyncRecord};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::bridge::{Bridge, BridgeEndpoint, MappingError};
use super::device_auth::ClientDeviceAuthorizer;
use super::fleet_summary::FleetSummary;
use super::handlers::LocalHandler;
use super::predictions::handler::{PredictionSettings, PredictionStats, Predictions};
use super::predictions::model::{BUILT_IN_MODEL, ModelError, PredictionModel};
use super::predictions::slot::{ModelSlot, watch_file};
use super::program::{EdgeCore, EdgeParts, EdgeRequest, EdgeStatus, status_topic};
use super::services::EdgeServices;
use super::spool::{Spool, SpoolConfig};
use super::{cloud_link, sync_config};
use crate::config::edge::EdgeConfig;
use crate::device::greengrass;
use crate::device::{
    ClientSession, Endpoint, ReconnectPolicy, SessionOptions, TlsConfigError, Transport,
    WillMessage, client_tls_config,
};
use crate::engine::{self, EngineHandle, connection, now_ms};
use crate::net::accept::Acceptor;
use crate::net::listener::{BindError, accept_tls, bind, local_addr};
use crate::store::data_dir::{SetupError, load_or_create_ca, write_file};
use crate::store::discover_response::ConnectivityInfo;
use crate::store::spool::DurableSpool;
use crate::store::{BrokerPersistence, DurableShadows, Store, StoreError};

/// Why the edge core did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeStartError {
    /// The data directory could not be prepared.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener could not bind.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// TLS could not be configured.
    #[error("TLS: {0}")]
    Tls(#[from] EndpointError),
    /// A PEM file for TLS could not be used.
    #[error("TLS: {0}")]
    TlsFiles(#[from] TlsConfigError),
    /// The client devices' CA file is unusable.
    #[error("client device CA {path}: {reason}")]
    ClientDeviceCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The device groups are invalid.
    #[error("device_groups: {0}")]
    DeviceGroups(String),
    /// A bridge mapping is invalid.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The prediction model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The engine thread could not start.
    #[error("the engine thread stopped")]
    Engine,
}

/// A started edge core.
#[derive(Debug)]
pub struct RunningEdge {
    /// Where client devices connect (MQTT over TLS).
    pub local_mqtts: SocketAddr,
    /// The engine.
    pub engine: EngineHandle<EdgeRequest>,
    /// The core's CA certificate (PEM): what devices trust, published for discovery.
    pub ca_pem: String,
    /// The prediction handler's model and counters, when it runs.
    pub predictions: Option<PredictionParts>,
    stop: watch::Sender<bool>,
    registered: watch::Receiver<bool>,
    link: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    engine_thread: Option<EngineThread>,
}

/// The core's local broker profile: plain MQTT 3.1.1 (QoS 2, retained to wildcards, keep-alive
/// as sent) with the configured session queue.
pub fn local_profile(config: &EdgeConfig) -> Profile {
    let mut profile = Profile::standard();
    profile.max_queued = config.local.max_queued;
    profile
}

/// The engine thread; it ends with the store's last commit result.
type EngineThread = std::thread::JoinHandle<Result<(), StoreError>>;

struct Init {
    server_cert_pem: String,
    server_key_pem: String,
    ca_pem: String,
}

/// The prediction handler's shared parts, when it runs.
#[derive(Debug, Clone)]
pub struct PredictionParts {
    /// The model in use.
    pub slot: Arc<ModelSlot>,
    /// Its counters.
    pub stats: Arc<PredictionStats>,
}

fn prediction_parts(config: &EdgeConfig) -> Result<Option<PredictionParts>, EdgeStartError> {
    if !config.predictions.enabled {
        return Ok(None);
    }
    let model = if config.predictions.model.as_os_str().is_empty() {
        PredictionModel::from_bytes(BUILT_IN_MODEL, "built-in")?
    } else {
        PredictionModel::from_path(&config.predictions.model)?
    };
    tracing::info!(
        model = model.id(),
        source = model.source(),
        "edge: prediction model loaded"
    );
    Ok(Some(PredictionParts {
        slot: ModelSlot::new(model),
        stats: Arc::default(),
    }))
}

fn handlers(
    config: &EdgeConfig,
    predictions: Option<&PredictionParts>,
    now: u64,
) -> Vec<Box<dyn LocalHandler>> {
    let mut handlers: Vec<Box<dyn LocalHandler>> = Vec::new();
    if let Some(parts) = predictions {
        let settings = &config.predictions;
        handlers.push(Box::new(Predictions::new(
            PredictionSettings {
                telemetry_filter: settings.telemetry_filter.clone(),
                anomaly_threshold: settings.anomaly_threshold,
                report_min_change_km: settings.report_min_change_km,
                report_every_ms: settings.report_every_secs.saturating_mul(1000),
            },
            parts.slot.clone(),
            parts.stats.clone(),
        )));
    }
    if config.fleet_summary.enabled {
        handlers.push(Box::new(FleetSummary::new(
            &config.thing_name,
            &config.fleet_summary.telemetry_filter,
            &config.fleet_summary_topic(),
            config.fleet_summary.every_secs.saturating_mul(1000),
            now,
        )));
    }
    handlers
}

/// The core's session towards the cloud: persistent, its will marks it offline.
fn cloud_session(config: &EdgeConfig) -> ClientSession {
    let offline = serde_json::json!({"online": false, "core": config.thing_name}).to_string();
    let mut options = SessionOptions::new(config.thing_name.as_str())
        .persistent()
        .keep_alive_secs(config.cloud.keep_alive_secs)
        .will(WillMessage {
            topic: status_topic(&config.thing_name),
            payload: offline.into(),
            qos: mqtt_codec::QoS::AtLeastOnce,
            retain: true,
        })
        .username(format!(
            "?SDK=aws-iot-rs-edge&Version={}",
            env!("CARGO_PKG_VERSION")
        ));
    options.max_publishes_per_second = config.cloud.max_publishes_per_second;
    ClientSession::new(options)
}

/// Opens the data directory on a new engine thread and runs the engine there.
fn spawn_engine(
    config: &EdgeConfig,
    predictions: Option<PredictionParts>,
) -> Result<(EngineHandle<EdgeRequest>, Init, EngineThread), EdgeStartError> {
    let groups = DeviceGroups::from_json(&config.device_groups)
        .map_err(|e| EdgeStartError::DeviceGroups(e.to_string()))?;
    let bridge = Bridge::new(&config.mappings)?;
    let (init_tx, init_rx) = std::sync::mpsc::channel::<Result<Init, EdgeStartError>>();
    let (handle, events) = engine::channel(crate::config::DEFAULT_OUTPUT_BUDGET);
    let config = config.clone();
    let thread = std::thread::Builder::new()
        .name("edge-engine".into())
        .spawn(move || {
            let now = now_ms();
            let opened = open_data_dir(&config, now);
            let (store, restored, records, init) = match opened {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = init_tx.send(Err(error));
                    return Ok(());
                }
            };
            let store = store.shared();
            let cloud_filters = bridge.filters_from(BridgeEndpoint::IotCore);
            let shadows = ShadowService::new(DurableShadows::new(store.clone()));
            let broker = Broker::builder(local_profile(&config))
                .authorizer(ClientDeviceAuthorizer::new(groups))
                .reserved(EdgeServices::new(shadows, bridge))
                .persistence(BrokerPersistence::new(store.clone(), restored))
                .seed(now)
                .build(now);
            let durable = match DurableSpool::open(store.clone()) {
                Ok(durable) => durable,
                Err(error) => {
                    let _ = init_tx.send(Err(error.into()));
                    return Ok(());
                }
            };
            let spool = Spool::open(
                SpoolConfig {
                    max_bytes: config.spool.max_bytes,
                    keep_qos0_when_offline: config.spool.keep_qos0_when_offline,
                },
                durable,
            );
            let sync = ShadowSync::new(sync_config(&config.shadow_sync), records);
            let sync_all = config.shadow_sync.things.iter().any(|t| t == "*");
            let sync_things = config
                .shadow_sync
                .things
                .iter()
                .filter(|t| *t != "*")
                .cloned()
                .collect();
            let mut program = EdgeCore::new(
                EdgeParts {
                    thing_name: config.thing_name.clone(),
                    session: cloud_session(&config),
                    spool,
                    max_inflight: config.cloud.max_inflight,
                    sync,
                    sync_all,
                    sync_things,
                    handlers: handlers(&config, predictions.as_ref(), now),
                },
                now,
            );
            program.subscribe_cloud(&cloud_filters, now);
            let _ = init_tx.send(Ok(init));
            engine::run(program, broker, store, events)
        })
        .map_err(|_| EdgeStartError::Engine)?;
    let init = init_rx.recv().map_err(|_| EdgeStartError::Engine)??;
    Ok((handle, init, thread))
}

type Opened = (
    Store,
    iot_broker_core::persist::Restored,
    Vec<(iot_shadow::ShadowKey, SyncRecord)>,
    Init,
);

fn open_data_dir(config: &EdgeConfig, now_ms: u64) -> Result<Opened, EdgeStartError> {
    let root = &config.data_dir;
    let server_dir = root.join("server");
    std::fs::create_dir_all(&server_dir).map_err(|error| SetupError::Io {
        path: server_dir.clone(),
        error,
    })?;
    let now_secs = (now_ms / 1000) as i64;
    let ca = load_or_create_ca(
        &root.join("ca"),
        &format!("{} Greengrass core CA", config.thing_name),
        now_secs,
    )?;
    // A fresh server certificate at every start (so a changed host address is always covered).
    let server = ca
        .issue_server(&config.local.host_addresses, now_secs)
        .map_err(|e| SetupError::Certificates(e.to_string()))?;
    write_file(
        &server_dir.join("server.key"),
        &server.private_key_pem,
        true,
    )?;
    write_file(
        &server_dir.join("server.pem"),
        &server.certificate_pem,
        false,
    )?;
    let store = Store::open(&root.join("store.redb")).map_err(|e| match e {
        StoreError::Redb(text) if text.contains("already open") || text.contains("lock") => {
            EdgeStartError::Setup(SetupError::Locked(root.join("store.redb")))
        }
        other => EdgeStartError::Store(other),
    })?;
    let restored = store.load_broker_state()?;
    let records = store
        .load_sync_records()?
        .into_iter()
        .filter_map(|(key, json)| match SyncRecord::from_json(&json) {
            Ok(record) => Some((key, record)),
            Err(error) => {
                tracing::warn!(thing = key.thing, %error, "edge: an unreadable sync record is ignored (full sync)");
                None
            }
        })
        .collect();
    Ok((
        store,
        restored,
        records,
        Init {
            server_cert_pem: server.certificate_pem,
            server_key_pem: server.private_key_pem,
            ca_pem: ca.certificate_pem(),
        },
    ))
}

fn client_device_verifier(
    config: &EdgeConfig,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, EdgeStartError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let path = &config.local.client_device_ca;
    let error = |reason: String| EdgeStartError::ClientDeviceCa {
        path: path.clone(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))? {
        roots
            .add(cert.map_err(|e| error(e.to_string()))?)
            .map_err(|e| error(e.to_string()))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| error(e.to_string()))
}

/// Starts the edge core described by `config`.
pub async fn start(config: &EdgeConfig) -> Result<RunningEdge, EdgeStartError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_device_verifier(config, &provider)?;
    let cloud_tls = client_tls_config(
        &config.cloud.ca,
        Some((&config.cloud.certificate, &config.cloud.private_key)),
    )?;
    let predictions = prediction_parts(config)?;
    let (engine, init, engine_thread) = spawn_engine(config, predictions.clone())?;
    let key = certified_key(&init.server_cert_pem, &init.server_key_pem, &provider)?;
    let resolver = Arc::new(SniResolver::new(
        key,
        config.local.host_addresses.clone(),
        false,
    ));
    let acceptor = TlsAcceptor::from(Arc::new(server_config(
        provider.clone(),
        verifier,
        resolver,
        &[],
    )?));
    let listener = bind(
        SocketAddr::new(config.local.bind, config.local.mqtts_port),
        crate::config::DEFAULT_BACKLOG,
    )
    .await?;
    let local_mqtts = local_addr(&listener);
    let limits = local_profile(config).limits;
    let mut tasks = vec![tokio::spawn(accept_loop(
        Acceptor::new(
            "local_mqtts",
            listener,
            crate::config::DEFAULT_MAX_CONNECTIONS,
        ),
        acceptor,
        engine.clone(),
        limits,
    ))];
    let (stop, shutdown) = watch::channel(false);
    let endpoints = vec![Endpoint {
        host: config.cloud.host.clone(),
        port: config.cloud.mqtts_port,
        transport: Transport::Tls(cloud_tls),
    }];
    if let Some(parts) = &predictions
        && !config.predictions.model.as_os_str().is_empty()
    {
        tasks.push(tokio::spawn(watch_file(
            parts.slot.clone(),
            config.predictions.model.clone(),
            Duration::from_secs(config.predictions.reload_check_secs),
            shutdown.clone(),
        )));
    }
    let link = tokio::spawn(cloud_link::run(
        endpoints,
        engine.clone(),
        ReconnectPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
        },
        shutdown,
    ));
    let (registered_tx, registered) = watch::channel(false);
    if config.cloud.register_connectivity {
        tasks.push(tokio::spawn(register(
            config.clone(),
            local_mqtts.port(),
            init.ca_pem.clone(),
            registered_tx,
        )));
    }
    tracing::info!(%local_mqtts, core = config.thing_name, "edge core started");
    Ok(RunningEdge {
        local_mqtts,
        engine,
        ca_pem: init.ca_pem,
        predictions,
        stop,
        registered,
        link: Some(link),
        tasks,
        engine_thread: Some(engine_thread),
    })
}

/// Tells the cloud where the core is and which CA signs its server certificate (Greengrass's
/// `UpdateConnectivityInfo` and `PutCertificateAuthorities`), so client devices discover it;
/// retried with a growing delay until the cloud has both.
async fn register(config: EdgeConfig, port: u16, ca_pem: String, done: watch::Sender<bool>) {
    let tls = match client_tls_config(
        &config.cloud.ca,
        Some((&config.cloud.certificate, &config.cloud.private_key)),
    ) {
        Ok(tls) => tls,
        Err(error) => {
            tracing::error!(%error, "edge: cannot register with the cloud");
            return;
        }
    };
    let cloud = Endpoint {
        host: config.cloud.host.clone(),
        port: config.cloud.https_port,
        transport: Transport::Tls(tls),
    };
    let entries: Vec<ConnectivityInfo> = config
        .local
        .host_addresses
        .iter()
        .enumerate()
        .map(|(i, host)| ConnectivityInfo {
            id: format!("{}-{i}", config.thing_name),
            host_address: host.clone(),
            port_number: port,
            metadata: "local MQTT over TLS".into(),
        })
        .collect();
    let mut delay = Duration::from_millis(500);
    loop {
        let result = async {
            greengrass::put_certificate_authorities(
                &cloud,
                &config.thing_name,
                std::slice::from_ref(&ca_pem),
            )
            .await?;
            greengrass::update_connectivity_info(&cloud, &config.thing_name, &entries).await
        }
        .await;
        match result {
            Ok(version) => {
                tracing::info!(
                    version,
                    port,
                    "edge: connectivity and CA registered for discovery"
                );
                let _ = done.send(true);
                return;
            }
            Err(error) => {
                tracing::info!(%error, "edge: registering for discovery failed; will retry");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn accept_loop(
    mut listener: Acceptor,
    acceptor: TlsAcceptor,
    engine: EngineHandle<EdgeRequest>,
    limits: mqtt_codec::Limits,
) {
    loop {
        let (stream, peer, permit) = listener.next().await;
        let acceptor = acceptor.clone();
        let engine = engine.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let Some(tls) = accept_tls(&acceptor, stream, peer).await else {
                return;
            };
            let principal = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| CertificateId::of_der(der.as_ref()).as_str().to_owned());
            let transport = TransportInfo {
                principal: principal.map(|p| Arc::from(p.as_str())),
                remote_addr: Some(Arc::from(peer.to_string())),
            };
            connection::serve(tls, transport, engine, limits).await;
            drop(permit);
        });
    }
}

impl RunningEdge {
    /// Waits until the cloud knows the core's connectivity and CA (so devices discover it), at
    /// most `timeout`; whether it does.
    pub async fn registered(&self, timeout: Duration) -> bool {
        let mut registered = self.registered.clone();
        tokio::time::timeout(timeout, registered.wait_for(|done| *done))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The core's state.
    pub async fn status(&self) -> Option<EdgeStatus> {
        self.engine.ask(|reply| EdgeRequest::Status { reply }).await
    }

    /// Graceful stop: the cloud is told the core goes offline, the link closes, local clients
    /// are closed (persistent sessions stay), the store is committed.
    pub async fn shutdown(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.engine.ask(|reply| EdgeRequest::Stop { reply }),
        )
        .await;
        let _ = self.stop.send(true);
        if let Some(link) = self.link.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), link).await;
        }
        for task in &self.tasks {
            task.abort();
        }
        self.engine.shutdown().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(thread) = self.engine_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
