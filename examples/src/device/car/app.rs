//! A car as a [`DeviceApp`]: telemetry every second on `cars/{thing}/telemetry`, its settings in
//! its classic shadow (it obeys desired state within its schema and reports back), and commands
//! on `cars/{thing}/commands` answered on `cars/{thing}/commands/result`.
//!
//! Command payloads are `{"id": "…", "command": "honk" | "flash" | "lock" | "unlock"}`; the result
//! is `{"id": …, "command": …, "status": "done" | "rejected", "reason"?: …, "at": epoch ms}`. A
//! payload that is not such an object is rejected with `"id": null`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iot_shadow::{DeviceShadow, ShadowEvent, ShadowKey, ShadowRequest};
use mqtt_codec::QoS;
use serde_json::{Map, Value, json};

use super::model::{Applied, CarModel, CommandOutcome};
use crate::device::{ClientSession, DeviceApp, InboundMessage, SessionEvent};

/// The reported key an edge core writes its range prediction for the car in.
pub const PREDICTED_RANGE_KEY: &str = "predictedRangeKm";

/// Counters shared by every car of a fleet (for its periodic report).
#[derive(Debug, Default)]
pub struct FleetCounters {
    /// Cars connected now.
    pub connected: AtomicU64,
    /// Telemetry messages handed to the session.
    pub telemetry: AtomicU64,
    /// QoS 1 publishes the broker acknowledged.
    pub delivered: AtomicU64,
    /// Shadow deltas applied.
    pub deltas: AtomicU64,
    /// Commands answered.
    pub commands: AtomicU64,
    /// Publishes the session refused (queue full) or dropped.
    pub refused: AtomicU64,
}

/// The car application.
#[derive(Debug)]
pub struct Car {
    thing: String,
    model: CarModel,
    shadow: DeviceShadow,
    telemetry_topic: String,
    commands_topic: String,
    result_topic: String,
    telemetry_qos: QoS,
    every_ms: u64,
    next_telemetry_ms: u64,
    last_step_ms: Option<u64>,
    /// The refusals last reported: the same refusal again (the service repeats the delta after
    /// every accepted report) is not reported again, or car and service would loop.
    last_refusal: Option<(String, Value)>,
    connected: bool,
    counters: Arc<FleetCounters>,
}

/// Why a car could not be made.
#[derive(Debug, thiserror::Error)]
#[error("car {thing}: {reason}")]
pub struct CarError {
    /// The thing name.
    pub thing: String,
    /// What was wrong.
    pub reason: String,
}

impl Car {
    /// The car `thing`, placed on its route by `seed`, publishing telemetry every `every_ms` at
    /// `telemetry_qos`. Subscribes `session` to its shadow and command topics.
    pub fn new(
        thing: &str,
        seed: u64,
        every_ms: u64,
        telemetry_qos: QoS,
        session: &mut ClientSession,
        counters: Arc<FleetCounters>,
    ) -> Result<Car, CarError> {
        let error = |reason: String| CarError {
            thing: thing.to_owned(),
            reason,
        };
        let model = CarModel::new(seed);
        let shadow = DeviceShadow::new(ShadowKey::classic(thing), thing)
            .map_err(|e| error(e.to_string()))?
            .with_reported(model.reported())
            // An edge core reports its range prediction about the car here.
            .leaving_reported([PREDICTED_RANGE_KEY]);
        let commands_topic = format!("cars/{thing}/commands");
        let mut filters: Vec<(String, QoS)> = shadow
            .subscriptions()
            .into_iter()
            .map(|topic| (topic, QoS::AtLeastOnce))
            .collect();
        filters.push((commands_topic.clone(), QoS::AtLeastOnce));
        let filters: Vec<(&str, QoS)> = filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
        session
            .subscribe(&filters, 0)
            .map_err(|e| error(e.to_string()))?;
        Ok(Car {
            thing: thing.to_owned(),
            model,
            shadow,
            telemetry_topic: format!("cars/{thing}/telemetry"),
            result_topic: format!("{commands_topic}/result"),
            commands_topic,
            telemetry_qos,
            every_ms: every_ms.max(1),
            next_telemetry_ms: 0,
            last_step_ms: None,
            last_refusal: None,
            connected: false,
            counters,
        })
    }

    /// The simulated car.
    pub fn model(&self) -> &CarModel {
        &self.model
    }

    /// The shadow helper.
    pub fn shadow(&self) -> &DeviceShadow {
        &self.shadow
    }

    fn publish(
        &self,
        session: &mut ClientSession,
        topic: &str,
        payload: String,
        qos: QoS,
        now: u64,
    ) {
        if session.publish(topic, payload, qos, false, now).is_err() {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn send(&self, session: &mut ClientSession, request: ShadowRequest, now: u64) {
        self.publish(
            session,
            &request.topic,
            request.payload,
            QoS::AtLeastOnce,
            now,
        );
    }

    fn on_shadow_events(
        &mut self,
        session: &mut ClientSession,
        events: Vec<ShadowEvent>,
        now: u64,
    ) {
        for event in events {
            match event {
                ShadowEvent::Delta { changes, .. } => {
                    self.counters.deltas.fetch_add(1, Ordering::Relaxed);
                    let applied = self.model.apply_desired(&changes);
                    self.report(session, applied, now);
                }
                ShadowEvent::Publish(request) => self.send(session, request, now),
                ShadowEvent::Rejected { code, message, .. } => {
                    tracing::warn!(thing = self.thing, code, message, "shadow request rejected");
                }
                _ => {}
            }
        }
    }

    /// Reports what a delta changed, and `lastError` as the module docs say.
    fn report(&mut self, session: &mut ClientSession, applied: Applied, now: u64) {
        let mut changes: Map<String, Value> = applied.applied;
        match applied.refused.first() {
            Some(refusal) => {
                let this = (refusal.key.clone(), refusal.value.clone());
                if self.last_refusal.as_ref() == Some(&this) && changes.is_empty() {
                    return; // reported already; the service repeats the delta, not news
                }
                changes.insert(
                    "lastError".into(),
                    json!({
                        "key": refusal.key,
                        "value": refusal.value,
                        "reason": refusal.reason,
                        "at": now,
                    }),
                );
                self.last_refusal = Some(this);
            }
            None => {
                if self
                    .shadow
                    .reported()
                    .get("lastError")
                    .is_some_and(|e| !e.is_null())
                {
                    changes.insert("lastError".into(), Value::Null);
                }
                self.last_refusal = None;
            }
        }
        if !changes.is_empty() {
            let request = self.shadow.report(&changes, now);
            self.send(session, request, now);
        }
    }

    fn on_command(&mut self, session: &mut ClientSession, message: &InboundMessage, now: u64) {
        self.counters.commands.fetch_add(1, Ordering::Relaxed);
        let parsed: Option<Map<String, Value>> = serde_json::from_slice(&message.payload).ok();
        let id = parsed
            .as_ref()
            .and_then(|m| m.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let command = parsed
            .as_ref()
            .and_then(|m| m.get("command"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let result = match command.as_deref().map(|c| (c, self.model.command(c))) {
            Some((c, CommandOutcome::Done { changed_state })) => {
                if changed_state {
                    let mut changes = Map::new();
                    let locked = self.model.reported().get("doorsLocked").cloned();
                    changes.insert("doorsLocked".into(), locked.unwrap_or(Value::Null));
                    let request = self.shadow.report(&changes, now);
                    self.send(session, request, now);
                }
                json!({"id": id, "command": c, "status": "done", "at": now})
            }
            Some((c, CommandOutcome::Unknown)) => json!({
                "id": id, "command": c, "status": "rejected",
                "reason": "unknown command: honk, flash, lock or unlock", "at": now,
            }),
            None => json!({
                "id": id, "command": Value::Null, "status": "rejected",
                "reason": "expected {\"id\": …, \"command\": …}", "at": now,
            }),
        };
        let topic = self.result_topic.clone();
        self.publish(session, &topic, result.to_string(), QoS::AtLeastOnce, now);
    }
}

impl DeviceApp for Car {
    fn on_event(&mut self, session: &mut ClientSession, event: SessionEvent, now: u64) {
        match event {
            SessionEvent::Connected { .. } => {
                if !self.connected {
                    self.counters.connected.fetch_add(1, Ordering::Relaxed);
                }
                self.connected = true;
                for request in self.shadow.on_connected(now) {
                    self.send(session, request, now);
                }
            }
            SessionEvent::Closed(_) => {
                if self.connected {
                    self.counters.connected.fetch_sub(1, Ordering::Relaxed);
                }
                self.connected = false;
            }
            SessionEvent::Delivered(_) => {
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::Message(message) => {
                if message.topic == self.commands_topic {
                    self.on_command(session, &message, now);
                } else {
                    match self
                        .shadow
                        .handle_message(&message.topic, &message.payload, now)
                    {
                        Ok(events) => self.on_shadow_events(session, events, now),
                        Err(error) => {
                            tracing::debug!(thing = self.thing, %error, "shadow message ignored")
                        }
                    }
                }
                if let Some(token) = message.ack {
                    session.ack(token, now);
                }
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<u64> {
        Some(match self.shadow.poll_timeout() {
            Some(at) => at.min(self.next_telemetry_ms),
            None => self.next_telemetry_ms,
        })
    }

    fn on_timeout(&mut self, session: &mut ClientSession, now: u64) {
        if self.shadow.poll_timeout().is_some_and(|at| at <= now) {
            for request in self.shadow.handle_timeout(now) {
                self.send(session, request, now);
            }
        }
        if now >= self.next_telemetry_ms {
            if let Some(last) = self.last_step_ms {
                self.model.step(now.saturating_sub(last));
            }
            self.last_step_ms = Some(now);
            let payload = self.model.telemetry(now).to_string();
            let topic = self.telemetry_topic.clone();
            self.publish(session, &topic, payload, self.telemetry_qos, now);
            self.counters.telemetry.fetch_add(1, Ordering::Relaxed);
            // The first tick comes at once; then every interval, without drift.
            self.next_telemetry_ms = if self.next_telemetry_ms == 0 {
                now + self.every_ms
            } else {
                (self.next_telemetry_ms + self.every_ms).max(now)
            };
        }
    }
}
