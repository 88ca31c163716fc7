//! Overload through the real broker program: a subscriber that never reads costs only its output
//! budget (QoS 0 beyond it dropped and counted in `/metrics`, broker memory bounded, others
//! served), and a connection whose socket breaks while the broker is writing to it is released at
//! once (its will fires) rather than kept until its keep-alive runs out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use iot_broker_core::codec::{
    Connect, Limits, Packet, PacketId, Publish, QoS, QosPid, SharedPacket, Subscribe,
    SubscribeFilters, Will, decode_buf,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Each connection's output budget in these tests.
const BUDGET: usize = 256 * 1024;
const PAYLOAD: usize = 64 * 1024;
/// What the flood sends: 128 MiB, far over every budget.
const FLOOD: usize = 2048;

/// A minimal MQTT 3.1.1 client over our codec.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(addr: SocketAddr, client_id: &str, will: Option<&str>, small: bool) -> Raw {
        let socket = TcpSocket::new_v4().unwrap();
        if small {
            // Little room in the kernel, so the broker's own budget is what fills.
            socket.set_recv_buffer_size(4096).unwrap();
        }
        let stream = socket.connect(addr).await.unwrap();
        let mut raw = Raw {
            stream,
            buf: BytesMut::new(),
        };
        raw.send(Packet::Connect(Connect {
            client_id: client_id.into(),
            clean_session: true,
            keep_alive: 600,
            will: will.map(|topic| Will {
                topic: topic.into(),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtLeastOnce,
                retain: false,
            }),
            username: None,
            password: None,
        }))
        .await;
        assert!(matches!(raw.next().await, Packet::ConnAck(_)));
        raw
    }

    async fn send(&mut self, packet: SharedPacket) {
        let mut out = BytesMut::new();
        packet.encode(&mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    async fn next(&mut self) -> SharedPacket {
        loop {
            if let Some(packet) = decode_buf(&mut self.buf, &Limits::default()).unwrap() {
                return packet;
            }
            let n =
                tokio::time::timeout(Duration::from_secs(30), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("the broker answers")
                    .unwrap();
            assert_ne!(n, 0, "the broker closed the connection");
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).unwrap(),
            filters: SubscribeFilters::from_list(&[(filter, qos)]).unwrap(),
        }))
        .await;
        assert!(matches!(self.next().await, Packet::SubAck(_)));
    }

    /// Publishes the flood at QoS 0, then one QoS 1 message whose PUBACK says the broker has
    /// taken everything before it.
    async fn flood(&mut self, topic: &str) {
        let payload = Bytes::from(vec![b'x'; PAYLOAD]);
        for _ in 0..FLOOD {
            self.send(Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: topic.into(),
                payload: payload.clone(),
            }))
            .await;
        }
        self.send(Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(PacketId::new(7).unwrap()),
            retain: false,
            topic: "load/done".into(),
            payload: Bytes::from_static(b"done"),
        }))
        .await;
        loop {
            if matches!(self.next().await, Packet::PubAck(_)) {
                return;
            }
        }
    }
}

fn start_broker(scratch: &Scratch) -> BrokerProcess {
    start_broker_with(scratch, "")
}

/// A broker with `listeners` (TOML lines) added to its `[listeners]` table.
fn start_broker_with(scratch: &Scratch, listeners: &str) -> BrokerProcess {
    let path = scratch.0.join("broker.toml");
    let text = format!(
        "data_dir = {:?}\n[listeners]\nmqtts_port = 0\nalpn_port = 0\nplain_mqtt = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n{listeners}\n[limits]\nmax_publishes_per_second = 0\nmax_payload_bytes = {PAYLOAD}\noutput_budget_bytes = {BUDGET}\n",
        scratch.0.join("data")
    );
    std::fs::write(&path, text).unwrap();
    BrokerProcess::start(&path)
}

fn addr(broker: &BrokerProcess, field: &str) -> SocketAddr {
    broker.ready[field].as_str().unwrap().parse().unwrap()
}

/// The broker's resident memory in KiB.
fn rss_kib(broker: &BrokerProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_costs_only_its_budget() {
    let scratch = Scratch::new("overload-stalled");
    let broker = start_broker(&scratch);
    let mqtt = addr(&broker, "plain_mqtt");

    // A subscriber that stops reading after its SUBACK.
    let mut stalled = Raw::connect(mqtt, "stalled", None, true).await;
    stalled.subscribe("load/#", QoS::AtMostOnce).await;
    // A subscriber that reads everything it is sent.
    let mut healthy = Raw::connect(mqtt, "healthy", None, false).await;
    healthy.subscribe("load/#", QoS::AtMostOnce).await;
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        loop {
            match healthy.next().await {
                Packet::Publish(p) if p.topic.as_str() == "load/done" => return received,
                Packet::Publish(_) => received += 1,
                _ => {}
            }
        }
    });
    let before = rss_kib(&broker);

    let mut publisher = Raw::connect(mqtt, "publisher", None, false).await;
    publisher.flood("load/x").await;
    let received = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the healthy subscriber gets to the end")
        .unwrap();
    let grown_kib = rss_kib(&broker).saturating_sub(before);

    assert!(received > 0, "the healthy subscriber was served");
    // The flood was 128 MiB; the stalled subscriber may hold 256 KiB of it. What the allocator
    // keeps around is most of the margin.
    assert!(
        grown_kib < 48 * 1024,
        "broker memory grew by {grown_kib} KiB for a subscriber that never reads"
    );
    let text = metrics(addr(&broker, "metrics")).await;
    let dropped = counter(&text, "aws_iot_dropped_output_budget_total");
    assert!(
        dropped >= (FLOOD as u64) / 2,
        "the messages the stalled subscriber could not take are counted ({dropped})"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_while_the_broker_writes_is_released_at_once() {
    let scratch = Scratch::new("overload-reset");
    let broker = start_broker(&scratch);
    let mqtt = addr(&broker, "plain_mqtt");

    let mut watcher = Raw::connect(mqtt, "watcher", None, false).await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let mut victim = Raw::connect(mqtt, "victim", Some("wills/victim"), true).await;
    victim.subscribe("load/#", QoS::AtMostOnce).await;
    let mut publisher = Raw::connect(mqtt, "publisher", None, false).await;
    // The broker's writer for the victim is now blocked on a full socket.
    publisher.flood("load/x").await;

    // The victim's socket is reset (RST), as when a device loses power mid-transfer behind a NAT
    // that answers for it. Its keep-alive is 600 s: only the failed write or read can tell.
    victim.stream.set_zero_linger().unwrap();
    drop(victim);

    let will = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Packet::Publish(p) = watcher.next().await {
                return p;
            }
        }
    })
    .await
    .expect("the victim's will fires when its connection breaks");
    assert_eq!(will.topic.as_str(), "wills/victim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_at_max_connections_refuses_cleanly_and_counts() {
    let scratch = Scratch::new("overload-cap");
    let broker = start_broker_with(&scratch, "max_connections = 2");
    let mqtt = addr(&broker, "plain_mqtt");
    let first = Raw::connect(mqtt, "first", None, false).await;
    let _second = Raw::connect(mqtt, "second", None, false).await;

    // The third is closed as soon as it is accepted.
    let mut third = TcpStream::connect(mqtt).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), third.read(&mut byte))
        .await
        .expect("the broker closes it");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not served: {read:?}"
    );
    let text = metrics(addr(&broker, "metrics")).await;
    assert_eq!(
        counter(
            &text,
            "aws_iot_connections_over_cap_total{listener=\"plain_mqtt\"}"
        ),
        1
    );

    // A place freed is a place taken.
    drop(first);
    let mut retry = 0;
    loop {
        retry += 1;
        let socket = TcpSocket::new_v4().unwrap();
        let mut stream = socket.connect(mqtt).await.unwrap();
        let mut out = BytesMut::new();
        Packet::<&str, &[u8]>::Connect(Connect {
            client_id: "third",
            clean_session: true,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
        })
        .encode(&mut out)
        .unwrap();
        stream.write_all(&out).await.unwrap();
        let mut reply = [0u8; 4];
        if stream.read_exact(&mut reply).await.is_ok() {
            assert_eq!(reply[0], 0x20, "CONNACK");
            break;
        }
        assert!(
            retry < 50,
            "the freed place was never given to a new client"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_for_a_stalled_subscriber_waits_in_its_session_and_arrives_in_order() {
    const MESSAGES: u32 = 300;
    let scratch = Scratch::new("overload-qos1");
    let broker = start_broker(&scratch);
    let mqtt = addr(&broker, "plain_mqtt");
    let mut stalled = Raw::connect(mqtt, "stalled-qos1", None, true).await;
    stalled.subscribe("orders/#", QoS::AtLeastOnce).await;

    // 300 x 64 KiB = 19 MiB, far over the subscriber's 256 KiB budget; each one acknowledged to
    // the publisher while the subscriber reads nothing.
    let mut publisher = Raw::connect(mqtt, "orders-publisher", None, false).await;
    for seq in 1..=MESSAGES {
        let mut payload = vec![0u8; PAYLOAD];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        publisher
            .send(Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtLeastOnce(PacketId::new(seq as u16).unwrap()),
                retain: false,
                topic: "orders/1".into(),
                payload: Bytes::from(payload),
            }))
            .await;
        assert!(matches!(publisher.next().await, Packet::PubAck(_)));
    }

    // The subscriber wakes up and gets every one, in order, acknowledging as it goes.
    let mut expected = 1u32;
    while expected <= MESSAGES {
        match stalled.next().await {
            Packet::Publish(p) => {
                let seq = u32::from_be_bytes(p.payload[..4].try_into().unwrap());
                assert_eq!(seq, expected, "in order, none lost");
                expected += 1;
                let pid = p.qos_pid.packet_id().unwrap();
                stalled
                    .send(Packet::PubAck(iot_broker_core::codec::PubAck::new(pid)))
                    .await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let text = metrics(addr(&broker, "metrics")).await;
    assert_eq!(counter(&text, "aws_iot_dropped_queue_full_total"), 0);
}
