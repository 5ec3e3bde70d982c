//! `compare`: starts ringcast and a real redis-server on free loopback ports,
//! runs the shape matrix against each — alternating which goes first,
//! repeated, each run on a freshly started server — and prints one table of
//! medians with the ratio ringcast / redis.
//!
//! A fresh server per run keeps runs independent (the churn and memory shapes
//! leave large state behind) and costs well under a second.

use crate::conn::{ReadBuf, Target};
use crate::matrix::{self, Preset};
use crate::plan::{Shape, Workload};
use crate::report::{bytes, thousands};
use crate::run::{self, Latency, RunOptions, RunReport};
use crate::sys;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server `compare` knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Ringcast,
    Redis,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Ringcast => "ringcast",
            ServerKind::Redis => "redis",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// ringcast binary [default: $RINGCAST_BIN, else `ringcast` next to this
    /// binary, else target/release/ringcast of the workspace].
    #[arg(long)]
    pub ringcast_bin: Option<PathBuf>,
    /// redis-server binary [default: `redis-server` on PATH].
    #[arg(long)]
    pub redis_bin: Option<PathBuf>,
    /// Servers to compare, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ringcast,redis"
    )]
    pub servers: Vec<ServerKind>,
    /// Presets to run, comma separated [default: the whole matrix; see `ringcast-bench shapes`].
    #[arg(long, value_delimiter = ',')]
    pub shapes: Vec<String>,
    /// Short runs, smaller churn and memory setups, one repetition.
    #[arg(long)]
    pub quick: bool,
    /// Runs per (shape, server); the table shows medians [default: 3, quick: 1].
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Seconds of publishing per run [default: 5, quick: 1.5].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Pin the servers to these CPUs (e.g. `1`).
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// Pin this load generator to these CPUs (e.g. `0`).
    #[arg(long)]
    pub client_cpus: Option<String>,
    /// ringcast worker threads [default: number of --server-cpus, else all CPUs].
    #[arg(long)]
    pub ringcast_threads: Option<usize>,
    /// ringcast I/O backend: auto, uring or epoll.
    #[arg(long, default_value = "auto")]
    pub io_backend: String,
    /// Protocol version for every connection: 2 or 3.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub resp: u8,
    /// Subscriber event-loop threads [default: CPUs this process may use].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Read buffer per connection, KiB.
    #[arg(long, default_value_t = 64)]
    pub read_buffer_kib: usize,
    /// Subscriber pause (µs) after each busy poll round; see `run --help`.
    #[arg(long, default_value_t = 0)]
    pub coalesce_us: u64,
    /// Latency presets (`--shapes latency`): run at these rates (msg/s, all
    /// publishers together) instead of each preset's own list.
    #[arg(long, value_delimiter = ',')]
    pub latency_rates: Vec<f64>,
    /// Latency presets: the probe's spin margin before each send, µs.
    #[arg(long, default_value_t = 100)]
    pub spin_us: u64,
    /// Latency presets: skip the tool's floor (the same probe against a relay
    /// inside the tool, pinned to --server-cpus).
    #[arg(long)]
    pub no_floor: bool,
    /// Latency presets: the floor relay busy-polls instead of waiting in epoll.
    #[arg(long)]
    pub floor_spin: bool,
    /// Machine-readable JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write one latency plot (SVG) per shape into this directory.
    #[arg(long)]
    pub plot_dir: Option<PathBuf>,
    /// Keep server logs in this directory [default: a temporary directory, removed at the end].
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Where to look for the ringcast binary, in order.
fn ringcast_candidates(explicit: &Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.clone()];
    }
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("RINGCAST_BIN") {
        v.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        // Prefer the optimised build even when this tool is a debug build.
        if let Some(target) = dir.parent() {
            v.push(target.join("release").join("ringcast"));
        }
        v.push(dir.join("ringcast"));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        v.push(PathBuf::from(t).join("release").join("ringcast"));
    }
    v.push(PathBuf::from("target/release/ringcast"));
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

/// Finds the ringcast binary or explains how to get one.
pub fn find_ringcast(explicit: &Option<PathBuf>) -> Result<PathBuf> {
    let cands = ringcast_candidates(explicit);
    if let Some(p) = cands.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    bail!(
        "ringcast binary not found (looked at: {}).\n\
         Build it with `cargo build --release -p ringcast-server`, pass --ringcast-bin PATH, \
         or compare nothing but redis-server with --servers redis.",
        cands
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Finds redis-server or explains how to install it.
pub fn find_redis(explicit: &Option<PathBuf>) -> Result<PathBuf> {
    find_redis_in(explicit, std::env::var_os("PATH"))
}

fn find_redis_in(explicit: &Option<PathBuf>, path: Option<std::ffi::OsString>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.clone());
        }
        bail!("--redis-bin {}: no such file", p.display());
    }
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("redis-server");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "redis-server not found on PATH.\n\
         Install it with `apt-get install -y redis-server` (Debian/Ubuntu; the packaged service \
         need not run: the benchmark starts its own instance on a free port), pass \
         --redis-bin PATH, or benchmark ringcast alone with --servers ringcast."
    )
}

/// Asks the kernel for a free loopback port.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub kind: ServerKind,
    pub bin: PathBuf,
    /// CPUs the server process may use.
    pub cpus: Vec<usize>,
    pub ringcast_threads: usize,
    pub io_backend: String,
    pub log_dir: PathBuf,
}

/// A running server; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ServerProc {
    pub kind: ServerKind,
    pub port: u16,
    pub log: PathBuf,
    child: Child,
}

impl ServerProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts the server on a free port and waits until it answers PING.
    pub fn start(spec: &ServerSpec) -> Result<ServerProc> {
        let port = free_port()?;
        let mut cmd = Command::new(&spec.bin);
        match spec.kind {
            ServerKind::Redis => {
                cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .args(["--daemonize", "no", "--maxclients", "20000"]);
            }
            ServerKind::Ringcast => {
                cmd.args(["--port", &port.to_string()])
                    .args(["--threads", &spec.ringcast_threads.to_string()])
                    .args(["--io-backend", &spec.io_backend])
                    .args(["--maxclients", "20000"]);
            }
        }
        let log = spec
            .log_dir
            .join(format!("{}-{port}.log", spec.kind.name()));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let cpus = spec.cpus.clone();
        // SAFETY: the closure runs in the child between fork and exec and only
        // makes the sched_setaffinity syscall (async-signal-safe), on a Vec
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || sys::set_affinity(0, &cpus));
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.bin.display()))?;
        let mut p = ServerProc {
            kind: spec.kind,
            port,
            log,
            child,
        };
        p.wait_ready(Duration::from_secs(15))?;
        Ok(p)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during startup ({status}); its log:\n{}",
                    self.kind.name(),
                    log_tail(&self.log)
                );
            }
            if ping(self.port).is_ok() {
                return Ok(());
            }
            if t0.elapsed() > limit {
                bail!(
                    "{} did not answer PING on port {} within {limit:?}; its log:\n{}",
                    self.kind.name(),
                    self.port,
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ping(port: u16) -> Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut rb = ReadBuf::new(256);
    crate::conn::expect_ok_reply(&mut s, &mut rb)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// One figure the table shows for a shape.
struct Metric {
    name: &'static str,
    higher_is_better: bool,
    get: fn(&RunReport) -> Option<f64>,
    fmt: fn(f64) -> String,
}

/// A latency figure in µs, lower is better.
const fn us(name: &'static str, get: fn(&RunReport) -> Option<f64>) -> Metric {
    Metric {
        name,
        higher_is_better: false,
        get,
        fmt: |v| format!("{v:.1}"),
    }
}

/// What the table shows for a latency probe run: the server's percentiles,
/// the tool's floor and half a PING measured in the same run, and the
/// server's latency above the floor — the part that is the server's.
fn probe_metrics() -> Vec<Metric> {
    fn lat(r: &RunReport) -> Option<&Latency> {
        r.latency.as_ref()
    }
    fn floor(r: &RunReport) -> Option<&Latency> {
        r.probe.as_ref()?.floor.as_ref()
    }
    vec![
        us("latency p50 us", |r| lat(r).map(|l| l.p50_us)),
        us("latency p90 us", |r| lat(r).map(|l| l.p90_us)),
        us("latency p99 us", |r| lat(r).map(|l| l.p99_us)),
        us("latency p99.9 us", |r| lat(r).map(|l| l.p999_us)),
        us("latency p99.99 us", |r| lat(r).map(|l| l.p9999_us)),
        us("latency max us", |r| lat(r).map(|l| l.max_us)),
        us("floor p50 us", |r| floor(r).map(|l| l.p50_us)),
        us("floor p99 us", |r| floor(r).map(|l| l.p99_us)),
        us("floor p99.9 us", |r| floor(r).map(|l| l.p999_us)),
        us("half PING p50 us", |r| {
            r.probe.as_ref()?.ping_half_rtt.as_ref().map(|l| l.p50_us)
        }),
        us("p50 above floor us", |r| {
            Some(lat(r)?.p50_us - floor(r)?.p50_us)
        }),
        us("p99 above floor us", |r| {
            Some(lat(r)?.p99_us - floor(r)?.p99_us)
        }),
        Metric {
            name: "server CPU ns/msg",
            higher_is_better: false,
            get: |r| r.server_cpu_ns_per_msg,
            fmt: |v| format!("{v:.0}"),
        },
    ]
}

/// The figures of one table row group, by the kind of run.
fn metrics_for(r: &RunReport) -> Vec<Metric> {
    if r.probe.is_some() {
        probe_metrics()
    } else {
        metrics(r.shape)
    }
}

fn metrics(shape: Shape) -> Vec<Metric> {
    let rate = Metric {
        name: "delivered msg/s",
        higher_is_better: true,
        get: |r| Some(r.delivered_rate),
        fmt: thousands,
    };
    let cpu = Metric {
        name: "server CPU ns/msg",
        higher_is_better: false,
        get: |r| r.server_cpu_ns_per_msg,
        fmt: |v| format!("{v:.0}"),
    };
    let p50 = Metric {
        name: "latency p50 us",
        higher_is_better: false,
        get: |r| r.latency.as_ref().map(|l| l.p50_us),
        fmt: |v| format!("{v:.1}"),
    };
    let p99 = Metric {
        name: "latency p99 us",
        higher_is_better: false,
        get: |r| r.latency.as_ref().map(|l| l.p99_us),
        fmt: |v| format!("{v:.1}"),
    };
    match shape {
        Shape::Memory => vec![Metric {
            name: "RSS bytes/conn",
            higher_is_better: false,
            get: |r| r.memory.as_ref().map(|m| m.bytes_per_connection),
            fmt: |v| bytes(v),
        }],
        Shape::Churn => vec![
            Metric {
                name: "churn ops/s",
                higher_is_better: true,
                get: |r| r.churn.as_ref().map(|c| c.ops_per_sec),
                fmt: thousands,
            },
            rate,
            cpu,
            p99,
        ],
        _ => vec![rate, cpu, p50, p99],
    }
}

/// Median of the finite values, if any.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl ShapeResult {
    /// The figures its rows show, from the kind of its first run.
    fn metrics(&self) -> Vec<Metric> {
        self.cells
            .iter()
            .find_map(|c| c.runs.first())
            .map(metrics_for)
            .unwrap_or_else(|| metrics(Shape::Fanout))
    }
}

/// All runs of one shape on one server.
#[derive(Debug, Serialize)]
struct Cell {
    server: ServerKind,
    runs: Vec<RunReport>,
    failures: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ShapeResult {
    /// The preset's name, with `@rate` for a latency preset.
    shape: String,
    about: &'static str,
    /// ringcast worker threads for this shape (some need at least two).
    ringcast_threads: usize,
    cells: Vec<Cell>,
}

#[derive(Debug, Serialize)]
struct Machine {
    nproc: usize,
    kernel: String,
    cpu_model: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        // SAFETY: sysconf has no preconditions. Online CPUs, not this process's affinity.
        nproc: unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// Runs the comparison; Ok(false) when any run failed verification.
pub fn main(a: CompareArgs) -> Result<bool> {
    sys::raise_nofile_limit();
    let cases = select_cases(&a.shapes, &a.latency_rates)?;
    let setup = Setup::prepare(&a)?;
    if !a.quiet {
        eprintln!("{}", setup.banner(cases.len(), &a));
    }
    let t_start = Instant::now();
    let mut progress = Progress {
        done: 0,
        total: cases.len() * setup.repeat * setup.specs.len(),
        quiet: a.quiet,
    };
    let mut results = Vec::new();
    for case in &cases {
        let r = run_shape(case, &setup, &a, &mut progress);
        if let Some(dir) = &a.plot_dir {
            plot_shape(dir, &case.name, &r.cells)?;
        }
        results.push(r);
    }
    let all_passed = results
        .iter()
        .all(|r| r.cells.iter().all(|c| c.failures.is_empty()));
    if a.json {
        print_json(&setup, &a, &results)?;
    } else {
        print_table(&setup, &a, &results, t_start.elapsed());
    }
    setup.finish_logs(all_passed, a.quiet);
    Ok(all_passed)
}

/// One row group of the table: a preset, at one rate for a latency preset.
struct Case {
    preset: &'static Preset,
    name: String,
    rate: Option<f64>,
}

/// The cases of the presets named by `--shapes` (or the default matrix):
/// a latency preset once per rate, `latency_rates` overriding its own.
fn select_cases(names: &[String], latency_rates: &[f64]) -> Result<Vec<Case>> {
    let mut presets: Vec<&'static Preset> = Vec::new();
    if names.is_empty() {
        presets.extend(matrix::PRESETS.iter().filter(|p| p.default));
    }
    for n in names {
        let found = matrix::select(n);
        if found.is_empty() {
            bail!(
                "no shape preset {n:?}; known (and `latency` for all latency presets):\n{}",
                matrix::listing()
            );
        }
        presets.extend(found);
    }
    if latency_rates.iter().any(|r| !r.is_finite() || *r <= 0.0) {
        bail!("--latency-rates must be positive");
    }
    let mut cases = Vec::new();
    for preset in presets {
        if preset.rates.is_empty() {
            cases.push(Case {
                preset,
                name: preset.name.to_string(),
                rate: None,
            });
            continue;
        }
        let rates = if latency_rates.is_empty() {
            preset.rates
        } else {
            latency_rates
        };
        for &r in rates {
            cases.push(Case {
                preset,
                name: format!("{}@{}", preset.name, matrix::rate_label(r)),
                rate: Some(r),
            });
        }
    }
    Ok(cases)
}

/// Everything fixed for the whole comparison: servers, pinning, repetitions.
struct Setup {
    specs: Vec<ServerSpec>,
    server_cpus: Vec<usize>,
    client_cpu_count: usize,
    client_threads: usize,
    ringcast_threads: usize,
    repeat: usize,
    duration: f64,
    log_dir: PathBuf,
    remove_logs: bool,
}

impl Setup {
    /// Finds the binaries (before spending time on anything else), pins this
    /// process, and creates the log directory.
    fn prepare(a: &CompareArgs) -> Result<Setup> {
        if a.servers.is_empty() {
            bail!("--servers is empty");
        }
        let mut bins = Vec::new();
        for &k in &a.servers {
            bins.push(match k {
                ServerKind::Ringcast => find_ringcast(&a.ringcast_bin)?,
                ServerKind::Redis => find_redis(&a.redis_bin)?,
            });
        }
        // Servers get --server-cpus or whatever we had before pinning ourselves.
        let server_cpus = match &a.server_cpus {
            Some(s) => sys::parse_cpu_list(s)?,
            None => sys::current_affinity(),
        };
        if let Some(c) = &a.client_cpus {
            sys::set_affinity(0, &sys::parse_cpu_list(c)?).context("pinning the client")?;
        }
        let client_cpu_count = sys::current_affinity().len().max(1);
        let ringcast_threads = a.ringcast_threads.unwrap_or(server_cpus.len()).max(1);
        let (log_dir, remove_logs) = match &a.log_dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!("ringcast-bench-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&log_dir)?;
        let specs = a
            .servers
            .iter()
            .zip(bins)
            .map(|(&kind, bin)| ServerSpec {
                kind,
                bin,
                cpus: server_cpus.clone(),
                ringcast_threads,
                io_backend: a.io_backend.clone(),
                log_dir: log_dir.clone(),
            })
            .collect();
        Ok(Setup {
            specs,
            server_cpus,
            client_cpu_count,
            client_threads: a.client_threads.unwrap_or(client_cpu_count).max(1),
            ringcast_threads,
            repeat: a.repeat.unwrap_or(if a.quick { 1 } else { 3 }).max(1),
            duration: a.duration.unwrap_or(if a.quick { 1.5 } else { 5.0 }),
            log_dir,
            remove_logs,
        })
    }

    fn banner(&self, shapes: usize, a: &CompareArgs) -> String {
        format!(
            "compare: {shapes} shapes x {} servers x {} runs of {} s; servers on CPUs {:?}{}; ringcast threads {}",
            self.specs.len(),
            self.repeat,
            self.duration,
            self.server_cpus,
            a.client_cpus
                .as_ref()
                .map(|c| format!(", client on CPUs {c}"))
                .unwrap_or_default(),
            self.ringcast_threads
        )
    }

    /// Removes the server logs when every run passed and they were temporary.
    fn finish_logs(&self, all_passed: bool, quiet: bool) {
        if self.remove_logs && all_passed {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        } else if !all_passed && !quiet {
            eprintln!("server logs kept in {}", self.log_dir.display());
        }
    }
}

/// The `[done/total]` counter of the progress lines.
struct Progress {
    done: usize,
    total: usize,
    quiet: bool,
}

/// Every run of one shape: `repeat` rounds over the servers, alternating
/// which goes first so drift (thermal, neighbours) hits both alike.
fn run_shape(case: &Case, setup: &Setup, a: &CompareArgs, progress: &mut Progress) -> ShapeResult {
    let mut workload = Workload::defaults();
    case.preset.apply(&mut workload, a.quick);
    if case.rate.is_some() {
        workload.rate = case.rate;
    }
    workload.duration = setup.duration;
    let mut cells: Vec<Cell> = setup
        .specs
        .iter()
        .map(|s| Cell {
            server: s.kind,
            runs: Vec::new(),
            failures: Vec::new(),
        })
        .collect();
    for rep in 0..setup.repeat {
        let mut order: Vec<usize> = (0..setup.specs.len()).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            progress.done += 1;
            let spec = &setup.specs[i];
            let outcome = run_one(spec, &workload, a, setup, case.preset.min_workers);
            if !progress.quiet {
                eprintln!(
                    "[{}/{}] {:<15} {:<9} run {}/{}  {}",
                    progress.done,
                    progress.total,
                    case.name,
                    spec.kind.name(),
                    rep + 1,
                    setup.repeat,
                    outcome_line(&outcome)
                );
            }
            cells[i].record(rep, outcome);
        }
    }
    ShapeResult {
        shape: case.name.clone(),
        about: case.preset.about,
        ringcast_threads: setup.ringcast_threads.max(case.preset.min_workers),
        cells,
    }
}

fn outcome_line(outcome: &Result<RunReport>) -> String {
    match outcome {
        Ok(r) if r.passed() => format!("ok  {}", summary(r)),
        Ok(r) => format!("FAILED verification: {}", r.violations.join("; ")),
        Err(e) => format!("ERROR: {e:#}"),
    }
}

impl Cell {
    /// Keeps a run (passed or not) and notes why it failed, if it did.
    fn record(&mut self, rep: usize, outcome: Result<RunReport>) {
        match outcome {
            Ok(r) => {
                if !r.passed() {
                    self.failures
                        .push(format!("run {}: {}", rep + 1, r.violations.join("; ")));
                }
                self.runs.push(r);
            }
            Err(e) => self.failures.push(format!("run {}: {e:#}", rep + 1)),
        }
    }
}

fn print_json(setup: &Setup, a: &CompareArgs, results: &[ShapeResult]) -> Result<()> {
    #[derive(Serialize)]
    struct Out<'a> {
        machine: Machine,
        command: String,
        server_cpus: &'a [usize],
        client_cpus: &'a Option<String>,
        ringcast_threads: usize,
        repeat: usize,
        duration_s: f64,
        medians: Vec<serde_json::Value>,
        shapes: &'a [ShapeResult],
    }
    let out = Out {
        machine: machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        server_cpus: &setup.server_cpus,
        client_cpus: &a.client_cpus,
        ringcast_threads: setup.ringcast_threads,
        repeat: setup.repeat,
        duration_s: setup.duration,
        medians: medians_json(results),
        shapes: results,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_table(setup: &Setup, a: &CompareArgs, results: &[ShapeResult], took: Duration) {
    let m = machine();
    println!(
        "machine: {} CPUs, {}, kernel {}; servers on CPUs {:?}{}; ringcast threads {}; RESP{}",
        m.nproc,
        m.cpu_model,
        m.kernel,
        setup.server_cpus,
        a.client_cpus
            .as_ref()
            .map(|c| format!(", client on CPUs {c}"))
            .unwrap_or_else(|| ", client unpinned".into()),
        setup.ringcast_threads,
        a.resp
    );
    println!(
        "medians of {} run(s) of {} s each, servers restarted for every run; total {:.0} s",
        setup.repeat,
        setup.duration,
        took.as_secs_f64()
    );
    print!("{}", table(&setup.specs, results));
    for r in results {
        if r.ringcast_threads != setup.ringcast_threads {
            println!(
                "note: {} ran ringcast with {} threads (on CPUs {:?})",
                r.shape, r.ringcast_threads, setup.server_cpus
            );
        }
    }
    let busy = client_limited(results, setup.client_cpu_count);
    if !busy.is_empty() {
        println!(
            "note: the load generator kept >= 90% of its {} CPU(s) busy in: {}; \
             msg/s and latency there may reflect the tool (server CPU ns/msg is still valid)",
            setup.client_cpu_count,
            busy.join(", ")
        );
    }
    for r in results {
        for c in &r.cells {
            for f in &c.failures {
                println!("FAILED {} on {}: {f}", r.shape, c.server.name());
            }
        }
    }
}

/// One run on a freshly started server (ringcast with at least
/// `min_workers` threads).
fn run_one(
    spec: &ServerSpec,
    workload: &Workload,
    a: &CompareArgs,
    setup: &Setup,
    min_workers: usize,
) -> Result<RunReport> {
    let mut spec = spec.clone();
    spec.ringcast_threads = spec.ringcast_threads.max(min_workers);
    let server = ServerProc::start(&spec)?;
    let opts = RunOptions {
        target: Target {
            host: "127.0.0.1".into(),
            port: server.port,
            password: None,
            resp3: a.resp == 3,
        },
        workload: workload.clone(),
        client_threads: setup.client_threads,
        server_pid: Some(server.pid()),
        read_buf: a.read_buffer_kib.max(1) * 1024,
        progress: false,
        label: spec.kind.name().into(),
        drop_every: 0,
        coalesce: Duration::from_micros(a.coalesce_us),
        drain_timeout: Duration::from_secs(5),
        spin: Duration::from_micros(a.spin_us),
        floor: !a.no_floor,
        floor_cpus: setup.server_cpus.clone(),
        floor_spin: a.floor_spin,
        ping_count: 5000,
    };
    let r = run::run(&opts);
    drop(server);
    r
}

fn summary(r: &RunReport) -> String {
    if let Some(m) = &r.memory {
        return format!("{:.0} B/conn", m.bytes_per_connection);
    }
    if let (Some(p), Some(l)) = (&r.probe, &r.latency) {
        let floor = p.floor.as_ref().map(|f| format!("{:.1}", f.p50_us));
        return format!(
            "p50 {:.1} us  p99 {:.1} us  (floor p50 {} us)",
            l.p50_us,
            l.p99_us,
            floor.unwrap_or_else(|| "-".into())
        );
    }
    let mut s = format!("{} msg/s", thousands(r.delivered_rate));
    if let Some(ns) = r.server_cpu_ns_per_msg {
        s.push_str(&format!("  {ns:.0} ns/msg"));
    }
    if let Some(c) = &r.churn {
        s.push_str(&format!("  churn {} ops/s", thousands(c.ops_per_sec)));
    }
    s
}

fn cell_median(c: &Cell, m: &Metric) -> Option<f64> {
    median(
        c.runs
            .iter()
            .filter(|r| r.passed())
            .filter_map(m.get)
            .collect(),
    )
}

/// The comparison table: one row per (shape, metric).
fn table(specs: &[ServerSpec], results: &[ShapeResult]) -> String {
    let ratio = specs.len() == 2;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["shape".to_string(), "metric".to_string()];
    head.extend(specs.iter().map(|s| s.kind.name().to_string()));
    if ratio {
        head.push(format!("{}/{}", specs[0].kind.name(), specs[1].kind.name()));
        head.push("better".into());
    }
    rows.push(head);
    for r in results {
        for (i, m) in r.metrics().iter().enumerate() {
            let label = if i == 0 { r.shape.as_str() } else { "" };
            let mut row = vec![label.to_string(), m.name.to_string()];
            let vals: Vec<Option<f64>> = r.cells.iter().map(|c| cell_median(c, m)).collect();
            for (c, v) in r.cells.iter().zip(&vals) {
                row.push(match v {
                    Some(v) => (m.fmt)(*v),
                    None if !c.failures.is_empty() => "FAIL".into(),
                    None => "-".into(),
                });
            }
            if ratio {
                row.extend(ratio_cells(specs, m, vals[0], vals[1]));
            }
            rows.push(row);
        }
    }
    render(&rows)
}

/// "x/y" and which server is better by that metric (within 2% is "same");
/// none for a negative figure (a latency above the floor can dip below it).
fn ratio_cells(specs: &[ServerSpec], m: &Metric, x: Option<f64>, y: Option<f64>) -> [String; 2] {
    match (x, y) {
        (Some(x), Some(y)) if x >= 0.0 && y > 0.0 => {
            let q = x / y;
            let first_better = if m.higher_is_better { q > 1.0 } else { q < 1.0 };
            let better = if (q - 1.0).abs() < 0.02 {
                "same"
            } else if first_better {
                specs[0].kind.name()
            } else {
                specs[1].kind.name()
            };
            [format!("{q:.2}x"), better.into()]
        }
        _ => ["-".into(), String::new()],
    }
}

/// Aligned columns: the first two left-aligned, the figures right-aligned,
/// a rule under the header row.
fn render(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i < 2 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out
}

/// "shape (server)" for every passed run whose client CPU use was near the
/// CPUs it had: there the load generator may have set the pace.
fn client_limited(results: &[ShapeResult], cpus: usize) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        for c in &r.cells {
            if c.runs
                .iter()
                .any(|x| x.passed() && x.client_cpu_cores >= 0.9 * cpus as f64)
            {
                out.push(format!("{} ({})", r.shape, c.server.name()));
            }
        }
    }
    out
}

fn medians_json(results: &[ShapeResult]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for r in results {
        for c in &r.cells {
            let mut obj = serde_json::Map::new();
            obj.insert("shape".into(), r.shape.clone().into());
            obj.insert("server".into(), c.server.name().into());
            obj.insert("passed".into(), c.failures.is_empty().into());
            for m in r.metrics() {
                obj.insert(
                    m.name.into(),
                    cell_median(c, &m)
                        .map(serde_json::Value::from)
                        .unwrap_or_default(),
                );
            }
            out.push(serde_json::Value::Object(obj));
        }
    }
    out
}

fn plot_shape(dir: &Path, name: &str, cells: &[Cell]) -> Result<()> {
    let series: Vec<(String, hdrhistogram::Histogram<u64>)> = cells
        .iter()
        .filter_map(|c| {
            // The run with the median p99 represents the server.
            let mut runs: Vec<&RunReport> = c
                .runs
                .iter()
                .filter(|r| r.histogram.as_ref().is_some_and(|h| !h.is_empty()))
                .collect();
            runs.sort_by(|a, b| {
                let p = |r: &RunReport| r.latency.as_ref().map(|l| l.p99_us).unwrap_or(0.0);
                p(a).total_cmp(&p(b))
            });
            let r = runs.get(runs.len() / 2)?;
            Some((c.server.name().to_string(), r.histogram.clone()?))
        })
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    crate::plot::latency_svg(&dir.join(format!("{name}.svg")), &series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn missing_redis_binary_explains_how_to_install() {
        let e = find_redis_in(&None, Some("/nonexistent-dir".into())).unwrap_err();
        assert!(e.to_string().contains("apt-get install -y redis-server"));
        let e = find_redis(&Some(PathBuf::from("/nonexistent/redis-server"))).unwrap_err();
        assert!(e.to_string().contains("no such file"));
    }

    #[test]
    fn missing_ringcast_binary_says_how_to_build_it() {
        let e = find_ringcast(&Some(PathBuf::from("/nonexistent/ringcast"))).unwrap_err();
        assert!(
            e.to_string()
                .contains("cargo build --release -p ringcast-server")
        );
    }
}
