//! A connect burst: `--clients` connects started at once, each timed from its TCP connect to its
//! CONNACK; the rate is the connects that succeeded over the time from the first start to the
//! last CONNACK. Every connection is then closed with DISCONNECT.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::time::Instant;

use super::super::clock::unix_us;
use super::super::connection::Connection;
use super::super::latency::Latencies;
use super::super::options::BenchOptions;
use super::super::report::{BurstResult, Failures};
use super::super::transport::Target;
use super::{KEEP_ALIVE_SECS, ScenarioOutcome};

/// How long one connect of the burst may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the connect burst.
pub async fn run(options: &BenchOptions, target: &Target, tag: &str) -> ScenarioOutcome {
    let n = options.clients;
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let target = target.clone();
        let barrier = barrier.clone();
        let id = format!("bench-{tag}-burst{i}");
        tasks.spawn(async move {
            barrier.wait().await;
            let started = Instant::now();
            let result =
                Connection::connect(&target, &id, KEEP_ALIVE_SECS, started + CONNECT_TIMEOUT).await;
            let done = Instant::now();
            (started, done, result)
        });
    }
    barrier.wait().await;
    let from_us = unix_us();
    let first = Instant::now();
    let mut last = first;
    let mut latencies = Latencies::new();
    let mut failures = Failures {
        attempted: n as u64,
        ..Failures::default()
    };
    let mut open = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((started, done, Ok(connection))) => {
                latencies.record(
                    u64::try_from(done.duration_since(started).as_micros()).unwrap_or(u64::MAX),
                );
                last = last.max(done);
                open.push(connection);
            }
            Ok((_, _, Err(error))) => failures.record(&error),
            Err(error) => {
                failures.record(&super::super::error::BenchError::Task(error.to_string()))
            }
        }
    }
    let to_us = unix_us();
    failures.connected = open.len() as u64;
    let seconds = last.duration_since(first).as_secs_f64();
    let connected = failures.connected;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closing = tokio::task::JoinSet::new();
    for c in open {
        closing.spawn(c.disconnect(deadline));
    }
    while closing.join_next().await.is_some() {}
    ScenarioOutcome {
        connections: failures,
        latency: latencies.summary(),
        burst: Some(BurstResult {
            requested: n as u64,
            connected,
            seconds,
            connects_per_sec: if seconds > 0.0 {
                connected as f64 / seconds
            } else {
                0.0
            },
        }),
        window_us: (from_us, to_us),
        ..ScenarioOutcome::default()
    }
}
