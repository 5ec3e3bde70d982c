//! Watching ringcast from outside: the metrics endpoint's probes
//! (`/healthz`, `/readyz`), disconnections counted by reason, the process
//! figures of the Prometheus conventions, `redis_exporter` reading INFO,
//! the JSON log, and the example `ringcast.conf`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_tests::{
    Backend, Frame, Opts, RawConn, Server, backend_tests, connect_on_worker, eventually,
    ringcast_only, slow_reader_on_worker,
};

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Status code and body of one HTTP/1.0 GET (so the server closes after
/// it and sends no chunked body), or None if nothing answers.
fn try_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(ringcast_tests::PATIENCE))
        .expect("read timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn get(port: u16, path: &str) -> (u16, String) {
    try_get(port, path).unwrap_or_else(|| panic!("no HTTP response from :{port}{path}"))
}

/// Every sample of a Prometheus text exposition: `name{labels}` → value.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    samples(&body)
}

/// The sum of a metric's samples whose labels include every one of `labels`.
fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}

fn metrics_server(opts: Opts) -> (Server, u16) {
    let port = free_port();
    let server = Server::start(opts.arg("metrics-port", &port.to_string()));
    (server, port)
}

// ----- /healthz and /readyz -------------------------------------------------

fn healthz_and_readyz_answer_200_while_serving(b: Backend) {
    ringcast_only!("the metrics endpoint is ringcast's");
    let (server, port) = metrics_server(Opts::new(b));
    assert_eq!(get(port, "/healthz"), (200, "ok\n".to_owned()));
    // Workers start beside the listeners: ready once every one runs.
    eventually("/readyz answers ready", || {
        get(port, "/readyz") == (200, "ready\n".to_owned())
    });
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
}

fn readyz_answers_503_from_the_start_of_shutdown_while_healthz_stays_200(b: Backend) {
    ringcast_only!("the metrics endpoint is ringcast's");
    let (server, port) = metrics_server(Opts::new(b));
    eventually("/readyz answers ready", || get(port, "/readyz").0 == 200);
    // A subscriber that never reads, with output queued for it, holds the
    // process in its shutdown for a while (shutdown waits for it to read).
    let mut stuck = slow_reader_on_worker(&server, 0);
    stuck.sub("SUBSCRIBE", &["held"], &[1]);
    let mut publisher = server.conn();
    let payload = "x".repeat(16 * 1024);
    for _ in 0..64 {
        publisher.publish("PUBLISH", "held", &payload, 1);
    }
    // SAFETY: kill(2) on the pid of the server this test started, still running.
    unsafe {
        libc::kill(server.pid() as libc::pid_t, libc::SIGTERM);
    }
    eventually("/readyz turns 503 once shutdown begins", || {
        let (status, body) = get(port, "/readyz");
        status == 503 && body.contains("shutting down")
    });
    assert_eq!(get(port, "/healthz").0, 200, "the process is still up");
    drop(stuck);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
}

// ----- disconnections by reason -------------------------------------------

const REASONS: [&str; 9] = [
    "quit",
    "hangup",
    "protocol_error",
    "output_buffer_limit",
    "query_buffer_limit",
    "idle_timeout",
    "killed",
    "acl_revoked",
    "shutdown",
];

fn disconnections(port: u16, reason: &str) -> f64 {
    sum(
        &scrape(port),
        "ringcast_disconnections_total",
        &[("reason", reason)],
    )
}

fn every_reason_is_exported_per_worker_from_the_start_and_the_old_metrics_are_gone(b: Backend) {
    ringcast_only!("the metrics endpoint is ringcast's");
    let (server, port) = metrics_server(Opts::new(b));
    let s = scrape(port);
    for w in 0..server.threads() {
        for reason in REASONS {
            let series =
                format!("ringcast_disconnections_total{{worker=\"{w}\",reason=\"{reason}\"}}");
            assert_eq!(s.get(&series), Some(&0.0), "{series} in {s:?}");
        }
    }
    for old in [
        "ringcast_output_buffer_disconnections_total",
        "ringcast_query_buffer_disconnections_total",
        "ringcast_idle_timeout_disconnections_total",
    ] {
        assert!(
            s.keys().all(|k| !k.starts_with(old)),
            "{old} is still exported"
        );
    }
}

fn quit_hangup_protocol_error_and_kill_are_counted_under_their_reason(b: Backend) {
    ringcast_only!("the metrics endpoint is ringcast's");
    let (server, port) = metrics_server(Opts::new(b));
    let mut quitter = server.conn();
    quitter.cmd_expect(&["QUIT"], b"+OK\r\n");
    quitter.expect_closed();
    drop(server.conn());
    let mut bad = server.conn();
    bad.send(b"\"unbalanced\r\n");
    bad.expect(b"-ERR Protocol error: unbalanced quotes in request\r\n");
    bad.expect_closed();
    let mut victim = connect_on_worker(&server, 1);
    let id = victim.cmd(&["CLIENT", "ID"]).int().to_string();
    let mut killer = connect_on_worker(&server, 0);
    killer.cmd_expect(&["CLIENT", "KILL", "ID", &id], b":1\r\n");
    victim.expect_closed();
    let mut suicide = server.conn();
    let own = suicide.cmd(&["CLIENT", "ID"]).int().to_string();
    suicide.cmd_expect(&["CLIENT", "KILL", "ID", &own, "SKIPME", "no"], b":1\r\n");
    suicide.expect_closed();
    eventually("every close is counted", || {
        disconnections(port, "quit") == 1.0
            && disconnections(port, "hangup") >= 1.0
            && disconnections(port, "protocol_error") == 1.0
            && disconnections(port, "killed") == 2.0
    });
    // Each connection once: what was received and is no longer connected.
    eventually("the reasons add up to the connections closed", || {
        let s = scrape(port);
        let closed = sum(&s, "ringcast_connections_received_total", &[])
            - sum(&s, "ringcast_connected_clients", &[]);
        sum(&s, "ringcast_disconnections_total", &[]) == closed
    });
}

fn buffer_limits_idle_timeout_and_acl_revoke_are_counted_under_their_reason(b: Backend) {
    ringcast_only!("the metrics endpoint is ringcast's");
    let opts = Opts::new(b)
        .pubsub_output_limit("64kb 0 0")
        .arg("client-query-buffer-limit", "1mb");
    let (server, port) = metrics_server(opts);
    let mut admin = server.conn();

    let mut slow = slow_reader_on_worker(&server, 1);
    slow.sub("SUBSCRIBE", &["flood"], &[1]);
    let payload = "x".repeat(16 * 1024);
    let mut cut = false;
    for _ in 0..1000 {
        if admin.cmd(&["PUBLISH", "flood", &payload]).int() == 0 {
            cut = true;
            break;
        }
    }
    assert!(cut, "the subscriber that never reads was not disconnected");

    let mut greedy = server.conn();
    greedy.send(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n");
    let chunk = vec![b'q'; 64 * 1024];
    for _ in 0..20 {
        if greedy.try_send(&chunk).is_err() {
            break;
        }
    }
    greedy.drain_until_closed();

    admin.cmd_expect(
        &[
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">pw",
            "allchannels",
            "+@all",
        ],
        b"+OK\r\n",
    );
    let mut alice = server.raw();
    alice.cmd_expect(&["AUTH", "alice", "pw"], b"+OK\r\n");
    admin.cmd_expect(&["ACL", "DELUSER", "alice"], b":1\r\n");
    alice.expect_closed();

    admin.cmd_expect(&["CONFIG", "SET", "timeout", "1"], b"+OK\r\n");
    let mut idle = server.conn();
    idle.cmd_expect(&["PING"], b"+PONG\r\n");
    idle.expect_closed();

    eventually("every close is counted under its reason", || {
        disconnections(port, "output_buffer_limit") == 1.0
            && disconnections(port, "query_buffer_limit") == 1.0
            && disconnections(port, "acl_revoked") == 1.0
            && disconnections(port, "idle_timeout") >= 1.0
    });
    let info = server.info("");
    assert_eq!(info["client_output_buffer_limit_disconnections"], "1");
    assert_eq!(info["client_query_buffer_limit_disconnections"], "1");
}

// ----- process figures ------------------------------------------------------

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn process_start_time_and_open_fds_follow_the_prometheus_conventions(b: Backend) {
    ringcast_only!("the metrics endpoint is ringcast's");
    let before = unix_now();
    let (server, port) = metrics_server(Opts::new(b));
    let after = unix_now();
    let s = scrape(port);
    let started = s["process_start_time_seconds"];
    // Boot time has a resolution of one second and the start a clock tick.
    assert!(
        started >= before.floor() - 1.0 && started <= after + 1.0,
        "process_start_time_seconds {started} outside [{before}, {after}]"
    );
    let open = s["process_open_fds"];
    assert!(open > 0.0 && open <= s["process_max_fds"], "{s:?}");
    let held: Vec<RawConn> = (0..10)
        .map(|_| {
            let mut c = server.conn();
            c.cmd_expect(&["PING"], b"+PONG\r\n");
            c
        })
        .collect();
    eventually("ten more connections, ten more descriptors", || {
        scrape(port)["process_open_fds"] >= open + 10.0
    });
    assert_eq!(
        scrape(port)["process_start_time_seconds"],
        started,
        "the start time does not move"
    );
    drop(held);
}

backend_tests!(
    healthz_and_readyz_answer_200_while_serving,
    readyz_answers_503_from_the_start_of_shutdown_while_healthz_stays_200,
    every_reason_is_exported_per_worker_from_the_start_and_the_old_metrics_are_gone,
    quit_hangup_protocol_error_and_kill_are_counted_under_their_reason,
    buffer_limits_idle_timeout_and_acl_revoke_are_counted_under_their_reason,
    process_start_time_and_open_fds_follow_the_prometheus_conventions,
);

// ----- redis_exporter -------------------------------------------------------

/// The `redis_exporter` binary: `REDIS_EXPORTER_BIN`, else Debian's
/// `prometheus-redis-exporter` or upstream's `redis_exporter` on the PATH.
fn redis_exporter() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("REDIS_EXPORTER_BIN") {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["prometheus-redis-exporter", "redis_exporter"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// A child process killed (by its pid) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn redis_exporter_reads_clients_channels_and_commands_from_info() {
    ringcast_only!("checks ringcast's INFO through redis_exporter");
    let Some(exporter) = redis_exporter() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis_exporter not found (apt-get install prometheus-redis-exporter)"
        );
        eprintln!("skipped: no redis_exporter (apt-get install prometheus-redis-exporter)");
        return;
    };
    let server = Server::start(Opts::new(Backend::Epoll));
    let mut sub1 = connect_on_worker(&server, 0);
    sub1.sub("SUBSCRIBE", &["a", "b"], &[1, 2]);
    let mut sub2 = connect_on_worker(&server, 1);
    sub2.sub("SUBSCRIBE", &["b", "c"], &[1, 2]);
    let mut sub3 = server.conn();
    sub3.sub("PSUBSCRIBE", &["p*", "q*"], &[1, 2]);
    let mut publisher = server.conn();
    for _ in 0..5 {
        publisher.publish("PUBLISH", "b", "hello", 2);
    }
    let port = free_port();
    let _exporter = Killed(
        Command::new(&exporter)
            .args([
                "-redis.addr",
                &format!("redis://127.0.0.1:{}", server.port()),
                "-web.listen-address",
                &format!("127.0.0.1:{port}"),
                "-redis-only-metrics",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exporter.display())),
    );
    eventually("redis_exporter serves /metrics", || {
        try_get(port, "/metrics").is_some_and(|(status, _)| status == 200)
    });
    let commands_before = server.info_u64("stats", "total_commands_processed") as f64;
    // The four connections above, and the exporter's own while it scrapes.
    let mut s = HashMap::new();
    eventually("redis_connected_clients counts five clients", || {
        s = samples(&get(port, "/metrics").1);
        s.get("redis_connected_clients") == Some(&5.0)
    });
    let commands_after = server.info_u64("stats", "total_commands_processed") as f64;
    assert_eq!(s["redis_up"], 1.0);
    assert_eq!(s["redis_pubsub_channels"], 3.0, "a, b and c");
    assert_eq!(s["redis_pubsub_patterns"], 2.0, "p* and q*");
    let commands = s["redis_commands_processed_total"];
    assert!(
        commands >= commands_before && commands <= commands_after,
        "redis_commands_processed_total {commands} outside INFO's [{commands_before}, {commands_after}]"
    );
    assert!(s["redis_connections_received_total"] >= 5.0);
    assert!(
        s.keys().any(|k| k.starts_with("redis_instance_info{")
            && k.contains("redis_version=\"7.2.4\"")),
        "{s:?}"
    );
}

// ----- the JSON log -------------------------------------------------------------

mod log_format {
    use super::*;

    /// Every line of the server's log, each parsed as one JSON object.
    fn json_log(server: &Server) -> Vec<serde_json::Value> {
        server
            .log()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))
            })
            .collect()
    }

    /// A server logging JSON at `verbose` (where disconnects are logged).
    fn json_server(b: Backend) -> Server {
        Server::start(
            Opts::new(b)
                .arg("log-format", "json")
                .arg("loglevel", "verbose"),
        )
    }

    fn every_log_line_is_a_json_object_with_timestamp_level_and_message(b: Backend) {
        ringcast_only!("ringcast's log format");
        let server = json_server(b);
        server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
        let lines = json_log(&server);
        assert!(!lines.is_empty());
        for l in &lines {
            assert!(l["timestamp"].is_string(), "{l}");
            assert!(l["level"].is_string(), "{l}");
            assert!(l["message"].is_string(), "{l}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l["message"] == "Ready to accept connections tcp"),
            "{lines:?}"
        );
    }

    fn a_disconnect_line_names_the_client_its_reason_worker_and_output_buffer(b: Backend) {
        ringcast_only!("ringcast's log format");
        let server = json_server(b);
        let mut victim = connect_on_worker(&server, 1);
        // Names may hold quotes and backslashes (no spaces or control bytes).
        let name = r#"we"ird\name"#;
        victim.cmd_expect(&["CLIENT", "SETNAME", name], b"+OK\r\n");
        let id = victim.cmd(&["CLIENT", "ID"]).int();
        let info = victim.cmd(&["CLIENT", "INFO"]).text();
        let addr = info
            .split_whitespace()
            .find_map(|f| f.strip_prefix("addr="))
            .expect("addr= in CLIENT INFO")
            .to_owned();
        server
            .conn()
            .cmd_expect(&["CLIENT", "KILL", "ID", &id.to_string()], b":1\r\n");
        victim.expect_closed();
        let mut line = None;
        eventually("the kill is logged", || {
            line = json_log(&server)
                .into_iter()
                .find(|l| l["reason"] == "killed");
            line.is_some()
        });
        let line = line.expect("found above");
        assert_eq!(line["level"], "debug", "{line}");
        assert_eq!(line["client_id"], id, "{line}");
        assert_eq!(line["name"], name, "{line}");
        assert_eq!(line["addr"], addr.as_str(), "{line}");
        assert_eq!(line["worker"], 1, "{line}");
        assert!(line["omem"].is_u64() && line["qbuf"].is_u64(), "{line}");
        assert!(
            line["laddr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:"))
        );
    }

    fn an_output_buffer_disconnect_is_a_warning_with_the_bytes_it_held(b: Backend) {
        ringcast_only!("ringcast's log format");
        // At the default log level: a warning is logged, the rest is not.
        let server = Server::start(
            Opts::new(b)
                .pubsub_output_limit("64kb 0 0")
                .arg("log-format", "json"),
        );
        let mut slow = slow_reader_on_worker(&server, 0);
        slow.cmd_expect(&["CLIENT", "SETNAME", "slowpoke"], b"+OK\r\n");
        slow.sub("SUBSCRIBE", &["flood"], &[1]);
        let mut publisher = server.conn();
        let payload = "x".repeat(16 * 1024);
        for _ in 0..1000 {
            if publisher.cmd(&["PUBLISH", "flood", &payload]).int() == 0 {
                break;
            }
        }
        let mut line = None;
        eventually("the output-limit disconnect is logged", || {
            line = json_log(&server)
                .into_iter()
                .find(|l| l["reason"] == "output_buffer_limit");
            line.is_some()
        });
        let line = line.expect("found above");
        assert_eq!(line["level"], "warn", "{line}");
        assert_eq!(line["name"], "slowpoke", "{line}");
        assert_eq!(line["limit"], "hard", "{line}");
        assert_eq!(line["worker"], 0, "{line}");
        let omem = line["omem"].as_u64().expect("omem");
        let writing = line["omem_writing"].as_u64().expect("omem_writing");
        assert!(omem + writing > 64 * 1024, "{line}");
        assert!(
            json_log(&server).iter().all(|l| l["level"] != "debug"),
            "nothing below notice is logged at the default level"
        );
    }

    fn control_bytes_in_logged_text_are_escaped(b: Backend) {
        ringcast_only!("ringcast's log format");
        // A user name reaches the log ("The user '...' is disabled") byte for
        // byte: control characters, an ANSI escape, a quote, a backslash, DEL.
        let user = "c\u{1}\u{1b}[31m\"q\\\u{7f}";
        let server = Server::start(
            Opts::new(b)
                .arg("log-format", "json")
                .arg("user", &format!("{user} off")),
        );
        let raw = server.log();
        assert!(
            !raw.bytes().any(|c| c < 0x20 && c != b'\n' || c == 0x7f),
            "a raw control byte in the log: {raw:?}"
        );
        let lines = json_log(&server);
        let disabled = lines
            .iter()
            .find_map(|l| l["message"].as_str().filter(|m| m.contains("is disabled")))
            .unwrap_or_else(|| panic!("no 'is disabled' line in {lines:?}"));
        assert!(
            disabled.contains(&format!("'{user}'")),
            "{disabled:?} does not name {user:?}"
        );
    }

    fn disconnect_lines_are_rate_limited_per_reason_with_a_suppressed_count(b: Backend) {
        ringcast_only!("ringcast's log format");
        let server = json_server(b);
        const CLIENTS: usize = 200;
        // All connected first, then all gone at once: a burst of hang-ups.
        let clients: Vec<RawConn> = (0..CLIENTS)
            .map(|_| {
                let mut c = server.conn();
                c.cmd_expect(&["PING"], b"+PONG\r\n");
                c
            })
            .collect();
        drop(clients);
        let logged = |lines: &[serde_json::Value]| {
            lines
                .iter()
                .filter(|l| l["reason"] == "hangup" && l["client_id"].is_u64())
                .count() as u64
        };
        let suppressed = |lines: &[serde_json::Value]| {
            lines
                .iter()
                .filter(|l| l["reason"] == "hangup")
                .filter_map(|l| l["suppressed"].as_u64())
                .sum::<u64>()
        };
        eventually("every hang-up is logged or counted as suppressed", || {
            let lines = json_log(&server);
            logged(&lines) + suppressed(&lines) == CLIENTS as u64
        });
        let lines = json_log(&server);
        assert!(
            logged(&lines) < CLIENTS as u64 && suppressed(&lines) > 0,
            "{} logged, {} suppressed",
            logged(&lines),
            suppressed(&lines)
        );
        let summary = lines
            .iter()
            .find(|l| l["suppressed"].is_u64())
            .expect("a suppressed line");
        let n = summary["suppressed"].as_u64().expect("count");
        assert_eq!(
            summary["message"],
            format!("suppressed {n} similar disconnect log lines (reason hangup)")
        );
    }

    fn a_shutdown_logs_the_clients_it_closes(b: Backend) {
        ringcast_only!("ringcast's log format");
        let server = json_server(b);
        let mut sub = server.conn();
        sub.sub("SUBSCRIBE", &["bye"], &[1]);
        let (status, text) = server.terminate_with_log();
        assert_eq!(status.code(), Some(0));
        assert!(
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .any(|l| l["reason"] == "shutdown"),
            "{text}"
        );
    }

    backend_tests!(
        every_log_line_is_a_json_object_with_timestamp_level_and_message,
        a_disconnect_line_names_the_client_its_reason_worker_and_output_buffer,
        an_output_buffer_disconnect_is_a_warning_with_the_bytes_it_held,
        control_bytes_in_logged_text_are_escaped,
        disconnect_lines_are_rate_limited_per_reason_with_a_suppressed_count,
        a_shutdown_logs_the_clients_it_closes,
    );
}

// ----- io_uring blocked (Docker's default seccomp profile) ------------------

/// README.md quotes this line for containers whose seccomp profile blocks
/// io_uring: it must stay what ringcast logs.
#[test]
fn blocked_io_uring_is_logged_as_a_fallback_to_epoll() {
    ringcast_only!("ringcast's I/O backends");
    let server = Server::start(Opts::new(Backend::UringBlocked));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("falling back to epoll"))
        .unwrap_or_else(|| panic!("no fallback line in {log}"));
    assert!(
        line.ends_with(
            " WARN io_uring is not available (blocked, disabled or missing operations); falling back to epoll"
        ),
        "{line}"
    );
    assert!(log.contains(" backend=epoll "), "{log}");
}

// ----- the example configuration ------------------------------------------

fn example_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("ringcast.conf")
}

/// `CONFIG GET *` as `name -> value`.
fn config_all(server: &Server) -> HashMap<String, String> {
    let reply = server.conn().cmd(&["CONFIG", "GET", "*"]);
    let Frame::Array(items) = reply else {
        panic!("CONFIG GET * is an array: {reply:?}");
    };
    items
        .chunks(2)
        .map(|pair| match pair {
            [Frame::Bulk(k), Frame::Bulk(v)] => (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ),
            other => panic!("not a name and a value: {other:?}"),
        })
        .collect()
}

#[test]
fn the_example_config_starts_ringcast_with_every_parameter_at_its_default() {
    ringcast_only!("ringcast's example configuration");
    let from_file = Server::start(Opts::new(Backend::Epoll).config_file(example_conf()));
    let defaults = Server::start(Opts::new(Backend::Epoll));
    let mut got = config_all(&from_file);
    let mut want = config_all(&defaults);
    // The harness gives each its own port; everything else must agree.
    got.remove("port");
    want.remove("port");
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: default {v:?}, from the file {:?}", got.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "ringcast.conf is not at the defaults: {differ:#?}"
    );
    assert_eq!(got.len(), want.len());
}

#[test]
fn the_example_config_names_every_parameter() {
    ringcast_only!("ringcast's example configuration");
    let text = std::fs::read_to_string(example_conf()).expect("read ringcast.conf");
    let directives: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            // An active line, or a commented one (`# name value`).
            l.strip_prefix("# ").unwrap_or(l).split_whitespace().next()
        })
        .collect();
    let server = Server::start(Opts::new(Backend::Epoll));
    let missing: Vec<String> = config_all(&server)
        .into_keys()
        .filter(|name| !directives.contains(&name.as_str()))
        .collect();
    assert!(missing.is_empty(), "ringcast.conf lacks {missing:?}");
}
