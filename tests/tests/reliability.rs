//! Faults and load, as behaviour (`RELIABILITY.md` has the figures): many
//! subscribers resetting at once leave nothing behind, workers flooding each
//! other while some subscribers stall keep serving everyone else, SIGTERM in
//! the middle of a flood ends every connection cleanly, and commands naming
//! tens of thousands of channels or patterns are answered in full while
//! other clients are served.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use ringcast_tests::resp::{self, Frame};
use ringcast_tests::{
    Backend, Opts, PATIENCE, RawConn, Server, backend_tests, connect_on_worker, eventually,
    slow_reader_on_worker,
};

/// Makes closing `c` send a reset, as a crashed client does.
fn close_abruptly(c: RawConn) {
    let stream = c.try_clone_stream();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket `stream` keeps open, from a live linger value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(c);
}

/// `PUBSUB NUMSUB channel`, asked on `admin`.
fn numsub(admin: &mut RawConn, channel: &str) -> i64 {
    admin.cmd(&["PUBSUB", "NUMSUB", channel]).items()[1].int()
}

fn connected_clients(admin: &mut RawConn) -> u64 {
    ringcast_tests::server::parse_info(&admin.cmd(&["INFO", "clients"]))["connected_clients"]
        .parse()
        .expect("connected_clients is a number")
}

/// Reads `n` subscribe-family confirmations and checks their running counts.
fn expect_confirmations(c: &mut RawConn, kind: &[u8], counts: impl Iterator<Item = i64>) {
    for want in counts {
        let frame = c.read_frame();
        let (got, items) = frame.pubsub().expect("a confirmation");
        assert_eq!(got, kind);
        assert_eq!(items[1].int(), want);
    }
}

fn subscribers_reset_at_once_leave_no_subscription_behind(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    let mut admin = server.conn();
    for _ in 0..3 {
        let subs: Vec<RawConn> = (0..400)
            .map(|_| {
                let mut c = server.conn();
                c.sub("SUBSCRIBE", &["storm", "other"], &[1, 2]);
                c.sub("PSUBSCRIBE", &["st*"], &[3]);
                c
            })
            .collect();
        assert_eq!(numsub(&mut admin, "storm"), 400);
        for c in subs {
            close_abruptly(c);
        }
        admin.cmd_expect(&["PING"], b"+PONG\r\n");
        eventually("every subscriber gone", || {
            numsub(&mut admin, "storm") == 0 && connected_clients(&mut admin) == 1
        });
        admin.cmd_expect(&["PUBSUB", "NUMPAT"], b":0\r\n");
        admin.cmd_expect(&["PUBSUB", "CHANNELS"], b"*0\r\n");
        admin.cmd_expect(&["PUBLISH", "storm", "x"], b":0\r\n");
    }
}

/// Publishers on both workers flood, with 64 KiB payloads, a channel
/// subscribed on the other worker by one subscriber that reads and one that
/// never does (tiny socket buffers, so the server holds what it is sent).
/// The floods finish, the readers get every message in order, and a new
/// client is served throughout: the stalled subscribers block nobody.
/// (What a flood sends stays under the output limits; cutting subscribers
/// at them is `limits.rs`'s subject.)
fn cross_worker_floods_with_stalled_subscribers_keep_serving(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2).ring_capacity(64));
    const N: usize = 300;
    let payload = |seq: usize| format!("{seq:0>8}{}", "p".repeat(64 * 1024 - 8));
    let mut stalled = Vec::new(); // kept open, never read, to the end
    let (done_tx, done_rx) = mpsc::channel();
    for w in 0..2 {
        let mut slow = slow_reader_on_worker(&server, w);
        slow.sub("SUBSCRIBE", &[&format!("to{w}")], &[1]);
        stalled.push(slow);
        let mut sub = connect_on_worker(&server, w);
        sub.sub("SUBSCRIBE", &[&format!("to{w}")], &[1]);
        let tx = done_tx.clone();
        thread::spawn(move || {
            for seq in 0..N {
                let frame = sub.read_frame();
                let (_, got) = frame.message().expect("a message, not a close");
                assert_eq!(&got[..8], format!("{seq:0>8}").as_bytes(), "order or loss");
            }
            let _ = tx.send(());
        });
    }
    let floods: Vec<_> = (0..2)
        .map(|w| {
            let publisher = connect_on_worker(&server, w);
            let channel = format!("to{}", 1 - w);
            let requests: Vec<u8> = (0..N)
                .flat_map(|seq| resp::command(&["PUBLISH", &channel, &payload(seq)]))
                .collect();
            ringcast_tests::flow::pipelined(publisher, requests, N)
        })
        .collect();
    let flooding = Arc::new(AtomicBool::new(true));
    let pinger = {
        let flooding = flooding.clone();
        let port = server.port();
        thread::spawn(move || {
            let mut pings = 0;
            while flooding.load(Ordering::Relaxed) {
                let mut c = RawConn::connect(port);
                c.cmd_expect(&["PING"], b"+PONG\r\n");
                pings += 1;
            }
            pings
        })
    };
    for flood in floods {
        let (_, replies) = flood.join().expect("publisher");
        assert!(replies.iter().all(|r| matches!(r, Frame::Integer(1 | 2))));
    }
    for _ in 0..2 {
        done_rx
            .recv_timeout(PATIENCE * 3)
            .expect("a reading subscriber did not get every message: deadlock?");
    }
    flooding.store(false, Ordering::Relaxed);
    assert!(pinger.join().expect("every PING answered") > 0);
    drop(stalled);
}

/// SIGTERM while publishers flood subscribers: the server exits 0 and every
/// subscriber's connection ends with a close after whole frames, never a
/// reset or a frame cut short.
fn sigterm_during_a_flood_exits_zero_and_closes_every_subscriber_cleanly(b: Backend) {
    // The default output limit: readers that keep up are not cut, whatever
    // the publishers send (back-pressure pauses them instead), so every
    // subscriber is still there for the signal.
    let server = Server::start(Opts::new(b).threads(2));
    let (got_tx, got_rx) = mpsc::channel();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let mut sub = server.conn();
            sub.sub("SUBSCRIBE", &["load"], &[1]);
            sub.sub("SUBSCRIBE", &["other"], &[2]);
            let got = got_tx.clone();
            thread::spawn(move || {
                // Read raw, so that a reset and a frame cut short are told
                // apart from an orderly close after whole frames.
                let mut stream = sub.try_clone_stream();
                stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
                let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 1 << 16]);
                let mut messages = 0usize;
                loop {
                    match std::io::Read::read(&mut stream, &mut chunk) {
                        Ok(0) => {
                            assert!(buf.is_empty(), "a frame cut short: {} bytes", buf.len());
                            return messages;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) => panic!("not a clean close: {e}"),
                    }
                    // Consumed frames leave the buffer once per read, not
                    // one by one: the reader keeps up with the flood.
                    let mut at = 0;
                    while let resp::Parsed::Frame(frame, used) = resp::parse(&buf[at..]) {
                        frame.message().expect("only messages");
                        at += used;
                        messages += 1;
                        if messages == 1 {
                            let _ = got.send(());
                        }
                    }
                    buf.drain(..at);
                }
            })
        })
        .collect();
    drop(got_tx);
    let publishers: Vec<_> = (0..3)
        .map(|_| {
            let c = server.conn();
            let mut w = c.try_clone_stream();
            thread::spawn(move || {
                let batch: Vec<u8> = (0..32)
                    .flat_map(|_| resp::command(&["PUBLISH", "load", &"m".repeat(1024)]))
                    .collect();
                // Replies are left unread: the socket's buffers hold them
                // until the server stops reading this publisher.
                while std::io::Write::write_all(&mut w, &batch).is_ok() {}
                drop(c);
            })
        })
        .collect();
    for _ in 0..8 {
        if got_rx.recv_timeout(PATIENCE).is_err() {
            panic!("every subscriber receives; log:\n{}", server.log());
        }
    }
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    for r in readers {
        assert!(
            r.join()
                .expect("a subscriber's connection was not closed cleanly")
                > 0
        );
    }
    for p in publishers {
        p.join().expect("publisher");
    }
}

fn many_patterns_in_one_command_are_confirmed_while_others_are_served(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    const N: i64 = 20_000;
    let patterns: Vec<String> = (0..N).map(|i| format!("news.{i}.*")).collect();
    let mut c = server.conn();
    let mut other = server.conn();
    let mut args = vec!["PSUBSCRIBE".to_string()];
    args.extend(patterns.iter().cloned());
    c.send_cmd(&args);
    other.cmd_expect(&["PING"], b"+PONG\r\n");
    expect_confirmations(&mut c, b"psubscribe", 1..=N);
    other.cmd_expect(&["PUBSUB", "NUMPAT"], format!(":{N}\r\n").as_bytes());
    other.cmd_expect(&["PUBLISH", "news.7.x", "m"], b":1\r\n");
    c.expect(&resp::pmessage(c.proto, b"news.7.*", b"news.7.x", b"m"));
    args[0] = "PUNSUBSCRIBE".into();
    c.send_cmd(&args);
    other.cmd_expect(&["PING"], b"+PONG\r\n");
    expect_confirmations(&mut c, b"punsubscribe", (0..N).rev());
    other.cmd_expect(&["PUBSUB", "NUMPAT"], b":0\r\n");
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

/// Channels by the tens of thousands over several connections, half
/// dropped by UNSUBSCRIBE and half by closing: none is left listed.
fn channels_dropped_by_unsubscribe_and_close_are_all_gone(b: Backend) {
    let server = Server::start(Opts::new(b).threads(2));
    const PER: usize = 20_000;
    let names = |c: usize, lo: usize| -> Vec<String> {
        (lo..lo + 1000).map(|i| format!("ch:{c}:{i}")).collect()
    };
    let mut conns: Vec<RawConn> = (0..4).map(|_| server.conn()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        for lo in (0..PER).step_by(1000) {
            let mut args = vec!["SUBSCRIBE".to_string()];
            args.extend(names(i, lo));
            c.send_cmd(&args);
        }
        expect_confirmations(c, b"subscribe", 1..=PER as i64);
    }
    let mut admin = server.conn();
    match admin.cmd(&["PUBSUB", "CHANNELS", "ch:3:*"]) {
        Frame::Array(names) => assert_eq!(names.len(), PER),
        other => panic!("PUBSUB CHANNELS: {other:?}"),
    }
    let closing = conns.split_off(2);
    for c in closing {
        close_abruptly(c);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        for lo in (0..PER).step_by(1000) {
            let mut args = vec!["UNSUBSCRIBE".to_string()];
            args.extend(names(i, lo));
            c.send_cmd(&args);
        }
        expect_confirmations(c, b"unsubscribe", (0..PER as i64).rev());
    }
    eventually("every channel gone", || {
        admin.cmd(&["PUBSUB", "CHANNELS"]) == Frame::Array(Vec::new())
    });
    admin.cmd_expect(
        &["PUBSUB", "NUMSUB", "ch:0:0", "ch:3:19999"],
        b"*4\r\n$6\r\nch:0:0\r\n:0\r\n$10\r\nch:3:19999\r\n:0\r\n",
    );
}

backend_tests!(
    subscribers_reset_at_once_leave_no_subscription_behind,
    cross_worker_floods_with_stalled_subscribers_keep_serving,
    sigterm_during_a_flood_exits_zero_and_closes_every_subscriber_cleanly,
    many_patterns_in_one_command_are_confirmed_while_others_are_served,
    channels_dropped_by_unsubscribe_and_close_are_all_gone,
);
