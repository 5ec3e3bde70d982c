//! How a connection ends: every way one closes releases its socket, its
//! `maxclients` slot and its memory at once, stops deliveries to it, and
//! leaves the counters INFO shows exact.

use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, connect_on_worker, eventually,
    ringcast_only, slow_reader_on_worker, target,
};

/// Ids of the connected clients, from CLIENT LIST.
fn client_ids(admin: &mut RawConn) -> Vec<u64> {
    let list = admin.cmd(&["CLIENT", "LIST"]);
    let text = list.text();
    text.lines()
        .filter_map(|l| l.strip_prefix("id="))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// INFO's `connected_clients`, asked on `admin` (a new connection would count itself).
fn connected_clients(admin: &mut RawConn) -> u64 {
    let info = ringcast_tests::server::parse_info(&admin.cmd(&["INFO", "clients"]));
    info["connected_clients"].parse().expect("a number")
}

fn reply_off_then_quit_closes_the_connection(b: Backend) {
    ringcast_only!(
        "Redis keeps such a connection until its next write (docs/redis-differences.md, row 14)"
    );
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    for reply_mode in ["OFF", "SKIP"] {
        let mut c = server.conn();
        c.send_cmd(&["CLIENT", "REPLY", reply_mode]);
        // SKIP silences the command after it: QUIT's +OK.
        c.send_cmd(&["QUIT"]);
        c.expect_closed();
    }
    eventually("both clients are gone", || {
        client_ids(&mut admin).len() == 1
    });
}

fn client_kill_of_oneself_under_reply_off_closes_the_connection(b: Backend) {
    ringcast_only!(
        "Redis keeps such a connection until its next write (docs/redis-differences.md, row 14)"
    );
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    let mut c = server.conn();
    let id = c.cmd(&["CLIENT", "ID"]).int();
    c.send_cmd(&["CLIENT", "REPLY", "OFF"]);
    c.send_cmd(&["CLIENT", "KILL", "ID", &id.to_string(), "SKIPME", "no"]);
    c.expect_closed();
    eventually("the client is gone", || {
        !client_ids(&mut admin).contains(&(id as u64))
    });
}

/// Publishes to a subscriber that reads nothing until the server's write to
/// it is surely blocked: far more than the kernel buffers of both ends take
/// (4 MiB of send buffer at most, a few KiB at the reader), far less than
/// the 32 MiB output limit.
fn block_the_writer_of(publisher: &mut RawConn, channel: &str) {
    let payload = "f".repeat(16 * 1024);
    for _ in 0..768 {
        publisher.publish("PUBLISH", channel, &payload, 1);
    }
}

fn output_limit_closes_a_subscriber_whose_writer_is_blocked(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    let mut slow = RawConn::connect_slow_reader(server.port());
    let slow_id = slow.cmd(&["CLIENT", "ID"]).int() as u64;
    slow.sub("SUBSCRIBE", &["flood"], &[1]);
    let mut publisher = server.conn();
    block_the_writer_of(&mut publisher, "flood");
    admin.cmd_expect(
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0",
        ],
        b"+OK\r\n",
    );
    // The next message finds it over the limit.
    publisher.cmd(&["PUBLISH", "flood", "x"]);
    // The slow reader still reads nothing, so the server's last write to it
    // cannot complete: the socket and the slot must go anyway.
    expect_gone(&mut admin, &mut slow, slow_id, 2);
}

fn client_kill_closes_a_connection_whose_writer_is_blocked(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    let mut slow = RawConn::connect_slow_reader(server.port());
    let slow_id = slow.cmd(&["CLIENT", "ID"]).int() as u64;
    slow.sub("SUBSCRIBE", &["flood"], &[1]);
    let mut publisher = server.conn();
    block_the_writer_of(&mut publisher, "flood");
    admin.cmd_expect(&["CLIENT", "KILL", "ID", &slow_id.to_string()], b":1\r\n");
    expect_gone(&mut admin, &mut slow, slow_id, 2);
}

/// The server closed client `id` (reached by `conn`, which reads nothing):
/// it leaves CLIENT LIST, gives back its slot (`others` stay connected) and
/// its socket is closed.
fn expect_gone(admin: &mut RawConn, conn: &mut RawConn, id: u64, others: u64) {
    eventually("the closed client leaves CLIENT LIST", || {
        !client_ids(admin).contains(&id)
    });
    eventually("connected_clients counts only the others", || {
        connected_clients(admin) == others
    });
    conn.drain_until_closed();
}

fn output_of_a_client_that_never_authenticates_is_capped(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("pw"));
    let mut c = server.raw();
    // 100,000 requests answered with NOAUTH (3.4 MB) that it never reads.
    let requests = b"PING\r\n".repeat(100_000);
    let _ = c.try_send(&requests);
    c.drain_until_closed();
    let mut admin = server.conn();
    admin.cmd_expect(&["AUTH", "pw"], b"+OK\r\n");
    admin.cmd_expect(&["PING"], b"+PONG\r\n");
    if !target().is_redis() {
        // Redis 7.0 lacks this INFO field (7.2 has it).
        assert_eq!(
            server.info_u64("stats", "client_output_buffer_limit_disconnections"),
            1
        );
    }
}

fn output_of_an_authenticated_client_is_not_capped(b: Backend) {
    let server = Server::start(Opts::new(b).requirepass("pw"));
    let mut c = server.raw();
    c.cmd_expect(&["AUTH", "pw"], b"+OK\r\n");
    c.send(&b"PING\r\n".repeat(100_000));
    for _ in 0..100_000 {
        c.expect(b"+PONG\r\n");
    }
}

fn reset_while_subscribed_keeps_pubsub_clients_exact(b: Backend) {
    ringcast_only!("Redis 7.0 has no pubsub_clients in INFO");
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["a", "b"], &[1, 2]);
    c.sub("PSUBSCRIBE", &["p*"], &[3]);
    assert_eq!(server.info_u64("clients", "pubsub_clients"), 1);
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    assert_eq!(server.info_u64("clients", "pubsub_clients"), 0);
    c.sub("SSUBSCRIBE", &["s"], &[1]);
    assert_eq!(server.info_u64("clients", "pubsub_clients"), 1);
    drop(c);
    eventually("pubsub_clients back to zero", || {
        server.info_u64("clients", "pubsub_clients") == 0
    });
    assert_eq!(server.info_u64("clients", "pubsub_clients"), 0);
}

/// A subscriber that reads nothing for a while, with megabytes queued for
/// it, sends `leave`: from then on it is not counted by PUBLISH nor sent
/// anything more, and once it reads, the reply to `leave` (`ack`) is the
/// last thing it gets before the connection closes.
fn leaving_with_output_queued_stops_deliveries_and_closes(b: Backend, leave: &[u8], ack: Frame) {
    let server = Server::with_backend(b);
    let mut sub = slow_reader_on_worker(&server, 1);
    sub.sub("SUBSCRIBE", &["ch"], &[1]);
    let mut publisher = connect_on_worker(&server, 0);
    block_the_writer_of(&mut publisher, "ch");
    sub.send(leave);
    // Published before `leave` took effect: counted, and delivered unless it
    // was still on its way from the other worker when the connection began
    // to close (invariant 4 allows that loss: the connection closes).
    let mut counted_late = 0;
    eventually("PUBLISH stops counting the subscriber that left", || {
        let n = publisher.cmd(&["PUBLISH", "ch", "late"]).int();
        counted_late += n;
        n == 0
    });
    let mut late = 0;
    loop {
        let frame = sub.read_frame();
        if let Some((_, payload)) = frame.message() {
            late += i64::from(payload == b"late");
            continue;
        }
        assert_eq!(frame, ack);
        break;
    }
    assert!(
        late <= counted_late,
        "{late} late messages delivered, {counted_late} counted"
    );
    sub.expect_closed();
}

fn quit_stops_deliveries_before_the_connection_closes(b: Backend) {
    let ok = Frame::Simple(b"OK".to_vec());
    leaving_with_output_queued_stops_deliveries_and_closes(b, b"*1\r\n$4\r\nQUIT\r\n", ok);
}

fn protocol_error_stops_deliveries_before_the_connection_closes(b: Backend) {
    leaving_with_output_queued_stops_deliveries_and_closes(
        b,
        b"*1\r\nfoo\r\n",
        Frame::Error(b"ERR Protocol error: expected '$', got 'f'".to_vec()),
    );
}

fn debug_sleep_with_an_absurd_time_does_not_take_the_server_down(b: Backend) {
    let server = Server::start(Opts::new(b).debug_command());
    let mut c = server.conn();
    for absurd in ["1e20", "-5", "nan", "inf", "abc"] {
        c.cmd_expect(&["DEBUG", "SLEEP", absurd], b"+OK\r\n");
    }
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let mut other = server.conn();
    other.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn error_replies_never_carry_a_line_break_from_the_client(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["HELLO", "2", "x\r\n+INJECTED"],
        b"-ERR Syntax error in HELLO option 'x  +INJECTED'\r\n",
    );
    c.cmd_expect(
        &["CLIENT", "KILL", "TYPE", "no\r\nsuch"],
        b"-ERR Unknown client type 'no  such'\r\n",
    );
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

fn echoed_arguments_are_raw_bytes_cut_at_nul(b: Backend) {
    ringcast_only!("the reference run checks the same bytes in the differential test");
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let reply = c.cmd(&[&b"NOSUCH\xff"[..], b"a\0b", b"c"]);
    assert_eq!(
        reply,
        Frame::Error(
            b"ERR unknown command 'NOSUCH\xff', with args beginning with: 'a' 'c' ".to_vec()
        )
    );
}

/// What looks like HTTP (a browser led to the server's port by a web page)
/// is closed at once, without a reply: Redis's guard against cross-protocol
/// scripting.
fn an_http_request_is_closed_without_a_reply(b: Backend) {
    let server = Server::with_backend(b);
    for request in [
        &b"POST /x HTTP/1.1\r\nHost: localhost\r\n\r\nPUBLISH ch hi\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let mut c = server.raw();
        // In one write: the error for `GET` is dropped with the connection too.
        c.send(request);
        c.expect_closed();
    }
    let mut other = server.conn();
    other.cmd_expect(&["PUBLISH", "ch", "x"], b":0\r\n");
}

backend_tests!(
    an_http_request_is_closed_without_a_reply,
    reply_off_then_quit_closes_the_connection,
    client_kill_of_oneself_under_reply_off_closes_the_connection,
    output_limit_closes_a_subscriber_whose_writer_is_blocked,
    client_kill_closes_a_connection_whose_writer_is_blocked,
    output_of_a_client_that_never_authenticates_is_capped,
    output_of_an_authenticated_client_is_not_capped,
    reset_while_subscribed_keeps_pubsub_clients_exact,
    quit_stops_deliveries_before_the_connection_closes,
    protocol_error_stops_deliveries_before_the_connection_closes,
    debug_sleep_with_an_absurd_time_does_not_take_the_server_down,
    error_replies_never_carry_a_line_break_from_the_client,
    echoed_arguments_are_raw_bytes_cut_at_nul,
);
