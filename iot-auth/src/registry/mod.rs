//! The certificate registry: registered CA certificates, device certificates with AWS's statuses,
//! things, policies, and what is attached to each principal.
//!
//! A principal is a string: a certificate's id for X.509 clients, or whatever a SigV4
//! [`Credential`](crate::sigv4::Credential) maps to. [`CertificateRegistry::authenticate`] is the
//! handshake-time check (chain to a registered CA with `rustls-webpki`, then the statuses);
//! [`crate::verifier::RegistryClientVerifier`] runs it inside rustls.
//!
//! ```
//! use iot_auth::registry::{CertificateRegistry, CertificateStatus};
//! use iot_auth::provision::{CertificateAuthority, DeviceCertificateRequest};
//!
//! let now = 1_790_000_000; // Unix seconds
//! let ca = CertificateAuthority::generate("Dev CA", now).unwrap();
//! let mut registry = CertificateRegistry::new();
//! registry.register_ca_pem(&ca.certificate_pem(), true).unwrap();
//! let device = ca.issue_device(&DeviceCertificateRequest::new("car-1", now)).unwrap();
//! let id = registry.register_certificate_pem(&device.certificate_pem, CertificateStatus::Active).unwrap();
//! registry.create_thing("car-1", None, Default::default()).unwrap();
//! registry.attach_thing_principal("car-1", id.as_str()).unwrap();
//!
//! let identity = registry.authenticate(&device.certificate_der, &[], now).unwrap();
//! assert_eq!(identity.certificate_id(), &id);
//! registry.set_certificate_status(&id, CertificateStatus::Revoked).unwrap();
//! assert!(registry.authenticate(&device.certificate_der, &[], now).is_err());
//! ```

mod authenticate;
mod json;
mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use authenticate::{CertificateIdentity, Refusal};
pub use records::{CaRecord, CaStatus, CertificateStatus, DeviceCertificateRecord, Thing};

use crate::policy::{Policy, PolicyError, RequestContext, ThingContext};
use crate::x509::{CertificateId, CertificateInfo, CertificateParseError};

/// AWS's limit on policies attached to one principal.
pub const MAX_POLICIES_PER_PRINCIPAL: usize = 10;

/// Why a registry operation failed; the variants follow AWS's exception names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The certificate bytes are unusable.
    #[error("invalid certificate: {0}")]
    Certificate(#[from] CertificateParseError),
    /// The policy document is invalid.
    #[error("malformed policy: {0}")]
    Policy(#[from] PolicyError),
    /// `ResourceAlreadyExistsException`.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// `certificate`, `thing`, `policy`, …
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// `ResourceNotFoundException`.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// `certificate`, `thing`, `policy`, …
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// `InvalidRequestException`.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// `DeleteConflictException`: still attached or still active.
    #[error("cannot delete: {0}")]
    DeleteConflict(String),
    /// `LimitExceededException`.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
}

fn not_found(kind: &'static str, name: &str) -> RegistryError {
    RegistryError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

/// Certificates, things, policies and their attachments. Plain data: share it behind a lock.
#[derive(Debug, Clone, Default)]
pub struct CertificateRegistry {
    cas: BTreeMap<CertificateId, CaRecord>,
    certificates: BTreeMap<CertificateId, DeviceCertificateRecord>,
    things: BTreeMap<String, Thing>,
    policies: BTreeMap<String, Arc<Policy>>,
    /// principal → thing names.
    thing_attachments: BTreeMap<String, BTreeSet<String>>,
    /// principal → policy names.
    policy_attachments: BTreeMap<String, BTreeSet<String>>,
    /// Bumped by every change, so holders of derived state (anchors, decision caches) can refresh.
    generation: u64,
}

impl CertificateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter bumped by every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    // ----- CA certificates -----

    /// Registers a CA certificate (`register-ca-certificate --set-as-active`), with auto-registration
    /// of the device certificates it signs on or off.
    pub fn register_ca_der(
        &mut self,
        der: &[u8],
        auto_registration: bool,
    ) -> Result<CertificateId, RegistryError> {
        let certificate = CertificateInfo::from_der(der)?;
        if !certificate.is_ca() {
            return Err(RegistryError::InvalidRequest(
                "the certificate is not a CA (basic constraints)".to_owned(),
            ));
        }
        let id = certificate.id().clone();
        if self.cas.contains_key(&id) {
            return Err(RegistryError::AlreadyExists {
                kind: "CA certificate",
                name: id.to_string(),
            });
        }
        self.cas.insert(
            id.clone(),
            CaRecord {
                certificate,
                status: CaStatus::Active,
                auto_registration,
            },
        );
        self.changed();
        Ok(id)
    }

    /// [`register_ca_der`](Self::register_ca_der) from PEM.
    pub fn register_ca_pem(
        &mut self,
        pem: &str,
        auto_registration: bool,
    ) -> Result<CertificateId, RegistryError> {
        let der = crate::x509::first_pem_certificate(pem)?;
        self.register_ca_der(&der, auto_registration)
    }

    /// Sets a CA's status.
    pub fn set_ca_status(
        &mut self,
        id: &CertificateId,
        status: CaStatus,
    ) -> Result<(), RegistryError> {
        let ca = self
            .cas
            .get_mut(id)
            .ok_or_else(|| not_found("CA certificate", id.as_str()))?;
        ca.status = status;
        self.changed();
        Ok(())
    }

    /// Turns auto-registration on or off for a CA.
    pub fn set_ca_auto_registration(
        &mut self,
        id: &CertificateId,
        on: bool,
    ) -> Result<(), RegistryError> {
        let ca = self
            .cas
            .get_mut(id)
            .ok_or_else(|| not_found("CA certificate", id.as_str()))?;
        ca.auto_registration = on;
        self.changed();
        Ok(())
    }

    /// A registered CA.
    pub fn ca(&self, id: &CertificateId) -> Option<&CaRecord> {
        self.cas.get(id)
    }

    /// Every registered CA.
    pub fn cas(&self) -> impl Iterator<Item = &CaRecord> {
        self.cas.values()
    }

    /// Deletes an `INACTIVE` CA that no registered device certificate names.
    pub fn delete_ca(&mut self, id: &CertificateId) -> Result<(), RegistryError> {
        let ca = self
            .cas
            .get(id)
            .ok_or_else(|| not_found("CA certificate", id.as_str()))?;
        if ca.status == CaStatus::Active {
            return Err(RegistryError::DeleteConflict(
                "the CA certificate is ACTIVE".to_owned(),
            ));
        }
        if self
            .certificates
            .values()
            .any(|c| c.ca_id.as_ref() == Some(id))
        {
            return Err(RegistryError::DeleteConflict(
                "device certificates signed by this CA are registered".to_owned(),
            ));
        }
        self.cas.remove(id);
        self.changed();
        Ok(())
    }

    /// The registered CA whose subject is this certificate's issuer.
    fn issuing_ca(&self, der: &[u8]) -> Option<CertificateId> {
        let (_, issuer) = CertificateInfo::raw_names(der)?;
        self.cas.iter().find_map(|(id, ca)| {
            let (subject, _) = CertificateInfo::raw_names(ca.certificate.der())?;
            (subject == issuer).then(|| id.clone())
        })
    }

    // ----- device certificates -----

    /// Registers a device certificate with a status (`register-certificate`), linking it to the
    /// registered CA that issued it, if any.
    pub fn register_certificate_der(
        &mut self,
        der: &[u8],
        status: CertificateStatus,
    ) -> Result<CertificateId, RegistryError> {
        let certificate = CertificateInfo::from_der(der)?;
        let id = certificate.id().clone();
        if self.certificates.contains_key(&id) || self.cas.contains_key(&id) {
            return Err(RegistryError::AlreadyExists {
                kind: "certificate",
                name: id.to_string(),
            });
        }
        let ca_id = self.issuing_ca(der);
        self.certificates.insert(
            id.clone(),
            DeviceCertificateRecord {
                certificate,
                status,
                ca_id,
            },
        );
        self.changed();
        Ok(id)
    }

    /// [`register_certificate_der`](Self::register_certificate_der) from PEM.
    pub fn register_certificate_pem(
        &mut self,
        pem: &str,
        status: CertificateStatus,
    ) -> Result<CertificateId, RegistryError> {
        let der = crate::x509::first_pem_certificate(pem)?;
        self.register_certificate_der(&der, status)
    }

    /// Sets a device certificate's status (`update-certificate --new-status`). A `REVOKED`
    /// certificate stays revoked.
    pub fn set_certificate_status(
        &mut self,
        id: &CertificateId,
        status: CertificateStatus,
    ) -> Result<(), RegistryError> {
        let record = self
            .certificates
            .get_mut(id)
            .ok_or_else(|| not_found("certificate", id.as_str()))?;
        if record.status == CertificateStatus::Revoked && status != CertificateStatus::Revoked {
            return Err(RegistryError::InvalidRequest(
                "a REVOKED certificate cannot change status".to_owned(),
            ));
        }
        record.status = status;
        self.changed();
        Ok(())
    }

    /// A registered device certificate.
    pub fn certificate(&self, id: &CertificateId) -> Option<&DeviceCertificateRecord> {
        self.certificates.get(id)
    }

    /// Every registered device certificate.
    pub fn certificates(&self) -> impl Iterator<Item = &DeviceCertificateRecord> {
        self.certificates.values()
    }

    /// Deletes a device certificate that is not `ACTIVE` and has no thing or policy attached
    /// (AWS's `DeleteConflictException` otherwise).
    pub fn delete_certificate(&mut self, id: &CertificateId) -> Result<(), RegistryError> {
        let record = self
            .certificates
            .get(id)
            .ok_or_else(|| not_found("certificate", id.as_str()))?;
        if record.status == CertificateStatus::Active {
            return Err(RegistryError::DeleteConflict(
                "the certificate is ACTIVE; deactivate it first".to_owned(),
            ));
        }
        let principal = id.as_str();
        if self
            .thing_attachments
            .get(principal)
            .is_some_and(|s| !s.is_empty())
            || self
                .policy_attachments
                .get(principal)
                .is_some_and(|s| !s.is_empty())
        {
            return Err(RegistryError::DeleteConflict(
                "things or policies are still attached".to_owned(),
            ));
        }
        self.certificates.remove(id);
        self.changed();
        Ok(())
    }

    // ----- things -----

    /// Creates a thing (`create-thing`).
    pub fn create_thing(
        &mut self,
        name: &str,
        type_name: Option<&str>,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        validate_name("thing", name)?;
        if self.things.contains_key(name) {
            return Err(RegistryError::AlreadyExists {
                kind: "thing",
                name: name.to_owned(),
            });
        }
        self.things.insert(
            name.to_owned(),
            Thing {
                name: name.to_owned(),
                type_name: type_name.map(str::to_owned),
                attributes,
            },
        );
        self.changed();
        Ok(())
    }

    /// A thing.
    pub fn thing(&self, name: &str) -> Option<&Thing> {
        self.things.get(name)
    }

    /// Every thing, by name.
    pub fn things(&self) -> impl Iterator<Item = &Thing> {
        self.things.values()
    }

    /// Deletes a thing; principals attached to it are detached.
    pub fn delete_thing(&mut self, name: &str) -> Result<(), RegistryError> {
        self.things
            .remove(name)
            .ok_or_else(|| not_found("thing", name))?;
        for things in self.thing_attachments.values_mut() {
            things.remove(name);
        }
        self.changed();
        Ok(())
    }

    /// Attaches a principal to a thing (`attach-thing-principal`).
    pub fn attach_thing_principal(
        &mut self,
        thing: &str,
        principal: &str,
    ) -> Result<(), RegistryError> {
        if !self.things.contains_key(thing) {
            return Err(not_found("thing", thing));
        }
        self.thing_attachments
            .entry(principal.to_owned())
            .or_default()
            .insert(thing.to_owned());
        self.changed();
        Ok(())
    }

    /// Detaches a principal from a thing.
    pub fn detach_thing_principal(
        &mut self,
        thing: &str,
        principal: &str,
    ) -> Result<(), RegistryError> {
        let removed = self
            .thing_attachments
            .get_mut(principal)
            .is_some_and(|set| set.remove(thing));
        if !removed {
            return Err(not_found("thing attachment", thing));
        }
        self.changed();
        Ok(())
    }

    /// The things a principal is attached to.
    pub fn things_of(&self, principal: &str) -> impl Iterator<Item = &str> {
        self.thing_attachments
            .get(principal)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The principals attached to a thing.
    pub fn principals_of_thing<'a>(&'a self, thing: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.thing_attachments
            .iter()
            .filter(move |(_, things)| things.contains(thing))
            .map(|(p, _)| p.as_str())
    }

    // ----- policies -----

    /// Creates a policy (`create-policy`); the document is validated and compiled.
    pub fn create_policy(&mut self, name: &str, document: &str) -> Result<(), RegistryError> {
        validate_name("policy", name)?;
        if self.policies.contains_key(name) {
            return Err(RegistryError::AlreadyExists {
                kind: "policy",
                name: name.to_owned(),
            });
        }
        let policy = Policy::parse(name, document)?;
        self.policies.insert(name.to_owned(), Arc::new(policy));
        self.changed();
        Ok(())
    }

    /// Replaces a policy's document (a new default version).
    pub fn update_policy(&mut self, name: &str, document: &str) -> Result<(), RegistryError> {
        if !self.policies.contains_key(name) {
            return Err(not_found("policy", name));
        }
        let policy = Policy::parse(name, document)?;
        self.policies.insert(name.to_owned(), Arc::new(policy));
        self.changed();
        Ok(())
    }

    /// A policy.
    pub fn policy(&self, name: &str) -> Option<&Arc<Policy>> {
        self.policies.get(name)
    }

    /// Every policy.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.values()
    }

    /// Deletes a policy that no principal has attached.
    pub fn delete_policy(&mut self, name: &str) -> Result<(), RegistryError> {
        if !self.policies.contains_key(name) {
            return Err(not_found("policy", name));
        }
        if self
            .policy_attachments
            .values()
            .any(|set| set.contains(name))
        {
            return Err(RegistryError::DeleteConflict(format!(
                "policy {name} is attached to a principal"
            )));
        }
        self.policies.remove(name);
        self.changed();
        Ok(())
    }

    /// Attaches a policy to a principal (`attach-policy --target`); at most
    /// [`MAX_POLICIES_PER_PRINCIPAL`].
    pub fn attach_policy(&mut self, name: &str, principal: &str) -> Result<(), RegistryError> {
        if !self.policies.contains_key(name) {
            return Err(not_found("policy", name));
        }
        let set = self
            .policy_attachments
            .entry(principal.to_owned())
            .or_default();
        if !set.contains(name) && set.len() >= MAX_POLICIES_PER_PRINCIPAL {
            return Err(RegistryError::LimitExceeded(format!(
                "a principal may have at most {MAX_POLICIES_PER_PRINCIPAL} policies"
            )));
        }
        set.insert(name.to_owned());
        self.changed();
        Ok(())
    }

    /// Detaches a policy from a principal.
    pub fn detach_policy(&mut self, name: &str, principal: &str) -> Result<(), RegistryError> {
        let removed = self
            .policy_attachments
            .get_mut(principal)
            .is_some_and(|set| set.remove(name));
        if !removed {
            return Err(not_found("policy attachment", name));
        }
        self.changed();
        Ok(())
    }

    /// The compiled policies attached to a principal.
    pub fn policies_of(&self, principal: &str) -> Vec<Arc<Policy>> {
        self.policy_attachments
            .get(principal)
            .into_iter()
            .flatten()
            .filter_map(|name| self.policies.get(name).cloned())
            .collect()
    }

    /// The policy-evaluation context of an MQTT connection: the client id, the peer address, the
    /// certificate, and the thing named like the client id when it is attached to the principal.
    pub fn context_for(
        &self,
        principal: &str,
        certificate: Option<Arc<CertificateInfo>>,
        client_id: Option<&str>,
        source_ip: Option<&str>,
    ) -> RequestContext {
        let thing = client_id
            .filter(|id| self.things_of(principal).any(|t| t == *id))
            .and_then(|id| self.things.get(id))
            .map(|t| ThingContext {
                name: t.name.clone(),
                type_name: t.type_name.clone(),
                attributes: t.attributes.clone(),
            });
        RequestContext {
            client_id: client_id.map(str::to_owned),
            source_ip: source_ip.map(str::to_owned),
            thing,
            certificate,
            connect_attributes: Vec::new(),
            last_will_topic: None,
        }
    }
}

/// Thing and policy names: 1–128 characters of letters, digits and `: _ - + = , . @` (the union of
/// AWS's thing-name and policy-name patterns).
fn validate_name(kind: &'static str, name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '+' | '=' | ',' | '.' | '@')
        });
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidRequest(format!(
            "{kind} name {name:?} must be 1-128 characters of letters, digits and : _ - + = , . @"
        )))
    }
}
