//! The state machine end to end, without I/O: a PUBLISH in, deliveries out, acknowledgements back.
//! Measures what the broker itself costs per message, under the AWS profile.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::codec::{
    Connect, Packet, PacketId, PubAck, Publish, QoS, QosPid, Subscribe, SubscribeFilters,
};
use iot_broker_core::profile::Profile;
use iot_broker_core::{Broker, ConnectionId, Output};

const BATCH: u64 = 64; // under AWS's 100 publishes/s per connection, one simulated second apart

fn setup(subscribers: usize, qos: QoS) -> (Broker, ConnectionId, Vec<ConnectionId>) {
    let mut broker = Broker::builder(Profile::aws_iot()).build(0);
    let connect = |broker: &mut Broker, id: String| {
        let conn = broker.open(TransportInfo::default(), 0);
        broker.handle_packet(
            conn,
            Packet::Connect(Connect {
                client_id: id.into(),
                clean_session: true,
                keep_alive: 0,
                will: None,
                username: None,
                password: None,
            }),
            0,
        );
        conn
    };
    let publisher = connect(&mut broker, "publisher".into());
    let subs: Vec<ConnectionId> = (0..subscribers)
        .map(|i| {
            let conn = connect(&mut broker, format!("sub{i}"));
            broker.handle_packet(
                conn,
                Packet::Subscribe(Subscribe {
                    packet_id: PacketId::new(1).unwrap(),
                    filters: SubscribeFilters::from_list(&[("cars/+/telemetry", qos)]).unwrap(),
                }),
                0,
            );
            conn
        })
        .collect();
    while broker.poll_output().is_some() {}
    (broker, publisher, subs)
}

/// Publish `BATCH` messages; acknowledge every QoS 1 delivery.
fn round(
    broker: &mut Broker,
    publisher: ConnectionId,
    qos: QoS,
    payload: &Bytes,
    t: &mut u64,
) -> usize {
    *t += 1000;
    let mut delivered = 0;
    for i in 0..BATCH {
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            q => QosPid::from_parts(q, PacketId::new(i as u16 + 1).unwrap()),
        };
        broker.handle_packet(
            publisher,
            Packet::Publish(Publish {
                dup: false,
                qos_pid,
                retain: false,
                topic: "cars/42/telemetry".into(),
                payload: payload.clone(),
            }),
            *t,
        );
        while let Some(out) = broker.poll_output() {
            if let Output::Send {
                conn,
                packet: Packet::Publish(p),
            } = out
            {
                delivered += 1;
                if let Some(pid) = p.packet_id() {
                    broker.handle_packet(conn, Packet::PubAck(PubAck::new(pid)), *t);
                }
            }
        }
    }
    delivered
}

fn bench(c: &mut Criterion) {
    let payload = Bytes::from(vec![b'x'; 256]);
    let mut group = c.benchmark_group("broker");
    for (name, subscribers, qos) in [
        ("1 to 1, QoS 0", 1, QoS::AtMostOnce),
        ("1 to 1, QoS 1 with PUBACKs", 1, QoS::AtLeastOnce),
        ("1 to 50, QoS 0", 50, QoS::AtMostOnce),
        ("1 to 50, QoS 1 with PUBACKs", 50, QoS::AtLeastOnce),
    ] {
        let (mut broker, publisher, _subs) = setup(subscribers, qos);
        let mut t = 0;
        assert_eq!(
            round(&mut broker, publisher, qos, &payload, &mut t),
            BATCH as usize * subscribers
        );
        group.throughput(Throughput::Elements(BATCH * subscribers as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(round(&mut broker, publisher, qos, &payload, &mut t)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
