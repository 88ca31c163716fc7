//! The broker's [`Authorizer`] backed by the certificate registry and AWS IoT policies: one
//! [`PolicyGuard`] (with its decision cache) per connected client, refreshed when the registry
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use iot_auth::policy::{PolicyGuard, RequestContext, ResourceArns};
use iot_auth::registry::CertificateRegistry;
use iot_auth::x509::CertificateId;
use iot_broker_core::auth::{Authorizer, Client, ConnectDenied, ConnectRequest};

/// The principal of connections that came through a listener without authentication (the optional
/// plain-MQTT loopback port): everything is allowed for it.
pub const LOCAL_DEVELOPMENT_PRINCIPAL: &str = "local-development";

struct Entry {
    principal: String,
    guard: PolicyGuard,
}

/// Policies enforced on connect, publish (with retain), subscribe and receive.
pub struct PolicyAuthorizer {
    registry: Arc<RwLock<CertificateRegistry>>,
    arns: ResourceArns,
    clients: HashMap<String, Entry>,
    generation: u64,
}

impl std::fmt::Debug for PolicyAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyAuthorizer")
            .field("clients", &self.clients.len())
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

impl PolicyAuthorizer {
    /// An authorizer over `registry` for resources of `region` and `account`.
    pub fn new(registry: Arc<RwLock<CertificateRegistry>>, region: &str, account: &str) -> Self {
        PolicyAuthorizer {
            registry,
            arns: ResourceArns::new(region, account),
            clients: HashMap::new(),
            generation: 0,
        }
    }

    fn refresh(&mut self) {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        if registry.generation() == self.generation {
            return;
        }
        self.generation = registry.generation();
        for entry in self.clients.values_mut() {
            if entry.principal != LOCAL_DEVELOPMENT_PRINCIPAL {
                entry
                    .guard
                    .set_policies(registry.policies_of(&entry.principal));
            }
        }
    }

    fn allowed(&mut self, client_id: &str, ask: impl FnOnce(&mut PolicyGuard) -> bool) -> bool {
        self.refresh();
        match self.clients.get_mut(client_id) {
            Some(entry) if entry.principal == LOCAL_DEVELOPMENT_PRINCIPAL => true,
            Some(entry) => ask(&mut entry.guard),
            None => false,
        }
    }
}

impl Authorizer for PolicyAuthorizer {
    fn connect(&mut self, request: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        let client_id = request.client.client_id;
        let Some(principal) = request.client.principal else {
            return Err(ConnectDenied::NotAuthorized);
        };
        if principal == LOCAL_DEVELOPMENT_PRINCIPAL {
            self.clients.insert(
                client_id.to_owned(),
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
            tracing::info!(client_id, principal, %decision, "iot:Connect refused");
            return Err(ConnectDenied::NotAuthorized);
        }
        guard.set_context(stored);
        self.clients.insert(
            client_id.to_owned(),
            Entry {
                principal: principal.to_owned(),
                guard,
            },
        );
        Ok(())
    }

    fn publish(&mut self, client: &Client<'_>, topic: &str, retain: bool) -> bool {
        self.allowed(client.client_id, |g| {
            let decision = g.publish(topic, retain);
            if !decision.is_allowed() {
                tracing::info!(client_id = client.client_id, topic, retain, %decision, "iot:Publish refused");
            }
            decision.is_allowed()
        })
    }

    fn subscribe(&mut self, client: &Client<'_>, filter: &str) -> bool {
        self.allowed(client.client_id, |g| {
            let decision = g.subscribe(filter);
            if !decision.is_allowed() {
                tracing::info!(client_id = client.client_id, filter, %decision, "iot:Subscribe refused");
            }
            decision.is_allowed()
        })
    }

    fn receive(&mut self, client: &Client<'_>, topic: &str) -> bool {
        self.allowed(client.client_id, |g| g.receive(topic).is_allowed())
    }

    fn forget(&mut self, client_id: &str) {
        self.clients.remove(client_id);
    }
}
