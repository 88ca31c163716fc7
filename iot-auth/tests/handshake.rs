//! Real TLS handshakes over an in-memory pair of rustls connections: the registry decides at the
//! handshake, each refusal has its own reason, and the broker gets the verified identity.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{NOW, Pki, handshake};
use iot_auth::endpoint::{ALPN_MQTT_CA, Port443Route, route_443};
use iot_auth::provision::{CertificateAuthority, DeviceCertificateRequest, KeyPurpose};
use iot_auth::registry::{CaStatus, CertificateStatus, Refusal};
use rustls::AlertDescription;

fn refused_with(
    pki: &Pki,
    device: &iot_auth::provision::IssuedCertificate,
    now: i64,
) -> (Refusal, Option<rustls::Error>) {
    let verifier = pki.verifier(true);
    let mut hs = handshake(
        pki.client_config(Some(device), &[], now),
        pki.server_config(verifier, &[], now),
        "localhost",
    );
    assert!(!hs.succeeded(), "the handshake must fail");
    assert!(hs.server_error.is_some());
    let refusals = pki.refusals();
    assert_eq!(
        refusals.len(),
        1,
        "exactly one logged refusal: {refusals:?}"
    );
    (refusals.into_iter().next().unwrap(), hs.client_error.take())
}

#[test]
fn an_active_certificate_connects_and_its_identity_is_seen() {
    let pki = Pki::new();
    let device = pki.device("car-1", CertificateStatus::Active);
    let verifier = pki.verifier(true);
    let mut hs = handshake(
        pki.client_config(Some(&device), &[], NOW),
        pki.server_config(verifier.clone(), &[], NOW),
        "localhost",
    );
    assert!(
        hs.succeeded(),
        "{:?} {:?}",
        hs.server_error,
        hs.client_error
    );
    let identity = verifier.identity(hs.server.peer_certificates()).unwrap();
    assert_eq!(identity.certificate_id(), &device.certificate_id);
    assert_eq!(
        identity
            .certificate()
            .subject()
            .first(iot_auth::x509::DnAttribute::CommonName),
        Some("car-1")
    );
    assert!(pki.refusals().is_empty());
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused() {
    let pki = Pki::new();
    let other = CertificateAuthority::generate("Someone else", NOW).unwrap();
    let device = other
        .issue_device(&DeviceCertificateRequest::new("stranger", NOW))
        .unwrap();
    let (refusal, client_error) = refused_with(&pki, &device, NOW);
    assert_eq!(refusal, Refusal::UnknownCa);
    assert_eq!(refusal.code(), "unknown_ca");
    assert_eq!(
        client_error,
        Some(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::new();
    let mut request = DeviceCertificateRequest::new("old", NOW);
    request.not_before = NOW - 7200;
    request.not_after = NOW - 60;
    let device = pki.ca.issue_device(&request).unwrap();
    pki.registry
        .write()
        .unwrap()
        .register_certificate_der(&device.certificate_der, CertificateStatus::Active)
        .unwrap();
    let (refusal, client_error) = refused_with(&pki, &device, NOW);
    assert_eq!(refusal.code(), "expired");
    assert!(
        matches!(refusal, Refusal::Expired { not_after, now } if not_after == NOW - 60 && now == NOW)
    );
    assert_eq!(
        client_error,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateExpired
        ))
    );
}

#[test]
fn a_not_yet_valid_certificate_is_refused() {
    let pki = Pki::new();
    let mut request = DeviceCertificateRequest::new("future", NOW);
    request.not_before = NOW + 3600;
    let device = pki.ca.issue_device(&request).unwrap();
    pki.registry
        .write()
        .unwrap()
        .register_certificate_der(&device.certificate_der, CertificateStatus::Active)
        .unwrap();
    let (refusal, _) = refused_with(&pki, &device, NOW);
    assert_eq!(refusal.code(), "not_yet_valid");
    // The same certificate connects once its time has come.
    let verifier = pki.verifier(true);
    let mut hs = handshake(
        pki.client_config(Some(&device), &[], NOW + 7200),
        pki.server_config(verifier, &[], NOW + 7200),
        "localhost",
    );
    assert!(hs.succeeded());
}

#[test]
fn inactive_and_revoked_certificates_are_refused_with_their_status() {
    let pki = Pki::new();
    let inactive = pki.device("sleepy", CertificateStatus::Inactive);
    let (refusal, _) = refused_with(&pki, &inactive, NOW);
    assert_eq!(refusal.code(), "inactive");
    assert_eq!(
        refusal,
        Refusal::NotActive {
            certificate_id: inactive.certificate_id.clone(),
            status: CertificateStatus::Inactive
        }
    );

    let revoked = pki.device("stolen", CertificateStatus::Active);
    pki.registry
        .write()
        .unwrap()
        .set_certificate_status(&revoked.certificate_id, CertificateStatus::Revoked)
        .unwrap();
    let (refusal, client_error) = refused_with(&pki, &revoked, NOW);
    assert_eq!(refusal.code(), "revoked");
    assert_eq!(
        client_error,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateRevoked
        ))
    );
}

#[test]
fn a_certificate_without_client_auth_usage_is_refused() {
    let pki = Pki::new();
    let mut request = DeviceCertificateRequest::new("server-only", NOW);
    request.purpose = KeyPurpose::ServerAuth;
    let device = pki.ca.issue_device(&request).unwrap();
    pki.registry
        .write()
        .unwrap()
        .register_certificate_der(&device.certificate_der, CertificateStatus::Active)
        .unwrap();
    let (refusal, _) = refused_with(&pki, &device, NOW);
    assert_eq!(refusal, Refusal::WrongKeyUsage);
}

#[test]
fn an_unregistered_certificate_and_an_inactive_ca_are_refused() {
    let pki = Pki::new();
    let device = pki
        .ca
        .issue_device(&DeviceCertificateRequest::new("unlisted", NOW))
        .unwrap();
    let (refusal, _) = refused_with(&pki, &device, NOW);
    assert_eq!(
        refusal,
        Refusal::Unregistered(device.certificate_id.clone())
    );

    let active = pki.device("car", CertificateStatus::Active);
    let ca_id = pki
        .registry
        .read()
        .unwrap()
        .cas()
        .next()
        .unwrap()
        .certificate
        .id()
        .clone();
    pki.registry
        .write()
        .unwrap()
        .set_ca_status(&ca_id, CaStatus::Inactive)
        .unwrap();
    let (refusal, _) = refused_with(&pki, &active, NOW);
    assert_eq!(refusal, Refusal::CaInactive(ca_id));
}

#[test]
fn auto_registration_records_the_certificate_pending_activation() {
    let pki = Pki::new();
    let ca_id = pki
        .registry
        .read()
        .unwrap()
        .cas()
        .next()
        .unwrap()
        .certificate
        .id()
        .clone();
    pki.registry
        .write()
        .unwrap()
        .set_ca_auto_registration(&ca_id, true)
        .unwrap();
    let device = pki
        .ca
        .issue_device(&DeviceCertificateRequest::new("new-car", NOW))
        .unwrap();
    let (refusal, _) = refused_with(&pki, &device, NOW);
    assert_eq!(refusal.code(), "pending_activation");
    let status = pki
        .registry
        .read()
        .unwrap()
        .certificate(&device.certificate_id)
        .unwrap()
        .status;
    assert_eq!(status, CertificateStatus::PendingActivation);
    // Refused again (still pending) until activated; then it connects.
    let (refusal, _) = refused_with(&pki, &device, NOW);
    assert_eq!(refusal.code(), "pending_activation");
    pki.registry
        .write()
        .unwrap()
        .set_certificate_status(&device.certificate_id, CertificateStatus::Active)
        .unwrap();
    let mut hs = handshake(
        pki.client_config(Some(&device), &[], NOW),
        pki.server_config(pki.verifier(true), &[], NOW),
        "localhost",
    );
    assert!(hs.succeeded());
}

#[test]
fn without_a_certificate_the_mandatory_port_refuses_and_the_optional_one_accepts() {
    let pki = Pki::new();
    let mut hs = handshake(
        pki.client_config(None, &[], NOW),
        pki.server_config(pki.verifier(true), &[], NOW),
        "localhost",
    );
    assert!(!hs.succeeded());
    assert!(matches!(
        hs.server_error,
        Some(rustls::Error::NoCertificatesPresented)
    ));

    let verifier = pki.verifier(false);
    let mut hs = handshake(
        pki.client_config(None, &[], NOW),
        pki.server_config(verifier.clone(), &[], NOW),
        "localhost",
    );
    assert!(hs.succeeded());
    assert!(verifier.identity(hs.server.peer_certificates()).is_none());
}

#[test]
fn alpn_x_amzn_mqtt_ca_is_negotiated_and_routes_to_mqtt() {
    let pki = Pki::new();
    let device = pki.device("car-443", CertificateStatus::Active);
    let server_alpn: &[&[u8]] = &[ALPN_MQTT_CA, b"x-amzn-http-ca", b"http/1.1"];
    let mut hs = handshake(
        pki.client_config(Some(&device), &[ALPN_MQTT_CA], NOW),
        pki.server_config(pki.verifier(false), server_alpn, NOW),
        "abc123-ats.iot.test",
    );
    assert!(hs.succeeded());
    assert_eq!(hs.server.alpn_protocol(), Some(ALPN_MQTT_CA));
    assert_eq!(
        route_443(hs.server.alpn_protocol()),
        Port443Route::MqttWithCertificate
    );
    assert_eq!(hs.server.server_name(), Some("abc123-ats.iot.test"));
}

#[test]
fn a_missing_sni_or_one_naming_no_endpoint_is_refused() {
    let pki = Pki::new();
    let device = pki.device("car", CertificateStatus::Active);
    let mut hs = handshake(
        pki.client_config(Some(&device), &[], NOW),
        pki.server_config(pki.verifier(true), &[], NOW),
        "example.com",
    );
    assert!(!hs.succeeded());
    assert!(hs.server_error.is_some());
    // A client connecting by IP address sends no SNI at all: refused too.
    let mut hs = handshake(
        pki.client_config(Some(&device), &[], NOW),
        pki.server_config(pki.verifier(true), &[], NOW),
        "127.0.0.1",
    );
    assert!(!hs.succeeded());
    assert!(hs.server.server_name().is_none());
}

#[test]
fn revocation_bites_the_next_handshake_even_for_a_client_that_kept_its_session() {
    let pki = Pki::new();
    let device = pki.device("car", CertificateStatus::Active);
    let server = pki.server_config(pki.verifier(true), &[], NOW);
    // One client config (and so one session cache) for both attempts.
    let client = pki.client_config(Some(&device), &[], NOW);
    let mut first = handshake(client.clone(), server.clone(), "localhost");
    assert!(first.succeeded());
    pki.registry
        .write()
        .unwrap()
        .set_certificate_status(&device.certificate_id, CertificateStatus::Revoked)
        .unwrap();
    let mut second = handshake(client, server, "localhost");
    assert!(!second.succeeded());
    assert_eq!(pki.refusals().len(), 1);
}

#[test]
fn tls_1_2_clients_are_checked_the_same_way() {
    let pki = Pki::new();
    let good = pki.device("good", CertificateStatus::Active);
    let bad = pki.device("bad", CertificateStatus::Revoked);
    for (device, ok) in [(&good, true), (&bad, false)] {
        let base = pki.client_config(Some(device), &[], NOW);
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                pki.ca.certificate_der().to_vec(),
            ))
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(common::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from(
                    device.certificate_der.clone(),
                )],
                rustls::pki_types::pem::PemObject::from_pem_slice(
                    device.private_key_pem.as_bytes(),
                )
                .unwrap(),
            )
            .unwrap();
        config.time_provider = base.time_provider.clone();
        let mut hs = handshake(
            config,
            pki.server_config(pki.verifier(true), &[], NOW),
            "localhost",
        );
        assert_eq!(hs.succeeded(), ok);
        if ok {
            assert_eq!(
                hs.server.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_2)
            );
        }
    }
    let refusals = pki.refusals();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].code(), "revoked");
}
