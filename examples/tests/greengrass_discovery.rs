//! Greengrass cloud discovery through the real broker program: a core device and cars provisioned
//! with the CLI, a car associated with the core, the core reporting its endpoint and CA over
//! HTTPS with its certificate, and cars discovering (or not) their core, also while the cloud is
//! down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use iot_auth::endpoint::ALPN_HTTP_CA;
use iot_auth::provision::CertificateAuthority;
use iot_examples::device::greengrass::{
    self, DeviceIdentity, DiscoverySource, GreengrassDiscovery,
};
use iot_examples::device::{Discovery, Endpoint, Transport};
use iot_examples::store::discover_response::ConnectivityInfo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

/// A thing with a new certificate attached and policy `policy` (created from `document` if new).
fn thing(config: &Path, name: &str, policy: &str, document: &str) -> Device {
    broker_cli(config, &["create-thing", "--thing-name", name]).unwrap();
    let created = broker_cli(config, &["create-keys-and-certificate", "--set-as-active"]).unwrap();
    let arn = created["certificateArn"].as_str().unwrap();
    broker_cli(
        config,
        &[
            "attach-thing-principal",
            "--thing-name",
            name,
            "--principal",
            arn,
        ],
    )
    .unwrap();
    let _ = broker_cli(
        config,
        &[
            "create-policy",
            "--policy-name",
            policy,
            "--policy-document",
            document,
        ],
    );
    broker_cli(
        config,
        &["attach-policy", "--policy-name", policy, "--target", arn],
    )
    .unwrap();
    device_of(&created)
}

/// The cloud's HTTPS data plane for `device`: the ALPN port, ALPN `x-amzn-http-ca`.
fn cloud(device: &Device, alpn_port: u16) -> Endpoint {
    Endpoint {
        host: "localhost".into(),
        port: alpn_port,
        transport: Transport::Tls(Arc::new(client_tls(
            Some(device),
            &device.ca_pem,
            &[ALPN_HTTP_CA],
        ))),
    }
}

/// `GET /greengrass/discover/thing/{thing}` with `device`'s certificate: (status, body).
async fn discover_raw(port: u16, device: &Device, thing: &str) -> (u16, Value) {
    https(
        port,
        Some(device),
        &device.ca_pem,
        &[ALPN_HTTP_CA],
        &format!("GET /greengrass/discover/thing/{thing} HTTP/1.1"),
        &[],
        b"",
    )
    .await
}

/// A stand-in for a core's local broker: TLS on loopback with a server certificate for
/// `localhost` from `core_ca`, requiring a client certificate from the cloud's CA (as the core's
/// client device auth does). Answers each handshake by closing; returns its port.
async fn fake_core(core_ca: &CertificateAuthority, cloud_ca_pem: &str) -> u16 {
    let server = core_ca
        .issue_server(&["localhost".to_owned()], now())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cloud_ca_pem.as_bytes()) {
        client_roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(server.certificate_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(server.private_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    port
}

fn hosts(endpoints: &[Endpoint]) -> Vec<String> {
    endpoints.iter().map(Endpoint::address).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_find_their_core_through_the_cloud_and_keep_it_while_the_cloud_is_down() {
    let scratch = Scratch::new("greengrass");
    let config = write_config(&scratch.0);
    let core_policy = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["greengrass:UpdateConnectivityInfo","greengrass:GetConnectivityInfo"],
         "Resource":"arn:aws:greengrass:us-east-1:123456789012:/greengrass/things/core-*/connectivityInfo"},
        {"Effect":"Allow","Action":"greengrass:PutCertificateAuthorities","Resource":"*"}]})
    .to_string();
    let car_policy = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iot:Connect","Resource":format!("{ARN}:client/car-*")},
        {"Effect":"Allow","Action":"greengrass:Discover","Resource":format!("{ARN}:thing/car-*")}]})
    .to_string();
    let plain_policy = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iot:*","Resource":"*"}]})
    .to_string();

    // Provisioned with the broker stopped (the CLI opens the data directory itself).
    let core = thing(&config, "core-1", "core", &core_policy);
    let car1 = thing(&config, "car-1", "car", &car_policy);
    let car2 = thing(&config, "car-2", "car", &car_policy);
    let car3 = thing(&config, "car-3", "plain", &plain_policy);

    let broker = BrokerProcess::start(&config);
    let alpn = broker.alpn_port();
    let fallback = vec![tls_endpoint(&car1, broker.mqtts_port())];

    // Associations while it runs (through the admin socket); unknown things are error entries.
    let answer = broker_cli(
        &config,
        &[
            "batch-associate-client-device-with-core-device",
            "--core-device-thing-name",
            "core-1",
            "--thing-names",
            "car-1,ghost",
        ],
    )
    .unwrap();
    assert_eq!(
        answer,
        json!({"errorEntries":[{"thingName":"ghost","code":"ResourceNotFoundException","message":"Thing ghost not found"}]})
    );
    let error = broker_cli(
        &config,
        &[
            "batch-associate-client-device-with-core-device",
            "--core-device-thing-name",
            "no-such-core",
            "--thing-names",
            "car-1",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("no-such-core"), "{error}");
    let listed = broker_cli(
        &config,
        &[
            "list-client-devices-associated-with-core-device",
            "--core-device-thing-name",
            "core-1",
        ],
    )
    .unwrap();
    assert_eq!(listed["associatedClientDevices"][0]["thingName"], "car-1");
    assert_eq!(
        listed["associatedClientDevices"].as_array().unwrap().len(),
        1
    );

    // Associated but the core has no endpoint yet: AWS's 404.
    assert_eq!(
        discover_raw(alpn, &car1, "car-1").await,
        (
            404,
            json!({"errorMessage":"The thing provided for discovery was not found"})
        )
    );

    // The core reports its endpoint and its CA over HTTPS with its own certificate.
    let core_ca = CertificateAuthority::generate("core-1 local CA", now()).unwrap();
    let core_port = fake_core(&core_ca, &core.ca_pem).await;
    let core_cloud = cloud(&core, alpn);
    let lan = ConnectivityInfo {
        id: "lan".into(),
        host_address: "localhost".into(),
        port_number: core_port,
        metadata: "local broker".into(),
    };
    let version =
        greengrass::update_connectivity_info(&core_cloud, "core-1", std::slice::from_ref(&lan))
            .await
            .unwrap();
    assert_eq!(version, "1");
    greengrass::put_certificate_authorities(&core_cloud, "core-1", &[core_ca.certificate_pem()])
        .await
        .unwrap();
    let shown = broker_cli(
        &config,
        &["get-connectivity-info", "--thing-name", "core-1"],
    )
    .unwrap();
    assert_eq!(
        shown,
        json!({"ConnectivityInfo":[{"Id":"lan","HostAddress":"localhost","PortNumber":core_port,"Metadata":"local broker"}]})
    );

    // A car may not speak for the core: its policy has no UpdateConnectivityInfo.
    let refused = greengrass::update_connectivity_info(
        &cloud(&car1, alpn),
        "core-1",
        std::slice::from_ref(&lan),
    )
    .await;
    match refused {
        Err(greengrass::GreengrassError::Status {
            status, error_type, ..
        }) => {
            assert_eq!(
                (status, error_type.as_str()),
                (403, "AccessDeniedException")
            );
        }
        other => panic!("{other:?}"),
    }
    // A bad entry is a ValidationException, and changes nothing.
    let bad = ConnectivityInfo {
        port_number: 0,
        ..lan.clone()
    };
    match greengrass::update_connectivity_info(&core_cloud, "core-1", &[bad]).await {
        Err(greengrass::GreengrassError::Status {
            status, error_type, ..
        }) => assert_eq!((status, error_type.as_str()), (400, "ValidationException")),
        other => panic!("{other:?}"),
    }

    // The associated car's answer is the documented document, exactly.
    let expected = json!({"GGGroups":[{
        "GGGroupId":"greengrassV2-coreDevice-core-1",
        "Cores":[{"thingArn":format!("{ARN}:thing/core-1"),
                  "Connectivity":[{"id":"lan","hostAddress":"localhost","portNumber":core_port,"metadata":"local broker"}]}],
        "CAs":[core_ca.certificate_pem()]}]});
    assert_eq!(
        discover_raw(alpn, &car1, "car-1").await,
        (200, expected.clone())
    );
    // The other car is associated with nothing: 404 with AWS's body.
    assert_eq!(
        discover_raw(alpn, &car2, "car-2").await,
        (
            404,
            json!({"errorMessage":"The thing provided for discovery was not found"})
        )
    );
    // A car without greengrass:Discover: 403, AWS's null message.
    let (status, body) = discover_raw(alpn, &car3, "car-3").await;
    assert_eq!(status, 403);
    assert_eq!(body["message"], Value::Null);
    assert!(body["traceId"].is_string());
    // No certificate, no discovery (mutual TLS is the only authentication AWS accepts).
    let (status, _) = https(
        alpn,
        None,
        &car1.ca_pem,
        &[],
        "GET /greengrass/discover/thing/car-1 HTTP/1.1",
        &[],
        b"",
    )
    .await;
    assert!(status == 401 || status == 403, "{status}");

    // GreengrassDiscovery: the associated car gets its core, and the TLS it builds reaches the
    // core (trusting the core's CA, presenting the car's certificate, server name = hostAddress).
    let identity1 = DeviceIdentity::from_pem(&car1.cert_pem, &car1.key_pem).unwrap();
    let mut discovery1 = GreengrassDiscovery::new(
        "car-1",
        cloud(&car1, alpn),
        identity1.clone(),
        fallback.clone(),
    );
    let endpoints = discovery1.endpoints().await.unwrap();
    assert_eq!(hosts(&endpoints), [format!("localhost:{core_port}")]);
    assert_eq!(discovery1.last_source(), Some(DiscoverySource::Cores));
    endpoints[0].open(now() as u64).await.unwrap();
    // The other car gets the fallback: the cloud.
    let identity2 = DeviceIdentity::from_pem(&car2.cert_pem, &car2.key_pem).unwrap();
    let mut discovery2 =
        GreengrassDiscovery::new("car-2", cloud(&car2, alpn), identity2, fallback.clone());
    assert_eq!(
        hosts(&discovery2.endpoints().await.unwrap()),
        hosts(&fallback)
    );
    assert_eq!(discovery2.last_source(), Some(DiscoverySource::Fallback));

    // The cloud goes away: the associated car keeps its core; a car that never learned one (a
    // fresh discovery) falls back.
    broker.kill_9();
    let endpoints = discovery1.endpoints().await.unwrap();
    assert_eq!(hosts(&endpoints), [format!("localhost:{core_port}")]);
    assert_eq!(discovery1.last_source(), Some(DiscoverySource::Cached));
    endpoints[0].open(now() as u64).await.unwrap();
    let mut fresh =
        GreengrassDiscovery::new("car-1", cloud(&car1, alpn), identity1, fallback.clone());
    assert_eq!(hosts(&fresh.endpoints().await.unwrap()), hosts(&fallback));
    assert_eq!(fresh.last_source(), Some(DiscoverySource::Fallback));

    // Everything was committed before it was answered: a restarted cloud answers the same.
    let broker = BrokerProcess::start(&config);
    assert_eq!(
        discover_raw(broker.alpn_port(), &car1, "car-1").await,
        (200, expected)
    );
    // Disassociated: the car is sent back to the cloud.
    broker_cli(
        &config,
        &[
            "batch-disassociate-client-device-from-core-device",
            "--core-device-thing-name",
            "core-1",
            "--thing-names",
            "car-1",
        ],
    )
    .unwrap();
    let mut discovery1 = GreengrassDiscovery::new(
        "car-1",
        cloud(&car1, broker.alpn_port()),
        DeviceIdentity::from_pem(&car1.cert_pem, &car1.key_pem).unwrap(),
        fallback.clone(),
    );
    assert_eq!(
        hosts(&discovery1.endpoints().await.unwrap()),
        hosts(&fallback)
    );
    assert_eq!(discovery1.last_source(), Some(DiscoverySource::Fallback));
}
