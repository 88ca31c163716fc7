//! The registry's records and rules: statuses, attachments, delete conflicts, the policy limit,
//! the evaluation context of a connection, and the JSON round trip a durable store relies on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use iot_auth::policy::PolicyGuard;
use iot_auth::policy::ResourceArns;
use iot_auth::provision::{
    CertificateAuthority, DeviceCertificateRequest, create_keys_and_certificate,
};
use iot_auth::registry::{CertificateRegistry, CertificateStatus, RegistryError};
use iot_auth::x509::{CertificateId, CertificateInfo, DnAttribute};

const NOW: i64 = 1_790_000_000;
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

fn setup() -> (CertificateAuthority, CertificateRegistry) {
    let ca = CertificateAuthority::generate("Registry CA", NOW).unwrap();
    let mut registry = CertificateRegistry::new();
    registry
        .register_ca_pem(&ca.certificate_pem(), false)
        .unwrap();
    (ca, registry)
}

#[test]
fn certificate_fields_and_id() {
    let (ca, _) = setup();
    let mut request = DeviceCertificateRequest::new("car-1", NOW);
    request.organization = Some("Acme".into());
    request.country = Some("NL".into());
    let issued = ca.issue_device(&request).unwrap();
    let info = CertificateInfo::from_pem(&issued.certificate_pem).unwrap();
    assert_eq!(info.id(), &issued.certificate_id);
    assert_eq!(info.id().as_str().len(), 64);
    assert_eq!(info.id(), &CertificateId::of_der(&issued.certificate_der));
    assert_eq!(info.subject().first(DnAttribute::CommonName), Some("car-1"));
    assert_eq!(
        info.subject().first(DnAttribute::Organization),
        Some("Acme")
    );
    assert_eq!(info.subject().first(DnAttribute::Country), Some("NL"));
    assert_eq!(
        info.issuer().first(DnAttribute::CommonName),
        Some("Registry CA")
    );
    assert!(!info.is_ca());
    assert_eq!(info.not_before(), NOW - 3600);
    assert!(CertificateInfo::from_der(b"\x30\x03\x02\x01\x00").is_err());
    assert!(CertificateInfo::from_pem(&info.to_pem()).is_ok());
}

#[test]
fn a_non_ca_certificate_cannot_be_registered_as_a_ca() {
    let (ca, mut registry) = setup();
    let device = ca
        .issue_device(&DeviceCertificateRequest::new("d", NOW))
        .unwrap();
    assert!(matches!(
        registry.register_ca_der(&device.certificate_der, false),
        Err(RegistryError::InvalidRequest(_))
    ));
    assert!(matches!(
        registry.register_ca_pem(&ca.certificate_pem(), false),
        Err(RegistryError::AlreadyExists { .. })
    ));
}

#[test]
fn statuses_revocation_is_final_and_deletion_needs_detaching() {
    let (ca, mut registry) = setup();
    let issued = create_keys_and_certificate(&mut registry, &ca, true, NOW).unwrap();
    let id = issued.certificate_id.clone();
    let record = registry.certificate(&id).unwrap();
    assert_eq!(record.status, CertificateStatus::Active);
    assert!(record.ca_id.is_some());

    registry
        .create_thing("car-1", None, BTreeMap::new())
        .unwrap();
    registry
        .attach_thing_principal("car-1", id.as_str())
        .unwrap();
    registry.create_policy("all", ALLOW_ALL).unwrap();
    registry.attach_policy("all", id.as_str()).unwrap();

    assert!(matches!(
        registry.delete_certificate(&id),
        Err(RegistryError::DeleteConflict(_))
    ));
    registry
        .set_certificate_status(&id, CertificateStatus::Inactive)
        .unwrap();
    assert!(matches!(
        registry.delete_certificate(&id),
        Err(RegistryError::DeleteConflict(_))
    ));
    assert!(matches!(
        registry.delete_policy("all"),
        Err(RegistryError::DeleteConflict(_))
    ));
    registry
        .detach_thing_principal("car-1", id.as_str())
        .unwrap();
    registry.detach_policy("all", id.as_str()).unwrap();

    registry
        .set_certificate_status(&id, CertificateStatus::Revoked)
        .unwrap();
    assert!(
        registry
            .set_certificate_status(&id, CertificateStatus::Active)
            .is_err()
    );
    registry.delete_certificate(&id).unwrap();
    registry.delete_policy("all").unwrap();
    assert!(registry.certificate(&id).is_none());
}

#[test]
fn at_most_ten_policies_per_principal() {
    let (_, mut registry) = setup();
    for i in 0..11 {
        registry.create_policy(&format!("p{i}"), ALLOW_ALL).unwrap();
    }
    for i in 0..10 {
        registry
            .attach_policy(&format!("p{i}"), "principal")
            .unwrap();
    }
    assert!(matches!(
        registry.attach_policy("p10", "principal"),
        Err(RegistryError::LimitExceeded(_))
    ));
    assert_eq!(registry.policies_of("principal").len(), 10);
}

#[test]
fn a_malformed_policy_is_refused_and_names_are_checked() {
    let (_, mut registry) = setup();
    assert!(matches!(
        registry.create_policy("bad", "{}"),
        Err(RegistryError::Policy(_))
    ));
    assert!(matches!(
        registry.create_policy("no spaces", ALLOW_ALL),
        Err(RegistryError::InvalidRequest(_))
    ));
    assert!(matches!(
        registry.create_thing("", None, BTreeMap::new()),
        Err(RegistryError::InvalidRequest(_))
    ));
    assert!(matches!(
        registry.attach_policy("missing", "p"),
        Err(RegistryError::NotFound { .. })
    ));
}

#[test]
fn the_connection_context_sees_the_attached_thing_only() {
    let (ca, mut registry) = setup();
    let issued = create_keys_and_certificate(&mut registry, &ca, true, NOW).unwrap();
    let principal = issued.certificate_id.as_str();
    registry
        .create_thing(
            "car-1",
            Some("car"),
            BTreeMap::from([("color".into(), "red".into())]),
        )
        .unwrap();
    registry
        .create_thing("car-2", None, BTreeMap::new())
        .unwrap();
    registry.attach_thing_principal("car-1", principal).unwrap();
    registry
        .create_policy(
            "own-topic",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish",
                "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/${iot:Connection.Thing.Attributes[color]}"}]}"#,
        )
        .unwrap();
    registry.attach_policy("own-topic", principal).unwrap();

    let identity = registry
        .authenticate(&issued.certificate_der, &[], NOW)
        .unwrap();
    let ctx = registry.context_for(
        principal,
        Some(identity.certificate().clone()),
        Some("car-1"),
        Some("127.0.0.1"),
    );
    assert_eq!(
        ctx.thing.as_ref().unwrap().type_name.as_deref(),
        Some("car")
    );
    let mut guard = PolicyGuard::new(
        registry.policies_of(principal),
        ResourceArns::new("us-east-1", "123456789012"),
        ctx,
    );
    assert!(guard.publish("car-1/red", false).is_allowed());

    // car-2 exists but is not attached to this certificate: no thing variables.
    let ctx = registry.context_for(principal, None, Some("car-2"), None);
    assert!(ctx.thing.is_none());
    guard.set_context(ctx);
    assert!(!guard.publish("car-2/red", false).is_allowed());
}

#[test]
fn json_round_trip_keeps_everything() {
    let (ca, mut registry) = setup();
    let a = create_keys_and_certificate(&mut registry, &ca, true, NOW).unwrap();
    let b = create_keys_and_certificate(&mut registry, &ca, false, NOW).unwrap();
    registry
        .create_thing(
            "car-1",
            Some("car"),
            BTreeMap::from([("k".into(), "v".into())]),
        )
        .unwrap();
    registry
        .attach_thing_principal("car-1", a.certificate_id.as_str())
        .unwrap();
    registry.create_policy("all", ALLOW_ALL).unwrap();
    registry
        .attach_policy("all", a.certificate_id.as_str())
        .unwrap();
    let ca_id = registry.cas().next().unwrap().certificate.id().clone();
    registry.set_ca_auto_registration(&ca_id, true).unwrap();

    let json = registry.to_json();
    let copy =
        CertificateRegistry::from_json(&serde_json::from_str(&json.to_string()).unwrap()).unwrap();
    assert_eq!(copy.to_json(), json);
    assert_eq!(
        copy.certificate(&b.certificate_id).unwrap().status,
        CertificateStatus::Inactive
    );
    assert!(copy.ca(&ca_id).unwrap().auto_registration);
    assert_eq!(
        copy.things_of(a.certificate_id.as_str())
            .collect::<Vec<_>>(),
        vec!["car-1"]
    );
    assert_eq!(copy.policies_of(a.certificate_id.as_str())[0].name(), "all");
    assert!(copy.authenticate(&a.certificate_der, &[], NOW).is_ok());
    assert!(CertificateRegistry::from_json(&serde_json::json!({"things": 5})).is_err());
}

#[test]
fn a_saved_ca_keeps_issuing_certificates_that_chain() {
    let (ca, mut registry) = setup();
    let reloaded =
        CertificateAuthority::from_pem(&ca.certificate_pem(), ca.private_key_pem()).unwrap();
    let issued = create_keys_and_certificate(&mut registry, &reloaded, true, NOW).unwrap();
    assert!(
        registry
            .authenticate(&issued.certificate_der, &[], NOW)
            .is_ok()
    );
}
