//! Starting and stopping the cloud broker: the engine thread, the TLS listeners (8883 and the ALPN
//! port), the optional plain loopback listener and the metrics endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use iot_auth::endpoint::{
    ALPN_HTTP_1_1, ALPN_HTTP_CA, ALPN_MQTT_CA, Port443Route, SniResolver, certified_key, route_443,
    server_config,
};
use iot_auth::policy::ResourceArns;
use iot_auth::registry::{CertificateRegistry, Refusal};
use iot_auth::sigv4::Verifier;
use iot_auth::verifier::RegistryClientVerifier;
use iot_broker_core::Broker;
use iot_broker_core::auth::TransportInfo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::access_keys::{AccessKeys, SharedAccessKeys};
use crate::authorizer::{LOCAL_DEVELOPMENT_PRINCIPAL, PolicyAuthorizer};
use crate::config::BrokerConfig;
use crate::data_dir::{DataDir, SetupError};
use crate::engine::{self, EngineHandle, now_ms};
use crate::http_api::HttpContext;
use crate::metrics::{self, RefusalCounts};
use crate::shadows::CloudServices;
use crate::store::{BrokerPersistence, DurableShadows};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be prepared.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// TLS could not be configured.
    #[error("TLS: {0}")]
    Tls(String),
    /// The admin socket could not be created.
    #[error("cannot bind the admin socket {path}: {error}")]
    AdminSocket {
        /// The socket's path.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The engine thread stopped at start.
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
    pub engine: EngineHandle,
    /// The registry the TLS verifier enforces.
    pub registry: Arc<RwLock<CertificateRegistry>>,
    /// The admin socket's path (removed at shutdown).
    pub admin_socket: std::path::PathBuf,
    listeners: Vec<JoinHandle<()>>,
    engine_thread: Option<EngineThread>,
}

struct Init {
    registry: Arc<RwLock<CertificateRegistry>>,
    access_keys: AccessKeys,
    ca: Arc<iot_auth::provision::CertificateAuthority>,
    server_cert_pem: String,
    server_key_pem: String,
}

/// The engine thread; it ends with the store's last commit result.
type EngineThread = std::thread::JoinHandle<Result<(), crate::store::StoreError>>;

fn spawn_engine(config: &BrokerConfig) -> Result<(EngineHandle, Init, EngineThread), StartError> {
    let (init_tx, init_rx) = std::sync::mpsc::channel::<Result<Init, SetupError>>();
    let (events_tx, events_rx) = std::sync::mpsc::channel();
    let config = config.clone();
    let thread = std::thread::Builder::new()
        .name("broker-engine".into())
        .spawn(move || {
            let now = now_ms();
            let opened = match DataDir::new(&config.data_dir).open(&config, (now / 1000) as i64) {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = init_tx.send(Err(error));
                    return Ok(());
                }
            };
            let restored = match opened.store.load_broker_state() {
                Ok(restored) => restored,
                Err(error) => {
                    let _ = init_tx.send(Err(SetupError::Store(error)));
                    return Ok(());
                }
            };
            let access_keys = match AccessKeys::load(&opened.store, &config.account) {
                Ok(keys) => keys,
                Err(error) => {
                    let _ = init_tx.send(Err(SetupError::Store(error)));
                    return Ok(());
                }
            };
            let registry = Arc::new(RwLock::new(opened.registry));
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
            let _ = init_tx.send(Ok(Init {
                registry: registry.clone(),
                access_keys,
                ca: Arc::new(opened.ca),
                server_cert_pem: opened.server_cert_pem,
                server_key_pem: opened.server_key_pem,
            }));
            engine::run(
                broker,
                store,
                events_rx,
                |b| {
                    let mut counters =
                        vec![("shadow_requests", b.reserved_mut().shadow_requests())];
                    counters.extend(b.authorizer_mut().refusals().as_metrics());
                    counters
                },
                Some(registry),
            )
        })
        .map_err(|_| StartError::Engine)?;
    let init = init_rx.recv().map_err(|_| StartError::Engine)??;
    Ok((EngineHandle::new(events_tx), init, thread))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| StartError::Bind { addr, error })
}

fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Starts the broker described by `config`.
pub async fn start(config: &BrokerConfig) -> Result<Running, StartError> {
    let (engine, init, engine_thread) = spawn_engine(config)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = certified_key(&init.server_cert_pem, &init.server_key_pem, &provider)
        .map_err(|e| StartError::Tls(e.to_string()))?;
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
            metrics::count_refusal(&refusals, refusal.code());
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
            .map_err(|e| StartError::Tls(e.to_string()))
    };
    let mqtts_acceptor = tls(mandatory.clone(), &[])?;
    let alpn_acceptor = tls(
        optional.clone(),
        &[ALPN_MQTT_CA, ALPN_HTTP_CA, ALPN_HTTP_1_1],
    )?;
    let limits = config.profile().limits;
    let access_keys = Arc::new(RwLock::new(init.access_keys));
    let http = Arc::new(HttpContext {
        engine: engine.clone(),
        registry: init.registry.clone(),
        // boto3 signs HTTPS with `iotdata`; AWS's pages and the WebSocket use `iotdevicegateway`.
        sigv4: Verifier::new(
            SharedAccessKeys(access_keys.clone()),
            &config.region,
            &["iotdevicegateway", "iotdata"],
        ),
        arns: ResourceArns::new(&config.region, &config.account),
        limits: limits.clone(),
        max_payload: config.limits.max_payload_bytes,
        refusals: refusals.clone(),
    });

    let mut listeners = Vec::new();
    let bind_ip = config.listeners.bind;
    let listener = bind(SocketAddr::new(bind_ip, config.listeners.mqtts_port)).await?;
    let mqtts = local(&listener);
    listeners.push(tokio::spawn(accept_tls(
        listener,
        mqtts_acceptor,
        mandatory.clone(),
        http.clone(),
        false,
    )));
    let mut alpn = None;
    if let Some(port) = config.listeners.alpn_port {
        let listener = bind(SocketAddr::new(bind_ip, port)).await?;
        alpn = Some(local(&listener));
        listeners.push(tokio::spawn(accept_tls(
            listener,
            alpn_acceptor,
            optional,
            http.clone(),
            true,
        )));
    }
    let mut plain_mqtt = None;
    if let Some(addr) = config.listeners.plain_mqtt {
        let listener = bind(addr).await?;
        plain_mqtt = Some(local(&listener));
        let engine = engine.clone();
        let limits = limits.clone();
        listeners.push(tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let transport = TransportInfo {
                    principal: Some(Arc::from(LOCAL_DEVELOPMENT_PRINCIPAL)),
                    remote_addr: Some(Arc::from(peer.to_string())),
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(crate::mqtt_connection::serve(
                    stream,
                    transport,
                    engine.clone(),
                    limits.clone(),
                ));
            }
        }));
    }
    let admin_socket = crate::admin_socket::socket_path(&config.data_dir);
    #[cfg(unix)]
    {
        let listener =
            crate::admin_socket::bind(&admin_socket).map_err(|error| StartError::AdminSocket {
                path: admin_socket.clone(),
                error,
            })?;
        let target = crate::admin_socket::AdminTarget {
            config: config.clone(),
            registry: init.registry.clone(),
            access_keys: access_keys.clone(),
            ca: init.ca.clone(),
        };
        listeners.push(tokio::spawn(crate::admin_socket::serve(
            listener,
            engine.clone(),
            target,
        )));
    }
    let mut metrics_addr = None;
    if let Some(addr) = config.listeners.metrics {
        let listener = bind(addr).await?;
        metrics_addr = Some(local(&listener));
        listeners.push(tokio::spawn(metrics::serve(
            listener,
            engine.clone(),
            refusals,
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

async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    verifier: Arc<RegistryClientVerifier>,
    http: Arc<HttpContext>,
    alpn_port: bool,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let verifier = verifier.clone();
        let http = http.clone();
        tokio::spawn(async move {
            serve_tls(stream, peer, acceptor, verifier, http, alpn_port).await;
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
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
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
            crate::mqtt_connection::serve(tls, transport, http.engine.clone(), http.limits.clone())
                .await;
        }
        (Port443Route::HttpsWithCertificate, Some(principal)) => {
            crate::http_api::serve(tls, peer, Some(principal), http).await;
        }
        (Port443Route::Http, identity) => crate::http_api::serve(tls, peer, identity, http).await,
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
