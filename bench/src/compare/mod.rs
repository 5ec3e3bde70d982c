//! `compare`: starts ringcast and a real redis-server on free loopback ports,
//! runs the shape matrix against each — alternating which goes first,
//! repeated, each run on a freshly started server — and prints one table of
//! medians with the ratio ringcast / redis.
//!
//! A fresh server per run keeps runs independent (the churn and memory shapes
//! leave large state behind) and costs well under a second. Every column
//! of the table is a `Contender`: a server, and how the tool talks to it
//! (TLS, an ACL user with `--acl-patterns`).

mod acl;
mod running;
mod table;

pub use crate::servers::{
    ServerKind, ServerProc, ServerSpec, ServerTls, find_nats, find_redis, find_ringcast,
};
pub use table::median;

use crate::conn::{Proto, Target};
use crate::matrix::{self, Preset};
use crate::plan::{Shape, Workload};
use crate::report::thousands;
use crate::run::{self, RunOptions, RunReport};
use crate::sys;
use crate::tls::{TlsArgs, TlsClient};
use acl::AclUser;
use anyhow::{Context, Result, bail};
use clap::Args;
use running::Running;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// ringcast binary [default: $RINGCAST_BIN, else `ringcast` next to this
    /// binary, else target/release/ringcast of the workspace].
    #[arg(long)]
    pub ringcast_bin: Option<PathBuf>,
    /// redis-server binary [default: `redis-server` on PATH].
    #[arg(long)]
    pub redis_bin: Option<PathBuf>,
    /// nats-server binary [default: `nats-server` on PATH or in /usr/sbin].
    #[arg(long)]
    pub nats_bin: Option<PathBuf>,
    /// Servers to start and compare, comma separated: ringcast, redis,
    /// nats (NATS core protocol; shapes without an equivalent are skipped),
    /// or none (only --target servers).
    #[arg(long, value_delimiter = ',', default_value = "ringcast,redis")]
    pub servers: Vec<String>,
    /// A server that is already running, as one more column (repeatable):
    /// `NAME=HOST:PORT`, optionally followed by `,pid=N` (to read its CPU
    /// when INFO does not lead to it), `,tls` (with the --cacert/--cert/--key
    /// /--sni/--insecure flags), `,user=U,password=P`, `,nats` (a NATS
    /// server). It is not restarted
    /// between runs; without a known local pid its CPU and RSS read n/a.
    #[arg(long = "target", value_name = "NAME=HOST:PORT")]
    pub targets: Vec<String>,
    /// Presets to run, comma separated [default: the whole matrix; see `ringcast-bench shapes`].
    #[arg(long, value_delimiter = ',')]
    pub shapes: Vec<String>,
    /// Short runs, smaller churn and memory setups, one repetition.
    #[arg(long)]
    pub quick: bool,
    /// Runs per (shape, server); the table shows medians [default: 3, quick: 1].
    #[arg(long)]
    pub repeat: Option<usize>,
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
    /// A ringcast parameter for the servers this starts, `name=value`
    /// (repeatable; e.g. `migrate-connections=no`).
    #[arg(long = "ringcast-set", value_name = "NAME=VALUE")]
    pub ringcast_set: Vec<String>,
    /// Protocol version for every connection: 2 or 3.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub resp: u8,
    /// Subscriber event-loop threads [default: CPUs this process may use].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Read buffer per connection, KiB.
    #[arg(long, default_value_t = 64)]
    pub read_buffer_kib: usize,
    /// Fix each subscriber socket's kernel receive buffer at this many KiB;
    /// see `run --help` [default: autotuned]
    #[arg(long)]
    pub recv_buffer_kib: Option<usize>,
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
    /// Write each column's latency histogram per shape into this directory
    /// as HdrHistogram percentile text (`<shape>-<column>.hgrm`, µs; the
    /// run with the median p99; `-floor.hgrm` for a probe's floor).
    #[arg(long)]
    pub hgrm_dir: Option<PathBuf>,
    /// Append every run's results to this CSV file, one row per run with
    /// its shape, column and repetition (the medians are in --json).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Append every run's per-second time series to this CSV file (one
    /// row per second, with the shape, column and run it belongs to).
    #[arg(long, value_name = "FILE")]
    pub timeseries: Option<PathBuf>,
    /// Keep server logs in this directory [default: a temporary directory, removed at the end].
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// With --tls: the certificate chain (PEM) the started servers present
    /// [default: a throwaway CA and certificate made for the comparison].
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// With --tls: the private key (PEM) of --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// With --tls: the started servers require a client certificate
    /// (--cert/--key, else a throwaway one signed by the throwaway CA).
    #[arg(long)]
    pub tls_auth_clients: bool,
    /// Beside each server, a column `<server>+acl<N>` where every connection
    /// authenticates as an ACL user holding N channel patterns, the last of
    /// which allows the run's channels: the cost of permission checks,
    /// against the default user in the same run.
    #[arg(long, value_name = "N")]
    pub acl_patterns: Option<usize>,
    /// Workload flags: those given override every selected preset
    /// (`--duration` defaults to 5 s, quick 1.5 s).
    #[command(flatten)]
    pub workload: Workload,
    /// The workload flags given on the command line (filled in by the CLI).
    #[arg(skip)]
    pub given: Vec<String>,
}

/// One column of the table: a server, and how the tool talks to it.
#[derive(Debug, Clone)]
struct Contender {
    name: String,
    /// The column of the same server with the default user.
    base: String,
    source: Source,
    /// Every connection authenticates as this ACL user.
    acl: Option<AclUser>,
}

/// Where a column's server comes from.
#[derive(Debug, Clone)]
enum Source {
    /// Started here, freshly for every run.
    Started(ServerSpec),
    /// Already running (`--target`).
    Running(Running),
}

impl Contender {
    /// The server's pid is known for every run: its CPU and RSS can be read.
    fn pid_known(&self) -> bool {
        match &self.source {
            Source::Started(_) => true,
            Source::Running(r) => r.pid.is_some(),
        }
    }

    fn proto(&self) -> Proto {
        match &self.source {
            Source::Started(spec) => spec.kind.proto(),
            Source::Running(r) => r.target.proto,
        }
    }

    /// Why `workload` cannot run on this column, if it cannot.
    fn cannot_run(&self, workload: &Workload) -> Option<String> {
        if self.proto() == Proto::Nats
            && let Some(why) = crate::nats::unsupported(workload.shape)
        {
            return Some(why.into());
        }
        (workload.shape == Shape::Memory && !self.pid_known())
            .then(|| "the memory shape reads the server's RSS: its pid is not known here".into())
    }
}

/// All runs of one shape on one column.
#[derive(Debug, Serialize)]
struct Cell {
    server: String,
    runs: Vec<RunReport>,
    failures: Vec<String>,
    /// Why the shape was not run on this column, if it was not.
    skipped: Option<String>,
    /// The server's pid is known: its CPU and RSS can be read.
    #[serde(skip)]
    pid_known: bool,
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

/// Pairs of columns whose ratio the table shows: within each group of
/// columns that share an ACL setting, the first against each other one;
/// and each `+acl` column against the same server with the default user.
fn ratio_pairs(contenders: &[Contender]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (j, c) in contenders.iter().enumerate() {
        let first = contenders
            .iter()
            .position(|f| f.acl.is_some() == c.acl.is_some());
        if let Some(i) = first.filter(|&i| i != j) {
            pairs.push((i, j));
        }
    }
    for (i, c) in contenders.iter().enumerate() {
        if c.acl.is_none() {
            continue;
        }
        if let Some(j) = contenders
            .iter()
            .position(|b| b.acl.is_none() && b.name == c.base)
        {
            pairs.push((i, j));
        }
    }
    pairs
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
    // A --rate given for the latency presets replaces their rates.
    let latency_rates = match a.workload.rate {
        Some(r) if a.latency_rates.is_empty() && a.given.iter().any(|g| g == "rate") => vec![r],
        _ => a.latency_rates.clone(),
    };
    let mut cases = select_cases(&a.shapes, &latency_rates)?;
    let setup = Setup::prepare(&a)?;
    for case in &mut cases {
        case.workload = case_workload(case, &a, setup.duration)
            .with_context(|| format!("shape {}", case.name))?;
    }
    if !a.quiet {
        eprintln!("{}", setup.banner(cases.len(), &a));
    }
    let t_start = Instant::now();
    let mut progress = Progress {
        done: 0,
        total: cases.len() * setup.repeat * setup.contenders.len(),
        quiet: a.quiet,
    };
    let mut results = Vec::new();
    for case in &cases {
        let r = run_shape(case, &setup, &a, &mut progress);
        if let Some(dir) = &a.plot_dir {
            plot_shape(dir, &case.name, &r.cells)?;
        }
        if let Some(dir) = &a.hgrm_dir {
            hgrm_shape(dir, &case.name, &r.cells)?;
        }
        if let Some(path) = &a.csv {
            crate::csv::append_results(path, &run_ids(&r))?;
        }
        if let Some(path) = &a.timeseries {
            crate::csv::append_series(path, &run_ids(&r))?;
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
    setup.remove_acl_users();
    setup.finish_logs(all_passed, a.quiet);
    Ok(all_passed)
}

/// One row group of the table: a preset, at one rate for a latency preset.
struct Case {
    preset: &'static Preset,
    name: String,
    rate: Option<f64>,
    /// The preset's workload, with the flags given on the command line.
    workload: Workload,
}

/// A case's workload: the preset (shrunk by --quick), its rate, the run
/// duration, then every workload flag given on the command line.
fn case_workload(case: &Case, a: &CompareArgs, duration: f64) -> Result<Workload> {
    let mut w = Workload::defaults();
    case.preset.apply(&mut w, a.quick);
    if case.rate.is_some() {
        w.rate = case.rate;
    }
    w.duration = duration;
    w.override_with(&a.workload, &a.given)?;
    w.plan()?;
    Ok(w)
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
                workload: Workload::defaults(),
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
                workload: Workload::defaults(),
            });
        }
    }
    Ok(cases)
}

/// Everything fixed for the whole comparison: columns, pinning, repetitions.
struct Setup {
    contenders: Vec<Contender>,
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
    /// process, creates the log directory and, for --tls, the certificates.
    fn prepare(a: &CompareArgs) -> Result<Setup> {
        let kinds = server_kinds(&a.servers)?;
        let mut bins = Vec::new();
        for &k in &kinds {
            bins.push(match k {
                ServerKind::Ringcast => find_ringcast(&a.ringcast_bin)?,
                ServerKind::Redis => find_redis(&a.redis_bin)?,
                ServerKind::Nats => find_nats(&a.nats_bin)?,
            });
        }
        let mut running = Vec::new();
        for t in &a.targets {
            let spec = running::parse(t)?;
            let r = Running::connect(&spec, &a.tls)?;
            running.push((spec.name, r));
        }
        if kinds.is_empty() && running.is_empty() {
            bail!("nothing to compare: --servers none and no --target");
        }
        let acl = a.acl_patterns.map(AclUser::new).transpose()?;
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
        let tls = server_tls(a, &log_dir)?;
        let mut contenders: Vec<Contender> = kinds
            .iter()
            .zip(bins)
            .map(|(&kind, bin)| Contender {
                name: kind.name().to_string(),
                base: kind.name().to_string(),
                source: Source::Started(ServerSpec {
                    cpus: server_cpus.clone(),
                    ringcast_threads,
                    io_backend: a.io_backend.clone(),
                    ringcast_set: a.ringcast_set.clone(),
                    tls: tls.clone(),
                    ..ServerSpec::new(kind, bin, log_dir.clone())
                }),
                acl: None,
            })
            .collect();
        for (name, r) in running {
            if contenders.iter().any(|c| c.name == name) {
                bail!("--target {name}: a column of that name exists already");
            }
            contenders.push(Contender {
                name: name.clone(),
                base: name,
                source: Source::Running(r),
                acl: None,
            });
        }
        if let Some(user) = &acl {
            // NATS permissions are not Redis ACLs: no +acl column for it.
            let with_acl: Vec<Contender> = contenders
                .iter()
                .filter(|c| c.proto() != Proto::Nats)
                .map(|c| Contender {
                    name: user.label(&c.name),
                    acl: Some(user.clone()),
                    ..c.clone()
                })
                .collect();
            contenders.extend(with_acl);
        }
        Ok(Setup {
            contenders,
            server_cpus,
            client_cpu_count,
            client_threads: a.client_threads.unwrap_or(client_cpu_count).max(1),
            ringcast_threads,
            repeat: a.repeat.unwrap_or(if a.quick { 1 } else { 3 }).max(1),
            duration: if a.given.iter().any(|g| g == "duration") {
                a.workload.duration
            } else if a.quick {
                1.5
            } else {
                5.0
            },
            log_dir,
            remove_logs,
        })
    }

    fn banner(&self, shapes: usize, a: &CompareArgs) -> String {
        format!(
            "compare: {shapes} shapes x {} columns x {} runs of {} s; servers on CPUs {:?}{}; ringcast threads {}{}",
            self.contenders.len(),
            self.repeat,
            self.duration,
            self.server_cpus,
            a.client_cpus
                .as_ref()
                .map(|c| format!(", client on CPUs {c}"))
                .unwrap_or_default(),
            self.ringcast_threads,
            if a.tls.tls { "; TLS" } else { "" }
        )
    }

    /// Removes the ACL user from the servers that outlive the comparison.
    fn remove_acl_users(&self) {
        for c in &self.contenders {
            if let (Some(user), Source::Running(r)) = (&c.acl, &c.source)
                && let Err(e) = user.remove(&admin_of(&r.target))
            {
                eprintln!(
                    "note: removing ACL user {} from {}: {e:#}",
                    user.name, c.name
                );
            }
        }
    }

    fn columns(&self) -> Vec<String> {
        self.contenders.iter().map(|c| c.name.clone()).collect()
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

/// The workload flags given, as typed: `--subscribers 200 --payload 256`.
fn overrides_text(w: &Workload, given: &[String]) -> String {
    let mut only = Workload::defaults();
    // Flags given at their default value still show.
    let _ = only.override_with(w, given);
    let v = serde_json::to_value(&only).unwrap_or_default();
    given
        .iter()
        .map(|id| {
            let flag = format!("--{}", id.replace('_', "-"));
            match &v[id] {
                serde_json::Value::Bool(true) => flag,
                serde_json::Value::String(t) => format!("{flag} {t}"),
                other => format!("{flag} {other}"),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The servers `--servers` names to start; `none` for none.
fn server_kinds(names: &[String]) -> Result<Vec<ServerKind>> {
    let mut kinds = Vec::new();
    for n in names {
        match n.as_str() {
            "ringcast" => kinds.push(ServerKind::Ringcast),
            "redis" => kinds.push(ServerKind::Redis),
            "nats" => kinds.push(ServerKind::Nats),
            "none" | "" => {}
            other => bail!("--servers {other:?}: known are ringcast, redis, nats and none"),
        }
    }
    Ok(kinds)
}

/// The default-user side of a target: how the ACL user is managed.
fn admin_of(target: &Target) -> Target {
    Target {
        proto: if target.is_nats() {
            Proto::Nats
        } else {
            Proto::Resp2
        },
        ..target.clone()
    }
}

/// The TLS side of the started servers for --tls: the given certificate,
/// or a throwaway CA and certificates made in `dir`; and the client side
/// every connection of the tool uses.
fn server_tls(a: &CompareArgs, dir: &Path) -> Result<Option<ServerTls>> {
    let t = &a.tls;
    if !t.tls {
        // --cacert and the like may still serve a `--target ...,tls`.
        if a.tls_cert_file.is_some() || a.tls_auth_clients {
            bail!("--tls-cert-file and --tls-auth-clients need --tls");
        }
        return Ok(None);
    }
    let mut client = t.clone();
    let (cert, key, ca) = match (&a.tls_cert_file, &a.tls_key_file) {
        (Some(c), Some(k)) => {
            if t.cacert.is_none() && !t.insecure {
                bail!(
                    "--tls-cert-file: give --cacert (the CA that signed it) or --insecure, \
                     or leave both out and let compare make a throwaway CA"
                );
            }
            (c.clone(), k.clone(), t.cacert.clone())
        }
        _ => {
            let g = crate::tls::generate_certs(&dir.join("tls"))?;
            client.cacert.get_or_insert(g.ca.clone());
            if a.tls_auth_clients && client.cert.is_none() {
                client.cert = Some(g.client_cert);
                client.key = Some(g.client_key);
            }
            (g.server_cert, g.server_key, Some(g.ca))
        }
    };
    if a.tls_auth_clients && (client.cert.is_none() || ca.is_none()) {
        bail!(
            "--tls-auth-clients needs --cert and --key, and --cacert for the servers to check them"
        );
    }
    Ok(Some(ServerTls {
        cert,
        key,
        ca,
        auth_clients: a.tls_auth_clients,
        client: Arc::new(TlsClient::new(&client, "127.0.0.1")?),
    }))
}

/// The `[done/total]` counter of the progress lines.
struct Progress {
    done: usize,
    total: usize,
    quiet: bool,
}

/// Every run of one shape: `repeat` rounds over the columns, alternating
/// which goes first so drift (thermal, neighbours) hits all alike.
fn run_shape(case: &Case, setup: &Setup, a: &CompareArgs, progress: &mut Progress) -> ShapeResult {
    let workload = &case.workload;
    let mut cells: Vec<Cell> = setup
        .contenders
        .iter()
        .map(|c| Cell {
            server: c.name.clone(),
            runs: Vec::new(),
            failures: Vec::new(),
            skipped: c.cannot_run(workload),
            pid_known: c.pid_known(),
        })
        .collect();
    let width = setup
        .contenders
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for rep in 0..setup.repeat {
        let mut order: Vec<usize> = (0..setup.contenders.len()).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            progress.done += 1;
            let contender = &setup.contenders[i];
            if cells[i].skipped.is_some() {
                continue;
            }
            let outcome = run_one(contender, workload, a, setup, case.preset.min_workers);
            if !progress.quiet {
                eprintln!(
                    "[{}/{}] {:<15} {:<width$} run {}/{}  {}",
                    progress.done,
                    progress.total,
                    case.name,
                    contender.name,
                    rep + 1,
                    setup.repeat,
                    outcome_line(&outcome),
                    width = width
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
        overrides: String,
        tls: bool,
        acl_patterns: Option<usize>,
        columns: Vec<String>,
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
        overrides: overrides_text(&a.workload, &a.given),
        tls: a.tls.tls,
        acl_patterns: a.acl_patterns,
        columns: setup.columns(),
        medians: table::medians_json(results),
        shapes: results,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_table(setup: &Setup, a: &CompareArgs, results: &[ShapeResult], took: Duration) {
    let m = machine();
    println!(
        "machine: {} CPUs, {}, kernel {}; servers on CPUs {:?}{}; ringcast threads {}; RESP{}{}",
        m.nproc,
        m.cpu_model,
        m.kernel,
        setup.server_cpus,
        a.client_cpus
            .as_ref()
            .map(|c| format!(", client on CPUs {c}"))
            .unwrap_or_else(|| ", client unpinned".into()),
        setup.ringcast_threads,
        a.resp,
        if a.tls.tls {
            if a.tls_auth_clients {
                "; TLS with client certificates"
            } else {
                "; TLS"
            }
        } else {
            ""
        }
    );
    println!(
        "medians of {} run(s) of {} s each, servers restarted for every run; total {:.0} s",
        setup.repeat,
        setup.duration,
        took.as_secs_f64()
    );
    if !a.given.is_empty() {
        println!(
            "presets overridden by: {}",
            overrides_text(&a.workload, &a.given)
        );
    }
    if let Some(n) = a.acl_patterns {
        println!(
            "+acl{n}: every connection authenticated as an ACL user with {n} channel patterns, \
             the last one allowing the run's channels"
        );
    }
    let columns = setup.columns();
    print!(
        "{}",
        table::table(&columns, &ratio_pairs(&setup.contenders), results)
    );
    for c in setup.contenders.iter().filter(|c| c.acl.is_none()) {
        if let Source::Running(r) = &c.source {
            println!(
                "note: {} is the server already running at {}:{}, not restarted between runs{}",
                c.name,
                r.target.host,
                r.target.port,
                match r.pid {
                    Some(pid) => format!("; pid {pid}"),
                    None => "; its pid is not known here: server CPU and RSS n/a".into(),
                }
            );
        }
    }
    for r in results {
        if r.ringcast_threads != setup.ringcast_threads {
            println!(
                "note: {} ran ringcast with {} threads (on CPUs {:?})",
                r.shape, r.ringcast_threads, setup.server_cpus
            );
        }
    }
    let busy = table::client_limited(results, setup.client_cpu_count);
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
            if let Some(why) = &c.skipped {
                println!("note: {} not run on {}: {why}", r.shape, c.server);
            }
            for f in &c.failures {
                println!("FAILED {} on {}: {f}", r.shape, c.server);
            }
        }
    }
}

/// One run on a freshly started server (ringcast with at least
/// `min_workers` threads).
fn run_one(
    contender: &Contender,
    workload: &Workload,
    a: &CompareArgs,
    setup: &Setup,
    min_workers: usize,
) -> Result<RunReport> {
    // A started server lives until the run's end.
    let (server, admin, pid) = match &contender.source {
        Source::Started(spec) => {
            let mut spec = spec.clone();
            spec.ringcast_threads = spec.ringcast_threads.max(min_workers);
            let server = ServerProc::start(&spec)?;
            let (admin, pid) = (server.target(), server.pid());
            (Some(server), admin, Some(pid))
        }
        Source::Running(r) => (None, admin_of(&r.target), r.pid),
    };
    let mut target = Target {
        proto: if admin.is_nats() {
            Proto::Nats
        } else {
            Proto::resp(a.resp)
        },
        ..admin.clone()
    };
    if let Some(user) = &contender.acl {
        target = user.install(&admin, workload, target)?;
    }
    let opts = RunOptions {
        target,
        workload: workload.clone(),
        client_threads: setup.client_threads,
        server_pid: pid,
        read_buf: a.read_buffer_kib.max(1) * 1024,
        recv_buffer: a.recv_buffer_kib.unwrap_or(0) * 1024,
        progress: false,
        label: contender.name.clone(),
        drop_every: 0,
        coalesce: Duration::from_micros(a.coalesce_us),
        drain_timeout: Duration::from_secs(5),
        spin: Duration::from_micros(a.spin_us),
        floor: !a.no_floor,
        floor_cpus: setup.server_cpus.clone(),
        floor_spin: a.floor_spin,
        ping_count: 5000,
        series: a.timeseries.is_some(),
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

/// Every run of a shape with its place in the table, for the CSV files.
fn run_ids(r: &ShapeResult) -> Vec<(crate::csv::RunId<'_>, &RunReport)> {
    r.cells
        .iter()
        .flat_map(|c| {
            c.runs.iter().enumerate().map(move |(i, run)| {
                let id = crate::csv::RunId {
                    case: &r.shape,
                    column: &c.server,
                    run: i + 1,
                };
                (id, run)
            })
        })
        .collect()
}

/// The run with the median p99 among a cell's runs that have latency: the
/// one whose histogram stands for the server in plots and `.hgrm` files.
fn representative_run(c: &Cell) -> Option<&RunReport> {
    let mut runs: Vec<&RunReport> = c
        .runs
        .iter()
        .filter(|r| r.histogram.as_ref().is_some_and(|h| !h.is_empty()))
        .collect();
    runs.sort_by(|a, b| {
        let p = |r: &RunReport| r.latency.as_ref().map(|l| l.p99_us).unwrap_or(0.0);
        p(a).total_cmp(&p(b))
    });
    runs.get(runs.len() / 2).copied()
}

fn plot_shape(dir: &Path, name: &str, cells: &[Cell]) -> Result<()> {
    let series: Vec<(String, hdrhistogram::Histogram<u64>)> = cells
        .iter()
        .filter_map(|c| Some((c.server.clone(), representative_run(c)?.histogram.clone()?)))
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    crate::plot::latency_svg(&dir.join(format!("{name}.svg")), &series)
}

/// `<shape>-<column>.hgrm` for each column's representative run, and
/// `<shape>-<column>-floor.hgrm` for the floor of a latency probe.
fn hgrm_shape(dir: &Path, name: &str, cells: &[Cell]) -> Result<()> {
    for c in cells {
        let Some(r) = representative_run(c) else {
            continue;
        };
        if let Some(h) = &r.histogram {
            crate::hgrm::write(&dir.join(format!("{name}-{}.hgrm", c.server)), h)?;
        }
        if let Some(h) = r.probe.as_ref().and_then(|p| p.floor_histogram.as_ref()) {
            crate::hgrm::write(&dir.join(format!("{name}-{}-floor.hgrm", c.server)), h)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contender(kind: ServerKind, acl: Option<usize>) -> Contender {
        let acl = acl.map(|n| AclUser::new(n).unwrap());
        Contender {
            name: match &acl {
                Some(u) => u.label(kind.name()),
                None => kind.name().into(),
            },
            base: kind.name().into(),
            source: Source::Started(ServerSpec::new(kind, PathBuf::new(), PathBuf::new())),
            acl,
        }
    }

    #[test]
    fn ratios_pair_servers_within_a_user_and_each_acl_column_with_its_default() {
        let two = [
            contender(ServerKind::Ringcast, None),
            contender(ServerKind::Redis, None),
        ];
        assert_eq!(ratio_pairs(&two), [(0, 1)]);
        let four = [
            contender(ServerKind::Ringcast, None),
            contender(ServerKind::Redis, None),
            contender(ServerKind::Ringcast, Some(10)),
            contender(ServerKind::Redis, Some(10)),
        ];
        assert_eq!(four[2].name, "ringcast+acl10");
        assert_eq!(ratio_pairs(&four), [(0, 1), (2, 3), (2, 0), (3, 1)]);
    }

    #[test]
    fn the_memory_shape_is_skipped_where_the_pid_is_unknown() {
        let running = |pid| Contender {
            name: "valkey".into(),
            base: "valkey".into(),
            source: Source::Running(Running {
                target: Target::plain("10.0.0.1", 6379),
                pid,
            }),
            acl: None,
        };
        let mut w = Workload::defaults();
        assert!(running(None).cannot_run(&w).is_none());
        w.shape = Shape::Memory;
        assert!(running(None).cannot_run(&w).is_some());
        assert!(running(Some(1)).cannot_run(&w).is_none());
        assert!(!running(None).pid_known());
    }

    #[test]
    fn servers_none_starts_nothing_and_unknown_names_are_refused() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(server_kinds(&names(&["none"])).unwrap(), []);
        assert_eq!(
            server_kinds(&names(&["redis", "ringcast"])).unwrap(),
            [ServerKind::Redis, ServerKind::Ringcast]
        );
        assert!(server_kinds(&names(&["valkey"])).is_err());
    }
}
