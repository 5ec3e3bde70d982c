//! Loss and order under mixed load across workers: several publishers and
//! subscribers on both workers, channels, patterns and shard channels,
//! payloads of varying size, subscription churn, and wide fan-out.
//! Bounded in message count so debug builds stay quick.

use ringcast_tests::client::connect_on_worker_proto;
use ringcast_tests::flow::{
    OrderCheck, assert_promised_equals_received, delivered_payload, padded_publishes, pipelined,
};
use ringcast_tests::resp::{self, Proto};
use ringcast_tests::{Backend, Frame, Opts, Server, backend_tests, connect_on_worker};
use std::collections::HashSet;
use std::thread;

const CHANNELS: usize = 4;

/// A subscriber: its worker, protocol, and `(command, name)` subscriptions.
type Layout = (usize, Proto, Vec<(&'static str, String)>);

/// Where publisher message `seq` goes: rotating over global and shard channels.
fn target(seq: usize) -> (&'static str, String) {
    if seq % 5 == 4 {
        ("SPUBLISH", format!("shard.{}", seq % CHANNELS))
    } else {
        ("PUBLISH", format!("load.{}", seq % CHANNELS))
    }
}

fn mixed_load_across_workers_loses_and_reorders_nothing(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 2500;
    // (worker, proto, subscriptions); every subscriber holds "end" too.
    let layouts: Vec<Layout> = vec![
        (
            0,
            Proto::Resp2,
            (0..CHANNELS)
                .map(|c| ("SUBSCRIBE", format!("load.{c}")))
                .collect(),
        ),
        (
            1,
            Proto::Resp3,
            (0..CHANNELS)
                .map(|c| ("SUBSCRIBE", format!("load.{c}")))
                .collect(),
        ),
        (0, Proto::Resp3, vec![("PSUBSCRIBE", "load.*".into())]),
        (
            1,
            Proto::Resp2,
            vec![
                ("PSUBSCRIBE", "load.[02]".into()),
                ("SUBSCRIBE", "load.1".into()),
            ],
        ),
        (
            0,
            Proto::Resp2,
            (0..CHANNELS)
                .map(|c| ("SSUBSCRIBE", format!("shard.{c}")))
                .collect(),
        ),
        (
            1,
            Proto::Resp3,
            vec![
                ("SSUBSCRIBE", "shard.1".into()),
                ("SUBSCRIBE", "load.3".into()),
            ],
        ),
    ];
    let readers: Vec<_> = layouts
        .into_iter()
        .enumerate()
        .map(|(i, (w, proto, subs))| {
            let mut conn = connect_on_worker_proto(&server, w, proto);
            conn.sub("SUBSCRIBE", &["end"], &[1]);
            let (mut global, mut shard) = (1, 0);
            for (cmd, name) in &subs {
                let n = if *cmd == "SSUBSCRIBE" {
                    shard += 1;
                    shard
                } else {
                    global += 1;
                    global
                };
                conn.sub(cmd, &[name], &[n]);
            }
            thread::spawn(move || {
                let who = format!("subscriber {i} on worker {w} ({proto:?})");
                let mut order = OrderCheck::with_gaps();
                let mut ends = 0;
                while ends < PUBLISHERS {
                    let frame = conn.read_frame();
                    if frame.message().is_some_and(|(ch, _)| ch == b"end") {
                        ends += 1;
                    } else {
                        order.record(&who, delivered_payload(&frame));
                    }
                }
                order.received
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|id| {
            let conn = connect_on_worker(&server, id % 2);
            pipelined(
                conn,
                padded_publishes(id, PER_PUBLISHER, target),
                PER_PUBLISHER,
            )
        })
        .collect();
    // Each publisher's end marker follows all its messages on every subscriber.
    assert_promised_equals_received(publishers, readers, 6);
}

/// Applies one frame of a churning subscriber to the set of channels it
/// holds; a message must be for a held channel. True for a confirmation.
fn track(frame: &Frame, held: &mut HashSet<Vec<u8>>) -> bool {
    let (kind, rest) = frame.pubsub().expect("pub/sub frame");
    let channel = rest[0].bytes().expect("channel").to_vec();
    match kind {
        b"subscribe" => {
            held.insert(channel);
            assert_eq!(rest[1], Frame::Integer(held.len() as i64), "{frame:?}");
            true
        }
        b"unsubscribe" => {
            held.remove(&channel);
            assert_eq!(rest[1], Frame::Integer(held.len() as i64), "{frame:?}");
            true
        }
        b"message" => {
            assert!(
                held.contains(&channel),
                "message for {} not held",
                resp::show(&channel)
            );
            false
        }
        other => panic!("unexpected {}", resp::show(other)),
    }
}

/// Subscribers on both workers subscribe and unsubscribe continuously while
/// publishers on both workers publish: a subscriber only ever receives
/// messages for channels it holds according to the confirmations it has
/// read, and the registry ends empty.
fn churning_subscribers_only_receive_channels_they_hold(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    const CHURN: usize = 300;
    const N: usize = 3000;
    let churners: Vec<_> = (0..4)
        .map(|i| {
            let mut conn = connect_on_worker_proto(&server, i % 2, Proto::BOTH[i / 2 % 2]);
            thread::spawn(move || {
                let mut held: HashSet<Vec<u8>> = HashSet::new();
                let mut in_flight = 0usize;
                for step in 0..CHURN {
                    let ch = format!("churn.{}", (step * 3 + i) % 8);
                    let cmd = if step % 2 == 0 {
                        "SUBSCRIBE"
                    } else {
                        "UNSUBSCRIBE"
                    };
                    conn.send_cmd(&[cmd, &ch]);
                    in_flight += 1;
                    // Keep a few commands in flight while messages stream in.
                    while in_flight > 2 {
                        if track(&conn.read_frame(), &mut held) {
                            in_flight -= 1;
                        }
                    }
                }
                while in_flight > 0 {
                    if track(&conn.read_frame(), &mut held) {
                        in_flight -= 1;
                    }
                }
                if held.is_empty() {
                    return;
                }
                conn.send_cmd(&["UNSUBSCRIBE"]);
                while !held.is_empty() {
                    track(&conn.read_frame(), &mut held);
                }
            })
        })
        .collect();
    let publishers: Vec<_> = (0..2)
        .map(|id| {
            let conn = connect_on_worker(&server, id);
            let requests = padded_publishes(id, N, |seq| ("PUBLISH", format!("churn.{}", seq % 8)));
            pipelined(conn, requests, N)
        })
        .collect();
    for c in churners {
        c.join().expect("churning subscriber");
    }
    for p in publishers {
        p.join().expect("publisher");
    }
    let mut c = server.conn();
    c.cmd_expect(&["PUBSUB", "CHANNELS", "churn.*"], b"*0\r\n");
}

/// One message fans out to 200 subscribers spread over both workers.
fn wide_fan_out_reaches_every_subscriber(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    const SUBSCRIBERS: usize = 200;
    const MESSAGES: usize = 50;
    let mut subs: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let mut c = server.conn_proto(Proto::BOTH[i % 2]);
            c.sub("SUBSCRIBE", &["wide"], &[1]);
            c
        })
        .collect();
    let mut publisher = server.conn();
    for m in 0..MESSAGES {
        publisher.publish("PUBLISH", "wide", &format!("m{m}"), SUBSCRIBERS as i64);
    }
    for s in &mut subs {
        for m in 0..MESSAGES {
            s.expect_message("wide", &format!("m{m}"));
        }
    }
}

backend_tests!(
    mixed_load_across_workers_loses_and_reorders_nothing,
    churning_subscribers_only_receive_channels_they_hold,
    wide_fan_out_reaches_every_subscriber,
);
