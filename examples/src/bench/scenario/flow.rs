//! Message flows: pairs, fan-out and fan-in. Publishers stamp every payload and publish open loop
//! (QoS 1 bounded by a window of unacknowledged publishes) or at a fixed rate; subscribers check
//! each publisher's sequence and record latency from the stamp. The run ends by itself: the
//! publishers stop at the end of the window, the subscribers when they have everything, after
//! [`QUIET`] without a message, or at a hard deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mqtt_codec::{QoS, QosPid, SharedPacket};
use tokio::time::Instant;

use super::super::clock::unix_us;
use super::super::connection::{Connection, PacketIds, qos};
use super::super::error::BenchError;
use super::super::latency::Latencies;
use super::super::options::BenchOptions;
use super::super::pacing::Schedule;
use super::super::progress::Progress;
use super::super::report::{Failures, MessageCounts};
use super::super::sequence::SequenceTracker;
use super::super::stamp::{STAMP_LEN, Stamp};
use super::super::transport::Target;
use super::{
    PublisherPlan, ScenarioOutcome, SubscriberPlan, Topology, connect_many, setup_deadline,
};

/// A subscriber whose publishers are done stops after this long without a message.
pub const QUIET: Duration = Duration::from_secs(2);
/// The longest a publisher waits for its last PUBACKs, and a subscriber for stragglers, after
/// the window.
pub const DRAIN: Duration = Duration::from_secs(20);
/// Most publishes queued per write.
const BATCH: u64 = 64;
/// Worker threads of the subscribers' own runtime.
const SUBSCRIBER_THREADS: usize = 2;
/// How often a waiting subscriber wakes to check whether it is done.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// What the publishers have finished with: per publisher, how many it sent (`u64::MAX` while
/// still publishing).
#[derive(Debug)]
pub struct Finished {
    sent: Vec<AtomicU64>,
}

impl Finished {
    fn new(n: usize) -> Finished {
        Finished {
            sent: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    fn finish(&self, publisher: u32, sent: u64) {
        if let Some(slot) = self.sent.get(publisher as usize) {
            slot.store(sent, Ordering::Release);
        }
    }

    /// How many `publisher` sent, once it is done.
    fn sent(&self, publisher: u32) -> Option<u64> {
        let n = self.sent.get(publisher as usize)?.load(Ordering::Acquire);
        (n != u64::MAX).then_some(n)
    }
}

/// The timing every client of a run shares, Unix microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Publishing starts.
    pub start_us: u64,
    /// Measuring starts (after the warm-up).
    pub measure_from_us: u64,
    /// Publishing stops.
    pub stop_us: u64,
}

impl Window {
    fn contains(&self, us: u64) -> bool {
        us >= self.measure_from_us && us < self.stop_us
    }

    /// The tokio instant of Unix time `us`.
    fn instant(&self, us: u64) -> Instant {
        let now = unix_us();
        if us >= now {
            Instant::now() + Duration::from_micros(us - now)
        } else {
            Instant::now()
        }
    }
}

/// What one publisher did.
#[derive(Debug, Default)]
pub struct PublisherOutcome {
    /// Its index.
    pub id: u32,
    /// Publishes written.
    pub sent: u64,
    /// Publishes stamped inside the measured window.
    pub sent_in_window: u64,
    /// PUBACKs received.
    pub acked: u64,
    /// Sequence numbers never acknowledged.
    pub unacked: Vec<u64>,
    /// What ended it early.
    pub error: Option<BenchError>,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
pub struct SubscriberOutcome {
    /// Per publisher index it hears.
    pub trackers: HashMap<u32, SequenceTracker>,
    /// Latencies of messages stamped in the window.
    pub latencies: Latencies,
    /// Deliveries that arrived in the window (duplicates included): the delivery rate counts
    /// what the broker delivered then, not what was sent then and delivered later.
    pub received_in_window: u64,
    /// Deliveries without a stamp or from a publisher it should not hear.
    pub foreign: u64,
    /// What ended it early.
    pub error: Option<BenchError>,
}

/// Runs a pairs, fan-out or fan-in scenario.
pub async fn run(
    options: &BenchOptions,
    target: &Target,
    topology: Topology,
    tag: &str,
) -> ScenarioOutcome {
    let mut failures = Failures::default();
    let sub_ids = topology
        .subscribers
        .iter()
        .map(|s| format!("bench-{tag}-s{}", s.id))
        .collect();
    let pub_ids = topology
        .publishers
        .iter()
        .map(|p| format!("bench-{tag}-p{}", p.id))
        .collect();
    let total = topology.subscribers.len() + topology.publishers.len();
    let deadline = setup_deadline(total);
    // Subscribers get threads of their own, so a hundred busy publishers cannot starve the one
    // subscriber of a fan-in (its PUBACKs would come late and the broker's window would close).
    let sub_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SUBSCRIBER_THREADS)
        .thread_name("bench-subscriber")
        .enable_all()
        .build();
    let sub_handle = match &sub_runtime {
        Ok(runtime) => runtime.handle().clone(),
        Err(_) => tokio::runtime::Handle::current(),
    };
    let subscribers = {
        let target = target.clone();
        let concurrency = options.connect_concurrency;
        sub_handle
            .spawn(async move { connect_many(&target, sub_ids, concurrency, deadline).await })
            .await
            .unwrap_or_default()
    };
    let publishers = connect_many(target, pub_ids, options.connect_concurrency, deadline).await;
    failures.attempted = total as u64;

    // Subscribe everyone who connected.
    let want = qos(options.qos);
    let mut ready_subscribers = Vec::new();
    let mut subscribe_tasks = tokio::task::JoinSet::new();
    for (plan, connection) in topology.subscribers.iter().cloned().zip(subscribers) {
        match connection {
            Ok(mut connection) => {
                subscribe_tasks.spawn_on(
                    async move {
                        let result = connection
                            .subscribe(&[(plan.filter.clone(), want)], deadline)
                            .await;
                        (plan, connection, result)
                    },
                    &sub_handle,
                );
            }
            Err(error) => failures.record(&error),
        }
    }
    while let Some(joined) = subscribe_tasks.join_next().await {
        match joined {
            Ok((plan, connection, Ok(()))) => {
                failures.connected += 1;
                ready_subscribers.push((plan, connection));
            }
            Ok((_, _, Err(error))) => failures.record(&error),
            Err(error) => failures.record(&BenchError::Task(error.to_string())),
        }
    }
    let finished = Arc::new(Finished::new(topology.publishers.len()));
    let mut ready_publishers = Vec::new();
    for (plan, connection) in topology.publishers.iter().cloned().zip(publishers) {
        match connection {
            Ok(connection) => {
                failures.connected += 1;
                ready_publishers.push((plan, connection));
            }
            Err(error) => {
                failures.record(&error);
                finished.finish(plan.id, 0);
            }
        }
    }

    // Everyone starts together, a moment from now.
    let start_us = unix_us() + 100_000;
    let measure_from_us = start_us + duration_us(options.warmup);
    let window = Window {
        start_us,
        measure_from_us,
        stop_us: measure_from_us + duration_us(options.duration),
    };
    let received = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        options.progress,
        &format!("{:?}", options.scenario),
        options.warmup + options.duration,
        received.clone(),
    );
    let per_publisher_rate = options
        .rate
        .map(|r| r / topology.publishers.len().max(1) as f64);
    let template: Arc<[u8]> = Stamp {
        publisher: 0,
        sequence: 0,
        sent_us: 0,
    }
    .payload(options.payload)
    .into();

    let mut sub_tasks = tokio::task::JoinSet::new();
    for (plan, connection) in ready_subscribers {
        let finished = finished.clone();
        let received = received.clone();
        sub_tasks.spawn_on(
            subscribe_loop(connection, plan, window, finished, received),
            &sub_handle,
        );
    }
    let mut pub_tasks = tokio::task::JoinSet::new();
    for (plan, connection) in ready_publishers {
        let finished = finished.clone();
        let template = template.clone();
        let settings = PublishSettings {
            qos: want,
            inflight: u64::from(options.inflight),
            rate: per_publisher_rate,
        };
        pub_tasks.spawn(async move {
            let id = plan.id;
            let outcome = publish_loop(connection, plan, window, settings, template).await;
            finished.finish(id, outcome.sent);
            outcome
        });
    }
    let mut pub_outcomes = HashMap::new();
    while let Some(joined) = pub_tasks.join_next().await {
        match joined {
            Ok(outcome) => {
                if let Some(error) = &outcome.error {
                    failures.record(error);
                }
                pub_outcomes.insert(outcome.id, outcome);
            }
            Err(error) => failures.record(&BenchError::Task(error.to_string())),
        }
    }
    // A publisher task that died never said how many it sent: nothing is expected from it.
    for plan in &topology.publishers {
        if finished.sent(plan.id).is_none() {
            finished.finish(plan.id, 0);
        }
    }
    let mut sub_outcomes = Vec::new();
    while let Some(joined) = sub_tasks.join_next().await {
        match joined {
            Ok(outcome) => {
                if let Some(error) = &outcome.error {
                    failures.record(error);
                }
                sub_outcomes.push(outcome);
            }
            Err(error) => failures.record(&BenchError::Task(error.to_string())),
        }
    }
    progress.finish();
    if let Ok(runtime) = sub_runtime {
        runtime.shutdown_background();
    }
    let (messages, latencies) = tally(options.qos, &window, &pub_outcomes, sub_outcomes);
    ScenarioOutcome {
        connections: failures,
        messages: Some(messages),
        latency: latencies.summary(),
        window_us: (window.measure_from_us, window.stop_us),
        ..ScenarioOutcome::default()
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 4)
}

/// Adds up what the publishers sent and the subscribers saw.
fn tally(
    qos_level: u8,
    window: &Window,
    publishers: &HashMap<u32, PublisherOutcome>,
    subscribers: Vec<SubscriberOutcome>,
) -> (MessageCounts, Latencies) {
    let mut m = MessageCounts {
        measured_secs: (window.stop_us - window.measure_from_us) as f64 / 1e6,
        ..MessageCounts::default()
    };
    for p in publishers.values() {
        m.sent += p.sent;
        m.acked += p.acked;
        m.unacked_at_end += p.unacked.len() as u64;
    }
    let sent_in_window: u64 = publishers.values().map(|p| p.sent_in_window).sum();
    let mut latencies = Latencies::new();
    let mut received_in_window = 0;
    for s in subscribers {
        latencies.merge(&s.latencies);
        received_in_window += s.received_in_window;
        m.foreign += s.foreign;
        for (publisher, tracker) in &s.trackers {
            m.received += tracker.received();
            m.duplicated += tracker.duplicated();
            m.reordered += tracker.reordered();
            let Some(p) = publishers.get(publisher) else {
                continue;
            };
            if qos_level == 0 {
                m.expected += p.sent;
                m.lost += tracker.lost(p.sent, |_| true);
            } else {
                m.expected += p.sent.saturating_sub(p.unacked.len() as u64);
                m.lost += tracker.lost(p.sent, |s| !p.unacked.contains(&s));
            }
        }
    }
    if m.measured_secs > 0.0 {
        m.sent_per_sec = sent_in_window as f64 / m.measured_secs;
        m.delivered_per_sec = received_in_window as f64 / m.measured_secs;
    }
    (m, latencies)
}

/// How a publisher publishes.
#[derive(Debug, Clone, Copy)]
struct PublishSettings {
    qos: QoS,
    inflight: u64,
    rate: Option<f64>,
}

async fn publish_loop(
    mut connection: Connection,
    plan: PublisherPlan,
    window: Window,
    settings: PublishSettings,
    template: Arc<[u8]>,
) -> PublisherOutcome {
    let mut outcome = PublisherOutcome {
        id: plan.id,
        ..PublisherOutcome::default()
    };
    let mut in_flight: HashMap<u16, u64> = HashMap::new();
    let result = publish(
        &mut connection,
        &plan,
        window,
        settings,
        &template,
        &mut in_flight,
        &mut outcome,
    )
    .await;
    if let Err(error) = result {
        outcome.error = Some(error);
    } else {
        // Wait for the last PUBACKs.
        let deadline = window.instant(window.stop_us) + DRAIN;
        if let Err(error) = collect_acks(
            &mut connection,
            &mut in_flight,
            &mut outcome,
            deadline,
            true,
        )
        .await
        {
            outcome.error = Some(error);
        }
        connection
            .disconnect(Instant::now() + Duration::from_secs(1))
            .await;
    }
    let mut unacked: Vec<u64> = in_flight.into_values().collect();
    unacked.sort_unstable();
    outcome.unacked = unacked;
    outcome
}

async fn publish(
    connection: &mut Connection,
    plan: &PublisherPlan,
    window: Window,
    settings: PublishSettings,
    template: &[u8],
    in_flight: &mut HashMap<u16, u64>,
    outcome: &mut PublisherOutcome,
) -> Result<(), BenchError> {
    let schedule = settings.rate.map(|r| Schedule::new(window.start_us, r));
    let mut ids = PacketIds::default();
    let io_deadline = window.instant(window.stop_us) + DRAIN;
    tokio::time::sleep_until(window.instant(window.start_us)).await;
    let mut stamp = [0u8; STAMP_LEN];
    loop {
        let now = unix_us();
        if now >= window.stop_us {
            return Ok(());
        }
        let room = match settings.qos {
            QoS::AtMostOnce => BATCH,
            _ => settings
                .inflight
                .saturating_sub(in_flight.len() as u64)
                .min(BATCH),
        };
        let due = schedule.map_or(u64::MAX, |s| s.due(now).saturating_sub(outcome.sent));
        let n = room.min(due);
        for _ in 0..n {
            let sequence = outcome.sent;
            let sent_us = schedule.map_or(now, |s| s.time_of(sequence));
            Stamp {
                publisher: plan.id,
                sequence,
                sent_us,
            }
            .write(&mut stamp);
            let qos_pid = match settings.qos {
                QoS::AtMostOnce => QosPid::AtMostOnce,
                _ => {
                    let id = ids.next_id();
                    in_flight.insert(id.get(), sequence);
                    QosPid::AtLeastOnce(id)
                }
            };
            connection.queue_publish(&plan.topic, qos_pid, &stamp, template)?;
            outcome.sent += 1;
            if window.contains(sent_us) {
                outcome.sent_in_window += 1;
            }
        }
        connection.flush(io_deadline).await?;
        if n > 0 {
            // More may go at once: take whatever acks are already here and go on.
            collect_acks(connection, in_flight, outcome, Instant::now(), false).await?;
            continue;
        }
        // Blocked by the window or the schedule: wait for acks until the next message is due.
        let next_due_us = schedule.map_or(window.stop_us, |s| {
            s.time_of(outcome.sent).min(window.stop_us)
        });
        let wake = if room == 0 {
            window.stop_us
        } else {
            next_due_us
        };
        if settings.qos == QoS::AtMostOnce || (room > 0 && in_flight.is_empty()) {
            // Nothing to read for: sleep until due (still draining anything the broker sends).
            let _ = connection.fill(window.instant(wake)).await?;
            while connection.next_packet()?.is_some() {}
        } else {
            wait_acks(connection, in_flight, outcome, window.instant(wake)).await?;
        }
    }
}

/// Handles every PUBACK already read; with `wait`, reads until `in_flight` is empty or `deadline`.
async fn collect_acks(
    connection: &mut Connection,
    in_flight: &mut HashMap<u16, u64>,
    outcome: &mut PublisherOutcome,
    deadline: Instant,
    wait: bool,
) -> Result<(), BenchError> {
    loop {
        while let Some(packet) = connection.next_packet()? {
            take_ack(packet, in_flight, outcome);
        }
        if !wait {
            if connection.try_fill()? {
                continue;
            }
            return Ok(());
        }
        if in_flight.is_empty() || !connection.fill(deadline).await? {
            return Ok(());
        }
    }
}

/// Reads until at least one PUBACK came or `deadline`.
async fn wait_acks(
    connection: &mut Connection,
    in_flight: &mut HashMap<u16, u64>,
    outcome: &mut PublisherOutcome,
    deadline: Instant,
) -> Result<(), BenchError> {
    let before = outcome.acked;
    loop {
        while let Some(packet) = connection.next_packet()? {
            take_ack(packet, in_flight, outcome);
        }
        if outcome.acked > before || !connection.fill(deadline).await? {
            return Ok(());
        }
    }
}

fn take_ack(
    packet: SharedPacket,
    in_flight: &mut HashMap<u16, u64>,
    outcome: &mut PublisherOutcome,
) {
    if let SharedPacket::PubAck(ack) = packet
        && in_flight.remove(&ack.packet_id.get()).is_some()
    {
        outcome.acked += 1;
    }
}

async fn subscribe_loop(
    mut connection: Connection,
    plan: SubscriberPlan,
    window: Window,
    finished: Arc<Finished>,
    received: Arc<AtomicU64>,
) -> SubscriberOutcome {
    let mut outcome = SubscriberOutcome {
        trackers: plan
            .feeds
            .iter()
            .map(|&p| (p, SequenceTracker::default()))
            .collect(),
        ..SubscriberOutcome::default()
    };
    if let Err(error) = subscribe(
        &mut connection,
        &plan,
        window,
        &finished,
        &received,
        &mut outcome,
    )
    .await
    {
        outcome.error = Some(error);
    } else {
        connection
            .disconnect(Instant::now() + Duration::from_secs(1))
            .await;
    }
    outcome
}

async fn subscribe(
    connection: &mut Connection,
    plan: &SubscriberPlan,
    window: Window,
    finished: &Finished,
    received: &AtomicU64,
    outcome: &mut SubscriberOutcome,
) -> Result<(), BenchError> {
    let hard_deadline = window.instant(window.stop_us) + DRAIN + QUIET;
    let flush_deadline = hard_deadline + Duration::from_secs(5);
    let mut last_arrival = Instant::now();
    let mut all_done_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= hard_deadline {
            return Ok(());
        }
        if all_done_since.is_none() && plan.feeds.iter().all(|&p| finished.sent(p).is_some()) {
            all_done_since = Some(now);
        }
        if let Some(since) = all_done_since {
            let complete = plan.feeds.iter().all(|&p| {
                let sent = finished.sent(p).unwrap_or(0);
                outcome.trackers.get(&p).is_some_and(|t| t.complete(sent))
            });
            let quiet = now.duration_since(last_arrival.max(since)) >= QUIET;
            if complete || quiet {
                return Ok(());
            }
        }
        if !connection
            .fill((now + CHECK_EVERY).min(hard_deadline))
            .await?
        {
            continue;
        }
        let arrival_us = unix_us();
        last_arrival = Instant::now();
        let mut count = 0u64;
        while let Some(packet) = connection.next_packet()? {
            let SharedPacket::Publish(publish) = packet else {
                continue;
            };
            count += 1;
            if let Some(id) = publish.qos_pid.packet_id() {
                connection.queue_puback(id)?;
            }
            let stamp = Stamp::read(&publish.payload);
            match stamp.and_then(|s| outcome.trackers.get_mut(&s.publisher).map(|t| (s, t))) {
                Some((stamp, tracker)) => {
                    tracker.observe(stamp.sequence);
                    if window.contains(stamp.sent_us) {
                        outcome
                            .latencies
                            .record(arrival_us.saturating_sub(stamp.sent_us));
                    }
                    if window.contains(arrival_us) {
                        outcome.received_in_window += 1;
                    }
                }
                None => outcome.foreign += 1,
            }
        }
        received.fetch_add(count, Ordering::Relaxed);
        connection.flush(flush_deadline).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            start_us: 0,
            measure_from_us: 1_000_000,
            stop_us: 3_000_000,
        }
    }

    #[test]
    fn the_window_is_half_open() {
        let w = window();
        assert!(!w.contains(999_999));
        assert!(w.contains(1_000_000));
        assert!(!w.contains(3_000_000));
    }

    #[test]
    fn tally_counts_losses_only_of_acknowledged_messages() {
        let mut publishers = HashMap::new();
        publishers.insert(
            0,
            PublisherOutcome {
                id: 0,
                sent: 10,
                sent_in_window: 10,
                acked: 9,
                unacked: vec![9],
                error: None,
            },
        );
        let mut tracker = SequenceTracker::default();
        // 0..8 arrive, 5 twice; 8 never came (acknowledged: lost); 9 never came (unacknowledged).
        for s in [0, 1, 2, 3, 4, 5, 5, 6, 7] {
            tracker.observe(s);
        }
        let subscriber = SubscriberOutcome {
            trackers: [(0, tracker)].into_iter().collect(),
            received_in_window: 9,
            ..SubscriberOutcome::default()
        };
        let (m, _) = tally(1, &window(), &publishers, vec![subscriber]);
        assert_eq!(
            (m.sent, m.acked, m.unacked_at_end, m.received),
            (10, 9, 1, 8)
        );
        assert_eq!(
            (m.lost, m.duplicated, m.reordered, m.expected),
            (1, 1, 0, 9)
        );
        assert!((m.delivered_per_sec - 4.5).abs() < 1e-9);
    }

    #[test]
    fn finished_publishers_report_their_count() {
        let f = Finished::new(2);
        assert_eq!(f.sent(0), None);
        f.finish(0, 7);
        f.finish(9, 1);
        assert_eq!((f.sent(0), f.sent(1), f.sent(9)), (Some(7), None, None));
    }
}
