//! Random packet sequences from four clients against the broker state machine, under either
//! profile. Nothing panics; no packet goes to a closed connection; and no PUBLISH reaches a
//! client that never subscribed to a filter matching its topic (in its current session).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::codec::{
    Connect, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish, QoS, QosPid,
    SharedPacket, Subscribe, SubscribeFilters, Unsubscribe, UnsubscribeFilters, Will, decode_buf,
};
use iot_broker_core::persist::MemoryPersistence;
use iot_broker_core::profile::Profile;
use iot_broker_core::router::MultiLevelRule;
use iot_broker_core::{Broker, ConnectionId, Output};
use libfuzzer_sys::fuzz_target;

const CLIENTS: [&str; 4] = ["c0", "c1", "c2", "c3"];
const TOPICS: [&str; 8] = [
    "a",
    "a/b",
    "a/b/c",
    "b",
    "$aws/things/t/shadow/update",
    "$aws/events/presence/connected/c0",
    "$x/y",
    "a/",
];
const FILTERS: [&str; 10] = [
    "a",
    "a/#",
    "a/+",
    "+/b",
    "#",
    "$share/g/a/#",
    "$aws/events/#",
    "$aws/things/+/shadow/#",
    "$x/#",
    "+",
];

fn matches(filter: &str, topic: &str, rule: MultiLevelRule) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, inner)) => inner,
            None => return false,
        },
        None => filter,
    };
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    for (i, level) in f.iter().enumerate() {
        match *level {
            "#" => {
                return rule == MultiLevelRule::IncludesParent || t.len() > i;
            }
            "+" if i < t.len() => {}
            literal if t.get(i) == Some(&literal) => {}
            _ => return false,
        }
    }
    f.len() == t.len()
}

struct Harness {
    broker: Broker<iot_broker_core::auth::AllowAll, iot_broker_core::service::NoReservedServices, MemoryPersistence>,
    rule: MultiLevelRule,
    now: u64,
    conns: BTreeMap<usize, ConnectionId>,
    client_of: BTreeMap<ConnectionId, String>,
    closed: BTreeSet<ConnectionId>,
    /// Filters each client id subscribed to in its current session.
    subscribed: BTreeMap<String, BTreeSet<String>>,
}

impl Harness {
    fn send(&mut self, conn: ConnectionId, packet: SharedPacket) {
        if let Packet::Connect(c) = &packet {
            self.client_of.insert(conn, c.client_id.to_string());
        }
        if let Packet::Subscribe(s) = &packet {
            if let Some(client) = self.client_of.get(&conn) {
                let set = self.subscribed.entry(client.clone()).or_default();
                for (filter, _) in s.filters.iter() {
                    set.insert(filter.to_owned());
                }
            }
        }
        self.broker.handle_packet(conn, packet, self.now);
        self.check();
    }

    fn check(&mut self) {
        while let Some(out) = self.broker.poll_output() {
            match out {
                Output::Send { conn, packet } => {
                    assert!(!self.closed.contains(&conn), "sent to a closed connection");
                    let client = self.client_of.get(&conn).cloned().unwrap_or_default();
                    match packet {
                        Packet::ConnAck(ack) if !ack.session_present => {
                            self.subscribed.remove(&client);
                        }
                        Packet::Publish(p) => {
                            let filters = self.subscribed.get(&client);
                            let ok = filters.is_some_and(|fs| {
                                fs.iter().any(|f| matches(f, &p.topic, self.rule))
                            });
                            assert!(ok, "{client} got {} without a matching subscription", &*p.topic);
                        }
                        _ => {}
                    }
                }
                Output::Close { conn, .. } => {
                    assert!(self.closed.insert(conn), "closed twice");
                }
            }
        }
    }

    fn conn(&mut self, slot: usize) -> ConnectionId {
        if let Some(conn) = self.conns.get(&slot) {
            if !self.closed.contains(conn) {
                return *conn;
            }
        }
        let conn = self.broker.open(TransportInfo::default(), self.now);
        self.conns.insert(slot, conn);
        conn
    }
}

fn pid(b: u8) -> PacketId {
    PacketId::new(u16::from(b % 8) + 1).expect("non-zero")
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else { return };
    let profile = if first & 1 == 0 { Profile::aws_iot() } else { Profile::standard() };
    let limits = profile.limits.clone();
    let rule = profile.multi_level_rule;
    let mut h = Harness {
        broker: Broker::builder(profile).persistence(MemoryPersistence::default()).seed(7).build(0),
        rule,
        now: 0,
        conns: BTreeMap::new(),
        client_of: BTreeMap::new(),
        closed: BTreeSet::new(),
        subscribed: BTreeMap::new(),
    };
    let mut bytes = data.chunks(3);
    while let Some(op) = bytes.next() {
        let [a, b, c] = [op.first(), op.get(1), op.get(2)].map(|x| x.copied().unwrap_or(0));
        let slot = usize::from(a >> 4) % CLIENTS.len();
        let qos = QoS::from_u8(b % 3).unwrap_or(QoS::AtMostOnce);
        match a % 11 {
            0 => {
                let conn = h.conn(slot);
                let will = (b & 0x80 != 0).then(|| Will {
                    topic: TOPICS[usize::from(c) % TOPICS.len()].into(),
                    payload: Bytes::from_static(b"w"),
                    qos: QoS::from_u8(c % 2).unwrap_or(QoS::AtMostOnce),
                    retain: c & 0x40 != 0,
                });
                h.send(conn, Packet::Connect(Connect {
                    client_id: CLIENTS[slot].into(),
                    clean_session: b & 1 == 0,
                    keep_alive: u16::from(c % 4) * 10,
                    will,
                    username: None,
                    password: None,
                }));
            }
            1 => {
                let conn = h.conn(slot);
                let filter = FILTERS[usize::from(c) % FILTERS.len()];
                let Ok(filters) = SubscribeFilters::from_list(&[(filter, qos)]) else { continue };
                h.send(conn, Packet::Subscribe(Subscribe { packet_id: pid(b), filters }));
            }
            2 => {
                let conn = h.conn(slot);
                let filter = FILTERS[usize::from(c) % FILTERS.len()];
                let Ok(filters) = UnsubscribeFilters::from_list(&[filter]) else { continue };
                h.send(conn, Packet::Unsubscribe(Unsubscribe { packet_id: pid(b), filters }));
            }
            3 | 4 => {
                let conn = h.conn(slot);
                let qos_pid = match qos {
                    QoS::AtMostOnce => QosPid::AtMostOnce,
                    q => QosPid::from_parts(q, pid(c)),
                };
                h.send(conn, Packet::Publish(Publish {
                    dup: false,
                    qos_pid,
                    retain: b & 0x80 != 0,
                    topic: TOPICS[usize::from(c >> 3) % TOPICS.len()].into(),
                    payload: if b & 0x40 != 0 { Bytes::new() } else { Bytes::from_static(b"p") },
                }));
            }
            5 => {
                let conn = h.conn(slot);
                let packet = match b % 4 {
                    0 => Packet::PubAck(PubAck::new(pid(c))),
                    1 => Packet::PubRec(PubRec::new(pid(c))),
                    2 => Packet::PubRel(PubRel::new(pid(c))),
                    _ => Packet::PubComp(PubComp::new(pid(c))),
                };
                h.send(conn, packet);
            }
            6 => {
                let conn = h.conn(slot);
                h.send(conn, if b & 1 == 0 { Packet::Disconnect } else { Packet::PingReq });
            }
            7 => {
                let conn = h.conn(slot);
                h.broker.connection_lost(conn, h.now);
                h.check();
            }
            8 => {
                h.now += u64::from(b) * u64::from(c) * 100;
                h.broker.tick(h.now);
                h.check();
            }
            9 => {
                // Raw bytes: whatever decodes is fed in, a decode error closes the connection.
                let conn = h.conn(slot);
                let len = usize::from(b % 32);
                let raw: Vec<u8> = bytes.by_ref().take(len).flatten().copied().collect();
                let mut buf = BytesMut::from(&raw[..]);
                loop {
                    match decode_buf(&mut buf, &limits) {
                        Ok(Some(packet)) => h.send(conn, packet),
                        Ok(None) => break,
                        Err(e) => {
                            h.broker.handle_decode_error(conn, &e, h.now);
                            h.check();
                            break;
                        }
                    }
                }
            }
            _ => {
                h.broker.shutdown(h.now);
                h.check();
            }
        }
    }
});
