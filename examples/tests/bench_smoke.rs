//! The load generator against the real broker program on its plain loopback port: a short QoS 1
//! pairs run and a small connect burst. Checks correctness and the JSON, never a time or a rate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use iot_examples::bench::options::{BenchOptions, Scenario};

/// The broker program with limits raised as the comparison script raises them.
fn start_broker(scratch: &Scratch) -> BrokerProcess {
    let path = scratch.0.join("broker.toml");
    let text = format!(
        "data_dir = {:?}\n[listeners]\nmqtts_port = 0\nalpn_port = 0\nplain_mqtt = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n[limits]\nmax_publishes_per_second = 0\nmax_subscriptions_per_connection = 0\n",
        scratch.0.join("data")
    );
    std::fs::write(&path, text).unwrap();
    BrokerProcess::start(&path)
}

fn options(broker: &BrokerProcess, scenario: Scenario, json: &std::path::Path) -> BenchOptions {
    let mut options = BenchOptions::new(
        scenario,
        "127.0.0.1",
        ready_port(&broker.ready, "plain_mqtt"),
    );
    options.broker_pid = Some(broker.child.id());
    options.json = Some(json.to_owned());
    options.label = "ours".into();
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos1_pairs_run_loses_duplicates_and_reorders_nothing() {
    let scratch = Scratch::new("bench-pairs");
    let broker = start_broker(&scratch);
    let json = scratch.0.join("pairs.json");
    let mut options = options(&broker, Scenario::Pairs, &json);
    options.clients = 4;
    options.qos = 1;
    options.duration = Duration::from_secs(1);
    options.warmup = Duration::from_millis(200);
    let report = iot_examples::bench::run(&options).await.unwrap();

    assert_eq!(report.connections.connected, 8, "{:?}", report.connections);
    assert!(
        report.connections.errors.is_empty(),
        "{:?}",
        report.connections
    );
    let messages = report.messages.unwrap();
    assert!(messages.sent > 0 && messages.received > 0, "{messages:?}");
    assert_eq!(
        (
            messages.lost,
            messages.duplicated,
            messages.reordered,
            messages.foreign
        ),
        (0, 0, 0, 0),
        "{messages:?}"
    );
    assert_eq!(messages.received, messages.acked, "{messages:?}");
    assert!(report.latency.count > 0);

    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written["scenario"], "pairs");
    assert_eq!(written["messages"]["lost"], 0);
    assert!(written["broker"]["rss_peak_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_burst_of_50_all_connect() {
    let scratch = Scratch::new("bench-burst");
    let broker = start_broker(&scratch);
    let json = scratch.0.join("burst.json");
    let mut options = options(&broker, Scenario::ConnectBurst, &json);
    options.clients = 50;
    let report = iot_examples::bench::run(&options).await.unwrap();

    assert_eq!(
        report.burst.unwrap().connected,
        50,
        "{:?}",
        report.connections
    );
    assert_eq!(report.latency.count, 50);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written["scenario"], "connect-burst");
    assert_eq!(written["burst"]["connected"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_is_reported_not_waited_on() {
    // Bind and drop: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = BenchOptions::new(Scenario::Pairs, "127.0.0.1", port);
    options.clients = 2;
    let report = iot_examples::bench::run(&options).await.unwrap();
    assert_eq!(report.connections.connected, 0);
    assert_eq!(report.connections.errors.get("connect"), Some(&4));
    assert_eq!(report.messages.unwrap().sent, 0);
}
