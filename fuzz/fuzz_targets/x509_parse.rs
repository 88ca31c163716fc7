//! Arbitrary bytes as a client certificate: DER parsing, PEM extraction, and the registry's
//! handshake-time check (webpki path building against a registered CA) never panic, and never
//! accept bytes that are not the registered certificate.
#![no_main]

use std::sync::OnceLock;

use iot_auth::provision::{CertificateAuthority, DeviceCertificateRequest};
use iot_auth::registry::{CertificateRegistry, CertificateStatus};
use iot_auth::x509::{CertificateId, CertificateInfo, first_pem_certificate, pem_certificates};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_790_000_000;

struct Fixture {
    registry: CertificateRegistry,
    device_id: CertificateId,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = CertificateAuthority::generate("Fuzz CA", NOW).expect("a CA");
        let mut registry = CertificateRegistry::new();
        registry.register_ca_pem(&ca.certificate_pem(), true).expect("registered");
        let device = ca
            .issue_device(&DeviceCertificateRequest::new("fuzz", NOW))
            .expect("a device certificate");
        let device_id = registry
            .register_certificate_der(&device.certificate_der, CertificateStatus::Active)
            .expect("registered");
        Fixture { registry, device_id }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    if let Ok(info) = CertificateInfo::from_der(data) {
        let _ = info.to_pem();
        let _ = info.subject().first(iot_auth::x509::DnAttribute::CommonName);
    }
    match fixture.registry.authenticate(data, &[data], NOW) {
        Ok(identity) => assert_eq!(identity.certificate_id(), &fixture.device_id),
        Err(refusal) => {
            let _ = refusal.code();
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(der) = first_pem_certificate(&text) {
        let _ = CertificateInfo::from_der(&der);
    }
    let _ = pem_certificates(&text);
});
