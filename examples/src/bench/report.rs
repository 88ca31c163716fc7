//! The results of a run: one [`Report`] value, written as JSON (`--json FILE`) and summarised on
//! stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::error::BenchError;
use super::latency::LatencySummary;
use super::options::{BenchOptions, Scenario};
use super::process::BrokerUsage;

/// Most error texts kept in a report (counts by kind are always complete).
pub const MAX_ERROR_TEXTS: usize = 20;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The broker's name as given with `--label`.
    pub label: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The settings it ran with.
    pub settings: Settings,
    /// Connections opened and failed.
    pub connections: Failures,
    /// Message counts and rates (pairs, fan-out, fan-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageCounts>,
    /// Latency: send to arrival (messages), connect to CONNACK (connect burst), request to
    /// `/update/accepted` (shadow).
    pub latency: LatencySummary,
    /// The broker's memory and CPU, when `--broker-pid` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerUsage>,
    /// Idle connections held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleResult>,
    /// The connect burst.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<BurstResult>,
    /// Shadow updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowResult>,
}

/// The settings of a run, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Clients.
    pub clients: usize,
    /// Things (shadow).
    pub things: usize,
    /// Most updates per second to one thing (shadow).
    pub thing_rate: f64,
    /// Publish QoS.
    pub qos: u8,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// Total messages per second, `null` for open loop.
    pub rate: Option<f64>,
    /// QoS 1 window per publisher.
    pub inflight: u16,
    /// Measured seconds.
    pub duration_secs: f64,
    /// Warm-up seconds.
    pub warmup_secs: f64,
    /// Over TLS.
    pub tls: bool,
    /// `host:port`.
    pub target: String,
}

impl Settings {
    /// The settings of `options`.
    pub fn of(options: &BenchOptions) -> Settings {
        Settings {
            clients: options.clients,
            things: options.things,
            thing_rate: options.thing_rate,
            qos: options.qos,
            payload_bytes: options.payload,
            rate: options.rate,
            inflight: options.inflight,
            duration_secs: options.duration.as_secs_f64(),
            warmup_secs: options.warmup.as_secs_f64(),
            tls: options.tls.is_some(),
            target: format!("{}:{}", options.host, options.port),
        }
    }
}

/// Connections attempted and what went wrong, counted by kind, with the first few texts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failures {
    /// Connections attempted.
    pub attempted: u64,
    /// Connections that got an accepting CONNACK.
    pub connected: u64,
    /// Errors by kind (connect, refused, closed, timeout, ...), during set-up or the run.
    pub errors: BTreeMap<String, u64>,
    /// The first few error texts.
    pub first_errors: Vec<String>,
}

impl Failures {
    /// Counts `error`.
    pub fn record(&mut self, error: &BenchError) {
        *self.errors.entry(error.kind().to_owned()).or_default() += 1;
        if self.first_errors.len() < MAX_ERROR_TEXTS {
            self.first_errors.push(error.to_string());
        }
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: Failures) {
        self.attempted += other.attempted;
        self.connected += other.connected;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        let room = MAX_ERROR_TEXTS.saturating_sub(self.first_errors.len());
        self.first_errors
            .extend(other.first_errors.into_iter().take(room));
    }

    /// Errors of every kind.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Messages of a publish/subscribe scenario.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MessageCounts {
    /// Publishes written.
    pub sent: u64,
    /// QoS 1 publishes the broker acknowledged.
    pub acked: u64,
    /// QoS 1 publishes still unacknowledged when the run ended (not counted as lost).
    pub unacked_at_end: u64,
    /// Deliveries received, over all subscribers (duplicates excluded).
    pub received: u64,
    /// Deliveries expected: sent (QoS 0) or acknowledged (QoS 1) times the subscribers of each.
    pub expected: u64,
    /// Seconds of the measured window.
    pub measured_secs: f64,
    /// Publishes per second in the window.
    pub sent_per_sec: f64,
    /// Deliveries per second in the window, over all subscribers.
    pub delivered_per_sec: f64,
    /// Expected deliveries that never came (for QoS 1 a broken promise; for QoS 0 dropped).
    pub lost: u64,
    /// Deliveries of a message already received.
    pub duplicated: u64,
    /// Deliveries after a later message of the same publisher.
    pub reordered: u64,
    /// Deliveries without a stamp, or from an unknown publisher.
    pub foreign: u64,
}

/// Idle connections.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct IdleResult {
    /// Connections asked for.
    pub requested: u64,
    /// Connections that got a CONNACK.
    pub connected: u64,
    /// Connections that still answered a PINGREQ after the hold.
    pub held: u64,
    /// Broker RSS before the first connect, bytes.
    pub rss_before_bytes: u64,
    /// Broker RSS with all connections open, bytes.
    pub rss_after_bytes: u64,
    /// (after − before) / connected, bytes.
    pub bytes_per_connection: f64,
}

/// A connect burst.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct BurstResult {
    /// Connects asked for (all started at once).
    pub requested: u64,
    /// Connects that got an accepting CONNACK.
    pub connected: u64,
    /// From the first connect to the last CONNACK, seconds.
    pub seconds: f64,
    /// connected / seconds.
    pub connects_per_sec: f64,
}

/// Shadow updates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShadowResult {
    /// Things updated.
    pub things: u64,
    /// Update requests published.
    pub requests: u64,
    /// `/update/accepted` answers.
    pub accepted: u64,
    /// `/update/rejected` answers by code.
    pub rejected: BTreeMap<String, u64>,
    /// Accepted answers per second in the measured window.
    pub accepted_per_sec: f64,
    /// Acknowledged requests that got no answer by the end.
    pub unanswered: u64,
    /// Answers to a request already answered, or to none we sent.
    pub duplicated: u64,
}

impl Report {
    /// A short human summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {:?} against {}: {} of {} connected",
            self.label,
            self.scenario,
            self.settings.target,
            self.connections.connected,
            self.connections.attempted
        );
        if let Some(m) = &self.messages {
            let _ = writeln!(
                out,
                "  sent {} ({:.0}/s), received {} ({:.0}/s delivered), lost {}, duplicated {}, reordered {}, unacked at end {}",
                m.sent,
                m.sent_per_sec,
                m.received,
                m.delivered_per_sec,
                m.lost,
                m.duplicated,
                m.reordered,
                m.unacked_at_end
            );
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                out,
                "  idle: {} connected, {} held, {:.0} bytes per connection",
                i.connected, i.held, i.bytes_per_connection
            );
        }
        if let Some(b) = &self.burst {
            let _ = writeln!(
                out,
                "  burst: {} of {} in {:.3} s = {:.0} connects/s",
                b.connected, b.requested, b.seconds, b.connects_per_sec
            );
        }
        if let Some(s) = &self.shadow {
            let _ = writeln!(
                out,
                "  shadow: {} requests, {} accepted ({:.0}/s), rejected {:?}, unanswered {}",
                s.requests, s.accepted, s.accepted_per_sec, s.rejected, s.unanswered
            );
        }
        let l = &self.latency;
        let _ = writeln!(
            out,
            "  latency µs: p50 {} p90 {} p99 {} p99.9 {} max {} ({} values)",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.count
        );
        if let Some(b) = &self.broker {
            let _ = writeln!(
                out,
                "  broker pid {}: rss peak {:.1} MiB, cpu {:.0}%",
                b.pid,
                b.rss_peak_bytes as f64 / 1048576.0,
                b.cpu_percent
            );
        }
        if self.connections.total_errors() > 0 {
            let _ = writeln!(out, "  errors: {:?}", self.connections.errors);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_by_kind_and_keep_few_texts() {
        let mut f = Failures::default();
        for _ in 0..MAX_ERROR_TEXTS + 5 {
            f.record(&BenchError::Closed);
        }
        let mut g = Failures::default();
        g.record(&BenchError::Refused(5));
        f.merge(g);
        assert_eq!(f.errors.get("closed"), Some(&(MAX_ERROR_TEXTS as u64 + 5)));
        assert_eq!(f.total_errors(), MAX_ERROR_TEXTS as u64 + 6);
        assert_eq!(f.first_errors.len(), MAX_ERROR_TEXTS);
    }

    #[test]
    fn a_report_serializes_without_empty_sections() {
        let options = BenchOptions::new(Scenario::Idle, "127.0.0.1", 1);
        let report = Report {
            label: "x".into(),
            scenario: Scenario::Idle,
            settings: Settings::of(&options),
            connections: Failures::default(),
            messages: None,
            latency: LatencySummary::default(),
            broker: None,
            idle: Some(IdleResult::default()),
            burst: None,
            shadow: None,
        };
        let json = serde_json::to_value(&report).ok();
        assert!(json.as_ref().is_some_and(|j| j["scenario"] == "idle"
            && j.get("messages").is_none()
            && j["idle"]["held"] == 0));
        assert!(report.summary().contains("idle"));
    }
}
