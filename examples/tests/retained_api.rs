//! The retained-message API of the AWS IoT data plane through the broker: `GetRetainedMessage`
//! and `ListRetainedMessages` over HTTPS, for messages retained over MQTT (rumqttc) and HTTPS,
//! with their policy actions, paging, errors, and times that survive a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine as _;
use common::*;
use rumqttc::{Event, Packet, QoS};

const READER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:GetRetainedMessage","Resource":"arn:aws:iot:us-east-1:123456789012:topic/cars/*"},
  {"Effect":"Allow","Action":"iot:ListRetainedMessages","Resource":"*"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_read_back_over_https() {
    let scratch = Scratch::new("retained-api");
    let config = config(&scratch.0);
    let devices = provision(&config, 2);
    attach_new_policy(&config, "reader", READER, &devices[0].id);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let ca = devices[0].ca_pem.clone();
    let reader = Some(&devices[0]);
    let get = |device: Option<&Device>, line: String| {
        let (ca, device) = (ca.clone(), device.cloned());
        async move { https_reply(port, device.as_ref(), &ca, &[], &line, &[], b"").await }
    };
    let started = now() * 1000;

    // Retained over MQTT at QoS 1 (binary payload) and over HTTPS at QoS 0.
    let (car, mut events) = rumqttc(&devices[1], "car-7", running.mqtts.port(), true);
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    car.publish(
        "cars/7/status",
        QoS::AtLeastOnce,
        true,
        vec![0u8, 1, 2, 255],
    )
    .await
    .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
    })
    .await
    .unwrap();
    for n in 0..5 {
        let line = format!("POST /topics/cars/{n}/gps?retain=true HTTP/1.1");
        let (status, _) = https(
            port,
            Some(&devices[1]),
            &ca,
            &[],
            &line,
            &[],
            format!("gps {n}").as_bytes(),
        )
        .await;
        assert_eq!(status, 200);
    }

    let reply = get(
        reader,
        "GET /retainedMessage/cars%2F7%2Fstatus HTTP/1.1".into(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["topic"], "cars/7/status");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(reply.body["payload"].as_str().unwrap())
            .unwrap(),
        [0u8, 1, 2, 255]
    );
    assert_eq!(reply.body["qos"], 1);
    let modified = reply.body["lastModifiedTime"].as_u64().unwrap();
    assert!(modified >= started as u64 && modified <= now() as u64 * 1000 + 1000);
    // The topic with raw slashes, as curl sends it, names the same message.
    let raw = get(reader, "GET /retainedMessage/cars/7/status HTTP/1.1".into()).await;
    assert_eq!(raw.body["topic"], "cars/7/status");

    // Paging: six topics, two at a time, in topic order, each once.
    let mut topics = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut line = "GET /retainedMessage?maxResults=2".to_owned();
        if let Some(token) = &token {
            line.push_str(&format!("&nextToken={token}"));
        }
        let reply = get(reader, format!("{line} HTTP/1.1")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        pages += 1;
        for summary in reply.body["retainedTopics"].as_array().unwrap() {
            topics.push(summary["topic"].as_str().unwrap().to_owned());
            assert!(summary["payloadSize"].as_u64().unwrap() > 0);
            assert!(summary.get("payload").is_none(), "a summary has no payload");
        }
        token = reply.body["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        topics,
        [
            "cars/0/gps",
            "cars/1/gps",
            "cars/2/gps",
            "cars/3/gps",
            "cars/4/gps",
            "cars/7/status"
        ]
    );

    // Errors, each with its AWS type.
    let missing = get(reader, "GET /retainedMessage/cars%2Fnone HTTP/1.1".into()).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    let denied = get(reader, "GET /retainedMessage/trucks%2F1 HTTP/1.1".into()).await;
    assert_eq!(denied.status, 403);
    let lister_denied = get(Some(&devices[1]), "GET /retainedMessage HTTP/1.1".into()).await;
    assert_eq!(lister_denied.status, 403);
    let wildcard = get(reader, "GET /retainedMessage/cars%2F%2B HTTP/1.1".into()).await;
    assert_eq!(wildcard.status, 400, "{wildcard:?}");
    for query in ["maxResults=0", "maxResults=201", "nextToken=%21%21"] {
        let reply = get(reader, format!("GET /retainedMessage?{query} HTTP/1.1")).await;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
        assert_eq!(
            reply.header("x-amzn-errortype"),
            Some("InvalidRequestException")
        );
    }
    let reply = https_reply(
        port,
        reader,
        &ca,
        &[],
        "DELETE /retainedMessage/cars%2F1%2Fgps HTTP/1.1",
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 405);

    // An empty retained publish deletes it.
    let (status, _) = https(
        port,
        Some(&devices[1]),
        &ca,
        &[],
        "POST /topics/cars/0/gps?retain=true HTTP/1.1",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    let gone = get(
        reader,
        "GET /retainedMessage/cars%2F0%2Fgps HTTP/1.1".into(),
    )
    .await;
    assert_eq!(gone.status, 404);

    // The time a message was retained survives a restart.
    running.shutdown().await;
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let reply = https_reply(
        port,
        reader,
        &ca,
        &[],
        "GET /retainedMessage/cars%2F7%2Fstatus HTTP/1.1",
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["lastModifiedTime"].as_u64(), Some(modified));
    running.shutdown().await;
}
