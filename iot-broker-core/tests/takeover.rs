//! Client-id takeover with an authorizer that keeps state per connection: whatever order
//! connections with one client id open, take over, drop and disconnect in, the connection that
//! is live keeps its authorization, and nothing is kept for a closed one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::sim::{Sim, T0, connect_packet};
use iot_broker_core::auth::{Authorizer, Client, ConnectDenied, ConnectRequest, TransportInfo};
use iot_broker_core::codec::{ConnectReturnCode, Packet, QoS, SubscribeReturnCode};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::persist::MemoryPersistence;
use iot_broker_core::profile::Profile;
use iot_broker_core::{Broker, ConnectionId};
use proptest::prelude::*;

/// Admits every CONNECT and remembers it by connection, as a policy authorizer does; refuses
/// (and counts) any question about a connection it holds nothing for.
#[derive(Debug, Default)]
struct PerConnection {
    admitted: BTreeMap<ConnectionId, String>,
    asked_without_state: u32,
}

impl PerConnection {
    fn knows(&mut self, client: &Client<'_>) -> bool {
        let known = self.admitted.get(&client.conn).map(String::as_str) == Some(client.client_id);
        if !known {
            self.asked_without_state += 1;
        }
        known
    }
}

impl Authorizer for PerConnection {
    fn connect(&mut self, request: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        self.admitted
            .insert(request.client.conn, request.client.client_id.to_owned());
        Ok(())
    }
    fn publish(&mut self, client: &Client<'_>, _: &str, _: bool) -> bool {
        self.knows(client)
    }
    fn subscribe(&mut self, client: &Client<'_>, _: &str) -> bool {
        self.knows(client)
    }
    fn receive(&mut self, client: &Client<'_>, _: &str) -> bool {
        self.knows(client)
    }
    fn forget(&mut self, conn: ConnectionId) {
        self.admitted.remove(&conn);
    }
}

fn sim(profile: Profile) -> Sim<PerConnection> {
    Sim::with(
        Broker::builder(profile)
            .authorizer(PerConnection::default())
            .persistence(MemoryPersistence::default())
            .seed(7)
            .build(T0),
    )
}

fn profiles() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

#[test]
fn the_new_connection_keeps_its_authorization_after_a_takeover() {
    for profile in profiles() {
        for clean in [true, false] {
            let mut sim = sim(profile.clone());
            let (publisher, _) = sim.connect("publisher", true);
            let (old, _) = sim.connect("car-1", clean);
            assert_eq!(
                sim.subscribe(old, &[("cars/car-1/cmd", QoS::AtLeastOnce)]),
                Some(vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)])
            );
            // A QoS 1 delivery the old connection never acknowledges.
            sim.publish(
                publisher,
                "cars/car-1/cmd",
                "unlock",
                QoS::AtLeastOnce,
                false,
            );
            assert_eq!(sim.received(old).len(), 1);

            let (new, ack) = sim.connect("car-1", clean);
            assert_eq!(ack.code, ConnectReturnCode::Accepted);
            assert_eq!(sim.closed(old), Some(DisconnectReason::DuplicateClientId));
            assert_eq!(ack.session_present, !clean, "{profile:?}");
            if !clean {
                // The persistent session resumes: the unacknowledged delivery comes again.
                assert_eq!(
                    sim.received(new),
                    vec![("cars/car-1/cmd".to_owned(), "unlock".to_owned())]
                );
            }
            // The new connection publishes, subscribes and receives.
            sim.publish(new, "cars/car-1/state", "locked", QoS::AtLeastOnce, false);
            assert!(
                sim.take(new).iter().any(|p| matches!(p, Packet::PubAck(_))),
                "{profile:?} clean={clean}: no PUBACK after takeover"
            );
            assert_eq!(
                sim.subscribe(new, &[("cars/car-1/cmd", QoS::AtLeastOnce)]),
                Some(vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)])
            );
            sim.publish(
                publisher,
                "cars/car-1/cmd",
                "start",
                QoS::AtLeastOnce,
                false,
            );
            let got = sim.received(new);
            assert!(
                got.contains(&("cars/car-1/cmd".to_owned(), "start".to_owned())),
                "{profile:?} clean={clean}: {got:?}"
            );
            assert_eq!(sim.closed(new), None);
            let auth = sim.broker.authorizer_mut();
            assert_eq!(auth.asked_without_state, 0);
            assert_eq!(
                auth.admitted.keys().copied().collect::<BTreeSet<_>>(),
                BTreeSet::from([publisher, new])
            );
        }
    }
}

#[test]
fn a_connect_refused_after_the_authorizer_admitted_it_leaves_nothing_behind() {
    // The will check comes after `connect`: a forbidden will refuses the CONNECT, and the
    // authorizer must still be told to forget that connection.
    let mut sim = sim(Profile::aws_iot());
    let mut connect = connect_packet("car-1", true, 60);
    connect.will = Some(common::sim::will(
        "$aws/events/presence/connected/x",
        b"",
        false,
    ));
    let (conn, ack) = sim.connect_with(TransportInfo::default(), connect);
    assert!(ack.is_none());
    assert!(sim.closed(conn).is_some());
    assert!(sim.broker.authorizer_mut().admitted.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    /// A new connection CONNECTs as `car`, with this clean-session flag.
    Connect(bool),
    /// The n-th connection opened so far (modulo) publishes at QoS 1.
    Publish(usize),
    /// The n-th connection subscribes.
    Subscribe(usize),
    /// The n-th connection's transport is lost.
    Lose(usize),
    /// The n-th connection sends DISCONNECT.
    Disconnect(usize),
    /// Time passes (keep-alive, session expiry).
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Connect),
        3 => (0usize..8).prop_map(Op::Publish),
        2 => (0usize..8).prop_map(Op::Subscribe),
        1 => (0usize..8).prop_map(Op::Lose),
        1 => (0usize..8).prop_map(Op::Disconnect),
        1 => (1u64..120_000).prop_map(Op::Wait),
    ]
}

fn run(profile: Profile, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut sim = sim(profile);
    let mut opened: Vec<ConnectionId> = Vec::new();
    for op in ops {
        let pick = |n: usize| opened.get(n % opened.len().max(1)).copied();
        match *op {
            Op::Connect(clean) => {
                let (conn, ack) =
                    sim.connect_with(TransportInfo::default(), connect_packet("car", clean, 60));
                prop_assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Accepted));
                opened.push(conn);
            }
            Op::Publish(n) => {
                if let Some(conn) = pick(n) {
                    sim.publish(conn, "cars/car/state", "x", QoS::AtLeastOnce, false);
                }
            }
            Op::Subscribe(n) => {
                if let Some(conn) = pick(n) {
                    let pid = sim.pid();
                    sim.send(
                        conn,
                        Packet::Subscribe(iot_broker_core::codec::Subscribe {
                            packet_id: pid,
                            filters: iot_broker_core::codec::SubscribeFilters::from_list(&[(
                                "cars/car/state",
                                QoS::AtLeastOnce,
                            )])
                            .unwrap(),
                        }),
                    );
                }
            }
            Op::Lose(n) => {
                if let Some(conn) = pick(n) {
                    sim.drop_connection(conn);
                }
            }
            Op::Disconnect(n) => {
                if let Some(conn) = pick(n) {
                    sim.disconnect(conn);
                }
            }
            Op::Wait(ms) => sim.advance(ms),
        }
        // The newest connection is the only live one unless it was closed; no connection is
        // ever refused for want of authorization state, and closed ones leave nothing behind.
        let live: BTreeSet<ConnectionId> = opened
            .iter()
            .copied()
            .filter(|c| sim.closed(*c).is_none())
            .collect();
        prop_assert!(
            live.len() <= 1,
            "two live connections with one client id: {live:?}"
        );
        for (conn, reason) in &sim.closed {
            prop_assert!(
                *reason != DisconnectReason::AuthError,
                "{conn:?} closed with AUTH_ERROR"
            );
        }
        let auth = sim.broker.authorizer_mut();
        prop_assert_eq!(auth.asked_without_state, 0);
        prop_assert_eq!(auth.admitted.keys().copied().collect::<BTreeSet<_>>(), live);
    }
    Ok(())
}

proptest! {
    #[test]
    fn takeover_orderings_never_cost_the_live_connection_its_authorization_aws(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        run(Profile::aws_iot(), &ops)?;
    }

    #[test]
    fn takeover_orderings_never_cost_the_live_connection_its_authorization_standard(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        run(Profile::standard(), &ops)?;
    }
}
