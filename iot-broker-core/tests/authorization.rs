//! Whole conversations about who may do what: refused connects, publishes, subscribes and
//! deliveries; AWS's reserved topics and the shadow hook.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::sim::{Sim, T0, connect_packet, will};
use iot_broker_core::Broker;
use iot_broker_core::auth::{Authorizer, Client, ConnectDenied, ConnectRequest, TransportInfo};
use iot_broker_core::codec::{ConnectReturnCode, Packet, PubAck, QoS, SubscribeReturnCode};
use iot_broker_core::lifecycle::DisconnectReason;
use iot_broker_core::message::Message;
use iot_broker_core::persist::MemoryPersistence;
use iot_broker_core::profile::Profile;
use iot_broker_core::service::{ReservedKind, ReservedRequest, ReservedTopicService};

/// Denies by topic prefix; connects only with password "secret".
#[derive(Default)]
struct Table {
    no_publish: Vec<&'static str>,
    no_subscribe: Vec<&'static str>,
    no_receive: Vec<&'static str>,
}

impl Authorizer for Table {
    fn connect(&mut self, request: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        match request.password {
            Some(b"secret") => Ok(()),
            Some(_) => Err(ConnectDenied::BadCredentials),
            None => Err(ConnectDenied::NotAuthorized),
        }
    }
    fn publish(&mut self, _: &Client<'_>, topic: &str, _: bool) -> bool {
        !self.no_publish.iter().any(|p| topic.starts_with(p))
    }
    fn subscribe(&mut self, _: &Client<'_>, filter: &str) -> bool {
        !self.no_subscribe.iter().any(|p| filter.starts_with(p))
    }
    fn receive(&mut self, _: &Client<'_>, topic: &str) -> bool {
        !self.no_receive.iter().any(|p| topic.starts_with(p))
    }
}

fn sim(profile: Profile, table: Table) -> Sim<Table> {
    Sim::with(
        Broker::builder(profile)
            .authorizer(table)
            .persistence(MemoryPersistence::default())
            .seed(1)
            .build(T0),
    )
}

fn login(sim: &mut Sim<Table>, id: &str) -> iot_broker_core::ConnectionId {
    let mut connect = connect_packet(id, true, 60);
    connect.password = Some("secret".into());
    let (conn, ack) = sim.connect_with(TransportInfo::default(), connect);
    assert_eq!(ack.unwrap().code, ConnectReturnCode::Accepted);
    conn
}

#[test]
fn refused_connect_per_profile() {
    for (password, code) in [
        (None, ConnectReturnCode::NotAuthorized),
        (Some("wrong"), ConnectReturnCode::BadUsernameOrPassword),
    ] {
        let mut connect = connect_packet("car", true, 60);
        connect.password = password.map(Into::into);
        // Standard: CONNACK with the code, then close.
        let mut s = sim(Profile::standard(), Table::default());
        let (conn, ack) = s.connect_with(TransportInfo::default(), connect.clone());
        assert_eq!(ack.unwrap().code, code);
        assert_eq!(s.closed(conn), Some(DisconnectReason::AuthError));
        // AWS: closed without a CONNACK.
        let mut a = sim(Profile::aws_iot(), Table::default());
        let (conn, ack) = a.connect_with(TransportInfo::default(), connect);
        assert_eq!(ack, None);
        assert_eq!(a.closed(conn), Some(DisconnectReason::AuthError));
        assert_eq!(a.broker.stats().auth_failures, 1);
    }
}

#[test]
fn a_will_the_client_may_not_publish_refuses_the_connect() {
    for profile in [Profile::aws_iot(), Profile::standard()] {
        let aws = profile.reserved_namespace;
        let mut s = sim(
            profile,
            Table {
                no_publish: vec!["secret/"],
                ..Table::default()
            },
        );
        let mut connect = connect_packet("car", true, 60);
        connect.password = Some("secret".into());
        connect.will = Some(will("secret/status", b"x", false));
        let (conn, ack) = s.connect_with(TransportInfo::default(), connect);
        assert_eq!(
            ack.map(|a| a.code),
            (!aws).then_some(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(s.closed(conn), Some(DisconnectReason::AuthError));
    }
}

#[test]
fn unauthorized_publish_per_profile() {
    for profile in [Profile::aws_iot(), Profile::standard()] {
        let aws = profile.reserved_namespace;
        let mut s = sim(
            profile,
            Table {
                no_publish: vec!["admin/"],
                ..Table::default()
            },
        );
        let watcher = login(&mut s, "watcher");
        s.subscribe(watcher, &[("admin/#", QoS::AtLeastOnce)]);
        let car = login(&mut s, "car");
        let pid = s
            .publish(car, "admin/reboot", "now", QoS::AtLeastOnce, false)
            .unwrap();
        // Nobody receives it either way.
        assert!(s.publishes(watcher).is_empty());
        if aws {
            assert_eq!(s.closed(car), Some(DisconnectReason::AuthError));
            assert!(s.take(car).is_empty());
        } else {
            // Standard: dropped but acknowledged, so the client does not retry forever.
            assert_eq!(s.closed(car), None);
            assert_eq!(s.take(car), [Packet::PubAck(PubAck::new(pid))]);
        }
    }
}

#[test]
fn unauthorized_subscribe_per_profile() {
    for profile in [Profile::aws_iot(), Profile::standard()] {
        let aws = profile.reserved_namespace;
        let mut s = sim(
            profile,
            Table {
                no_subscribe: vec!["admin/"],
                ..Table::default()
            },
        );
        let car = login(&mut s, "car");
        let codes = s.subscribe(
            car,
            &[("cars/#", QoS::AtLeastOnce), ("admin/#", QoS::AtLeastOnce)],
        );
        if aws {
            // Closed without a SUBACK, and nothing of the packet was subscribed.
            assert_eq!(codes, None);
            assert_eq!(s.closed(car), Some(DisconnectReason::AuthError));
        } else {
            assert_eq!(
                codes,
                Some(vec![
                    SubscribeReturnCode::Success(QoS::AtLeastOnce),
                    SubscribeReturnCode::Failure
                ])
            );
            assert_eq!(s.broker.subscriptions("car").unwrap().len(), 1);
        }
    }
}

#[test]
fn receive_is_checked_per_delivery() {
    let mut s = sim(
        Profile::aws_iot(),
        Table {
            no_receive: vec!["private/"],
            ..Table::default()
        },
    );
    let sub = login(&mut s, "sub");
    s.subscribe(
        sub,
        &[
            ("private/x", QoS::AtLeastOnce),
            ("public/x", QoS::AtLeastOnce),
        ],
    );
    let car = login(&mut s, "car");
    s.publish(car, "private/x", "1", QoS::AtLeastOnce, false);
    s.publish(car, "public/x", "2", QoS::AtLeastOnce, false);
    assert_eq!(s.received(sub), [("public/x".into(), "2".into())]);
    assert_eq!(s.broker.stats().receive_denied, 1);
    assert_eq!(s.broker.pending("sub"), Some((1, 0)));
    // Revoking receive bites the live subscription at once.
    s.broker.authorizer_mut().no_receive.push("public/");
    s.publish(car, "public/x", "3", QoS::AtLeastOnce, false);
    assert!(s.received(sub).is_empty());
}

#[test]
fn aws_reserved_topics_close_the_connection() {
    let mut s = Sim::new(Profile::aws_iot());
    for (topic, retain) in [
        ("$aws/things/car/shadow/update/accepted", false),
        ("$SYS/load", false),
        ("$aws/things/car/shadow/update", true),
    ] {
        let (car, _) = s.connect("car", true);
        s.publish(car, topic, "{}", QoS::AtMostOnce, retain);
        assert_eq!(
            s.closed(car),
            Some(DisconnectReason::ForbiddenAccess),
            "{topic}"
        );
    }
    for filter in ["$aws/rules/r/#", "$SYS/#", "$aws/+/x"] {
        let (car, _) = s.connect("car", true);
        assert_eq!(s.subscribe(car, &[(filter, QoS::AtMostOnce)]), None);
        assert_eq!(
            s.closed(car),
            Some(DisconnectReason::ForbiddenAccess),
            "{filter}"
        );
    }
    // `$` client ids are AWS's; standard has no reserved namespace.
    let mut std = Sim::new(Profile::standard());
    let (car, _) = std.connect("car", true);
    let sub = std.subscribe(car, &[("$SYS/#", QoS::AtMostOnce)]);
    assert_eq!(
        sub,
        Some(vec![SubscribeReturnCode::Success(QoS::AtMostOnce)])
    );
    std.publish(car, "$SYS/load", "1", QoS::AtMostOnce, false);
    assert_eq!(std.received(car).len(), 1);
}

/// A stand-in shadow service: answers every update on `/accepted` and records Basic Ingest.
#[derive(Default)]
struct EchoShadow {
    requests: Vec<(ReservedKind, Option<String>, String)>,
}

impl ReservedTopicService for EchoShadow {
    fn handle(&mut self, request: &ReservedRequest<'_>, _now_ms: u64) -> Vec<Message> {
        self.requests.push((
            request.kind,
            request.client_id.map(str::to_owned),
            request.topic.to_owned(),
        ));
        if request.kind != ReservedKind::Shadow {
            return vec![];
        }
        vec![Message::new(
            format!("{}/accepted", request.topic),
            request.payload.clone(),
            QoS::AtLeastOnce,
            false,
        )]
    }
}

#[test]
fn shadow_requests_go_to_the_service_and_answers_are_routed() {
    let mut s = Sim::with(
        Broker::builder(Profile::aws_iot())
            .reserved(EchoShadow::default())
            .persistence(MemoryPersistence::default())
            .build(T0),
    );
    let (app, _) = s.connect("app", true);
    s.subscribe(
        app,
        &[("$aws/things/car1/shadow/update/accepted", QoS::AtLeastOnce)],
    );
    let (spy, _) = s.connect("spy", true);
    s.subscribe(spy, &[("$aws/things/car1/shadow/update", QoS::AtMostOnce)]);
    let (car, _) = s.connect("car1", true);
    let pid = s.publish(
        car,
        "$aws/things/car1/shadow/update",
        "{\"state\":{}}",
        QoS::AtLeastOnce,
        false,
    );
    assert_eq!(s.take(car), [Packet::PubAck(PubAck::new(pid.unwrap()))]);
    assert_eq!(
        s.received(app),
        [(
            "$aws/things/car1/shadow/update/accepted".into(),
            "{\"state\":{}}".into()
        )]
    );
    // The request itself also reaches the request topic's subscribers, as on AWS.
    assert_eq!(s.received(spy).len(), 1);
    // Basic Ingest reaches the service, never subscribers.
    let (all, _) = s.connect("all", true);
    s.subscribe(all, &[("$aws/things/#", QoS::AtMostOnce)]);
    s.publish(car, "$aws/rules/store/cars/1", "x", QoS::AtMostOnce, false);
    assert!(s.received(all).is_empty());
    // A will on a shadow topic reaches subscribers but not the service.
    let mut connect = connect_packet("car2", true, 60);
    connect.will = Some(will("$aws/things/car2/shadow/update", b"{}", false));
    let (car2, _) = s.connect_with(TransportInfo::default(), connect);
    s.drop_connection(car2);
    assert_eq!(s.received(all).len(), 1);
    let requests = &s.broker.reserved_mut().requests;
    assert_eq!(
        requests
            .iter()
            .map(|(k, c, t)| (*k, c.as_deref(), t.as_str()))
            .collect::<Vec<_>>(),
        [
            (
                ReservedKind::Shadow,
                Some("car1"),
                "$aws/things/car1/shadow/update"
            ),
            (
                ReservedKind::BasicIngest,
                Some("car1"),
                "$aws/rules/store/cars/1"
            ),
        ]
    );
}

#[test]
fn server_side_publish_is_routed_retained_and_served() {
    use iot_broker_core::topic::{TopicName, TopicRefusal};
    let mut s = Sim::with(
        Broker::builder(Profile::aws_iot())
            .reserved(EchoShadow::default())
            .persistence(MemoryPersistence::default())
            .build(T0),
    );
    let (app, _) = s.connect("app", true);
    s.subscribe(
        app,
        &[
            ("cars/1/cmd", QoS::AtLeastOnce),
            ("$aws/things/car1/shadow/get/accepted", QoS::AtMostOnce),
        ],
    );
    let topic = TopicName::new("cars/1/cmd", s.broker.profile()).unwrap();
    s.broker
        .publish(topic, "go".into(), QoS::AtLeastOnce, true, s.now);
    let topic = TopicName::new("$aws/things/car1/shadow/get", s.broker.profile()).unwrap();
    s.broker
        .publish(topic, "".into(), QoS::AtMostOnce, false, s.now);
    s.advance(0);
    assert_eq!(s.received(app).len(), 2);
    assert!(s.broker.retained("cars/1/cmd").is_some());
    assert_eq!(
        TopicName::new("$aws/things/car1/shadow/get/accepted", s.broker.profile()),
        Err(TopicRefusal::Reserved)
    );
    assert_eq!(s.broker.reserved_mut().requests[0].1, None);
}

#[test]
fn topics_are_judged_once_under_the_brokers_own_profile() {
    use iot_broker_core::topic::TopicName;
    let mut s = Sim::with(
        Broker::builder(Profile::aws_iot())
            .reserved(EchoShadow::default())
            .persistence(MemoryPersistence::default())
            .build(T0),
    );
    // Names validated under the standard profile, which has no reserved namespace: the AWS
    // broker still serves the shadow request and drops the `$SYS` publish.
    let standard = Profile::standard();
    let shadow = TopicName::new("$aws/things/car1/shadow/get", &standard).unwrap();
    s.broker
        .publish(shadow, "".into(), QoS::AtMostOnce, false, s.now);
    let sys = TopicName::new("$SYS/load", &standard).unwrap();
    s.broker
        .publish(sys, "1".into(), QoS::AtMostOnce, true, s.now);
    s.advance(0);
    assert_eq!(s.broker.reserved_mut().requests.len(), 1);
    assert!(s.broker.retained("$SYS/load").is_none());
    assert_eq!(s.broker.retained_count(), 0);

    // A will is judged at CONNECT: a forbidden topic refuses the connect (AWS) ...
    let mut connect = connect_packet("car1", true, 60);
    connect.will = Some(will("$SYS/gone", b"x", true));
    let (conn, ack) = s.connect_with(TransportInfo::default(), connect);
    assert!(ack.is_none());
    assert_eq!(s.closed(conn), Some(DisconnectReason::AuthError));
    // ... and an allowed one is published with that verdict when the connection drops.
    let mut connect = connect_packet("car2", true, 60);
    connect.will = Some(will("cars/2/status", b"gone", true));
    let (conn, _) = s.connect_with(TransportInfo::default(), connect);
    s.drop_connection(conn);
    assert_eq!(
        s.broker.retained("cars/2/status").unwrap().message.payload,
        "gone"
    );
    // Standard: `$` topics are ordinary, a `$` will included.
    let mut std = Sim::new(Profile::standard());
    let mut connect = connect_packet("car3", true, 60);
    connect.will = Some(will("$SYS/gone", b"x", true));
    let (conn, ack) = std.connect_with(TransportInfo::default(), connect);
    assert!(ack.is_some());
    std.drop_connection(conn);
    assert!(std.broker.retained("$SYS/gone").is_some());
}

/// Watches ordinary traffic: records what it saw and answers `ping` with `pong`.
#[derive(Default)]
struct Watcher {
    seen: Vec<(Option<String>, String)>,
}

impl ReservedTopicService for Watcher {
    fn handle(&mut self, _request: &ReservedRequest<'_>, _now_ms: u64) -> Vec<Message> {
        Vec::new()
    }

    fn observe(
        &mut self,
        message: &Message,
        client_id: Option<&str>,
        _now_ms: u64,
    ) -> Vec<Message> {
        self.seen
            .push((client_id.map(str::to_owned), message.topic.to_string()));
        if &*message.topic == "ping" {
            vec![Message::new(
                "pong",
                message.payload.clone(),
                QoS::AtMostOnce,
                false,
            )]
        } else {
            Vec::new()
        }
    }
}

#[test]
fn a_watching_service_sees_every_ordinary_message_and_its_answers_are_routed() {
    for profile in [Profile::standard(), Profile::aws_iot()] {
        let mut s = Sim::with(
            Broker::builder(profile.clone())
                .reserved(Watcher::default())
                .persistence(MemoryPersistence::default())
                .build(T0),
        );
        let (app, _) = s.connect("app", true);
        s.subscribe(app, &[("pong", QoS::AtMostOnce)]);
        let (car, _) = s.connect("car1", true);
        s.publish(car, "ping", "1", QoS::AtLeastOnce, false);
        assert_eq!(s.received(app), [("pong".into(), "1".into())]);
        // A will is seen too (a bridge relays it); a denied or reserved one is not.
        let mut connect = connect_packet("car2", true, 60);
        connect.will = Some(will("cars/car2/gone", b"x", false));
        let (car2, _) = s.connect_with(TransportInfo::default(), connect);
        s.drop_connection(car2);
        s.publish(
            car,
            "$aws/things/car1/shadow/update",
            "{}",
            QoS::AtMostOnce,
            false,
        );
        let seen = &s.broker.reserved_mut().seen;
        let topics: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
        let mut expected = vec!["ping", "cars/car2/gone"];
        if !profile.reserved_namespace {
            // Under the Standard profile nothing is reserved: a shadow topic is ordinary.
            expected.push("$aws/things/car1/shadow/update");
        }
        assert_eq!(topics, expected, "{profile:?}");
        assert_eq!(seen[0].0.as_deref(), Some("car1"));
    }
}
