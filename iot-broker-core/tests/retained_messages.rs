//! Reading retained messages the way AWS's `GetRetainedMessage` and `ListRetainedMessages` do:
//! each with the time the PUBLISH that set it arrived, listed in pages in topic order; through
//! overwrites, deletes and a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::sim::{Sim, T0};
use iot_broker_core::codec::QoS;
use iot_broker_core::persist::{MemoryPersistence, Persistence};
use iot_broker_core::profile::Profile;
use iot_broker_core::retained::RetainedPage;
use iot_broker_core::topic::TopicName;
use iot_broker_core::{Broker, ConnectionId};
use proptest::prelude::*;

fn profiles() -> [Profile; 2] {
    [Profile::aws_iot(), Profile::standard()]
}

/// Every page from the start, `max` at a time.
fn all_pages<A, R, P>(broker: &Broker<A, R, P>, max: usize) -> Vec<RetainedPage>
where
    A: iot_broker_core::auth::Authorizer,
    R: iot_broker_core::service::ReservedTopicService,
    P: Persistence,
{
    let mut pages = vec![broker.list_retained(None, max)];
    while let Some(after) = pages.last().and_then(|p| p.next.clone()) {
        pages.push(broker.list_retained(Some(&after), max));
        assert!(
            pages.len() <= broker.retained_count() + 1,
            "paging never ends"
        );
    }
    pages
}

fn listed_topics(pages: &[RetainedPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.topics.iter().map(|s| s.topic.clone()))
        .collect()
}

/// A client publishing one retained message every 20 ms (under AWS's 100 publishes/s).
fn publish_retained(sim: &mut Sim, conn: ConnectionId, topic: &str, payload: &str) -> u64 {
    sim.advance(20);
    sim.publish(conn, topic, payload, QoS::AtLeastOnce, true);
    assert_eq!(sim.closed(conn), None, "{topic}");
    sim.now
}

#[test]
fn paging_lists_every_topic_once_in_order() {
    for profile in profiles() {
        let mut sim = Sim::new(profile);
        let (ops, _) = sim.connect("ops", true);
        // Inserted out of order, with topics that sort differently by level and by byte.
        let mut topics: Vec<String> = (0..250)
            .map(|i| format!("fleet/{}/car-{}", i % 7, (i * 37) % 250))
            .collect();
        topics.push("fleet".into());
        topics.push("fleet!".into());
        topics.push("fleet/".into());
        for topic in &topics {
            publish_retained(&mut sim, ops, topic, "x");
        }
        topics.sort();
        topics.dedup();
        assert_eq!(sim.broker.retained_count(), topics.len());

        let pages = all_pages(&sim.broker, 100);
        assert_eq!(pages.len(), topics.len().div_ceil(100));
        for page in &pages[..pages.len() - 1] {
            assert_eq!(page.topics.len(), 100);
            assert_eq!(page.next.as_ref(), Some(&page.topics[99].topic));
        }
        assert_eq!(pages.last().unwrap().next, None);
        assert_eq!(listed_topics(&pages), topics);

        // An `after` that is no stored topic starts right behind where it would sort.
        let page = sim.broker.list_retained(Some("fleet/3"), 2);
        let expected: Vec<&String> = topics
            .iter()
            .filter(|t| t.as_str() > "fleet/3")
            .take(2)
            .collect();
        assert_eq!(
            page.topics.iter().map(|s| &s.topic).collect::<Vec<_>>(),
            expected
        );
        // Past the end: an empty last page.
        let page = sim.broker.list_retained(Some("zzz"), 100);
        assert!(page.topics.is_empty() && page.next.is_none());
    }
}

#[test]
fn an_exactly_full_page_is_the_last_one() {
    let mut broker = Broker::builder(Profile::aws_iot()).build(T0);
    for i in 0..200 {
        let topic = TopicName::new(format!("t/{i:03}"), broker.profile()).unwrap();
        broker.publish(topic, Bytes::from_static(b"x"), QoS::AtMostOnce, true, T0);
    }
    let first = broker.list_retained(None, 100);
    assert_eq!(first.next.as_deref(), Some("t/099"));
    let second = broker.list_retained(first.next.as_deref(), 100);
    assert_eq!(second.topics.len(), 100);
    assert_eq!(second.next, None);
    let whole = broker.list_retained(None, 200);
    assert_eq!((whole.topics.len(), whole.next), (200, None));
    // A max of 0 is taken as 1, so a caller paging with it still gets through.
    let one = broker.list_retained(None, 0);
    assert_eq!(one.topics.len(), 1);
    assert_eq!(one.next.as_deref(), Some("t/000"));
    assert_eq!(all_pages(&broker, 0).len(), 200);
    assert_eq!(listed_topics(&all_pages(&broker, usize::MAX)).len(), 200);
}

#[test]
fn summaries_and_modified_time() {
    for profile in profiles() {
        let mut sim = Sim::new(profile);
        let (ops, _) = sim.connect("ops", true);
        let set_at = publish_retained(&mut sim, ops, "cars/1/status", "online");
        sim.advance(20);
        sim.publish(ops, "cars/2/status", "live", QoS::AtMostOnce, false);

        let retained = sim.broker.retained("cars/1/status").unwrap();
        assert_eq!(retained.modified_ms, set_at);
        assert_eq!(retained.message.payload, "online");
        assert_eq!(retained.message.qos, QoS::AtLeastOnce);
        assert!(retained.message.retain);
        assert!(
            sim.broker.retained("cars/2/status").is_none(),
            "not retained"
        );

        // An overwrite moves the time on; other topics keep theirs.
        let other_at = publish_retained(&mut sim, ops, "cars/3/status", "parked");
        sim.advance(5_000);
        let overwritten_at = publish_retained(&mut sim, ops, "cars/1/status", "offline");
        assert!(overwritten_at > set_at);
        let page = sim.broker.list_retained(None, 10);
        let summary: Vec<(&str, usize, QoS, u64)> = page
            .topics
            .iter()
            .map(|s| (s.topic.as_str(), s.payload_size, s.qos, s.modified_ms))
            .collect();
        assert_eq!(
            summary,
            [
                ("cars/1/status", 7, QoS::AtLeastOnce, overwritten_at),
                ("cars/3/status", 6, QoS::AtLeastOnce, other_at),
            ]
        );
        assert_eq!(page.next, None);
    }
}

#[test]
fn an_empty_retained_payload_removes_the_topic_from_the_listing() {
    for profile in profiles() {
        let mut sim = Sim::new(profile);
        let (ops, _) = sim.connect("ops", true);
        for topic in ["a", "b", "c"] {
            publish_retained(&mut sim, ops, topic, "x");
        }
        publish_retained(&mut sim, ops, "b", "");
        assert!(sim.broker.retained("b").is_none());
        let page = sim.broker.list_retained(None, 10);
        assert_eq!(listed_topics(&[page]), ["a", "c"]);
        // Deleting what is not there changes nothing; paging after a deleted topic still works.
        publish_retained(&mut sim, ops, "b", "");
        let page = sim.broker.list_retained(Some("b"), 10);
        assert_eq!(listed_topics(&[page]), ["c"]);
        assert_eq!(sim.broker.persistence_mut().load().retained.len(), 2);
    }
}

#[test]
fn a_retained_will_gets_the_time_it_was_published() {
    let mut sim = Sim::new(Profile::aws_iot());
    let (conn, _) = sim.connect_with(
        Default::default(),
        iot_broker_core::codec::Connect {
            will: Some(common::sim::will("cars/1/status", b"gone", true)),
            ..common::sim::connect_packet("car1", true, 60)
        },
    );
    sim.advance(20_000);
    sim.drop_connection(conn);
    let retained = sim.broker.retained("cars/1/status").unwrap();
    assert_eq!(retained.modified_ms, T0 + 20_000);
    assert_eq!(retained.message.payload, "gone");
}

#[test]
fn retained_messages_and_their_times_survive_a_restart() {
    for profile in profiles() {
        let mut sim = Sim::new(profile.clone());
        let (ops, _) = sim.connect("ops", true);
        let mut times = BTreeMap::new();
        for topic in ["z/1", "a/1", "m/1", "m/2"] {
            times.insert(
                topic.to_string(),
                publish_retained(&mut sim, ops, topic, topic),
            );
        }
        publish_retained(&mut sim, ops, "m/2", "");
        times.remove("m/2");
        let saved = sim.broker.persistence_mut().load();
        let saved_times: BTreeMap<String, u64> = saved
            .retained
            .iter()
            .map(|r| (r.message.topic.to_string(), r.modified_ms))
            .collect();
        assert_eq!(saved_times, times);

        let restarted = Broker::builder(profile)
            .persistence(MemoryPersistence::with(saved))
            .build(sim.now + 60_000);
        let listed: BTreeMap<String, u64> = restarted
            .list_retained(None, 100)
            .topics
            .into_iter()
            .map(|s| (s.topic, s.modified_ms))
            .collect();
        // Restored with the times they were set, not the restart time.
        assert_eq!(listed, times);
        assert_eq!(restarted.retained("a/1").unwrap().message.payload, "a/1");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Pages agree with a sorted model for any store, `after` and page size.
    #[test]
    fn pages_agree_with_a_sorted_model(
        ops in prop::collection::vec(("[ab$/]{1,4}", any::<bool>()), 0..60),
        max in 0usize..12,
        after in prop::option::of("[ab$/]{0,4}"),
    ) {
        let mut broker = Broker::builder(Profile::standard()).build(T0);
        let mut model = BTreeMap::new();
        for (i, (topic, delete)) in ops.into_iter().enumerate() {
            let Ok(name) = TopicName::new(topic.as_str(), broker.profile()) else {
                continue;
            };
            let at = T0 + i as u64;
            let payload = if delete { Bytes::new() } else { Bytes::from(topic.clone()) };
            broker.publish(name, payload, QoS::AtMostOnce, true, at);
            if delete {
                model.remove(&topic);
            } else {
                model.insert(topic, at);
            }
        }
        let page = broker.list_retained(after.as_deref(), max);
        let rest: Vec<(&String, &u64)> = model
            .iter()
            .filter(|(t, _)| after.as_ref().is_none_or(|a| *t > a))
            .collect();
        let want = max.max(1).min(rest.len());
        let got: Vec<(&String, &u64)> =
            page.topics.iter().map(|s| (&s.topic, &s.modified_ms)).collect();
        prop_assert_eq!(&got[..], &rest[..want]);
        let next = (rest.len() > want).then(|| rest[want - 1].0.clone());
        prop_assert_eq!(page.next, next);
    }
}
