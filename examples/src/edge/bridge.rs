//! The bridge's routing rules, sans-IO: Greengrass's topic mappings
//! `{topic, source, target, targetTopicPrefix}` among the local broker, the in-process handlers
//! and the cloud, with no message loops.
//!
//! Loop rule: a message carries the set of endpoints it has already been at (where it came from
//! and every target it was sent to in an earlier hop). A mapping never sends it to an endpoint in
//! that set, so a message never returns to where it came from and never reaches one endpoint
//! twice, however the mappings overlap (a cloud message relayed to the local broker is not sent
//! back to the cloud by a local-to-cloud mapping on the same topic).

use iot_broker_core::codec::Limits;
use iot_broker_core::codec::{QoS, TopicError, validate_topic_filter};

pub use crate::config::edge::BridgeEndpoint;
use crate::config::edge::TopicMappingConfig;

/// A set of [`BridgeEndpoint`]s (three bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Visited(u8);

impl Visited {
    fn bit(endpoint: BridgeEndpoint) -> u8 {
        match endpoint {
            BridgeEndpoint::LocalMqtt => 1,
            BridgeEndpoint::Pubsub => 2,
            BridgeEndpoint::IotCore => 4,
        }
    }

    /// Just `endpoint`.
    pub fn at(endpoint: BridgeEndpoint) -> Visited {
        Visited(Self::bit(endpoint))
    }

    /// Whether `endpoint` is in the set.
    pub fn contains(self, endpoint: BridgeEndpoint) -> bool {
        self.0 & Self::bit(endpoint) != 0
    }

    /// The set with `endpoint` added.
    #[must_use]
    pub fn with(self, endpoint: BridgeEndpoint) -> Visited {
        Visited(self.0 | Self::bit(endpoint))
    }
}

/// One relay the bridge decided: send the message to `target` under `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Where it goes.
    pub target: BridgeEndpoint,
    /// The topic there (the mapping's prefix in front).
    pub topic: String,
    /// QoS there: 1 towards the cloud (as Greengrass sends), the message's own otherwise.
    pub qos: QoS,
    /// The endpoints the message will have been at once this hop is done; it travels on with it.
    pub visited: Visited,
}

/// A mapping that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bridge mapping {topic:?}: {reason}")]
pub struct MappingError {
    /// The mapping's topic.
    pub topic: String,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Mapping {
    levels: Vec<String>,
    source: BridgeEndpoint,
    target: BridgeEndpoint,
    prefix: String,
}

/// The mappings.
///
/// ```
/// use iot_examples::config::edge::{BridgeEndpoint::*, default_mappings};
/// use iot_examples::edge::bridge::{Bridge, Visited};
/// let bridge = Bridge::new(&default_mappings()).unwrap();
/// // A car's telemetry goes to the cloud and to the handlers:
/// let relays = bridge.relays(LocalMqtt, Visited::at(LocalMqtt), "cars/car-1/telemetry", mqtt_codec::QoS::AtMostOnce);
/// assert_eq!(relays.iter().map(|r| r.target).collect::<Vec<_>>(), [Pubsub, IotCore]);
/// // A command from the cloud goes to the local broker, and from there nowhere else.
/// let down = bridge.relays(IotCore, Visited::at(IotCore), "cars/car-1/commands", mqtt_codec::QoS::AtLeastOnce);
/// assert_eq!(down.len(), 1);
/// assert!(bridge.relays(LocalMqtt, down[0].visited, "cars/car-1/commands", mqtt_codec::QoS::AtLeastOnce).is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Bridge {
    mappings: Vec<Mapping>,
}

fn matches(filter: &[String], topic: &str) -> bool {
    let mut levels = topic.split('/');
    for (i, f) in filter.iter().enumerate() {
        if f == "#" {
            // `a/#` matches `a` too (MQTT 3.1.1); `#` at the root skips `$` topics.
            return !(i == 0 && topic.starts_with('$'));
        }
        match levels.next() {
            None => return false,
            Some(level) => {
                if f == "+" {
                    if i == 0 && level.starts_with('$') {
                        return false;
                    }
                } else if f != level {
                    return false;
                }
            }
        }
    }
    levels.next().is_none()
}

impl Bridge {
    /// The bridge of `mappings` (checked: valid filters, source and target different).
    pub fn new(mappings: &[TopicMappingConfig]) -> Result<Bridge, MappingError> {
        let limits = Limits::mqtt_3_1_1();
        let mut out = Vec::with_capacity(mappings.len());
        for m in mappings {
            let error = |reason: String| MappingError {
                topic: m.topic.clone(),
                reason,
            };
            validate_topic_filter(&m.topic, &limits)
                .map_err(|e: TopicError| error(e.to_string()))?;
            if m.source == m.target {
                return Err(error("source and target are the same".into()));
            }
            out.push(Mapping {
                levels: m.topic.split('/').map(str::to_owned).collect(),
                source: m.source,
                target: m.target,
                prefix: m.target_topic_prefix.clone().unwrap_or_default(),
            });
        }
        Ok(Bridge { mappings: out })
    }

    /// The topic filters of mappings whose source is `source` (what the bridge must subscribe to
    /// there).
    pub fn filters_from(&self, source: BridgeEndpoint) -> Vec<String> {
        let mut filters: Vec<String> = self
            .mappings
            .iter()
            .filter(|m| m.source == source)
            .map(|m| m.levels.join("/"))
            .collect();
        filters.sort();
        filters.dedup();
        filters
    }

    /// Where a message on `topic`, now at `source` after having been at `visited`, goes next:
    /// one relay per target (the first matching mapping's prefix wins), never to a visited
    /// endpoint, in the order LocalMqtt, Pubsub, IotCore.
    pub fn relays(
        &self,
        source: BridgeEndpoint,
        visited: Visited,
        topic: &str,
        qos: QoS,
    ) -> Vec<Relay> {
        let visited = visited.with(source);
        let mut chosen: Vec<(BridgeEndpoint, &str)> = Vec::new();
        for m in &self.mappings {
            if m.source != source
                || visited.contains(m.target)
                || chosen.iter().any(|(t, _)| *t == m.target)
                || !matches(&m.levels, topic)
            {
                continue;
            }
            chosen.push((m.target, m.prefix.as_str()));
        }
        chosen.sort_by_key(|(target, _)| *target);
        let all = chosen
            .iter()
            .fold(visited, |set, (target, _)| set.with(*target));
        chosen
            .into_iter()
            .map(|(target, prefix)| Relay {
                target,
                topic: format!("{prefix}{topic}"),
                qos: if target == BridgeEndpoint::IotCore {
                    QoS::AtLeastOnce
                } else {
                    qos
                },
                visited: all,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::edge::BridgeEndpoint::{IotCore, LocalMqtt, Pubsub};

    fn mapping(topic: &str, source: BridgeEndpoint, target: BridgeEndpoint) -> TopicMappingConfig {
        TopicMappingConfig {
            topic: topic.into(),
            source,
            target,
            target_topic_prefix: None,
        }
    }

    #[test]
    fn filters_match_as_mqtt_does() {
        let f = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        assert!(matches(&f("a/+/c"), "a/b/c"));
        assert!(!matches(&f("a/+/c"), "a/b/c/d"));
        assert!(matches(&f("a/#"), "a"));
        assert!(matches(&f("a/#"), "a/b/c"));
        assert!(!matches(&f("#"), "$aws/things/x"));
        assert!(!matches(&f("+/things/x"), "$aws/things/x"));
        assert!(matches(
            &f("$aws/things/+/shadow/#"),
            "$aws/things/x/shadow/update"
        ));
    }

    #[test]
    fn overlapping_mappings_both_ways_never_loop() {
        // The same topic mapped every way there is.
        let all = [LocalMqtt, Pubsub, IotCore];
        let mut mappings = Vec::new();
        for s in all {
            for t in all {
                if s != t {
                    mappings.push(mapping("x/#", s, t));
                }
            }
        }
        let bridge = Bridge::new(&mappings).unwrap();
        for start in all {
            // Follow every hop: each endpoint is reached at most once.
            let mut reached = vec![start];
            let mut frontier = vec![(start, Visited::at(start))];
            while let Some((at, visited)) = frontier.pop() {
                for relay in bridge.relays(at, visited, "x/1", QoS::AtMostOnce) {
                    assert!(
                        !reached.contains(&relay.target),
                        "{start:?} reached {:?} twice",
                        relay.target
                    );
                    reached.push(relay.target);
                    frontier.push((relay.target, relay.visited));
                }
            }
            assert_eq!(reached.len(), 3);
        }
    }

    #[test]
    fn prefixes_and_qos_towards_the_cloud() {
        let mut m = mapping("cars/#", LocalMqtt, IotCore);
        m.target_topic_prefix = Some("edge/core-1/".into());
        let bridge = Bridge::new(&[m]).unwrap();
        let relays = bridge.relays(LocalMqtt, Visited::at(LocalMqtt), "cars/a", QoS::AtMostOnce);
        assert_eq!(relays[0].topic, "edge/core-1/cars/a");
        assert_eq!(relays[0].qos, QoS::AtLeastOnce);
        assert_eq!(bridge.filters_from(LocalMqtt), ["cars/#"]);
        assert!(bridge.filters_from(IotCore).is_empty());
    }

    #[test]
    fn bad_mappings_are_refused() {
        assert!(Bridge::new(&[mapping("a/#/b", LocalMqtt, IotCore)]).is_err());
        assert!(Bridge::new(&[mapping("a", IotCore, IotCore)]).is_err());
    }
}
