//! [`Server`]: one server process under test, on its own ephemeral port.
//!
//! By default that is the `ringcast` binary of this workspace. With
//! `RINGCAST_TEST_TARGET=redis` it is a `redis-server` started with the
//! equivalent options, so the suite's byte-level expectations can be checked
//! against Redis itself.

use crate::PATIENCE;
use crate::backend::{Backend, io_uring_blocking_filter};
use crate::raw::RawConn;
use crate::resp::Frame;
use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which server the suite drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Ringcast,
    Redis,
}

impl Target {
    pub fn is_redis(self) -> bool {
        self == Target::Redis
    }
}

/// The target chosen by `RINGCAST_TEST_TARGET` (`redis` or, by default, `ringcast`).
pub fn target() -> Target {
    match std::env::var("RINGCAST_TEST_TARGET").as_deref() {
        Ok("redis") => Target::Redis,
        Ok("ringcast") | Ok("") | Err(_) => Target::Ringcast,
        Ok(other) => panic!("RINGCAST_TEST_TARGET must be `ringcast` or `redis`, not {other:?}"),
    }
}

/// Options for one server; unset ones keep the server's defaults.
#[derive(Clone, Debug)]
pub struct Opts {
    pub backend: Backend,
    pub threads: usize,
    pub requirepass: Option<String>,
    pub maxclients: Option<u32>,
    pub output_buffer_limit: Option<String>,
    pub ring_capacity: Option<u32>,
    pub debug_command: bool,
    /// `RLIMIT_NOFILE` (soft and hard) of the server process, set before it
    /// executes (as `ulimit -n` would).
    pub open_files_limit: Option<u64>,
    /// More `--name value` flags, passed to ringcast only.
    pub extra_args: Vec<String>,
    /// More `--name value` flags, passed to ringcast and redis-server alike.
    pub common_args: Vec<String>,
    /// Listen for TLS too, on a port of its own (`--tls-port`); the
    /// certificate flags go in `extra_args`.
    pub tls_port: bool,
    /// A config file given before the flags (which override it).
    pub config_file: Option<PathBuf>,
    /// Let ringcast move publishers between workers (`migrate-connections`).
    /// Off unless asked for: most tests place their connections on chosen
    /// workers to exercise the paths between workers, and a publisher that
    /// moved to its subscriber's worker would no longer cross them.
    pub migrate: bool,
}

impl Opts {
    /// Two workers (so cross-worker paths are exercised by any test with two
    /// connections) on the given backend.
    pub fn new(backend: Backend) -> Opts {
        Opts {
            backend,
            threads: 2,
            requirepass: None,
            maxclients: None,
            output_buffer_limit: None,
            ring_capacity: None,
            debug_command: false,
            open_files_limit: None,
            extra_args: Vec::new(),
            common_args: Vec::new(),
            tls_port: false,
            config_file: None,
            migrate: false,
        }
    }
    /// Let connections move between workers, as by default outside tests.
    pub fn migrate_connections(mut self) -> Opts {
        self.migrate = true;
        self
    }
    /// Starts the server with this config file (the harness's flags, such
    /// as the port, still override it).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Opts {
        self.config_file = Some(path.into());
        self
    }
    /// Also listen for TLS, on a free port ([`Server::tls_port`]).
    pub fn tls_port(mut self) -> Opts {
        self.tls_port = true;
        self
    }
    pub fn threads(mut self, n: usize) -> Opts {
        self.threads = n;
        self
    }
    pub fn requirepass(mut self, pw: &str) -> Opts {
        self.requirepass = Some(pw.to_owned());
        self
    }
    pub fn maxclients(mut self, n: u32) -> Opts {
        self.maxclients = Some(n);
        self
    }
    /// `--client-output-buffer-limit "pubsub <hard> <soft> <seconds>"`.
    pub fn pubsub_output_limit(mut self, spec: &str) -> Opts {
        self.output_buffer_limit = Some(format!("pubsub {spec}"));
        self
    }
    pub fn ring_capacity(mut self, n: u32) -> Opts {
        self.ring_capacity = Some(n);
        self
    }
    pub fn debug_command(mut self) -> Opts {
        self.debug_command = true;
        self
    }
    /// Starts the server with at most `n` open files (`RLIMIT_NOFILE`, soft
    /// and hard), so it cannot raise the limit itself.
    pub fn open_files_limit(mut self, n: u64) -> Opts {
        self.open_files_limit = Some(n);
        self
    }
    /// Adds `--<name> <value>` to ringcast's command line.
    pub fn arg(mut self, name: &str, value: &str) -> Opts {
        self.extra_args
            .extend([format!("--{name}"), value.to_owned()]);
        self
    }

    /// Adds `--<name> <value>` to the command line of either server.
    pub fn common_arg(mut self, name: &str, value: &str) -> Opts {
        self.common_args
            .extend([format!("--{name}"), value.to_owned()]);
        self
    }

    fn args(&self, target: Target, port: u16, tls_port: Option<u16>) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        if let Some(file) = &self.config_file {
            args.push(file.display().to_string());
        }
        args.extend(["--port".into(), port.to_string()]);
        if let Some(p) = tls_port {
            args.extend(["--tls-port".into(), p.to_string()]);
        }
        args.extend(["--bind".into(), "127.0.0.1".into()]);
        match target {
            Target::Redis => {
                args.extend(["--save".into(), String::new()]);
                args.extend(["--appendonly".into(), "no".into()]);
            }
            Target::Ringcast => {
                args.extend(["--threads".into(), self.threads.to_string()]);
                args.extend(["--io-backend".into(), self.backend.flag().into()]);
                if let Some(n) = self.ring_capacity {
                    args.extend(["--ring-capacity".into(), n.to_string()]);
                }
                if !self.migrate {
                    args.extend(["--migrate-connections".into(), "no".into()]);
                }
                args.extend(self.extra_args.iter().cloned());
            }
        }
        args.extend(self.common_args.iter().cloned());
        if let Some(pw) = &self.requirepass {
            args.extend(["--requirepass".into(), pw.clone()]);
        }
        if let Some(n) = self.maxclients {
            args.extend(["--maxclients".into(), n.to_string()]);
        }
        if let Some(spec) = &self.output_buffer_limit {
            args.extend(["--client-output-buffer-limit".into(), spec.clone()]);
        }
        if self.debug_command {
            args.extend(["--enable-debug-command".into(), "yes".into()]);
        }
        args
    }
}

/// A running server; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    opts: Opts,
    target: Target,
    log: Arc<Mutex<Vec<u8>>>,
    log_readers: Vec<JoinHandle<()>>,
}

const STARTUP_ATTEMPTS: usize = 5;
const READY_LINE: &str = "Ready to accept connections";

impl Server {
    /// Starts a server with `opts` on a free port and waits until it says
    /// it is ready. Retries on another port if it exits during startup (the
    /// port may have been taken between probing and binding).
    pub fn start(opts: Opts) -> Server {
        Server::start_as(target(), opts)
    }

    /// Like [`Server::start`], for a target chosen by the test rather than
    /// by `RINGCAST_TEST_TARGET` (tests that run both servers side by side).
    pub fn start_as(target: Target, opts: Opts) -> Server {
        let mut failures = String::new();
        for attempt in 1..=STARTUP_ATTEMPTS {
            let port = free_port();
            match Server::try_start(&opts, target, port) {
                Ok(server) => return server,
                Err(why) => failures.push_str(&format!("attempt {attempt} (port {port}): {why}\n")),
            }
        }
        panic!("server did not start:\n{failures}");
    }

    /// Starts a server with default options on `backend`.
    pub fn with_backend(backend: Backend) -> Server {
        Server::start(Opts::new(backend))
    }

    fn try_start(opts: &Opts, target: Target, port: u16) -> Result<Server, String> {
        let tls_port = opts.tls_port.then(free_port);
        let mut cmd = Command::new(binary(target));
        cmd.args(opts.args(target, port, tls_port))
            // Plain log lines: the readiness check looks for a phrase in them.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if target == Target::Ringcast && opts.backend == Backend::UringBlocked {
            let filter = io_uring_blocking_filter();
            // SAFETY: the closure runs between fork and exec; it only makes
            // the prctl and seccomp syscalls and allocates nothing (the
            // filter was compiled before the fork, errors map to a raw errno).
            unsafe {
                cmd.pre_exec(move || {
                    seccompiler::apply_filter(&filter)
                        .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))
                });
            }
        }
        if let Some(n) = opts.open_files_limit {
            // SAFETY: the closure runs between fork and exec and only makes
            // the prctl and setrlimit syscalls on a stack value.
            unsafe {
                cmd.pre_exec(move || limit_open_files(n));
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {:?}: {e}", binary(target)))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_readers = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| collect_into(stream, Arc::clone(&log)))
        .collect();
        let mut server = Server {
            child: Some(child),
            port,
            tls_port,
            opts: opts.clone(),
            target,
            log,
            log_readers,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if server.log().contains(READY_LINE) {
                return Ok(server);
            }
            let child = server.child.as_mut().expect("child present until drop");
            if let Ok(Some(status)) = child.try_wait() {
                server.child = None;
                server.join_log_readers();
                return Err(format!(
                    "exited with {status} during startup; output:\n{}",
                    server.log()
                ));
            }
            if Instant::now() > deadline {
                let log = server.log();
                drop(server);
                return Err(format!("not ready after {PATIENCE:?}; output:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port; panics if the server was not started with one.
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("server started with Opts::tls_port")
    }

    pub fn opts(&self) -> &Opts {
        &self.opts
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// Worker threads of the server (1 for redis-server).
    pub fn threads(&self) -> usize {
        match self.target {
            Target::Redis => 1,
            Target::Ringcast => self.opts.threads,
        }
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().expect("log lock")).into_owned()
    }

    /// A new raw connection (not authenticated).
    pub fn raw(&self) -> RawConn {
        RawConn::connect(self.port)
    }

    /// A new raw connection, authenticated when the server has a password.
    pub fn conn(&self) -> RawConn {
        let mut c = self.raw();
        if let Some(pw) = &self.opts.requirepass {
            c.cmd_expect(&["AUTH", pw.as_str()], b"+OK\r\n");
        }
        c
    }

    /// A new connection speaking `proto`, authenticated if needed.
    pub fn conn_proto(&self, proto: crate::Proto) -> RawConn {
        let mut c = self.conn();
        c.use_proto(proto);
        c
    }

    /// `INFO [section]` parsed into `field -> value` (section headers dropped).
    pub fn info(&self, section: &str) -> HashMap<String, String> {
        let mut c = self.conn();
        let reply = if section.is_empty() {
            c.cmd(&["INFO"])
        } else {
            c.cmd(&["INFO", section])
        };
        parse_info(&reply)
    }

    /// One INFO field as a number; panics if missing.
    pub fn info_u64(&self, section: &str, field: &str) -> u64 {
        let info = self.info(section);
        let value = info
            .get(field)
            .unwrap_or_else(|| panic!("INFO {section} lacks {field}: {info:?}"));
        value
            .parse()
            .unwrap_or_else(|_| panic!("INFO {field}:{value} is not a number"))
    }

    /// Changes the open-file limit of the running server (the soft
    /// `RLIMIT_NOFILE`; the hard one stays, so the limit can be raised back),
    /// as `prlimit --nofile=<n>:` does.
    pub fn set_open_files_limit(&self, n: u64) {
        let pid = self.pid() as libc::pid_t;
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit on our own child (not yet reaped, so the pid is
        // still its), reading into and then writing from a live rlimit.
        let rc = unsafe {
            if libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut limit) == 0 {
                limit.rlim_cur = n.min(limit.rlim_max);
                libc::prlimit(pid, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut())
            } else {
                -1
            }
        };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    /// Descriptors the server process has open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/<pid>/fd")
            .count()
    }

    /// Sends `sig` to the server process.
    pub fn signal(&self, sig: libc::c_int) {
        signal(self.child.as_ref().expect("server running"), sig);
    }

    /// Waits (bounded) for the process to exit by itself (after SHUTDOWN).
    pub fn wait_exit(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        let status = wait_bounded(&mut child, PATIENCE).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server did not exit within {PATIENCE:?}; output:\n{}",
                self.log()
            )
        });
        self.join_log_readers();
        status
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(self) -> ExitStatus {
        self.terminate_with_log().0
    }

    /// [`Server::terminate`], and everything the server wrote until it exited.
    pub fn terminate_with_log(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("server running");
        signal(&child, libc::SIGTERM);
        let status = wait_bounded(&mut child, PATIENCE).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server did not exit within {PATIENCE:?} of SIGTERM; output:\n{}",
                self.log()
            )
        });
        self.join_log_readers();
        (status, self.log())
    }

    fn join_log_readers(&mut self) {
        for reader in self.log_readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            if wait_bounded(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.join_log_readers();
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("--- server output (last 40 lines) ---\n{tail}\n---");
        }
    }
}

/// In the child before exec: at most `n` open files, for good. Dropping
/// CAP_SYS_RESOURCE from the bounding set first keeps a server started by
/// root from raising the hard limit again (best effort: without CAP_SETPCAP
/// the process could not raise it anyway).
fn limit_open_files(n: u64) -> std::io::Result<()> {
    // linux/capability.h
    const CAP_SYS_RESOURCE: libc::c_ulong = 24;
    // SAFETY: plain syscalls on stack values, async-signal-safe.
    unsafe {
        libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
        let limit = libc::rlimit {
            rlim_cur: n,
            rlim_max: n,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we have not yet reaped, so the
    // pid cannot have been reused by another process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn collect_into(mut stream: Box<dyn Read + Send>, log: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            log.lock().expect("log lock").extend_from_slice(&chunk[..n]);
        }
    })
}

/// A port that was free a moment ago (bind :0, read it, release it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Path of the `ringcast` binary the suite runs (for tests that start it
/// themselves: daemonized, logging to a file, or expected to fail).
pub fn ringcast_binary() -> PathBuf {
    binary(Target::Ringcast)
}

/// Path of the server binary for `target`.
fn binary(target: Target) -> PathBuf {
    match target {
        Target::Redis => std::env::var_os("REDIS_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server")),
        Target::Ringcast => {
            if let Some(bin) = std::env::var_os("RINGCAST_BIN") {
                return PathBuf::from(bin);
            }
            // <target>/<profile>/deps/<test>-<hash> → <target>/<profile>/ringcast
            let exe = std::env::current_exe().expect("current_exe");
            let bin = exe
                .parent()
                .and_then(|deps| deps.parent())
                .map(|profile| profile.join("ringcast"))
                .expect("test executable lives in <target>/<profile>/deps");
            assert!(
                bin.exists(),
                "ringcast binary not found at {}: build it first (`cargo build -p ringcast-server`) or set RINGCAST_BIN",
                bin.display()
            );
            bin
        }
    }
}

/// Parses an INFO reply into `field -> value`.
pub fn parse_info(reply: &Frame) -> HashMap<String, String> {
    reply
        .text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim_end().to_owned()))
        .collect()
}
