//! The sync engine between two real shadow services: a "local" one (the edge's) and a "cloud"
//! one, both over `MemoryShadowStore`. A small pump carries the engine's cloud requests to the
//! cloud service and its answers back, in order, and applies the engine's local writes; tests
//! can hold messages back to stage races, and drop the link to stage outages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, VecDeque};

use iot_shadow::sync::{
    Conflict, Direction, ShadowState, ShadowSync, Side, Strategy as SyncStrategy, SyncAction,
    SyncConfig, SyncRecord,
};
use iot_shadow::{
    MemoryShadowStore, Operation, ShadowKey, ShadowLimits, ShadowMessage, ShadowService,
    ShadowStore, StoredShadow, TopicKind,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const START: u64 = 1_700_000_000_000;

type Service = ShadowService<MemoryShadowStore>;

fn unthrottled() -> ShadowLimits {
    let mut limits = ShadowLimits::aws();
    limits.max_requests_per_second_per_thing = 0;
    limits
}

struct World {
    local: Service,
    cloud: Service,
    sync: ShadowSync,
    /// What the caller persisted from `SaveRecord`s.
    saved: BTreeMap<ShadowKey, SyncRecord>,
    saves: usize,
    /// Requests published by the engine, not yet at the cloud.
    to_cloud: VecDeque<(String, String)>,
    /// Cloud messages on the engine's subscriptions, not yet delivered.
    from_cloud: VecDeque<ShadowMessage>,
    online: bool,
    now: u64,
}

impl World {
    fn new(config: SyncConfig, keys: &[ShadowKey]) -> World {
        let mut world = World {
            local: ShadowService::with_limits(MemoryShadowStore::default(), unthrottled()),
            cloud: ShadowService::with_limits(MemoryShadowStore::default(), unthrottled()),
            sync: ShadowSync::new(config, []),
            saved: BTreeMap::new(),
            saves: 0,
            to_cloud: VecDeque::new(),
            from_cloud: VecDeque::new(),
            online: false,
            now: START,
        };
        for key in keys {
            world.sync.add_shadow(key.clone());
        }
        world
    }

    fn local_of(&self, key: &ShadowKey) -> Option<StoredShadow> {
        self.local.store().get(key).unwrap()
    }

    /// Carry out the engine's actions.
    fn drain_actions(&mut self) {
        while let Some(action) = self.sync.poll_action() {
            match action {
                SyncAction::CloudPublish { topic, payload } => {
                    assert!(self.online, "a cloud request while offline: {topic}");
                    self.to_cloud.push_back((topic, payload));
                }
                SyncAction::LocalUpdate { key, payload } => {
                    let _ = self.local.update(&key, payload.as_bytes(), self.now);
                    let now = self.local_of(&key);
                    self.sync.local_applied(&key, now.as_ref());
                }
                SyncAction::LocalDelete { key } => {
                    let _ = self.local.delete(&key, b"", self.now);
                    let now = self.local_of(&key);
                    self.sync.local_applied(&key, now.as_ref());
                }
                SyncAction::SaveRecord { key, record } => {
                    self.saves += 1;
                    self.saved.insert(key, record);
                }
            }
        }
    }

    /// The cloud's messages, kept for the engine if it is subscribed to their topic.
    fn hear_cloud(&mut self, messages: Vec<ShadowMessage>) {
        if !self.online {
            return;
        }
        for m in messages {
            let subscribed = self
                .sync
                .key_of(&m.topic)
                .is_some_and(|key| self.sync.cloud_subscriptions(&key).contains(&m.topic));
            if subscribed {
                self.from_cloud.push_back(m);
            }
        }
    }

    /// One engine request to the cloud; its answers queue for the engine.
    fn deliver_to_cloud(&mut self) -> bool {
        let Some((topic, payload)) = self.to_cloud.pop_front() else {
            return false;
        };
        let answers = self
            .cloud
            .handle_publish(&topic, payload.as_bytes(), self.now)
            .expect("a shadow request");
        self.hear_cloud(answers);
        true
    }

    /// One cloud message to the engine.
    fn deliver_to_engine(&mut self) -> bool {
        let Some(m) = self.from_cloud.pop_front() else {
            return false;
        };
        let key = self.sync.key_of(&m.topic).unwrap();
        let local = self.local_of(&key);
        assert!(
            self.sync
                .cloud_message(&m.topic, m.payload.as_bytes(), local.as_ref(), self.now)
        );
        self.drain_actions();
        true
    }

    /// Run until nothing moves: messages both ways, then timers (time jumps to them).
    fn settle(&mut self) {
        for _ in 0..100_000 {
            self.drain_actions();
            if self.deliver_to_engine() || self.deliver_to_cloud() {
                continue;
            }
            match self.sync.poll_timeout() {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.sync.handle_timeout(self.now);
                }
                None => return,
            }
        }
        panic!("the sync does not settle: {:?}", self.sync.stats());
    }

    fn connect(&mut self) {
        self.online = true;
        self.sync.cloud_connected(self.now);
        self.drain_actions();
    }

    fn disconnect(&mut self) {
        self.online = false;
        self.to_cloud.clear();
        self.from_cloud.clear();
        self.sync.cloud_lost();
        self.drain_actions();
    }

    /// A device's update on the local service.
    fn device(&mut self, key: &ShadowKey, update: Value) {
        self.local
            .update(key, update.to_string().as_bytes(), self.now)
            .unwrap();
        let now = self.local_of(key);
        self.sync.local_changed(key, now.as_ref(), self.now);
        self.drain_actions();
    }

    fn device_delete(&mut self, key: &ShadowKey) {
        self.local.delete(key, b"", self.now).unwrap();
        let now = self.local_of(key);
        self.sync.local_changed(key, now.as_ref(), self.now);
        self.drain_actions();
    }

    /// Another cloud client's update; its messages queue for the engine (if online).
    fn owner(&mut self, key: &ShadowKey, update: Value) {
        let out = self
            .cloud
            .handle_publish(
                &key.topic(TopicKind::Request(Operation::Update)),
                update.to_string().as_bytes(),
                self.now,
            )
            .unwrap();
        assert!(out[0].topic.ends_with("/accepted"), "{out:?}");
        self.hear_cloud(out);
    }

    fn owner_delete(&mut self, key: &ShadowKey) {
        let out = self
            .cloud
            .handle_publish(
                &key.topic(TopicKind::Request(Operation::Delete)),
                b"",
                self.now,
            )
            .unwrap();
        assert!(out[0].topic.ends_with("/accepted"), "{out:?}");
        self.hear_cloud(out);
    }

    fn local_state(&self, key: &ShadowKey) -> Option<Value> {
        state(&self.local, key)
    }

    fn cloud_state(&self, key: &ShadowKey) -> Option<Value> {
        state(&self.cloud, key)
    }

    fn assert_converged(&self, key: &ShadowKey) {
        assert_eq!(self.local_state(key), self.cloud_state(key), "{key}");
        assert_eq!(self.sync.stats().pending, 0, "{:?}", self.sync.stats());
        assert_eq!(self.sync.stats().in_flight, 0);
    }

    fn conflicts(&mut self) -> Vec<Conflict> {
        self.sync.conflicts().collect()
    }
}

fn state(service: &Service, key: &ShadowKey) -> Option<Value> {
    service
        .store()
        .get(key)
        .unwrap()
        .and_then(|s| ShadowState::of(&s))
        .map(|s| s.to_value())
}

fn car(n: u32) -> ShadowKey {
    ShadowKey::classic(format!("car-{n}"))
}

/// A world with `keys` synced and holding `initial` on both sides.
fn synced_world(config: SyncConfig, keys: &[ShadowKey], initial: Value) -> World {
    let mut w = World::new(config, keys);
    w.connect();
    for key in keys {
        w.device(key, initial.clone());
    }
    w.settle();
    for key in keys {
        w.assert_converged(key);
        assert_eq!(w.cloud_state(key), w.local_state(key));
        assert!(w.cloud_state(key).is_some());
    }
    assert!(w.conflicts().is_empty());
    w
}

#[test]
fn a_new_local_shadow_is_created_in_the_cloud_and_nothing_is_sent_for_none() {
    let (a, b) = (car(1), car(2));
    let mut w = World::new(SyncConfig::default(), &[a.clone(), b.clone()]);
    w.device(&a, json!({"state": {"reported": {"speed": 0}}}));
    w.connect();
    w.settle();
    assert_eq!(w.cloud_state(&a), Some(json!({"reported": {"speed": 0}})));
    // Neither side has `b`: its get answered 404 and nothing more.
    assert_eq!(w.cloud_state(&b), None);
    assert_eq!(w.local_state(&b), None);
    let stats = w.sync.stats();
    assert_eq!((stats.cloud_gets, stats.cloud_updates), (2, 1));
    assert_eq!(
        w.saved[&a].base.as_ref().map(ShadowState::to_value),
        w.cloud_state(&a)
    );
}

#[test]
fn a_offline_edits_to_different_fields_converge_to_the_union() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1, "lights": "off", "fuel": 80}}}),
    );
    w.disconnect();
    w.device(
        &key,
        json!({"state": {"reported": {"speed": 5, "fuel": null}}}),
    );
    w.owner(
        &key,
        json!({"state": {"desired": {"lights": "on"}, "reported": {"gps": [1, 2]}}}),
    );
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert_eq!(
        w.local_state(&key),
        Some(
            json!({"desired": {"lights": "on"}, "reported": {"speed": 5, "lights": "off", "gps": [1, 2]}})
        )
    );
    assert!(w.conflicts().is_empty());
    assert_eq!(w.sync.stats().conflicts, 0);
}

#[test]
fn b_the_same_field_on_both_sides_follows_the_rule_and_is_reported() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"desired": {"color": "white"}, "reported": {"speed": 1}}}),
    );
    w.disconnect();
    w.device(
        &key,
        json!({"state": {"desired": {"color": "blue"}, "reported": {"speed": 5}}}),
    );
    w.owner(
        &key,
        json!({"state": {"desired": {"color": "red"}, "reported": {"speed": 7}}}),
    );
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"color": "red"}, "reported": {"speed": 5}}))
    );
    let conflicts = w.conflicts();
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert_eq!(conflicts[0].path, "/desired/color");
    assert_eq!(
        (&conflicts[0].local, &conflicts[0].cloud),
        (&json!("blue"), &json!("red"))
    );
    assert_eq!(conflicts[0].kept, Side::Cloud);
    assert_eq!(conflicts[1].path, "/reported/speed");
    assert_eq!(conflicts[1].kept, Side::Local);
    assert_eq!(w.sync.stats().conflicts, 2);
    // Settled conflicts are not met again.
    w.disconnect();
    w.connect();
    w.settle();
    assert!(w.conflicts().is_empty());
}

#[test]
fn c_a_409_race_converges_without_a_loop() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    w.disconnect();
    w.device(&key, json!({"state": {"reported": {"speed": 2}}}));
    let before = w.sync.stats();
    w.connect();
    // The get goes and is answered; the engine sends its update...
    assert!(w.deliver_to_cloud());
    assert!(w.deliver_to_engine());
    assert_eq!(w.to_cloud.len(), 1);
    assert!(
        w.to_cloud[0].1.contains(r#""version":1"#),
        "{:?}",
        w.to_cloud
    );
    // ...but the owner updates the cloud between the get and the update.
    w.owner(&key, json!({"state": {"desired": {"color": "green"}}}));
    w.settle();
    w.assert_converged(&key);
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"color": "green"}, "reported": {"speed": 2}}))
    );
    let after = w.sync.stats();
    assert_eq!(after.retries - before.retries, 1);
    assert_eq!(after.cloud_gets - before.cloud_gets, 2);
    assert_eq!(after.cloud_updates - before.cloud_updates, 2);
    assert_eq!(after.conflicts, 0);
}

#[test]
fn c_a_cloud_that_keeps_moving_is_retried_with_backoff_then_parked() {
    let key = car(1);
    let config = SyncConfig {
        max_retries: 3,
        ..SyncConfig::default()
    };
    let mut w = synced_world(
        config,
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"n": 0}}}),
    );
    w.device(&key, json!({"state": {"reported": {"speed": 9}}}));
    let mut sent_at = Vec::new();
    for round in 0..10 {
        // Whenever the engine's update is about to reach the cloud, someone else gets there first.
        if let Some(index) = w.to_cloud.iter().position(|(t, _)| t.ends_with("/update")) {
            w.owner(&key, json!({"state": {"desired": {"round": round}}}));
            w.from_cloud.clear(); // their documents are late
            sent_at.push(w.now);
            let request = w.to_cloud.remove(index).unwrap();
            w.to_cloud.push_front(request);
        }
        if !(w.deliver_to_cloud() || w.deliver_to_engine()) {
            match w.sync.poll_timeout() {
                Some(at) => {
                    w.now = w.now.max(at);
                    w.sync.handle_timeout(w.now);
                    w.drain_actions();
                }
                None => break,
            }
        }
        while w.deliver_to_engine() {}
    }
    let stats = w.sync.stats();
    // The first update and three retries, then parked: no endless loop.
    assert_eq!(sent_at.len(), 4, "{sent_at:?}");
    assert_eq!(stats.parked, 1);
    assert_eq!(stats.retries, 4);
    // Backing off: the gaps grow.
    let gaps: Vec<u64> = sent_at.windows(2).map(|p| p[1] - p[0]).collect();
    assert_eq!(gaps, [0, 1_000, 2_000]);
    let rejections: Vec<_> = w.sync.rejections().collect();
    assert_eq!(rejections.len(), 1);
    assert!(rejections[0].message.contains("gave up"));
    // Something new revives it.
    w.device(&key, json!({"state": {"reported": {"speed": 10}}}));
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.cloud_state(&key).unwrap()["reported"]["speed"], json!(10));
}

#[test]
fn d_a_delete_against_an_unchanged_side_deletes_it() {
    let (a, b) = (car(1), car(2));
    let mut w = synced_world(
        SyncConfig::default(),
        &[a.clone(), b.clone()],
        json!({"state": {"reported": {"speed": 1}}}),
    );
    // Deleted locally, live: deleted in the cloud.
    w.device_delete(&a);
    w.settle();
    assert_eq!(w.cloud_state(&a), None);
    // Deleted in the cloud, live: deleted locally.
    w.owner_delete(&b);
    w.settle();
    assert_eq!(w.local_state(&b), None);
    assert!(w.local_of(&b).unwrap().is_deleted());
    assert!(w.saved[&a].deleted && w.saved[&b].deleted);
    assert!(w.conflicts().is_empty());
    // Offline, the same.
    w.device(&a, json!({"state": {"reported": {"speed": 2}}}));
    w.settle();
    w.disconnect();
    w.device_delete(&a);
    w.connect();
    w.settle();
    assert_eq!(w.cloud_state(&a), None);
    w.assert_converged(&a);
}

#[test]
fn d_a_delete_against_a_concurrent_edit_loses_and_is_reported() {
    let (a, b) = (car(1), car(2));
    let mut w = synced_world(
        SyncConfig::default(),
        &[a.clone(), b.clone()],
        json!({"state": {"reported": {"speed": 1}}}),
    );
    w.disconnect();
    // a: deleted locally, edited in the cloud. b: deleted in the cloud, edited locally.
    w.device_delete(&a);
    w.owner(&a, json!({"state": {"desired": {"color": "red"}}}));
    w.owner_delete(&b);
    w.device(&b, json!({"state": {"reported": {"speed": 3}}}));
    w.connect();
    w.settle();
    w.assert_converged(&a);
    w.assert_converged(&b);
    assert_eq!(
        w.local_state(&a),
        Some(json!({"desired": {"color": "red"}, "reported": {"speed": 1}}))
    );
    assert_eq!(w.cloud_state(&b), Some(json!({"reported": {"speed": 3}})));
    let conflicts = w.conflicts();
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts.iter().all(|c| c.path.is_empty()));
    let on_a = conflicts.iter().find(|c| c.key == a).unwrap();
    assert_eq!((on_a.local.clone(), on_a.kept), (Value::Null, Side::Cloud));
    let on_b = conflicts.iter().find(|c| c.key == b).unwrap();
    assert_eq!((on_b.cloud.clone(), on_b.kept), (Value::Null, Side::Local));
}

#[test]
fn d_a_cloud_delete_racing_a_cloud_edit_puts_the_edit_back() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    w.device_delete(&key);
    assert!(w.to_cloud[0].0.ends_with("/delete"));
    // The owner's edit reaches the cloud (and its documents the engine) before the delete.
    w.owner(&key, json!({"state": {"desired": {"color": "red"}}}));
    while w.deliver_to_engine() {}
    w.settle();
    w.assert_converged(&key);
    assert_eq!(
        w.cloud_state(&key),
        Some(json!({"desired": {"color": "red"}, "reported": {"speed": 1}}))
    );
    let conflicts = w.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].kept, Side::Cloud);
}

#[test]
fn e_a_recreated_shadow_is_not_deleted_by_a_stale_tombstone() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    // Deleted in the cloud, and the delete comes down.
    w.owner_delete(&key);
    let stale = w.from_cloud.back().cloned().unwrap();
    assert!(stale.topic.ends_with("/delete/accepted"));
    w.settle();
    assert_eq!(w.local_state(&key), None);
    // Re-created in the cloud: comes down.
    w.owner(&key, json!({"state": {"desired": {"color": "blue"}}}));
    w.settle();
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"color": "blue"}}))
    );
    // The old delete/accepted delivered again (a QoS 1 redelivery): ignored.
    w.from_cloud.push_back(stale);
    w.settle();
    w.assert_converged(&key);
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"color": "blue"}}))
    );
    assert_eq!(w.sync.stats().stale_ignored, 1);

    // Deleted and re-created locally while offline: the re-created shadow goes up; the delete
    // in between is not replayed.
    w.disconnect();
    w.device_delete(&key);
    w.device(&key, json!({"state": {"reported": {"speed": 4}}}));
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.cloud_state(&key), Some(json!({"reported": {"speed": 4}})));
    assert!(w.conflicts().is_empty());
}

#[test]
fn e_after_a_restart_a_saved_tombstone_does_not_delete_a_shadow_recreated_in_the_cloud() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    w.device_delete(&key);
    w.settle();
    assert!(w.saved[&key].deleted);
    // The edge stops; meanwhile the shadow is re-created in the cloud.
    w.disconnect();
    w.owner(&key, json!({"state": {"reported": {"speed": 8}}}));
    w.sync = ShadowSync::new(SyncConfig::default(), w.saved.clone());
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.local_state(&key), Some(json!({"reported": {"speed": 8}})));
}

#[test]
fn f_a_reconnect_syncs_only_what_changed() {
    let keys: Vec<ShadowKey> = (0..20).map(car).collect();
    let config = SyncConfig {
        max_outbound_per_second: 5,
        ..SyncConfig::default()
    };
    let mut w = synced_world(config, &keys, json!({"state": {"reported": {"speed": 1}}}));
    w.disconnect();
    for key in &keys[..3] {
        w.device(key, json!({"state": {"reported": {"speed": 2}}}));
    }
    for key in &keys[10..12] {
        w.owner(key, json!({"state": {"desired": {"speed": 0}}}));
    }
    let before = w.sync.stats();
    // The outage lasted a minute: the rate limit's bucket is full again.
    w.now += 60_000;
    let (saves, start) = (w.saves, w.now);
    w.connect();
    // The rate limit: 5 requests at once, the rest as the bucket refills.
    assert_eq!(w.to_cloud.len(), 5);
    w.settle();
    for key in &keys {
        w.assert_converged(key);
    }
    let after = w.sync.stats();
    assert_eq!(after.cloud_gets - before.cloud_gets, 20);
    assert_eq!(after.cloud_updates - before.cloud_updates, 3);
    assert_eq!(after.local_writes - before.local_writes, 2);
    assert_eq!(w.saves - saves, 5);
    // 23 requests at 5 a second, the first 5 at once: the last one 18 × 200 ms later.
    assert!(w.now - start >= 3_600, "{}", w.now - start);

    // Nothing changed: a reconnect costs one get per shadow and nothing more.
    w.disconnect();
    let before = w.sync.stats();
    let saves = w.saves;
    w.connect();
    w.settle();
    let after = w.sync.stats();
    assert_eq!(after.cloud_gets - before.cloud_gets, 20);
    assert_eq!(after.cloud_updates, before.cloud_updates);
    assert_eq!(after.local_writes, before.local_writes);
    assert_eq!(w.saves, saves);
}

#[test]
fn g_device_to_cloud_overwrites_the_cloud_and_brings_nothing_down() {
    let key = car(1);
    let config = SyncConfig {
        direction: Direction::DeviceToCloud,
        ..SyncConfig::default()
    };
    let mut w = synced_world(
        config,
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    // A cloud change, connected: not brought down, no request.
    let before = w.sync.stats();
    w.owner(&key, json!({"state": {"desired": {"color": "red"}}}));
    w.settle();
    assert_eq!(w.local_state(&key), Some(json!({"reported": {"speed": 1}})));
    assert_eq!(w.sync.stats().cloud_updates, before.cloud_updates);
    // The next local change overwrites the cloud, and the discarded change is reported.
    w.device(&key, json!({"state": {"reported": {"speed": 2}}}));
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.cloud_state(&key), Some(json!({"reported": {"speed": 2}})));
    let conflicts = w.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        (conflicts[0].path.as_str(), conflicts[0].kept),
        ("/desired/color", Side::Local)
    );
}

#[test]
fn g_cloud_to_device_overwrites_the_local_shadow_and_sends_nothing_up() {
    let key = car(1);
    let config = SyncConfig {
        direction: Direction::CloudToDevice,
        ..SyncConfig::default()
    };
    let mut w = World::new(config, std::slice::from_ref(&key));
    w.connect();
    w.owner(&key, json!({"state": {"desired": {"color": "red"}}}));
    w.settle();
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"color": "red"}}))
    );
    // A local change: not sent up.
    let before = w.sync.stats();
    w.device(&key, json!({"state": {"reported": {"speed": 5}}}));
    w.settle();
    assert_eq!(w.sync.stats().cloud_updates, before.cloud_updates);
    assert_eq!(
        w.cloud_state(&key),
        Some(json!({"desired": {"color": "red"}}))
    );
    // The next cloud change makes the local shadow a copy of the cloud's.
    w.owner(&key, json!({"state": {"desired": {"color": "blue"}}}));
    w.settle();
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"color": "blue"}}))
    );
    assert_eq!(w.sync.stats().cloud_updates, before.cloud_updates);
    let conflicts = w.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].path, "/reported/speed");
    // A local shadow with no cloud one is left alone while the cloud never had one.
    let other = car(2);
    w.sync.add_shadow(other.clone());
    w.device(&other, json!({"state": {"reported": {"speed": 1}}}));
    w.settle();
    assert_eq!(w.cloud_state(&other), None);
    assert_eq!(
        w.local_state(&other),
        Some(json!({"reported": {"speed": 1}}))
    );
}

#[test]
fn h_periodic_batches_changes() {
    let key = car(1);
    let config = SyncConfig {
        strategy: SyncStrategy::Periodic { every_ms: 5_000 },
        ..SyncConfig::default()
    };
    let mut w = synced_world(
        config,
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"n": 0}}}),
    );
    let before = w.sync.stats();
    let start = w.now;
    for n in 1..=5 {
        w.now += 500;
        w.device(
            &key,
            json!({"state": {"reported": {"n": n, format!("f{n}"): true}}}),
        );
        assert!(w.to_cloud.is_empty());
    }
    assert_eq!(w.sync.poll_timeout(), Some(start + 500 + 5_000));
    assert_eq!(w.sync.stats().pending, 1);
    w.settle();
    w.assert_converged(&key);
    let after = w.sync.stats();
    assert_eq!(after.cloud_updates - before.cloud_updates, 1);
    assert_eq!(after.cloud_gets, before.cloud_gets);
    assert_eq!(w.cloud_state(&key).unwrap()["reported"]["n"], json!(5));
    // Cloud changes wait for the tick too.
    w.owner(&key, json!({"state": {"desired": {"color": "red"}}}));
    while w.deliver_to_engine() {}
    assert!(w.sync.poll_timeout().is_some());
    assert_eq!(w.local_state(&key).unwrap().get("desired"), None);
    w.settle();
    w.assert_converged(&key);
}

#[test]
fn one_request_in_flight_and_later_changes_merged_into_the_next() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"n": 0}}}),
    );
    let before = w.sync.stats();
    for n in 1..=5 {
        w.device(
            &key,
            json!({"state": {"reported": {"n": n, format!("f{n}"): n}}}),
        );
    }
    // One update in flight; the four changes after it wait and go together.
    assert_eq!(w.to_cloud.len(), 1);
    assert_eq!(w.sync.stats().in_flight, 1);
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.sync.stats().cloud_updates - before.cloud_updates, 2);
}

#[test]
fn lost_answers_are_retried_after_the_timeout() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"n": 0}}}),
    );
    w.device(&key, json!({"state": {"reported": {"n": 1}}}));
    // The update reaches the cloud but its answers are lost.
    assert!(w.deliver_to_cloud());
    w.from_cloud.clear();
    let sent = w.now;
    assert_eq!(w.sync.poll_timeout(), Some(sent + 10_000));
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.sync.stats().retries, 1);
    assert_eq!(w.cloud_state(&key), Some(json!({"reported": {"n": 1}})));
}

#[test]
fn a_lost_connection_abandons_requests_and_resyncs() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"n": 0}}}),
    );
    w.device(&key, json!({"state": {"reported": {"n": 1}}}));
    // The update is applied in the cloud, then the link drops before the answer.
    assert!(w.deliver_to_cloud());
    w.disconnect();
    assert_eq!(w.sync.poll_timeout(), None);
    w.device(&key, json!({"state": {"reported": {"n": 2}}}));
    assert!(w.to_cloud.is_empty());
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.cloud_state(&key), Some(json!({"reported": {"n": 2}})));
    assert!(w.conflicts().is_empty());
}

#[test]
fn throttled_requests_back_off_and_converge() {
    let key = car(1);
    let mut w = World::new(SyncConfig::default(), std::slice::from_ref(&key));
    let mut limits = ShadowLimits::aws();
    limits.max_requests_per_second_per_thing = 1;
    w.cloud = ShadowService::with_limits(MemoryShadowStore::default(), limits);
    w.device(&key, json!({"state": {"reported": {"n": 1}}}));
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert!(w.sync.stats().retries >= 1);
    assert_eq!(w.sync.stats().rejected, 0);
}

#[test]
fn refusals_that_retrying_cannot_cure_park_the_shadow_and_are_logged() {
    let key = car(1);
    let mut w = World::new(SyncConfig::default(), std::slice::from_ref(&key));
    let mut limits = unthrottled();
    limits.max_state_bytes = 16;
    w.cloud = ShadowService::with_limits(MemoryShadowStore::default(), limits);
    w.device(
        &key,
        json!({"state": {"reported": {"a long field name": "and a long value"}}}),
    );
    w.connect();
    w.settle();
    let stats = w.sync.stats();
    assert_eq!((stats.rejected, stats.parked, stats.retries), (1, 1, 0));
    let rejections: Vec<_> = w.sync.rejections().collect();
    assert_eq!(rejections[0].code, Some(413));
    assert_eq!(rejections[0].operation, Operation::Update);
    assert_eq!(w.sync.poll_timeout(), None);
}

#[test]
fn a_local_write_that_does_not_take_is_retried_then_parked() {
    let key = car(1);
    let config = SyncConfig {
        max_retries: 2,
        ..SyncConfig::default()
    };
    let mut w = World::new(config, std::slice::from_ref(&key));
    let mut limits = unthrottled();
    limits.max_state_bytes = 16;
    w.local = ShadowService::with_limits(MemoryShadowStore::default(), limits);
    w.connect();
    w.owner(
        &key,
        json!({"state": {"desired": {"a long field name": "and a long value"}}}),
    );
    w.settle();
    let stats = w.sync.stats();
    assert_eq!((stats.retries, stats.parked), (3, 1));
    let rejections: Vec<_> = w.sync.rejections().collect();
    assert_eq!(rejections.len(), 4);
    assert!(rejections.iter().take(3).all(|r| r.side == Side::Local));
}

#[test]
fn a_device_write_slipping_in_before_a_local_write_is_not_overwritten() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    w.owner(&key, json!({"state": {"reported": {"speed": 2}}}));
    // The engine asks for a local write; a device writes the same field before it is applied.
    while let Some(m) = w.from_cloud.pop_front() {
        let local = w.local_of(&key);
        w.sync
            .cloud_message(&m.topic, m.payload.as_bytes(), local.as_ref(), w.now);
    }
    let action = w.sync.poll_action().unwrap();
    let SyncAction::LocalUpdate { key: k, payload } = action else {
        panic!("{action:?}")
    };
    w.local
        .update(&key, br#"{"state":{"reported":{"speed":9}}}"#, w.now)
        .unwrap();
    assert!(w.local.update(&k, payload.as_bytes(), w.now).is_err());
    let now = w.local_of(&key);
    w.sync.local_applied(&key, now.as_ref());
    w.settle();
    w.assert_converged(&key);
    // Both changed `reported.speed`: the device's value wins, and it is reported.
    assert_eq!(w.local_state(&key), Some(json!({"reported": {"speed": 9}})));
    assert_eq!(w.conflicts().len(), 1);
}

#[test]
fn own_writes_are_not_taken_for_device_changes() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"speed": 1}}}),
    );
    w.owner(&key, json!({"state": {"desired": {"color": "red"}}}));
    w.settle();
    let before = w.sync.stats();
    // The caller's hook reports the engine's own write as a local change too: nothing follows.
    let now = w.local_of(&key);
    w.sync.local_changed(&key, now.as_ref(), w.now);
    w.settle();
    assert_eq!(w.sync.stats().cloud_updates, before.cloud_updates);
    assert_eq!(w.sync.stats().cloud_gets, before.cloud_gets);
}

#[test]
fn a_restart_mid_sync_resumes_from_the_saved_records() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"desired": {"c": 0}, "reported": {"s": 0}}}),
    );
    w.disconnect();
    w.device(
        &key,
        json!({"state": {"desired": {"c": 1}, "reported": {"s": 1}}}),
    );
    w.owner(
        &key,
        json!({"state": {"desired": {"c": 2}, "reported": {"s": 2, "t": 2}}}),
    );
    w.connect();
    // Get answered, local written (saved), cloud update sent... and the edge dies.
    assert!(w.deliver_to_cloud());
    assert!(w.deliver_to_engine());
    assert_eq!(w.conflicts().len(), 2);
    assert!(w.deliver_to_cloud());
    w.from_cloud.clear();
    w.disconnect();
    w.sync = ShadowSync::new(SyncConfig::default(), w.saved.clone());
    w.connect();
    w.settle();
    w.assert_converged(&key);
    assert_eq!(
        w.local_state(&key),
        Some(json!({"desired": {"c": 2}, "reported": {"s": 1, "t": 2}}))
    );
    assert!(w.conflicts().is_empty());
}

#[test]
fn foreign_and_malformed_messages_are_harmless() {
    let key = car(1);
    let mut w = synced_world(
        SyncConfig::default(),
        std::slice::from_ref(&key),
        json!({"state": {"reported": {"n": 0}}}),
    );
    let local = w.local_of(&key);
    let accepted = key.topic(TopicKind::Accepted(Operation::Get));
    assert!(
        w.sync
            .cloud_message(&accepted, b"not json", local.as_ref(), w.now)
    );
    assert!(w.sync.cloud_message(
        &accepted,
        br#"{"clientToken":"someone-else","state":{},"version":99}"#,
        local.as_ref(),
        w.now
    ));
    let documents = key.topic(TopicKind::Documents);
    assert!(w.sync.cloud_message(
        &documents,
        br#"{"current":{"state":{"desired":7},"version":99}}"#,
        local.as_ref(),
        w.now
    ));
    // Not ours: another shadow, a request topic, not a shadow topic.
    assert!(
        !w.sync
            .cloud_message(&car(9).topic(TopicKind::Documents), b"{}", None, w.now)
    );
    assert!(!w.sync.cloud_message(
        &key.topic(TopicKind::Request(Operation::Get)),
        b"{}",
        None,
        w.now
    ));
    assert!(!w.sync.cloud_message("cars/1/telemetry", b"{}", None, w.now));
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.sync.stats().malformed, 2);
}

#[test]
fn named_shadows_sync_on_their_own_topics() {
    let key = ShadowKey::named("car-1", "lights");
    let mut w = World::new(SyncConfig::default(), std::slice::from_ref(&key));
    assert!(
        w.sync
            .cloud_subscriptions(&key)
            .iter()
            .all(|t| t.starts_with("$aws/things/car-1/shadow/name/lights/"))
    );
    assert_eq!(w.sync.cloud_subscriptions(&key).len(), 7);
    w.connect();
    w.device(&key, json!({"state": {"reported": {"on": true}}}));
    w.settle();
    w.assert_converged(&key);
    assert_eq!(w.cloud_state(&ShadowKey::classic("car-1")), None);
}

// ---- property: offline edits on both sides, then a reconnect ----

const PATHS: [&str; 5] = ["/a", "/b", "/o/x", "/o/y", "/arr"];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..3).prop_map(Value::from),
        "[ab]".prop_map(Value::from),
        prop::collection::vec(0i64..2, 1..3).prop_map(Value::from),
    ]
}

/// Per path: left alone, set, or deleted.
fn edits() -> impl Strategy<Value = Vec<Option<Option<Value>>>> {
    prop::collection::vec(
        prop_oneof![2 => Just(None), 1 => prop::option::of(leaf()).prop_map(Some)],
        PATHS.len(),
    )
}

fn section_update(edits: &[Option<Option<Value>>]) -> Value {
    let mut root = json!({});
    for (path, edit) in PATHS.iter().zip(edits) {
        if let Some(value) = edit {
            let parts: Vec<&str> = path.split('/').skip(1).collect();
            let mut node = &mut root;
            for part in &parts[..parts.len() - 1] {
                node = node
                    .as_object_mut()
                    .unwrap()
                    .entry(*part)
                    .or_insert_with(|| json!({}));
            }
            node.as_object_mut().unwrap().insert(
                parts[parts.len() - 1].to_string(),
                value.clone().unwrap_or(Value::Null),
            );
        }
    }
    root
}

fn leaves(state: &Option<Value>, section: &str) -> Vec<Option<Value>> {
    PATHS
        .iter()
        .map(|p| {
            state
                .as_ref()
                .and_then(|s| s.pointer(&format!("/{section}{p}")))
                .cloned()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn offline_edits_converge_and_one_sided_changes_win(
        initial in edits(),
        local_d in edits(), local_r in edits(),
        cloud_d in edits(), cloud_r in edits(),
    ) {
        let key = car(1);
        let mut w = World::new(SyncConfig::default(), std::slice::from_ref(&key));
        w.connect();
        let start = section_update(&initial);
        w.device(&key, json!({"state": {"desired": start, "reported": start}}));
        w.settle();
        let base = w.local_state(&key);
        w.disconnect();
        let patch = |d: &[Option<Option<Value>>], r: &[Option<Option<Value>>]| {
            json!({"state": {"desired": section_update(d), "reported": section_update(r)}})
        };
        w.device(&key, patch(&local_d, &local_r));
        w.owner(&key, patch(&cloud_d, &cloud_r));
        let (local, cloud) = (w.local_state(&key), w.cloud_state(&key));
        w.connect();
        w.settle();
        w.assert_converged(&key);
        let merged = w.local_state(&key);
        let mut expected_conflicts = 0;
        for section in ["desired", "reported"] {
            let (b, l, c, m) = (leaves(&base, section), leaves(&local, section), leaves(&cloud, section), leaves(&merged, section));
            for i in 0..PATHS.len() {
                let (lc, cc) = (l[i] != b[i], c[i] != b[i]);
                if lc && !cc { prop_assert_eq!(&m[i], &l[i]); }
                if cc && !lc { prop_assert_eq!(&m[i], &c[i]); }
                if !lc && !cc { prop_assert_eq!(&m[i], &b[i]); }
                if lc && cc && l[i] != c[i] {
                    expected_conflicts += 1;
                    let winner = if section == "desired" { &c[i] } else { &l[i] };
                    prop_assert_eq!(&m[i], winner);
                }
            }
        }
        prop_assert_eq!(w.sync.stats().conflicts, expected_conflicts);
        // At most one get and one update for the reconnect.
        prop_assert!(w.sync.stats().retries == 0);
    }
}

// ---- property: anything, in any order, over a lossy link; then a quiet reconnect ----

#[derive(Debug, Clone)]
enum Step {
    Device(Value),
    Owner(Value),
    DeviceDelete,
    OwnerDelete,
    ToCloud,
    ToEngine,
    LoseToCloud,
    LoseToEngine,
    Reconnect,
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let patch = || {
        (edits(), edits()).prop_map(|(d, r)| {
            json!({"state": {"desired": section_update(&d), "reported": section_update(&r)}})
        })
    };
    prop_oneof![
        3 => patch().prop_map(Step::Device),
        3 => patch().prop_map(Step::Owner),
        1 => Just(Step::DeviceDelete),
        1 => Just(Step::OwnerDelete),
        6 => Just(Step::ToCloud),
        6 => Just(Step::ToEngine),
        1 => Just(Step::LoseToCloud),
        1 => Just(Step::LoseToEngine),
        1 => Just(Step::Reconnect),
        2 => (1u64..15_000).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_interleaving_converges_after_a_quiet_reconnect(
        steps in prop::collection::vec(step(), 1..60),
        periodic in any::<bool>(),
        direction in prop_oneof![
            2 => Just(Direction::BetweenDeviceAndCloud),
            1 => Just(Direction::DeviceToCloud),
            1 => Just(Direction::CloudToDevice),
        ],
    ) {
        let key = car(1);
        let config = SyncConfig {
            strategy: if periodic { SyncStrategy::Periodic { every_ms: 2_000 } } else { SyncStrategy::RealTime },
            direction,
            ..SyncConfig::default()
        };
        let mut w = World::new(config, std::slice::from_ref(&key));
        w.connect();
        let lossless = !steps.iter().any(|s| matches!(s, Step::LoseToCloud | Step::LoseToEngine));
        for s in steps {
            match s {
                Step::Device(update) => w.device(&key, update),
                Step::Owner(update) => {
                    let out = w.cloud.handle_publish(
                        &key.topic(TopicKind::Request(Operation::Update)),
                        update.to_string().as_bytes(),
                        w.now,
                    ).unwrap();
                    w.hear_cloud(out);
                }
                Step::DeviceDelete => {
                    if w.local.delete(&key, b"", w.now).is_ok() {
                        let now = w.local_of(&key);
                        w.sync.local_changed(&key, now.as_ref(), w.now);
                        w.drain_actions();
                    }
                }
                Step::OwnerDelete => {
                    let out = w.cloud.handle_publish(
                        &key.topic(TopicKind::Request(Operation::Delete)), b"", w.now,
                    ).unwrap();
                    w.hear_cloud(out);
                }
                Step::ToCloud => { w.deliver_to_cloud(); }
                Step::ToEngine => { w.deliver_to_engine(); }
                Step::LoseToCloud => { w.to_cloud.pop_front(); }
                Step::LoseToEngine => { w.from_cloud.pop_front(); }
                Step::Reconnect => {
                    w.disconnect();
                    w.connect();
                }
                Step::Wait(ms) => {
                    w.now += ms;
                    w.sync.handle_timeout(w.now);
                    w.drain_actions();
                }
            }
        }
        // Whatever happened, a quiet link and a reconnect bring both sides together.
        w.settle();
        let two_way = direction == Direction::BetweenDeviceAndCloud;
        if lossless && two_way {
            prop_assert_eq!(w.local_state(&key), w.cloud_state(&key), "lossless, no reconnect");
            prop_assert_eq!(w.sync.stats().pending, 0);
        }
        w.disconnect();
        w.connect();
        w.settle();
        prop_assert_eq!(w.sync.stats().parked, 0);
        prop_assert_eq!(w.sync.stats().pending, 0);
        let source = match direction {
            Direction::BetweenDeviceAndCloud => w.local_state(&key),
            Direction::DeviceToCloud => w.local_state(&key),
            Direction::CloudToDevice => w.cloud_state(&key),
        };
        let record = w.sync.record(&key).unwrap().clone();
        if two_way || source.is_some() {
            w.assert_converged(&key);
            // And the record says so.
            prop_assert_eq!(record.base.as_ref().map(ShadowState::to_value), source);
        } else {
            // One-way with no source shadow: the sink is left alone, nothing recorded as synced.
            prop_assert!(record.base.is_none());
        }
    }
}
