//! The broker caches the authorizer's publish and receive answers per connection and topic, and
//! asks again when the authorizer's generation changes or the program borrows it mutably.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::sim::{Sim, T0};
use iot_broker_core::Broker;
use iot_broker_core::auth::{Authorizer, Client};
use iot_broker_core::codec::QoS;
use iot_broker_core::persist::MemoryPersistence;
use iot_broker_core::profile::Profile;

/// Counts the questions; denies receiving on `secret/...`; its generation is shared with the
/// test, as a registry behind a lock would be.
#[derive(Default)]
struct Counting {
    publish: u32,
    receive: u32,
    generation: Rc<Cell<u64>>,
}

impl Authorizer for Counting {
    fn publish(&mut self, _: &Client<'_>, _: &str, _: bool) -> bool {
        self.publish += 1;
        true
    }
    fn receive(&mut self, _: &Client<'_>, topic: &str) -> bool {
        self.receive += 1;
        !topic.starts_with("secret/")
    }
    fn generation(&self) -> u64 {
        self.generation.get()
    }
}

fn sim(profile: Profile) -> (Sim<Counting>, Rc<Cell<u64>>) {
    let generation = Rc::new(Cell::new(0));
    let authorizer = Counting {
        generation: Rc::clone(&generation),
        ..Counting::default()
    };
    let broker = Broker::builder(profile)
        .authorizer(authorizer)
        .persistence(MemoryPersistence::default())
        .seed(1)
        .build(T0);
    (Sim::with(broker), generation)
}

fn both() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

fn asked(sim: &Sim<Counting>) -> (u32, u32) {
    let a = sim.broker.authorizer();
    (a.publish, a.receive)
}

#[test]
fn a_cached_answer_is_not_asked_again() {
    for profile in both() {
        let (mut sim, _) = sim(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("cars/#", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);
        for i in 0..5 {
            sim.publish(
                car,
                "cars/car/speed",
                &i.to_string(),
                QoS::AtMostOnce,
                false,
            );
        }
        assert_eq!(sim.received(sub).len(), 5);
        // One publish question for the car, one receive question for the subscriber.
        assert_eq!(asked(&sim), (1, 1));
        // Another topic, and the same topic with RETAIN, are other questions.
        sim.publish(car, "cars/car/gps", "x", QoS::AtMostOnce, false);
        sim.publish(car, "cars/car/speed", "x", QoS::AtMostOnce, true);
        assert_eq!(sim.received(sub).len(), 2);
        assert_eq!(asked(&sim), (3, 2));
        // The cache is per connection: another publisher is asked about.
        let (other, _) = sim.connect("other", true);
        sim.publish(other, "cars/car/speed", "x", QoS::AtMostOnce, false);
        assert_eq!(asked(&sim), (4, 2));
    }
}

#[test]
fn a_generation_change_asks_again() {
    for profile in both() {
        let (mut sim, generation) = sim(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("cars/#", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);
        sim.publish(car, "cars/car/speed", "1", QoS::AtMostOnce, false);
        assert_eq!(asked(&sim), (1, 1));
        generation.set(7);
        sim.publish(car, "cars/car/speed", "2", QoS::AtMostOnce, false);
        assert_eq!(asked(&sim), (2, 2));
        sim.publish(car, "cars/car/speed", "3", QoS::AtMostOnce, false);
        assert_eq!(asked(&sim), (2, 2), "cached again under the new generation");
        assert_eq!(sim.received(sub).len(), 3);
    }
}

#[test]
fn borrowing_the_authorizer_mutably_drops_the_cache_reading_it_does_not() {
    let (mut sim, _) = sim(Profile::standard());
    let (car, _) = sim.connect("car", true);
    sim.publish(car, "cars/car/speed", "1", QoS::AtMostOnce, false);
    let _ = sim.broker.authorizer();
    sim.publish(car, "cars/car/speed", "2", QoS::AtMostOnce, false);
    assert_eq!(asked(&sim), (1, 0));
    let _ = sim.broker.authorizer_mut();
    sim.publish(car, "cars/car/speed", "3", QoS::AtMostOnce, false);
    assert_eq!(asked(&sim), (2, 0));
}

#[test]
fn a_refusal_is_cached_and_every_skipped_delivery_counted() {
    for profile in both() {
        let (mut sim, _) = sim(profile);
        let (sub, _) = sim.connect("sub", true);
        sim.subscribe(sub, &[("secret/#", QoS::AtLeastOnce)]);
        let (car, _) = sim.connect("car", true);
        for _ in 0..3 {
            sim.publish(car, "secret/plan", "x", QoS::AtLeastOnce, false);
        }
        assert!(sim.received(sub).is_empty());
        assert_eq!(sim.broker.stats().receive_denied, 3);
        assert_eq!(asked(&sim).1, 1);
    }
}

#[test]
fn more_topics_than_the_cache_holds_are_still_answered_right() {
    let (mut sim, _) = sim(Profile::standard());
    let (sub, _) = sim.connect("sub", true);
    sim.subscribe(sub, &[("#", QoS::AtMostOnce)]);
    let (car, _) = sim.connect("car", true);
    for round in 0..2 {
        for i in 0..100 {
            let topic = if i % 10 == 0 {
                format!("secret/{i}")
            } else {
                format!("t/{i}")
            };
            sim.publish(car, &topic, "x", QoS::AtMostOnce, false);
        }
        assert_eq!(sim.received(sub).len(), 90, "round {round}");
    }
    // 100 topics cycle through a 64-topic cache: every question is asked again in round two.
    assert_eq!(asked(&sim), (200, 200));
    assert_eq!(sim.broker.stats().receive_denied, 20);
}
