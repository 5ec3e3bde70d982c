//! SLOWLOG and LATENCY: what they record from every worker, Redis's reply
//! formats and limits, their parameters, and who may use them.

use ringcast_tests::resp::Proto;
use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, connect_on_worker, ringcast_only, target,
};

fn addr_of(c: &mut RawConn) -> String {
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    info.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .expect("CLIENT INFO has addr=")
        .to_owned()
}

fn texts(frame: &Frame) -> Vec<String> {
    frame.items().iter().map(Frame::text).collect()
}

/// One `SLOWLOG GET` entry, checked for Redis's shape.
struct Entry {
    id: i64,
    duration: i64,
    args: Vec<String>,
    addr: String,
    name: String,
}

fn entries(reply: &Frame) -> Vec<Entry> {
    reply
        .items()
        .iter()
        .map(|e| {
            let f = e.items();
            assert_eq!(f.len(), 6, "{e:?}");
            assert!(f[1].int() > 1_600_000_000, "a unix time: {e:?}");
            Entry {
                id: f[0].int(),
                duration: f[2].int(),
                args: texts(&f[3]),
                addr: f[4].text(),
                name: f[5].text(),
            }
        })
        .collect()
}

fn slowlog_logs_commands_with_redis_truncation(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    let addr = addr_of(&mut c);
    c.cmd_expect(
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
        b"+OK\r\n",
    );
    c.cmd_expect(&["SLOWLOG", "RESET"], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "SETNAME", "alpha"], b"+OK\r\n");
    let channels: Vec<String> = (0..33).map(|i| format!("c{i}")).collect();
    let mut unsubscribe = vec!["UNSUBSCRIBE".to_owned()];
    unsubscribe.extend(channels.iter().cloned());
    c.send_cmd(&unsubscribe);
    for _ in 0..33 {
        c.read_frame();
    }
    let long = "A".repeat(129);
    c.cmd_expect(&["PUBLISH", "ch", long.as_str()], b":0\r\n");
    c.cmd_expect(&["SLOWLOG", "GET", "0"], b"*0\r\n");
    let got = entries(&c.cmd(&["SLOWLOG", "GET", "3"]));
    assert_eq!(got.len(), 3);
    let (publish, unsub) = (&got[1], &got[2]);
    assert_eq!(got[0].args, ["SLOWLOG", "GET", "0"]);
    assert_eq!(
        publish.args,
        [
            "PUBLISH",
            "ch",
            &format!("{}... (1 more bytes)", &long[..128])
        ]
    );
    let mut kept: Vec<String> = unsubscribe[..31].to_vec();
    kept.push("... (3 more arguments)".to_owned());
    assert_eq!(unsub.args, kept);
    for e in &got {
        assert_eq!((e.addr.as_str(), e.name.as_str()), (addr.as_str(), "alpha"));
        assert!(e.duration >= 0);
    }
    assert_eq!(got[0].id, publish.id + 1);
    assert_eq!(publish.id, unsub.id + 1);
}

fn slowlog_keeps_the_newest_entries_of_every_worker(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(&["CONFIG", "SET", "slowlog-max-len", "10"], b"+OK\r\n");
    admin.cmd_expect(
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
        b"+OK\r\n",
    );
    let mut a = connect_on_worker(&server, 0);
    let mut z = connect_on_worker(&server, server.threads() - 1);
    let (addr_a, addr_z) = (addr_of(&mut a), addr_of(&mut z));
    for i in 0..50 {
        let (x, y) = (format!("a{i}"), format!("z{i}"));
        a.cmd(&["ECHO", x.as_str()]);
        z.cmd(&["ECHO", y.as_str()]);
    }
    admin.cmd_expect(&["SLOWLOG", "LEN"], b":10\r\n");
    let all = entries(&admin.cmd(&["SLOWLOG", "GET", "-1"]));
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0].args, ["SLOWLOG", "LEN"]);
    assert_eq!(all[1].args, ["ECHO", "z49"]);
    assert_eq!(all[2].args, ["ECHO", "a49"]);
    assert_eq!(
        (all[1].addr.as_str(), all[2].addr.as_str()),
        (addr_z.as_str(), addr_a.as_str())
    );
    assert_eq!(admin.cmd(&["SLOWLOG", "GET", "5"]).items().len(), 5);
    assert_eq!(admin.cmd(&["SLOWLOG", "GET", "20"]).items().len(), 10);
    assert_eq!(admin.cmd(&["SLOWLOG", "GET"]).items().len(), 10);
    let count_error = b"-ERR count should be greater than or equal to -1\r\n";
    admin.cmd_expect(&["SLOWLOG", "GET", "-2"], count_error);
    admin.cmd_expect(&["SLOWLOG", "GET", "x"], count_error);
    admin.cmd_expect(
        &["SLOWLOG", "get", "1", "2"],
        b"-ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.\r\n",
    );
    admin.cmd_expect(
        &["SLOWLOG", "LEN", "x"],
        b"-ERR wrong number of arguments for 'slowlog|len' command\r\n",
    );
    admin.cmd_expect(
        &["SLOWLOG", "nosuch"],
        b"-ERR unknown subcommand 'nosuch'. Try SLOWLOG HELP.\r\n",
    );
    // Disabled: nothing is logged any more.
    admin.cmd_expect(
        &["CONFIG", "SET", "slowlog-log-slower-than", "-1"],
        b"+OK\r\n",
    );
    admin.cmd_expect(&["SLOWLOG", "RESET"], b"+OK\r\n");
    a.cmd(&["PING"]);
    admin.cmd_expect(&["SLOWLOG", "LEN"], b":0\r\n");
    // Only commands at least this slow.
    admin.cmd_expect(
        &["CONFIG", "SET", "slowlog-log-slower-than", "1000000"],
        b"+OK\r\n",
    );
    z.cmd(&["PING"]);
    admin.cmd_expect(&["SLOWLOG", "LEN"], b":0\r\n");
    let help = admin.cmd(&["SLOWLOG", "HELP"]);
    assert_eq!(help.items().len(), 12);
    assert_eq!(
        help.items()[0].text(),
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
}

fn a_slow_command_is_logged_and_max_len_trims_the_log(b: Backend) {
    let server = Server::start(Opts::new(b).debug_command());
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "SET", "slowlog-log-slower-than", "200000"],
        b"+OK\r\n",
    );
    c.cmd_expect(&["SLOWLOG", "RESET"], b"+OK\r\n");
    c.cmd_expect(&["CLIENT", "SETNAME", "foobar"], b"+OK\r\n");
    c.cmd_expect(&["DEBUG", "SLEEP", "0.25"], b"+OK\r\n");
    c.cmd_expect(&["DEBUG", "SLEEP", "0.25"], b"+OK\r\n");
    c.cmd_expect(&["SLOWLOG", "LEN"], b":2\r\n");
    let got = entries(&c.cmd(&["SLOWLOG", "GET"]));
    assert_eq!(got[0].args, ["DEBUG", "SLEEP", "0.25"]);
    assert!(got[0].duration >= 250_000, "{}", got[0].duration);
    assert_eq!(got[0].name, "foobar");
    c.cmd_expect(&["CONFIG", "SET", "slowlog-max-len", "1"], b"+OK\r\n");
    c.cmd_expect(&["SLOWLOG", "LEN"], b":1\r\n");
}

fn latency_monitor_records_slow_commands(b: Backend) {
    let server = Server::start(Opts::new(b).debug_command());
    let mut c = server.conn();
    let doctor = c.cmd(&["LATENCY", "DOCTOR"]).text();
    assert!(
        doctor.starts_with("I'm sorry, Dave, I can't do that."),
        "{doctor}"
    );
    c.cmd_expect(
        &["CONFIG", "SET", "latency-monitor-threshold", "200"],
        b"+OK\r\n",
    );
    c.cmd_expect(&["DEBUG", "SLEEP", "0.25"], b"+OK\r\n");
    let latest = c.cmd(&["LATENCY", "LATEST"]);
    let command = latest
        .items()
        .iter()
        .find(|e| e.items()[0].text() == "command")
        .unwrap_or_else(|| panic!("no command event in {latest:?}"));
    let f = command.items();
    let (time, ms, max) = (f[1].int(), f[2].int(), f[3].int());
    assert!(ms >= 250 && max >= ms, "{command:?}");
    let history = c.cmd(&["LATENCY", "HISTORY", "command"]);
    assert_eq!(history.items().len(), 1);
    assert_eq!(history.items()[0].items()[0].int(), time);
    assert_eq!(history.items()[0].items()[1].int(), ms);
    let graph = c.cmd(&["LATENCY", "GRAPH", "command"]).text();
    assert!(
        graph.starts_with(&format!(
            "command - high {ms} ms, low {ms} ms (all time high {max} ms)\n{}\n",
            "-".repeat(80)
        )),
        "{graph}"
    );
    let doctor = c.cmd(&["LATENCY", "DOCTOR"]).text();
    assert!(
        doctor.starts_with("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n"),
        "{doctor}"
    );
    assert!(
        doctor.contains(&format!(
            ". command: 1 latency spikes (average {ms}ms, mean deviation 0ms, period "
        )),
        "{doctor}"
    );
    c.cmd_expect(
        &["LATENCY", "GRAPH", "nosuch"],
        b"-ERR No samples available for event 'nosuch'\r\n",
    );
    c.cmd_expect(&["LATENCY", "HISTORY", "nosuch"], b"*0\r\n");
    c.cmd_expect(&["LATENCY", "RESET", "nosuch"], b":0\r\n");
    c.cmd_expect(
        &["LATENCY", "HELP", "xxx"],
        b"-ERR wrong number of arguments for 'latency|help' command\r\n",
    );
    assert!(c.cmd(&["LATENCY", "RESET"]).int() >= 1);
    // (A worker stalled by the machine may have recorded an event since.)
    let latest = c.cmd(&["LATENCY", "LATEST"]);
    assert!(
        latest
            .items()
            .iter()
            .all(|e| e.items()[0].text() != "command")
    );
    c.use_proto(Proto::Resp3);
    c.cmd_expect(&["DEBUG", "SLEEP", "0.25"], b"+OK\r\n");
    c.send_cmd(&["LATENCY", "GRAPH", "command"]);
    let (_, raw) = c
        .try_read_raw_frame(ringcast_tests::PATIENCE)
        .expect("a graph");
    assert!(raw.starts_with(b"="), "a verbatim string in RESP3");
}

fn latency_histogram_counts_calls_per_command_on_every_worker(b: Backend) {
    let server = Server::with_backend(b);
    let mut a = connect_on_worker(&server, 0);
    let mut z = connect_on_worker(&server, server.threads() - 1);
    a.cmd_expect(&["CONFIG", "RESETSTAT"], b"+OK\r\n");
    let only_resetstat = a.cmd(&["LATENCY", "HISTOGRAM"]);
    let Frame::Array(items) = &only_resetstat else {
        panic!("{only_resetstat:?}");
    };
    assert_eq!(items.len(), 2, "{only_resetstat:?}");
    assert_eq!(items[0].text(), "config|resetstat");
    a.cmd(&["CLIENT", "ID"]);
    z.cmd(&["CLIENT", "ID"]);
    a.cmd(&["CLIENT", "GETNAME"]);
    let client = a.cmd(&["LATENCY", "HISTOGRAM", "client", "nosuch"]);
    let items = client.items();
    assert_eq!(items.len(), 4, "{client:?}");
    let calls = |name: &str| -> i64 {
        let at = items
            .iter()
            .position(|f| f.bytes() == Some(name.as_bytes()))
            .unwrap_or_else(|| panic!("{name} in {client:?}"));
        let map = items[at + 1].items();
        assert_eq!(map[0].text(), "calls");
        assert_eq!(map[2].text(), "histogram_usec");
        let steps = map[3].items();
        assert!(!steps.is_empty() && steps.len().is_multiple_of(2));
        assert_eq!(steps[steps.len() - 1].int(), map[1].int(), "cumulative");
        map[1].int()
    };
    assert_eq!(calls("client|id"), 2);
    assert_eq!(calls("client|getname"), 1);
    a.cmd_expect(&["LATENCY", "HISTOGRAM", "nosuch"], b"*0\r\n");
    a.use_proto(Proto::Resp3);
    let one = a.cmd(&["LATENCY", "HISTOGRAM", "client|id"]);
    let Frame::Map(pairs) = one else {
        panic!("a map in RESP3: {one:?}");
    };
    assert_eq!(pairs.len(), 1);
}

fn slowlog_and_latency_parameters_have_redis_defaults(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    for (name, value) in [
        ("slowlog-log-slower-than", "10000"),
        ("slowlog-max-len", "128"),
        ("latency-monitor-threshold", "0"),
    ] {
        let reply = c.cmd(&["CONFIG", "GET", name]);
        assert_eq!(texts(&reply), [name, value]);
    }
    let e = c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-2"]);
    let prefix = b"ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than')";
    assert!(
        matches!(&e, Frame::Error(t) if t.starts_with(prefix)),
        "{e:?}"
    );
    let e = c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "-1"]);
    assert!(e.is_error(), "{e:?}");
}

fn slowlog_and_latency_parameters_come_from_the_command_line(b: Backend) {
    ringcast_only!("ringcast's own flags");
    let opts = Opts::new(b)
        .arg("slowlog-log-slower-than", "0")
        .arg("slowlog-max-len", "3")
        .arg("latency-monitor-threshold", "5");
    let server = Server::start(opts);
    let mut c = server.conn();
    let reply = c.cmd(&["CONFIG", "GET", "slowlog-*"]);
    let mut got = texts(&reply);
    got.sort();
    assert_eq!(
        got,
        ["0", "3", "slowlog-log-slower-than", "slowlog-max-len"]
    );
    for _ in 0..5 {
        c.cmd(&["PING"]);
    }
    c.cmd_expect(&["SLOWLOG", "LEN"], b":3\r\n");
}

fn operator_commands_are_admin_commands_for_acl(b: Backend) {
    let server = Server::with_backend(b);
    let mut admin = server.conn();
    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "ops",
            "on",
            ">pw",
            "+@all",
            "-@admin",
            "allchannels",
        ],
        b"+OK\r\n",
    );
    let mut c = server.conn();
    c.cmd_expect(&["AUTH", "ops", "pw"], b"+OK\r\n");
    for (args, name) in [
        (&["MONITOR"][..], "monitor"),
        (&["SLOWLOG", "GET"], "slowlog|get"),
        (&["SLOWLOG", "RESET"], "slowlog|reset"),
        (&["LATENCY", "LATEST"], "latency|latest"),
        (&["LATENCY", "HISTOGRAM"], "latency|histogram"),
        (&["CLIENT", "NO-EVICT", "on"], "client|no-evict"),
    ] {
        let e = c.cmd(args);
        let text = match &e {
            Frame::Error(t) => String::from_utf8_lossy(t).into_owned(),
            other => panic!("{args:?} allowed: {other:?}"),
        };
        assert!(
            text.starts_with("NOPERM") && text.contains(&format!("'{name}'")),
            "{text}"
        );
    }
    assert_eq!(c.cmd(&["SLOWLOG", "HELP"]).items().len(), 12);
    assert_eq!(c.cmd(&["LATENCY", "HELP"]).items().len(), 17);
    if !target().is_redis() {
        // NO-TOUCH is Redis 7.2's.
        c.cmd_expect(&["CLIENT", "NO-TOUCH", "off"], b"+OK\r\n");
    }
}

fn command_info_describes_the_new_commands_as_redis(b: Backend) {
    let server = Server::with_backend(b);
    let mut c = server.conn();
    c.cmd_expect(
        &["COMMAND", "INFO", "monitor"],
        b"*1\r\n*10\r\n$7\r\nmonitor\r\n:1\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n*0\r\n*0\r\n*0\r\n",
    );
    let list = c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "latency*"]);
    let mut names = texts(&list);
    names.sort();
    assert_eq!(
        names,
        [
            "latency",
            "latency|doctor",
            "latency|graph",
            "latency|help",
            "latency|histogram",
            "latency|history",
            "latency|latest",
            "latency|reset"
        ]
    );
    if target().is_redis() {
        // Redis 7.0's summaries differ from 7.2's.
        return;
    }
    let bulk = |s: &str| format!("${}\r\n{s}\r\n", s.len());
    let pairs =
        |kv: &[(&str, &str)]| -> String { kv.iter().map(|(k, v)| bulk(k) + &bulk(v)).collect() };
    let expected = format!(
        "*2\r\n{}*12\r\n{}{}*1\r\n*2\r\n{}{}{}*1\r\n*8\r\n{}{}*1\r\n+optional\r\n",
        bulk("slowlog|get"),
        pairs(&[
            ("summary", "Returns the slow log's entries."),
            ("since", "2.2.12"),
            ("group", "server"),
            (
                "complexity",
                "O(N) where N is the number of entries returned"
            ),
        ]),
        bulk("history"),
        bulk("4.0.0"),
        bulk("Added client IP address, port and name to the reply."),
        bulk("arguments"),
        pairs(&[
            ("name", "count"),
            ("type", "integer"),
            ("display_text", "count")
        ]),
        bulk("flags"),
    );
    c.cmd_expect(&["COMMAND", "DOCS", "slowlog|get"], expected.as_bytes());
    let expected = format!(
        "*2\r\n{}*6\r\n{}",
        bulk("monitor"),
        pairs(&[
            (
                "summary",
                "Listens for all requests received by the server in real-time."
            ),
            ("since", "1.0.0"),
            ("group", "server"),
        ]),
    );
    c.cmd_expect(&["COMMAND", "DOCS", "monitor"], expected.as_bytes());
}

backend_tests!(
    slowlog_logs_commands_with_redis_truncation,
    slowlog_keeps_the_newest_entries_of_every_worker,
    a_slow_command_is_logged_and_max_len_trims_the_log,
    latency_monitor_records_slow_commands,
    latency_histogram_counts_calls_per_command_on_every_worker,
    slowlog_and_latency_parameters_have_redis_defaults,
    slowlog_and_latency_parameters_come_from_the_command_line,
    operator_commands_are_admin_commands_for_acl,
    command_info_describes_the_new_commands_as_redis,
);
