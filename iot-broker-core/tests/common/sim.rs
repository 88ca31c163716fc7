//! A test driver for the broker: plays clients' packets into it at a simulated time and sorts
//! what comes out into one inbox per connection.

use std::collections::BTreeMap;

use bytes::Bytes;
use iot_broker_core::auth::{AllowAll, Authorizer, TransportInfo};
use iot_broker_core::codec::{
    ConnAck, Connect, Packet, PacketId, PubAck, Publish, QoS, QosPid, SharedPacket, Subscribe,
    SubscribeFilters, SubscribeReturnCode, Unsubscribe, UnsubscribeFilters, Utf8Bytes, Will,
};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::persist::{MemoryPersistence, Persistence};
use iot_broker_core::profile::Profile;
use iot_broker_core::service::{NoReservedServices, ReservedTopicService};
use iot_broker_core::{Broker, ConnectionId, Output};

pub type OwnedPublish = Publish<Utf8Bytes, Bytes>;

pub const T0: u64 = 1_700_000_000_000;

pub struct Sim<A = AllowAll, R = NoReservedServices, P = MemoryPersistence> {
    pub broker: Broker<A, R, P>,
    pub now: u64,
    pub inbox: BTreeMap<ConnectionId, Vec<SharedPacket>>,
    pub closed: BTreeMap<ConnectionId, DisconnectReason>,
    next_pid: u16,
}

impl Sim {
    pub fn new(profile: Profile) -> Sim {
        Sim::with(
            Broker::builder(profile)
                .persistence(MemoryPersistence::default())
                .seed(1)
                .build(T0),
        )
    }
}

pub fn connect_packet(id: &str, clean: bool, keep_alive: u16) -> Connect<Utf8Bytes, Bytes> {
    Connect {
        client_id: id.into(),
        clean_session: clean,
        keep_alive,
        will: None,
        username: None,
        password: None,
    }
}

pub fn will(topic: &str, payload: &'static [u8], retain: bool) -> Will<Utf8Bytes, Bytes> {
    Will {
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos: QoS::AtLeastOnce,
        retain,
    }
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Sim<A, R, P> {
    pub fn with(broker: Broker<A, R, P>) -> Sim<A, R, P> {
        Sim {
            broker,
            now: T0,
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_pid: 0,
        }
    }

    /// Collect what the broker emitted into the inboxes (after a direct call on `broker`).
    pub fn drain(&mut self) {
        while let Some(out) = self.broker.poll_output() {
            match out {
                Output::Send { conn, packet } => {
                    assert!(
                        !self.closed.contains_key(&conn),
                        "packet {packet:?} sent to closed connection {conn:?}"
                    );
                    self.inbox.entry(conn).or_default().push(packet)
                }
                Output::Close { conn, reason } => {
                    assert!(self.closed.insert(conn, reason).is_none(), "closed twice");
                }
            }
        }
    }

    pub fn open(&mut self) -> ConnectionId {
        self.open_as(TransportInfo::default())
    }

    pub fn open_as(&mut self, transport: TransportInfo) -> ConnectionId {
        self.broker.open(transport, self.now)
    }

    pub fn send(&mut self, conn: ConnectionId, packet: SharedPacket) {
        self.broker.handle_packet(conn, packet, self.now);
        self.drain();
    }

    /// Open a connection and CONNECT; the CONNACK (if any) is taken from the inbox.
    pub fn connect_with(
        &mut self,
        transport: TransportInfo,
        connect: Connect<Utf8Bytes, Bytes>,
    ) -> (ConnectionId, Option<ConnAck>) {
        let conn = self.open_as(transport);
        self.send(conn, Packet::Connect(connect));
        let inbox = self.inbox.entry(conn).or_default();
        let at = inbox.iter().position(|p| matches!(p, Packet::ConnAck(_)));
        let ack = match at.map(|at| inbox.remove(at)) {
            Some(Packet::ConnAck(ack)) => Some(ack),
            _ => None,
        };
        (conn, ack)
    }

    pub fn connect(&mut self, id: &str, clean: bool) -> (ConnectionId, ConnAck) {
        let (conn, ack) =
            self.connect_with(TransportInfo::default(), connect_packet(id, clean, 60));
        (conn, ack.expect("CONNACK"))
    }

    pub fn pid(&mut self) -> PacketId {
        self.next_pid = self.next_pid % 60_000 + 1;
        PacketId::new(self.next_pid).unwrap()
    }

    /// SUBSCRIBE and return the SUBACK codes (None if no SUBACK came).
    pub fn subscribe(
        &mut self,
        conn: ConnectionId,
        filters: &[(&str, QoS)],
    ) -> Option<Vec<SubscribeReturnCode>> {
        let packet_id = self.pid();
        self.send(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id,
                filters: SubscribeFilters::from_list(filters).unwrap(),
            }),
        );
        let inbox = self.inbox.entry(conn).or_default();
        let at = inbox
            .iter()
            .position(|p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id))?;
        let Packet::SubAck(ack) = inbox.remove(at) else {
            unreachable!()
        };
        Some(ack.return_codes.iter().collect())
    }

    pub fn unsubscribe(&mut self, conn: ConnectionId, filters: &[&str]) {
        let packet_id = self.pid();
        self.send(
            conn,
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters: UnsubscribeFilters::from_list(filters).unwrap(),
            }),
        );
        let inbox = self.inbox.entry(conn).or_default();
        let at = inbox
            .iter()
            .position(|p| matches!(p, Packet::UnsubAck(a) if a.packet_id == packet_id))
            .expect("UNSUBACK");
        inbox.remove(at);
    }

    /// PUBLISH from a client; returns the packet id used (QoS 1/2).
    pub fn publish(
        &mut self,
        conn: ConnectionId,
        topic: &str,
        payload: &str,
        qos: QoS,
        retain: bool,
    ) -> Option<PacketId> {
        let pid = (qos != QoS::AtMostOnce).then(|| self.pid());
        let qos_pid = match pid {
            None => QosPid::AtMostOnce,
            Some(pid) => QosPid::from_parts(qos, pid),
        };
        self.send(
            conn,
            Packet::Publish(Publish {
                dup: false,
                qos_pid,
                retain,
                topic: topic.into(),
                payload: Bytes::copy_from_slice(payload.as_bytes()),
            }),
        );
        pid
    }

    pub fn puback(&mut self, conn: ConnectionId, pid: PacketId) {
        self.send(conn, Packet::PubAck(PubAck::new(pid)));
    }

    /// Everything sent to `conn` since the last take.
    pub fn take(&mut self, conn: ConnectionId) -> Vec<SharedPacket> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// The PUBLISH packets sent to `conn` since the last take (other packets are discarded).
    pub fn publishes(&mut self, conn: ConnectionId) -> Vec<OwnedPublish> {
        self.take(conn)
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// Topic and payload of each PUBLISH to `conn`.
    pub fn received(&mut self, conn: ConnectionId) -> Vec<(String, String)> {
        self.publishes(conn)
            .into_iter()
            .map(|p| {
                (
                    p.topic.to_string(),
                    String::from_utf8(p.payload.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    pub fn closed(&self, conn: ConnectionId) -> Option<DisconnectReason> {
        self.closed.get(&conn).copied()
    }

    /// Move the clock on by `ms` and tick.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.broker.tick(self.now);
        self.drain();
    }

    pub fn disconnect(&mut self, conn: ConnectionId) {
        self.send(conn, Packet::Disconnect);
    }

    pub fn drop_connection(&mut self, conn: ConnectionId) {
        self.broker.connection_lost(conn, self.now);
        self.drain();
    }
}
