//! The broker's [`Authorizer`] backed by the certificate registry and AWS IoT policies: one
//! [`PolicyGuard`] (with its decision cache) per connection, refreshed when the registry changes.
//!
//! State is keyed by [`ConnectionId`], never by client id: when a device reconnects with the id of
//! a connection still open, the broker admits the new connection first and closes the old one
//! after, and the old one's [`Authorizer::forget`] must not touch the new one's policies.
//! Every refusal is logged (client id, action, resource, the deciding rule) and counted.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use iot_auth::policy::{Decision, PolicyGuard, RequestContext, ResourceArns};
use iot_auth::registry::CertificateRegistry;
use iot_auth::x509::CertificateId;
use iot_broker_core::ConnectionId;
use iot_broker_core::auth::{Authorizer, Client, ConnectDenied, ConnectRequest};

/// The principal of connections that came through a listener without authentication (the optional
/// plain-MQTT loopback port): everything is allowed for it.
pub const LOCAL_DEVELOPMENT_PRINCIPAL: &str = "local-development";

struct Entry {
    principal: String,
    guard: PolicyGuard,
}

/// Authorization refusals by action, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounters {
    /// `iot:Connect` refused (the will topic's `iot:Publish` included).
    pub connect: u64,
    /// `iot:Publish` (or `iot:RetainPublish`) refused.
    pub publish: u64,
    /// `iot:Subscribe` refused.
    pub subscribe: u64,
    /// `iot:Receive` refused (the delivery was skipped).
    pub receive: u64,
    /// Questions about a connection the authorizer holds nothing for. The broker only asks about
    /// connections it admitted, so a non-zero count is a bug, logged as an error.
    pub without_state: u64,
}

impl RefusalCounters {
    /// `(name, value)` pairs for the metrics endpoint.
    pub fn as_metrics(&self) -> [(&'static str, u64); 5] {
        [
            ("authorization_refused_connect", self.connect),
            ("authorization_refused_publish", self.publish),
            ("authorization_refused_subscribe", self.subscribe),
            ("authorization_refused_receive", self.receive),
            ("authorization_without_state", self.without_state),
        ]
    }
}

/// Policies enforced on connect, publish (with retain), subscribe and receive.
pub struct PolicyAuthorizer {
    registry: Arc<RwLock<CertificateRegistry>>,
    arns: ResourceArns,
    connections: HashMap<ConnectionId, Entry>,
    generation: u64,
    refusals: RefusalCounters,
}

impl std::fmt::Debug for PolicyAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyAuthorizer")
            .field("connections", &self.connections.len())
            .field("refusals", &self.refusals)
            .finish_non_exhaustive()
    }
}

fn source_ip(remote: Option<&str>) -> Option<String> {
    let remote = remote?;
    Some(match remote.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => remote.to_owned(),
    })
}

/// The policy-variable context of `principal` (a certificate id or an IAM user ARN): its
/// certificate's fields when it is a certificate, its thing, the client id and source address.
pub fn request_context(
    registry: &CertificateRegistry,
    principal: &str,
    client_id: Option<&str>,
    source_ip: Option<&str>,
) -> RequestContext {
    let certificate = CertificateId::parse(principal)
        .ok()
        .and_then(|id| registry.certificate(&id))
        .map(|record| Arc::new(record.certificate.clone()));
    registry.context_for(principal, certificate, client_id, source_ip)
}

/// The action a question is about, for logs and counters.
#[derive(Debug, Clone, Copy)]
enum Asked {
    Publish,
    Subscribe,
    Receive,
}

impl PolicyAuthorizer {
    /// An authorizer over `registry` for resources of `region` and `account`.
    pub fn new(registry: Arc<RwLock<CertificateRegistry>>, region: &str, account: &str) -> Self {
        PolicyAuthorizer {
            registry,
            arns: ResourceArns::new(region, account),
            connections: HashMap::new(),
            generation: 0,
            refusals: RefusalCounters::default(),
        }
    }

    /// Refusals so far.
    pub fn refusals(&self) -> RefusalCounters {
        self.refusals
    }

    /// Connections the authorizer holds policies for (equal to the broker's admitted
    /// connections; more would be a leak).
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    fn refresh(&mut self) {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        if registry.generation() == self.generation {
            return;
        }
        self.generation = registry.generation();
        for entry in self.connections.values_mut() {
            if entry.principal != LOCAL_DEVELOPMENT_PRINCIPAL {
                entry
                    .guard
                    .set_policies(registry.policies_of(&entry.principal));
            }
        }
    }

    /// Asks `ask` about `client`'s connection; logs and counts a refusal.
    fn allowed(
        &mut self,
        client: &Client<'_>,
        asked: Asked,
        resource: &str,
        ask: impl FnOnce(&mut PolicyGuard) -> Decision,
    ) -> bool {
        self.refresh();
        let client_id = client.client_id;
        let decision = match self.connections.get_mut(&client.conn) {
            Some(entry) if entry.principal == LOCAL_DEVELOPMENT_PRINCIPAL => return true,
            Some(entry) => ask(&mut entry.guard),
            None => {
                self.refusals.without_state += 1;
                tracing::error!(
                    client_id,
                    conn = client.conn.get(),
                    action = ?asked,
                    resource,
                    "authorization asked about a connection with no policy state (a bug): refused"
                );
                Decision::ImplicitDeny
            }
        };
        if decision.is_allowed() {
            return true;
        }
        let counter = match asked {
            Asked::Publish => &mut self.refusals.publish,
            Asked::Subscribe => &mut self.refusals.subscribe,
            Asked::Receive => &mut self.refusals.receive,
        };
        *counter += 1;
        tracing::info!(
            client_id,
            principal = client.principal,
            action = ?asked,
            resource,
            %decision,
            "authorization refused"
        );
        false
    }
}

impl Authorizer for PolicyAuthorizer {
    fn connect(&mut self, request: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        let client_id = request.client.client_id;
        let conn = request.client.conn;
        let Some(principal) = request.client.principal else {
            self.refusals.connect += 1;
            tracing::info!(
                client_id,
                "iot:Connect refused: the transport authenticated no principal"
            );
            return Err(ConnectDenied::NotAuthorized);
        };
        if principal == LOCAL_DEVELOPMENT_PRINCIPAL {
            self.connections.insert(
                conn,
                Entry {
                    principal: principal.to_owned(),
                    guard: PolicyGuard::new(Vec::new(), self.arns.clone(), Default::default()),
                },
            );
            return Ok(());
        }
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        self.generation = registry.generation();
        let mut context = request_context(
            &registry,
            principal,
            Some(client_id),
            source_ip(request.client.remote_addr).as_deref(),
        );
        let policies = registry.policies_of(principal);
        drop(registry);
        let stored = context.clone();
        if !request.clean_session {
            context
                .connect_attributes
                .push("PersistentConnect".to_owned());
        }
        if let Some(topic) = request.will_topic {
            context.connect_attributes.push("LastWill".to_owned());
            context.last_will_topic = Some(topic.to_owned());
        }
        let mut guard = PolicyGuard::new(policies, self.arns.clone(), context);
        let decision = guard.connect(client_id);
        if !decision.is_allowed() {
            self.refusals.connect += 1;
            tracing::info!(client_id, principal, action = "Connect", %decision, "authorization refused");
            return Err(ConnectDenied::NotAuthorized);
        }
        guard.set_context(stored);
        self.connections.insert(
            conn,
            Entry {
                principal: principal.to_owned(),
                guard,
            },
        );
        Ok(())
    }

    fn publish(&mut self, client: &Client<'_>, topic: &str, retain: bool) -> bool {
        self.allowed(client, Asked::Publish, topic, |g| g.publish(topic, retain))
    }

    fn subscribe(&mut self, client: &Client<'_>, filter: &str) -> bool {
        self.allowed(client, Asked::Subscribe, filter, |g| g.subscribe(filter))
    }

    fn receive(&mut self, client: &Client<'_>, topic: &str) -> bool {
        self.allowed(client, Asked::Receive, topic, |g| g.receive(topic))
    }

    /// The registry's generation: every certificate, thing, policy or attachment change bumps
    /// it (the admin API, auto-registration during a handshake), and this authorizer's answers
    /// follow the registry (its per-connection policies are refreshed on the next question), so
    /// the broker's cached answers are dropped exactly when they may have changed. One read lock
    /// per call, asked once per PUBLISH and once per batch of deliveries.
    fn generation(&self) -> u64 {
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation()
    }

    fn forget(&mut self, conn: ConnectionId) {
        self.connections.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_follows_every_registry_change() {
        let registry = Arc::new(RwLock::new(CertificateRegistry::new()));
        let authorizer = PolicyAuthorizer::new(Arc::clone(&registry), "eu-west-1", "123456789012");
        let before = authorizer.generation();
        registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .create_policy(
                "p",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
            )
            .expect("a valid policy");
        assert_ne!(authorizer.generation(), before);
    }
}
