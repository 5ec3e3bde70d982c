//! The six invariants of `docs/design.md`, checked across workers: publisher and
//! subscriber are placed on different workers (verified via `io-thread`).

use ringcast_tests::client::connect_on_worker_proto;
use ringcast_tests::flow::{
    OrderCheck, assert_promised_equals_received, delivered_payload, payload, pipelined, publishes,
};
use ringcast_tests::resp::{self, Proto};
use ringcast_tests::{
    Backend, Frame, Opts, PATIENCE, Server, backend_tests, connect_on_worker, eventually, target,
};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn two_workers(b: Backend) -> Server {
    Server::start(Opts::new(b).threads(2))
}

/// Invariant 1: Visible before confirmed: a PUBLISH sent from the other worker right
/// after the confirmation was read always reaches the new subscriber.
fn subscription_is_visible_on_every_worker_once_confirmed(b: Backend) {
    let server = two_workers(b);
    for (sub_w, pub_w, proto) in [(0, 1, Proto::Resp2), (1, 0, Proto::Resp3)] {
        let mut sub = connect_on_worker_proto(&server, sub_w, proto);
        let mut publisher = connect_on_worker(&server, pub_w);
        for i in 0..150 {
            let ch = format!("v{sub_w}.{i}");
            match i % 3 {
                0 => {
                    sub.sub("SUBSCRIBE", &[&ch], &[1]);
                    publisher.publish("PUBLISH", &ch, "now", 1);
                    sub.expect_message(&ch, "now");
                    sub.sub("UNSUBSCRIBE", &[&ch], &[0]);
                }
                1 => {
                    let pattern = format!("{ch}*");
                    sub.sub("PSUBSCRIBE", &[&pattern], &[1]);
                    publisher.publish("PUBLISH", &format!("{ch}x"), "now", 1);
                    sub.expect_pmessage(&pattern, &format!("{ch}x"), "now");
                    sub.sub("PUNSUBSCRIBE", &[&pattern], &[0]);
                }
                _ => {
                    sub.sub("SSUBSCRIBE", &[&ch], &[1]);
                    publisher.publish("SPUBLISH", &ch, "now", 1);
                    sub.expect_smessage(&ch, "now");
                    sub.sub("SUNSUBSCRIBE", &[&ch], &[0]);
                }
            }
        }
    }
}

/// Invariant 2: Nothing after unsubscribe: while a publisher on the other worker
/// streams to the channel, no message for it follows the unsubscribe
/// confirmation. The publisher goes on until its PUBLISH replies show the
/// subscription gone, then sends a marker on another channel; per-publisher
/// order puts every stream message it sent before the marker.
fn no_message_follows_the_unsubscribe_confirmation(b: Backend) {
    for (kind, sub_cmd, unsub_cmd, pub_cmd, target_name) in [
        (
            "unsubscribe",
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "PUBLISH",
            "stream",
        ),
        (
            "punsubscribe",
            "PSUBSCRIBE",
            "PUNSUBSCRIBE",
            "PUBLISH",
            "str*",
        ),
        (
            "sunsubscribe",
            "SSUBSCRIBE",
            "SUNSUBSCRIBE",
            "SPUBLISH",
            "stream",
        ),
    ] {
        let server = two_workers(b);
        let mut sub = connect_on_worker(&server, 0);
        sub.sub("SUBSCRIBE", &["marker"], &[1]);
        let count = if sub_cmd == "SSUBSCRIBE" { 1 } else { 2 };
        sub.sub(sub_cmd, &[target_name], &[count]);
        let mut publisher = connect_on_worker(&server, 1);
        let pub_cmd = pub_cmd.to_owned();
        let streamer = thread::spawn(move || {
            let mut seq = 0usize;
            let mut zeros = 0;
            while zeros < 200 {
                let mut batch = Vec::new();
                for _ in 0..32 {
                    batch.extend(resp::command(&[
                        pub_cmd.as_str(),
                        "stream",
                        &seq.to_string(),
                    ]));
                    seq += 1;
                }
                publisher.send(&batch);
                for _ in 0..32 {
                    match publisher.read_frame().int() {
                        0 => zeros += 1,
                        1 => assert_eq!(zeros, 0, "subscription came back"),
                        n => panic!("PUBLISH counted {n}"),
                    }
                }
                assert!(
                    seq < 5_000_000,
                    "the unsubscribe never took effect for publishers"
                );
            }
            publisher.publish("PUBLISH", "marker", "done", 1);
        });
        let mut next = 0usize;
        let mut check_stream = |frame: &Frame| -> bool {
            match frame.pubsub() {
                Some((b"message" | b"smessage", [ch, p])) if ch.bytes() == Some(b"stream") => {
                    assert_eq!(p.text(), next.to_string(), "stream out of order");
                    next += 1;
                    true
                }
                Some((b"pmessage", [_, ch, p])) if ch.bytes() == Some(b"stream") => {
                    assert_eq!(p.text(), next.to_string(), "stream out of order");
                    next += 1;
                    true
                }
                _ => false,
            }
        };
        for _ in 0..50 {
            let frame = sub.read_frame();
            assert!(
                check_stream(&frame),
                "expected a stream message, got {frame:?}"
            );
        }
        sub.send_cmd(&[unsub_cmd, target_name]);
        // What remains: the marker channel, which shard counts leave out.
        let remaining = if sub_cmd == "SSUBSCRIBE" { 0 } else { 1 };
        let confirmation =
            resp::confirmation(Proto::Resp2, kind, Some(target_name.as_bytes()), remaining);
        let confirmation = match resp::parse(&confirmation) {
            resp::Parsed::Frame(f, _) => f,
            other => panic!("{other:?}"),
        };
        loop {
            let frame = sub.read_frame();
            if frame == confirmation {
                break;
            }
            assert!(
                check_stream(&frame),
                "unexpected frame before confirmation: {frame:?}"
            );
        }
        let after = sub.read_frame();
        assert_eq!(
            after.message(),
            Some((&b"marker"[..], &b"done"[..])),
            "{kind}: a frame arrived after the unsubscribe confirmation"
        );
        streamer.join().expect("streamer");
    }
}

/// Invariant 3: Order: several publishers on both workers, subscribers (channel and
/// pattern, RESP2 and RESP3) on both workers; each subscriber sees every
/// publisher's messages in publish order, none missing.
fn each_publishers_messages_arrive_in_order_on_every_worker(b: Backend) {
    let server = two_workers(b);
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 2000;
    let subscribers = [
        (0, Proto::Resp2, "SUBSCRIBE", "order"),
        (1, Proto::Resp3, "SUBSCRIBE", "order"),
        (0, Proto::Resp3, "PSUBSCRIBE", "ord*"),
        (1, Proto::Resp2, "PSUBSCRIBE", "ord*"),
    ];
    let readers: Vec<_> = subscribers
        .iter()
        .enumerate()
        .map(|(i, &(w, proto, cmd, name))| {
            let mut sub = connect_on_worker_proto(&server, w, proto);
            sub.sub(cmd, &[name], &[1]);
            thread::spawn(move || {
                let mut order = OrderCheck::default();
                let who = format!("subscriber {i} ({cmd} on worker {w}, {proto:?})");
                while order.received < PUBLISHERS * PER_PUBLISHER {
                    order.record(&who, delivered_payload(&sub.read_frame()));
                }
                order.received
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|id| {
            let conn = connect_on_worker(&server, id % server.threads());
            pipelined(
                conn,
                publishes("PUBLISH", id, PER_PUBLISHER, |_| "order".into()),
                PER_PUBLISHER,
            )
        })
        .collect();
    for p in publishers {
        let (_, replies) = p.join().expect("publisher");
        assert!(
            replies.iter().all(|r| *r == Frame::Integer(4)),
            "every PUBLISH reaches 4"
        );
    }
    for r in readers {
        assert_eq!(r.join().expect("subscriber"), PUBLISHERS * PER_PUBLISHER);
    }
}

/// Invariant 4: No silent loss: the PUBLISH replies add up to exactly the messages
/// the subscribers receive (channels and patterns, both workers).
fn publish_replies_add_up_to_messages_received(b: Backend) {
    let server = two_workers(b);
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 1500;
    const CHANNELS: usize = 8;
    // Subscriber i holds channels c where (c + i) % 3 != 0, and some a pattern.
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let proto = if i % 2 == 0 {
                Proto::Resp2
            } else {
                Proto::Resp3
            };
            let mut sub = connect_on_worker_proto(&server, i % 2, proto);
            let mut held = 0;
            sub.sub("SUBSCRIBE", &["end"], &[1]);
            held += 1;
            for c in (0..CHANNELS).filter(|c| (c + i) % 3 != 0) {
                held += 1;
                sub.sub("SUBSCRIBE", &[&format!("loss.{c}")], &[held]);
            }
            if i % 3 == 1 {
                held += 1;
                sub.sub("PSUBSCRIBE", &["loss.[0-3]"], &[held]);
            }
            thread::spawn(move || {
                let mut received = 0usize;
                let mut ends = 0;
                while ends < PUBLISHERS {
                    let frame = sub.read_frame();
                    match frame.message() {
                        Some((b"end", _)) => ends += 1,
                        _ => {
                            delivered_payload(&frame);
                            received += 1;
                        }
                    }
                }
                received
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|id| {
            let conn = connect_on_worker(&server, id % 2);
            let requests = publishes("PUBLISH", id, PER_PUBLISHER, |seq| {
                format!("loss.{}", (seq * 7 + id) % CHANNELS)
            });
            pipelined(conn, requests, PER_PUBLISHER)
        })
        .collect();
    // Each publisher's end marker follows all its messages on every subscriber.
    assert_promised_equals_received(publishers, readers, 6);
}

/// Invariant 4 under churn: subscribers join a channel while a flood to it
/// is on its way from the other worker. Each gets exactly the messages whose
/// PUBLISH counted it: the replies add up to the deliveries, none more.
fn publish_replies_equal_deliveries_while_subscribers_join(b: Backend) {
    let server = two_workers(b);
    const N: usize = 20_000;
    const JOINERS: usize = 10;
    let publisher = connect_on_worker(&server, 0);
    let mut joiners: Vec<_> = (0..JOINERS)
        .map(|_| connect_on_worker(&server, 1))
        .collect();
    let requests: Vec<u8> = (0..N)
        .flat_map(|seq| resp::command(&["PUBLISH", "join", &format!("m{seq}")]))
        .collect();
    let flood = pipelined(publisher, requests, N);
    let mut readers = Vec::new();
    for mut sub in joiners.drain(..) {
        sub.sub("SUBSCRIBE", &["join"], &[1]);
        readers.push(thread::spawn(move || {
            let mut received = 0u64;
            loop {
                let frame = sub.read_frame();
                let (_, payload) = frame.message().expect("a message");
                if payload == b"end" {
                    return received;
                }
                received += 1;
            }
        }));
        thread::sleep(Duration::from_millis(2));
    }
    let (mut publisher, replies) = flood.join().expect("publisher");
    let counted: i64 = replies.iter().map(Frame::int).sum();
    publisher.publish("PUBLISH", "join", "end", JOINERS as i64);
    let received: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    assert_eq!(received as i64, counted, "deliveries vs PUBLISH replies");
}

/// Invariant 5a: Backpressure: the subscriber's worker sleeps (DEBUG SLEEP) while a
/// publisher on the other worker pipelines thousands of messages into a
/// tiny ring. The publisher's worker keeps answering other clients, and
/// afterwards every message arrives, in order.
fn full_ring_backpressures_publisher_without_stalling_its_worker(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2).ring_capacity(4).debug_command());
    const N: usize = 5000;
    let mut sub = connect_on_worker(&server, 0);
    sub.sub("SUBSCRIBE", &["bp"], &[1]);
    let mut sleeper = connect_on_worker(&server, 0);
    let publisher = connect_on_worker(&server, 1);
    let mut pinger = connect_on_worker(&server, 1);
    let reader = thread::spawn(move || {
        let mut order = OrderCheck::default();
        while order.received < N {
            order.record("subscriber", delivered_payload(&sub.read_frame()));
        }
    });
    sleeper.send_cmd(&["DEBUG", "SLEEP", "2"]);
    // Give the sleep a head start, then fill the ring; neither is measured.
    thread::sleep(Duration::from_millis(300));
    let flood = pipelined(publisher, publishes("PUBLISH", 0, N, |_| "bp".into()), N);
    thread::sleep(Duration::from_millis(300));
    if !target().is_redis() {
        // (redis-server's DEBUG SLEEP blocks the whole server.)
        pinger.cmd_expect(&["PING"], b"+PONG\r\n");
        assert!(
            !sleeper.has_input(),
            "PING on the publisher's worker was only answered after the sleep ended"
        );
    }
    sleeper.expect(b"+OK\r\n");
    let (_, replies) = flood.join().expect("publisher");
    assert!(replies.iter().all(|r| *r == Frame::Integer(1)));
    reader.join().expect("subscriber");
    pinger.cmd_expect(&["PING"], b"+PONG\r\n");
}

/// Invariant 5b: Two workers flooding each other's subscribers through tiny rings
/// finish: draining inbound rings never waits for outbound room.
fn workers_flooding_each_other_through_tiny_rings_do_not_deadlock(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2).ring_capacity(4));
    const N: usize = 20_000;
    let (done_tx, done_rx) = mpsc::channel();
    for w in 0..2 {
        let mut sub = connect_on_worker(&server, w);
        sub.sub("SUBSCRIBE", &[&format!("to{w}")], &[1]);
        let tx = done_tx.clone();
        thread::spawn(move || {
            let mut order = OrderCheck::default();
            while order.received < N {
                order.record("subscriber", delivered_payload(&sub.read_frame()));
            }
            let _ = tx.send(format!("subscriber on worker {w}"));
        });
    }
    for w in 0..2 {
        let publisher = connect_on_worker(&server, w);
        let other = 1 - w;
        let flood = pipelined(
            publisher,
            publishes("PUBLISH", w, N, |_| format!("to{other}")),
            N,
        );
        let tx = done_tx.clone();
        thread::spawn(move || {
            let (_, replies) = flood.join().expect("publisher");
            assert!(replies.iter().all(|r| *r == Frame::Integer(1)));
            let _ = tx.send(format!("publisher on worker {w}"));
        });
    }
    drop(done_tx);
    for _ in 0..4 {
        match done_rx.recv_timeout(PATIENCE * 3) {
            Ok(_) => {}
            Err(e) => panic!("cross-worker flood did not complete ({e}): deadlock?"),
        }
    }
}

/// Invariant 5c: a worker with more to write than it can write in time
/// slows the publisher down instead of cutting off subscribers that read.
/// One publisher floods a channel that 40 subscribers on both workers read
/// as fast as they can, with output limits far below the flood's size: every
/// subscriber gets every message, in order, and nobody is disconnected.
fn reading_subscribers_are_not_cut_off_when_their_worker_falls_behind(b: Backend) {
    let server = Server::start(
        Opts::new(b)
            .threads(2)
            .pubsub_output_limit("512kb 256kb 60")
            .arg("worker-output-backlog", "1mb"),
    );
    const N: usize = 4000;
    const SUBSCRIBERS: usize = 40;
    let payload = |seq: usize| format!("{seq:0>8}{}", "m".repeat(500));
    let readers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let mut sub = connect_on_worker(&server, i % 2);
            sub.sub("SUBSCRIBE", &["flood"], &[1]);
            thread::spawn(move || {
                for seq in 0..N {
                    let frame = sub.read_frame();
                    let (_, got) = frame.message().expect("a message, not a close");
                    assert_eq!(&got[..8], format!("{seq:0>8}").as_bytes(), "order or loss");
                }
            })
        })
        .collect();
    let publisher = connect_on_worker(&server, 0);
    let requests: Vec<u8> = (0..N)
        .flat_map(|seq| resp::command(&["PUBLISH", "flood", &payload(seq)]))
        .collect();
    let flood = pipelined(publisher, requests, N);
    let (_, replies) = flood.join().expect("publisher");
    assert!(
        replies
            .iter()
            .all(|r| *r == Frame::Integer(SUBSCRIBERS as i64)),
        "a subscriber was dropped"
    );
    for r in readers {
        r.join()
            .expect("a subscriber lost messages or was disconnected");
    }
    if !target().is_redis() {
        assert_eq!(
            server.info_u64("stats", "client_output_buffer_limit_disconnections"),
            0
        );
    }
}

/// Invariant 6: Bad input is contained: a malformed request closes only its own
/// connection; clients on both workers carry on.
fn malformed_request_closes_only_the_offending_connection(b: Backend) {
    let server = two_workers(b);
    let mut subs: Vec<_> = (0..2).map(|w| connect_on_worker(&server, w)).collect();
    let mut publishers: Vec<_> = (0..2).map(|w| connect_on_worker(&server, w)).collect();
    for s in &mut subs {
        s.sub("SUBSCRIBE", &["ok"], &[1]);
    }
    let bad_inputs: [(&[u8], &str); 4] = [
        (b"*1\r\nfoo\r\n", "expected '$', got 'f'"),
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"ECHO \"open\r\n", "unbalanced quotes in request"),
    ];
    let mut round = 0;
    for bad_w in 0..2 {
        for (bytes, error) in bad_inputs {
            let mut bad = connect_on_worker(&server, bad_w);
            bad.sub("SUBSCRIBE", &["ok"], &[1]);
            bad.send(bytes);
            bad.expect(format!("-ERR Protocol error: {error}\r\n").as_bytes());
            bad.expect_closed();
            let mut c = server.conn();
            eventually("the closed connection leaves the channel", || {
                c.cmd(&["PUBSUB", "NUMSUB", "ok"])
                    == Frame::Array(vec![Frame::Bulk(b"ok".to_vec()), Frame::Integer(2)])
            });
            for p in &mut publishers {
                let msg = payload(0, round);
                round += 1;
                p.publish("PUBLISH", "ok", &msg, 2);
                for s in &mut subs {
                    s.expect_message("ok", &msg);
                }
            }
            for s in &mut subs {
                s.cmd_expect(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
            }
        }
    }
}

backend_tests!(
    subscription_is_visible_on_every_worker_once_confirmed,
    no_message_follows_the_unsubscribe_confirmation,
    each_publishers_messages_arrive_in_order_on_every_worker,
    publish_replies_add_up_to_messages_received,
    publish_replies_equal_deliveries_while_subscribers_join,
    full_ring_backpressures_publisher_without_stalling_its_worker,
    workers_flooding_each_other_through_tiny_rings_do_not_deadlock,
    reading_subscribers_are_not_cut_off_when_their_worker_falls_behind,
    malformed_request_closes_only_the_offending_connection,
);
