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
    let running = iot_examples::broker::server::start(&config).await.unwrap();
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
        let dir = iot_examples::store::data_dir::DataDir::new(&config.data_dir);
        let mut opened = dir.open(&config, now()).unwrap();
        opened
            .registry
            .create_policy(
                "shadows",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":
                 ["iot:UpdateThingShadow","iot:GetThingShadow","iot:DeleteThingShadow","iot:ListNamedShadowsForThing"],"Resource":"*"}]}"#,
            )
            .unwrap();
        opened
            .registry
            .attach_policy("shadows", &devices[0].id)
            .unwrap();
        opened.store.put_registry_json(&opened.registry.to_json());
        opened.store.commit().unwrap();
    }
    let running = iot_examples::broker::server::start(&config).await.unwrap();
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

    // Reserved topics devices may not publish to: 403, as over MQTT.
    let line = "POST /topics/$aws/things/car-9/shadow/update/accepted HTTP/1.1";
    let (status, _) = request(port, d, ca, &[], line, b"{}").await;
    assert_eq!(status, 403);
    let line = "POST /topics/$aws/events/presence/connected/car-9 HTTP/1.1";
    let (status, _) = request(port, d, ca, &[], line, b"{}").await;
    assert_eq!(status, 403);

    // A shadow request over HTTPS publish reaches the shadow service.
    let line = "POST /topics/$aws/things/car-9/shadow/update?qos=1 HTTP/1.1";
    let (status, _) = request(
        port,
        d,
        ca,
        &[],
        line,
        br#"{"state":{"reported":{"via":"publish"}}}"#,
    )
    .await;
    assert_eq!(status, 200);
    let (status, doc) = request(port, d, ca, &[], "GET /things/car-9/shadow HTTP/1.1", b"").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["state"]["reported"]["via"], "publish");

    // A REST update notifies MQTT subscribers on update/accepted, as AWS does.
    let (car, mut events) = rumqttc(&devices[0], "rest-watcher", running.mqtts.port(), true);
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    car.subscribe("$aws/things/car-9/shadow/update/accepted", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();
    let (status, _) = request(
        port,
        d,
        ca,
        &[],
        "POST /things/car-9/shadow HTTP/1.1",
        br#"{"state":{"reported":{"via":"rest"}}}"#,
    )
    .await;
    assert_eq!(status, 200);
    let accepted = wait_for(&mut events, incoming_publish).await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&accepted.payload).unwrap();
    assert_eq!(doc["state"]["reported"]["via"], "rest");

    // And a REST delete on delete/accepted.
    car.subscribe("$aws/things/car-9/shadow/delete/accepted", QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();
    let (status, deleted) = request(
        port,
        d,
        ca,
        &[],
        "DELETE /things/car-9/shadow HTTP/1.1",
        b"",
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    let notice = wait_for(&mut events, incoming_publish).await.unwrap();
    assert_eq!(notice.topic, "$aws/things/car-9/shadow/delete/accepted");
    let doc: serde_json::Value = serde_json::from_slice(&notice.payload).unwrap();
    assert_eq!(doc["version"], deleted["version"]);

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
