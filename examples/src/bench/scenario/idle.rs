//! Idle connections: open `--clients` connections (CONNECT, CONNACK, nothing else), hold them for
//! `--duration`, then ask each for a PINGRESP. Reports how many were held and the broker's
//! resident memory per connection (its RSS after minus before, over the connections made).

use std::time::Duration;

use tokio::time::Instant;

use super::super::clock::unix_us;
use super::super::connection::Connection;
use super::super::options::BenchOptions;
use super::super::process;
use super::super::report::{Failures, IdleResult};
use super::super::transport::Target;
use super::{ScenarioOutcome, connect_many, setup_deadline};

/// How long the broker gets to settle after the last connect before its memory is read.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Connections pinged at once after the hold.
const PING_CONCURRENCY: usize = 64;
/// How long the pings may take in all.
const PING_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the idle scenario.
pub async fn run(options: &BenchOptions, target: &Target, tag: &str) -> ScenarioOutcome {
    let rss = || {
        options
            .broker_pid
            .and_then(|pid| process::sample(pid, unix_us()))
            .map_or(0, |s| s.rss_bytes)
    };
    let rss_before = rss();
    let ids = (0..options.clients)
        .map(|i| format!("bench-{tag}-idle{i}"))
        .collect();
    let results = connect_many(
        target,
        ids,
        options.connect_concurrency,
        setup_deadline(options.clients),
    )
    .await;
    let mut failures = Failures {
        attempted: options.clients as u64,
        ..Failures::default()
    };
    let mut connections = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(mut c) => {
                c.shrink();
                connections.push(c);
            }
            Err(error) => failures.record(&error),
        }
    }
    failures.connected = connections.len() as u64;
    tokio::time::sleep(SETTLE).await;
    let rss_after = rss();
    let from_us = unix_us();
    tokio::time::sleep(options.duration).await;
    let to_us = unix_us();
    let (held, ping_failures) = ping_all(connections).await;
    failures.merge(ping_failures);
    let connected = failures.connected;
    ScenarioOutcome {
        connections: failures,
        idle: Some(IdleResult {
            requested: options.clients as u64,
            connected,
            held,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            bytes_per_connection: if connected > 0 {
                rss_after.saturating_sub(rss_before) as f64 / connected as f64
            } else {
                0.0
            },
        }),
        window_us: (from_us, to_us),
        ..ScenarioOutcome::default()
    }
}

/// PINGREQ on every connection; how many answered, and what failed. Connections are closed after.
async fn ping_all(connections: Vec<Connection>) -> (u64, Failures) {
    let deadline = Instant::now() + PING_DEADLINE;
    let mut chunks: Vec<Vec<Connection>> = (0..PING_CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, c) in connections.into_iter().enumerate() {
        if let Some(chunk) = chunks.get_mut(i % PING_CONCURRENCY) {
            chunk.push(c);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in chunks {
        tasks.spawn(async move {
            let mut held = 0u64;
            let mut failures = Failures::default();
            for mut c in chunk {
                match c.ping(deadline).await {
                    Ok(()) => {
                        held += 1;
                        c.disconnect(deadline).await;
                    }
                    Err(error) => failures.record(&error),
                }
            }
            (held, failures)
        });
    }
    let mut held = 0;
    let mut failures = Failures::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((h, f)) = joined {
            held += h;
            failures.merge(f);
        }
    }
    (held, failures)
}
