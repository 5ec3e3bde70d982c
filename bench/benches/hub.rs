//! One PUBLISH end to end through a worker's hub, sans I/O: decode, command
//! dispatch, registry lookup, frame building, fan-out into the output queues
//! of local subscribers, and the publisher's reply. Also one connection's
//! PSUBSCRIBE of 20,000 patterns and their PUNSUBSCRIBE (by name and
//! without arguments), each command one `Hub::input` call.
//!
//! PUBLISHes are fed one `Hub::input` call each, timed in runs of [`RUN`]
//! (so the clock is read twice per run, not per publish);
//! between runs every connection's output is taken and marked sent the way
//! its writer would, so queues stay small.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_core::config::Config;
use ringcast_core::hub::{ConnKey, Hub, Input, Output};
use ringcast_core::mesh::mesh;
use ringcast_core::shared::{ServerInfo, Shared};

const RUN: u64 = 32;

/// A one-worker hub with `subscribers` connections subscribed to `channel`,
/// plus one publisher connection.
struct Setup {
    hub: Hub,
    subscribers: Vec<ConnKey>,
    publisher: ConnKey,
    batch: Vec<Bytes>,
}

impl Setup {
    /// With `acl_patterns`, every connection first authenticates as a user
    /// holding that many channel patterns, of which only the last allows
    /// `channel` (as `ringcast-bench compare --acl-patterns` does), so each
    /// PUBLISH is checked against all of them.
    fn new(subscribers: usize, channel: &[u8], acl_patterns: Option<usize>) -> Self {
        let (doorbells, mut endpoints) = mesh(1, 1024, 64 << 20);
        let info = ServerInfo {
            started: Instant::now(),
            pid: std::process::id(),
            run_id: "0".repeat(40),
            port: 6379,
            workers: 1,
            io_backend: "none".into(),
            config_file: String::new(),
            executable: String::new(),
        };
        let shared = Arc::new(Shared::new(Config::default(), info, doorbells));
        let endpoint = endpoints.pop().expect("one endpoint");
        let mut hub = Hub::new(0, shared, endpoint);
        // Set-up feeds assert whole turns, however slow the machine.
        hub.set_turn_time(std::time::Duration::MAX);
        let mut setup = Setup {
            hub,
            subscribers: Vec::new(),
            publisher: 0,
            batch: Vec::new(),
        };
        let addr: SocketAddr = "127.0.0.1:6379".parse().expect("address");
        let auth = acl_patterns.map(|n| {
            let mut rule: Vec<Vec<u8>> = ["ACL", "SETUSER", "u", "on", ">p", "+@all"]
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect();
            // The denying patterns share the channel's first half, so each
            // is ruled out only past it, as in `compare --acl-patterns`.
            let prefix = &channel[..channel.len() / 2];
            for i in 1..n {
                rule.push([b"&", prefix, format!("deny{i}:*").as_bytes()].concat());
            }
            rule.push([b"&", prefix, b"*"].concat());
            let rule: Vec<&[u8]> = rule.iter().map(Vec::as_slice).collect();
            let admin = setup.hub.connect(addr, addr);
            setup.feed(admin, &common::command(&rule));
            common::command(&[b"AUTH", b"u", b"p"])
        });
        let subscribe = common::command(&[b"SUBSCRIBE", channel]);
        for _ in 0..=subscribers {
            let key = setup.hub.connect(addr, addr);
            if let Some(auth) = &auth {
                setup.feed(key, auth);
                assert_eq!(setup.take_output(key), b"+OK\r\n", "AUTH as the ACL user");
            }
            setup.subscribers.push(key);
        }
        setup.publisher = setup
            .subscribers
            .pop()
            .expect("one more than the subscribers");
        for key in setup.subscribers.clone() {
            setup.feed(key, &subscribe);
        }
        setup.drain();
        setup
    }

    fn feed(&mut self, key: ConnKey, request: &[u8]) {
        let mut buf = BytesMut::from(request);
        assert_eq!(self.hub.input(key, &mut buf), Input::NeedMore);
    }

    /// Take and "send" everything queued for one connection.
    fn take_output(&mut self, key: ConnKey) -> Vec<u8> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Output::Write(n)) =
            self.hub.poll_output(key, &mut cx, &mut self.batch)
        {
            self.hub.sent(key, n);
            out.extend(self.batch.drain(..).flat_map(|b| b.to_vec()));
        }
        out
    }

    /// Take and "send" everything queued for every connection; returns bytes.
    fn drain(&mut self) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        let mut total = 0;
        for &key in self.subscribers.iter().chain([&self.publisher]) {
            while let Poll::Ready(Output::Write(n)) =
                self.hub.poll_output(key, &mut cx, &mut self.batch)
            {
                self.hub.sent(key, n);
                self.batch.clear();
                total += n;
            }
        }
        total
    }
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub/publish");
    group.throughput(Throughput::Elements(1));
    for (payload_name, payload_len) in [("64B", 64), ("4KiB", 4096)] {
        for subscribers in [1usize, 100] {
            let id = BenchmarkId::new(payload_name, format!("{subscribers}_subscribers"));
            publish_one(&mut group, id, subscribers, payload_len, None);
        }
    }
    group.finish();

    // The default user against one holding ten channel patterns: what the
    // permission checks add to a PUBLISH and its deliveries.
    let mut group = c.benchmark_group("hub/publish_acl");
    group.throughput(Throughput::Elements(1));
    for subscribers in [1usize, 100] {
        for (user, acl) in [("default", None), ("acl10", Some(10))] {
            let id = BenchmarkId::new(user, format!("{subscribers}_subscribers"));
            publish_one(&mut group, id, subscribers, 64, acl);
        }
    }
    group.finish();
}

fn publish_one(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    subscribers: usize,
    payload_len: usize,
    acl_patterns: Option<usize>,
) {
    let channel = b"news.sports";
    let mut setup = Setup::new(subscribers, channel, acl_patterns);
    let request = common::command(&[b"PUBLISH", channel, &vec![b'x'; payload_len]]);
    // One read buffer per PUBLISH of a run, each refilled and fed
    // to its own `input` call, as if each came in its own read.
    let mut bufs: Vec<BytesMut> = (0..RUN)
        .map(|_| BytesMut::with_capacity(request.len()))
        .collect();
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let run = &mut bufs[..left.min(RUN) as usize];
                for buf in run.iter_mut() {
                    buf.extend_from_slice(&request);
                }
                let start = Instant::now();
                for buf in run.iter_mut() {
                    setup.hub.input(setup.publisher, buf);
                    setup.hub.flush_rings();
                }
                timed += start.elapsed();
                assert!(run.iter().all(|buf| buf.is_empty()));
                assert!(setup.drain() > 0);
                left -= run.len() as u64;
            }
            timed
        })
    });
    // Every subscriber got every message: nothing was dropped.
    let stats = &setup.hub.shared().stats[0];
    let delivered = stats.messages_delivered.load(Ordering::Relaxed);
    let published = stats.messages_published.load(Ordering::Relaxed);
    assert_eq!(delivered, published * subscribers as u64);
}

/// One connection's `PSUBSCRIBE news.0.* … news.19999.*` (each pattern its
/// own literal prefix), and the `PUNSUBSCRIBE` of them all by name or
/// without arguments, fed as one command each to a fresh hub per
/// iteration; confirmations are encoded in the timed part, taken after.
fn patterns(c: &mut Criterion) {
    const PATTERNS: usize = 20_000;
    let names: Vec<Vec<u8>> = (0..PATTERNS)
        .map(|i| format!("news.{i}.*").into_bytes())
        .collect();
    let command_of = |verb: &'static [u8], with_names: bool| {
        let mut args: Vec<&[u8]> = vec![verb];
        if with_names {
            args.extend(names.iter().map(Vec::as_slice));
        }
        common::command(&args)
    };
    let psubscribe = command_of(b"PSUBSCRIBE", true);
    let mut group = c.benchmark_group("hub/patterns_20k");
    group.sample_size(10);
    let mut run = |id: &str, timed: Option<Vec<u8>>| {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut setup = Setup::new(0, b"unused", None);
                    let conn = setup.publisher;
                    let mut buf = BytesMut::from(&psubscribe[..]);
                    let start = Instant::now();
                    setup.hub.input(conn, &mut buf);
                    if let Some(request) = &timed {
                        setup.take_output(conn);
                        buf.extend_from_slice(request);
                        let start = Instant::now();
                        setup.hub.input(conn, &mut buf);
                        total += start.elapsed();
                    } else {
                        total += start.elapsed();
                    }
                    assert!(buf.is_empty());
                    assert!(!setup.take_output(conn).is_empty());
                    let left = if timed.is_some() { 0 } else { PATTERNS };
                    assert_eq!(setup.hub.shared().registry.pattern_count(), left);
                }
                total
            })
        });
    };
    run("psubscribe", None);
    run(
        "punsubscribe_by_name",
        Some(command_of(b"PUNSUBSCRIBE", true)),
    );
    run("punsubscribe_all", Some(command_of(b"PUNSUBSCRIBE", false)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = publish, patterns
}
criterion_main!(benches);
