//! The scenarios: [`flow`] (pairs, fan-out, fan-in), [`idle`], [`burst`] (connect burst) and
//! [`shadow`]. Each returns a [`ScenarioOutcome`]; [`topology`] says who publishes where and who
//! listens, as data.

pub mod burst;
pub mod flow;
pub mod idle;
pub mod shadow;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::connection::Connection;
use super::error::BenchError;
use super::latency::LatencySummary;
use super::options::Scenario;
use super::report::{BurstResult, Failures, IdleResult, MessageCounts, ShadowResult};
use super::transport::Target;

/// Keep-alive every benchmark client asks for: long enough that no run needs a PINGREQ.
pub const KEEP_ALIVE_SECS: u16 = 900;

/// What a scenario measured, before the broker's usage is added.
#[derive(Debug, Default)]
pub struct ScenarioOutcome {
    /// Connections and errors.
    pub connections: Failures,
    /// Message counts.
    pub messages: Option<MessageCounts>,
    /// Latencies.
    pub latency: LatencySummary,
    /// Idle result.
    pub idle: Option<IdleResult>,
    /// Burst result.
    pub burst: Option<BurstResult>,
    /// Shadow result.
    pub shadow: Option<ShadowResult>,
    /// The measured window, Unix microseconds (broker CPU is averaged over it).
    pub window_us: (u64, u64),
}

/// One publisher: its index (in the stamp) and topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherPlan {
    /// Index, 0-based.
    pub id: u32,
    /// Topic it publishes to.
    pub topic: String,
}

/// One subscriber: its filter and the publishers whose messages it must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberPlan {
    /// Index, 0-based.
    pub id: u32,
    /// Its one topic filter.
    pub filter: String,
    /// Publisher indexes it hears.
    pub feeds: Vec<u32>,
}

/// Who publishes and who subscribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Publishers.
    pub publishers: Vec<PublisherPlan>,
    /// Subscribers.
    pub subscribers: Vec<SubscriberPlan>,
}

/// The topology of a message scenario with `n` clients; topics live under `bench/{tag}/` so runs
/// never hear each other. `None` for scenarios that publish nothing this way.
///
/// ```
/// use iot_examples::bench::options::Scenario;
/// use iot_examples::bench::scenario::topology;
/// let fanin = topology(Scenario::Fanin, 3, "t1").unwrap();
/// assert_eq!(fanin.publishers.len(), 3);
/// assert_eq!(fanin.subscribers[0].filter, "bench/t1/in/+");
/// assert_eq!(fanin.subscribers[0].feeds, [0, 1, 2]);
/// ```
pub fn topology(scenario: Scenario, n: usize, tag: &str) -> Option<Topology> {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    match scenario {
        Scenario::Pairs => Some(Topology {
            publishers: (0..n)
                .map(|id| PublisherPlan {
                    id,
                    topic: format!("bench/{tag}/pair/{id}"),
                })
                .collect(),
            subscribers: (0..n)
                .map(|id| SubscriberPlan {
                    id,
                    filter: format!("bench/{tag}/pair/{id}"),
                    feeds: vec![id],
                })
                .collect(),
        }),
        Scenario::Fanout => Some(Topology {
            publishers: vec![PublisherPlan {
                id: 0,
                topic: format!("bench/{tag}/out"),
            }],
            subscribers: (0..n)
                .map(|id| SubscriberPlan {
                    id,
                    filter: format!("bench/{tag}/out"),
                    feeds: vec![0],
                })
                .collect(),
        }),
        Scenario::Fanin => Some(Topology {
            publishers: (0..n)
                .map(|id| PublisherPlan {
                    id,
                    topic: format!("bench/{tag}/in/{id}"),
                })
                .collect(),
            subscribers: vec![SubscriberPlan {
                id: 0,
                filter: format!("bench/{tag}/in/+"),
                feeds: (0..n).collect(),
            }],
        }),
        Scenario::Idle | Scenario::ConnectBurst | Scenario::Shadow => None,
    }
}

/// A tag for client ids and topics that differs between runs (process id and time).
pub fn run_tag(now_us: u64) -> String {
    format!(
        "{:x}{:x}",
        std::process::id() & 0xffff,
        (now_us / 1000) & 0xff_ffff
    )
}

/// How long setting up `n` connections may take in all.
pub fn setup_deadline(n: usize) -> Instant {
    Instant::now()
        + Duration::from_secs(30)
        + Duration::from_millis(u64::try_from(n).unwrap_or(0) * 5)
}

/// Connects every client id (at most `concurrency` under way at once), before `deadline`.
/// Results are in the order of `client_ids`.
pub async fn connect_many(
    target: &Target,
    client_ids: Vec<String>,
    concurrency: usize,
    deadline: Instant,
) -> Vec<Result<Connection, BenchError>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let count = client_ids.len();
    for (index, id) in client_ids.into_iter().enumerate() {
        let target = target.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = Connection::connect(&target, &id, KEEP_ALIVE_SECS, deadline).await;
            (index, result)
        });
    }
    let mut results: Vec<Option<Result<Connection, BenchError>>> =
        (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
            Err(error) => tracing::warn!(%error, "a connect task failed"),
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(BenchError::Task("connect task lost".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_fanout_shapes() {
        let pairs = topology(Scenario::Pairs, 2, "x");
        assert!(
            pairs
                .as_ref()
                .is_some_and(|t| t.publishers[1].topic == t.subscribers[1].filter
                    && t.subscribers[1].feeds == [1])
        );
        let out = topology(Scenario::Fanout, 100, "x");
        assert!(
            out.as_ref()
                .is_some_and(|t| t.publishers.len() == 1 && t.subscribers.len() == 100)
        );
        assert_eq!(topology(Scenario::Idle, 5, "x"), None);
    }

    #[test]
    fn topics_fit_aws_limits() {
        let tag = run_tag(u64::MAX);
        for scenario in [Scenario::Pairs, Scenario::Fanout, Scenario::Fanin] {
            let t = topology(scenario, 100_000, &tag);
            let limits = mqtt_codec::Limits::aws_iot();
            assert!(t.is_some_and(|t| {
                t.publishers
                    .iter()
                    .all(|p| mqtt_codec::validate_topic_name(&p.topic, &limits).is_ok())
                    && t.subscribers
                        .iter()
                        .all(|s| mqtt_codec::validate_topic_filter(&s.filter, &limits).is_ok())
            }));
        }
    }
}
