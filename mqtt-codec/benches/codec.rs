//! Criterion benchmarks of this codec side by side with rumqttc's `mqttbytes::v4` and `mqttrs` on
//! the same inputs, plus heap allocations per decoded packet, counted by a wrapping allocator.
//!
//! Scenarios, each a stream of 100 packets encoded once by this codec and then decoded by all:
//! (a) 1 KiB QoS 1 PUBLISH on `hello/world`, (b) 16-byte QoS 0 PUBLISH, (c) a mix of CONNECT,
//! SUBSCRIBE, PUBLISH of 16 B to 4 KiB, PUBACK and PINGREQ. Encoding benchmarks encode the packets
//! each codec decoded from that stream into a reused buffer.
//!
//! Run: `cargo bench -p mqtt-codec --bench codec`; after criterion's own output, a Markdown table
//! with packets/s, bytes/s, the ratio to rumqttc and allocations per decode is printed (the
//! README's table is that output).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unsafe_code
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput};
use mqtt_codec::{
    BorrowedPacket, Connect, Decoded, Limits, Packet, PacketId, PubAck, Publish, QoS, QosPid,
    Subscribe, SubscribeFilters, Will, decode_buf, decode_with,
};

/// Counts every allocation (and reallocation) made through the global allocator.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const PACKETS: usize = 100;
const MAX: usize = 1 << 20;

struct Scenario {
    id: &'static str,
    title: &'static str,
    stream: Vec<u8>,
    /// (start, end) of each frame, for decoders that do not report consumed length (mqttrs).
    frames: Vec<(usize, usize)>,
}

fn pid(n: usize) -> PacketId {
    PacketId::new(u16::try_from(n % 65_535 + 1).unwrap()).unwrap()
}

fn publish(
    n: usize,
    qos: QoS,
    topic: &'static str,
    payload: &'static [u8],
) -> BorrowedPacket<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::from_parts(qos, pid(n)),
        retain: false,
        topic,
        payload,
    })
}

fn scenario(id: &'static str, title: &'static str, packets: &[Packet<&str, &[u8]>]) -> Scenario {
    let mut stream = Vec::new();
    let mut frames = Vec::new();
    for p in packets {
        let start = stream.len();
        p.encode(&mut stream).unwrap();
        frames.push((start, stream.len()));
    }
    Scenario {
        id,
        title,
        stream,
        frames,
    }
}

fn scenarios() -> Vec<Scenario> {
    static KIB: [u8; 1024] = [0x5a; 1024];
    static SIXTEEN: [u8; 16] = [0x5a; 16];
    static KIB4: [u8; 4096] = [0x33; 4096];
    let sizes: [&'static [u8]; 5] = [&KIB4[..16], &KIB4[..64], &KIB4[..256], &KIB4[..1024], &KIB4];
    static FILTERS: std::sync::OnceLock<SubscribeFilters<Bytes>> = std::sync::OnceLock::new();
    let filters = FILTERS.get_or_init(|| {
        SubscribeFilters::from_list(&[
            ("cars/+/telemetry", QoS::AtLeastOnce),
            ("$aws/things/car-1/shadow/update/delta", QoS::AtLeastOnce),
            ("fleet/#", QoS::AtMostOnce),
        ])
        .unwrap()
    });

    let a: Vec<_> = (0..PACKETS)
        .map(|n| publish(n, QoS::AtLeastOnce, "hello/world", &KIB))
        .collect();
    let b: Vec<_> = (0..PACKETS)
        .map(|n| publish(n, QoS::AtMostOnce, "hello/world", &SIXTEEN))
        .collect();
    let mut c: Vec<BorrowedPacket<'static>> = Vec::new();
    for round in 0..PACKETS / 20 {
        c.push(Packet::Connect(Connect {
            client_id: "car-0001",
            clean_session: false,
            keep_alive: 60,
            will: Some(Will {
                topic: "cars/car-0001/status",
                payload: &b"offline"[..],
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: Some("car-0001?SDK=Rust&Version=1"),
            password: Some(&b"secret-token"[..]),
        }));
        c.push(Packet::Subscribe(Subscribe {
            packet_id: pid(round),
            filters: filters.as_borrowed(),
        }));
        for i in 0..10 {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            c.push(publish(
                round * 20 + i,
                qos,
                "cars/car-0001/telemetry",
                sizes[i % 5],
            ));
        }
        for i in 0..6 {
            c.push(Packet::PubAck(PubAck::new(pid(round * 20 + i))));
        }
        c.push(Packet::PingReq);
        c.push(Packet::PingReq);
    }
    vec![
        scenario(
            "a_publish_1k_qos1",
            "(a) 1 KiB QoS 1 PUBLISH on hello/world",
            &a,
        ),
        scenario("b_publish_16b_qos0", "(b) 16-byte QoS 0 PUBLISH", &b),
        scenario(
            "c_mix",
            "(c) mix: CONNECT, SUBSCRIBE, PUBLISH 16 B-4 KiB, PUBACK, PINGREQ",
            &c,
        ),
    ]
}

// ---- decoders: each decodes the whole stream and returns how many packets it saw ----

fn ours_borrowed(stream: &[u8], limits: &Limits) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while let Ok(Decoded::Complete { packet, len }) = decode_with(&stream[pos..], limits) {
        black_box(&packet);
        pos += len;
        n += 1;
    }
    n
}

fn ours_bytes(mut buf: BytesMut, limits: &Limits) -> usize {
    let mut n = 0;
    while let Ok(Some(packet)) = decode_buf(&mut buf, limits) {
        black_box(&packet);
        n += 1;
    }
    n
}

fn rumqttc_read(mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Ok(packet) = rumqttc::mqttbytes::v4::Packet::read(&mut buf, MAX) {
        black_box(&packet);
        n += 1;
    }
    n
}

fn mqttrs_decode(stream: &[u8], frames: &[(usize, usize)]) -> usize {
    let mut n = 0;
    for &(start, end) in frames {
        if let Ok(Some(packet)) = mqttrs::decode_slice(&stream[start..end]) {
            black_box(&packet);
            n += 1;
        }
    }
    n
}

fn bench_decode(c: &mut Criterion, s: &Scenario) {
    let limits = Limits::mqtt_3_1_1();
    let mut group = c.benchmark_group(format!("decode/{}", s.id));
    group.throughput(Throughput::Bytes(s.stream.len() as u64));
    let buf = BytesMut::from(&s.stream[..]);
    group.bench_function("ours_borrowed", |b| {
        b.iter(|| ours_borrowed(black_box(&s.stream), &limits))
    });
    group.bench_function("ours_bytesmut", |b| {
        b.iter_batched(
            || buf.clone(),
            |buf| ours_bytes(buf, &limits),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rumqttc", |b| {
        b.iter_batched(|| buf.clone(), rumqttc_read, BatchSize::SmallInput)
    });
    group.bench_function("mqttrs", |b| {
        b.iter(|| mqttrs_decode(black_box(&s.stream), &s.frames))
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion, s: &Scenario) {
    let limits = Limits::mqtt_3_1_1();
    // Each codec's own packet values, decoded from the same stream.
    let mut ours = Vec::new();
    let mut pos = 0;
    while let Ok(Decoded::Complete { packet, len }) = decode_with(&s.stream[pos..], &limits) {
        ours.push(packet);
        pos += len;
    }
    let mut rbuf = BytesMut::from(&s.stream[..]);
    let mut theirs = Vec::new();
    while let Ok(p) = rumqttc::mqttbytes::v4::Packet::read(&mut rbuf, MAX) {
        theirs.push(p);
    }
    let mqttrs_packets: Vec<_> = s
        .frames
        .iter()
        .map(|&(a, b)| mqttrs::decode_slice(&s.stream[a..b]).unwrap().unwrap())
        .collect();
    assert_eq!(
        (ours.len(), theirs.len(), mqttrs_packets.len()),
        (PACKETS, PACKETS, PACKETS)
    );

    let mut group = c.benchmark_group(format!("encode/{}", s.id));
    group.throughput(Throughput::Bytes(s.stream.len() as u64));
    let mut out = BytesMut::with_capacity(s.stream.len() * 2);
    group.bench_function("ours_bytesmut", |b| {
        b.iter(|| {
            out.clear();
            for p in &ours {
                p.encode(&mut out).unwrap();
            }
            black_box(out.len())
        })
    });
    let mut slice = vec![0u8; s.stream.len() * 2];
    group.bench_function("ours_slice", |b| {
        b.iter(|| {
            let mut at = 0;
            for p in &ours {
                at += p.encode_to_slice(&mut slice[at..]).unwrap();
            }
            black_box(at)
        })
    });
    group.bench_function("rumqttc", |b| {
        b.iter(|| {
            out.clear();
            for p in &theirs {
                p.write(&mut out, MAX).unwrap();
            }
            black_box(out.len())
        })
    });
    group.bench_function("mqttrs", |b| {
        b.iter(|| {
            let mut at = 0;
            for p in &mqttrs_packets {
                at += mqttrs::encode_slice(p, &mut slice[at..]).unwrap();
            }
            black_box(at)
        })
    });
    group.finish();
}

/// Heap allocations per decoded packet for each decoder on a scenario's stream (buffer set-up not
/// counted).
fn allocations(s: &Scenario) -> [(&'static str, f64); 4] {
    let limits = Limits::mqtt_3_1_1();
    let count = |f: &mut dyn FnMut() -> usize| {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let n = f();
        assert_eq!(n, PACKETS);
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / n as f64
    };
    let buf = BytesMut::from(&s.stream[..]);
    let mut b1 = Some(buf.clone());
    let mut b2 = Some(buf.clone());
    [
        (
            "ours_borrowed",
            count(&mut || ours_borrowed(&s.stream, &limits)),
        ),
        (
            "ours_bytesmut",
            count(&mut || ours_bytes(b1.take().unwrap(), &limits)),
        ),
        ("rumqttc", count(&mut || rumqttc_read(b2.take().unwrap()))),
        ("mqttrs", count(&mut || mqttrs_decode(&s.stream, &s.frames))),
    ]
}

fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let mut dir = std::env::current_dir().unwrap();
    loop {
        let candidate = dir.join("target").join("criterion");
        if candidate.is_dir() || !dir.pop() {
            return candidate;
        }
    }
}

/// Mean time per iteration in nanoseconds, from criterion's saved estimate.
fn mean_ns(group: &str, bench: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group.replace('/', "_"))
        .join(bench)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn human(value: f64, unit: &str) -> String {
    if value >= 1e9 {
        format!("{:.2} G{unit}", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.1} M{unit}", value / 1e6)
    } else {
        format!("{:.0} k{unit}", value / 1e3)
    }
}

fn report(scenarios: &[Scenario]) {
    println!("\n## mqtt-codec vs rumqttc (mqttbytes::v4) vs mqttrs\n");
    for s in scenarios {
        let allocs = allocations(s);
        println!(
            "### {} ({} packets, {} bytes per iteration)\n",
            s.title,
            PACKETS,
            s.stream.len()
        );
        println!(
            "| operation | codec | packets/s | bytes/s | vs rumqttc | allocations per decode |"
        );
        println!("|---|---|---|---|---|---|");
        for (op, benches) in [
            (
                "decode",
                &["ours_borrowed", "ours_bytesmut", "rumqttc", "mqttrs"][..],
            ),
            (
                "encode",
                &["ours_bytesmut", "ours_slice", "rumqttc", "mqttrs"][..],
            ),
        ] {
            let group = format!("{op}/{}", s.id);
            let baseline = mean_ns(&group, "rumqttc");
            for bench in benches {
                let Some(ns) = mean_ns(&group, bench) else {
                    continue;
                };
                let secs = ns / 1e9;
                let ratio = baseline
                    .map(|b| format!("{:.2}x", b / ns))
                    .unwrap_or_default();
                let alloc = if op == "decode" {
                    allocs
                        .iter()
                        .find(|(n, _)| n == bench)
                        .map(|(_, a)| format!("{a:.2}"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                println!(
                    "| {op} | {bench} | {} | {} | {ratio} | {alloc} |",
                    human(PACKETS as f64 / secs, "pkt/s"),
                    human(s.stream.len() as f64 / secs, "B/s"),
                );
            }
        }
        println!();
    }
}

fn main() {
    let scenarios = scenarios();
    let mut criterion = Criterion::default().configure_from_args();
    for s in &scenarios {
        bench_decode(&mut criterion, s);
        bench_encode(&mut criterion, s);
    }
    criterion.final_summary();
    // `cargo test --benches` runs this binary in test mode: skip the report there.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        report(&scenarios);
    }
}
