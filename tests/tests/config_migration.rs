//! Starting ringcast from an existing Redis setup: Debian's stock
//! /etc/redis/redis.conf and upstream's annotated 7.2 redis.conf load, the
//! Redis directives ringcast does not use are reported in one warning (or
//! refused with `strict-config yes`), real mistakes stop the start naming
//! their file and line; `bind` with optional addresses, `logfile`,
//! `pidfile`, `daemonize`, `supervised`, `include` and `CONFIG REWRITE`
//! behave as in Redis.
//!
//! These are ringcast's own behaviours (redis-server reads these files
//! silently), so they run against ringcast only, on one backend.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use ringcast_tests::{
    Backend, Opts, PATIENCE, RawConn, Server, eventually, free_port, ringcast_binary, ringcast_only,
};

/// Installed by Debian's redis-server package (.ci/run installs it).
const DEBIAN_CONF: &str = "/etc/redis/redis.conf";

/// Upstream Redis 7.2.4's redis.conf, with its licence header.
fn upstream_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/redis-7.2.conf")
}

/// A directory of its own for one test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("ringcast-conf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path.canonicalize().expect("canonical temp dir"))
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        std::fs::write(&path, text).expect("write file");
        path
    }

    fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts() -> Opts {
    Opts::new(Backend::Epoll)
}

/// ringcast run to its end with `args` (for starts that must fail).
fn run_to_end(args: &[&str]) -> Output {
    let mut child = Command::new(ringcast_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    let status = wait_for(&mut child);
    let read = |s: Option<&mut dyn Read>| {
        let mut out = Vec::new();
        if let Some(s) = s {
            let _ = s.read_to_end(&mut out);
        }
        out
    };
    let stdout = read(child.stdout.as_mut().map(|s| s as &mut dyn Read));
    let stderr = read(child.stderr.as_mut().map(|s| s as &mut dyn Read));
    Output {
        status,
        stdout,
        stderr,
    }
}

fn wait_for(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringcast did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid this test started (directly or as the
    // daemon it forked) and a valid signal.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether process `pid` still runs (a zombie waiting for its reaper does not).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends SIGTERM to a process this test does not wait for (a daemon) when
/// dropped, so that a failing test leaves nothing behind.
struct Daemon(i32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if running(self.0) {
            kill(self.0, libc::SIGTERM);
        }
    }
}

fn config_get(c: &mut RawConn, name: &str) -> String {
    let reply = c.cmd(&["CONFIG", "GET", name]);
    reply.items().get(1).map(|v| v.text()).unwrap_or_default()
}

fn the_warning(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Redis directive(s) ringcast has no use for"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one warning line, not {}:\n{log}",
        lines.len()
    );
    lines[0].to_string()
}

#[test]
fn debian_stock_redis_conf_starts_with_one_grouped_warning() {
    ringcast_only!("ringcast's reading of a Redis configuration");
    if let Err(e) = std::fs::read(DEBIAN_CONF) {
        panic!(
            "cannot read {DEBIAN_CONF} ({e}): install Debian's redis-server package (.ci/run does); the file is readable by root and the redis group"
        );
    }
    let dir = TempDir::new("debian");
    let pidfile = dir.path("redis-server.pid");
    // What systemd's unit overrides for a foreground service, plus a
    // pid file and directory of the test's own.
    let server = Server::start(
        opts()
            .config_file(DEBIAN_CONF)
            .arg("daemonize", "no")
            .arg("logfile", "")
            .arg("pidfile", pidfile.to_str().unwrap())
            .arg("dir", dir.str()),
    );
    let warning = the_warning(&server.log());
    for part in [
        "persistence: ",
        "appendonly",
        "replication: ",
        "keys and data types: ",
    ] {
        assert!(warning.contains(part), "{part} missing from {warning}");
    }
    let listed: Vec<&str> = warning
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')'))
        .collect();
    for used in [
        "daemonize",
        "pidfile",
        "logfile",
        "dir",
        "loglevel",
        "hz",
        "port",
        "bind",
    ] {
        assert!(
            !listed.contains(&used),
            "{used} is used, not ignored: {warning}"
        );
    }
    let mut c = server.conn();
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    assert_eq!(config_get(&mut c, "appendonly"), "no");
    assert_eq!(config_get(&mut c, "dir"), dir.str());
    assert_eq!(
        config_get(&mut c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(server.info("server")["config_file"], DEBIAN_CONF);
    let pid = std::fs::read_to_string(&pidfile).expect("pid file written");
    assert_eq!(pid.trim(), server.pid().to_string());
    assert_eq!(server.terminate().code(), Some(0));
    assert!(!pidfile.exists(), "pid file removed at exit");
}

#[test]
fn upstream_annotated_redis_conf_starts() {
    ringcast_only!("ringcast's reading of a Redis configuration");
    let dir = TempDir::new("upstream");
    let server = Server::start(
        opts()
            .config_file(upstream_conf())
            .arg("pidfile", dir.path("r.pid").to_str().unwrap()),
    );
    let warning = the_warning(&server.log());
    assert!(warning.contains("persistence: "), "{warning}");
    let mut c = server.conn();
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    assert_eq!(config_get(&mut c, "hz"), "10");
    assert_eq!(config_get(&mut c, "dynamic-hz"), "yes");
    assert_eq!(config_get(&mut c, "tcp-keepalive"), "300");
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn strict_config_refuses_what_ringcast_does_not_use_naming_file_and_line() {
    ringcast_only!("ringcast's strict-config");
    let dir = TempDir::new("strict");
    let conf = dir.write("r.conf", "port 0\n# persistence\nappendonly no\n");
    let conf = conf.to_str().unwrap();
    let port = free_port().to_string();
    let out = run_to_end(&[conf, "--port", &port, "--strict-config", "yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{conf}, line 3")), "{err}");
    assert!(
        err.contains("'appendonly' is a Redis parameter ringcast does not use"),
        "{err}"
    );
    // The same as a directive of the file.
    let conf = dir.write("s.conf", "strict-config yes\nport 0\nrepl-timeout 30\n");
    let out = run_to_end(&[conf.to_str().unwrap(), "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("repl-timeout"),
        "{err}"
    );
    // Upstream's file in strict mode: its first directive ringcast ignores.
    let upstream = upstream_conf();
    let out = run_to_end(&[
        upstream.to_str().unwrap(),
        "--port",
        &port,
        "--strict-config",
        "yes",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'tcp-backlog'"));
    // Without strict mode: it starts (and says so once).
    let server = Server::start(opts().config_file(dir.path("r.conf")));
    the_warning(&server.log());
}

#[test]
fn a_misspelled_parameter_or_bad_value_stops_the_start_naming_file_and_line() {
    ringcast_only!("ringcast's error messages");
    let dir = TempDir::new("typo");
    let port = free_port().to_string();
    let conf = dir.write("typo.conf", "# limits\n\nmaxclient 10\n");
    let out = run_to_end(&[conf.to_str().unwrap(), "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}, line 3", conf.display())),
        "{err}"
    );
    assert!(
        err.contains("unknown parameter 'maxclient' (did you mean 'maxclients'?)"),
        "{err}"
    );
    let conf = dir.write("value.conf", "hz often\n");
    let out = run_to_end(&[conf.to_str().unwrap(), "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1") && err.contains("argument couldn't be parsed into an integer"),
        "{err}"
    );
}

#[test]
fn bind_skips_optional_addresses_that_are_not_available() {
    ringcast_only!("ringcast's log lines");
    // `-::1`, as in Redis's stock file: bound where the host has IPv6,
    // skipped where it has not.
    let server = Server::start(opts().arg("bind", "127.0.0.1 -::1"));
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
    drop(server);
    // 192.0.2.1 (TEST-NET-1) is never a local address.
    let server = Server::start(opts().arg("bind", "127.0.0.1 -192.0.2.1"));
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
    assert!(
        server
            .log()
            .contains("Could not create server TCP listening socket 192.0.2.1"),
        "{}",
        server.log()
    );
    drop(server);
    // `*` and `::*`: every address, IPv4 and IPv6 on the same port.
    let server = Server::start(opts().arg("bind", "* -::*"));
    server.conn().cmd_expect(&["PING"], b"+PONG\r\n");
    drop(server);
    // Not optional: the start fails.
    let port = free_port().to_string();
    let out = run_to_end(&["--port", &port, "--bind", "127.0.0.1 192.0.2.1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on 192.0.2.1"));
}

#[test]
fn logfile_receives_the_log_instead_of_standard_output() {
    ringcast_only!("ringcast's log");
    let dir = TempDir::new("logfile");
    let log = dir.path("ringcast.log");
    let port = free_port();
    let mut child = Command::new(ringcast_binary())
        .args(["--port", &port.to_string(), "--threads", "1", "--logfile"])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually("the log file says it is ready", || {
        text().contains("Ready to accept connections tcp")
    });
    RawConn::connect(port).cmd_expect(&["PING"], b"+PONG\r\n");
    kill(child.id() as i32, libc::SIGTERM);
    assert_eq!(wait_for(&mut child).code(), Some(0));
    assert!(text().contains("bye bye"), "{}", text());
    let mut stdout = String::new();
    let _ = child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut stdout));
    assert!(
        !stdout.contains("Ready to accept"),
        "logged to stdout too: {stdout}"
    );
    // A log file that cannot be opened stops the start, as in Redis.
    let out = run_to_end(&[
        "--port",
        &port.to_string(),
        "--logfile",
        "/nonexistent/dir/r.log",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Can't open the log file"));
}

#[test]
fn daemonize_forks_writes_the_pidfile_and_removes_it_at_exit() {
    ringcast_only!("ringcast's process management");
    let dir = TempDir::new("daemon");
    let (pidfile, log) = (dir.path("r.pid"), dir.path("r.log"));
    let port = free_port();
    let mut parent = Command::new(ringcast_binary())
        .args([
            "--port",
            &port.to_string(),
            "--threads",
            "1",
            "--daemonize",
            "yes",
        ])
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ringcast");
    // As Redis: the process that was started exits 0 at once.
    assert_eq!(wait_for(&mut parent).code(), Some(0));
    eventually("the pid file is written", || pidfile.exists());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    let daemon = Daemon(pid);
    assert_ne!(pid as u32, parent.id());
    eventually("the daemon serves", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut c = RawConn::connect(port);
    c.cmd_expect(&["PING"], b"+PONG\r\n");
    let info = ringcast_tests::server::parse_info(&c.cmd(&["INFO", "server"]));
    assert_eq!(info["process_id"], pid.to_string());
    kill(pid, libc::SIGTERM);
    eventually("the daemon exits", || !running(pid));
    assert!(!pidfile.exists(), "pid file removed at exit");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("Removing the pid file."), "{text}");
    drop(daemon);
}

/// Reads notifications until `want` arrives; all of them, in order.
fn notifications_until(socket: &UnixDatagram, want: &str) -> Vec<String> {
    socket
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.iter().any(|g| g == want) {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want:?} after {got:?}: {e}"));
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

fn supervised_run(mode: &str, notify_socket: &str, socket: &UnixDatagram) {
    let port = free_port();
    let mut child = Command::new(ringcast_binary())
        .args([
            "--port",
            &port.to_string(),
            "--threads",
            "1",
            "--supervised",
            mode,
        ])
        // A supervised process stays in the foreground, as in Redis.
        .args(["--daemonize", "yes"])
        .env("NOTIFY_SOCKET", notify_socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ringcast");
    let got = notifications_until(socket, "READY=1\n");
    assert_eq!(
        got,
        [
            "STATUS=ringcast is loading...\n",
            "STATUS=Ready to accept connections\n",
            "READY=1\n"
        ]
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "it daemonized"
    );
    let mut c = RawConn::connect(port);
    let info = ringcast_tests::server::parse_info(&c.cmd(&["INFO", "server"]));
    assert_eq!(info["process_supervised"], "systemd");
    assert_eq!(info["process_id"], child.id().to_string());
    kill(child.id() as i32, libc::SIGTERM);
    assert_eq!(
        notifications_until(socket, "STOPPING=1\n"),
        ["STOPPING=1\n"]
    );
    assert_eq!(wait_for(&mut child).code(), Some(0));
}

#[test]
fn supervised_systemd_notifies_ready_and_stopping() {
    ringcast_only!("ringcast's process management");
    let dir = TempDir::new("notify");
    let path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notification socket");
    supervised_run("systemd", path.to_str().unwrap(), &socket);
}

#[test]
fn supervised_auto_finds_an_abstract_notify_socket() {
    ringcast_only!("ringcast's process management");
    use std::os::linux::net::SocketAddrExt;
    let name = format!("ringcast-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .expect("abstract address");
    let socket = UnixDatagram::bind_addr(&addr).expect("bind the notification socket");
    supervised_run("auto", &format!("@{name}"), &socket);
}

#[test]
fn config_rewrite_keeps_comments_and_order() {
    ringcast_only!("ringcast's own parameters are in the rewritten file");
    let dir = TempDir::new("rewrite");
    let original = std::fs::read_to_string(upstream_conf()).expect("fixture");
    let conf = dir.write("redis.conf", &original);
    let server = Server::start(
        opts()
            .config_file(&conf)
            .arg("pidfile", dir.path("r.pid").to_str().unwrap()),
    );
    let mut c = server.conn();
    c.cmd_expect(
        &["CONFIG", "SET", "maxclients", "123", "hz", "20"],
        b"+OK\r\n",
    );
    c.cmd_expect(
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        b"+OK\r\n",
    );
    c.cmd_expect(&["CONFIG", "REWRITE"], b"+OK\r\n");
    let rewritten = std::fs::read_to_string(&conf).expect("rewritten file");
    let (old, new): (Vec<&str>, Vec<&str>) =
        (original.lines().collect(), rewritten.lines().collect());
    // Comments and order are kept: the licence header and the first
    // sections are untouched, and `hz` is rewritten on its own line.
    assert_eq!(old[..80], new[..80]);
    let hz = old
        .iter()
        .position(|l| *l == "hz 10")
        .expect("hz in the fixture");
    let at = new
        .iter()
        .position(|l| *l == "hz 20")
        .expect("hz rewritten");
    assert_eq!(new[at - 1], old[hz - 1], "hz rewritten where it was");
    assert!(new.contains(&"# maxclients 10000"), "comments kept");
    let tail = rewritten
        .split("# Generated by CONFIG REWRITE\n")
        .nth(1)
        .expect("new parameters appended after the signature");
    assert!(tail.contains("maxclients 123\n"), "{tail}");
    assert!(tail.contains("maxmemory-policy allkeys-lru\n"), "{tail}");
    assert!(!tail.contains("hz "), "hz stays where it was: {tail}");
    assert!(
        !tail.contains("tcp-backlog"),
        "defaults are not added: {tail}"
    );
    // The rewritten file starts the same configuration.
    drop(server);
    let again = Server::start(
        opts()
            .config_file(&conf)
            .arg("pidfile", dir.path("r.pid").to_str().unwrap()),
    );
    let mut c = again.conn();
    assert_eq!(config_get(&mut c, "maxclients"), "123");
    assert_eq!(config_get(&mut c, "hz"), "20");
    assert_eq!(config_get(&mut c, "maxmemory-policy"), "allkeys-lru");
}

#[test]
fn include_reads_the_files_a_glob_names_in_order() {
    ringcast_only!("ringcast's reading of a Redis configuration");
    let dir = TempDir::new("include");
    std::fs::create_dir_all(dir.path("conf.d")).expect("conf.d");
    dir.write("conf.d/10-a.conf", "maxclients 40\nhz 30\n");
    dir.write("conf.d/20-b.conf", "hz 40\n");
    dir.write("conf.d/ignored.txt", "hz 50\n");
    let main = dir.write(
        "main.conf",
        &format!("include {}/conf.d/*.conf\nmaxclients 50\n", dir.str()),
    );
    let server = Server::start(opts().config_file(main));
    let mut c = server.conn();
    assert_eq!(config_get(&mut c, "hz"), "40");
    assert_eq!(config_get(&mut c, "maxclients"), "50");
}

/// `rename-command` in the file: the old name is unknown, the new one runs
/// the command (also inside MULTI), an empty name removes it; the same on
/// redis-server.
#[test]
fn rename_command_renames_and_removes_commands() {
    let dir = TempDir::new("rename");
    let conf = dir.write(
        "rename.conf",
        "rename-command CONFIG \"\"\nrename-command PUBLISH send\nrename-command SUBSCRIBE listen\n",
    );
    let server = Server::start(opts().config_file(conf));
    let mut sub = server.conn();
    sub.cmd_expect(
        &["LISTEN", "ch"],
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    );
    let mut c = server.conn();
    for (args, reply) in [
        (
            &["CONFIG", "GET", "port"][..],
            &b"-ERR unknown command 'CONFIG', with args beginning with: 'GET' 'port' \r\n"[..],
        ),
        (
            &["PUBLISH", "ch", "m"],
            b"-ERR unknown command 'PUBLISH', with args beginning with: 'ch' 'm' \r\n",
        ),
        (&["send", "ch", "m1"], b":1\r\n"),
        (&["MULTI"], b"+OK\r\n"),
        (&["SEND", "ch", "m2"], b"+QUEUED\r\n"),
        (&["EXEC"], b"*1\r\n:1\r\n"),
    ] {
        c.cmd_expect(args, reply);
    }
    for m in ["m1", "m2"] {
        let push = format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\n{m}\r\n");
        sub.expect(push.as_bytes());
    }
}

#[test]
fn rename_command_errors_stop_the_start() {
    ringcast_only!("ringcast's error messages");
    let dir = TempDir::new("badrename");
    let port = free_port().to_string();
    for (text, why) in [
        (
            "rename-command NOSUCH x\n",
            "No such command in rename-command",
        ),
        (
            "rename-command PING echo\n",
            "Target command name already exists",
        ),
    ] {
        let conf = dir.write("bad.conf", text);
        let out = run_to_end(&[conf.to_str().unwrap(), "--port", &port]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("line 1") && err.contains(why), "{err}");
    }
}
