//! Sans-IO tests of MONITOR, the slow log and the latency monitor across
//! workers: requests in, exact bytes out.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::config::{Config, DebugCommand, OutputLimit};
use crate::shared::{ServerInfo, Shared};

struct World {
    hubs: Vec<Hub>,
}

type Client = (usize, ConnKey);

fn world(workers: usize, config: Config) -> World {
    let (doorbells, endpoints) = crate::mesh::mesh(workers, 64, config.bytes_per_ring(workers));
    let shared = Arc::new(Shared::new(
        config,
        ServerInfo::for_tests(workers),
        doorbells,
    ));
    let hubs = endpoints
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut hub = Hub::new(i, shared.clone(), e);
            hub.set_turn_time(Duration::MAX);
            hub
        })
        .collect();
    World { hubs }
}

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend(format!("${}\r\n", a.len()).bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

impl World {
    fn connect(&mut self, w: usize, port: u16) -> Client {
        let peer = format!("127.0.0.1:{port}").parse().unwrap();
        let local = "127.0.0.1:6379".parse().unwrap();
        (w, self.hubs[w].connect(peer, local))
    }

    fn send(&mut self, c: Client, args: &[&[u8]]) -> Input {
        let mut buf = BytesMut::from(&cmd(args)[..]);
        let hub = &mut self.hubs[c.0];
        let status = hub.input(c.1, &mut buf);
        hub.flush_rings();
        status
    }

    fn output(&mut self, c: Client) -> Vec<u8> {
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

    /// The monitor lines queued for `c`, without their time stamps.
    fn lines(&mut self, c: Client) -> Vec<String> {
        let out = String::from_utf8(self.output(c)).expect("ASCII lines");
        out.split_terminator("\r\n")
            .map(|l| match l.split_once(' ') {
                Some((stamp, rest)) if stamp.starts_with('+') && stamp.contains('.') => {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect()
    }

    fn shared(&self) -> &Shared {
        self.hubs[0].shared()
    }
}

#[test]
fn a_monitor_sees_every_workers_commands_in_order_but_not_admin_ones() {
    let mut w = world(2, Config::default());
    let monitor = w.connect(1, 7001);
    let client = w.connect(0, 7002);
    w.send(monitor, &[b"MONITOR"]);
    assert_eq!(w.output(monitor), b"+OK\r\n");
    for args in [
        &[&b"PING"[..]][..],
        &[b"ECHO", b"a \"b\"\n"],
        &[b"NOSUCH", b"x"],
        &[b"PING", b"a", b"b"],
        &[b"CONFIG", b"GET", b"port"],
        &[b"SELECT", b"3"],
        &[b"PUBLISH", b"ch", b"\x00\xff"],
    ] {
        w.send(client, args);
    }
    assert!(
        w.lines(monitor).is_empty(),
        "other workers' lines wait for a drain"
    );
    w.drain_all();
    assert_eq!(
        w.lines(monitor),
        [
            "[0 127.0.0.1:7002] \"PING\"",
            "[0 127.0.0.1:7002] \"ECHO\" \"a \\\"b\\\"\\n\"",
            // PING checks its own arguments, after Redis has called it.
            "[0 127.0.0.1:7002] \"PING\" \"a\" \"b\"",
            "[3 127.0.0.1:7002] \"SELECT\" \"3\"",
            "[3 127.0.0.1:7002] \"PUBLISH\" \"ch\" \"\\x00\\xff\"",
        ]
    );
}

#[test]
fn a_monitor_on_the_same_worker_sees_its_own_commands_after_their_replies() {
    let mut w = world(1, Config::default());
    let monitor = w.connect(0, 7001);
    w.send(monitor, &[b"MONITOR"]);
    w.send(monitor, &[b"MONITOR"]);
    w.send(monitor, &[b"PING"]);
    assert_eq!(
        w.lines(monitor),
        ["+OK", "+PONG", "[0 127.0.0.1:7001] \"PING\""],
        "a second MONITOR is ignored without a reply"
    );
    w.send(monitor, &[b"PUBLISH", b"ch", b"m"]);
    w.send(monitor, &[b"DBSIZE"]);
    assert_eq!(
        w.lines(monitor),
        [
            "-ERR Replica can't interact with the keyspace",
            "-ERR Replica can't interact with the keyspace"
        ]
    );
    w.send(monitor, &[b"RESET"]);
    w.send(monitor, &[b"PING"]);
    assert_eq!(w.lines(monitor), ["+RESET", "+PONG"]);
    assert_eq!(w.shared().monitors.watchers(), 0);
}

#[test]
fn secrets_are_redacted_for_monitors_and_the_slow_log() {
    let config = Config {
        slowlog_log_slower_than: 0,
        ..Config::default()
    };
    let mut w = world(1, config);
    let monitor = w.connect(0, 7001);
    let client = w.connect(0, 7002);
    w.send(monitor, &[b"MONITOR"]);
    w.output(monitor);
    w.send(client, &[b"AUTH", b"secret"]);
    w.send(client, &[b"AUTH", b"user", b"secret"]);
    w.send(client, &[b"HELLO", b"3", b"AUTH", b"user", b"secret"]);
    w.send(client, &[b"CONFIG", b"SET", b"requirepass", b"secret"]);
    assert_eq!(
        w.lines(monitor),
        [
            "[0 127.0.0.1:7002] \"AUTH\" \"(redacted)\"",
            "[0 127.0.0.1:7002] \"AUTH\" \"(redacted)\" \"(redacted)\"",
            "[0 127.0.0.1:7002] \"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\"",
        ]
    );
    let logged: Vec<Vec<Bytes>> = w
        .shared()
        .slowlog
        .newest(10)
        .into_iter()
        .map(|e| e.args)
        .collect();
    assert_eq!(
        logged[0],
        ["CONFIG", "SET", "requirepass", "(redacted)"].map(|a| Bytes::from_static(a.as_bytes()))
    );
    assert!(
        logged
            .iter()
            .all(|args| !args.contains(&Bytes::from_static(b"secret")))
    );
}

#[test]
fn a_full_inbox_closes_the_monitors_it_was_for_and_nothing_else() {
    let small = OutputLimit {
        hard: 64 << 10,
        soft: 0,
        soft_seconds: 0,
    };
    let config = Config {
        output_limit_pubsub: small,
        ..Config::default()
    };
    let mut w = world(2, config);
    let monitor = w.connect(1, 7001);
    let client = w.connect(0, 7002);
    w.send(monitor, &[b"MONITOR"]);
    w.output(monitor);
    let payload = vec![b'x'; 1000];
    for _ in 0..200 {
        w.send(client, &[b"PUBLISH", b"ch", &payload]);
    }
    w.drain_all();
    let mut shut = Vec::new();
    w.hubs[1].take_shutdowns(&mut shut);
    assert_eq!(shut, vec![monitor.1], "the monitor missed lines: closed");
    assert_eq!(w.shared().monitors.watchers(), 0);
    assert_eq!(
        w.output(client).len(),
        200 * 4,
        "the publisher got every reply"
    );
    w.send(client, &[b"PING"]);
    assert_eq!(w.output(client), b"+PONG\r\n");
}

#[test]
fn the_slow_log_takes_every_workers_commands_with_growing_ids() {
    let config = Config {
        slowlog_log_slower_than: 0,
        slowlog_max_len: 3,
        ..Config::default()
    };
    let mut w = world(2, config);
    let a = w.connect(0, 7001);
    let b = w.connect(1, 7002);
    w.send(a, &[b"CLIENT", b"SETNAME", b"alpha"]);
    w.send(b, &[b"PING"]);
    w.send(a, &[b"ECHO", b"x"]);
    w.send(b, &[b"NOSUCH"]);
    let log = w.shared().slowlog.newest(10);
    let seen: Vec<(u64, &[u8], &str, &[u8])> = log
        .iter()
        .map(|e| (e.id, &e.args[0][..], &e.addr[..], &e.name[..]))
        .collect();
    assert_eq!(
        seen,
        [
            (2, &b"ECHO"[..], "127.0.0.1:7001", &b"alpha"[..]),
            (1, b"PING", "127.0.0.1:7002", b""),
            (0, b"CLIENT", "127.0.0.1:7001", b"alpha"),
        ],
        "refused commands are not logged"
    );
}

#[test]
fn debug_sleep_counts_as_a_slow_command_and_a_long_turn() {
    let config = Config {
        enable_debug_command: DebugCommand::Yes,
        slowlog_log_slower_than: 100_000,
        latency_monitor_threshold: 100,
        ..Config::default()
    };
    let mut w = world(1, config);
    let c = w.connect(0, 7001);
    let status = w.send(c, &[b"DEBUG", b"SLEEP", b"0.2"]);
    assert_eq!(status, Input::Sleep(std::time::Duration::from_millis(200)));
    let log = w.shared().slowlog.newest(10);
    assert_eq!(log.len(), 1);
    assert!(log[0].duration_us >= 200_000, "{}", log[0].duration_us);
    let events: Vec<(String, bool)> = w
        .shared()
        .latency
        .latest()
        .into_iter()
        .map(|l| (l.event, l.latency_ms >= 200 && l.max_ms >= 200))
        .collect();
    assert_eq!(
        events,
        [
            ("command".to_string(), true),
            ("event-loop".to_string(), true)
        ]
    );
}

#[test]
fn idle_monitors_are_not_timed_out() {
    let config = Config {
        timeout: 1,
        ..Config::default()
    };
    let mut w = world(1, config);
    let monitor = w.connect(0, 7001);
    let idle = w.connect(0, 7002);
    w.send(monitor, &[b"MONITOR"]);
    w.hubs[0].cron_at(std::time::Instant::now() + std::time::Duration::from_secs(5));
    let mut shut = Vec::new();
    w.hubs[0].take_shutdowns(&mut shut);
    assert_eq!(shut, vec![idle.1], "only the plain idle client is closed");
}

#[test]
fn a_pipelined_config_set_applies_to_the_commands_after_it() {
    let config = Config {
        slowlog_log_slower_than: -1,
        ..Config::default()
    };
    let mut w = world(1, config);
    let c = w.connect(0, 7001);
    let mut batch = cmd(&[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"]);
    batch.extend(cmd(&[b"PING"]));
    batch.extend(cmd(&[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"-1"]));
    batch.extend(cmd(&[b"ECHO", b"x"]));
    let mut buf = BytesMut::from(&batch[..]);
    w.hubs[0].input(c.1, &mut buf);
    let logged: Vec<Vec<Bytes>> = w
        .shared()
        .slowlog
        .newest(10)
        .into_iter()
        .map(|e| e.args)
        .collect();
    assert_eq!(
        logged,
        [vec![Bytes::from_static(b"PING")]],
        "the PING after the enabling CONFIG SET is logged; the CONFIG SET that \
         disables the log is not (nor the one that enables it: it was not timed)"
    );
}
