//! The commands and signals an operator uses, with Redis 7.2's replies:
//! `SHUTDOWN` and its options, SIGHUP, `CONFIG SET` (its errors, several
//! pairs at once), `CONFIG GET` patterns, `CONFIG RESETSTAT` and `CONFIG
//! REWRITE` without a file. The shared cases run against redis-server too
//! (`RINGCAST_TEST_TARGET=redis`), which is how their texts were checked.

use std::collections::HashMap;
use std::time::Duration;

use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, eventually, resp, ringcast_only,
};

const OK: &[u8] = b"+OK\r\n";

/// `-ERR CONFIG SET failed (possibly related to argument '<name>') - <why>`.
fn set_failed(name: &str, why: &str) -> Vec<u8> {
    format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - {why}\r\n")
        .into_bytes()
}

/// A CONFIG GET reply (RESP2 flat array or RESP3 map) as name -> value.
fn config_map(reply: &Frame) -> HashMap<String, String> {
    let text = |f: &Frame| String::from_utf8_lossy(f.bytes().unwrap_or_default()).into_owned();
    match reply {
        Frame::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => other
            .items()
            .chunks(2)
            .map(|kv| (text(&kv[0]), text(&kv[1])))
            .collect(),
    }
}

fn get(c: &mut RawConn, name: &str) -> String {
    config_map(&c.cmd(&["CONFIG", "GET", name]))
        .remove(name)
        .unwrap_or_else(|| panic!("CONFIG GET {name} answered nothing"))
}

fn config_set_errors_are_redis_texts(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "SET", "port", "abc"],
        &set_failed("port", "argument couldn't be parsed into an integer"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "port", "70000"],
        &set_failed("port", "argument must be between 0 and 65535 inclusive"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "maxclients", "0"],
        &set_failed(
            "maxclients",
            "argument must be between 1 and 4294967295 inclusive",
        ),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "timeout", "1.5"],
        &set_failed("timeout", "argument couldn't be parsed into an integer"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "databases", "5"],
        &set_failed("databases", "can't set immutable config"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "daemonize", "yes"],
        &set_failed("daemonize", "can't set immutable config"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "dir", "/tmp"],
        &set_failed("dir", "can't set protected config"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "foo", "1"],
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n",
    );
    c.cmd_expect(
        &["CONFIG", "SET", "protected-mode", "maybe"],
        &set_failed("protected-mode", "argument must be 'yes' or 'no'"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "proto-max-bulk-len", "1x"],
        &set_failed("proto-max-bulk-len", "argument must be a memory value"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "maxmemory-policy", "sometimes"],
        &set_failed(
            "maxmemory-policy",
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
        ),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "timeout", "1", "TIMEOUT", "2"],
        &set_failed("TIMEOUT", "duplicate parameter"),
    );
    c.cmd_expect(
        &["CONFIG", "SET", "timeout", "1", "x"],
        b"-ERR syntax error\r\n",
    );
    c.cmd_expect(
        &["CONFIG", "SET", "timeout"],
        b"-ERR wrong number of arguments for 'config|set' command\r\n",
    );
}

fn config_set_takes_several_pairs_all_or_nothing(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "SET", "timeout", "7", "tcp-keepalive", "70"],
        OK,
    );
    assert_eq!(get(&mut c, "timeout"), "7");
    assert_eq!(get(&mut c, "tcp-keepalive"), "70");
    // The second value is bad: neither is set.
    c.cmd_expect(
        &["CONFIG", "SET", "timeout", "8", "tcp-keepalive", "x"],
        &set_failed(
            "tcp-keepalive",
            "argument couldn't be parsed into an integer",
        ),
    );
    assert_eq!(get(&mut c, "timeout"), "7");
    // The first problem found wins, before any value is read.
    c.cmd_expect(
        &[
            "CONFIG",
            "SET",
            "timeout",
            "x",
            "databases",
            "3",
            "nope",
            "1",
        ],
        &set_failed("databases", "can't set immutable config"),
    );
    assert_eq!(get(&mut c, "timeout"), "7");
}

/// `CONFIG SET port`: the old listener closes, the new one serves; a port
/// that cannot be listened on is Redis's error, and the old port stays.
fn config_set_port_listens_on_the_new_port(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port().to_string();
    c.cmd_expect(
        &["CONFIG", "SET", "port", taken_port.as_str()],
        &set_failed("port", "Unable to listen on this port. Check server logs."),
    );
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
    let port = ringcast_tests::free_port();
    c.cmd_expect(&["CONFIG", "SET", "port", &port.to_string()], OK);
    assert_eq!(get(&mut c, "port"), port.to_string());
    let mut moved = RawConn::connect(port);
    moved.cmd_expect(&["PING"], b"+PONG\r\n");
    let info = ringcast_tests::server::parse_info(&moved.cmd(&["INFO", "server"]));
    assert_eq!(info["tcp_port"], port.to_string());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "the old port still listens"
    );
    // Connections made before stay.
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    moved.cmd_expect(&["CONFIG", "SET", "bind", "127.0.0.1 -192.0.2.1"], OK);
    RawConn::connect(port).cmd_expect(&["PING"], b"+PONG\r\n");
    moved.cmd_expect(
        &["CONFIG", "SET", "bind", "192.0.2.1"],
        &set_failed("bind", "Failed to bind to specified addresses."),
    );
    RawConn::connect(port).cmd_expect(&["PING"], b"+PONG\r\n");
    drop(taken);
}

fn hz_is_clamped_between_1_and_500(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    assert_eq!(get(&mut c, "hz"), "10");
    c.cmd_expect(&["CONFIG", "SET", "hz", "0"], OK);
    assert_eq!(get(&mut c, "hz"), "1");
    c.cmd_expect(&["CONFIG", "SET", "hz", "1000"], OK);
    assert_eq!(get(&mut c, "hz"), "500");
    assert_eq!(server.info("server")["hz"], "500");
    c.cmd_expect(
        &["CONFIG", "SET", "hz", "-1"],
        &set_failed("hz", "argument must be between 0 and 2147483647 inclusive"),
    );
}

fn parameters_ringcast_does_not_use_are_set_and_read_back(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LRU"], OK);
    assert_eq!(get(&mut c, "maxmemory-policy"), "allkeys-lru");
    c.cmd_expect(&["CONFIG", "SET", "maxmemory", "1gb"], OK);
    assert_eq!(get(&mut c, "maxmemory"), "1073741824");
    c.cmd_expect(&["CONFIG", "SET", "slave-priority", "7"], OK);
    assert_eq!(get(&mut c, "replica-priority"), "7");
    c.cmd_expect(
        &["CONFIG", "SET", "save", "60"],
        &set_failed("save", "Invalid save parameters"),
    );
}

fn config_get_answers_exact_names_as_typed_and_patterns_as_redis(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let reply = config_map(&c.cmd(&["CONFIG", "GET", "MAXCLIENTS"]));
    assert_eq!(reply.get("MAXCLIENTS").map(String::as_str), Some("10000"));
    let reply = config_map(&c.cmd(&["CONFIG", "GET", "*read-only*"]));
    assert_eq!(
        reply.get("replica-read-only").map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        reply.get("slave-read-only").map(String::as_str),
        Some("yes")
    );
    let reply = config_map(&c.cmd(&["CONFIG", "GET", "maxclients", "time*", "maxclients"]));
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert!(reply.contains_key("timeout"));
    c.cmd_expect(&["CONFIG", "GET", "no-such-parameter"], b"*0\r\n");
    // Every parameter Redis lists is there.
    let all = config_map(&c.cmd(&["CONFIG", "GET", "*"]));
    for name in [
        "save",
        "appendonly",
        "bind",
        "dir",
        "logfile",
        "hz",
        "notify-keyspace-events",
    ] {
        assert!(all.contains_key(name), "CONFIG GET * lacks {name}");
    }
}

fn config_resetstat_resets_what_redis_resets(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    for _ in 0..5 {
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }
    assert!(c.cmd(&["NOSUCHCOMMAND"]).is_error());
    let mut other = server.conn();
    other.cmd_expect(&["PING"], b"+PONG\r\n");
    let before = server.info("stats");
    assert!(before["total_commands_processed"].parse::<u64>().unwrap() >= 6);
    assert!(before["total_connections_received"].parse::<u64>().unwrap() >= 2);
    c.cmd_expect(&["CONFIG", "RESETSTAT"], OK);
    let stats = ringcast_tests::server::parse_info(&c.cmd(&["INFO", "stats"]));
    for (field, at_most) in [
        ("total_commands_processed", 1),
        ("total_connections_received", 0),
        ("total_error_replies", 0),
        ("rejected_connections", 0),
    ] {
        let n: u64 = stats[field].parse().unwrap();
        assert!(n <= at_most, "{field}:{n} after CONFIG RESETSTAT");
    }
    // Redis's INFO counts the bytes of the INFO request itself.
    assert!(stats["total_net_input_bytes"].parse::<u64>().unwrap() < 100);
    assert!(
        !c.cmd(&["INFO", "errorstats"])
            .text()
            .contains("errorstat_ERR")
    );
    // Gauges are not counters: the clients are still there.
    assert!(
        server.info("clients")["connected_clients"]
            .parse::<u64>()
            .unwrap()
            >= 2
    );
}

fn config_rewrite_without_a_config_file_is_refused(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "REWRITE"],
        b"-ERR The server is running without a config file\r\n",
    );
}

fn config_help_lists_rewrite(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let help = c.cmd(&["CONFIG", "HELP"]);
    let lines: Vec<String> = help.items().iter().map(Frame::text).collect();
    assert!(lines.iter().any(|l| l == "REWRITE"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "    Rewrite the configuration file.")
    );
}

fn shutdown_options_are_checked_as_redis_checks_them(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    for bad in [
        &["SHUTDOWN", "NOSAVE", "SAVE"][..],
        &["SHUTDOWN", "ABORT", "NOW"],
        &["SHUTDOWN", "FORCE", "ABORT"],
        &["SHUTDOWN", "LATER"],
    ] {
        c.cmd_expect(bad, b"-ERR syntax error\r\n");
    }
    c.cmd_expect(&["SHUTDOWN", "ABORT"], b"-ERR No shutdown in progress.\r\n");
    c.cmd_expect(&["shutdown", "abort"], b"-ERR No shutdown in progress.\r\n");
    c.cmd_expect(&["PING"], b"+PONG\r\n");
}

/// Every accepted form shuts down as SIGTERM does: no reply, the
/// connection closes, the process exits 0. (redis-server is started with
/// `save ""`, so none of them writes a dump there either.)
fn shutdown_closes_the_connection_without_reply_and_exits_zero(b: Backend) {
    for form in [
        &["SHUTDOWN"][..],
        &["SHUTDOWN", "NOSAVE"],
        &["SHUTDOWN", "NOW", "FORCE"],
        &["SHUTDOWN", "nosave", "now", "force"],
    ] {
        let server = Server::with_backend(b);
        let mut c = server.conn();
        let mut bystander = server.conn();
        c.send_cmd(form);
        c.expect_closed();
        bystander.drain_until_closed();
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "{form:?}: {status}");
    }
}

/// SHUTDOWN SAVE: Redis writes a snapshot then exits; ringcast has nothing
/// to save and exits at once.
fn shutdown_save_exits_zero(b: Backend) {
    ringcast_only!("redis-server would write dump.rdb into its working directory");
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send_cmd(&["SHUTDOWN", "SAVE"]);
    c.expect_closed();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}");
}

/// What SHUTDOWN shares with SIGTERM: messages already published reach a
/// subscriber that had not read them yet, and its connection then ends
/// after whole frames.
fn shutdown_delivers_queued_messages_before_exit(b: Backend) {
    ringcast_only!("redis-server exits without flushing what its clients have not read");
    let server = Server::start(Opts::new(b).pubsub_output_limit("0 0 0"));
    let mut sub = server.conn();
    sub.sub("SUBSCRIBE", &["queued"], &[1]);
    let mut publisher = server.conn();
    let payload = "x".repeat(4096);
    const MESSAGES: usize = 2000;
    // 8 MB: far more than the socket buffers hold, so most of it waits in
    // the server's queue while the subscriber does not read.
    for _ in 0..MESSAGES {
        publisher.send_cmd(&["PUBLISH", "queued", payload.as_str()]);
    }
    for _ in 0..MESSAGES {
        assert_eq!(publisher.read_frame(), Frame::Integer(1));
    }
    let mut admin = server.conn();
    admin.send_cmd(&["SHUTDOWN"]);
    admin.expect_closed();
    let mut stream = sub.try_clone_stream();
    stream
        .set_read_timeout(Some(ringcast_tests::PATIENCE))
        .expect("timeout");
    let (mut buf, mut chunk, mut got) = (Vec::new(), vec![0u8; 1 << 16], 0usize);
    loop {
        match std::io::Read::read(&mut stream, &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("not a clean close after {got} messages: {e}"),
        }
        while let resp::Parsed::Frame(frame, used) = resp::parse(&buf) {
            assert_eq!(frame.message().map(|(_, p)| p.len()), Some(4096));
            buf.drain(..used);
            got += 1;
        }
    }
    assert!(buf.is_empty(), "a frame cut short");
    assert_eq!(got, MESSAGES);
    assert_eq!(server.wait_exit().code(), Some(0));
}

/// SIGHUP is ignored, as by Redis: the server keeps serving, and still
/// exits 0 on SIGTERM.
fn sighup_is_ignored(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    server.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let mut fresh = server.conn();
    fresh.cmd_expect(&["PING"], b"+PONG\r\n");
    assert_eq!(server.terminate().code(), Some(0));
}

/// The log says why the process stops, as Redis's does.
fn shutdown_is_logged(b: Backend) {
    ringcast_only!("ringcast's log lines");
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.send_cmd(&["SHUTDOWN"]);
    c.expect_closed();
    eventually("the log says who asked", || {
        server.log().contains("User requested shutdown")
    });
    assert_eq!(server.wait_exit().code(), Some(0));
}

/// The CPUs each worker thread may run on, by thread name (`ringcast-wN`),
/// and the process's main thread's, from `/proc`.
fn worker_affinity(pid: u32) -> (Vec<String>, String) {
    let allowed = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let main = allowed(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    let mut workers = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim().starts_with("ringcast-w") {
            workers.push(allowed(
                &std::fs::read_to_string(dir.join("status")).unwrap_or_default(),
            ));
        }
    }
    (workers, main)
}

/// Workers are not pinned unless `server_cpulist` says where: by default
/// each may run wherever the process may; with a list, each is pinned to
/// its CPU of it.
fn server_cpulist_pins_workers_and_only_then(b: Backend) {
    ringcast_only!("worker threads");
    let server = Server::start(Opts::new(b).threads(2));
    eventually("both workers running", || {
        worker_affinity(server.pid()).0.len() == 2
    });
    let (workers, main) = worker_affinity(server.pid());
    assert_eq!(workers, vec![main.clone(), main], "not pinned by default");
    drop(server);

    let server = Server::start(Opts::new(b).threads(2).arg("server_cpulist", "0"));
    eventually("both workers running", || {
        worker_affinity(server.pid()).0.len() == 2
    });
    assert_eq!(worker_affinity(server.pid()).0, vec!["0", "0"]);
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "GET", "server_cpulist"],
        b"*2\r\n$14\r\nserver_cpulist\r\n$1\r\n0\r\n",
    );
}

backend_tests!(
    server_cpulist_pins_workers_and_only_then,
    config_set_errors_are_redis_texts,
    config_set_takes_several_pairs_all_or_nothing,
    config_set_port_listens_on_the_new_port,
    hz_is_clamped_between_1_and_500,
    parameters_ringcast_does_not_use_are_set_and_read_back,
    config_get_answers_exact_names_as_typed_and_patterns_as_redis,
    config_resetstat_resets_what_redis_resets,
    config_rewrite_without_a_config_file_is_refused,
    config_help_lists_rewrite,
    shutdown_options_are_checked_as_redis_checks_them,
    shutdown_closes_the_connection_without_reply_and_exits_zero,
    shutdown_save_exits_zero,
    shutdown_delivers_queued_messages_before_exit,
    sighup_is_ignored,
    shutdown_is_logged,
);
