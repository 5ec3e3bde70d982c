//! MONITOR across workers (line format, escaping, redaction, what is left
//! out, what a monitor may still send, RESET, the output limit), and the
//! CLIENT NO-EVICT / NO-TOUCH modes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use ringcast_tests::resp::Proto;
use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, connect_on_worker, eventually,
    ringcast_only, slow_reader_on_worker, target,
};

/// The `addr=` of a connection, as monitor lines name it.
fn addr_of(c: &mut RawConn) -> String {
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    info.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .expect("CLIENT INFO has addr=")
        .to_owned()
}

/// Reads one monitor line and returns it without its time stamp, after
/// checking the stamp is `<seconds>.<6-digit microseconds>`.
fn read_line(monitor: &mut RawConn) -> String {
    let frame = monitor.read_frame();
    let Frame::Simple(line) = frame else {
        panic!("expected a monitor line, got {frame:?}");
    };
    let line = String::from_utf8(line).expect("monitor lines are ASCII");
    let (stamp, rest) = line.split_once(' ').expect("stamp then the rest");
    let (secs, micros) = stamp.split_once('.').expect("seconds.microseconds");
    assert!(
        !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    assert!(
        micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    rest.to_owned()
}

/// The next monitor line that is not a `CLIENT INFO` (which placing a
/// connection on a worker sends, see `connect_on_worker`).
fn next_line(monitor: &mut RawConn) -> String {
    loop {
        let line = read_line(monitor);
        if !line.ends_with("\"CLIENT\" \"INFO\"") {
            return line;
        }
    }
}

fn start_monitor(server: &Server, worker: usize) -> RawConn {
    let mut m = connect_on_worker(server, worker);
    m.cmd_expect(&["MONITOR"], b"+OK\r\n");
    m
}

fn monitor_sees_commands_from_connections_on_every_worker(b: Backend) {
    let server = Server::with_backend(b);
    let mut monitor = start_monitor(&server, 0);
    let mut clients: Vec<(RawConn, String)> = (0..server.threads())
        .flat_map(|w| [0, 1].map(|_| w))
        .map(|w| {
            let mut c = connect_on_worker(&server, w);
            let addr = addr_of(&mut c);
            (c, addr)
        })
        .collect();
    let mut expected = Vec::new();
    for round in 0..3 {
        for (i, (c, addr)) in clients.iter_mut().enumerate() {
            let word = format!("r{round}c{i}");
            let reply = format!("${}\r\n{word}\r\n", word.len());
            c.cmd_expect(&["ECHO", word.as_str()], reply.as_bytes());
            expected.push(format!("[0 {addr}] \"ECHO\" \"{word}\""));
        }
    }
    let got: Vec<String> = (0..expected.len())
        .map(|_| next_line(&mut monitor))
        .collect();
    // Lines of one connection keep their order; connections on different
    // workers may interleave.
    for (_, addr) in &clients {
        let mine = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.contains(&format!(" {addr}]")))
                .cloned()
                .collect()
        };
        assert_eq!(mine(&got), mine(&expected));
    }
    let (mut got, mut expected) = (got, expected);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

fn monitor_lines_escape_arguments_redact_secrets_and_leave_out_admin_commands(b: Backend) {
    let server = Server::with_backend(b);
    let mut monitor = start_monitor(&server, 0);
    let mut c = connect_on_worker(&server, server.threads() - 1);
    let addr = addr_of(&mut c);
    c.send_cmd(&[&b"ECHO"[..], b"a\"b\\\n\r\t\x07\x08\x00\xff\x7f~"]);
    c.read_frame();
    for args in [
        &["AUTH", "secret"][..],
        &["AUTH", "user", "secret"],
        &["AUTH", "a", "b", "c"],
        &["HELLO", "3", "AUTH", "user", "secret"],
        &["HELLO", "4", "AUTH", "user", "secret"],
        &["CONFIG", "GET", "port"],
        &["CLIENT", "LIST"],
        &["NOSUCH", "x"],
        &["SELECT", "2"],
        &["PING", "done"],
    ] {
        assert!(!matches!(c.cmd(args), Frame::Null));
    }
    let expected = [
        format!("[0 {addr}] \"ECHO\" \"a\\\"b\\\\\\n\\r\\t\\a\\b\\x00\\xff\\x7f~\""),
        format!("[0 {addr}] \"AUTH\" \"(redacted)\""),
        format!("[0 {addr}] \"AUTH\" \"(redacted)\" \"(redacted)\""),
        // A syntax error before AUTH reads its arguments: nothing hidden.
        format!("[0 {addr}] \"AUTH\" \"a\" \"b\" \"c\""),
        format!("[0 {addr}] \"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\""),
        format!("[0 {addr}] \"HELLO\" \"4\" \"AUTH\" \"user\" \"secret\""),
        format!("[2 {addr}] \"SELECT\" \"2\""),
        format!("[2 {addr}] \"PING\" \"done\""),
    ];
    for line in expected {
        assert_eq!(next_line(&mut monitor), line);
    }
}

fn a_monitor_sees_its_own_commands_and_may_not_touch_the_keyspace(b: Backend) {
    let server = Server::with_backend(b);
    let mut monitor = start_monitor(&server, 0);
    let addr = addr_of(&mut monitor);
    assert_eq!(
        read_line(&mut monitor),
        format!("[0 {addr}] \"CLIENT\" \"INFO\""),
        "its own commands too, after their replies"
    );
    let keyspace = b"-ERR Replica can't interact with the keyspace\r\n";
    monitor.cmd_expect(&["PUBLISH", "ch", "m"], keyspace);
    monitor.cmd_expect(&["FLUSHALL"], keyspace);
    monitor.cmd_expect(&["DBSIZE"], keyspace);
    // MONITOR again is ignored without a reply.
    monitor.send_cmd(&["MONITOR"]);
    monitor.cmd_expect(&["PING"], b"+PONG\r\n");
    assert_eq!(next_line(&mut monitor), format!("[0 {addr}] \"PING\""));
    let list = {
        let mut other = server.conn();
        other.cmd(&["CLIENT", "LIST", "TYPE", "normal"]).text()
    };
    let me = list
        .lines()
        .find(|l| l.contains(&format!("addr={addr} ")))
        .expect("the monitor is a normal client");
    assert!(me.contains(" flags=O "), "{me}");
    // Subscribed, it still sees lines (and speaks the RESP2 subscribed dialect).
    monitor.sub("SUBSCRIBE", &["ch"], &[1]);
    assert_eq!(
        next_line(&mut monitor),
        format!("[0 {addr}] \"SUBSCRIBE\" \"ch\"")
    );
}

fn monitor_is_refused_in_resp2_subscribed_mode(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.sub("SUBSCRIBE", &["ch"], &[1]);
    c.cmd_expect(
        &["MONITOR"],
        b"-ERR Can't execute 'monitor': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
}

fn reset_leaves_monitor_mode(b: Backend) {
    // One worker: a line for the monitor would be queued before its next reply.
    let server = Server::start(Opts::new(b).threads(1));
    let mut monitor = start_monitor(&server, 0);
    let mut other = server.conn();
    monitor.cmd_expect(&["RESET"], b"+RESET\r\n");
    other.cmd_expect(&["PING"], b"+PONG\r\n");
    monitor.cmd_expect(&["PING"], b"+PONG\r\n");
    assert!(!monitor.has_input(), "no line after RESET");
    let list = other.cmd(&["CLIENT", "LIST"]).text();
    assert!(!list.contains("flags=O"), "{list}");
}

fn a_resp3_monitor_gets_simple_strings(b: Backend) {
    let server = Server::with_backend(b);
    let mut monitor = connect_on_worker(&server, 0);
    monitor.use_proto(Proto::Resp3);
    monitor.cmd_expect(&["MONITOR"], b"+OK\r\n");
    let mut c = connect_on_worker(&server, server.threads() - 1);
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let line = next_line(&mut monitor);
    assert!(line.ends_with("] \"PING\""), "{line}");
}

/// A monitor that never reads is closed at its output limit; a monitor that
/// reads gets every line, and the client it watches every reply.
fn a_monitor_that_never_reads_is_closed_at_its_limit(b: Backend) {
    ringcast_only!("Redis counts monitors as normal clients, unlimited by default");
    let server = Server::start(Opts::new(b).pubsub_output_limit("1mb 256kb 60"));
    let mut slow = slow_reader_on_worker(&server, 0);
    slow.cmd_expect(&["MONITOR"], b"+OK\r\n");
    let mut reading = start_monitor(&server, 1);
    let mut client = connect_on_worker(&server, 0);
    const SIZE: usize = 16 * 1024;
    const AHEAD: usize = 4;
    const LINES: usize = 400;
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = thread::spawn(move || {
        let mut n = 0;
        loop {
            let line = read_line(&mut reading);
            if line.ends_with("\"ECHO\" \"end\"") {
                return n;
            }
            if line.contains("\"ECHO\"") {
                let head = &line[..line.len().min(80)];
                assert!(
                    line.contains(&format!("\"ECHO\" \"{n:08}:")),
                    "line {n}: {head}"
                );
                n += 1;
                seen.store(n, Ordering::Release);
            }
        }
    });
    for i in 0..LINES {
        eventually("the reading monitor keeps up", || {
            progress.load(Ordering::Acquire) + AHEAD >= i
        });
        let mut payload = format!("{i:08}:");
        payload.extend(std::iter::repeat_n('p', SIZE));
        let reply = client.cmd(&["ECHO", payload.as_str()]);
        assert_eq!(reply.bytes(), Some(payload.as_bytes()));
    }
    client.cmd_expect(&["ECHO", "end"], b"$3\r\nend\r\n");
    assert_eq!(reader.join().expect("reader"), LINES);
    slow.drain_until_closed();
    assert!(server.info_u64("stats", "client_output_buffer_limit_disconnections") >= 1);
}

fn client_no_evict_and_no_touch_show_in_client_list(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let flags = |c: &mut RawConn| -> String {
        let info = c.cmd(&["CLIENT", "INFO"]).text();
        info.split_whitespace()
            .find_map(|f| f.strip_prefix("flags="))
            .expect("flags=")
            .to_owned()
    };
    c.cmd_expect(&["CLIENT", "NO-EVICT", "on"], b"+OK\r\n");
    assert_eq!(flags(&mut c), "e");
    c.cmd_expect(&["CLIENT", "NO-EVICT", "maybe"], b"-ERR syntax error\r\n");
    c.cmd_expect(
        &["CLIENT", "NO-EVICT"],
        b"-ERR wrong number of arguments for 'client|no-evict' command\r\n",
    );
    c.cmd_expect(&["CLIENT", "NO-EVICT", "OFF"], b"+OK\r\n");
    assert_eq!(flags(&mut c), "N");
    if target().is_redis() {
        // NO-TOUCH, and RESET clearing these modes, are Redis 7.2's.
        return;
    }
    c.cmd_expect(&["CLIENT", "NO-TOUCH", "on"], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "NO-EVICT", "on"], b"+OK\r\n");
    assert_eq!(flags(&mut c), "eT");
    c.cmd_expect(&["CLIENT", "NO-TOUCH", "x"], b"-ERR syntax error\r\n");
    c.sub("SUBSCRIBE", &["ch"], &[1]);
    let list = server
        .conn()
        .cmd(&["CLIENT", "LIST", "TYPE", "pubsub"])
        .text();
    assert!(list.contains(" flags=PeT "), "{list}");
    c.cmd_expect(&["RESET"], b"+RESET\r\n");
    assert_eq!(flags(&mut c), "N");
}

/// Each command EXEC runs is shown as it runs, then EXEC; queuing shows
/// nothing, and a discarded transaction shows only MULTI and DISCARD.
fn monitor_sees_the_commands_exec_runs_then_exec(b: Backend) {
    let server = Server::with_backend(b);
    // A monitor on each worker: the lines cross workers too.
    let mut monitors: Vec<RawConn> = (0..server.threads())
        .map(|w| start_monitor(&server, w))
        .collect();
    let mut c = connect_on_worker(&server, 0);
    let addr = addr_of(&mut c);
    c.cmd_expect(&["MULTI"], b"+OK\r\n");
    c.cmd_expect(&["PUBLISH", "ch", "m1"], b"+QUEUED\r\n");
    c.cmd_expect(&["CONFIG", "GET", "port"], b"+QUEUED\r\n");
    c.cmd_expect(&["ECHO", "e"], b"+QUEUED\r\n");
    let Frame::Array(replies) = c.cmd(&["EXEC"]) else {
        panic!("EXEC answers an array");
    };
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], Frame::Integer(0));
    assert_eq!(replies[2], Frame::Bulk(b"e".to_vec()));
    c.cmd_expect(&["MULTI"], b"+OK\r\n");
    c.cmd_expect(&["ECHO", "never"], b"+QUEUED\r\n");
    c.cmd_expect(&["DISCARD"], b"+OK\r\n");
    c.cmd_expect(&["PING", "done"], b"$4\r\ndone\r\n");
    let expected = [
        format!("[0 {addr}] \"MULTI\""),
        format!("[0 {addr}] \"PUBLISH\" \"ch\" \"m1\""),
        // CONFIG is an admin command: never shown, inside EXEC or not.
        format!("[0 {addr}] \"ECHO\" \"e\""),
        format!("[0 {addr}] \"EXEC\""),
        format!("[0 {addr}] \"MULTI\""),
        format!("[0 {addr}] \"DISCARD\""),
        format!("[0 {addr}] \"PING\" \"done\""),
    ];
    for monitor in &mut monitors {
        for line in &expected {
            assert_eq!(&next_line(monitor), line);
        }
    }
}

backend_tests!(
    monitor_sees_the_commands_exec_runs_then_exec,
    monitor_sees_commands_from_connections_on_every_worker,
    monitor_lines_escape_arguments_redact_secrets_and_leave_out_admin_commands,
    a_monitor_sees_its_own_commands_and_may_not_touch_the_keyspace,
    monitor_is_refused_in_resp2_subscribed_mode,
    reset_leaves_monitor_mode,
    a_resp3_monitor_gets_simple_strings,
    a_monitor_that_never_reads_is_closed_at_its_limit,
    client_no_evict_and_no_touch_show_in_client_list,
);
