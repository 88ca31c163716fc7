//! The registry as one JSON document, for programs that store it (the broker's durable store) or
//! show it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{CaRecord, CertificateRegistry, RegistryError};
use crate::x509::{CertificateInfo, first_pem_certificate};

impl CertificateRegistry {
    /// Every record as JSON: CAs and certificates (PEM and status), things, policy documents and
    /// attachments.
    ///
    /// ```
    /// use iot_auth::registry::CertificateRegistry;
    /// let mut registry = CertificateRegistry::new();
    /// registry.create_thing("car-1", Some("car"), Default::default()).unwrap();
    /// let copy = CertificateRegistry::from_json(&registry.to_json()).unwrap();
    /// assert_eq!(copy.thing("car-1").unwrap().type_name.as_deref(), Some("car"));
    /// ```
    pub fn to_json(&self) -> Value {
        let cas: Vec<Value> = self
            .cas
            .values()
            .map(|ca| {
                json!({
                    "certificateId": ca.certificate.id().as_str(),
                    "certificatePem": ca.certificate.to_pem(),
                    "status": ca.status.as_str(),
                    "autoRegistrationStatus": if ca.auto_registration { "ENABLE" } else { "DISABLE" },
                })
            })
            .collect();
        let certificates: Vec<Value> = self
            .certificates
            .values()
            .map(|c| {
                json!({
                    "certificateId": c.certificate.id().as_str(),
                    "certificatePem": c.certificate.to_pem(),
                    "status": c.status.as_str(),
                })
            })
            .collect();
        let things: Vec<Value> = self
            .things
            .values()
            .map(|t| {
                json!({
                    "thingName": t.name,
                    "thingTypeName": t.type_name,
                    "attributes": t.attributes,
                })
            })
            .collect();
        let policies: Vec<Value> = self
            .policies
            .values()
            .map(|p| json!({"policyName": p.name(), "policyDocument": p.document()}))
            .collect();
        json!({
            "caCertificates": cas,
            "certificates": certificates,
            "things": things,
            "policies": policies,
            "thingPrincipals": self.thing_attachments,
            "policyPrincipals": self.policy_attachments,
        })
    }

    /// Rebuilds a registry from [`to_json`](Self::to_json)'s output.
    pub fn from_json(value: &Value) -> Result<Self, RegistryError> {
        let bad = |what: &str| RegistryError::InvalidRequest(format!("registry JSON: {what}"));
        let list = |key: &str| -> Result<Vec<Map<String, Value>>, RegistryError> {
            match value.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_object().cloned().ok_or_else(|| bad(key)))
                    .collect(),
                Some(_) => Err(bad(key)),
            }
        };
        let text = |m: &Map<String, Value>, key: &str| -> Result<String, RegistryError> {
            m.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(key))
        };
        let mut registry = CertificateRegistry::new();
        for ca in list("caCertificates")? {
            let der = first_pem_certificate(&text(&ca, "certificatePem")?)?;
            let certificate = CertificateInfo::from_der(&der)?;
            let status = text(&ca, "status")?.parse().map_err(|e: String| bad(&e))?;
            let auto_registration = text(&ca, "autoRegistrationStatus")? == "ENABLE";
            registry.cas.insert(
                certificate.id().clone(),
                CaRecord {
                    certificate,
                    status,
                    auto_registration,
                },
            );
        }
        for cert in list("certificates")? {
            let der = first_pem_certificate(&text(&cert, "certificatePem")?)?;
            let status = text(&cert, "status")?
                .parse()
                .map_err(|e: String| bad(&e))?;
            registry.register_certificate_der(&der, status)?;
        }
        for thing in list("things")? {
            let attributes: BTreeMap<String, String> = match thing.get("attributes") {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("attributes"))?,
                _ => BTreeMap::new(),
            };
            let type_name = thing
                .get("thingTypeName")
                .and_then(Value::as_str)
                .map(str::to_owned);
            registry.create_thing(
                &text(&thing, "thingName")?,
                type_name.as_deref(),
                attributes,
            )?;
        }
        for policy in list("policies")? {
            registry.create_policy(
                &text(&policy, "policyName")?,
                &text(&policy, "policyDocument")?,
            )?;
        }
        for (key, target) in [
            ("thingPrincipals", &mut registry.thing_attachments),
            ("policyPrincipals", &mut registry.policy_attachments),
        ] {
            if let Some(Value::Object(map)) = value.get(key) {
                for (principal, names) in map {
                    let names = names
                        .as_array()
                        .ok_or_else(|| bad(key))?
                        .iter()
                        .map(|n| n.as_str().map(str::to_owned))
                        .collect::<Option<_>>()
                        .ok_or_else(|| bad(key))?;
                    target.insert(principal.clone(), names);
                }
            }
        }
        Ok(registry)
    }
}
