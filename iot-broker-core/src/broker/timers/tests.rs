//! The timers against a scan: 10,000 idle connections cost `tick` nothing until due, and for
//! random conversations `poll_timeout` is never later than what a scan of every connection,
//! session and presence record would act on, and nothing a scan would act on is left overdue.

use std::collections::{BTreeMap, VecDeque};

use mqtt_codec::{
    Connect, Packet, PacketId, PubAck, Publish, QoS, QosPid, Subscribe, SubscribeFilters,
};
use proptest::prelude::*;

use super::super::PRESENCE_RESET_MS;
use super::next_second;
use crate::auth::TransportInfo;
use crate::connection::{ConnectionId, Output, Phase};
use crate::profile::{KeepAlivePolicy, Profile};
use crate::{Broker, persist::MemoryPersistence};

/// A broker with `n` live connections (keep-alive 60 s, standard profile) opened at 0.
fn idle(n: usize) -> (Broker, Vec<ConnectionId>) {
    let mut broker = Broker::builder(Profile::standard()).build(0);
    let conns = (0..n)
        .map(|i| {
            let conn = broker.open(TransportInfo::default(), 0);
            broker.handle_packet(
                conn,
                Packet::Connect(Connect {
                    client_id: format!("car{i}").into(),
                    clean_session: true,
                    keep_alive: 60,
                    will: None,
                    username: None,
                    password: None,
                }),
                0,
            );
            conn
        })
        .collect();
    while broker.poll_output().is_some() {}
    (broker, conns)
}

#[test]
fn ten_thousand_idle_connections_cost_tick_nothing_until_due() {
    let (mut broker, conns) = idle(10_000);
    assert_eq!(broker.timers.len(), 10_000, "one entry per connection");
    assert_eq!(broker.poll_timeout(), Some(90_000));
    // A second apart for the whole keep-alive period: nothing is due, nothing is examined.
    for second in 1..90 {
        broker.tick(second * 1000);
    }
    assert_eq!(broker.timers.taken(), 0);
    // Each sends a PINGREQ at 60 s; that moves no timer (keep-alive is re-armed lazily).
    for &conn in &conns {
        broker.handle_packet(conn, Packet::PingReq, 60_000);
    }
    assert_eq!(broker.timers.len(), 10_000);
    while broker.poll_output().is_some() {}
    // At 90 s every connection's entry is due once, and each is armed again at 150 s.
    broker.tick(90_000);
    assert_eq!(broker.timers.taken(), 10_000);
    assert_eq!(broker.connection_count(), 10_000);
    assert_eq!(broker.poll_timeout(), Some(150_000));
    // One goes silent early: only its entry is due at its own deadline, work stays O(due).
    for &conn in conns.iter().skip(1) {
        broker.handle_packet(conn, Packet::PingReq, 120_000);
    }
    broker.tick(150_000);
    assert_eq!(broker.timers.taken(), 20_000);
    assert_eq!(broker.connection_count(), 9_999);
    for second in 151..209 {
        broker.tick(second * 1000);
    }
    assert_eq!(broker.timers.taken(), 20_000, "nothing due before 210 s");
}

type Memory = Broker<crate::auth::AllowAll, crate::service::NoReservedServices, MemoryPersistence>;

/// The earliest time the old once-a-second scan would have found something to do in
/// `broker`'s state at `now_ms`, by looking at every connection, session and presence record.
fn scan_due(broker: &Memory, now_ms: u64) -> Option<u64> {
    let p = &broker.profile;
    let mut due = Vec::new();
    for c in broker.connections.values() {
        match c.phase {
            Phase::AwaitingConnect => due.push(c.opened_at_ms + p.connect_timeout_ms),
            Phase::Live { .. } if c.keep_alive_ms > 0 => {
                due.push(c.last_activity_ms + c.keep_alive_ms * 3 / 2);
            }
            Phase::Live { .. } => {}
        }
    }
    for s in broker.sessions.iter().flatten() {
        match (s.conn, s.disconnected_at_ms, p.session_expiry_ms) {
            (None, Some(at), Some(expiry)) => due.push(at + expiry),
            (Some(_), _, _) => {
                if let (Some(age), Some(oldest)) =
                    (p.max_inflight_age_ms, s.inflight.oldest_sent_at())
                {
                    due.push(oldest + age);
                }
                let congested = s.output_congested;
                let held = s
                    .queue
                    .front()
                    .is_some_and(|q| q.message.qos != QoS::AtMostOnce)
                    && s.inflight.len() < p.max_inflight
                    && !congested;
                if held {
                    due.push(next_second(now_ms)); // only the rate holds it
                }
            }
            _ => {}
        }
    }
    for (client_id, presence) in &broker.presence {
        if presence.live == 0 && !broker.by_client_id.contains_key(client_id) {
            due.push(presence.last_seen_ms + PRESENCE_RESET_MS);
        }
    }
    due.into_iter().min()
}

#[derive(Debug, Clone)]
enum Op {
    Open,
    Connect {
        id: u8,
        clean: bool,
        keep_alive: u16,
    },
    Subscribe {
        conn: usize,
        qos1: bool,
    },
    Publish {
        conn: usize,
        qos1: bool,
    },
    Ack {
        conn: usize,
    },
    Ping {
        conn: usize,
    },
    Lose {
        conn: usize,
    },
    Congest {
        conn: usize,
    },
    Ready {
        conn: usize,
    },
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Open),
        3 => (0u8..3, any::<bool>(), 0u16..3)
            .prop_map(|(id, clean, keep_alive)| Op::Connect { id, clean, keep_alive }),
        2 => (0usize..8, any::<bool>()).prop_map(|(conn, qos1)| Op::Subscribe { conn, qos1 }),
        4 => (0usize..8, any::<bool>()).prop_map(|(conn, qos1)| Op::Publish { conn, qos1 }),
        3 => (0usize..8).prop_map(|conn| Op::Ack { conn }),
        1 => (0usize..8).prop_map(|conn| Op::Ping { conn }),
        1 => (0usize..8).prop_map(|conn| Op::Lose { conn }),
        1 => (0usize..8).prop_map(|conn| Op::Congest { conn }),
        1 => (0usize..8).prop_map(|conn| Op::Ready { conn }),
        3 => (0u64..4_000).prop_map(Op::Wait),
        1 => (0u64..4_000_000).prop_map(Op::Wait),
    ]
}

/// Small limits, so every timer kind fires within a few simulated seconds.
fn small(mut profile: Profile) -> Profile {
    profile.keep_alive = KeepAlivePolicy::AsSent;
    profile.connect_timeout_ms = 3_000;
    profile.session_expiry_ms = Some(10_000);
    profile.max_inflight_age_ms = Some(7_000);
    profile.max_publishes_per_second = Some(3);
    profile.max_inflight = 2;
    profile.max_queued = 4;
    profile
}

/// Plays `ops`, ticking only when `poll_timeout` says so, and after each step checks the
/// state against the scan: nothing the scan would act on is overdue, and `poll_timeout` is
/// no later than the scan's next deadline.
fn run(profile: Profile, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut broker = Broker::builder(profile)
        .persistence(MemoryPersistence::default())
        .build(0);
    let mut now = 0u64;
    let mut conns: Vec<ConnectionId> = Vec::new();
    let mut unacked: BTreeMap<ConnectionId, VecDeque<PacketId>> = BTreeMap::new();
    let mut pid = 0u16;
    let pick = |conns: &[ConnectionId], n: usize| conns.get(n % conns.len().max(1)).copied();
    for op in ops {
        let mut next_pid = || {
            pid = pid % 60_000 + 1;
            PacketId::new(pid)
        };
        match *op {
            Op::Open => conns.push(broker.open(TransportInfo::default(), now)),
            Op::Connect {
                id,
                clean,
                keep_alive,
            } => {
                let conn = broker.open(TransportInfo::default(), now);
                broker.handle_packet(
                    conn,
                    Packet::Connect(Connect {
                        client_id: format!("c{id}").into(),
                        clean_session: clean,
                        keep_alive,
                        will: None,
                        username: None,
                        password: None,
                    }),
                    now,
                );
                conns.push(conn);
            }
            Op::Subscribe { conn, qos1 } => {
                if let (Some(conn), Some(packet_id)) = (pick(&conns, conn), next_pid()) {
                    let qos = if qos1 {
                        QoS::AtLeastOnce
                    } else {
                        QoS::AtMostOnce
                    };
                    let filters = SubscribeFilters::from_list(&[("t/#", qos)]);
                    if let Ok(filters) = filters {
                        broker.handle_packet(
                            conn,
                            Packet::Subscribe(Subscribe { packet_id, filters }),
                            now,
                        );
                    }
                }
            }
            Op::Publish { conn, qos1 } => {
                if let (Some(conn), Some(p)) = (pick(&conns, conn), next_pid()) {
                    let qos_pid = if qos1 {
                        QosPid::AtLeastOnce(p)
                    } else {
                        QosPid::AtMostOnce
                    };
                    broker.handle_packet(
                        conn,
                        Packet::Publish(Publish {
                            dup: false,
                            qos_pid,
                            retain: false,
                            topic: "t/x".into(),
                            payload: "x".into(),
                        }),
                        now,
                    );
                }
            }
            Op::Ack { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    if let Some(p) = unacked.get_mut(&conn).and_then(VecDeque::pop_front) {
                        broker.handle_packet(conn, Packet::PubAck(PubAck::new(p)), now);
                    }
                }
            }
            Op::Ping { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    broker.handle_packet(conn, Packet::PingReq, now);
                }
            }
            Op::Lose { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    broker.connection_lost(conn, now);
                }
            }
            Op::Congest { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    broker.output_congested(conn);
                }
            }
            Op::Ready { conn } => {
                if let Some(conn) = pick(&conns, conn) {
                    broker.output_ready(conn, now);
                }
            }
            Op::Wait(ms) => {
                let until = now + ms;
                // Wake exactly when asked, as a program would.
                while let Some(at) = broker.poll_timeout().filter(|at| *at <= until) {
                    now = now.max(at);
                    broker.tick(now);
                    collect(&mut broker, &mut unacked);
                }
                now = until;
                broker.tick(now);
            }
        }
        collect(&mut broker, &mut unacked);
        if let Some(due) = scan_due(&broker, now) {
            prop_assert!(due > now, "overdue at {}: {}", now, due);
            let timeout = broker.poll_timeout();
            prop_assert!(
                timeout.is_some_and(|t| t <= due),
                "poll_timeout {:?} later than the scan's {} at {}",
                timeout,
                due,
                now
            );
        }
        let bound = broker.connections.len() + 3 * broker.session_count() + broker.presence.len();
        prop_assert!(
            broker.timers.len() <= bound,
            "{} entries > {}",
            broker.timers.len(),
            bound
        );
    }
    Ok(())
}

fn collect(broker: &mut Memory, unacked: &mut BTreeMap<ConnectionId, VecDeque<PacketId>>) {
    while let Some(out) = broker.poll_output() {
        match out {
            Output::Send {
                conn,
                packet: Packet::Publish(p),
            } => {
                if let Some(pid) = p.packet_id() {
                    unacked.entry(conn).or_default().push_back(pid);
                }
            }
            Output::Close { conn, .. } => {
                unacked.remove(&conn);
            }
            Output::Send { .. } => {}
        }
    }
}

proptest! {
    #[test]
    fn timers_never_miss_what_a_scan_would_do_aws(ops in prop::collection::vec(op(), 1..60)) {
        run(small(Profile::aws_iot()), &ops)?;
    }

    #[test]
    fn timers_never_miss_what_a_scan_would_do_standard(ops in prop::collection::vec(op(), 1..60)) {
        run(small(Profile::standard()), &ops)?;
    }
}
