//! The trie against a naive oracle (match every filter against the topic), and the profile rules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};

use iot_broker_core::codec::QoS;
use iot_broker_core::router::{MultiLevelRule, Router, fold_per_subscriber};
use proptest::prelude::*;

mod common;
use common::{filter, filter_matches, topic};

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        filter: String,
        client: u8,
        qos: QoS,
        group: Option<u8>,
    },
    Unsubscribe {
        filter: String,
        client: u8,
        group: Option<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let qos = prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ];
    let group = prop::option::weighted(0.3, 0u8..2);
    prop_oneof![
        3 => (filter(), 0u8..5, qos, group.clone()).prop_map(|(filter, client, qos, group)| Op::Subscribe { filter, client, qos, group }),
        1 => (filter(), 0u8..5, group).prop_map(|(filter, client, group)| Op::Unsubscribe { filter, client, group }),
    ]
}

fn full(filter: &str, group: Option<u8>) -> String {
    match group {
        Some(g) => format!("$share/g{g}/{filter}"),
        None => filter.to_string(),
    }
}

fn check(ops: Vec<Op>, topics: Vec<String>, rule: MultiLevelRule) -> Result<(), TestCaseError> {
    let mut router = Router::new(rule);
    let mut plain: BTreeMap<(String, u8), QoS> = BTreeMap::new();
    let mut shared: BTreeMap<(u8, String), BTreeMap<u8, QoS>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Subscribe {
                filter,
                client,
                qos,
                group,
            } => {
                let new = router
                    .subscribe(&full(&filter, group), client, qos)
                    .unwrap();
                let was = match group {
                    None => plain.insert((filter, client), qos).is_none(),
                    Some(g) => shared
                        .entry((g, filter))
                        .or_default()
                        .insert(client, qos)
                        .is_none(),
                };
                prop_assert_eq!(new, was);
            }
            Op::Unsubscribe {
                filter,
                client,
                group,
            } => {
                let removed = router.unsubscribe(&full(&filter, group), &client);
                let was = match group {
                    None => plain.remove(&(filter, client)).is_some(),
                    Some(g) => {
                        let key = (g, filter);
                        let members = shared.entry(key.clone()).or_default();
                        let was = members.remove(&client).is_some();
                        if members.is_empty() {
                            shared.remove(&key);
                        }
                        was
                    }
                };
                prop_assert_eq!(removed, was);
            }
        }
    }
    prop_assert_eq!(
        router.len(),
        plain.len() + shared.values().map(BTreeMap::len).sum::<usize>()
    );
    for topic in topics {
        let found = router.matches(&topic);
        let mut got: Vec<(u8, QoS)> = found
            .iter()
            .filter(|m| m.group.is_none())
            .map(|m| (m.subscriber, m.qos))
            .collect();
        let mut want: Vec<(u8, QoS)> = plain
            .iter()
            .filter(|((f, _), _)| filter_matches(f, &topic, rule))
            .map(|((_, c), q)| (*c, *q))
            .collect();
        got.sort();
        want.sort();
        prop_assert_eq!(got, want, "topic {}", topic);
        // One delivery per matching shared group, to one of its members at its QoS.
        let groups: Vec<_> = shared
            .iter()
            .filter(|((_, f), _)| filter_matches(f, &topic, rule))
            .collect();
        let picks: Vec<_> = found.iter().filter(|m| m.group.is_some()).collect();
        prop_assert_eq!(picks.len(), groups.len(), "topic {}", topic);
        for pick in picks {
            let name = pick.group.clone().unwrap();
            let is_member = groups.iter().any(|((g, _), members)| {
                *format!("g{}", g) == *name && members.get(&pick.subscriber) == Some(&pick.qos)
            });
            prop_assert!(is_member, "pick {:?}", pick);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn trie_agrees_with_oracle_standard(ops in prop::collection::vec(op(), 0..40), topics in prop::collection::vec(topic(), 1..10)) {
        check(ops, topics, MultiLevelRule::IncludesParent)?;
    }

    #[test]
    fn trie_agrees_with_oracle_aws(ops in prop::collection::vec(op(), 0..40), topics in prop::collection::vec(topic(), 1..10)) {
        check(ops, topics, MultiLevelRule::ExcludesParent)?;
    }
}

#[test]
fn hash_and_its_parent_level_per_profile() {
    for (rule, matches_parent) in [
        (MultiLevelRule::IncludesParent, true),
        (MultiLevelRule::ExcludesParent, false),
    ] {
        let mut r = Router::new(rule);
        r.subscribe("a/#", "c", QoS::AtMostOnce).unwrap();
        assert_eq!(!r.matches("a").is_empty(), matches_parent);
        assert_eq!(r.matches("a/").len(), 1);
        assert_eq!(r.matches("a/b/c").len(), 1);
        assert!(r.matches("b").is_empty());
    }
}

#[test]
fn dollar_topics_need_an_explicit_first_level() {
    let mut r = Router::new(MultiLevelRule::IncludesParent);
    r.subscribe("#", "all", QoS::AtMostOnce).unwrap();
    r.subscribe("+/things/#", "plus", QoS::AtMostOnce).unwrap();
    r.subscribe("$aws/things/#", "aws", QoS::AtMostOnce)
        .unwrap();
    let who: Vec<_> = r
        .matches("$aws/things/car/shadow/update")
        .into_iter()
        .map(|m| m.subscriber)
        .collect();
    assert_eq!(who, ["aws"]);
}

#[test]
fn shared_group_takes_turns() {
    let mut r = Router::new(MultiLevelRule::IncludesParent);
    for member in ["m1", "m2", "m3"] {
        r.subscribe("$share/workers/jobs/+", member, QoS::AtLeastOnce)
            .unwrap();
    }
    r.subscribe("jobs/#", "auditor", QoS::AtMostOnce).unwrap();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..300 {
        let found = r.matches("jobs/42");
        assert_eq!(found.len(), 2, "one pick from the group and the auditor");
        for m in found {
            *counts.entry(m.subscriber).or_default() += 1;
        }
    }
    assert_eq!(
        counts,
        BTreeMap::from([("auditor", 300), ("m1", 100), ("m2", 100), ("m3", 100)])
    );
    // A member that leaves stops getting messages; the rest share them.
    assert!(r.unsubscribe("$share/workers/jobs/+", &"m2"));
    let picks: BTreeSet<_> = (0..10)
        .flat_map(|_| r.matches("jobs/1"))
        .filter(|m| m.group.is_some())
        .map(|m| m.subscriber)
        .collect();
    assert_eq!(picks, BTreeSet::from(["m1", "m3"]));
}

#[test]
fn overlapping_filters_fold_to_the_highest_qos_per_client() {
    let mut r = Router::new(MultiLevelRule::IncludesParent);
    r.subscribe("a/+", "c", QoS::AtMostOnce).unwrap();
    r.subscribe("a/#", "c", QoS::ExactlyOnce).unwrap();
    r.subscribe("a/b", "c", QoS::AtLeastOnce).unwrap();
    let all = r.matches("a/b");
    assert_eq!(
        all.len(),
        3,
        "one per matching filter, as the AWS profile delivers"
    );
    let folded = fold_per_subscriber(all);
    assert_eq!(folded.len(), 1);
    assert_eq!(folded[0].qos, QoS::ExactlyOnce);
}

#[test]
fn unsubscribe_prunes_and_reports() {
    let mut r = Router::new(MultiLevelRule::IncludesParent);
    r.subscribe("a/b/c", 1u32, QoS::AtMostOnce).unwrap();
    assert!(
        !r.subscribe("a/b/c", 1u32, QoS::AtLeastOnce).unwrap(),
        "a re-subscribe replaces"
    );
    assert_eq!(r.matches("a/b/c")[0].qos, QoS::AtLeastOnce);
    assert!(!r.unsubscribe("a/b", &1));
    assert!(r.unsubscribe("a/b/c", &1));
    assert!(!r.unsubscribe("a/b/c", &1));
    assert!(r.is_empty());
    assert!(r.subscribe("a/#/b", 1u32, QoS::AtMostOnce).is_err());
}
