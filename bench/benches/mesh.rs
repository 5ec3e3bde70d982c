//! The inter-worker mesh rings: the cost per item of handing messages from
//! one worker to another, across two threads and within one.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringcast_core::frame::{Message, SharedMessage};
use ringcast_core::mesh::{Endpoint, Weigh, mesh};
use ringcast_core::registry::Namespace;

/// The server's ring size between two workers.
const RING: usize = 1024;

/// Items pushed between two `flush` calls in the single-thread bench (one
/// event-loop turn's worth).
const TURN: usize = 64;

fn message() -> SharedMessage {
    Arc::new(Message::new(
        Namespace::Global,
        b"news.sports",
        &[b'x'; 64],
        true,
        [],
        None,
        &[],
        0,
    ))
}

/// A plain item for the rings (they bound bytes too: it weighs its size).
struct Word(u64);

impl Weigh for Word {
    fn weight(&self) -> usize {
        std::mem::size_of_val(&self.0)
    }
}

/// Worker 0 (this thread) pushes `iters` items to worker 1 (another thread,
/// draining in a loop); timed until worker 1 has popped them all. Either side
/// yields its core while it has nothing to do, so the figure stays meaningful
/// when the two threads share a core.
fn cross_thread<T: Send + Weigh + 'static>(c: &mut Criterion, name: &str, make: impl Fn() -> T) {
    let (_bells, mut endpoints) = mesh::<T>(2, RING, usize::MAX);
    let mut consumer: Endpoint<T> = endpoints.pop().expect("two endpoints");
    let mut producer = endpoints.pop().expect("two endpoints");
    let popped = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let popped = Arc::clone(&popped);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = consumer.drain(|_, item| drop(black_box(item)));
                if n == 0 {
                    thread::yield_now();
                } else {
                    popped.fetch_add(n as u64, Ordering::Release);
                }
            }
        })
    };
    let mut group = c.benchmark_group("mesh/two_threads");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let target = popped.load(Ordering::Acquire) + iters;
            let start = Instant::now();
            for _ in 0..iters {
                let mut item = make();
                while let Err(back) = producer.push(1, item) {
                    // Ring full: the real producer would park its publisher.
                    item = back;
                    thread::yield_now();
                }
            }
            producer.flush();
            while popped.load(Ordering::Acquire) < target {
                thread::yield_now();
            }
            start.elapsed()
        })
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("drain thread");
}

fn two_threads(c: &mut Criterion) {
    cross_thread(c, "u64", || Word(7));
    // As a publish does: a new message per item, built by the producer and
    // freed by the consumer.
    cross_thread(c, "fresh_message", || {
        Arc::new(Message::new(
            Namespace::Global,
            b"news.sports",
            b"hi",
            true,
            [],
            None,
            &[],
            0,
        ))
    });
    // One message cloned for every item: producer and consumer contend on
    // its reference count, as when one message goes to many workers.
    let shared = message();
    cross_thread(c, "same_message", move || Arc::clone(&shared));
}

/// One turn on one thread: push [`TURN`] items and flush, then drain them.
/// Timed as a whole, and each half alone (the other half untimed).
fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("mesh/one_thread");
    group.throughput(Throughput::Elements(TURN as u64));
    let (_bells, mut endpoints) = mesh::<SharedMessage>(2, RING, usize::MAX);
    let shared = message();
    let (a, b) = endpoints.split_at_mut(1);
    let (producer, consumer) = (&mut a[0], &mut b[0]);
    let mut push = || {
        for _ in 0..TURN {
            let pushed = producer.push(1, Arc::clone(&shared));
            assert!(pushed.is_ok(), "the ring holds a whole turn");
        }
        producer.flush();
    };
    let mut drain = || consumer.drain(|_, item| drop(black_box(item)));
    group.bench_function("push_flush_drain_64", |bench| {
        bench.iter(|| {
            push();
            drain()
        })
    });
    group.bench_function("push_flush_64", |bench| {
        bench.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                push();
                timed += start.elapsed();
                drain();
            }
            timed
        })
    });
    group.bench_function("drain_64", |bench| {
        bench.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                push();
                let start = Instant::now();
                drain();
                timed += start.elapsed();
            }
            timed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = two_threads, one_thread
}
criterion_main!(benches);
