//! Building a `message` frame once per publish, and fanning it out into the
//! output queues of N local subscribers (RESP2 copies or shares the RESP2
//! bytes; RESP3 rewrites the leading `*` to `>`).
//!
//! Fan-out is timed in runs of [`RUN`] publishes; between runs every queue is
//! emptied the way a connection writer does (take, sent, drop the batch), so
//! memory stays bounded and the queues look like those of live subscribers.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_core::frame::{self, FrameRef};
use ringcast_core::output::OutputQueue;
use ringcast_core::registry::Namespace;
use ringcast_core::resp::encode::Proto;

const SIZES: [(&str, usize); 3] = [("64B", 64), ("4KiB", 4096), ("64KiB", 65536)];

/// Publishes timed back to back before the queues are drained.
const RUN: u64 = 32;

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame/build");
    for (name, len) in SIZES {
        let payload = vec![b'x'; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| frame::message(Namespace::Global, black_box(b"news.sports"), &payload).0)
        });
    }
    group.finish();
}

fn drain(queues: &mut [OutputQueue], batch: &mut Vec<Bytes>) {
    for q in queues {
        let n = q.take(batch);
        q.sent(n);
        batch.clear();
    }
}

fn fanout(c: &mut Criterion) {
    for (proto, proto_name) in [(Proto::Resp2, "resp2"), (Proto::Resp3, "resp3")] {
        let mut group = c.benchmark_group(format!("frame/fanout/{proto_name}"));
        for (size, len) in SIZES {
            let (frame, _) = frame::message(Namespace::Global, b"news.sports", &vec![b'x'; len]);
            for subscribers in [1usize, 100, 1000] {
                let mut queues: Vec<OutputQueue> =
                    (0..subscribers).map(|_| OutputQueue::default()).collect();
                let mut batch = Vec::new();
                group.throughput(Throughput::Elements(subscribers as u64));
                let id = BenchmarkId::new(size, subscribers);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let mut timed = Duration::ZERO;
                        let mut left = iters;
                        while left > 0 {
                            let run = left.min(RUN);
                            let start = Instant::now();
                            for _ in 0..run {
                                for q in queues.iter_mut() {
                                    let f = FrameRef {
                                        head: black_box(&frame),
                                        body: None,
                                    };
                                    q.push_frame(f, proto);
                                }
                            }
                            timed += start.elapsed();
                            drain(&mut queues, &mut batch);
                            left -= run;
                        }
                        timed
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = build, fanout
}
criterion_main!(benches);
