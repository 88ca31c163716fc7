//! A device against the real service over a lossy link: whatever happens, once the link is quiet
//! and reliable and the device has reconnected (or its timeout has fired), the device reports what
//! is desired and the service's reported state is the device's.
//!
//! The cloud is a `ShadowService` over a `MemoryShadowStore`. The link keeps order but drops
//! messages in either direction, and a disconnect loses everything in flight. The application
//! applies every desired change it is told about and reports it; it also changes its own state
//! now and then (a button pressed, a sensor read). The owner changes the desired state through
//! `ShadowService::update` at any time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;

use iot_shadow::{
    DeviceShadow, MemoryShadowStore, ShadowEvent, ShadowKey, ShadowMessage, ShadowRequest,
    ShadowService, VersionPolicy, delta,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const START: u64 = 1_700_000_000_000;
const TIMEOUT_MS: u64 = 5_000;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (0i64..4).prop_map(Value::from),
        "[a-c]{1,2}".prop_map(Value::from),
    ]
}

/// A value in an update: scalars, short arrays, objects one or two levels deep, `null` (delete).
fn update_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![4 => scalar(), 1 => Just(Value::Null)];
    let inner = prop_oneof![
        3 => leaf.clone(),
        1 => prop::collection::btree_map("[xy]", leaf.clone(), 1..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ];
    prop_oneof![
        4 => leaf,
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        2 => prop::collection::btree_map("[xyz]", inner, 1..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

fn update() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-d]|temp", update_value(), 1..3)
        .prop_map(|m| m.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Step {
    /// The owner changes the desired state.
    Desired(Map<String, Value>),
    /// The device changes its own state and reports it.
    Local(Map<String, Value>),
    /// The oldest device-to-cloud message arrives, or is lost.
    ToCloud { lost: bool },
    /// The oldest cloud-to-device message arrives, or is lost.
    ToDevice { lost: bool },
    /// The connection drops (everything in flight is lost).
    Disconnect,
    /// The connection drops if it was up, and comes back.
    Reconnect,
    /// Time passes.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => update().prop_map(Step::Desired),
        2 => update().prop_map(Step::Local),
        8 => prop::bool::weighted(0.25).prop_map(|lost| Step::ToCloud { lost }),
        8 => prop::bool::weighted(0.25).prop_map(|lost| Step::ToDevice { lost }),
        1 => Just(Step::Disconnect),
        2 => Just(Step::Reconnect),
        2 => prop_oneof![0u64..2_000, 4_000u64..12_000].prop_map(Step::Wait),
    ]
}

/// Steps of a link that loses nothing and stays up.
fn reliable_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => update().prop_map(Step::Desired),
        2 => update().prop_map(Step::Local),
        8 => Just(Step::ToCloud { lost: false }),
        8 => Just(Step::ToDevice { lost: false }),
        2 => prop_oneof![0u64..2_000, 4_000u64..12_000].prop_map(Step::Wait),
    ]
}

/// How the lossy period ends before the quiet one.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Reconnect,
    /// Lose what is in flight without a disconnect, and let the answer timeout notice (when
    /// the device awaits an answer; otherwise it reconnects).
    Timeout,
}

struct World {
    cloud: ShadowService<MemoryShadowStore>,
    device: DeviceShadow,
    key: ShadowKey,
    subscriptions: Vec<String>,
    up: VecDeque<ShadowRequest>,
    down: VecDeque<ShadowMessage>,
    connected: bool,
    now: u64,
    owner_updates: u64,
}

impl World {
    fn new(key: ShadowKey, policy: VersionPolicy, initial: Map<String, Value>) -> World {
        let device = DeviceShadow::new(key.clone(), "car-boot-1")
            .unwrap()
            .with_reported(initial)
            .with_answer_timeout(TIMEOUT_MS)
            .with_version_policy(policy);
        let mut world = World {
            cloud: ShadowService::new(MemoryShadowStore::default()),
            subscriptions: device.subscriptions(),
            device,
            key,
            up: VecDeque::new(),
            down: VecDeque::new(),
            connected: false,
            now: START,
            owner_updates: 0,
        };
        world.reconnect();
        world
    }

    /// The caller publishes a request: lost at once while disconnected.
    fn publish(&mut self, request: ShadowRequest) {
        if self.connected {
            self.up.push_back(request);
        }
    }

    /// The cloud publishes answers: those on the device's subscriptions reach it if connected.
    fn route_to_device(&mut self, messages: Vec<ShadowMessage>) {
        for message in messages {
            if self.connected && self.subscriptions.contains(&message.topic) {
                self.down.push_back(message);
            }
        }
    }

    /// The application: every desired change is applied and reported; requests are published.
    fn handle(&mut self, events: Vec<ShadowEvent>) {
        for event in events {
            match event {
                ShadowEvent::Publish(request) => self.publish(request),
                ShadowEvent::Delta { changes, .. } => {
                    let report = self.device.report(&changes, self.now);
                    self.publish(report);
                }
                _ => {}
            }
        }
    }

    fn deliver_up(&mut self, lost: bool) {
        let Some(request) = self.up.pop_front() else {
            return;
        };
        if lost {
            return;
        }
        let answers = self
            .cloud
            .handle_publish(&request.topic, request.payload.as_bytes(), self.now)
            .expect("a shadow request");
        self.route_to_device(answers);
    }

    fn deliver_down(&mut self, lost: bool) {
        let Some(message) = self.down.pop_front() else {
            return;
        };
        if lost {
            return;
        }
        let events = self
            .device
            .handle_message(&message.topic, message.payload.as_bytes(), self.now)
            .unwrap_or_else(|e| panic!("{e} on {message:?}"));
        self.handle(events);
    }

    fn owner(&mut self, desired: &Map<String, Value>) {
        self.owner_updates += 1;
        let body = json!({"state": {"desired": desired},
                          "clientToken": format!("owner-{}", self.owner_updates)});
        // Refused updates (throttled, say) are simply not made.
        if let Ok(outcome) = self
            .cloud
            .update(&self.key, body.to_string().as_bytes(), self.now)
        {
            self.route_to_device(outcome.messages);
        }
    }

    fn local(&mut self, changes: &Map<String, Value>) {
        let report = self.device.report(changes, self.now);
        self.publish(report);
    }

    fn disconnect(&mut self) {
        self.connected = false;
        self.up.clear();
        self.down.clear();
    }

    fn reconnect(&mut self) {
        self.disconnect();
        self.connected = true;
        for request in self.device.on_connected(self.now) {
            self.publish(request);
        }
    }

    fn wait(&mut self, ms: u64) {
        self.now += ms;
        if self.device.poll_timeout().is_some_and(|t| t <= self.now) {
            for request in self.device.handle_timeout(self.now) {
                self.publish(request);
            }
        }
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Desired(desired) => self.owner(desired),
            Step::Local(changes) => self.local(changes),
            Step::ToCloud { lost } => self.deliver_up(*lost),
            Step::ToDevice { lost } => self.deliver_down(*lost),
            Step::Disconnect => self.disconnect(),
            Step::Reconnect => self.reconnect(),
            Step::Wait(ms) => self.wait(*ms),
        }
    }

    /// A reliable link until nothing is in flight and no timeout is pending.
    fn settle(&mut self) {
        for _ in 0..1_000 {
            if let Some(request) = self.up.pop_front() {
                self.up.push_front(request);
                self.deliver_up(false);
            } else if !self.down.is_empty() {
                self.deliver_down(false);
            } else if let Some(deadline) = self.device.poll_timeout() {
                let ms = deadline.saturating_sub(self.now);
                self.wait(ms);
            } else {
                return;
            }
        }
        panic!("no quiet after 1000 rounds");
    }

    /// The cloud's desired and reported sections and version (empty and none without a shadow).
    fn cloud_state(&mut self) -> (Map<String, Value>, Map<String, Value>, Option<u64>) {
        // One second on, so the check is not throttled.
        self.now += 1_000;
        match self.cloud.get(&self.key, b"", self.now) {
            Ok(doc) => {
                let section = |name: &str| {
                    doc["state"]
                        .get(name)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                };
                (
                    section("desired"),
                    section("reported"),
                    doc["version"].as_u64(),
                )
            }
            Err((e, _)) => {
                assert_eq!(e.code(), 404, "{e}");
                (Map::new(), Map::new(), None)
            }
        }
    }
}

impl World {
    fn assert_converged(&mut self) -> Result<(), TestCaseError> {
        let (desired, reported, version) = self.cloud_state();
        prop_assert_eq!(
            delta(&desired, Some(self.device.reported())),
            Map::new(),
            "the device reports every desired value"
        );
        prop_assert_eq!(
            &reported,
            self.device.reported(),
            "the cloud has the device's state"
        );
        prop_assert_eq!(
            self.device.desired(),
            &desired,
            "the device knows the desired state"
        );
        prop_assert_eq!(self.device.version(), version);
        prop_assert_eq!(self.device.pending_requests(), 0);
        Ok(())
    }
}

fn policy() -> impl Strategy<Value = VersionPolicy> {
    prop_oneof![Just(VersionPolicy::Omit), Just(VersionPolicy::Expect)]
}

fn key() -> impl Strategy<Value = ShadowKey> {
    prop_oneof![
        Just(ShadowKey::classic("car-1")),
        Just(ShadowKey::named("car-1", "cabin")),
    ]
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![Just(Ending::Reconnect), Just(Ending::Timeout)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn device_and_cloud_converge(
        key in key(),
        policy in policy(),
        initial in prop::option::of(update()),
        steps in prop::collection::vec(step(), 0..80),
        ending in ending(),
    ) {
        let mut world = World::new(key, policy, initial.unwrap_or_default());
        for step in &steps {
            world.run(step);
        }
        match ending {
            Ending::Timeout if world.connected && world.device.pending_requests() > 0 => {
                world.up.clear();
                world.down.clear();
            }
            _ => world.reconnect(),
        }
        world.settle();

        world.assert_converged()?;
    }

    /// Without losses the device needs no reconnect: deltas, conflicts and throttling alone
    /// bring it and the cloud together.
    #[test]
    fn over_a_reliable_link_no_reconnect_is_needed(
        key in key(),
        policy in policy(),
        initial in prop::option::of(update()),
        steps in prop::collection::vec(reliable_step(), 0..80),
    ) {
        let mut world = World::new(key, policy, initial.unwrap_or_default());
        for step in &steps {
            world.run(step);
        }
        world.settle();
        world.assert_converged()?;
    }

    #[test]
    fn no_message_panics(
        kind in 0usize..7,
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        value in update_value(),
        version in any::<i64>(),
    ) {
        let key = ShadowKey::classic("car-1");
        let mut device = DeviceShadow::new(key.clone(), "car").unwrap();
        let get = device.on_connected(START).remove(0);
        let topic = &device.subscriptions()[kind];
        let payloads = [
            bytes.clone(),
            value.to_string().into_bytes(),
            json!({"state": value, "version": version, "clientToken": get.client_token,
                   "code": value, "current": {"state": value, "version": version}})
                .to_string()
                .into_bytes(),
            json!({"state": {"desired": value, "reported": value}, "version": version,
                   "clientToken": get.client_token, "code": version,
                   "current": {"state": {"desired": value}, "version": version}})
                .to_string()
                .into_bytes(),
        ];
        for payload in payloads {
            let _ = device.handle_message(topic, &payload, START);
            let _ = device.handle_message(&String::from_utf8_lossy(&bytes), &payload, START);
        }
        let _ = device.handle_timeout(u64::MAX);
    }
}
