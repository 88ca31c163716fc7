//! The reserved-topic services of the cloud broker: the Device Shadow service on
//! `$aws/things/…/shadow/…`, durable through the store. Basic Ingest (`$aws/rules/…`) has no rules
//! engine behind it here, so its messages go nowhere, as with a rule that does not exist.

use iot_broker_core::codec::QoS;
use iot_broker_core::message::Message;
use iot_broker_core::service::{ReservedKind, ReservedRequest, ReservedTopicService};
use iot_shadow::{ShadowMessage, ShadowService};

use crate::store::DurableShadows;

/// A message of the shadow service as the broker routes it: QoS 1, not retained.
pub fn shadow_message(message: ShadowMessage) -> Message {
    Message::new(
        message.topic.as_str(),
        message.payload.into_bytes(),
        QoS::AtLeastOnce,
        false,
    )
}

/// Shadow requests answered by `iot-shadow`, stored in the broker's store.
#[derive(Debug)]
pub struct CloudServices {
    shadows: ShadowService<DurableShadows>,
    updates: u64,
}

impl CloudServices {
    /// Services over the durable shadows.
    pub fn new(shadows: DurableShadows) -> Self {
        CloudServices {
            shadows: ShadowService::new(shadows),
            updates: 0,
        }
    }

    /// The shadow service (for the REST reads).
    pub fn shadows(&mut self) -> &mut ShadowService<DurableShadows> {
        &mut self.shadows
    }

    /// Shadow requests handled so far.
    pub fn shadow_requests(&self) -> u64 {
        self.updates
    }
}

impl ReservedTopicService for CloudServices {
    fn handle(&mut self, request: &ReservedRequest<'_>, now_ms: u64) -> Vec<Message> {
        match request.kind {
            ReservedKind::Shadow => {
                self.updates += 1;
                self.shadows
                    .handle_publish(request.topic, request.payload, now_ms)
                    .unwrap_or_default()
                    .into_iter()
                    .map(shadow_message)
                    .collect()
            }
            ReservedKind::BasicIngest => Vec::new(),
        }
    }
}
