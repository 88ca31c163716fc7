//! Output congestion: the program's per-connection output byte budget, as the broker honours it.
//! A congested connection gets no PUBLISH; its QoS 0 deliveries are dropped and counted, its QoS
//! 1/2 deliveries wait in the session queue (bounded by `max_queued`, overflow counted as
//! always) until the program reports room again. Acknowledgements (CONNACK, PUBACK, SUBACK,
//! PINGRESP, ...) are never held back.

use mqtt_codec::QoS;

use super::{Broker, slot};
use crate::auth::Authorizer;
use crate::connection::{ConnectionId, Phase};
use crate::persist::Persistence;
use crate::service::ReservedTopicService;
use crate::session::Session;

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    /// The program's output buffer for `conn` is over its budget. From now on the broker sends
    /// `conn` no PUBLISH: the QoS 0 deliveries queued for it, and any that come while it stays
    /// congested, are dropped and counted in
    /// [`Stats::dropped_congested`](crate::stats::Stats::dropped_congested); QoS 1/2 deliveries
    /// stay in its session queue, whose `max_queued` bound and eviction policy are unchanged (an
    /// overflow is counted in `dropped_queue_full` as always). Acknowledgements and other
    /// control packets still go out. The flag belongs to the connection's hold on its session:
    /// it ends with the connection, and a connection that has not completed CONNECT has nothing
    /// to hold (the call is ignored, as it is for an unknown connection or a repeated call).
    ///
    /// ```
    /// use iot_broker_core::{Broker, Output, auth::TransportInfo, profile::Profile};
    /// use iot_broker_core::codec::{Connect, Packet, PacketId, QoS, Subscribe, SubscribeFilters};
    /// use iot_broker_core::topic::TopicName;
    ///
    /// let mut broker = Broker::builder(Profile::standard()).build(0);
    /// let dashboard = broker.open(TransportInfo::default(), 0);
    /// broker.handle_packet(dashboard, Packet::Connect(Connect {
    ///     client_id: "dashboard".into(), clean_session: true, keep_alive: 60,
    ///     will: None, username: None, password: None,
    /// }), 0);
    /// broker.handle_packet(dashboard, Packet::Subscribe(Subscribe {
    ///     packet_id: PacketId::new(1).unwrap(),
    ///     filters: SubscribeFilters::from_list(&[("cars/#", QoS::AtLeastOnce)]).unwrap(),
    /// }), 0);
    /// while broker.poll_output().is_some() {}
    ///
    /// broker.output_congested(dashboard);
    /// let topic = TopicName::new("cars/1/speed", broker.profile()).unwrap();
    /// broker.publish(topic, "88".into(), QoS::AtLeastOnce, false, 1);
    /// assert!(broker.poll_output().is_none()); // held in the session queue
    ///
    /// broker.output_ready(dashboard, 2);
    /// assert!(matches!(broker.poll_output(), Some(Output::Send { packet: Packet::Publish(_), .. })));
    /// ```
    pub fn output_congested(&mut self, conn: ConnectionId) {
        let Some(session) = self.session_of_connection(conn) else {
            return;
        };
        if session.output_congested {
            return;
        }
        session.output_congested = true;
        // Queued QoS 0 messages are never stored, so there is nothing to delete.
        let before = session.queue.len();
        session.queue.retain(|q| q.message.qos != QoS::AtMostOnce);
        self.stats.dropped_congested += (before - session.queue.len()) as u64;
    }

    /// The program's output buffer for `conn` has room again: clear the congestion
    /// [`output_congested`](Self::output_congested) set and send what waits in the session
    /// queue, within the in-flight window and the publish rate as usual. Calling it for a
    /// connection that is not congested only moves its queue, if anything is waiting.
    pub fn output_ready(&mut self, conn: ConnectionId, now_ms: u64) {
        let Some(session) = self.session_of_connection(conn) else {
            return;
        };
        session.output_congested = false;
        if let Some(Phase::Live { session: key, .. }) =
            self.connections.get(&conn).map(|c| &c.phase)
        {
            let key = *key;
            self.pump(key, now_ms);
        }
    }

    /// The session `conn` is bound to, if it completed CONNECT and still holds it.
    fn session_of_connection(&mut self, conn: ConnectionId) -> Option<&mut Session> {
        let Phase::Live { session: key, .. } = self.connections.get(&conn)?.phase else {
            return None;
        };
        slot(&mut self.sessions, key).filter(|session| session.conn == Some(conn))
    }
}
