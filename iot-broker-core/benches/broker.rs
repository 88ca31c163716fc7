//! The state machine end to end, without I/O: a PUBLISH in, deliveries out, acknowledgements back.
//! Measures what the broker itself costs per message, under the AWS profile: with an authorizer
//! that allows everything for free, and with a policy-like one that builds the resource ARN and
//! matches it against a few statements per question, as the broker program's does.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;

use iot_broker_core::auth::{AllowAll, Authorizer, Client, TransportInfo};
use iot_broker_core::codec::{
    Connect, Packet, PacketId, PubAck, Publish, QoS, QosPid, Subscribe, SubscribeFilters,
};
use iot_broker_core::profile::Profile;
use iot_broker_core::{Broker, ConnectionId, Output};

const BATCH: u64 = 64; // under AWS's 100 publishes/s per connection, one simulated second apart

/// Allows a topic when its ARN matches one of a few `Resource` patterns (trailing `*`), found
/// through per-connection state: the shape and rough cost of an IoT policy evaluation.
#[derive(Debug)]
struct PolicyLike {
    resources: Vec<String>,
    admitted: HashMap<ConnectionId, String>,
}

impl PolicyLike {
    fn new() -> Self {
        let arn = "arn:aws:iot:eu-west-1:123456789012";
        PolicyLike {
            resources: vec![
                format!("{arn}:topic/$aws/things/*"),
                format!("{arn}:topic/fleet/*"),
                format!("{arn}:topic/cars/*"),
            ],
            admitted: HashMap::new(),
        }
    }

    fn allows(&self, client: &Client<'_>, topic: &str) -> bool {
        let Some(_thing) = self.admitted.get(&client.conn) else {
            return false;
        };
        let resource = format!("arn:aws:iot:eu-west-1:123456789012:topic/{topic}");
        self.resources
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => resource.starts_with(prefix),
                None => resource == *pattern,
            })
    }
}

impl Authorizer for PolicyLike {
    fn connect(
        &mut self,
        request: &iot_broker_core::auth::ConnectRequest<'_>,
    ) -> Result<(), iot_broker_core::auth::ConnectDenied> {
        let client = request.client;
        self.admitted
            .insert(client.conn, client.client_id.to_owned());
        Ok(())
    }
    fn publish(&mut self, client: &Client<'_>, topic: &str, _retain: bool) -> bool {
        self.allows(client, topic)
    }
    fn receive(&mut self, client: &Client<'_>, topic: &str) -> bool {
        self.allows(client, topic)
    }
    fn forget(&mut self, conn: ConnectionId) {
        self.admitted.remove(&conn);
    }
}

fn setup<A: Authorizer>(
    authorizer: A,
    subscribers: usize,
    qos: QoS,
) -> (Broker<A>, ConnectionId, Vec<ConnectionId>) {
    let mut broker = Broker::builder(Profile::aws_iot())
        .authorizer(authorizer)
        .build(0);
    let connect = |broker: &mut Broker<A>, id: String| {
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
fn round<A: Authorizer>(
    broker: &mut Broker<A>,
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
        let (mut broker, publisher, _subs) = setup(AllowAll, subscribers, qos);
        measure(
            &mut group,
            name,
            &mut broker,
            publisher,
            subscribers,
            qos,
            &payload,
        );
    }
    for (name, subscribers, qos) in [
        (
            "policy-like authorizer, 1 to 50, QoS 0",
            50,
            QoS::AtMostOnce,
        ),
        (
            "policy-like authorizer, 1 to 50, QoS 1 with PUBACKs",
            50,
            QoS::AtLeastOnce,
        ),
    ] {
        let (mut broker, publisher, _subs) = setup(PolicyLike::new(), subscribers, qos);
        measure(
            &mut group,
            name,
            &mut broker,
            publisher,
            subscribers,
            qos,
            &payload,
        );
    }
    group.finish();
}

fn measure<A: Authorizer>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    broker: &mut Broker<A>,
    publisher: ConnectionId,
    subscribers: usize,
    qos: QoS,
    payload: &Bytes,
) {
    let mut t = 0;
    assert_eq!(
        round(broker, publisher, qos, payload, &mut t),
        BATCH as usize * subscribers
    );
    group.throughput(Throughput::Elements(BATCH * subscribers as u64));
    group.bench_function(name, |b| {
        b.iter(|| black_box(round(broker, publisher, qos, payload, &mut t)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
