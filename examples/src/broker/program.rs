//! The cloud broker's part of the engine: what its listeners may ask the engine thread
//! ([`BrokerRequest`], each variant with a reply of its own type) and how it answers
//! ([`CloudBroker`]).

use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use iot_auth::provision::CertificateAuthority;
use iot_auth::registry::CertificateRegistry;
use iot_broker_core::codec::QoS;
use iot_broker_core::message::{Message, RetainedMessage};
use iot_broker_core::retained::RetainedPage;
use iot_broker_core::stats::Stats;
use iot_shadow::{Operation, ShadowError, ShadowKey, TopicKind};
use serde_json::Value;

use super::authorizer::PolicyAuthorizer;
use super::services::{CloudServices, shadow_message};
use crate::admin::{Account, AdminCommand, AdminError, execute};
use crate::config::BrokerConfig;
use crate::engine::{Program, Reply, Turn};
use crate::store::access_keys::AccessKeys;
use crate::store::discover_response::ConnectivityInfo;
use crate::store::greengrass::{CoreDeviceError, SharedCoreDevices};
use crate::store::{BrokerPersistence, SharedStore};

/// What the cloud broker's listeners ask its engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerRequest {
    /// A Device Shadow REST call (`GET`, `POST` or `DELETE /things/{thing}/shadow`): the
    /// document, or the shadow service's error.
    Shadow {
        /// Which shadow.
        key: ShadowKey,
        /// Get, update or delete.
        operation: Operation,
        /// The request body (the update document; empty or a `clientToken` object otherwise).
        body: Bytes,
        /// The answer.
        reply: Reply<Result<Value, ShadowError>>,
    },
    /// The names of a thing's named shadows, sorted.
    ListNamedShadows {
        /// The thing.
        thing: String,
        /// The answer.
        reply: Reply<Result<Vec<String>, ShadowError>>,
    },
    /// The retained message on exactly `topic` (`GetRetainedMessage`).
    GetRetained {
        /// The topic.
        topic: String,
        /// The message and when it was set, if one is retained there.
        reply: Reply<Option<RetainedMessage>>,
    },
    /// A page of retained-message summaries in topic order (`ListRetainedMessages`).
    ListRetained {
        /// Start strictly after this topic (the previous page's last one).
        after: Option<String>,
        /// At most this many.
        max: usize,
        /// The page.
        reply: Reply<RetainedPage>,
    },
    /// Counters and gauges for the metrics endpoint.
    Metrics {
        /// The answer.
        reply: Reply<MetricsSnapshot>,
    },
    /// A core device replaces its connectivity information (Greengrass `UpdateConnectivityInfo`
    /// over HTTPS): the new version, or why not. Saved in this turn's commit.
    UpdateConnectivityInfo {
        /// The core device's thing name.
        core: String,
        /// The new endpoints.
        entries: Vec<ConnectivityInfo>,
        /// The answer.
        reply: Reply<Result<String, CoreDeviceError>>,
    },
    /// A core device uploads the CA certificates of its local broker (Greengrass
    /// `PutCertificateAuthorities` over HTTPS). Saved in this turn's commit.
    PutCertificateAuthorities {
        /// The core device's thing name.
        core: String,
        /// PEM certificates.
        pems: Vec<String>,
        /// The answer.
        reply: Reply<Result<(), CoreDeviceError>>,
    },
    /// An administrative command from the admin socket.
    Admin {
        /// The command.
        command: AdminCommand,
        /// Its AWS-CLI-shaped answer.
        reply: Reply<Result<Value, AdminError>>,
    },
}

/// The broker's state as the metrics endpoint shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// The broker core's counters.
    pub stats: Stats,
    /// Open connections.
    pub connections: usize,
    /// Live and persistent sessions.
    pub sessions: usize,
    /// Retained messages.
    pub retained: usize,
    /// The program's own counters (`aws_iot_{name}_total`).
    pub counters: Vec<(&'static str, u64)>,
}

/// The cloud broker program: its broker's parts, and what its requests need besides the broker
/// (the registry, access keys, CA and Greengrass core devices the admin commands change).
#[derive(Debug)]
pub struct CloudBroker {
    config: BrokerConfig,
    registry: Arc<RwLock<CertificateRegistry>>,
    access_keys: Arc<RwLock<AccessKeys>>,
    ca: Arc<CertificateAuthority>,
    greengrass: SharedCoreDevices,
    saved_generation: u64,
}

impl CloudBroker {
    /// The program over the live registry, access keys, CA and Greengrass core devices.
    pub fn new(
        config: BrokerConfig,
        registry: Arc<RwLock<CertificateRegistry>>,
        access_keys: Arc<RwLock<AccessKeys>>,
        ca: Arc<CertificateAuthority>,
        greengrass: SharedCoreDevices,
    ) -> Self {
        let saved_generation = registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation();
        CloudBroker {
            config,
            registry,
            access_keys,
            ca,
            greengrass,
            saved_generation,
        }
    }

    /// Applies `change` to the Greengrass core devices, checking things against the registry,
    /// and records the document in the store when it succeeded.
    fn change_greengrass<T>(
        &self,
        store: &SharedStore,
        change: impl FnOnce(
            &mut crate::store::greengrass::CoreDevices,
            &dyn Fn(&str) -> bool,
        ) -> Result<T, CoreDeviceError>,
    ) -> Result<T, CoreDeviceError> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        let mut cores = self
            .greengrass
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let exists = |thing: &str| registry.thing(thing).is_some();
        let outcome = change(&mut cores, &exists)?;
        cores.save(&mut store.borrow_mut());
        Ok(outcome)
    }

    /// Records the registry in the store's batch when it changed since it was last saved (a
    /// certificate auto-registered during a handshake, an admin command), so the next commit
    /// holds it.
    pub fn save_registry(&mut self, store: &SharedStore) {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        if registry.generation() != self.saved_generation {
            self.saved_generation = registry.generation();
            store.borrow_mut().put_registry_json(&registry.to_json());
        }
    }

    fn shadow(
        turn: &mut Turn<'_, Self>,
        key: &ShadowKey,
        operation: Operation,
        body: &[u8],
    ) -> Result<Value, ShadowError> {
        let now = turn.now_ms;
        let shadows = turn.broker.reserved_mut().shadows();
        let (outcome, notices) = match operation {
            Operation::Get => (shadows.get(key, body, now), Vec::new()),
            Operation::Delete => match shadows.delete(key, body, now) {
                // Subscribers of delete/accepted hear of it, as after an MQTT delete.
                Ok(document) => {
                    let notice = Message::new(
                        key.topic(TopicKind::Accepted(Operation::Delete)),
                        document.to_string(),
                        QoS::AtLeastOnce,
                        false,
                    );
                    (Ok(document), vec![notice])
                }
                Err(error) => (Err(error), Vec::new()),
            },
            Operation::Update => match shadows.update(key, body, now) {
                Ok(outcome) => {
                    let notices = outcome.messages.into_iter().map(shadow_message).collect();
                    (Ok(outcome.accepted), notices)
                }
                Err(error) => (Err(error), Vec::new()),
            },
        };
        for notice in &notices {
            turn.broker.deliver_service_message(notice, now);
        }
        outcome.map_err(|(error, _token)| error)
    }
}

impl Program for CloudBroker {
    type Authorizer = PolicyAuthorizer;
    type Reserved = CloudServices;
    type Persistence = BrokerPersistence;
    type Request = BrokerRequest;

    fn handle(&mut self, turn: &mut Turn<'_, Self>, request: BrokerRequest) {
        match request {
            BrokerRequest::Shadow {
                key,
                operation,
                body,
                reply,
            } => {
                let answer = Self::shadow(turn, &key, operation, &body);
                turn.reply(reply, answer);
            }
            BrokerRequest::ListNamedShadows { thing, reply } => {
                let answer = turn.broker.reserved_mut().shadows().list_named(&thing);
                turn.reply(reply, answer);
            }
            BrokerRequest::GetRetained { topic, reply } => {
                let answer = turn.broker.retained(&topic).cloned();
                turn.reply(reply, answer);
            }
            BrokerRequest::ListRetained { after, max, reply } => {
                let page = turn.broker.list_retained(after.as_deref(), max);
                turn.reply(reply, page);
            }
            BrokerRequest::Metrics { reply } => {
                let mut counters = vec![
                    (
                        "shadow_requests",
                        turn.broker.reserved_mut().shadow_requests(),
                    ),
                    ("store_commits", turn.commits),
                ];
                counters.extend(turn.broker.authorizer().refusals().as_metrics());
                let mut stats = turn.broker.stats();
                // Dropped by the broker once it knew, and by the engine before it did.
                stats.dropped_congested += turn.dropped_output;
                let snapshot = MetricsSnapshot {
                    stats,
                    connections: turn.broker.connection_count(),
                    sessions: turn.broker.session_count(),
                    retained: turn.broker.retained_count(),
                    counters,
                };
                turn.reply(reply, snapshot);
            }
            BrokerRequest::UpdateConnectivityInfo {
                core,
                entries,
                reply,
            } => {
                let answer = self.change_greengrass(turn.store, |cores, exists| {
                    cores.update_connectivity_info(&core, entries, exists)
                });
                turn.reply(reply, answer);
            }
            BrokerRequest::PutCertificateAuthorities { core, pems, reply } => {
                let answer = self.change_greengrass(turn.store, |cores, exists| {
                    cores.put_certificate_authorities(&core, pems, exists)
                });
                turn.reply(reply, answer);
            }
            BrokerRequest::Admin { command, reply } => {
                let answer = {
                    let mut registry = self
                        .registry
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    let mut keys = self
                        .access_keys
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    let mut greengrass = self
                        .greengrass
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    execute(
                        Account {
                            config: &self.config,
                            store: turn.store.clone(),
                            registry: &mut registry,
                            ca: &self.ca,
                            access_keys: &mut keys,
                            greengrass: &mut greengrass,
                        },
                        command,
                    )
                };
                // `execute` recorded the registry already; keep the saved generation in step.
                self.save_registry(turn.store);
                turn.reply(reply, answer);
            }
        }
    }

    fn after_events(&mut self, turn: &mut Turn<'_, Self>) {
        // A handshake may have auto-registered a certificate.
        self.save_registry(turn.store);
    }
}
