//! Operations: INFO sections and the figures dashboards read (memory, CPU,
//! rates, errors), `timeout` for idle clients, and the live `CONFIG SET`
//! parameters operators change.

use ringcast_tests::server::parse_info;
use ringcast_tests::{Backend, Server, backend_tests, eventually, ringcast_only, target};

fn headers(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

fn info_without_arguments_prints_redis_default_sections_in_order(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let mut expected = vec![
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ];
    if !target().is_redis() {
        expected.push("# Ringcast");
    }
    assert_eq!(headers(&c.cmd(&["INFO"]).text()), expected);
    assert_eq!(headers(&c.cmd(&["INFO", "default"]).text()), expected);
}

fn info_all_adds_command_sections_and_names_select_in_redis_order(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let all = headers(&c.cmd(&["INFO", "all"]).text());
    for h in ["# Commandstats", "# Latencystats", "# Keyspace"] {
        assert!(all.iter().any(|x| x == h), "INFO all lacks {h}: {all:?}");
    }
    assert_eq!(
        headers(&c.cmd(&["INFO", "keyspace", "CPU", "server"]).text()),
        ["# Server", "# CPU", "# Keyspace"]
    );
}

fn info_unknown_section_is_an_empty_string(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["INFO", "nosuchsection"], b"$0\r\n\r\n");
}

fn info_has_the_fields_dashboards_read(b: Backend) {
    let server = Server::with_backend(b);
    let info = server.info("everything");
    for field in [
        "redis_version",
        "process_id",
        "uptime_in_seconds",
        "connected_clients",
        "blocked_clients",
        "maxclients",
        "used_memory",
        "used_memory_human",
        "used_memory_rss",
        "used_memory_peak",
        "mem_fragmentation_ratio",
        "mem_clients_normal",
        "maxmemory",
        "maxmemory_policy",
        "loading",
        "rdb_last_save_time",
        "total_connections_received",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "instantaneous_input_kbps",
        "instantaneous_output_kbps",
        "rejected_connections",
        "expired_keys",
        "evicted_keys",
        "keyspace_hits",
        "keyspace_misses",
        "pubsub_channels",
        "pubsub_patterns",
        "total_error_replies",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "role",
        "connected_slaves",
        "used_cpu_sys",
        "used_cpu_user",
        "used_cpu_sys_children",
        "used_cpu_user_children",
        "cluster_enabled",
    ] {
        assert!(info.contains_key(field), "INFO lacks {field}");
    }
    assert_eq!(info["role"], "master");
    assert_eq!(info["loading"], "0");
}

fn info_memory_and_cpu_report_the_process(b: Backend) {
    let server = Server::with_backend(b);
    eventually("INFO memory shows resident and used memory", || {
        let m = server.info("memory");
        m["used_memory_rss"].parse::<u64>().unwrap_or(0) > 0
            && m["used_memory"].parse::<u64>().unwrap_or(0) > 0
    });
    let m = server.info("memory");
    let used: u64 = m["used_memory"].parse().expect("used_memory");
    let peak: u64 = m["used_memory_peak"].parse().expect("used_memory_peak");
    assert!(peak >= used, "peak {peak} below current {used}");
    eventually("INFO cpu shows CPU time", || {
        let c = server.info("cpu");
        let secs = |f: &str| c[f].parse::<f64>().expect("a number of seconds");
        secs("used_cpu_user") + secs("used_cpu_sys") > 0.0
    });
}

fn info_counts_error_replies_by_code(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let before = server.info_u64("stats", "total_error_replies");
    c.cmd(&["NOSUCHCOMMAND"]);
    c.cmd(&["CLIENT", "NOSUCHSUB"]);
    assert_eq!(server.info_u64("stats", "total_error_replies"), before + 2);
    let errors = parse_info(&c.cmd(&["INFO", "errorstats"]));
    let count = errors
        .get("errorstat_ERR")
        .and_then(|v| v.strip_prefix("count="))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(count.is_some_and(|n| n >= 2), "errorstats: {errors:?}");
}

fn instantaneous_ops_per_sec_moves_under_load(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    eventually(
        "instantaneous_ops_per_sec above 0 while commands run",
        || {
            for _ in 0..50 {
                c.cmd_expect(&["PING"], b"+PONG\r\n");
            }
            server.info_u64("stats", "instantaneous_ops_per_sec") > 0
        },
    );
}

fn info_ringcast_section_has_per_worker_figures(b: Backend) {
    ringcast_only!("per-worker figures are ringcast's");
    let server = Server::with_backend(b);
    let info = server.info("ringcast");
    for w in 0..server.threads() {
        let line = info
            .get(&format!("worker{w}"))
            .unwrap_or_else(|| panic!("no worker{w} line: {info:?}"));
        for field in ["clients=", "delivered=", "inbound_depth=", "used_cpu_user="] {
            assert!(line.contains(field), "worker{w} lacks {field}: {line}");
        }
    }
    assert!(info.contains_key("delivery_latency_count"));
}

fn idle_client_is_closed_after_timeout_but_subscriber_is_kept(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(&["CONFIG", "SET", "timeout", "1"], b"+OK\r\n");
    let mut sub = server.conn();
    sub.sub("SUBSCRIBE", &["ops.ch"], &[1]);
    let mut idle = server.conn();
    idle.cmd_expect(&["PING"], b"+PONG\r\n");
    // Closed silently once idle for more than a second.
    idle.expect_closed();
    // The subscriber was idle just as long and is still served.
    let mut publisher = server.conn();
    publisher.publish("PUBLISH", "ops.ch", "still here", 1);
    sub.expect_message("ops.ch", "still here");
}

fn timeout_and_tcp_keepalive_change_live(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(&["CONFIG", "SET", "tcp-keepalive", "77"], b"+OK\r\n");
    c.cmd_expect(
        &["CONFIG", "GET", "tcp-keepalive"],
        b"*2\r\n$13\r\ntcp-keepalive\r\n$2\r\n77\r\n",
    );
    c.cmd_expect(&["CONFIG", "SET", "timeout", "3600"], b"+OK\r\n");
    c.cmd_expect(
        &["CONFIG", "GET", "timeout"],
        b"*2\r\n$7\r\ntimeout\r\n$4\r\n3600\r\n",
    );
    // A connection made after the change is served normally.
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
}

fn protected_mode_is_on_by_default_and_serves_loopback_clients(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "GET", "protected-mode"],
        b"*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n",
    );
    // This suite can only reach the server over loopback, which protected
    // mode always lets in; the refusal itself is unit-tested in core.
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
    c.cmd_expect(&["CONFIG", "SET", "protected-mode", "no"], b"+OK\r\n");
    c.cmd_expect(
        &["CONFIG", "GET", "protected-mode"],
        b"*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n",
    );
    assert_eq!(server.info_u64("stats", "rejected_connections"), 0);
}

fn loglevel_changes_live(b: Backend) {
    ringcast_only!("the log format is ringcast's");
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
    assert!(
        !server.log().contains("DEBUG"),
        "notice level logs no debug lines"
    );
    admin.cmd_expect(&["CONFIG", "SET", "loglevel", "debug"], b"+OK\r\n");
    eventually("a new connection is logged at debug level", || {
        server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
        server.log().contains("DEBUG")
    });
    admin.cmd_expect(&["CONFIG", "SET", "loglevel", "warning"], b"+OK\r\n");
    admin.cmd_expect(
        &["CONFIG", "GET", "loglevel"],
        b"*2\r\n$8\r\nloglevel\r\n$7\r\nwarning\r\n",
    );
}

backend_tests!(
    loglevel_changes_live,
    info_without_arguments_prints_redis_default_sections_in_order,
    info_all_adds_command_sections_and_names_select_in_redis_order,
    info_unknown_section_is_an_empty_string,
    info_has_the_fields_dashboards_read,
    info_memory_and_cpu_report_the_process,
    info_counts_error_replies_by_code,
    instantaneous_ops_per_sec_moves_under_load,
    info_ringcast_section_has_per_worker_figures,
    idle_client_is_closed_after_timeout_but_subscriber_is_kept,
    timeout_and_tcp_keepalive_change_live,
    protected_mode_is_on_by_default_and_serves_loopback_clients,
);

// ----- CLIENT subcommands that client libraries send ----------------------

mod client_commands {
    use ringcast_tests::{
        Backend, Frame, Server, backend_tests, connect_on_worker, eventually, ringcast_only, target,
    };

    fn maint_notifications_is_an_unknown_subcommand_and_the_connection_stays(b: Backend) {
        // redis-py 8 sends this at connect; Redis 7.2 does not know it.
        let server = Server::with_backend(b);
        let mut c = server.conn();
        c.cmd_expect(
            &[
                "CLIENT",
                "MAINT_NOTIFICATIONS",
                "ON",
                "moving-endpoint-type",
                "internal-fqdn",
            ],
            b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n",
        );
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }

    fn tracking_off_is_accepted_and_its_introspection_says_off(b: Backend) {
        let server = Server::with_backend(b);
        let mut c = server.conn();
        c.cmd_expect(&["CLIENT", "TRACKING", "off"], b"+OK\r\n");
        c.cmd_expect(&["CLIENT", "TRACKING", "maybe"], b"-ERR syntax error\r\n");
        c.cmd_expect(
            &["CLIENT", "TRACKING", "on", "bogus"],
            b"-ERR syntax error\r\n",
        );
        c.cmd_expect(
            &["CLIENT", "TRACKING", "on", "redirect", "x"],
            b"-ERR value is not an integer or out of range\r\n",
        );
        c.cmd_expect(
            &["CLIENT", "TRACKINGINFO"],
            b"*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n",
        );
        c.cmd_expect(&["CLIENT", "GETREDIR"], b":-1\r\n");
        c.cmd_expect(
            &["CLIENT", "CACHING", "yes"],
            b"-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n",
        );
    }

    fn tracking_on_is_refused_with_an_error_and_the_connection_stays(b: Backend) {
        ringcast_only!("Redis enables tracking; ringcast has no keys to track");
        let server = Server::with_backend(b);
        let mut c = server.conn();
        c.cmd_expect(
            &["CLIENT", "TRACKING", "on"],
            b"-ERR CLIENT TRACKING is not supported: ringcast has no keyspace to invalidate\r\n",
        );
        c.cmd_expect(&["PING"], b"+PONG\r\n");
    }

    fn no_evict_and_no_touch_answer_ok(b: Backend) {
        let server = Server::with_backend(b);
        let mut c = server.conn();
        c.cmd_expect(&["CLIENT", "NO-EVICT", "on"], b"+OK\r\n");
        c.cmd_expect(&["CLIENT", "NO-EVICT", "off"], b"+OK\r\n");
        c.cmd_expect(&["CLIENT", "NO-EVICT", "x"], b"-ERR syntax error\r\n");
        if !target().is_redis() {
            // NO-TOUCH is Redis 7.2 (the reference server here is 7.0).
            c.cmd_expect(&["CLIENT", "NO-TOUCH", "on"], b"+OK\r\n");
        }
    }

    fn kill_type_pubsub_closes_subscribers_on_every_worker(b: Backend) {
        let server = Server::with_backend(b);
        let mut subs: Vec<_> = (0..server.threads())
            .map(|w| {
                let mut s = connect_on_worker(&server, w);
                s.sub("SUBSCRIBE", &["k"], &[1]);
                s
            })
            .collect();
        let mut plain: Vec<_> = (0..server.threads())
            .map(|w| connect_on_worker(&server, w))
            .collect();
        let mut admin = server.conn();
        let n = subs.len() as i64;
        admin.cmd_expect(
            &["CLIENT", "KILL", "TYPE", "pubsub"],
            format!(":{n}\r\n").as_bytes(),
        );
        for s in &mut subs {
            s.expect_closed();
        }
        for p in &mut plain {
            p.cmd_expect(&["PING"], b"+PONG\r\n");
        }
        eventually("killed subscribers leave the channel", || {
            admin.cmd(&["PUBLISH", "k", "x"]) == Frame::Integer(0)
        });
        admin.cmd_expect(&["CLIENT", "KILL", "TYPE", "master"], b":0\r\n");
        admin.cmd_expect(
            &["CLIENT", "KILL", "TYPE", "bogus"],
            b"-ERR Unknown client type 'bogus'\r\n",
        );
    }

    fn kill_type_normal_and_user_default_spare_the_caller(b: Backend) {
        let server = Server::with_backend(b);
        let mut others: Vec<_> = (0..3).map(|_| server.conn()).collect();
        let mut sub = server.conn();
        sub.sub("SUBSCRIBE", &["stay"], &[1]);
        let mut admin = server.conn();
        admin.cmd_expect(&["CLIENT", "KILL", "TYPE", "normal"], b":3\r\n");
        for o in &mut others {
            o.expect_closed();
        }
        admin.cmd_expect(&["PING"], b"+PONG\r\n");
        admin.cmd_expect(
            &["CLIENT", "KILL", "USER", "nobody"],
            b"-ERR No such user 'nobody'\r\n",
        );
        // USER default matches everyone; SKIPME (default yes) spares the caller.
        admin.cmd_expect(&["CLIENT", "KILL", "USER", "default"], b":1\r\n");
        sub.expect_closed();
        admin.cmd_expect(&["PING"], b"+PONG\r\n");
    }

    fn kill_maxage_closes_only_clients_at_least_that_old(b: Backend) {
        ringcast_only!("MAXAGE is a Redis 7.4 filter");
        let server = Server::with_backend(b);
        let mut old = server.conn();
        old.cmd_expect(&["PING"], b"+PONG\r\n");
        let mut admin = server.conn();
        admin.cmd_expect(&["CLIENT", "KILL", "MAXAGE", "1000000"], b":0\r\n");
        admin.cmd_expect(
            &["CLIENT", "KILL", "MAXAGE", "x"],
            b"-ERR maxage is not an integer or out of range\r\n",
        );
        // Once the client is a second old, MAXAGE 1 finds it (and spares the caller).
        eventually("MAXAGE 1 kills the older client", || {
            admin.cmd(&["CLIENT", "KILL", "MAXAGE", "1"]) == Frame::Integer(1)
        });
        old.expect_closed();
    }

    backend_tests!(
        maint_notifications_is_an_unknown_subcommand_and_the_connection_stays,
        tracking_off_is_accepted_and_its_introspection_says_off,
        tracking_on_is_refused_with_an_error_and_the_connection_stays,
        no_evict_and_no_touch_answer_ok,
        kill_type_pubsub_closes_subscribers_on_every_worker,
        kill_type_normal_and_user_default_spare_the_caller,
        kill_maxage_closes_only_clients_at_least_that_old,
    );
}

// ----- the Prometheus metrics endpoint ------------------------------------

mod metrics {
    use std::collections::HashMap;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use ringcast_tests::{
        Backend, Opts, Server, backend_tests, connect_on_worker, eventually, ringcast_only,
    };

    /// Status line, headers and body of one HTTP GET.
    fn get(port: u16, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
        s.set_read_timeout(Some(ringcast_tests::PATIENCE))
            .expect("read timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send request");
        let mut response = String::new();
        s.read_to_string(&mut response).expect("read response");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {response:?}"));
        (head.to_owned(), body.to_owned())
    }

    /// Sample values summed over their labels, by series name.
    fn scrape(port: u16) -> HashMap<String, f64> {
        let (head, body) = get(port, "/metrics");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        let mut series = HashMap::new();
        for line in body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (name, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {line:?}"));
            let name = name.split('{').next().unwrap_or(name);
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            *series.entry(name.to_owned()).or_insert(0.0) += value;
        }
        series
    }

    fn free_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    fn metrics_count_connections_commands_messages_and_cross_worker_latency(b: Backend) {
        ringcast_only!("the metrics endpoint is ringcast's");
        let port = free_port();
        let server = Server::start(Opts::new(b).arg("metrics-port", &port.to_string()));
        let before = scrape(port);
        for name in [
            "ringcast_connected_clients",
            "ringcast_connections_received_total",
            "ringcast_commands_processed_total",
            "ringcast_messages_published_total",
            "ringcast_messages_delivered_total",
            "ringcast_inbound_ring_depth",
            "ringcast_disconnections_total",
            "ringcast_rejected_connections_total",
            "ringcast_delivery_latency_seconds_count",
            "process_resident_memory_bytes",
        ] {
            assert!(before.contains_key(name), "no {name} in {before:?}");
        }
        let mut sub = connect_on_worker(&server, 1);
        sub.sub("SUBSCRIBE", &["m"], &[1]);
        let mut publisher = connect_on_worker(&server, 0);
        for i in 0..10 {
            publisher.publish("PUBLISH", "m", &i.to_string(), 1);
        }
        for i in 0..10 {
            sub.expect_message("m", &i.to_string());
        }
        let after = scrape(port);
        let moved = |name: &str| after[name] - before[name];
        assert!(moved("ringcast_connections_received_total") >= 2.0);
        assert!(moved("ringcast_messages_published_total") >= 10.0);
        assert!(moved("ringcast_messages_delivered_total") >= 10.0);
        assert!(moved("ringcast_commands_processed_total") >= 11.0);
        assert!(
            moved("ringcast_delivery_latency_seconds_count") >= 1.0,
            "messages crossed from worker 0 to worker 1 (the first one is always sampled)"
        );
        assert!(after["ringcast_connected_clients"] >= 2.0);
        eventually("the sampler reports resident memory", || {
            scrape(port)["process_resident_memory_bytes"] > 0.0
        });
        let (head, _) = get(port, "/elsewhere");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    }

    fn metrics_server(b: Backend) -> (Server, u16) {
        let port = free_port();
        let server = Server::start(Opts::new(b).arg("metrics-port", &port.to_string()));
        (server, port)
    }

    fn a_scrape_is_served_while_idle_connections_are_held_open(b: Backend) {
        ringcast_only!("the metrics endpoint is ringcast's");
        let (_server, port) = metrics_server(b);
        // Connected, never sending a byte: each one used to hold the
        // endpoint for its whole read timeout, one after the other.
        let idle: Vec<TcpStream> = (0..8)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        let series = scrape(port);
        assert!(series.contains_key("ringcast_connected_clients"));
        drop(idle);
    }

    fn a_scrape_is_served_even_when_idle_connections_fill_every_place(b: Backend) {
        ringcast_only!("the metrics endpoint is ringcast's");
        let (_server, port) = metrics_server(b);
        // More idle connections than the endpoint serves at once: the
        // scrape waits for a place, which the first deadline frees.
        let idle: Vec<TcpStream> = (0..24)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        let series = scrape(port);
        assert!(series.contains_key("ringcast_connected_clients"));
        drop(idle);
    }

    fn a_client_trickling_its_request_is_closed_at_its_deadline(b: Backend) {
        ringcast_only!("the metrics endpoint is ringcast's");
        let (_server, port) = metrics_server(b);
        let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        slow.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            .expect("send");
        // One more byte every quarter of a second (each read below waits
        // that long), so no single read ever waits long: only a deadline
        // for the whole request ends it.
        slow.set_read_timeout(Some(Duration::from_millis(250)))
            .expect("read timeout");
        let deadline = Instant::now() + ringcast_tests::PATIENCE;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 1024];
        let closed = loop {
            if Instant::now() > deadline {
                break false;
            }
            match slow.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if slow.write_all(b"a").is_err() {
                        break true;
                    }
                }
                Err(_) => break true,
            }
        };
        assert!(
            closed,
            "a trickling client held the endpoint past {:?}",
            ringcast_tests::PATIENCE
        );
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "{reply}"
        );
        scrape(port);
    }

    fn an_oversized_request_is_refused(b: Backend) {
        ringcast_only!("the metrics endpoint is ringcast's");
        let (_server, port) = metrics_server(b);
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(ringcast_tests::PATIENCE))
            .expect("read timeout");
        let filler = "a".repeat(64 * 1024);
        // The server may close before reading it all.
        let _ = write!(s, "GET /metrics HTTP/1.1\r\nX-Big: {filler}\r\n\r\n");
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 431"), "{response}");
        scrape(port);
    }

    backend_tests!(
        metrics_count_connections_commands_messages_and_cross_worker_latency,
        a_scrape_is_served_while_idle_connections_are_held_open,
        a_scrape_is_served_even_when_idle_connections_fill_every_place,
        a_client_trickling_its_request_is_closed_at_its_deadline,
        an_oversized_request_is_refused,
    );
}
