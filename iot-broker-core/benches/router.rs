//! Criterion benchmarks of the subscription trie: matches per second with 1k, 100k and 1M
//! subscriptions, exact-heavy and wildcard-heavy, and heap bytes per subscription (counted by a
//! wrapping allocator, printed after criterion's output).
//!
//! Run: `cargo bench -p iot-broker-core --bench router`.

#![allow(missing_docs, clippy::unwrap_used, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{Criterion, Throughput};
use iot_broker_core::codec::QoS;
use iot_broker_core::router::{MultiLevelRule, Router};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Exact-heavy: every car subscribes to its own command topic.
fn exact_filter(i: usize) -> String {
    format!("fleet/region{}/car{i}/commands", i % 16)
}

/// Wildcard-heavy: a mix of `+` and `#` filters at several depths.
fn wildcard_filter(i: usize) -> String {
    match i % 4 {
        0 => format!("fleet/region{}/+/telemetry", i % 1000),
        1 => format!("fleet/+/car{i}/#"),
        2 => format!("fleet/region{}/car{}/+", i % 16, i % 5000),
        _ => format!("+/region{}/#", i % 100),
    }
}

fn build(n: usize, filter: fn(usize) -> String) -> (Router<u32>, isize) {
    let before = LIVE.load(Ordering::Relaxed);
    let mut router = Router::new(MultiLevelRule::ExcludesParent);
    for i in 0..n {
        router
            .subscribe(&filter(i), i as u32, QoS::AtLeastOnce)
            .unwrap();
    }
    (router, LIVE.load(Ordering::Relaxed) - before)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut memory = Vec::new();
    for n in [1_000usize, 100_000, 1_000_000] {
        for (kind, filter) in [
            ("exact", exact_filter as fn(usize) -> String),
            ("wildcard", wildcard_filter),
        ] {
            let (router, bytes) = build(n, filter);
            let leaf = if kind == "exact" {
                "commands"
            } else {
                "telemetry"
            };
            let topics: Vec<String> = (0..256)
                .map(|k| (k * 7919) % n)
                .map(|car| format!("fleet/region{}/car{car}/{leaf}", car % 16))
                .collect();
            let deliveries: usize = topics.iter().map(|t| router.matches(t).len()).sum();
            memory.push((
                kind,
                n,
                bytes as f64 / n as f64,
                deliveries as f64 / topics.len() as f64,
            ));
            let mut group = c.benchmark_group(format!("router_match/{kind}"));
            group.throughput(Throughput::Elements(topics.len() as u64));
            group.bench_function(format!("{n}"), |b| {
                b.iter(|| {
                    let mut delivered = 0;
                    for t in &topics {
                        delivered += router.matches(black_box(t)).len();
                    }
                    delivered
                })
            });
            group.finish();
        }
    }
    c.final_summary();
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        println!(
            "\n| filters | subscriptions | heap bytes per subscription | deliveries per topic |"
        );
        println!("|---|---|---|---|");
        for (kind, n, per, fanout) in memory {
            println!("| {kind} | {n} | {per:.0} | {fanout:.1} |");
        }
    }
}
