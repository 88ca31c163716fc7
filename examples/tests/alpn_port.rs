//! The 443-style port routes by ALPN as AWS's 443 does: `x-amzn-mqtt-ca` is MQTT with a client
//! certificate (rumqttc), `x-amzn-http-ca` is HTTPS with one; without a certificate MQTT is refused.
//! And the HTTPS limits and the named-shadow listing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rumqttc::{Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

fn connack(e: &Event) -> Option<()> {
    matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
}

/// A request without extra headers.
async fn request(
    port: u16,
    device: Option<&Device>,
    ca_pem: &str,
    alpn: &[&[u8]],
    request_line: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    https(port, device, ca_pem, alpn, request_line, &[], body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_with_alpn_x_amzn_mqtt_ca() {
    let scratch = Scratch::new("alpn-mqtt");
    let config = config(&scratch.0);
    let devices = provision(&config, 1);
    let running = iot_examples::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();

    let mut options = MqttOptions::new("alpn-car", "localhost", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(
            Some(&devices[0]),
            &devices[0].ca_pem,
            &[b"x-amzn-mqtt-ca"],
        )),
    )));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
    wait_for(&mut events, connack).await.unwrap();
    client
        .subscribe("cars/alpn", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish("cars/alpn", QoS::AtLeastOnce, false, "via 443")
        .await
        .unwrap();
    let message = wait_for(&mut events, incoming_publish).await.unwrap();
    assert_eq!(&message.payload[..], b"via 443");

    // The same ALPN without a client certificate: no MQTT session.
    let mut options = MqttOptions::new("no-cert", "localhost", port);
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(None, &devices[0].ca_pem, &[b"x-amzn-mqtt-ca"])),
    )));
    let (_client, mut events) = rumqttc::AsyncClient::new(options, 10);
    assert!(wait_for(&mut events, connack).await.is_err());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_alpn_x_amzn_http_ca_limits_and_named_shadows() {
    let scratch = Scratch::new("alpn-http");
    let config = config(&scratch.0);
    let devices = provision(&config, 1);
    {
        let dir = iot_examples::data_dir::DataDir::new(&config.data_dir);
        let mut opened = dir.open(&config, now()).unwrap();
        opened
            .registry
            .create_policy(
                "shadows",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":
                 ["iot:UpdateThingShadow","iot:GetThingShadow","iot:ListNamedShadowsForThing"],"Resource":"*"}]}"#,
            )
            .unwrap();
        opened
            .registry
            .attach_policy("shadows", &devices[0].id)
            .unwrap();
        opened.store.put_registry_json(&opened.registry.to_json());
        opened.store.commit().unwrap();
    }
    let running = iot_examples::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let d = Some(&devices[0]);
    let ca = &devices[0].ca_pem;
    let alpn: &[&[u8]] = &[b"x-amzn-http-ca"];

    let (status, body) = request(
        port,
        d,
        ca,
        alpn,
        "POST /topics/cars/9?qos=1 HTTP/1.1",
        b"hi",
    )
    .await;
    assert_eq!((status, body["message"].as_str()), (200, Some("OK")));

    // x-amzn-http-ca without a certificate: the connection is closed, no HTTP answer.
    let (status, _) = request(port, None, ca, alpn, "POST /topics/cars/9 HTTP/1.1", b"hi").await;
    assert_eq!(status, 0);

    // A body over the 128 KiB payload limit: 413.
    let big = vec![b'x'; 128 * 1024 + 1];
    let (status, body) = request(port, d, ca, &[], "POST /topics/cars/9 HTTP/1.1", &big).await;
    assert_eq!(status, 413, "{body}");

    // Wildcards are not topics: 400.
    let (status, _) = request(port, d, ca, &[], "POST /topics/cars/%2B HTTP/1.1", b"x").await;
    assert_eq!(status, 400);

    // Names AWS does not allow: 400.
    let (status, _) = request(port, d, ca, &[], "GET /things/a%23b/shadow HTTP/1.1", b"").await;
    assert_eq!(status, 400);
    let (status, _) = request(
        port,
        d,
        ca,
        &[],
        "GET /things/car-9/shadow?name=a%2Fb HTTP/1.1",
        b"",
    )
    .await;
    assert_eq!(status, 400);

    // Named shadows over REST, then the listing, paged.
    for name in ["engine", "doors", "lights"] {
        let (status, body) = request(
            port,
            d,
            ca,
            &[],
            &format!("POST /things/car-9/shadow?name={name} HTTP/1.1"),
            br#"{"state":{"reported":{"ok":true}}}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, page) = request(
        port,
        d,
        ca,
        &[],
        "GET /api/things/shadow/ListNamedShadowsForThing/car-9?pageSize=2 HTTP/1.1",
        b"",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    let token = page["nextToken"].as_str().unwrap().to_owned();
    let (_, rest) = request(port, d, ca, &[], &format!(
            "GET /api/things/shadow/ListNamedShadowsForThing/car-9?pageSize=2&nextToken={token} HTTP/1.1"
        ),
        b"",
    )
    .await;
    let mut all: Vec<String> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["results"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, ["doors", "engine", "lights"]);
    assert!(rest.get("nextToken").is_none());

    // A version conflict over REST is the shadow service's 409 JSON.
    let (status, body) = request(
        port,
        d,
        ca,
        &[],
        "POST /things/car-9/shadow?name=engine HTTP/1.1",
        br#"{"state":{"reported":{"ok":false}},"version":7}"#,
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (409, Some(409)), "{body}");
    assert_eq!(body["message"], "Version conflict");
    running.shutdown().await;
}
