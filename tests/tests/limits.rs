//! Limits Redis applies and ringcast must apply the same way: request size
//! limits, the stricter ones before authentication, maxclients, and the
//! pub/sub output buffer limit (hard and soft).

use ringcast_tests::flow::pipelined;
use ringcast_tests::resp;
use ringcast_tests::server::parse_info;
use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, connect_on_worker, eventually,
    ringcast_only, target,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Redis's PROTO_INLINE_MAX_SIZE.
const INLINE_MAX: usize = 64 * 1024;

fn expect_protocol_error(c: &mut RawConn, error: &str) {
    c.expect(format!("-ERR Protocol error: {error}\r\n").as_bytes());
    c.expect_closed();
}

fn inline_request_over_64k_without_newline_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    // One byte over the limit, so the server has read everything we sent
    // when it closes (unread input would turn the close into a reset).
    c.send(&vec![b'a'; INLINE_MAX + 1]);
    expect_protocol_error(&mut c, "too big inline request");
}

fn inline_request_below_64k_is_accepted(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let arg = "x".repeat(60 * 1024);
    c.send(format!("ECHO {arg}\r\n").as_bytes());
    c.expect(&resp::bulk(arg.as_bytes()));
}

fn multibulk_count_line_over_64k_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut bytes = b"*".to_vec();
    bytes.extend(vec![b'1'; INLINE_MAX]);
    c.send(&bytes);
    expect_protocol_error(&mut c, "too big mbulk count string");
}

fn bulk_length_line_over_64k_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut bytes = b"*1\r\n$".to_vec();
    bytes.extend(vec![b'1'; INLINE_MAX]);
    c.send(&bytes);
    expect_protocol_error(&mut c, "too big bulk count string");
}

fn multibulk_count_above_int_max_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"*2147483648\r\n");
    expect_protocol_error(&mut c, "invalid multibulk length");
}

fn bulk_length_above_512mb_is_an_error_and_closes(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send(b"*2\r\n$4\r\nECHO\r\n$536870913\r\n");
    expect_protocol_error(&mut c, "invalid bulk length");
}

fn large_bulk_argument_below_the_limit_is_accepted(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let arg = "y".repeat(4 * 1024 * 1024);
    c.cmd_expect(&["ECHO", &arg], &resp::bulk(arg.as_bytes()));
}

fn query_buffer_over_its_limit_closes_the_connection(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(
        &["CONFIG", "SET", "client-query-buffer-limit", "1mb"],
        b"+OK\r\n",
    );
    // A 3 MiB argument is allowed by proto-max-bulk-len, but waiting for it
    // holds more than the 1 MiB query buffer limit: the client is closed.
    let mut c = server.raw();
    c.send(b"*2\r\n$4\r\nECHO\r\n$3145728\r\n");
    c.send(&vec![b'q'; 2 << 20]);
    c.drain_until_closed();
    // Everyone else carries on.
    admin.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn unauthenticated_multibulk_count_over_10_is_an_error_and_closes(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("pw"));
    let mut c = server.raw();
    c.send(b"*11\r\n");
    expect_protocol_error(&mut c, "unauthenticated multibulk length");
    // Ten arguments are fine: the command is merely refused.
    let mut c = server.raw();
    let mut args = vec!["SUBSCRIBE"];
    args.extend(["c"; 9]);
    c.cmd_expect(&args, b"-NOAUTH Authentication required.\r\n");
}

fn unauthenticated_bulk_length_over_16k_is_an_error_and_closes(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("pw"));
    let mut c = server.raw();
    c.send(b"*2\r\n$4\r\nECHO\r\n$16385\r\n");
    expect_protocol_error(&mut c, "unauthenticated bulk length");
    let mut c = server.raw();
    c.cmd_expect(
        &["ECHO", &"z".repeat(16384)],
        b"-NOAUTH Authentication required.\r\n",
    );
}

fn authenticated_clients_are_not_held_to_pre_auth_limits(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("pw"));
    let mut c = server.conn();
    let arg = "z".repeat(100_000);
    c.cmd_expect(&["ECHO", &arg], &resp::bulk(arg.as_bytes()));
    let channels: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    let counts: Vec<i64> = (1..=20).collect();
    c.sub("SUBSCRIBE", &names, &counts);
}

fn connection_beyond_maxclients_gets_error_and_close(b: Backend) {
    let server = Server::start(Opts::new(b).maxclients(2));
    let mut first = server.conn();
    let mut second = server.conn();
    // Both are fully accepted before the third arrives.
    first.cmd_expect(&["PING"], b"+PONG\r\n");
    second.cmd_expect(&["PING"], b"+PONG\r\n");
    let mut third = server.raw();
    third.expect(b"-ERR max number of clients reached\r\n");
    third.expect_closed();
    // The two admitted clients are unaffected.
    first.cmd_expect(&["PING"], b"+PONG\r\n");
    second.sub("SUBSCRIBE", &["a"], &[1]);
    first.publish("PUBLISH", "a", "x", 1);
    second.expect_message("a", "x");
    drop(second);
    // Once a slot is free a new client gets in, and INFO counted the refusal.
    let mut info = None;
    eventually("a new client is admitted after one left", || {
        let mut c = server.raw();
        match c.cmd(&["INFO", "stats"]) {
            reply @ Frame::Bulk(_) => {
                info = Some(ringcast_tests::server::parse_info(&reply));
                true
            }
            _ => false,
        }
    });
    let info = info.expect("INFO read");
    assert!(
        info["rejected_connections"].parse::<u64>().unwrap() >= 1,
        "{info:?}"
    );
}

/// Payload of message `i`: its number first, padded to `size`.
fn numbered_payload(i: usize, size: usize) -> String {
    let mut p = format!("{i:08}:");
    p.extend(std::iter::repeat_n('p', size.saturating_sub(p.len())));
    p
}

const OUTPUT_LIMIT: &str = "1mb 256kb 1";

fn subscriber_over_hard_output_limit_is_disconnected_and_others_get_everything(b: Backend) {
    let server = Server::start(Opts::new(b).pubsub_output_limit(OUTPUT_LIMIT));
    let mut slow = RawConn::connect_slow_reader(server.port());
    slow.sub("SUBSCRIBE", &["flood"], &[1]);
    let mut fast = server.conn();
    fast.sub("SUBSCRIBE", &["flood"], &[1]);
    const SIZE: usize = 16 * 1024;
    // The publisher stays at most AHEAD messages in front of the reading
    // subscriber, so that one stays far below the soft limit however slowly
    // this test's threads get scheduled.
    const AHEAD: usize = 4;
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = thread::spawn(move || {
        let mut received = 0usize;
        loop {
            let frame = fast.read_frame();
            let (_, payload) = frame.message().expect("message frame");
            if payload == b"end" {
                return received;
            }
            assert_eq!(
                payload,
                numbered_payload(received, SIZE).as_bytes(),
                "order or loss"
            );
            received += 1;
            seen.store(received, Ordering::Release);
        }
    });
    let keep_pace = |published: usize| {
        eventually("the reading subscriber keeps up", || {
            progress.load(Ordering::Acquire) + AHEAD >= published
        })
    };
    let mut publisher = server.conn();
    let mut published = 0usize;
    // The slow reader's kernel buffers hold ~100 KiB, the limit 1 MiB: it
    // must be gone long before 80 MiB.
    let mut dropped = false;
    for _ in 0..5000 {
        keep_pace(published);
        let n = publisher
            .cmd(&["PUBLISH", "flood", &numbered_payload(published, SIZE)])
            .int();
        published += 1;
        match n {
            2 => {}
            1 => {
                dropped = true;
                break;
            }
            other => panic!("PUBLISH counted {other} receivers"),
        }
    }
    assert!(
        dropped,
        "the subscriber that never reads was not disconnected"
    );
    for _ in 0..100 {
        keep_pace(published);
        publisher.publish("PUBLISH", "flood", &numbered_payload(published, SIZE), 1);
        published += 1;
    }
    publisher.publish("PUBLISH", "flood", "end", 1);
    assert_eq!(reader.join().expect("reader thread"), published);
    slow.drain_until_closed();
    if !target().is_redis() {
        // Redis 7.0 lacks this INFO field (7.2 has it).
        assert_eq!(
            server.info_u64("stats", "client_output_buffer_limit_disconnections"),
            1
        );
    }
}

fn subscriber_held_over_soft_output_limit_is_disconnected_without_further_messages(b: Backend) {
    let server = Server::start(Opts::new(b).pubsub_output_limit(OUTPUT_LIMIT));
    let mut slow = RawConn::connect_slow_reader(server.port());
    slow.sub("SUBSCRIBE", &["soft"], &[1]);
    let mut publisher = server.conn();
    // 48 x 16 KiB: well over the 256 KiB soft limit once the kernel's share
    // (~100 KiB with the slow reader's socket options) is taken, and under
    // the 1 MiB hard limit even if the kernel took nothing.
    for i in 0..48 {
        publisher.send_cmd(&["PUBLISH", "soft", &numbered_payload(i, 16 * 1024)]);
        let _ = publisher.read_frame().int();
    }
    // No further message arrives for it; the limit must still be enforced.
    eventually(
        "the subscriber held over the soft limit is disconnected",
        || {
            publisher.cmd(&["PUBSUB", "NUMSUB", "soft"])
                == Frame::Array(vec![Frame::Bulk(b"soft".to_vec()), Frame::Integer(0)])
        },
    );
    slow.drain_until_closed();
    if !target().is_redis() {
        assert_eq!(
            server.info_u64("stats", "client_output_buffer_limit_disconnections"),
            1
        );
    }
}

/// One client holding 1,000 patterns that all match, and one 30 MB publish:
/// 30 GB of `pmessage` frames if each carried its own copy of the payload.
/// The payload is shared and the output limit applies as frames are queued,
/// so the subscriber is closed and nobody else notices.
fn many_matching_patterns_share_one_payload_and_meet_the_output_limit(b: Backend) {
    let server = Server::with_backend(b);
    let mut sub = server.conn();
    let patterns: Vec<String> = (1..=1000).map(|n| "*".repeat(n)).collect();
    let names: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let counts: Vec<i64> = (1..=1000).collect();
    sub.sub("PSUBSCRIBE", &names, &counts);
    let mut bystander = server.conn();
    bystander.sub("SUBSCRIBE", &["chan"], &[1]);
    let mut publisher = server.conn();
    // Under the 32 MB hard limit once (the bystander gets it), over it twice.
    let payload = "p".repeat(30 << 20);
    publisher.publish("PUBLISH", "chan", &payload, 1001);
    sub.drain_until_closed();
    bystander.expect_message("chan", &payload);
    publisher.cmd_expect(&["PING"], b"+PONG\r\n");
    if !target().is_redis() {
        assert_eq!(
            server.info_u64("stats", "client_output_buffer_limit_disconnections"),
            1
        );
    }
}

/// A worker that stops draining its rings holds at most `ring-bytes` of
/// messages from the others, however large they are: the publisher is paused
/// once the ring's bytes are used, not after 4,096 messages of 64 KiB.
fn a_stalled_worker_is_owed_at_most_ring_bytes_of_messages(b: Backend) {
    ringcast_only!("inter-worker rings are ringcast's");
    let server = Server::start(
        Opts::new(b)
            .threads(2)
            .debug_command()
            .arg("ring-bytes", "1mb"),
    );
    const N: usize = 200;
    const SIZE: usize = 64 * 1024;
    let mut sub = connect_on_worker(&server, 0);
    sub.sub("SUBSCRIBE", &["big"], &[1]);
    let mut sleeper = connect_on_worker(&server, 0);
    let publisher = connect_on_worker(&server, 1);
    let mut observer = connect_on_worker(&server, 1);
    let reader = thread::spawn(move || {
        for i in 0..N {
            let frame = sub.read_frame();
            let (_, payload) = frame.message().expect("message frame");
            assert_eq!(
                payload,
                numbered_payload(i, SIZE).as_bytes(),
                "order or loss"
            );
        }
    });
    sleeper.send_cmd(&["DEBUG", "SLEEP", "3"]);
    thread::sleep(Duration::from_millis(300));
    let requests: Vec<u8> = (0..N)
        .flat_map(|i| resp::command(&["PUBLISH", "big", &numbered_payload(i, SIZE)]))
        .collect();
    let flood = pipelined(publisher, requests, N);
    let owed = |observer: &mut RawConn| {
        let info = parse_info(&observer.cmd(&["INFO", "ringcast"]));
        let worker1 = info["worker1"].clone();
        let field = |name: &str| -> u64 {
            worker1
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("worker1 lacks {name}: {worker1}"))
        };
        (field("ring_bytes_out"), field("paused_publishers"))
    };
    eventually("the publisher is paused while worker 0 sleeps", || {
        owed(&mut observer).1 == 1
    });
    let (bytes, _) = owed(&mut observer);
    assert!(bytes > 0, "something is waiting in the ring");
    assert!(
        bytes <= (1 << 20) + SIZE as u64,
        "{bytes} bytes owed to the sleeping worker, over the 1 MiB budget"
    );
    sleeper.expect(b"+OK\r\n");
    let (_, replies) = flood.join().expect("publisher");
    assert!(replies.iter().all(|r| *r == Frame::Integer(1)));
    reader.join().expect("subscriber");
}

backend_tests!(
    many_matching_patterns_share_one_payload_and_meet_the_output_limit,
    a_stalled_worker_is_owed_at_most_ring_bytes_of_messages,
    inline_request_over_64k_without_newline_is_an_error_and_closes,
    inline_request_below_64k_is_accepted,
    multibulk_count_line_over_64k_is_an_error_and_closes,
    bulk_length_line_over_64k_is_an_error_and_closes,
    multibulk_count_above_int_max_is_an_error_and_closes,
    bulk_length_above_512mb_is_an_error_and_closes,
    large_bulk_argument_below_the_limit_is_accepted,
    query_buffer_over_its_limit_closes_the_connection,
    unauthenticated_multibulk_count_over_10_is_an_error_and_closes,
    unauthenticated_bulk_length_over_16k_is_an_error_and_closes,
    authenticated_clients_are_not_held_to_pre_auth_limits,
    connection_beyond_maxclients_gets_error_and_close,
    subscriber_over_hard_output_limit_is_disconnected_and_others_get_everything,
    subscriber_held_over_soft_output_limit_is_disconnected_without_further_messages,
);
