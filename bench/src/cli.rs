//! Command-line interface: flags, subcommands, exit codes.
//!
//! Exit codes: 0 every run passed verification, 1 some run failed
//! verification (violations are printed), 2 the tool could not run.

use crate::conn::{Proto, Target};
use crate::matrix;
use crate::plan::Workload;
use crate::report;
use crate::run::{self, RunOptions, RunReport};
use crate::sys;
use crate::tls::{TlsArgs, TlsClient};
use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ringcast-bench",
    version,
    about = "Verifying pub/sub load generator for Redis-protocol servers",
    long_about = "Verifying pub/sub load generator for Redis-protocol servers.\n\n\
Every message carries publisher id, per-(publisher, channel) sequence number and send time; \
subscribers count lost, reordered, duplicate and corrupt messages, and the sum of PUBLISH \
replies must equal deliveries. Any violation fails the run (exit code 1)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One run against a running server.
    Run(Box<RunArgs>),
    /// Start ringcast and redis-server here, run the shape matrix on both, print ratios.
    Compare(Box<crate::compare::CompareArgs>),
    /// List the named shape presets.
    Shapes,
    /// What the kernel alone charges for sending pre-encoded frames to many
    /// loopback sockets from one thread (write, writev, io_uring): the floor
    /// under a server's CPU per delivery on this machine.
    KernelFloor(crate::floor::FloorArgs),
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[arg(long, short = 'H', default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, short = 'p', default_value_t = 6379)]
    pub port: u16,
    /// ACL user every connection authenticates as (needs --password):
    /// `AUTH user password`, or `HELLO 3 AUTH user password` with --resp 3.
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// AUTH password (of --user, else of the default user).
    #[arg(long, short = 'a')]
    pub password: Option<String>,
    /// Pid of the local server process, to measure its CPU (and RSS). By
    /// default taken from INFO's process_id when the server is on loopback.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Do not sample the server process at all.
    #[arg(long)]
    pub no_server_stats: bool,
    /// Speak the NATS core protocol (nats-server) instead of RESP: channels
    /// become subjects `rcb.<i>.c`, patterns wildcards `rcb.<i>.*`.
    #[arg(long)]
    pub nats: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ServerArgs {
    /// The server these flags name, speaking `proto`.
    pub fn target(&self, proto: Proto) -> Result<Target> {
        let tls = if self.tls.tls {
            Some(Arc::new(TlsClient::new(&self.tls, &self.host)?))
        } else {
            if self.tls.cacert.is_some() || self.tls.cert.is_some() || self.tls.insecure {
                bail!("--cacert, --cert, --key and --insecure need --tls");
            }
            None
        };
        Ok(Target {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            proto,
            tls,
        })
    }
}

/// How the load generator itself runs.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Protocol version: 2, or 3 (HELLO 3; messages arrive as push frames).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub resp: u8,
    /// Subscriber event-loop threads [default: CPUs this process may use].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Read buffer per connection, KiB.
    #[arg(long, default_value_t = 64)]
    pub read_buffer_kib: usize,
    /// Fix each subscriber socket's kernel receive buffer at this many KiB
    /// (turning off the kernel's autotuning for it) [default: autotuned]
    #[arg(long)]
    pub recv_buffer_kib: Option<usize>,
    /// Seconds without a new delivery after publishing stops before the missing
    /// ones are declared lost.
    #[arg(long, default_value_t = 5.0)]
    pub drain_timeout: f64,
    /// Subscriber threads pause this many µs after each busy poll round so
    /// more messages gather per read: less kernel work per message, at the
    /// price of up to this much added latency. 0 = read as soon as data arrives.
    #[arg(long, default_value_t = 0)]
    pub coalesce_us: u64,
    /// Machine-readable JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write a latency distribution plot (SVG) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Append the run's results to this CSV file, one row per run: rates,
    /// verification counts, latency percentiles, CPU (header written when new).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Append the run's per-second time series to this CSV file: published
    /// and delivered per second, latency percentiles of the messages that
    /// arrived in that second, warm-up marked (header written when new).
    #[arg(long, value_name = "FILE")]
    pub timeseries: Option<PathBuf>,
    /// Write the latency histogram to this file as HdrHistogram percentile
    /// text (`.hgrm`, µs); a probe's floor goes beside it as `<name>-floor.hgrm`.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Latency probe (--probe): sleeps end this many µs before a send time
    /// and the rest is spun, so sends leave on time despite wake-up jitter.
    #[arg(long, default_value_t = 100)]
    pub spin_us: u64,
    /// Latency probe: skip the floor (the same probe against a relay inside the tool).
    #[arg(long)]
    pub no_floor: bool,
    /// Latency probe: CPUs for the floor relay — the server's [default: the
    /// CPUs this process had minus --client-cpus, else any].
    #[arg(long)]
    pub floor_cpus: Option<String>,
    /// Latency probe: the floor relay busy-polls instead of waiting in epoll
    /// (no wake-up in the floor; only meaningful on a quiet machine).
    #[arg(long)]
    pub floor_spin: bool,
    /// Latency probe: PING round trips to time against the server (at most 2 s).
    #[arg(long, default_value_t = 5000)]
    pub ping_count: u64,
    /// Testing aid: subscribers pretend every N-th message never arrived, to
    /// show that verification catches loss.
    #[arg(long, hide = true, default_value_t = 0)]
    pub drop_every: u64,
}

impl EngineArgs {
    pub fn client_threads(&self) -> usize {
        self.client_threads
            .unwrap_or_else(|| sys::current_affinity().len())
            .max(1)
    }
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    workload: Workload,
    #[command(flatten)]
    engine: EngineArgs,
    /// Start from a named preset (see `ringcast-bench shapes`); workload
    /// flags given on the command line override its values.
    #[arg(long)]
    preset: Option<String>,
    /// The workload flags given on the command line.
    #[arg(skip)]
    given: Vec<String>,
    /// Pin this process to these CPUs (e.g. `0` or `0-1`).
    #[arg(long)]
    client_cpus: Option<String>,
}

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = |name: &str| {
        matches
            .subcommand_matches(name)
            .map(given_workload_flags)
            .unwrap_or_default()
    };
    let r = match cli.cmd {
        Cmd::Run(mut a) => {
            a.given = given("run");
            cmd_run(*a)
        }
        Cmd::Compare(mut a) => {
            a.given = given("compare");
            crate::compare::main(*a)
        }
        Cmd::KernelFloor(a) => crate::floor::main(a),
        Cmd::Shapes => {
            print!("{}", matrix::listing());
            Ok(true)
        }
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn cmd_run(mut a: RunArgs) -> Result<bool> {
    sys::raise_nofile_limit();
    let all_cpus = sys::current_affinity();
    let mut floor_cpus = Vec::new();
    if let Some(cpus) = &a.client_cpus {
        let mine = sys::parse_cpu_list(cpus)?;
        sys::set_affinity(0, &mine).context("pinning the client")?;
        floor_cpus = all_cpus.into_iter().filter(|c| !mine.contains(c)).collect();
    }
    if let Some(cpus) = &a.engine.floor_cpus {
        floor_cpus = sys::parse_cpu_list(cpus)?;
    }
    if let Some(name) = &a.preset {
        let p = matrix::find(name)
            .with_context(|| format!("no preset {name:?}; known:\n{}", matrix::listing()))?;
        // The preset, then what was given on the command line over it.
        let mut w = Workload::defaults();
        p.apply(&mut w, false);
        w.override_with(&a.workload, &a.given)?;
        a.workload = w;
    }
    let proto = match (a.server.nats, a.engine.resp) {
        (false, v) => Proto::resp(v),
        (true, 2) => Proto::Nats,
        (true, _) => bail!("--nats speaks NATS, not RESP3: leave out --resp"),
    };
    let target = a.server.target(proto)?;
    let server_pid = if a.server.no_server_stats {
        None
    } else {
        a.server.server_pid.or_else(|| target.local_server_pid())
    };
    if let Some(pid) = a.server.server_pid
        && !sys::pid_alive(pid)
    {
        bail!("--server-pid {pid}: no such process");
    }
    let opts = RunOptions {
        label: format!("{}:{}", a.server.host, a.server.port),
        target,
        workload: a.workload.clone(),
        client_threads: a.engine.client_threads(),
        server_pid,
        read_buf: a.engine.read_buffer_kib.max(1) * 1024,
        recv_buffer: a.engine.recv_buffer_kib.unwrap_or(0) * 1024,
        progress: !a.engine.quiet,
        drop_every: a.engine.drop_every,
        coalesce: Duration::from_micros(a.engine.coalesce_us),
        drain_timeout: Duration::from_secs_f64(a.engine.drain_timeout.max(0.05)),
        spin: Duration::from_micros(a.engine.spin_us),
        floor: !a.engine.no_floor,
        floor_cpus,
        floor_spin: a.engine.floor_spin,
        ping_count: a.engine.ping_count,
        series: a.engine.timeseries.is_some(),
    };
    let report = run::run(&opts)?;
    emit(&report, &a.engine)?;
    Ok(report.passed())
}

fn emit(r: &RunReport, e: &EngineArgs) -> Result<()> {
    if e.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        print!("{}", report::human(r));
    }
    let case = case_name(r);
    let id = crate::csv::RunId {
        case: &case,
        column: &r.server,
        run: 1,
    };
    if let Some(path) = &e.csv {
        crate::csv::append_results(path, &[(id.clone(), r)])?;
    }
    if let Some(path) = &e.timeseries {
        crate::csv::append_series(path, &[(id, r)])?;
    }
    if let (Some(path), Some(h)) = (&e.hgrm, &r.histogram) {
        crate::hgrm::write(path, h)?;
        if let Some(floor) = r.probe.as_ref().and_then(|p| p.floor_histogram.as_ref()) {
            crate::hgrm::write(&floor_path(path), floor)?;
        }
    }
    if let (Some(path), Some(h)) = (&e.plot, &r.histogram) {
        crate::plot::latency_svg(path, &[(r.server.clone(), h.clone())])?;
        if !e.quiet {
            eprintln!("latency plot written to {}", path.display());
        }
    }
    Ok(())
}

/// The workload flags given on the command line (not defaults), by id.
fn given_workload_flags(m: &clap::ArgMatches) -> Vec<String> {
    Workload::flag_ids()
        .into_iter()
        .filter(|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .collect()
}

/// The row group of a single run in CSV files: its shape.
fn case_name(r: &RunReport) -> String {
    serde_json::to_value(r.shape)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `dir/name.hgrm` → `dir/name-floor.hgrm`.
fn floor_path(p: &std::path::Path) -> PathBuf {
    let stem = p.file_stem().unwrap_or_default().to_string_lossy();
    let ext = p
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    p.with_file_name(format!("{stem}-floor{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_histogram_goes_beside_the_servers() {
        assert_eq!(
            floor_path(std::path::Path::new("out/x.hgrm")),
            PathBuf::from("out/x-floor.hgrm")
        );
        assert_eq!(
            floor_path(std::path::Path::new("x")),
            PathBuf::from("x-floor")
        );
    }
}
