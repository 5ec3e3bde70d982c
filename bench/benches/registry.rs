//! The shared subscription registry: the lock-free lookup every PUBLISH
//! does (alone, with many patterns present, and while another thread
//! changes subscriptions), the cost of creating or removing a channel in a
//! large registry, of many patterns sharing one literal prefix, of removing
//! many channels one by one, of subscribing and dropping in one batch
//! thousands of patterns with distinct literal prefixes, and of PUBSUB
//! CHANNELS.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ringcast_core::registry::{Lookup, Namespace, Registry};

const CHANNEL: &[u8] = b"news.sports";

/// Channel creations (or removals) timed back to back before they are undone.
/// Keeps the registry within this many channels of its intended size.
const RUN: u64 = 1000;

fn registry_with_channel() -> Registry {
    let registry = Registry::new(2);
    registry.subscribe(Namespace::Global, &Bytes::from_static(CHANNEL), 0, 1);
    registry
}

fn lookup_in(registry: &Registry) -> impl FnMut() -> u64 + '_ {
    let mut out = Lookup::default();
    move || {
        registry.lookup(Namespace::Global, black_box(CHANNEL), &mut out);
        out.channel.count + out.patterns.len() as u64
    }
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/lookup");

    let registry = registry_with_channel();
    let mut run = lookup_in(&registry);
    assert_eq!(run(), 1);
    group.bench_function("1_channel", |b| b.iter(&mut run));

    // Distinct literal prefixes: the prefix index skips all of them.
    let registry = registry_with_channel();
    for i in 0..10_000 {
        registry.psubscribe(&Bytes::from(format!("other{i}.*")), 0, i);
    }
    let mut run = lookup_in(&registry);
    assert_eq!(run(), 1);
    group.bench_function("10k_patterns_indexed_away", |b| b.iter(&mut run));

    // No literal prefix: every pattern must be glob-matched (what Redis
    // does for every pattern on every publish).
    let registry = registry_with_channel();
    for i in 0..10_000 {
        registry.psubscribe(&Bytes::from(format!("*.x{i}")), 0, i);
    }
    let mut run = lookup_in(&registry);
    assert_eq!(run(), 1);
    group.bench_function("10k_patterns_unprefixed", |b| b.iter(&mut run));

    group.finish();
}

/// Runs `churn` on another thread while `f` runs; returns how many churn
/// steps happened.
fn with_churn(churn: impl Fn(u64) + Send + Sync, f: impl FnOnce()) -> u64 {
    let stop = AtomicBool::new(false);
    let steps = AtomicU64::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                churn(i);
                i += 1;
            }
            steps.store(i, Ordering::Relaxed);
        });
        f();
        stop.store(true, Ordering::Relaxed);
    });
    steps.into_inner()
}

fn lookup_under_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/lookup_under_churn");

    // Worker 1 creates and removes 1000 other channels over and over: each
    // step rewrites one shard snapshot.
    let registry = registry_with_channel();
    let names: Vec<Bytes> = (0..1000)
        .map(|i| Bytes::from(format!("churn:{i}")))
        .collect();
    let steps = with_churn(
        |i| {
            let name = &names[(i % 1000) as usize];
            if (i / 1000) % 2 == 0 {
                registry.subscribe(Namespace::Global, name, 1, i);
            } else {
                registry.unsubscribe(Namespace::Global, name, 1);
            }
        },
        || {
            let mut run = lookup_in(&registry);
            group.bench_function("other_channels", |b| b.iter(&mut run));
        },
    );
    eprintln!("  (churn thread: {steps} subscribe/unsubscribe steps on other channels)");

    // Worker 1 joins and leaves the very channel being looked up: its
    // counter and worker bit flip under the lookup's feet.
    let channel = Bytes::from_static(CHANNEL);
    let steps = with_churn(
        |i| {
            if i % 2 == 0 {
                registry.subscribe(Namespace::Global, &channel, 1, i);
            } else {
                registry.unsubscribe(Namespace::Global, &channel, 1);
            }
        },
        || {
            let mut run = lookup_in(&registry);
            group.bench_function("same_channel", |b| b.iter(&mut run));
        },
    );
    eprintln!("  (churn thread: {steps} subscribe/unsubscribe steps on the looked-up channel)");

    group.finish();
}

fn filled(channels: usize) -> Registry {
    let registry = Registry::new(2);
    for i in 0..channels {
        registry.subscribe(
            Namespace::Global,
            &Bytes::from(format!("ch:{i}")),
            0,
            i as u64,
        );
    }
    registry
}

/// Times `timed` over runs of fresh channels, undoing each run with `undo`
/// (untimed) so the registry keeps its size.
fn runs(
    iters: u64,
    names: &[Bytes],
    mut prepare: impl FnMut(&Bytes),
    mut timed: impl FnMut(&Bytes),
    mut undo: impl FnMut(&Bytes),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let run = &names[..left.min(RUN) as usize];
        run.iter().for_each(&mut prepare);
        let start = Instant::now();
        run.iter().for_each(&mut timed);
        total += start.elapsed();
        run.iter().for_each(&mut undo);
        left -= run.len() as u64;
    }
    total
}

fn create_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/channel");
    let names: Vec<Bytes> = (0..RUN).map(|i| Bytes::from(format!("new:{i}"))).collect();
    for (label, size) in [("100k", 100_000), ("1M", 1_000_000)] {
        let registry = filled(size);
        assert_eq!(registry.channel_count(Namespace::Global), size);
        let sub = |name: &Bytes| registry.subscribe(Namespace::Global, name, 0, 0);
        let unsub = |name: &Bytes| registry.unsubscribe(Namespace::Global, name, 0);
        group.bench_function(BenchmarkId::new("subscribe_new", label), |b| {
            b.iter_custom(|iters| runs(iters, &names, |_| {}, sub, unsub))
        });
        group.bench_function(BenchmarkId::new("unsubscribe_last", label), |b| {
            b.iter_custom(|iters| runs(iters, &names, sub, unsub, |_| {}))
        });
        assert_eq!(registry.channel_count(Namespace::Global), size);
    }
    group.finish();
}

/// Patterns that all share the literal prefix `news.`, one bucket.
fn same_prefix_patterns(n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("news.*.{i}"))).collect()
}

/// Times `timed` on a registry prepared by `prepare` (untimed), once per
/// iteration.
fn batches(
    iters: u64,
    mut prepare: impl FnMut() -> Registry,
    mut timed: impl FnMut(&Registry),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let registry = prepare();
        let start = Instant::now();
        timed(&registry);
        total += start.elapsed();
    }
    total
}

/// PSUBSCRIBE and PUNSUBSCRIBE of thousands of patterns sharing one prefix
/// (each batch is one iteration), and the publish lookup in such a bucket.
fn pattern_bucket(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/pattern_bucket");
    group.sample_size(10);
    for (label, n) in [("20k", 20_000), ("40k", 40_000)] {
        let patterns = same_prefix_patterns(n);
        let subscribe_all = |registry: &Registry| {
            for (i, p) in patterns.iter().enumerate() {
                registry.psubscribe(p, 0, i as u64);
            }
        };
        group.bench_function(BenchmarkId::new("psubscribe_all", label), |b| {
            b.iter_custom(|iters| batches(iters, || Registry::new(2), subscribe_all))
        });
        let filled = || {
            let registry = Registry::new(2);
            subscribe_all(&registry);
            registry
        };
        group.bench_function(BenchmarkId::new("punsubscribe_all", label), |b| {
            b.iter_custom(|iters| {
                batches(iters, filled, |registry| {
                    for p in &patterns {
                        registry.punsubscribe(p, 0);
                    }
                    assert_eq!(registry.pattern_count(), 0);
                })
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("registry/pattern_bucket_lookup");
    for (label, n) in [("1", 1), ("10k", 10_000)] {
        let registry = registry_with_channel();
        for (i, p) in same_prefix_patterns(n).iter().enumerate() {
            registry.psubscribe(p, 0, i as u64);
        }
        // `news.sports` starts with the bucket's prefix: every pattern of
        // the bucket is glob-matched, none matches.
        let mut run = lookup_in(&registry);
        assert_eq!(run(), 1);
        group.bench_function(BenchmarkId::new("publish", label), |b| b.iter(&mut run));
    }
    group.finish();
}

/// Patterns that each have their own literal prefix (`news.<i>.*`), one
/// bucket each, as `PSUBSCRIBE news.0.* … news.19999.*` makes them.
fn distinct_prefix_patterns(n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("news.{i}.*"))).collect()
}

/// PSUBSCRIBE of 20,000 patterns with distinct literal prefixes, and their
/// PUNSUBSCRIBE in one batch (what one command naming them all, or none,
/// asks of the registry); each batch is one iteration.
fn pattern_prefixes(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/pattern_prefixes");
    group.sample_size(10);
    let patterns = distinct_prefix_patterns(20_000);
    let subscribe_all = |registry: &Registry| {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| registry.psubscribe_name(p, 0, i as u64 + 1))
            .collect::<Vec<_>>()
    };
    group.bench_function("psubscribe_20k", |b| {
        b.iter_custom(|iters| {
            batches(
                iters,
                || Registry::new(2),
                |registry| drop(subscribe_all(registry)),
            )
        })
    });
    group.bench_function("punsubscribe_20k_one_batch", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let registry = Registry::new(2);
                let names = subscribe_all(&registry);
                let start = Instant::now();
                registry.punsubscribe_names(&names, 0);
                total += start.elapsed();
                assert_eq!(registry.pattern_count(), 0);
            }
            total
        })
    });
    group.finish();
}

/// Unsubscribing 80,000 channels one by one, each its channel's only
/// subscriber (what closing a connection that held them does): each removal
/// copies one small shard, so the whole run should be linear.
fn unsubscribe_many(c: &mut Criterion) {
    const CHANNELS: usize = 80_000;
    let mut group = c.benchmark_group("registry/unsubscribe_many");
    group.sample_size(10);
    let names: Vec<Bytes> = (0..CHANNELS)
        .map(|i| Bytes::from(format!("conn:1:ch:{i}")))
        .collect();
    let filled = || {
        let registry = Registry::new(2);
        for (i, name) in names.iter().enumerate() {
            registry.subscribe(Namespace::Global, name, 0, i as u64);
        }
        registry
    };
    group.bench_function("80k_channels", |b| {
        b.iter_custom(|iters| {
            batches(iters, filled, |registry| {
                for name in &names {
                    registry.unsubscribe(Namespace::Global, name, 0);
                }
                assert_eq!(registry.channel_count(Namespace::Global), 0);
            })
        })
    });
    group.finish();
}

/// PUBSUB CHANNELS on an empty, a nearly empty and a large namespace.
fn channels(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/channels");
    for (label, n) in [("0", 0), ("10", 10), ("100k", 100_000)] {
        let registry = filled(n);
        assert_eq!(registry.channels(Namespace::Global, None).len(), n);
        group.bench_function(label, |b| {
            b.iter(|| registry.channels(Namespace::Global, black_box(None)).len())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = lookup, lookup_under_churn, create_remove, pattern_bucket, pattern_prefixes, unsubscribe_many, channels
}
criterion_main!(benches);
