//! Starting and stopping the cloud broker: the engine thread, the TLS listeners (8883 and the ALPN
//! port), the optional plain loopback listener, the admin socket and the metrics endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use iot_auth::endpoint::{
    ALPN_HTTP_1_1, ALPN_HTTP_CA, ALPN_MQTT_CA, EndpointError, Port443Route, SniResolver,
    certified_key, route_443, server_config,
};
use iot_auth::policy::ResourceArns;
use iot_auth::registry::{CertificateRegistry, Refusal};
use iot_auth::sigv4::Verifier;
use iot_auth::verifier::RegistryClientVerifier;
use iot_broker_core::Broker;
use iot_broker_core::auth::TransportInfo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::authorizer::{LOCAL_DEVELOPMENT_PRINCIPAL, PolicyAuthorizer};
use super::http::HttpContext;
use super::metrics::{self, RefusalCounts, RefusalKind};
use super::program::{BrokerRequest, CloudBroker};
use super::services::CloudServices;
use crate::config::BrokerConfig;
use crate::engine::{self, EngineHandle, connection, now_ms};
use crate::net::accept::Acceptor;
use crate::net::listener::{BindError, accept_tls, bind, local_addr};
use crate::store::access_keys::{AccessKeys, SharedAccessKeys};
use crate::store::data_dir::{DataDir, SetupError};
use crate::store::greengrass::{CoreDevices, SharedCoreDevices};
use crate::store::{BrokerPersistence, DurableShadows, StoreError};

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory could not be prepared.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A listener could not bind.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// TLS could not be configured from the server certificate.
    #[error("TLS: {0}")]
    Tls(#[from] EndpointError),
    /// The admin socket could not be created.
    #[error("cannot bind the admin socket {path}: {error}")]
    AdminSocket {
        /// The socket's path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The dashboard login could not be prepared (no randomness, no hashing).
    #[error("dashboard login: {0}")]
    Login(String),
    /// The engine thread could not start, or stopped at start.
    #[error("the engine thread stopped")]
    Engine,
}

/// A started broker.
#[derive(Debug)]
pub struct Running {
    /// Where MQTT over TLS listens.
    pub mqtts: SocketAddr,
    /// The ALPN (443-style) port.
    pub alpn: Option<SocketAddr>,
    /// The plain MQTT loopback port.
    pub plain_mqtt: Option<SocketAddr>,
    /// The metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// The engine.
    pub engine: EngineHandle<BrokerRequest>,
    /// The registry the TLS verifier enforces.
    pub registry: Arc<RwLock<CertificateRegistry>>,
    /// The admin socket's path (removed at shutdown).
    pub admin_socket: std::path::PathBuf,
    listeners: Vec<JoinHandle<()>>,
    engine_thread: Option<EngineThread>,
}

/// What the engine thread hands back once the data directory is open.
struct Init {
    registry: Arc<RwLock<CertificateRegistry>>,
    access_keys: Arc<RwLock<AccessKeys>>,
    greengrass: SharedCoreDevices,
    server_cert_pem: String,
    server_key_pem: String,
}

/// The engine thread; it ends with the store's last commit result.
type EngineThread = std::thread::JoinHandle<Result<(), StoreError>>;

/// Opens the data directory on a new engine thread (the store is not `Send`: it lives there)
/// and runs the engine on it.
fn spawn_engine(
    config: &BrokerConfig,
) -> Result<(EngineHandle<BrokerRequest>, Init, EngineThread), StartError> {
    let (init_tx, init_rx) = std::sync::mpsc::channel::<Result<Init, SetupError>>();
    let (handle, events) = engine::channel(config.limits.output_budget_bytes);
    let config = config.clone();
    let thread = std::thread::Builder::new()
        .name("broker-engine".into())
        .spawn(move || {
            let now = now_ms();
            let opened = DataDir::new(&config.data_dir)
                .open(&config, (now / 1000) as i64)
                .and_then(|opened| {
                    let restored = opened.store.load_broker_state()?;
                    let keys = AccessKeys::load(&opened.store, &config.account)?;
                    let greengrass = CoreDevices::load(&opened.store)?;
                    Ok((opened, restored, keys, greengrass))
                });
            let (opened, restored, access_keys, greengrass) = match opened {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = init_tx.send(Err(error));
                    return Ok(());
                }
            };
            let registry = Arc::new(RwLock::new(opened.registry));
            let access_keys = Arc::new(RwLock::new(access_keys));
            let greengrass = Arc::new(RwLock::new(greengrass));
            let ca = Arc::new(opened.ca);
            let store = opened.store.shared();
            let broker = Broker::builder(config.profile())
                .authorizer(PolicyAuthorizer::new(
                    registry.clone(),
                    &config.region,
                    &config.account,
                ))
                .reserved(CloudServices::new(DurableShadows::new(store.clone())))
                .persistence(BrokerPersistence::new(store.clone(), restored))
                .seed(now)
                .build(now);
            let program = CloudBroker::new(
                config.clone(),
                registry.clone(),
                access_keys.clone(),
                ca,
                greengrass.clone(),
            );
            let _ = init_tx.send(Ok(Init {
                registry,
                access_keys,
                greengrass,
                server_cert_pem: opened.server_cert_pem,
                server_key_pem: opened.server_key_pem,
            }));
            engine::run(program, broker, store, events)
        })
        .map_err(|_| StartError::Engine)?;
    let init = init_rx.recv().map_err(|_| StartError::Engine)??;
    Ok((handle, init, thread))
}

/// Starts the broker described by `config`.
pub async fn start(config: &BrokerConfig) -> Result<Running, StartError> {
    let (engine, init, engine_thread) = spawn_engine(config)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = certified_key(&init.server_cert_pem, &init.server_key_pem, &provider)?;
    let resolver = Arc::new(SniResolver::new(
        key,
        config.endpoint_names.clone(),
        config.require_sni,
    ));
    let refusals: RefusalCounts = Arc::default();
    let observer = {
        let refusals = refusals.clone();
        Arc::new(move |refusal: &Refusal| {
            tracing::warn!(reason = refusal.code(), %refusal, "TLS client certificate refused");
            metrics::count_refusal(&refusals, RefusalKind::Tls, refusal.code());
        })
    };
    let mandatory = Arc::new(
        RegistryClientVerifier::new(init.registry.clone(), provider.clone())
            .with_observer(observer.clone()),
    );
    let optional = Arc::new(
        RegistryClientVerifier::optional(init.registry.clone(), provider.clone())
            .with_observer(observer),
    );
    let tls = |verifier: Arc<RegistryClientVerifier>, alpn: &[&[u8]]| {
        server_config(provider.clone(), verifier, resolver.clone(), alpn)
            .map(|c| TlsAcceptor::from(Arc::new(c)))
    };
    let mqtts_acceptor = tls(mandatory.clone(), &[])?;
    let alpn_acceptor = tls(
        optional.clone(),
        &[ALPN_MQTT_CA, ALPN_HTTP_CA, ALPN_HTTP_1_1],
    )?;
    let http = Arc::new(HttpContext {
        engine: engine.clone(),
        registry: init.registry.clone(),
        greengrass: init.greengrass.clone(),
        // boto3 signs HTTPS with `iotdata`; AWS's pages and the WebSocket use `iotdevicegateway`.
        sigv4: Verifier::new(
            SharedAccessKeys(init.access_keys.clone()),
            &config.region,
            &["iotdevicegateway", "iotdata"],
        ),
        arns: ResourceArns::new(&config.region, &config.account),
        profile: config.profile(),
        max_payload: config.limits.max_payload_bytes,
        refusals: refusals.clone(),
        region: config.region.clone(),
        account: config.account.clone(),
        credential_ttl_secs: config.dashboard.credential_ttl_secs,
        login_permits: tokio::sync::Semaphore::new(2),
        dummy_password_hash: dummy_password_hash()?,
    });

    let mut listeners = Vec::new();
    let bind_ip = config.listeners.bind;
    let backlog = config.listeners.backlog;
    let listener = bind(
        SocketAddr::new(bind_ip, config.listeners.mqtts_port),
        backlog,
    )
    .await?;
    let mqtts = local_addr(&listener);
    let max_connections = config.listeners.max_connections;
    let mut accept_stats = Vec::new();
    let mut acceptor = |name: &'static str, listener| {
        let acceptor = Acceptor::new(name, listener, max_connections);
        accept_stats.push((name, acceptor.stats()));
        acceptor
    };
    listeners.push(tokio::spawn(accept_tls_loop(
        acceptor("mqtts", listener),
        mqtts_acceptor,
        mandatory,
        http.clone(),
        false,
    )));
    let mut alpn = None;
    if let Some(port) = config.listeners.alpn_port {
        let listener = bind(SocketAddr::new(bind_ip, port), backlog).await?;
        alpn = Some(local_addr(&listener));
        listeners.push(tokio::spawn(accept_tls_loop(
            acceptor("alpn", listener),
            alpn_acceptor,
            optional,
            http.clone(),
            true,
        )));
    }
    let mut plain_mqtt = None;
    if let Some(addr) = config.listeners.plain_mqtt {
        let listener = bind(addr, backlog).await?;
        plain_mqtt = Some(local_addr(&listener));
        listeners.push(tokio::spawn(accept_plain_loop(
            acceptor("plain_mqtt", listener),
            http.clone(),
        )));
    }
    let admin_socket = crate::admin::socket::socket_path(&config.data_dir);
    #[cfg(unix)]
    {
        let listener =
            crate::admin::socket::bind(&admin_socket).map_err(|error| StartError::AdminSocket {
                path: admin_socket.clone(),
                error,
            })?;
        let engine = engine.clone();
        listeners.push(tokio::spawn(crate::admin::socket::serve(
            listener,
            move |command| {
                let engine = engine.clone();
                async move {
                    engine
                        .ask(|reply| BrokerRequest::Admin { command, reply })
                        .await
                        .unwrap_or(Err(crate::admin::AdminError::Stopped))
                }
            },
        )));
    }
    let mut metrics_addr = None;
    if let Some(addr) = config.listeners.metrics {
        let listener = bind(addr, backlog).await?;
        metrics_addr = Some(local_addr(&listener));
        let listener = acceptor("metrics", listener);
        listeners.push(tokio::spawn(metrics::serve(
            listener,
            engine.clone(),
            refusals,
            accept_stats,
        )));
    }
    Ok(Running {
        mqtts,
        alpn,
        plain_mqtt,
        metrics: metrics_addr,
        engine,
        registry: init.registry,
        admin_socket,
        listeners,
        engine_thread: Some(engine_thread),
    })
}

/// A hash of a random password nobody knows.
fn dummy_password_hash() -> Result<String, StartError> {
    let mut keys = AccessKeys::default();
    let mut password = [0u8; 24];
    getrandom::fill(&mut password).map_err(|e| StartError::Login(e.to_string()))?;
    keys.set_login_profile("nobody", &hex_text(&password))
        .map_err(|e| StartError::Login(e.to_string()))?;
    keys.login_profile("nobody")
        .ok_or_else(|| StartError::Login("no hash".into()))
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The plain loopback listener: MQTT without TLS, every client the local development principal
/// (everything allowed).
async fn accept_plain_loop(mut acceptor: Acceptor, http: Arc<HttpContext>) {
    loop {
        let (stream, peer, permit) = acceptor.next().await;
        let transport = TransportInfo {
            principal: Some(Arc::from(LOCAL_DEVELOPMENT_PRINCIPAL)),
            remote_addr: Some(Arc::from(peer.to_string())),
        };
        let _ = stream.set_nodelay(true);
        let serve = connection::serve(
            stream,
            transport,
            http.engine.clone(),
            http.limits().clone(),
        );
        tokio::spawn(async move {
            serve.await;
            drop(permit);
        });
    }
}

async fn accept_tls_loop(
    mut acceptor_of: Acceptor,
    acceptor: TlsAcceptor,
    verifier: Arc<RegistryClientVerifier>,
    http: Arc<HttpContext>,
    alpn_port: bool,
) {
    loop {
        let (stream, peer, permit) = acceptor_of.next().await;
        let acceptor = acceptor.clone();
        let verifier = verifier.clone();
        let http = http.clone();
        tokio::spawn(async move {
            serve_tls(stream, peer, acceptor, verifier, http, alpn_port).await;
            drop(permit);
        });
    }
}

/// One TLS connection: on 8883 MQTT with a certificate; on the ALPN port routed as AWS routes 443
/// (`x-amzn-mqtt-ca`: MQTT with a certificate; `x-amzn-http-ca`: HTTPS with a certificate; none or
/// `http/1.1`: HTTPS or MQTT over WebSocket, with the certificate if one was presented, else SigV4).
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    verifier: Arc<RegistryClientVerifier>,
    http: Arc<HttpContext>,
    alpn_port: bool,
) {
    let Some(tls) = accept_tls(&acceptor, stream, peer).await else {
        return;
    };
    let (_, conn) = tls.get_ref();
    let identity = verifier
        .identity(conn.peer_certificates())
        .map(|identity| identity.certificate_id().as_str().to_owned());
    let route = if alpn_port {
        route_443(conn.alpn_protocol())
    } else {
        Port443Route::MqttWithCertificate
    };
    match (route, identity) {
        (Port443Route::MqttWithCertificate, Some(principal)) => {
            let transport = TransportInfo {
                principal: Some(Arc::from(principal.as_str())),
                remote_addr: Some(Arc::from(peer.to_string())),
            };
            connection::serve(tls, transport, http.engine.clone(), http.limits().clone()).await;
        }
        (Port443Route::HttpsWithCertificate, Some(principal)) => {
            super::http::serve(tls, peer, Some(principal), http).await;
        }
        (Port443Route::Http, identity) => super::http::serve(tls, peer, identity, http).await,
        (Port443Route::MqttCustomAuth, _) => {
            tracing::info!(%peer, "ALPN mqtt (custom authorizers) is not offered here; closed");
        }
        (_, None) => tracing::info!(%peer, "no usable client certificate; closed"),
    }
}

impl Running {
    /// Graceful stop: no new connections, every client closed (wills fire as AWS fires them on a
    /// server-side close; persistent sessions stay), the store committed.
    pub async fn shutdown(mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
        let _ = std::fs::remove_file(&self.admin_socket);
        self.engine.shutdown().await;
        // Let the connection tasks write their last packets.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(thread) = self.engine_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
