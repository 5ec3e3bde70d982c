//! Sans-IO tests of the hub: requests in, exact bytes out, across two
//! workers sharing one registry and mesh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::backlog::{LAG_LIMIT, RECENT};
use super::conn::ConnState;
use super::*;
use crate::config::{Config, OutputLimit};
use crate::registry::Namespace;
use crate::shared::{ServerInfo, Shared};
use crate::stats::Disconnect;

pub(super) struct World {
    pub(super) hubs: Vec<Hub>,
    pub(super) shared: Arc<Shared>,
}

pub(super) fn world_with(workers: usize, ring: usize, config: Config) -> World {
    let (doorbells, endpoints) = crate::mesh::mesh(workers, ring, config.bytes_per_ring(workers));
    let info = ServerInfo::for_tests(workers);
    let shared = Arc::new(Shared::new(config, info, doorbells));
    let hubs = endpoints
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut hub = Hub::new(i, shared.clone(), e);
            // Turns end by bytes alone here, whatever the machine's speed.
            hub.set_turn_time(Duration::MAX);
            hub
        })
        .collect();
    World { hubs, shared }
}

fn world(workers: usize) -> World {
    world_with(workers, 64, Config::default())
}

fn addr() -> SocketAddr {
    "127.0.0.1:5000".parse().unwrap()
}

impl World {
    pub(super) fn connect(&mut self, w: usize) -> (usize, ConnKey) {
        (w, self.hubs[w].connect(addr(), addr()))
    }

    /// Send raw bytes; returns the reader's status.
    pub(super) fn send(&mut self, c: (usize, ConnKey), bytes: &[u8]) -> Input {
        let mut buf = BytesMut::from(bytes);
        let hub = &mut self.hubs[c.0];
        let status = hub.input(c.1, &mut buf);
        hub.flush_rings();
        status
    }

    /// Everything queued for the connection so far.
    pub(super) fn output(&mut self, c: (usize, ConnKey)) -> Vec<u8> {
        let mut batch = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Output::Write(n)) =
            self.hubs[c.0].poll_output(c.1, &mut cx, &mut batch)
        {
            out.extend(batch.drain(..).flat_map(|b: Bytes| b.to_vec()));
            self.hubs[c.0].sent(c.1, n);
        }
        out
    }

    fn drain_all(&mut self) {
        for h in &mut self.hubs {
            h.drain_inbound();
        }
    }
}

pub(super) fn cmd(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend(format!("${}\r\n{a}\r\n", a.len()).bytes());
    }
    v
}

#[test]
fn subscribe_confirms_each_channel_with_running_count() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["SUBSCRIBE", "a", "b", "a"]));
    assert_eq!(
        w.output(c),
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"
    );
}

#[test]
fn publish_reaches_a_subscriber_on_another_worker() {
    let mut w = world(2);
    let sub = w.connect(1);
    let publisher = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "news"]));
    w.output(sub);
    w.send(publisher, &cmd(&["PUBLISH", "news", "hi"]));
    assert_eq!(w.output(publisher), b":1\r\n");
    assert_eq!(w.output(sub), b"");
    w.drain_all();
    assert_eq!(
        w.output(sub),
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    );
}

#[test]
fn shutdown_stops_reading_then_delivers_what_arrived_a_turn_at_a_time() {
    let mut w = world(2);
    let sub = w.connect(1);
    let publisher = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "news"]));
    w.output(sub);
    let payload = "x".repeat(16 * 1024);
    for _ in 0..8 {
        w.send(publisher, &cmd(&["PUBLISH", "news", &payload]));
    }
    w.hubs[0].stop_intake();
    w.hubs[1].stop_intake();
    assert_eq!(
        w.send(publisher, &cmd(&["PUBLISH", "news", "late"])),
        Input::Close,
        "no request is read once shutting down"
    );
    assert!(w.hubs[1].inbound_pending());
    let first = w.hubs[1].drain_turn();
    assert!((1..8).contains(&first), "a turn takes part of it: {first}");
    let mut total = first;
    while w.hubs[1].inbound_pending() {
        total += w.hubs[1].drain_turn();
    }
    assert_eq!(total, 8, "every message that arrived is delivered");
    let out = w.output(sub);
    assert_eq!(
        out.windows(payload.len())
            .filter(|x| *x == payload.as_bytes())
            .count(),
        8
    );
    assert!(!out.windows(4).any(|x| x == b"late"));
}

#[test]
fn a_subscriber_gets_nothing_published_before_its_subscribe_even_on_its_way() {
    let mut w = world(2);
    let old = w.connect(1);
    let publisher = w.connect(0);
    w.send(old, &cmd(&["SUBSCRIBE", "c"]));
    w.send(old, &cmd(&["PSUBSCRIBE", "c*"]));
    w.output(old);
    // Counted: `old` twice (channel and pattern). The message waits in the ring.
    w.send(publisher, &cmd(&["PUBLISH", "c", "before"]));
    assert_eq!(w.output(publisher), b":2\r\n");
    // Subscribed while it is on its way: not counted, so not delivered.
    let new = w.connect(1);
    w.send(new, &cmd(&["SUBSCRIBE", "c"]));
    w.send(new, &cmd(&["PSUBSCRIBE", "c*"]));
    w.output(new);
    // `old` re-subscribes to the pattern: a new subscription, not counted either.
    w.send(old, &cmd(&["PUNSUBSCRIBE", "c*"]));
    w.send(old, &cmd(&["PSUBSCRIBE", "c*"]));
    w.output(old);
    w.drain_all();
    assert_eq!(w.output(new), b"");
    assert_eq!(
        w.output(old),
        b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$6\r\nbefore\r\n"
    );
    // The next publish counts and reaches all four subscriptions.
    w.send(publisher, &cmd(&["PUBLISH", "c", "after"]));
    assert_eq!(w.output(publisher), b":4\r\n");
    w.drain_all();
    let both = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nafter\r\n*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$1\r\nc\r\n$5\r\nafter\r\n";
    assert_eq!(w.output(new), both);
    assert_eq!(w.output(old), both);
}

#[test]
fn channel_and_pattern_subscriber_counts_twice_message_first() {
    let mut w = world(1);
    let sub = w.connect(0);
    let publisher = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "n.1"]));
    w.send(sub, &cmd(&["PSUBSCRIBE", "n.*"]));
    w.output(sub);
    w.send(publisher, &cmd(&["PUBLISH", "n.1", "x"]));
    assert_eq!(w.output(publisher), b":2\r\n");
    assert_eq!(
        w.output(sub),
        b"*3\r\n$7\r\nmessage\r\n$3\r\nn.1\r\n$1\r\nx\r\n*4\r\n$8\r\npmessage\r\n$3\r\nn.*\r\n$3\r\nn.1\r\n$1\r\nx\r\n"
    );
}

#[test]
fn resp3_self_publish_gets_reply_before_its_own_push() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["HELLO", "3"]));
    w.output(c);
    w.send(c, &cmd(&["SUBSCRIBE", "me"]));
    assert_eq!(w.output(c), b">3\r\n$9\r\nsubscribe\r\n$2\r\nme\r\n:1\r\n");
    w.send(c, &cmd(&["PUBLISH", "me", "x"]));
    assert_eq!(
        w.output(c),
        b":1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$1\r\nx\r\n"
    );
}

#[test]
fn unsubscribe_without_channels_replies_null_and_zero() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["UNSUBSCRIBE"]));
    assert_eq!(w.output(c), b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    w.send(c, &cmd(&["HELLO", "3"]));
    w.output(c);
    w.send(c, &cmd(&["PUNSUBSCRIBE"]));
    assert_eq!(w.output(c), b">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n");
}

#[test]
fn resp2_subscribed_mode_rejects_other_commands_and_pings_as_array() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["SUBSCRIBE", "x"]));
    w.output(c);
    w.send(c, &cmd(&["GET", "k"]));
    assert_eq!(
        w.output(c),
        b"-ERR unknown command 'GET', with args beginning with: 'k' \r\n"
    );
    w.send(c, &cmd(&["ECHO", "k"]));
    assert_eq!(
        w.output(c),
        b"-ERR Can't execute 'echo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    w.send(c, &cmd(&["PING"]));
    assert_eq!(w.output(c), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

#[test]
fn client_reply_off_suppresses_replies_but_not_pushes() {
    let mut w = world(1);
    let c = w.connect(0);
    let p = w.connect(0);
    w.send(c, &cmd(&["CLIENT", "REPLY", "OFF"]));
    w.send(c, &cmd(&["PING"]));
    assert_eq!(w.output(c), b"");
    w.send(c, &cmd(&["SUBSCRIBE", "x"]));
    w.send(p, &cmd(&["PUBLISH", "x", "m"]));
    assert_eq!(
        w.output(c),
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\nm\r\n"
    );
}

#[test]
fn client_reply_skip_drops_only_the_next_reply() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["CLIENT", "REPLY", "SKIP"]));
    w.send(c, &cmd(&["PING", "a"]));
    w.send(c, &cmd(&["PING", "b"]));
    assert_eq!(w.output(c), b"$1\r\nb\r\n");
}

#[test]
fn protocol_error_replies_then_closes() {
    let mut w = world(1);
    let c = w.connect(0);
    assert_eq!(w.send(c, b"*1\r\nfoo\r\n"), Input::Close);
    assert_eq!(
        w.output(c),
        b"-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    let mut cx = Context::from_waker(Waker::noop());
    let mut batch = Vec::new();
    assert_eq!(
        w.hubs[0].poll_output(c.1, &mut cx, &mut batch),
        Poll::Ready(Output::Close)
    );
}

#[test]
fn protocol_error_is_silenced_by_client_reply_off_and_skip() {
    let mut w = world(1);
    for mode in ["OFF", "SKIP"] {
        let c = w.connect(0);
        w.send(c, &cmd(&["CLIENT", "REPLY", mode]));
        assert_eq!(w.send(c, b"*1\r\nfoo\r\n"), Input::Close);
        assert_eq!(w.output(c), b"", "CLIENT REPLY {mode}");
        let mut cx = Context::from_waker(Waker::noop());
        let mut batch = Vec::new();
        assert_eq!(
            w.hubs[0].poll_output(c.1, &mut cx, &mut batch),
            Poll::Ready(Output::Close)
        );
    }
    assert_eq!(w.shared.total(|s| &s.error_replies), 2, "still counted");
}

#[test]
fn full_ring_blocks_the_publisher_until_the_target_drains() {
    let mut w = world_with(2, 2, Config::default());
    let sub = w.connect(1);
    let publisher = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "c"]));
    w.output(sub);
    let mut many = Vec::new();
    for i in 0..5 {
        many.extend(cmd(&["PUBLISH", "c", &i.to_string()]));
    }
    let mut buf = BytesMut::from(&many[..]);
    assert_eq!(w.hubs[0].input(publisher.1, &mut buf), Input::Blocked);
    assert_eq!(w.output(publisher), b":1\r\n:1\r\n");
    w.hubs[1].drain_inbound();
    assert_eq!(w.hubs[0].input(publisher.1, &mut buf), Input::Blocked);
    w.hubs[1].drain_inbound();
    assert_eq!(w.hubs[0].input(publisher.1, &mut buf), Input::NeedMore);
    w.hubs[1].drain_inbound();
    assert_eq!(w.output(publisher), b":1\r\n:1\r\n:1\r\n");
    let got = w.output(sub);
    let expected: Vec<u8> = (0..5)
        .flat_map(|i| format!("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n{i}\r\n").into_bytes())
        .collect();
    assert_eq!(got, expected);
}

/// A world whose workers pause their intake past 64 KiB of unwritten output
/// (each connection counting for at most 4 KiB of it).
fn world_with_small_backlog(ring: usize) -> World {
    let config = Config {
        worker_output_backlog: 64 << 10,
        ..Config::default()
    };
    world_with(2, ring, config)
}

/// `n` connections of worker `w` subscribed to `channel`, confirmations read.
fn subscribers(w: &mut World, worker: usize, n: usize, channel: &str) -> Vec<(usize, ConnKey)> {
    (0..n)
        .map(|_| {
            let c = w.connect(worker);
            w.send(c, &cmd(&["SUBSCRIBE", channel]));
            w.output(c);
            c
        })
        .collect()
}

#[test]
fn a_worker_behind_on_its_writes_stops_taking_messages_until_they_are_written() {
    let mut w = world_with_small_backlog(4);
    let subs = subscribers(&mut w, 1, 32, "c");
    let publisher = w.connect(0);
    let payload = "x".repeat(1000);
    let mut requests = Vec::new();
    for _ in 0..40 {
        requests.extend(cmd(&["PUBLISH", "c", &payload]));
    }
    let mut buf = BytesMut::from(&requests[..]);
    let mut published = 0;
    let mut received = vec![0usize; subs.len()];
    let mut paused = false;
    while !buf.is_empty() {
        let status = w.hubs[0].input(publisher.1, &mut buf);
        w.hubs[0].flush_rings();
        published += w.output(publisher).len() / b":32\r\n".len();
        w.hubs[1].drain_inbound();
        if status == Input::Blocked && w.hubs[1].congested() {
            // Worker 1 took what it could write and stopped: the ring is
            // full and the publisher waits; nothing was dropped.
            paused = true;
            assert!(w.hubs[1].backlog() > 64 << 10);
            // Messages waiting in the ring do not wake it (an earlier ring of
            // its doorbell may, once: spurious wake-ups are allowed).
            let mut cx = Context::from_waker(Waker::noop());
            let _ = w.hubs[1].poll_idle(&mut cx);
            assert!(w.hubs[1].poll_idle(&mut cx).is_pending());
            // The subscribers read: the worker takes messages again.
            for (i, &s) in subs.iter().enumerate() {
                received[i] += w.output(s).len();
            }
            assert!(!w.hubs[1].congested());
            w.hubs[1].drain_inbound();
        }
    }
    assert!(paused, "32 KiB per subscriber should have paused worker 1");
    while w.hubs[1].drain_inbound() > 0 || w.hubs[1].congested() {
        for (i, &s) in subs.iter().enumerate() {
            received[i] += w.output(s).len();
        }
    }
    let frame = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1000\r\n".len() + 1002;
    for (i, &s) in subs.iter().enumerate() {
        received[i] += w.output(s).len();
        assert!(is_open(&w, s));
    }
    assert_eq!(published, 40);
    assert!(received.iter().all(|&n| n == 40 * frame), "{received:?}");
    let stats = w.shared.worker_stats(1);
    assert!(stats.backlog_pauses.load(Relaxed) >= 1);
    assert_eq!(
        stats
            .disconnections(Disconnect::OutputBufferLimit)
            .load(Relaxed),
        0
    );
}

#[test]
fn subscribers_that_do_not_read_stop_holding_the_worker_back_after_the_stall_time() {
    let mut w = world_with_small_backlog(4096);
    let _idle = subscribers(&mut w, 1, 32, "c");
    let publisher = w.connect(0);
    let payload = "x".repeat(1000);
    for _ in 0..10 {
        w.send(publisher, &cmd(&["PUBLISH", "c", &payload]));
        w.hubs[1].drain_inbound();
    }
    assert!(w.hubs[1].congested(), "unwritten output pauses the worker");
    let t0 = w.hubs[1].now;
    w.hubs[1].cron_at(t0 + STALL / 2);
    assert!(w.hubs[1].congested(), "not stalled yet");
    w.hubs[1].cron_at(t0 + STALL + Duration::from_millis(200));
    assert!(
        !w.hubs[1].congested(),
        "stalled subscribers no longer count"
    );
    assert_eq!(w.hubs[1].backlog(), 0);
    // The worker takes messages again; the stalled ones meet their own limits.
    assert!(
        w.hubs[1]
            .poll_idle(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
}

#[test]
fn subscriber_over_hard_output_limit_is_closed_and_counted() {
    let config = Config {
        output_limit_pubsub: OutputLimit {
            hard: 1000,
            soft: 0,
            soft_seconds: 0,
        },
        ..Config::default()
    };
    let mut w = world_with(1, 64, config);
    let slow = w.connect(0);
    let ok = w.connect(0);
    let p = w.connect(0);
    w.send(slow, &cmd(&["SUBSCRIBE", "c"]));
    w.send(ok, &cmd(&["SUBSCRIBE", "c"]));
    w.output(ok);
    // Three frames pass the uncounted 16 KiB by more than the limit.
    let payload = "x".repeat(6000);
    for _ in 0..5 {
        w.send(p, &cmd(&["PUBLISH", "c", &payload]));
        assert!(
            w.output(ok).ends_with(
                payload
                    .as_bytes()
                    .iter()
                    .chain(b"\r\n")
                    .copied()
                    .collect::<Vec<_>>()
                    .as_slice()
            )
        );
    }
    assert_eq!(w.output(p), b":2\r\n:2\r\n:2\r\n:1\r\n:1\r\n");
    let mut cx = Context::from_waker(Waker::noop());
    let mut batch = Vec::new();
    assert_eq!(
        w.hubs[0].poll_output(slow.1, &mut cx, &mut batch),
        Poll::Ready(Output::Close)
    );
    assert_eq!(
        w.shared
            .total(|s| s.disconnections(Disconnect::OutputBufferLimit)),
        1
    );
}

#[test]
fn auth_gates_commands_when_a_password_is_set() {
    let config = Config {
        requirepass: Some("pw".into()),
        ..Config::default()
    };
    let mut w = world_with(1, 64, config);
    let c = w.connect(0);
    w.send(c, &cmd(&["PING"]));
    assert_eq!(w.output(c), b"-NOAUTH Authentication required.\r\n");
    w.send(c, &cmd(&["AUTH", "nope"]));
    assert_eq!(
        w.output(c),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    w.send(c, &cmd(&["AUTH", "pw"]));
    w.send(c, &cmd(&["PING"]));
    assert_eq!(w.output(c), b"+OK\r\n+PONG\r\n");
}

#[test]
fn only_clients_that_never_authenticated_have_their_output_capped() {
    let config = Config {
        requirepass: Some("pw".into()),
        ..Config::default()
    };
    let mut w = world_with(1, 64, config);
    let pings: Vec<u8> = b"PING\r\n".repeat(1000);
    // Never authenticated: 1,000 unread NOAUTH replies (34 KB) close it.
    let stranger = w.connect(0);
    assert_eq!(w.send(stranger, &pings), Input::Close);
    assert!(!is_open(&w, stranger));
    // Logged out by RESET after a login: not held to the cap.
    let member = w.connect(0);
    w.send(member, &cmd(&["AUTH", "pw"]));
    w.send(member, &cmd(&["RESET"]));
    assert_eq!(w.send(member, &pings), Input::NeedMore);
    assert!(is_open(&w, member));
    let stats = w.shared.worker_stats(0);
    assert_eq!(
        stats
            .disconnections(Disconnect::OutputBufferLimit)
            .load(Relaxed),
        1
    );
}

#[test]
fn unknown_and_wrong_arity_errors_match_redis() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["SET", "a", "b"]));
    w.send(c, &cmd(&["PUBLISH", "a"]));
    w.send(c, &cmd(&["CLIENT", "NOPE"]));
    w.send(c, &cmd(&["DBSIZE"]));
    assert_eq!(
        w.output(c),
        &b"-ERR unknown command 'SET', with args beginning with: 'a' 'b' \r\n-ERR wrong number of arguments for 'publish' command\r\n-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n:0\r\n"[..]
    );
}

#[test]
fn reset_drops_subscriptions_silently_and_returns_to_resp2() {
    let mut w = world(1);
    let c = w.connect(0);
    let p = w.connect(0);
    w.send(c, &cmd(&["HELLO", "3"]));
    w.send(c, &cmd(&["SUBSCRIBE", "x"]));
    w.output(c);
    w.send(c, &cmd(&["RESET"]));
    assert_eq!(w.output(c), b"+RESET\r\n");
    w.send(p, &cmd(&["PUBLISH", "x", "m"]));
    assert_eq!(w.output(p), b":0\r\n");
    w.send(c, &cmd(&["CLIENT", "GETNAME"]));
    assert_eq!(w.output(c), b"$-1\r\n");
}

#[test]
fn disconnect_removes_subscriptions_from_the_registry() {
    let mut w = world(2);
    let c = w.connect(1);
    w.send(c, &cmd(&["SUBSCRIBE", "x"]));
    w.send(c, &cmd(&["PSUBSCRIBE", "y*"]));
    assert_eq!(w.shared.registry.numsub(Namespace::Global, b"x"), 1);
    w.hubs[1].disconnect(c.1);
    assert_eq!(w.shared.registry.numsub(Namespace::Global, b"x"), 0);
    assert_eq!(w.shared.registry.pattern_count(), 0);
}

// ----- operations: timeout, error and latency accounting, sampler ---------

fn world_with_timeout(seconds: u64) -> World {
    let config = Config {
        timeout: seconds,
        ..Config::default()
    };
    world_with(1, 64, config)
}

fn is_open(w: &World, c: (usize, ConnKey)) -> bool {
    w.hubs[c.0]
        .conns
        .get(c.1)
        .is_some_and(|conn| conn.state == ConnState::Open)
}

#[test]
fn idle_client_is_closed_after_timeout_but_subscribers_are_not() {
    let mut w = world_with_timeout(1);
    let plain = w.connect(0);
    let sub = w.connect(0);
    let resp3_sub = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "x"]));
    w.send(resp3_sub, &cmd(&["HELLO", "3"]));
    w.send(resp3_sub, &cmd(&["SSUBSCRIBE", "y"]));
    let t0 = w.hubs[0].now;
    w.hubs[0].cron_at(t0 + Duration::from_secs(3));
    assert!(!is_open(&w, plain), "idle for 3 s with timeout 1 s");
    assert!(is_open(&w, sub), "pub/sub clients are exempt");
    assert!(
        is_open(&w, resp3_sub),
        "shard subscribers too, whatever the protocol"
    );
    assert_eq!(
        w.shared
            .total(|s| s.disconnections(Disconnect::IdleTimeout)),
        1
    );
}

#[test]
fn reads_and_writes_keep_a_client_from_timing_out() {
    let mut w = world_with_timeout(1);
    let c = w.connect(0);
    let t0 = w.hubs[0].now;
    w.hubs[0].cron_at(t0 + Duration::from_millis(900));
    assert!(w.hubs[0].received(c.1, 10, 0));
    w.hubs[0].cron_at(t0 + Duration::from_millis(2500));
    assert!(
        is_open(&w, c),
        "1.6 s since the last read is not over 1 s in whole seconds"
    );
    w.hubs[0].cron_at(t0 + Duration::from_millis(3000));
    assert!(!is_open(&w, c), "2.1 s since the last read");
}

#[test]
fn timeout_zero_never_closes_idle_clients() {
    let mut w = world_with_timeout(0);
    let c = w.connect(0);
    let t0 = w.hubs[0].now;
    w.hubs[0].cron_at(t0 + Duration::from_secs(100_000));
    assert!(is_open(&w, c));
}

#[test]
fn timeout_set_live_applies_to_existing_clients() {
    let mut w = world_with_timeout(0);
    let admin = w.connect(0);
    let idle = w.connect(0);
    w.send(admin, &cmd(&["CONFIG", "SET", "timeout", "5"]));
    assert_eq!(w.output(admin), b"+OK\r\n");
    let t0 = w.hubs[0].now;
    w.hubs[0].cron_at(t0 + Duration::from_secs(4));
    assert!(w.hubs[0].received(admin.1, 1, 0));
    w.hubs[0].cron_at(t0 + Duration::from_secs(7));
    assert!(!is_open(&w, idle));
    assert!(is_open(&w, admin));
}

#[test]
fn error_replies_are_counted_by_code() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["NOSUCH"]));
    w.send(c, &cmd(&["AUTH", "x"]));
    w.send(c, &cmd(&["PING"]));
    w.output(c);
    assert_eq!(w.shared.total(|s| &s.error_replies), 2);
    assert_eq!(w.shared.errors.snapshot(), vec![("ERR".to_string(), 2)]);
    w.send(c, b"*1\r\n$x\r\n");
    assert_eq!(
        w.shared.total(|s| &s.error_replies),
        3,
        "protocol errors count too"
    );
}

#[test]
fn one_in_n_cross_worker_messages_feed_the_latency_histogram() {
    let mut w = world_with(2, 1024, Config::default());
    let remote = w.connect(1);
    let local = w.connect(0);
    let publisher = w.connect(0);
    w.send(remote, &cmd(&["SUBSCRIBE", "a"]));
    w.send(local, &cmd(&["SUBSCRIBE", "b"]));
    // Local-only publishes never count as crossings.
    for _ in 0..3 {
        w.send(publisher, &cmd(&["PUBLISH", "b", "local"]));
    }
    let n = LATENCY_SAMPLE_EVERY as usize;
    for _ in 0..n + 1 {
        w.send(publisher, &cmd(&["PUBLISH", "a", "x"]));
    }
    w.drain_all();
    let count = |worker: usize| {
        let mut s = crate::stats::LatencySnapshot::default();
        w.shared.stats[worker].delivery_latency.merge_into(&mut s);
        s.count()
    };
    assert_eq!(
        count(1),
        2,
        "the 1st and the {}th crossing are stamped",
        n + 1
    );
    assert_eq!(count(0), 0, "the local deliveries are not crossings");
}

#[test]
fn cron_publishes_output_buffer_gauges() {
    let mut w = world(1);
    let sub = w.connect(0);
    let publisher = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "a"]));
    w.send(publisher, &cmd(&["PUBLISH", "a", "payload"]));
    let queued = w.hubs[0].conns[sub.1].out.memory() as u64;
    assert!(queued > 0);
    w.hubs[0].cron();
    let stats = &w.shared.stats[0];
    assert_eq!(stats.max_output_buffer.load(Relaxed), queued);
    assert!(stats.output_memory.load(Relaxed) >= queued);
}

#[test]
fn cron_visits_a_slice_of_many_connections_per_run_and_all_of_them_per_round() {
    let mut w = world_with_timeout(1);
    let idle: Vec<_> = (0..2000).map(|_| w.connect(0)).collect();
    let t0 = w.hubs[0].now;
    let open = |w: &World| idle.iter().filter(|&&c| is_open(w, c)).count();
    w.hubs[0].cron_at(t0 + Duration::from_secs(3));
    let after_one = open(&w);
    assert!(
        after_one > 0 && after_one < 2000,
        "one run closes some of the idle clients, not all: {after_one} left"
    );
    for i in 1..10 {
        w.hubs[0].cron_at(t0 + Duration::from_secs(3) + Duration::from_millis(100 * i));
    }
    assert_eq!(open(&w), 0, "one round (ten runs) visits every connection");
    assert_eq!(
        w.shared
            .total(|s| s.disconnections(Disconnect::IdleTimeout)),
        2000
    );
}

#[test]
fn the_connection_tables_give_back_the_room_of_connections_that_are_gone() {
    let mut w = world(1);
    let kept = w.connect(0);
    let many: Vec<_> = (0..5000).map(|_| w.connect(0)).collect();
    assert!(w.hubs[0].conns.capacity() >= 5001);
    assert!(w.hubs[0].by_id.capacity() >= 5001);
    for c in &many {
        w.hubs[0].disconnect(c.1);
    }
    let t0 = w.hubs[0].now;
    for i in 0..20 {
        w.hubs[0].cron_at(t0 + Duration::from_millis(100 * i));
    }
    let hub = &w.hubs[0];
    assert_eq!(hub.conns.len(), 1);
    assert!(hub.conns.capacity() < 64, "slab: {}", hub.conns.capacity());
    assert!(hub.by_id.capacity() < 64, "ids: {}", hub.by_id.capacity());
    // The connection that stayed is still served under its key.
    assert_eq!(w.send(kept, &cmd(&["PING"])), Input::NeedMore);
    assert_eq!(w.output(kept), b"+PONG\r\n");
    // And new ones take the room again.
    let again: Vec<_> = (0..2000).map(|_| w.connect(0)).collect();
    w.send(again[1999], &cmd(&["PING"]));
    assert_eq!(w.output(again[1999]), b"+PONG\r\n");
}

#[test]
fn a_long_pipeline_of_publishes_is_handled_a_turn_at_a_time() {
    let mut w = world(1);
    let sub = w.connect(0);
    let publisher = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "c"]));
    w.output(sub);
    let payload = "x".repeat(16 * 1024);
    let one = cmd(&["PUBLISH", "c", &payload]);
    let mut buf = BytesMut::from(one.repeat(10).as_slice());
    let hub = &mut w.hubs[0];
    assert_eq!(hub.input(publisher.1, &mut buf), Input::Yield);
    assert_eq!(buf.len(), 6 * one.len(), "four publishes make a turn");
    assert_eq!(hub.input(publisher.1, &mut buf), Input::Yield);
    assert_eq!(hub.input(publisher.1, &mut buf), Input::NeedMore);
    assert!(buf.is_empty());
    assert_eq!(w.output(publisher), b":1\r\n".repeat(10));
}

#[test]
fn a_turn_ends_once_its_time_is_spent_and_goes_on_where_it_stopped() {
    let mut w = world(1);
    let c = w.connect(0);
    // No time at all: a turn runs its 64 commands, then yields.
    w.hubs[0].turn_time = Duration::ZERO;
    let names: Vec<String> = (0..150).map(|i| format!("ch{i}")).collect();
    let pipeline: Vec<u8> = names.iter().flat_map(|n| cmd(&["SUBSCRIBE", n])).collect();
    let first: usize = names[..64]
        .iter()
        .map(|n| cmd(&["SUBSCRIBE", n]).len())
        .sum();
    let mut buf = BytesMut::from(pipeline.as_slice());
    let hub = &mut w.hubs[0];
    assert_eq!(hub.input(c.1, &mut buf), Input::Yield);
    assert_eq!(
        buf.len(),
        pipeline.len() - first,
        "64 commands make the turn"
    );
    assert_eq!(hub.input(c.1, &mut buf), Input::Yield);
    assert_eq!(hub.input(c.1, &mut buf), Input::NeedMore);
    assert!(buf.is_empty());
    let mut expected = Vec::new();
    for (i, n) in names.iter().enumerate() {
        expected.extend_from_slice(
            format!(
                "*3\r\n$9\r\nsubscribe\r\n${}\r\n{n}\r\n:{}\r\n",
                n.len(),
                i + 1
            )
            .as_bytes(),
        );
    }
    assert_eq!(w.output(c), expected, "every command ran once, in order");
}

#[test]
fn sampler_derives_rates_and_keeps_the_memory_peak() {
    use crate::stats::{ProcessSample, Sampler};
    let mut w = world(1);
    let c = w.connect(0);
    let mut sampler = Sampler::default();
    let t0 = std::time::Instant::now();
    let sample = |allocated| ProcessSample {
        allocated,
        rss: 4096,
        ..ProcessSample::default()
    };
    sampler.tick(&w.shared.process, w.shared.totals(), t0, sample(1000));
    for _ in 0..20 {
        w.send(c, &cmd(&["PING"]));
    }
    sampler.tick(
        &w.shared.process,
        w.shared.totals(),
        t0 + Duration::from_millis(100),
        sample(5000),
    );
    sampler.tick(
        &w.shared.process,
        w.shared.totals(),
        t0 + Duration::from_millis(200),
        sample(2000),
    );
    let p = &w.shared.process;
    // 20 commands in one 100 ms interval = 200/s, averaged over 16 samples.
    assert_eq!(p.ops_per_sec.load(Relaxed), 200 / 16);
    assert_eq!(p.used_memory.load(Relaxed), 2000);
    assert_eq!(p.used_memory_peak.load(Relaxed), 5000);
    assert_eq!(p.used_memory_startup.load(Relaxed), 1000);
    sampler.tick(
        &w.shared.process,
        w.shared.totals(),
        t0 + Duration::from_millis(300),
        sample(0),
    );
    assert_eq!(
        p.used_memory.load(Relaxed),
        4096,
        "unknown allocator figure: RSS"
    );
}

#[test]
fn client_list_shows_each_clients_last_command() {
    let mut w = world(2);
    let a = w.connect(0);
    let b = w.connect(1);
    w.send(a, &cmd(&["PING"]));
    w.send(b, &cmd(&["CLIENT", "LIST"]));
    let list = String::from_utf8(w.output(b)).unwrap();
    let line_a = list.lines().find(|l| l.contains("id=1 ")).unwrap();
    assert!(line_a.contains(" cmd=ping "), "{line_a}");
    let line_b = list.lines().find(|l| l.contains("id=2 ")).unwrap();
    assert!(line_b.contains(" cmd=client|list "), "{line_b}");
    w.connect(0);
    w.send(b, &cmd(&["CLIENT", "LIST", "ID", "3"]));
    let list = String::from_utf8(w.output(b)).unwrap();
    assert!(list.contains(" cmd=NULL "), "no command yet: {list}");
}

#[test]
fn exec_paused_on_a_full_ring_resumes_at_that_publish_and_keeps_its_reply_whole() {
    let mut w = world_with(2, 2, Config::default());
    let sub = w.connect(1);
    let p = w.connect(0);
    let other = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "c"]));
    w.output(sub);
    w.send(p, &cmd(&["HELLO", "3"]));
    w.send(p, &cmd(&["SUBSCRIBE", "mine"]));
    w.output(p);
    let mut pipeline = Vec::new();
    for args in [
        &["MULTI"][..],
        &["PUBLISH", "c", "0"],
        &["PUBLISH", "c", "1"],
        &["PUBLISH", "c", "2"],
        &["PUBLISH", "mine", "self"],
        &["PING"],
        &["EXEC"],
        &["PING", "after"],
    ] {
        pipeline.extend(cmd(args));
    }
    let mut buf = BytesMut::from(&pipeline[..]);
    assert_eq!(w.hubs[0].input(p.1, &mut buf), Input::Blocked);
    let queued = "+QUEUED\r\n".repeat(5);
    assert_eq!(
        String::from_utf8_lossy(&w.output(p)),
        format!("+OK\r\n{queued}*5\r\n:1\r\n:1\r\n")
    );
    // A message for the client while its EXEC waits comes after the EXEC reply.
    w.send(other, &cmd(&["PUBLISH", "mine", "other"]));
    assert_eq!(w.output(other), b":1\r\n");
    assert_eq!(w.output(p), b"");
    w.hubs[1].drain_inbound();
    assert_eq!(w.hubs[0].input(p.1, &mut buf), Input::NeedMore);
    assert_eq!(
        String::from_utf8_lossy(&w.output(p)),
        ":1\r\n:1\r\n+PONG\r\n\
         >3\r\n$7\r\nmessage\r\n$4\r\nmine\r\n$5\r\nother\r\n\
         >3\r\n$7\r\nmessage\r\n$4\r\nmine\r\n$4\r\nself\r\n\
         $5\r\nafter\r\n"
    );
    w.drain_all();
    let expected: Vec<u8> = (0..3)
        .flat_map(|i| format!("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n{i}\r\n").into_bytes())
        .collect();
    assert_eq!(w.output(sub), expected, "each publish ran once, in order");
}

#[test]
fn exec_under_client_reply_skip_keeps_the_skip_across_a_pause() {
    let mut w = world_with(2, 1, Config::default());
    let sub = w.connect(1);
    let p = w.connect(0);
    w.send(sub, &cmd(&["SUBSCRIBE", "c"]));
    w.output(sub);
    let mut pipeline = Vec::new();
    for args in [
        &["MULTI"][..],
        &["PUBLISH", "c", "0"],
        &["PUBLISH", "c", "1"],
        &["CLIENT", "REPLY", "SKIP"],
        &["PING", "in"],
        &["EXEC"],
        &["PING", "skipped"],
        &["PING", "shown"],
    ] {
        pipeline.extend(cmd(args));
    }
    let mut buf = BytesMut::from(&pipeline[..]);
    assert_eq!(w.hubs[0].input(p.1, &mut buf), Input::Blocked);
    w.hubs[1].drain_inbound();
    assert_eq!(w.hubs[0].input(p.1, &mut buf), Input::NeedMore);
    let queued = "+QUEUED\r\n".repeat(4);
    // As Redis: a SKIP run by EXEC skips the reply of the command after EXEC.
    assert_eq!(
        String::from_utf8_lossy(&w.output(p)),
        format!("+OK\r\n{queued}*4\r\n:1\r\n:1\r\n$2\r\nin\r\n$5\r\nshown\r\n")
    );
}

#[test]
fn nothing_follows_the_reply_of_a_client_that_killed_itself_inside_exec() {
    let mut w = world(1);
    let c = w.connect(0);
    w.send(c, &cmd(&["HELLO", "3"]));
    w.send(c, &cmd(&["SUBSCRIBE", "mine"]));
    w.output(c);
    let mut pipeline = Vec::new();
    for args in [
        &["MULTI"][..],
        &["CLIENT", "KILL", "SKIPME", "no"],
        &["PUBLISH", "mine", "x"],
        &["EXEC"],
    ] {
        pipeline.extend(cmd(args));
    }
    assert_eq!(w.send(c, &pipeline), Input::Close);
    // The PUBLISH ran (and counted the client), its reply and the client's
    // own message are not written: Redis writes nothing after that reply.
    assert_eq!(
        String::from_utf8_lossy(&w.output(c)),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n"
    );
}

#[test]
fn a_connection_is_counted_once_under_the_first_reason_that_ends_it() {
    let mut w = world(2);
    let quitter = w.connect(0);
    w.send(quitter, b"QUIT\r\n");
    // Its reader then sees the peer close: still one quit, no hang-up.
    w.hubs[0].close(quitter.1);
    w.hubs[0].disconnect(quitter.1);
    let bad = w.connect(0);
    assert_eq!(w.send(bad, b"*1\r\n$x\r\n"), Input::Close);
    w.hubs[0].disconnect(bad.1);
    let gone = w.connect(1);
    w.hubs[1].disconnect(gone.1);
    let victim = w.connect(1);
    let killer = w.connect(0);
    let id = w.hubs[1].conns[victim.1].session.id.to_string();
    w.send(killer, format!("CLIENT KILL ID {id}\r\n").as_bytes());
    w.hubs[1].drain_inbound();
    w.hubs[1].close(victim.1);
    w.hubs[1].disconnect(victim.1);
    let count = |d| w.shared.total(|s| s.disconnections(d));
    assert_eq!(count(Disconnect::Quit), 1);
    assert_eq!(count(Disconnect::ProtocolError), 1);
    assert_eq!(count(Disconnect::HangUp), 1);
    assert_eq!(count(Disconnect::Killed), 1);
    let total: u64 = Disconnect::ALL.iter().map(|d| count(*d)).sum();
    assert_eq!(total, 4);
}

#[test]
fn hz_sets_the_cron_pace_and_its_slice_of_the_connections() {
    let conns = 1000;
    let gauge_after_runs = |hz: u32| {
        let config = Config {
            hz,
            ..Config::default()
        };
        let mut w = world_with(1, 64, config);
        let keys: Vec<_> = (0..conns).map(|_| w.connect(0)).collect();
        for &c in &keys {
            w.send(c, &cmd(&["SUBSCRIBE", "x"]));
        }
        // A second of output waiting on every connection: the gauge shows it
        // once a full round has visited them all.
        let t0 = w.hubs[0].now;
        let mut runs = 0;
        while w.shared.total(|s| &s.output_memory) == 0 {
            runs += 1;
            assert!(runs <= 1000, "no round completed");
            w.hubs[0].cron_at(t0 + Duration::from_millis(runs));
        }
        (w.hubs[0].cron_interval(), runs)
    };
    // Each connection once a second: a round is `hz` runs (or fewer, as a
    // run visits at least `MIN_SLICE` slots).
    let (every, runs) = gauge_after_runs(10);
    assert_eq!(every, Duration::from_millis(100));
    assert!((2..=10).contains(&runs), "hz 10: {runs} runs");
    let (every, runs) = gauge_after_runs(1);
    assert_eq!(every, Duration::from_secs(1));
    assert_eq!(runs, 1, "hz 1: the whole round in one run");
    let (every, runs) = gauge_after_runs(500);
    assert_eq!(every, Duration::from_millis(2));
    assert!(
        runs > 10,
        "hz 500: {runs} runs of {} slots at least",
        super::cron::MIN_SLICE
    );
}

/// A world with a 64 KiB backlog (4 KiB share) and a 128 KiB hard output
/// limit for subscribers.
fn world_with_small_backlog_and_limit() -> World {
    let config = Config {
        worker_output_backlog: 64 << 10,
        output_limit_pubsub: OutputLimit {
            hard: 128 << 10,
            soft: 0,
            soft_seconds: 0,
        },
        ..Config::default()
    };
    world_with(2, 4, config)
}

fn output_limit_disconnections(w: &World) -> u64 {
    w.shared
        .total(|s| s.disconnections(Disconnect::OutputBufferLimit))
}

#[test]
fn a_few_reading_subscribers_slow_the_publisher_down_instead_of_meeting_their_limit() {
    let mut w = world_with_small_backlog_and_limit();
    // Three subscribers: at 4 KiB each, their shares alone could never fill
    // the 64 KiB backlog; 200 messages of 1000 bytes would take each past
    // its 128 KiB limit if nothing slowed the publisher.
    let subs = subscribers(&mut w, 1, 3, "c");
    let publisher = w.connect(0);
    let payload = "x".repeat(1000);
    let mut requests = Vec::new();
    for _ in 0..200 {
        requests.extend(cmd(&["PUBLISH", "c", &payload]));
    }
    let mut buf = BytesMut::from(&requests[..]);
    let mut paused = 0;
    let mut received = vec![0usize; subs.len()];
    while !buf.is_empty() {
        let status = w.hubs[0].input(publisher.1, &mut buf);
        w.hubs[0].flush_rings();
        w.output(publisher);
        w.hubs[1].drain_inbound();
        if status == Input::Blocked && w.hubs[1].congested() {
            paused += 1;
            for (i, &s) in subs.iter().enumerate() {
                received[i] += w.output(s).len();
            }
            assert!(!w.hubs[1].congested());
            w.hubs[1].drain_inbound();
        }
    }
    while w.hubs[1].drain_inbound() > 0 || w.hubs[1].congested() {
        for (i, &s) in subs.iter().enumerate() {
            received[i] += w.output(s).len();
        }
    }
    assert!(paused >= 1, "the publisher was never slowed down");
    let frame = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1000\r\n".len() + 1002;
    for (i, &s) in subs.iter().enumerate() {
        received[i] += w.output(s).len();
        assert!(is_open(&w, s));
    }
    assert!(received.iter().all(|&n| n == 200 * frame), "{received:?}");
    assert_eq!(output_limit_disconnections(&w), 0);
}

/// Publish `n` messages of 1000 bytes from worker 0 and queue them on worker 1.
fn flood(w: &mut World, publisher: (usize, ConnKey), n: usize) {
    let payload = "x".repeat(1000);
    for _ in 0..n {
        w.send(publisher, &cmd(&["PUBLISH", "c", &payload]));
        w.output(publisher);
        w.hubs[1].drain_inbound();
    }
}

#[test]
fn a_subscriber_whose_writes_wait_counts_only_its_share_soon_after() {
    let mut w = world_with_small_backlog_and_limit();
    let _idle = subscribers(&mut w, 1, 1, "c");
    let publisher = w.connect(0);
    flood(&mut w, publisher, 70);
    assert!(w.hubs[1].congested(), "70 KB just queued counts in full");
    let t0 = w.hubs[1].now;
    w.hubs[1].cron_at(t0 + RECENT + Duration::from_millis(100));
    assert!(
        !w.hubs[1].congested(),
        "no write finished since: it counts for its share only, long before the stall time"
    );
    assert_eq!(w.hubs[1].backlog(), 4 << 10);
    assert!(RECENT + Duration::from_millis(100) < STALL);
}

#[test]
fn a_reader_that_stays_slower_than_the_publisher_becomes_a_laggard_and_meets_its_limit() {
    let mut w = world_with_small_backlog_and_limit();
    let slow = subscribers(&mut w, 1, 1, "c")[0];
    let publisher = w.connect(0);
    flood(&mut w, publisher, 70);
    assert!(w.hubs[1].congested());
    // It reads, a little at a time: its writes go on finishing, but the
    // worker stays congested.
    let mut batch = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        w.hubs[1].poll_output(slow.1, &mut cx, &mut batch),
        Poll::Ready(Output::Write(_))
    ));
    let t0 = w.hubs[1].now;
    let step = Duration::from_millis(100);
    let mut t = t0 + step;
    while t < t0 + LAG_LIMIT {
        w.hubs[1].cron_at(t);
        w.hubs[1].sent(slow.1, 100);
        assert!(w.hubs[1].congested(), "still within the lag limit");
        t += step;
    }
    w.hubs[1].cron_at(t0 + LAG_LIMIT);
    assert!(
        !w.hubs[1].congested(),
        "a laggard counts for its share only"
    );
    // The worker takes messages again; the laggard meets its own limit.
    flood(&mut w, publisher, 100);
    assert!(!is_open(&w, slow));
    assert_eq!(output_limit_disconnections(&w), 1);
}

/// A RESP2 `<word> <name> <count>` confirmation.
fn confirmation(word: &str, name: &[u8], count: usize) -> Vec<u8> {
    let mut v = format!("*3\r\n${}\r\n{word}\r\n${}\r\n", word.len(), name.len()).into_bytes();
    v.extend_from_slice(name);
    v.extend(format!("\r\n:{count}\r\n").bytes());
    v
}

#[test]
fn unsubscribe_by_name_confirms_each_argument_in_order_with_the_count_after_it() {
    let mut w = world(2);
    let c = w.connect(0);
    let publisher = w.connect(1);
    w.send(c, &cmd(&["SUBSCRIBE", "a", "b", "c"]));
    w.send(c, &cmd(&["PSUBSCRIBE", "p*"]));
    w.output(c);
    // Held names, names never held and repeats alike get a frame; the
    // count (channels + patterns) falls only where a subscription went.
    w.send(c, &cmd(&["UNSUBSCRIBE", "b", "x", "a", "b", "c"]));
    let want: Vec<u8> = [("b", 3), ("x", 3), ("a", 2), ("b", 2), ("c", 1)]
        .iter()
        .flat_map(|&(n, k)| confirmation("unsubscribe", n.as_bytes(), k))
        .collect();
    assert_eq!(w.output(c), want);
    // Gone from every worker: PUBLISH counts nobody and nothing arrives.
    for ch in ["a", "b", "c"] {
        w.send(publisher, &cmd(&["PUBLISH", ch, "m"]));
        assert_eq!(w.output(publisher), b":0\r\n");
    }
    w.send(publisher, &cmd(&["PUBLISH", "pz", "m"]));
    assert_eq!(w.output(publisher), b":1\r\n");
    w.drain_all();
    assert_eq!(
        w.output(c),
        b"*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npz\r\n$1\r\nm\r\n"
    );
    w.send(c, &cmd(&["PUNSUBSCRIBE", "q*", "p*", "p*"]));
    let want: Vec<u8> = [("q*", 1), ("p*", 0), ("p*", 0)]
        .iter()
        .flat_map(|&(n, k)| confirmation("punsubscribe", n.as_bytes(), k))
        .collect();
    assert_eq!(w.output(c), want);
    assert_eq!(w.shared.registry.channel_count(Namespace::Global), 0);
    assert_eq!(w.shared.registry.pattern_count(), 0);
}

#[test]
fn unsubscribe_of_many_names_with_repeats_across_batches_counts_each_step() {
    // Names are found a batch at a time before any is removed: repeats in
    // one batch, across batches, and names never held must all give the
    // count a one-by-one removal gives.
    let mut w = world(2);
    let c = w.connect(0);
    let other = w.connect(0);
    let held: Vec<String> = (0..30).map(|i| format!("ch:{i}")).collect();
    let mut sub = vec!["SUBSCRIBE"];
    sub.extend(held.iter().map(String::as_str));
    w.send(c, &cmd(&sub));
    w.send(other, &cmd(&["SUBSCRIBE", "ch:3", "ch:20"]));
    w.output(c);
    w.output(other);
    let mut args: Vec<String> = Vec::new();
    for i in 0..50 {
        // ch:0..ch:39 with every fifth repeated at once and every seventh
        // repeated a batch later: repeats fall inside and across the
        // batches of 16.
        args.push(format!("ch:{}", i % 40));
        if i % 5 == 0 {
            args.push(format!("ch:{}", i % 40));
        }
        if i % 7 == 0 && i >= 14 {
            args.push(format!("ch:{}", (i - 14) % 40));
        }
    }
    let mut unsub = vec!["UNSUBSCRIBE"];
    unsub.extend(args.iter().map(String::as_str));
    w.send(c, &cmd(&unsub));
    let mut left: std::collections::HashSet<&str> = held.iter().map(String::as_str).collect();
    let want: Vec<u8> = args
        .iter()
        .flat_map(|name| {
            left.remove(name.as_str());
            confirmation("unsubscribe", name.as_bytes(), left.len())
        })
        .collect();
    assert_eq!(w.output(c), want);
    assert!(left.is_empty());
    // The other connection of the same worker keeps its two.
    let publisher = w.connect(1);
    for (ch, n) in [("ch:3", 1), ("ch:20", 1), ("ch:4", 0)] {
        w.send(publisher, &cmd(&["PUBLISH", ch, "m"]));
        assert_eq!(w.output(publisher), format!(":{n}\r\n").as_bytes());
    }
    assert_eq!(w.shared.registry.channel_count(Namespace::Global), 2);
}

#[test]
fn unsubscribe_of_thousands_by_name_leaves_other_subscribers_counted() {
    let mut w = world(2);
    let c = w.connect(0);
    let other = w.connect(1);
    let publisher = w.connect(1);
    let names: Vec<String> = (0..3000).map(|i| format!("ch:{i}")).collect();
    let patterns: Vec<String> = (0..3000).map(|i| format!("news.{i}.*")).collect();
    let all = |verb: &str, names: &[String]| {
        let mut args = vec![verb];
        args.extend(names.iter().map(String::as_str));
        cmd(&args)
    };
    w.send(c, &all("SUBSCRIBE", &names));
    w.send(c, &all("PSUBSCRIBE", &patterns));
    w.send(other, &all("SUBSCRIBE", &names[..1000]));
    w.output(c);
    w.output(other);
    w.send(c, &all("UNSUBSCRIBE", &names));
    let want: Vec<u8> = names
        .iter()
        .enumerate()
        .flat_map(|(i, n)| confirmation("unsubscribe", n.as_bytes(), 3000 + 3000 - i - 1))
        .collect();
    assert_eq!(w.output(c), want);
    w.send(c, &all("PUNSUBSCRIBE", &patterns));
    let want: Vec<u8> = patterns
        .iter()
        .enumerate()
        .flat_map(|(i, n)| confirmation("punsubscribe", n.as_bytes(), 3000 - i - 1))
        .collect();
    assert_eq!(w.output(c), want);
    let registry = &w.shared.registry;
    assert_eq!(registry.channel_count(Namespace::Global), 1000);
    assert_eq!(registry.pattern_count(), 0);
    for (i, n) in names.iter().enumerate().step_by(7) {
        w.send(publisher, &cmd(&["PUBLISH", n.as_str(), "m"]));
        let want = if i < 1000 { b":1\r\n" } else { b":0\r\n" };
        assert_eq!(w.output(publisher), want, "{n}");
    }
    w.send(publisher, &cmd(&["PUBLISH", "news.7.x", "m"]));
    assert_eq!(w.output(publisher), b":0\r\n");
    w.drain_all();
    assert_eq!(w.output(c), b"");
}

#[test]
fn unsubscribe_without_arguments_confirms_in_the_held_sets_order_counting_down() {
    let mut w = world(2);
    let c = w.connect(0);
    let publisher = w.connect(1);
    let names: Vec<String> = (0..500).map(|i| format!("ch:{i}")).collect();
    let patterns: Vec<String> = (0..300).map(|i| format!("p.{i}.*")).collect();
    let mut args = vec!["SUBSCRIBE"];
    args.extend(names.iter().map(String::as_str));
    w.send(c, &cmd(&args));
    let mut args = vec!["PSUBSCRIBE"];
    args.extend(patterns.iter().map(String::as_str));
    w.send(c, &cmd(&args));
    w.send(c, &cmd(&["SSUBSCRIBE", "s1", "s2"]));
    w.output(c);
    // The order the session's set holds them in (the registry's hash order).
    let order = |w: &World, which: usize| -> Vec<Vec<u8>> {
        let session = &w.hubs[0].conns[c.1].session;
        let set = match which {
            0 => &session.channels,
            1 => &session.patterns,
            _ => &session.shard_channels,
        };
        set.iter().map(|n| n.to_vec()).collect()
    };
    let channels = order(&w, 0);
    w.send(c, &cmd(&["UNSUBSCRIBE"]));
    let want: Vec<u8> = channels
        .iter()
        .enumerate()
        .flat_map(|(i, n)| confirmation("unsubscribe", n, 300 + 500 - i - 1))
        .collect();
    assert_eq!(w.output(c), want);
    let pats = order(&w, 1);
    w.send(c, &cmd(&["PUNSUBSCRIBE"]));
    let want: Vec<u8> = pats
        .iter()
        .enumerate()
        .flat_map(|(i, n)| confirmation("punsubscribe", n, 300 - i - 1))
        .collect();
    assert_eq!(w.output(c), want);
    let shard = order(&w, 2);
    w.send(c, &cmd(&["SUNSUBSCRIBE"]));
    let want: Vec<u8> = shard
        .iter()
        .enumerate()
        .flat_map(|(i, n)| confirmation("sunsubscribe", n, 2 - i - 1))
        .collect();
    assert_eq!(w.output(c), want);
    w.send(publisher, &cmd(&["PUBLISH", "ch:1", "m"]));
    assert_eq!(w.output(publisher), b":0\r\n");
    let registry = &w.shared.registry;
    assert_eq!(registry.channel_count(Namespace::Global), 0);
    assert_eq!(registry.channel_count(Namespace::Shard), 0);
    assert_eq!(registry.pattern_count(), 0);
}
