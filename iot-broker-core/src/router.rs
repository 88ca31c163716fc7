//! The subscription trie: which sessions a PUBLISH goes to.
//!
//! One node per topic level; `+` and `#` are children of their own. A filter's subscribers sit on
//! the node where it ends; shared subscriptions (`$share/{group}/{filter}`) sit on the node of their
//! inner filter, one round-robin group per name. Matching walks the trie once per PUBLISH.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use mqtt_codec::{Limits, QoS, TopicError, split_shared, validate_topic_filter};

/// How `#` treats its parent level, the one matching rule the two profiles disagree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiLevelRule {
    /// MQTT 3.1.1 (4.7.1.2): `a/#` also matches `a`.
    IncludesParent,
    /// AWS IoT: `a/#` matches `a/`, `a/b`, … but not `a`.
    ExcludesParent,
}

/// One delivery the router found: a subscriber and the QoS its matching filter was granted at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<S> {
    /// Who gets the message.
    pub subscriber: S,
    /// The granted QoS of the filter that matched.
    pub qos: QoS,
    /// The shared-subscription group it was picked from, if any.
    pub group: Option<Arc<str>>,
}

#[derive(Debug)]
struct SharedGroup<S> {
    members: Vec<(S, QoS)>,
    next: Cell<usize>,
}

#[derive(Debug)]
struct Node<S> {
    children: HashMap<Box<str>, Node<S>>,
    plus: Option<Box<Node<S>>>,
    hash: Option<Box<Node<S>>>,
    subscribers: BTreeMap<S, QoS>,
    shared: BTreeMap<Arc<str>, SharedGroup<S>>,
}

impl<S> Default for Node<S> {
    fn default() -> Node<S> {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            subscribers: BTreeMap::new(),
            shared: BTreeMap::new(),
        }
    }
}

impl<S> Node<S> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.subscribers.is_empty()
            && self.shared.is_empty()
    }
}

/// The subscription trie over subscriber ids `S` (a client id, a session index).
///
/// ```
/// use iot_broker_core::router::{MultiLevelRule, Router};
/// use iot_broker_core::codec::QoS;
///
/// let mut router = Router::new(MultiLevelRule::IncludesParent);
/// router.subscribe("cars/+/gps", "dashboard", QoS::AtLeastOnce).unwrap();
/// router.subscribe("cars/#", "logger", QoS::AtMostOnce).unwrap();
/// let mut found: Vec<_> = router.matches("cars/7/gps").into_iter().map(|m| m.subscriber).collect();
/// found.sort();
/// assert_eq!(found, ["dashboard", "logger"]);
/// // Wildcard-first filters never match `$` topics.
/// router.subscribe("#", "everything", QoS::AtMostOnce).unwrap();
/// assert!(router.matches("$aws/things/car/shadow/update").is_empty());
/// ```
#[derive(Debug)]
pub struct Router<S> {
    root: Node<S>,
    rule: MultiLevelRule,
    subscriptions: usize,
}

impl<S: Clone + Ord + Hash> Router<S> {
    /// An empty router with `rule` for `#`.
    pub fn new(rule: MultiLevelRule) -> Router<S> {
        Router {
            root: Node::default(),
            rule,
            subscriptions: 0,
        }
    }

    /// Number of (filter, subscriber) subscriptions held.
    pub fn len(&self) -> usize {
        self.subscriptions
    }

    /// Whether there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.subscriptions == 0
    }

    /// Subscribe `subscriber` to `filter` (plain or `$share/{group}/{filter}`) at `qos`. A second
    /// subscription of the same subscriber to the same filter replaces the first. Returns whether
    /// the subscription is new.
    pub fn subscribe(&mut self, filter: &str, subscriber: S, qos: QoS) -> Result<bool, TopicError> {
        validate_topic_filter(filter, &Limits::mqtt_3_1_1())?;
        let (group, inner) = match split_shared(filter) {
            Some(Ok((group, inner))) => (Some(group), inner),
            Some(Err(e)) => return Err(e),
            None => (None, filter),
        };
        let node = node_for(&mut self.root, inner);
        let new = match group {
            None => node.subscribers.insert(subscriber, qos).is_none(),
            Some(group) => {
                let group = node
                    .shared
                    .entry(Arc::from(group))
                    .or_insert_with(|| SharedGroup {
                        members: Vec::new(),
                        next: Cell::new(0),
                    });
                match group.members.iter_mut().find(|(s, _)| *s == subscriber) {
                    Some(member) => {
                        member.1 = qos;
                        false
                    }
                    None => {
                        group.members.push((subscriber, qos));
                        true
                    }
                }
            }
        };
        if new {
            self.subscriptions += 1;
        }
        Ok(new)
    }

    /// Remove `subscriber`'s subscription to `filter`. Returns whether there was one.
    pub fn unsubscribe(&mut self, filter: &str, subscriber: &S) -> bool {
        let (group, inner) = match split_shared(filter) {
            Some(Ok((group, inner))) => (Some(group), inner),
            Some(Err(_)) => return false,
            None => (None, filter),
        };
        let levels: Vec<&str> = inner.split('/').collect();
        let removed = remove(&mut self.root, &levels, group, subscriber);
        if removed {
            self.subscriptions -= 1;
        }
        removed
    }

    /// Every delivery for a PUBLISH to `topic`: one per matching filter of each subscriber, and one
    /// member per matching shared group (taken in turn). A profile that delivers one copy per
    /// client folds these with [`fold_per_subscriber`].
    pub fn matches(&self, topic: &str) -> Vec<RouteMatch<S>> {
        let mut out = Vec::new();
        let dollar = topic.starts_with('$');
        self.walk(&self.root, Some(topic), true, dollar, &mut out);
        out
    }

    /// Match the levels left in `rest` (`None` once every level is consumed) below `node`.
    fn walk(
        &self,
        node: &Node<S>,
        rest: Option<&str>,
        first: bool,
        dollar: bool,
        out: &mut Vec<RouteMatch<S>>,
    ) {
        let Some(rest) = rest else {
            collect(node, out);
            if self.rule == MultiLevelRule::IncludesParent {
                if let Some(hash) = &node.hash {
                    collect(hash, out);
                }
            }
            return;
        };
        let (level, tail) = match rest.split_once('/') {
            Some((level, tail)) => (level, Some(tail)),
            None => (rest, None),
        };
        if let Some(child) = node.children.get(level) {
            self.walk(child, tail, false, dollar, out);
        }
        // `+` and `#` in the first level never match a topic starting with `$` (MQTT 4.7.2).
        if !(dollar && first) {
            if let Some(plus) = &node.plus {
                self.walk(plus, tail, false, dollar, out);
            }
            if let Some(hash) = &node.hash {
                collect(hash, out);
            }
        }
    }
}

/// The node for `filter`'s last level, created as needed.
fn node_for<'n, S>(mut node: &'n mut Node<S>, filter: &str) -> &'n mut Node<S> {
    for level in filter.split('/') {
        node = match level {
            "+" => node.plus.get_or_insert_with(Box::default),
            "#" => node.hash.get_or_insert_with(Box::default),
            _ => node.children.entry(level.into()).or_default(),
        };
    }
    node
}

/// Remove a subscription below `node`, pruning nodes left empty.
fn remove<S: Ord>(
    node: &mut Node<S>,
    levels: &[&str],
    group: Option<&str>,
    subscriber: &S,
) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return match group {
            None => node.subscribers.remove(subscriber).is_some(),
            Some(name) => {
                let Some(shared) = node.shared.get_mut(name) else {
                    return false;
                };
                let before = shared.members.len();
                shared.members.retain(|(s, _)| s != subscriber);
                let removed = shared.members.len() != before;
                if shared.members.is_empty() {
                    node.shared.remove(name);
                }
                removed
            }
        };
    };
    match *level {
        "+" | "#" => {
            let slot = if *level == "+" {
                &mut node.plus
            } else {
                &mut node.hash
            };
            let Some(child) = slot else { return false };
            let removed = remove(child, rest, group, subscriber);
            if child.is_empty() {
                *slot = None;
            }
            removed
        }
        name => {
            let Some(child) = node.children.get_mut(name) else {
                return false;
            };
            let removed = remove(child, rest, group, subscriber);
            if child.is_empty() {
                node.children.remove(name);
            }
            removed
        }
    }
}

fn collect<S: Clone>(node: &Node<S>, out: &mut Vec<RouteMatch<S>>) {
    out.extend(node.subscribers.iter().map(|(s, q)| RouteMatch {
        subscriber: s.clone(),
        qos: *q,
        group: None,
    }));
    for (name, group) in &node.shared {
        let count = group.members.len();
        if count == 0 {
            continue;
        }
        let turn = group.next.get() % count;
        group.next.set(turn + 1);
        if let Some((s, q)) = group.members.get(turn) {
            out.push(RouteMatch {
                subscriber: s.clone(),
                qos: *q,
                group: Some(Arc::clone(name)),
            });
        }
    }
}

/// Fold deliveries to one per subscriber at the highest granted QoS (MQTT 3.1.1's rule for
/// overlapping subscriptions; the standard profile). Shared-group picks stay separate deliveries.
///
/// ```
/// use iot_broker_core::router::{fold_per_subscriber, RouteMatch};
/// use iot_broker_core::codec::QoS;
/// let m = |s, qos| RouteMatch { subscriber: s, qos, group: None };
/// let folded = fold_per_subscriber(vec![m("a", QoS::AtMostOnce), m("a", QoS::AtLeastOnce), m("b", QoS::AtMostOnce)]);
/// assert_eq!(folded, [m("a", QoS::AtLeastOnce), m("b", QoS::AtMostOnce)]);
/// ```
pub fn fold_per_subscriber<S: Ord + Clone>(matches: Vec<RouteMatch<S>>) -> Vec<RouteMatch<S>> {
    let mut best: BTreeMap<S, QoS> = BTreeMap::new();
    let mut shared = Vec::new();
    for m in matches {
        if m.group.is_some() {
            shared.push(m);
            continue;
        }
        let entry = best.entry(m.subscriber).or_insert(m.qos);
        if m.qos > *entry {
            *entry = m.qos;
        }
    }
    let mut out: Vec<RouteMatch<S>> = best
        .into_iter()
        .map(|(subscriber, qos)| RouteMatch {
            subscriber,
            qos,
            group: None,
        })
        .collect();
    out.extend(shared);
    out
}
