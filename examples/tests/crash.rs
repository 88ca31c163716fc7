//! Nothing acknowledged is lost: a broker process is killed with SIGKILL in the middle of a stream
//! of QoS 1 retained publishes and shadow updates, restarted, and every acknowledged item is
//! checked: each PUBACKed message reaches the offline persistent subscriber, retained messages are
//! there (those published over MQTT and those answered 200 over HTTPS), and the shadow's version
//! is at least the last one answered on `/accepted`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rumqttc::{Event, Outgoing, Packet, QoS};

/// Paced under AWS's 100 publishes per second per connection (the excess is dropped unacknowledged).
const MESSAGES: usize = 200;
const PACE: Duration = Duration::from_millis(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_data_survives_kill_9() {
    let scratch = Scratch::new("crash");
    let config_path = write_config(&scratch.0);
    let config = iot_examples::config::BrokerConfig::load(Some(&config_path)).unwrap();
    let devices = provision(&config, 2);

    let broker = BrokerProcess::start(&config_path);
    let port = broker.mqtts_port();

    // An offline persistent subscriber.
    let (sink, mut sink_events) = rumqttc(&devices[0], "sink", port, false);
    wait_for(&mut sink_events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    sink.subscribe("cars/k/+", QoS::AtLeastOnce).await.unwrap();
    wait_for(&mut sink_events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();
    sink.disconnect().await.unwrap();
    let _ = wait_for(&mut sink_events, |e| {
        matches!(e, Event::Outgoing(Outgoing::Disconnect)).then_some(())
    })
    .await;
    drop(sink_events);

    // The publisher streams retained QoS 1 messages and shadow updates.
    let (publisher, mut events) = rumqttc(&devices[1], "crash-thing", port, true);
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    publisher
        .subscribe(
            "$aws/things/crash-thing/shadow/update/accepted",
            QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await
    .unwrap();
    let sender = publisher.clone();
    tokio::spawn(async move {
        for i in 0..MESSAGES {
            tokio::time::sleep(PACE).await;
            if sender
                .publish(format!("cars/k/{i}"), QoS::AtLeastOnce, true, i.to_string())
                .await
                .is_err()
            {
                return;
            }
            if i % 10 == 0 {
                let update = format!(r#"{{"state":{{"reported":{{"n":{i}}}}}}}"#);
                if sender
                    .publish(
                        "$aws/things/crash-thing/shadow/update",
                        QoS::AtLeastOnce,
                        false,
                        update,
                    )
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });

    // Meanwhile retained HTTPS publishes; each answered 200 must survive.
    let https_ok: Arc<Mutex<Vec<usize>>> = Arc::default();
    let https_task = {
        let https_ok = https_ok.clone();
        let device = devices[1].clone();
        let alpn = broker.alpn_port();
        tokio::spawn(async move {
            for i in 0..MESSAGES {
                tokio::time::sleep(PACE * 2).await;
                let line = format!("POST /topics/cars/h/{i}?qos=1&retain=true HTTP/1.1");
                let (status, _) = https(
                    alpn,
                    Some(&device),
                    &device.ca_pem,
                    &[],
                    &line,
                    &[],
                    i.to_string().as_bytes(),
                )
                .await;
                if status != 200 {
                    return;
                }
                https_ok.lock().unwrap().push(i);
            }
        })
    };

    // Watch the stream: which publish got which packet id, which were acknowledged.
    let mut sent_order: Vec<String> = (0..MESSAGES)
        .flat_map(|i| {
            let mut v = vec![format!("cars/k/{i}")];
            if i % 10 == 0 {
                v.push("shadow".into());
            }
            v
        })
        .rev()
        .collect();
    let mut in_flight: BTreeMap<u16, String> = BTreeMap::new();
    let mut acked: BTreeSet<usize> = BTreeSet::new();
    let mut last_version = 0u64;
    let mut broker = Some(broker);
    loop {
        let event = match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(event)) => event,
            _ => break,
        };
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let what = sent_order.pop().unwrap();
                in_flight.insert(pkid, what);
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(what) = in_flight.remove(&ack.pkid)
                    && let Some(i) = what.strip_prefix("cars/k/")
                {
                    acked.insert(i.parse().unwrap());
                }
            }
            Event::Incoming(Packet::Publish(p)) => {
                let doc: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                last_version = last_version.max(doc["version"].as_u64().unwrap());
            }
            _ => {}
        }
        if acked.len() >= MESSAGES / 2
            && let Some(b) = broker.take()
        {
            b.kill_9(); // mid-stream: more publishes are in flight
        }
    }
    assert!(broker.is_none(), "the broker was killed mid-stream");
    assert!(
        acked.len() >= MESSAGES / 2 && acked.len() < MESSAGES,
        "killed mid-stream: {} acked",
        acked.len()
    );
    assert!(last_version > 0);
    https_task.await.unwrap();
    let https_ok = https_ok.lock().unwrap().clone();
    assert!(
        !https_ok.is_empty() && https_ok.len() < MESSAGES,
        "HTTPS publishes were cut off mid-stream: {}",
        https_ok.len()
    );

    let broker = BrokerProcess::start(&config_path);
    let port = broker.mqtts_port();

    // Every acknowledged message reaches the persistent subscriber.
    let (_sink, mut sink_events) = rumqttc(&devices[0], "sink", port, false);
    let mut delivered = BTreeSet::new();
    while !acked.is_subset(&delivered) {
        let p = wait_for(&mut sink_events, incoming_publish)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{e}: {} of {} acknowledged messages delivered",
                    delivered.len(),
                    acked.len()
                )
            });
        delivered.insert(
            std::str::from_utf8(&p.payload)
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
    }

    // The retained messages of the last acknowledged topics are there.
    let (checker, mut check_events) = rumqttc(&devices[1], "checker", port, true);
    wait_for(&mut check_events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    let mut expected: BTreeSet<String> = acked
        .iter()
        .rev()
        .take(30)
        .map(|i| format!("cars/k/{i}"))
        .collect();
    expected.extend(
        https_ok
            .iter()
            .rev()
            .take(20)
            .map(|i| format!("cars/h/{i}")),
    );
    for topic in &expected {
        checker.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    }
    let mut retained = BTreeSet::new();
    while retained.len() < expected.len() {
        let p = wait_for(&mut check_events, incoming_publish)
            .await
            .unwrap_or_else(|e| panic!("{e}: retained {retained:?} of {expected:?}"));
        assert!(p.retain);
        let (prefix, n) = p.topic.rsplit_once('/').unwrap();
        assert!(prefix == "cars/k" || prefix == "cars/h");
        assert_eq!(n, std::str::from_utf8(&p.payload).unwrap());
        retained.insert(p.topic.clone());
    }

    // The shadow is at least at the last version answered on /accepted.
    checker
        .subscribe(
            "$aws/things/crash-thing/shadow/get/accepted",
            QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    checker
        .publish(
            "$aws/things/crash-thing/shadow/get",
            QoS::AtLeastOnce,
            false,
            "",
        )
        .await
        .unwrap();
    let doc = wait_for(&mut check_events, |e| {
        incoming_publish(e).filter(|p| p.topic.ends_with("/get/accepted"))
    })
    .await
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&doc.payload).unwrap();
    assert!(
        doc["version"].as_u64().unwrap() >= last_version,
        "{doc} < {last_version}"
    );
    drop(broker);
}
