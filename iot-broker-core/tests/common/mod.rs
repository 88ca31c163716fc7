//! The naive matching oracle and the topic/filter generators shared by the router and retained-store
//! tests.

#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use iot_broker_core::router::MultiLevelRule;
use proptest::prelude::*;

/// MQTT 3.1.1 section 4.7 matching, written the obvious way.
pub fn filter_matches(filter: &str, topic: &str, rule: MultiLevelRule) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    for (i, level) in f.iter().enumerate() {
        match *level {
            "#" => {
                return match rule {
                    MultiLevelRule::IncludesParent => true,
                    MultiLevelRule::ExcludesParent => t.len() > i,
                };
            }
            "+" => {
                if i >= t.len() {
                    return false;
                }
            }
            literal => {
                if t.get(i) != Some(&literal) {
                    return false;
                }
            }
        }
    }
    f.len() == t.len()
}

pub fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("+"), Just("")], 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(levels, dollar, hash)| {
            let mut levels: Vec<&str> = levels;
            if dollar {
                levels.insert(0, "$x");
            }
            if hash || levels.is_empty() || levels == [""] {
                levels.push("#");
            }
            levels.join("/")
        })
}

pub fn topic() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("")], 1..5),
        any::<bool>(),
    )
        .prop_map(|(mut levels, dollar)| {
            if dollar {
                levels[0] = "$x";
            }
            levels.join("/")
        })
}

pub mod sim;
