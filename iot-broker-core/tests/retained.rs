//! The retained store's filter lookup against the naive oracle, under both `#` rules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use iot_broker_core::retained::RetainedStore;
use iot_broker_core::router::MultiLevelRule;
use proptest::prelude::*;

mod common;
use common::{filter, filter_matches, topic};

fn check(
    ops: Vec<(String, Option<u8>)>,
    filters: Vec<String>,
    rule: MultiLevelRule,
) -> Result<(), TestCaseError> {
    let mut store = RetainedStore::new();
    let mut model: BTreeMap<String, u8> = BTreeMap::new();
    for (topic, value) in ops {
        let old = store.set(&topic, value);
        let expected = match value {
            Some(v) => model.insert(topic.clone(), v),
            None => model.remove(&topic),
        };
        prop_assert_eq!(old, expected);
        prop_assert_eq!(store.get(&topic), model.get(&topic));
    }
    prop_assert_eq!(store.len(), model.len());
    let mut values: Vec<u8> = store.values().copied().collect();
    values.sort_unstable();
    let mut want: Vec<u8> = model.values().copied().collect();
    want.sort_unstable();
    prop_assert_eq!(values, want);
    for filter in filters {
        let mut got: Vec<(String, u8)> = store
            .matching(&filter, rule)
            .into_iter()
            .map(|(t, v)| (t, *v))
            .collect();
        got.sort();
        let want: Vec<(String, u8)> = model
            .iter()
            .filter(|(t, _)| filter_matches(&filter, t, rule))
            .map(|(t, v)| (t.clone(), *v))
            .collect();
        prop_assert_eq!(got, want, "filter {}", filter);
    }
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<(String, Option<u8>)>> {
    prop::collection::vec((topic(), prop::option::weighted(0.75, any::<u8>())), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn retained_lookup_agrees_with_oracle_standard(ops in ops(), filters in prop::collection::vec(filter(), 1..10)) {
        check(ops, filters, MultiLevelRule::IncludesParent)?;
    }

    #[test]
    fn retained_lookup_agrees_with_oracle_aws(ops in ops(), filters in prop::collection::vec(filter(), 1..10)) {
        check(ops, filters, MultiLevelRule::ExcludesParent)?;
    }
}

#[test]
fn deleting_prunes_and_keeps_siblings() {
    let mut store = RetainedStore::new();
    store.set("a/b/c", Some(1));
    store.set("a/b", Some(2));
    assert_eq!(store.set("a/b/c", None), Some(1));
    assert_eq!(store.get("a/b"), Some(&2));
    assert_eq!(store.set("a/b/c", None), None);
    assert_eq!(
        store.matching("#", MultiLevelRule::IncludesParent),
        [("a/b".to_string(), &2)]
    );
    assert_eq!(store.set("a/b", None), Some(2));
    assert!(store.is_empty());
}
