//! Retained messages, one per topic, in a trie of topic levels so a new subscription finds the
//! retained messages its filter matches by walking only the matching branches, never the whole
//! store; and the pages of summaries the broker lists them in (AWS's `ListRetainedMessages`).

use std::collections::HashMap;

use mqtt_codec::QoS;

use crate::router::MultiLevelRule;

#[derive(Debug)]
struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    value: Option<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Node<V> {
        Node {
            children: HashMap::new(),
            value: None,
        }
    }
}

/// Retained messages (or whatever `V` the broker keeps per topic), indexed by topic level.
///
/// ```
/// use iot_broker_core::retained::RetainedStore;
/// use iot_broker_core::router::MultiLevelRule;
///
/// let mut retained = RetainedStore::new();
/// retained.set("cars/1/status", Some("online"));
/// retained.set("cars/2/status", Some("offline"));
/// retained.set("cars/2/gps", Some("52.1,4.3"));
/// let mut found = retained.matching("cars/+/status", MultiLevelRule::IncludesParent);
/// found.sort();
/// assert_eq!(found, [("cars/1/status".to_string(), &"online"), ("cars/2/status".to_string(), &"offline")]);
/// // A retained PUBLISH with an empty payload deletes: the broker passes `None`.
/// retained.set("cars/1/status", None);
/// assert_eq!(retained.get("cars/1/status"), None);
/// assert_eq!(retained.len(), 2);
/// ```
#[derive(Debug)]
pub struct RetainedStore<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for RetainedStore<V> {
    fn default() -> RetainedStore<V> {
        RetainedStore {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> RetainedStore<V> {
    /// An empty store.
    pub fn new() -> RetainedStore<V> {
        RetainedStore::default()
    }

    /// Number of retained topics.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Retain `value` on `topic`, or with `None` delete the topic's retained message. Returns the
    /// value it replaced.
    pub fn set(&mut self, topic: &str, value: Option<V>) -> Option<V> {
        match value {
            Some(value) => {
                let mut node = &mut self.root;
                for level in topic.split('/') {
                    node = node.children.entry(level.into()).or_default();
                }
                let old = node.value.replace(value);
                if old.is_none() {
                    self.len += 1;
                }
                old
            }
            None => {
                let levels: Vec<&str> = topic.split('/').collect();
                let old = remove(&mut self.root, &levels);
                if old.is_some() {
                    self.len -= 1;
                }
                old
            }
        }
    }

    /// The retained value of exactly `topic`.
    pub fn get(&self, topic: &str) -> Option<&V> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.value.as_ref()
    }

    /// Every retained value, in no particular order.
    pub fn values(&self) -> Values<'_, V> {
        Values {
            stack: vec![&self.root],
        }
    }

    /// Every retained topic `filter` matches, with its value: what a new subscription to `filter`
    /// receives in the standard profile. (The AWS profile sends retained messages only to a filter
    /// equal to the topic: use [`get`](Self::get).)
    pub fn matching(&self, filter: &str, rule: MultiLevelRule) -> Vec<(String, &V)> {
        let mut out = Vec::new();
        let levels: Vec<&str> = filter.split('/').collect();
        let mut path = Vec::new();
        walk(&self.root, &levels, rule, &mut path, &mut out);
        out
    }
}

/// The values of a [`RetainedStore`], from [`RetainedStore::values`].
#[derive(Debug)]
pub struct Values<'s, V> {
    stack: Vec<&'s Node<V>>,
}

impl<'s, V> Iterator for Values<'s, V> {
    type Item = &'s V;

    fn next(&mut self) -> Option<&'s V> {
        while let Some(node) = self.stack.pop() {
            self.stack.extend(node.children.values());
            if let Some(value) = &node.value {
                return Some(value);
            }
        }
        None
    }
}

/// One retained message as [`Broker::list_retained`](crate::Broker::list_retained) lists it: what
/// AWS's `ListRetainedMessages` returns per topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedSummary {
    /// The topic.
    pub topic: String,
    /// The payload's length in bytes (`payloadSize`).
    pub payload_size: usize,
    /// The QoS it was published with.
    pub qos: QoS,
    /// When the PUBLISH that set it arrived, Unix epoch milliseconds (`lastModifiedTime`).
    pub modified_ms: u64,
}

/// A page of retained-message summaries in ascending topic order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct RetainedPage {
    /// The summaries, topics ascending (byte order).
    pub topics: Vec<RetainedSummary>,
    /// When more topics follow: the last topic of this page, to pass as `after` for the next
    /// one. `None` on the last page.
    pub next: Option<String>,
}

fn walk<'s, V>(
    node: &'s Node<V>,
    filter: &[&str],
    rule: MultiLevelRule,
    path: &mut Vec<&'s str>,
    out: &mut Vec<(String, &'s V)>,
) {
    let at_root = path.is_empty();
    let Some((level, rest)) = filter.split_first() else {
        if let Some(v) = &node.value {
            out.push((path.join("/"), v));
        }
        return;
    };
    match *level {
        "#" => {
            if rule == MultiLevelRule::IncludesParent && !at_root {
                if let Some(v) = &node.value {
                    out.push((path.join("/"), v));
                }
            }
            for (name, child) in &node.children {
                // Wildcards in the first level never match `$` topics.
                if at_root && name.starts_with('$') {
                    continue;
                }
                path.push(name);
                subtree(child, path, out);
                path.pop();
            }
        }
        "+" => {
            for (name, child) in &node.children {
                if at_root && name.starts_with('$') {
                    continue;
                }
                path.push(name);
                walk(child, rest, rule, path, out);
                path.pop();
            }
        }
        literal => {
            if let Some((name, child)) = node.children.get_key_value(literal) {
                path.push(name);
                walk(child, rest, rule, path, out);
                path.pop();
            }
        }
    }
}

fn subtree<'s, V>(node: &'s Node<V>, path: &mut Vec<&'s str>, out: &mut Vec<(String, &'s V)>) {
    if let Some(v) = &node.value {
        out.push((path.join("/"), v));
    }
    for (name, child) in &node.children {
        path.push(name);
        subtree(child, path, out);
        path.pop();
    }
}

fn remove<V>(node: &mut Node<V>, levels: &[&str]) -> Option<V> {
    let Some((level, rest)) = levels.split_first() else {
        return node.value.take();
    };
    let child = node.children.get_mut(*level)?;
    let old = remove(child, rest);
    if child.value.is_none() && child.children.is_empty() {
        node.children.remove(*level);
    }
    old
}
