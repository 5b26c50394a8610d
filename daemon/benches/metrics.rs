//! The cost of the metrics hot path next to its physical floor, and the cost of encoding the registry.
//!
//! Run: `cargo bench -p doradurad --bench metrics`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use doradura_proto::types::{ErrorType, Format};
use doradurad::metrics::Metrics;
use prometheus::{IntCounterVec, Opts};

const OPS: u64 = 2_000_000;
const ROUNDS: usize = 7;

/// Median nanoseconds per operation over `ROUNDS` rounds of `ops` calls.
fn ns_per_op(ops: u64, mut f: impl FnMut(u64)) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..ops {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    let m = Metrics::new();
    let atomic = AtomicU64::new(0);
    let floor = ns_per_op(OPS, |i| {
        black_box(atomic.fetch_add(black_box(i) & 1, Ordering::Relaxed));
    });
    let counter = ns_per_op(OPS, |_| {
        m.download_failed(black_box(Format::Mp4), black_box(ErrorType::Network))
    });
    let outcome = ns_per_op(OPS, |i| {
        m.download_done(black_box(Format::Mp3), black_box("192k"), 1.5, i & 1023)
    });
    // What the hot path avoids: resolving the label set on every event.
    let by_labels = IntCounterVec::new(Opts::new("bench_by_labels_total", "bench"), &["format", "quality"]).unwrap();
    let lookup = ns_per_op(OPS, |_| {
        by_labels
            .with_label_values(&[black_box("mp3"), black_box("192k")])
            .inc()
    });

    println!("| operation | ns/op | × atomic fetch_add |");
    println!("|---|---|---|");
    for (name, v) in [
        ("`AtomicU64::fetch_add` (floor)", floor),
        ("one failure counted (resolved handle)", counter),
        ("one download outcome (counter + histogram + bytes)", outcome),
        ("one counter via `with_label_values` (label-hash lookup)", lookup),
    ] {
        println!("| {name} | {v:.1} | {:.1} |", v / floor);
    }

    let encode = |m: &Metrics| {
        let mut rounds: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                black_box(m.encode());
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        rounds[ROUNDS / 2]
    };
    let shipped_series = m.encode().lines().filter(|l| !l.starts_with('#')).count();
    let shipped = encode(&m);
    let wide = IntCounterVec::new(Opts::new("bench_wide_total", "bench"), &["id"]).unwrap();
    m.registry().register(Box::new(wide.clone())).unwrap();
    let extra = 10_000 - shipped_series.min(10_000);
    for i in 0..extra {
        wide.with_label_values(&[&i.to_string()]).inc();
    }
    let big_series = m.encode().lines().filter(|l| !l.starts_with('#')).count();
    let big = encode(&m);
    println!();
    println!("| registry | series | encode p50 (ms) |");
    println!("|---|---|---|");
    println!("| shipped | {shipped_series} | {shipped:.3} |");
    println!("| padded | {big_series} | {big:.3} |");
}
