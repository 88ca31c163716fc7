//! Local handlers: user code the core runs on matching topics, the role Lambda functions and
//! components play on a Greengrass core. Sans-IO: a handler is given messages and the time and
//! returns what it publishes; the core runs it on its engine thread and routes what it
//! publishes through the bridge as coming from `Pubsub`.
//!
//! A handler must be quick (it runs between the local broker's turns); what it publishes in one
//! call is bounded by [`MAX_OUTPUT_PER_CALL`] (more is dropped and counted).

use bytes::Bytes;
use mqtt_codec::QoS;
use serde_json::{Map, Value};

/// Most messages one handler call may publish; the rest are dropped and counted.
pub const MAX_OUTPUT_PER_CALL: usize = 1000;

/// A message a handler publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerMessage {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS.
    pub qos: QoS,
}

/// A handler's report about a thing, for the `reported` section of its classic shadow on the
/// core (synced to the cloud like any local change).
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowReport {
    /// The thing.
    pub thing: String,
    /// The reported keys and values.
    pub reported: Map<String, Value>,
}

/// What a handler call publishes and reports (bounded together by [`MAX_OUTPUT_PER_CALL`]).
#[derive(Debug, Default)]
pub struct HandlerOutput {
    messages: Vec<HandlerMessage>,
    reports: Vec<ShadowReport>,
    dropped: u64,
}

impl HandlerOutput {
    /// Publish `payload` on `topic` (through the bridge's `Pubsub` mappings).
    pub fn publish(&mut self, topic: impl Into<String>, payload: impl Into<Bytes>, qos: QoS) {
        if self.messages.len() + self.reports.len() >= MAX_OUTPUT_PER_CALL {
            self.dropped += 1;
            return;
        }
        self.messages.push(HandlerMessage {
            topic: topic.into(),
            payload: payload.into(),
            qos,
        });
    }

    /// Report `reported` in the classic shadow of `thing` on the core.
    pub fn report(&mut self, thing: impl Into<String>, reported: Map<String, Value>) {
        if self.messages.len() + self.reports.len() >= MAX_OUTPUT_PER_CALL {
            self.dropped += 1;
            return;
        }
        self.reports.push(ShadowReport {
            thing: thing.into(),
            reported,
        });
    }

    /// Takes what was reported.
    pub fn take_reports(&mut self) -> Vec<ShadowReport> {
        std::mem::take(&mut self.reports)
    }

    /// Takes what was published, and how many were dropped over the bound.
    pub fn take(&mut self) -> (Vec<HandlerMessage>, u64) {
        (
            std::mem::take(&mut self.messages),
            std::mem::take(&mut self.dropped),
        )
    }
}

/// User code on the core.
///
/// ```
/// use iot_examples::edge::handlers::{HandlerOutput, LocalHandler};
/// /// Echoes every ping.
/// struct Pong;
/// impl LocalHandler for Pong {
///     fn name(&self) -> &str { "pong" }
///     fn filters(&self) -> Vec<String> { vec!["ping/+".into()] }
///     fn on_message(&mut self, topic: &str, payload: &[u8], _now_ms: u64, out: &mut HandlerOutput) {
///         out.publish(topic.replacen("ping", "pong", 1), payload.to_vec(), mqtt_codec::QoS::AtMostOnce);
///     }
/// }
/// let mut out = HandlerOutput::default();
/// Pong.on_message("ping/1", b"hi", 0, &mut out);
/// assert_eq!(out.take().0[0].topic, "pong/1");
/// ```
pub trait LocalHandler: Send {
    /// Its name, for logs and metrics.
    fn name(&self) -> &str;
    /// The topic filters it handles (on the handlers' local publish/subscribe).
    fn filters(&self) -> Vec<String>;
    /// A message on one of its filters.
    fn on_message(&mut self, topic: &str, payload: &[u8], now_ms: u64, out: &mut HandlerOutput);
    /// When it wants [`on_timeout`](Self::on_timeout) next (Unix ms).
    fn poll_timeout(&self) -> Option<u64> {
        None
    }
    /// Its deadline came.
    fn on_timeout(&mut self, now_ms: u64, out: &mut HandlerOutput) {
        let _ = (now_ms, out);
    }
}
