//! What the edge core's local broker hands its owner: every ordinary message it accepted
//! ([`ReservedTopicService::observe`]). Under the Standard profile nothing is reserved, so the
//! Device Shadow requests of local devices (`$aws/things/{thing}/shadow/…`) arrive here too and
//! are answered by the core's local shadow service, as Greengrass's shadow manager answers them
//! through its bridge. Messages the bridge must relay are collected for the core's program,
//! which acts on them in the same engine turn, before the commit.

use bytes::Bytes;
use iot_broker_core::codec::QoS;
use iot_broker_core::message::Message;
use iot_broker_core::service::{ReservedRequest, ReservedTopicService};
use iot_shadow::{Operation, ShadowKey, ShadowService, TopicKind, parse_topic};

use super::bridge::{Bridge, BridgeEndpoint, Relay, Visited};
use crate::store::DurableShadows;

/// Observed work waiting for the program, at most this many items per turn; beyond it relays are
/// dropped and counted (the turn's own events are bounded too, so this is a safety net).
pub const MAX_OBSERVED: usize = 65_536;

/// Something the program must do after the broker took a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Relay a message (to the cloud or to the handlers).
    Relay {
        /// Where, under which topic and QoS, and where the message has been.
        relay: Relay,
        /// The payload.
        payload: Bytes,
        /// The QoS it was published with (the spool's eviction policy is by it).
        original_qos: QoS,
    },
    /// A local shadow changed (an accepted update or delete): sync it.
    ShadowChanged(ShadowKey),
}

/// The local broker's services: the local shadows and the bridge's tap.
#[derive(Debug)]
pub struct EdgeServices {
    shadows: ShadowService<DurableShadows>,
    bridge: Bridge,
    /// Where the message being published by the program has been (`None`: a device's message).
    injecting: Option<Visited>,
    observed: Vec<Observed>,
    dropped: u64,
    shadow_requests: u64,
}

impl EdgeServices {
    /// Services over the core's durable shadows and its bridge.
    pub fn new(shadows: ShadowService<DurableShadows>, bridge: Bridge) -> Self {
        EdgeServices {
            shadows,
            bridge,
            injecting: None,
            observed: Vec::new(),
            dropped: 0,
            shadow_requests: 0,
        }
    }

    /// The local shadow service.
    pub fn shadows(&mut self) -> &mut ShadowService<DurableShadows> {
        &mut self.shadows
    }

    /// The bridge.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The next publish into the local broker comes from the bridge, having been at `visited`.
    pub fn inject(&mut self, visited: Visited) {
        self.injecting = Some(visited);
    }

    /// Takes the work collected since the last call.
    pub fn take_observed(&mut self) -> Vec<Observed> {
        std::mem::take(&mut self.observed)
    }

    /// Relays dropped over [`MAX_OBSERVED`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Local shadow requests answered.
    pub fn shadow_requests(&self) -> u64 {
        self.shadow_requests
    }

    fn push(&mut self, observed: Observed) {
        if self.observed.len() >= MAX_OBSERVED {
            self.dropped += 1;
            tracing::warn!("edge: observed work over its bound; a relay was dropped");
        } else {
            self.observed.push(observed);
        }
    }
}

impl ReservedTopicService for EdgeServices {
    fn handle(&mut self, _request: &ReservedRequest<'_>, _now_ms: u64) -> Vec<Message> {
        // The Standard profile reserves nothing.
        Vec::new()
    }

    fn observe(&mut self, message: &Message, client_id: Option<&str>, now_ms: u64) -> Vec<Message> {
        let visited = match self.injecting.take() {
            Some(visited) => visited,
            None => Visited::at(BridgeEndpoint::LocalMqtt),
        };
        let mut answers = Vec::new();
        // Only devices' requests are answered here; the bridge's own publishes are relays.
        if client_id.is_some()
            && let Some(topic) = parse_topic(&message.topic)
            && let TopicKind::Request(operation) = topic.kind
        {
            self.shadow_requests += 1;
            let out = self
                .shadows
                .handle_publish(&message.topic, &message.payload, now_ms)
                .unwrap_or_default();
            let changed = out.iter().any(|m| {
                parse_topic(&m.topic).is_some_and(|t| {
                    t.kind == TopicKind::Accepted(operation) && operation != Operation::Get
                })
            });
            answers = out
                .into_iter()
                .map(|m| {
                    Message::new(
                        m.topic.as_str(),
                        m.payload.into_bytes(),
                        QoS::AtLeastOnce,
                        false,
                    )
                })
                .collect();
            if changed {
                self.push(Observed::ShadowChanged(topic.key));
            }
        }
        let relays = self.bridge.relays(
            BridgeEndpoint::LocalMqtt,
            visited,
            &message.topic,
            message.qos,
        );
        for relay in relays {
            self.push(Observed::Relay {
                relay,
                payload: message.payload.clone(),
                original_qos: message.qos,
            });
        }
        answers
    }
}
