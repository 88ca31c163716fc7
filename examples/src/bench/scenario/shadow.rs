//! Device Shadow updates: `--clients` connections share `--things` things; each client publishes
//! QoS 1 updates of about `--payload` bytes to `$aws/things/{thing}/shadow/update` of its things,
//! at most one unanswered request per thing, at most `--thing-rate` per thing per second (AWS
//! throttles above 20) and at most `--inflight` unanswered per client, and counts the
//! `/update/accepted` and `/update/rejected` answers, matched by `clientToken`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mqtt_codec::{QoS, QosPid, SharedPacket};
use tokio::time::Instant;

use super::super::clock::unix_us;
use super::super::connection::{Connection, PacketIds};
use super::super::error::BenchError;
use super::super::latency::Latencies;
use super::super::options::BenchOptions;
use super::super::progress::Progress;
use super::super::report::{Failures, ShadowResult};
use super::super::transport::Target;
use super::flow::DRAIN;
use super::{ScenarioOutcome, connect_many, setup_deadline};

/// Where one client's requests stand.
#[derive(Debug, Default)]
struct ClientOutcome {
    requests: u64,
    accepted: u64,
    accepted_in_window: u64,
    rejected: BTreeMap<String, u64>,
    unanswered: u64,
    duplicated: u64,
    latencies: Latencies,
    error: Option<BenchError>,
}

/// The thing names a client owns: every `clients`-th of `things`, from `client`.
///
/// ```
/// use iot_examples::bench::scenario::shadow::things_of;
/// assert_eq!(things_of(1, 3, 7, "t"), ["bench-t-1", "bench-t-4"]);
/// ```
pub fn things_of(client: usize, clients: usize, things: usize, tag: &str) -> Vec<String> {
    (client..things)
        .step_by(clients.max(1))
        .map(|i| format!("bench-{tag}-{i}"))
        .collect()
}

/// An update document of about `size` bytes carrying `token`.
///
/// ```
/// use iot_examples::bench::scenario::shadow::update_document;
/// let doc = update_document(1024, 7, "0-7-1");
/// assert_eq!(doc.len(), 1024);
/// let json: serde_json::Value = serde_json::from_str(&doc).unwrap();
/// assert_eq!(json["clientToken"], "0-7-1");
/// ```
pub fn update_document(size: usize, sequence: u64, token: &str) -> String {
    let head = format!("{{\"state\":{{\"reported\":{{\"seq\":{sequence},\"pad\":\"");
    let tail = format!("\"}}}},\"clientToken\":\"{token}\"}}");
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut doc = String::with_capacity(size);
    doc.push_str(&head);
    doc.extend(std::iter::repeat_n('x', pad));
    doc.push_str(&tail);
    doc
}

/// The `clientToken` string of a shadow answer, found without parsing the whole document.
///
/// ```
/// use iot_examples::bench::scenario::shadow::client_token;
/// assert_eq!(client_token(br#"{"version":3,"clientToken":"0-1-2"}"#), Some("0-1-2"));
/// assert_eq!(client_token(br#"{"version":3}"#), None);
/// ```
pub fn client_token(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?;
    const KEY: &str = "\"clientToken\":\"";
    let start = text.rfind(KEY)? + KEY.len();
    let rest = text.get(start..)?;
    rest.get(..rest.find('"')?)
}

/// The `code` of a rejection document.
///
/// ```
/// use iot_examples::bench::scenario::shadow::rejection_code;
/// assert_eq!(rejection_code(br#"{"code":429,"message":"x"}"#), "429");
/// assert_eq!(rejection_code(b"nonsense"), "unknown");
/// ```
pub fn rejection_code(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("code").and_then(serde_json::Value::as_u64))
        .map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

/// Runs the shadow scenario.
pub async fn run(options: &BenchOptions, target: &Target, tag: &str) -> ScenarioOutcome {
    let clients = options.clients.min(options.things);
    let ids = (0..clients)
        .map(|c| format!("bench-{tag}-shadow{c}"))
        .collect();
    let deadline = setup_deadline(clients + options.things / 8);
    let connections = connect_many(target, ids, options.connect_concurrency, deadline).await;
    let mut failures = Failures {
        attempted: clients as u64,
        ..Failures::default()
    };
    let mut subscribed = tokio::task::JoinSet::new();
    for (c, connection) in connections.into_iter().enumerate() {
        match connection {
            Ok(mut connection) => {
                let things = things_of(c, clients, options.things, tag);
                subscribed.spawn(async move {
                    let filters: Vec<(String, QoS)> = things
                        .iter()
                        .flat_map(|t| {
                            [
                                (
                                    format!("$aws/things/{t}/shadow/update/accepted"),
                                    QoS::AtLeastOnce,
                                ),
                                (
                                    format!("$aws/things/{t}/shadow/update/rejected"),
                                    QoS::AtLeastOnce,
                                ),
                            ]
                        })
                        .collect();
                    let result = connection.subscribe(&filters, deadline).await;
                    (c, connection, things, result)
                });
            }
            Err(error) => failures.record(&error),
        }
    }
    let mut ready = Vec::new();
    while let Some(joined) = subscribed.join_next().await {
        match joined {
            Ok((c, connection, things, Ok(()))) => ready.push((c, connection, things)),
            Ok((_, _, _, Err(error))) => failures.record(&error),
            Err(error) => failures.record(&BenchError::Task(error.to_string())),
        }
    }
    failures.connected = ready.len() as u64;
    let start_us = unix_us() + 100_000;
    let measure_from_us = start_us + u64::try_from(options.warmup.as_micros()).unwrap_or(0);
    let stop_us = measure_from_us + u64::try_from(options.duration.as_micros()).unwrap_or(0);
    let accepted_counter = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        options.progress,
        "shadow",
        options.warmup + options.duration,
        accepted_counter.clone(),
    );
    let things_total = ready.iter().map(|(_, _, t)| t.len() as u64).sum();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, connection, things) in ready {
        let settings = ClientSettings {
            client: c,
            size: options.payload,
            inflight: usize::from(options.inflight),
            spacing_us: (1e6 / options.thing_rate).ceil() as u64,
            start_us,
            measure_from_us,
            stop_us,
        };
        let counter = accepted_counter.clone();
        tasks.spawn(client_loop(connection, things, settings, counter));
    }
    let mut result = ShadowResult {
        things: things_total,
        ..ShadowResult::default()
    };
    let mut latencies = Latencies::new();
    let mut accepted_in_window = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => {
                if let Some(error) = &outcome.error {
                    failures.record(error);
                }
                result.requests += outcome.requests;
                result.accepted += outcome.accepted;
                accepted_in_window += outcome.accepted_in_window;
                result.unanswered += outcome.unanswered;
                result.duplicated += outcome.duplicated;
                for (code, n) in outcome.rejected {
                    *result.rejected.entry(code).or_default() += n;
                }
                latencies.merge(&outcome.latencies);
            }
            Err(error) => failures.record(&BenchError::Task(error.to_string())),
        }
    }
    progress.finish();
    let seconds = (stop_us - measure_from_us) as f64 / 1e6;
    if seconds > 0.0 {
        result.accepted_per_sec = accepted_in_window as f64 / seconds;
    }
    ScenarioOutcome {
        connections: failures,
        latency: latencies.summary(),
        shadow: Some(result),
        window_us: (measure_from_us, stop_us),
        ..ScenarioOutcome::default()
    }
}

#[derive(Debug, Clone, Copy)]
struct ClientSettings {
    client: usize,
    size: usize,
    inflight: usize,
    spacing_us: u64,
    start_us: u64,
    measure_from_us: u64,
    stop_us: u64,
}

/// One thing's request under way: its token and when it was sent.
#[derive(Debug, Clone)]
struct Pending {
    token: String,
    sent_us: u64,
}

async fn client_loop(
    mut connection: Connection,
    things: Vec<String>,
    settings: ClientSettings,
    counter: Arc<AtomicU64>,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    let result = drive(
        &mut connection,
        &things,
        settings,
        &counter,
        &mut pending,
        &mut outcome,
    )
    .await;
    outcome.unanswered = pending.len() as u64;
    match result {
        Ok(()) => {
            connection
                .disconnect(Instant::now() + Duration::from_secs(1))
                .await
        }
        Err(error) => outcome.error = Some(error),
    }
    outcome
}

fn instant_of(us: u64) -> Instant {
    Instant::now() + Duration::from_micros(us.saturating_sub(unix_us()))
}

async fn drive(
    connection: &mut Connection,
    things: &[String],
    settings: ClientSettings,
    counter: &AtomicU64,
    pending: &mut HashMap<usize, Pending>,
    outcome: &mut ClientOutcome,
) -> Result<(), BenchError> {
    let index: HashMap<&str, usize> = things
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let topics: Vec<String> = things
        .iter()
        .map(|t| format!("$aws/things/{t}/shadow/update"))
        .collect();
    // Things ready for their next request, earliest allowed first.
    let mut ready: VecDeque<(usize, u64)> =
        (0..things.len()).map(|i| (i, settings.start_us)).collect();
    let mut ids = PacketIds::default();
    let mut sequence = 0u64;
    let stop = instant_of(settings.stop_us);
    let io_deadline = stop + DRAIN;
    tokio::time::sleep_until(instant_of(settings.start_us)).await;
    loop {
        let now = unix_us();
        let sending = now < settings.stop_us;
        if !sending && (pending.is_empty() || Instant::now() >= io_deadline) {
            return Ok(());
        }
        let mut sent_any = false;
        while sending && pending.len() < settings.inflight {
            let Some(&(thing, allowed_us)) = ready.front() else {
                break;
            };
            if allowed_us > now {
                break;
            }
            ready.pop_front();
            let token = format!("{}-{sequence}-{now}", settings.client);
            let doc = update_document(settings.size, sequence, &token);
            sequence += 1;
            let topic = topics.get(thing).map_or("", String::as_str);
            connection.queue_publish(
                topic,
                QosPid::AtLeastOnce(ids.next_id()),
                &[],
                doc.as_bytes(),
            )?;
            pending.insert(
                thing,
                Pending {
                    token,
                    sent_us: now,
                },
            );
            outcome.requests += 1;
            sent_any = true;
        }
        connection.flush(io_deadline).await?;
        // Wait for answers until the next thing may go (or a moment, when all are waiting).
        let next_us = match ready.front() {
            Some(&(_, at)) if sending && pending.len() < settings.inflight => at.max(now),
            _ => now + 100_000,
        };
        let wake = if sent_any {
            Instant::now()
        } else {
            instant_of(next_us).min(io_deadline)
        };
        let got = if sent_any {
            connection.try_fill()?
        } else {
            connection.fill(wake).await?
        };
        if !got {
            continue;
        }
        let arrival_us = unix_us();
        while let Some(packet) = connection.next_packet()? {
            let SharedPacket::Publish(publish) = packet else {
                continue;
            };
            if let Some(id) = publish.qos_pid.packet_id() {
                connection.queue_puback(id)?;
            }
            let topic = publish.topic.as_str();
            let (accepted, rest) = if let Some(rest) = topic.strip_suffix("/shadow/update/accepted")
            {
                (true, rest)
            } else if let Some(rest) = topic.strip_suffix("/shadow/update/rejected") {
                (false, rest)
            } else {
                continue;
            };
            let thing = rest
                .strip_prefix("$aws/things/")
                .and_then(|t| index.get(t).copied());
            let token = client_token(&publish.payload);
            let matched = thing.and_then(|t| {
                let p = pending.get(&t)?;
                (Some(p.token.as_str()) == token).then_some(t)
            });
            let Some(thing) = matched else {
                outcome.duplicated += 1;
                continue;
            };
            let Some(request) = pending.remove(&thing) else {
                continue;
            };
            ready.push_back((thing, request.sent_us + settings.spacing_us));
            if accepted {
                outcome.accepted += 1;
                counter.fetch_add(1, Ordering::Relaxed);
                if request.sent_us >= settings.measure_from_us && request.sent_us < settings.stop_us
                {
                    outcome.accepted_in_window += 1;
                    outcome
                        .latencies
                        .record(arrival_us.saturating_sub(request.sent_us));
                }
            } else {
                *outcome
                    .rejected
                    .entry(rejection_code(&publish.payload))
                    .or_default() += 1;
            }
        }
        connection.flush(io_deadline).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thing_has_one_client() {
        let all: Vec<String> = (0..3).flat_map(|c| things_of(c, 3, 10, "t")).collect();
        assert_eq!(all.len(), 10);
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn a_tiny_document_is_still_json() {
        let doc = update_document(0, 1, "a");
        assert!(serde_json::from_str::<serde_json::Value>(&doc).is_ok());
    }

    #[test]
    fn odd_answers_have_no_token() {
        assert_eq!(client_token(b"\xff\xfe"), None);
        assert_eq!(client_token(br#"{"clientToken":"unterminated"#), None);
    }
}
