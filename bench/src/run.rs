//! One benchmark run against one server: set every connection up, open the
//! start gate, publish, drain, verify, and measure.
//!
//! Measurement window: from the gate opening until every promised delivery
//! has arrived (or the drain timeout). Server CPU is sampled at both ends of
//! that window, so "server CPU ns per delivered message" covers exactly the
//! work of the run.

use crate::churn::{self, ChurnReport};
use crate::conn::{self, Naming, ReadBuf, Target};
use crate::plan::{Plan, Shape, Workload};
use crate::probe::ProbeReport;
use crate::publisher::{self, PubConfig, PubOutcome};
use crate::shared::Shared;
use crate::subscriber::{self, SubConfig, SubSpec, ThreadOutcome, new_histogram};
use crate::sys;
use crate::verify::{Counts, SubscriberCheck};
use anyhow::{Context, Result, anyhow};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a run is executed (as opposed to what traffic it generates).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: Target,
    pub workload: Workload,
    /// Subscriber event-loop threads.
    pub client_threads: usize,
    /// Local server process to sample for CPU and RSS.
    pub server_pid: Option<u32>,
    /// Per-connection read buffer, bytes.
    pub read_buf: usize,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Name of the server in reports.
    pub label: String,
    /// Fault injection: subscribers ignore every n-th message (0 = off).
    pub drop_every: u64,
    /// Subscriber pause after each busy poll round (0 = none).
    pub coalesce: Duration,
    /// Give up waiting for promised deliveries after this long without progress.
    pub drain_timeout: Duration,
    /// Latency probe: sleeps end this long before a send time; the rest is spun.
    pub spin: Duration,
    /// Latency probe: also measure the tool's floor against its own relay.
    pub floor: bool,
    /// Latency probe: CPUs for the floor relay (the server's); empty = any.
    pub floor_cpus: Vec<usize>,
    /// Latency probe: the floor relay busy-polls instead of waiting in epoll.
    pub floor_spin: bool,
    /// Latency probe: PING round trips to time against the target.
    pub ping_count: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            p9999_us: us(h.value_at_quantile(0.9999)),
            max_us: us(h.max()),
        })
    }
}

/// Memory shape results.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub connections: u32,
    pub rss_before: u64,
    pub rss_after: u64,
    pub bytes_per_connection: f64,
}

/// Everything one run measured and verified.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub server: String,
    pub shape: Shape,
    pub resp: u8,
    pub loop_kind: &'static str,
    pub target_rate: Option<f64>,
    pub publishers: usize,
    pub subscribers: usize,
    pub channels: u32,
    pub payload: usize,
    pub window: usize,
    pub noise_patterns: u32,
    pub elapsed_s: f64,
    pub published: u64,
    pub publish_rate: f64,
    pub promised: u64,
    pub delivered: u64,
    pub delivered_rate: f64,
    pub payload_bytes_rate: f64,
    pub verify: Counts,
    pub publish_errors: u64,
    pub latency: Option<Latency>,
    pub server_cpu_ns_per_msg: Option<f64>,
    pub server_cpu_cores: Option<f64>,
    pub client_cpu_cores: f64,
    /// This tool's own CPU per delivered message: when it is well below the
    /// server's on an equal core, the tool was not the limit.
    pub client_cpu_ns_per_msg: Option<f64>,
    pub churn: Option<ChurnReport>,
    pub memory: Option<MemoryReport>,
    /// Latency probe figures: the floor, half a PING, placement.
    pub probe: Option<ProbeReport>,
    /// Every way the run failed verification; empty means it passed.
    pub violations: Vec<String>,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

impl RunReport {
    /// A report with the run's settings and no results yet.
    pub(crate) fn empty(opts: &RunOptions) -> RunReport {
        let w = &opts.workload;
        RunReport {
            server: opts.label.clone(),
            shape: w.shape,
            resp: if opts.target.resp3 { 3 } else { 2 },
            loop_kind: if w.rate.is_some() { "open" } else { "closed" },
            target_rate: w.rate,
            publishers: 0,
            subscribers: 0,
            channels: 0,
            payload: w.payload,
            window: w.window,
            noise_patterns: w.noise_patterns,
            elapsed_s: 0.0,
            published: 0,
            publish_rate: 0.0,
            promised: 0,
            delivered: 0,
            delivered_rate: 0.0,
            payload_bytes_rate: 0.0,
            verify: Counts::default(),
            publish_errors: 0,
            latency: None,
            server_cpu_ns_per_msg: None,
            server_cpu_cores: None,
            client_cpu_cores: 0.0,
            client_cpu_ns_per_msg: None,
            churn: None,
            memory: None,
            probe: None,
            violations: Vec::new(),
            histogram: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one workload against one server.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    match opts.workload.shape {
        Shape::Memory => run_memory(opts),
        _ if opts.workload.probe => crate::probe::run(opts),
        _ => run_pubsub(opts),
    }
}

/// Idle connections that hold subscriptions for the whole run (noise
/// patterns, churn's pre-existing channels). They never receive messages.
struct Holders {
    _conns: Vec<TcpStream>,
}

/// Subscribes `names` over connections of at most `per_conn` names each,
/// reading confirmations as it goes so no output buffer grows large.
fn hold(target: &Target, verb: &[u8], names: &[Vec<u8>], per_conn: usize) -> Result<Holders> {
    let mut conns = Vec::new();
    for group in names.chunks(per_conn.max(1)) {
        let mut rb = ReadBuf::new(256 * 1024);
        let mut s = target.open(&mut rb)?;
        let mut cmd = Vec::new();
        // Keep a few commands in flight: enough to overlap, bounded in memory.
        for window in group.chunks(conn::NAMES_PER_COMMAND * 8) {
            cmd.clear();
            conn::write_subscribe(&mut cmd, verb, window);
            s.write_all(&cmd)?;
            conn::read_confirmations(&mut s, &mut rb, window.len())?;
        }
        conns.push(s);
    }
    Ok(Holders { _conns: conns })
}

/// Subscriptions that only add server state (noise patterns, churn's
/// pre-existing channels), held before anything starts.
fn hold_background_state(opts: &RunOptions) -> Result<Vec<Holders>> {
    let w = &opts.workload;
    let mut holders = Vec::new();
    if w.noise_patterns > 0 {
        let names: Vec<Vec<u8>> = (0..w.noise_patterns)
            .map(|k| format!("{}x:{k}:*", w.prefix).into_bytes())
            .collect();
        holders.push(hold(&opts.target, b"PSUBSCRIBE", &names, 100_000).context("noise patterns")?);
    }
    if w.shape == Shape::Churn && w.held_channels > 0 {
        let t = Instant::now();
        let names: Vec<Vec<u8>> = (0..w.held_channels)
            .map(|k| format!("{}h:{k}", w.prefix).into_bytes())
            .collect();
        holders.push(hold(&opts.target, b"SUBSCRIBE", &names, 100_000).context("held channels")?);
        if opts.progress {
            eprintln!(
                "[{}] {} channels held after {:.1}s",
                opts.label,
                w.held_channels,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(holders)
}

/// Every thread of a run: subscriber event loops, publishers, the churner.
struct Workers {
    subs: Vec<JoinHandle<Result<ThreadOutcome>>>,
    pubs: Vec<JoinHandle<Result<PubOutcome>>>,
    churn: Option<JoinHandle<Result<ChurnReport>>>,
    /// Setup results, one per thread.
    ready: mpsc::Receiver<Result<()>>,
}

impl Workers {
    /// Starts every thread; each sets up its connections and reports on `ready`.
    fn spawn(opts: &RunOptions, plan: &Plan, shared: &Arc<Shared>) -> Workers {
        let (ready_tx, ready) = mpsc::channel();
        let subs = spawn_subscribers(opts, plan, shared, &ready_tx);
        let pubs = spawn_publishers(opts, plan, shared, &ready_tx);
        let w = &opts.workload;
        let churn = (w.shape == Shape::Churn).then(|| {
            churn::spawn(
                opts.target.clone(),
                w.prefix.clone(),
                w.churn_window,
                Duration::from_secs_f64(w.duration),
                shared.clone(),
                ready_tx.clone(),
            )
        });
        Workers {
            subs,
            pubs,
            churn,
            ready,
        }
    }

    fn count(&self) -> usize {
        self.subs.len() + self.pubs.len() + usize::from(self.churn.is_some())
    }

    /// Waits until every thread has set up; on any failure, stops them all
    /// and returns the first error.
    fn await_setup(self, shared: &Shared) -> Result<Workers> {
        let mut setup_error = None;
        for _ in 0..self.count() {
            match self.ready.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    setup_error.get_or_insert(e);
                }
                Err(_) => {
                    setup_error.get_or_insert(anyhow!("a worker thread died during setup"));
                    break;
                }
            }
        }
        let Some(e) = setup_error else {
            return Ok(self);
        };
        shared.gate.decide(false);
        shared.stop.store(true, Ordering::Relaxed);
        for h in self.subs {
            let _ = h.join();
        }
        for h in self.pubs {
            let _ = h.join();
        }
        if let Some(h) = self.churn {
            let _ = h.join();
        }
        Err(e.context("setting up connections"))
    }
}

/// Subscriber connections, dealt round-robin to the event-loop threads.
fn spawn_subscribers(
    opts: &RunOptions,
    plan: &Plan,
    shared: &Arc<Shared>,
    ready: &mpsc::Sender<Result<()>>,
) -> Vec<JoinHandle<Result<ThreadOutcome>>> {
    let w = &opts.workload;
    let naming = Naming {
        prefix: w.prefix.clone(),
    };
    let by_channel = plan.publishers_by_channel();
    let cfg = Arc::new(SubConfig {
        kind: plan.kind,
        naming: naming.clone(),
        check_padding: !w.no_check_padding,
        read_buf: opts.read_buf,
        drop_every: opts.drop_every,
        coalesce: opts.coalesce,
        head: crate::resp::message_head(opts.target.resp3, plan.kind.message_kind()),
    });
    let threads = opts.client_threads.clamp(1, plan.subscribers.len().max(1));
    let mut per_thread: Vec<Vec<SubSpec>> = vec![Vec::new(); threads];
    for (i, chans) in plan.subscribers.iter().enumerate() {
        per_thread[i % threads].push(SubSpec {
            index: i,
            names: plan.subscription_names(&naming, chans),
            expected: plan.expected_streams(i, &by_channel),
        });
    }
    per_thread
        .into_iter()
        .map(|specs| {
            subscriber::spawn(
                specs,
                opts.target.clone(),
                cfg.clone(),
                shared.clone(),
                ready.clone(),
            )
        })
        .collect()
}

/// One thread per publisher connection.
fn spawn_publishers(
    opts: &RunOptions,
    plan: &Plan,
    shared: &Arc<Shared>,
    ready: &mpsc::Sender<Result<()>>,
) -> Vec<JoinHandle<Result<PubOutcome>>> {
    let w = &opts.workload;
    let per_pub_rate = w.rate.map(|r| r / plan.publishers.len() as f64);
    let max_backlog =
        ((w.max_backlog_mib * 1024.0 * 1024.0) / (w.payload as f64 + 64.0)).max(1.0) as u64;
    plan.publishers
        .iter()
        .enumerate()
        .map(|(i, chans)| {
            let cfg = Arc::new(PubConfig {
                kind: plan.kind,
                naming: Naming {
                    prefix: w.prefix.clone(),
                },
                payload: w.payload,
                window: w.window,
                duration: Duration::from_secs_f64(w.duration),
                messages: w.messages,
                rate: per_pub_rate,
                phase: i as f64 / plan.publishers.len() as f64,
                max_backlog,
            });
            publisher::spawn(
                i as u32,
                chans.clone(),
                opts.target.clone(),
                cfg,
                shared.clone(),
                ready.clone(),
            )
        })
        .collect()
}

/// CPU time of the server and of this process at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    server_ns: Option<u64>,
    client_ns: u64,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> CpuSample {
        CpuSample {
            server_ns: server_pid.and_then(|p| sys::cpu_ns(p).ok()),
            client_ns: sys::self_cpu_ns().unwrap_or(0),
        }
    }
}

/// Waits for the publisher threads, printing progress once a second;
/// returns the seconds they took.
fn await_publishers(opts: &RunOptions, workers: &Workers, shared: &Shared, t0: Instant) -> f64 {
    let show_progress = opts.progress && opts.workload.duration >= 2.0;
    let mut last_tick = t0;
    let mut last_delivered = 0;
    while workers.pubs.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if show_progress && last_tick.elapsed() >= Duration::from_secs(1) {
            let d = shared.delivered.load(Ordering::Relaxed);
            let dt = last_tick.elapsed().as_secs_f64();
            eprintln!(
                "[{}] {:>5.1}s  delivered {:>12}  {:>12.0} msg/s",
                opts.label,
                t0.elapsed().as_secs_f64(),
                d,
                (d - last_delivered) as f64 / dt
            );
            last_tick = Instant::now();
            last_delivered = d;
        }
    }
    t0.elapsed().as_secs_f64()
}

/// Waits until `promised` messages were delivered, or until nothing has
/// arrived for `timeout`.
fn drain(shared: &Shared, promised: u64, timeout: Duration) {
    let mut last = shared.delivered.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    loop {
        let d = shared.delivered.load(Ordering::Relaxed);
        if d >= promised {
            return;
        }
        if d != last {
            last = d;
            last_change = Instant::now();
        } else if last_change.elapsed() >= timeout {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Joins the publisher threads; failures become violations.
fn join_publishers(
    pubs: Vec<JoinHandle<Result<PubOutcome>>>,
    report: &mut RunReport,
) -> Vec<PubOutcome> {
    let mut outcomes = Vec::new();
    for h in pubs {
        match h.join() {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => report.violations.push(format!("publisher failed: {e:#}")),
            Err(_) => report.violations.push("publisher thread panicked".into()),
        }
    }
    outcomes
}

/// Joins the subscriber threads: their merged latency histogram and every
/// connection's verifier. Failures become violations.
fn join_subscribers(
    subs: Vec<JoinHandle<Result<ThreadOutcome>>>,
    report: &mut RunReport,
) -> (Histogram<u64>, Vec<SubscriberCheck>) {
    let mut hist = new_histogram();
    let mut checks = Vec::new();
    for h in subs {
        match h.join() {
            Ok(Ok(o)) => {
                let _ = hist.add(&o.hist);
                checks.extend(o.checks.into_iter().map(|(_, c)| c));
                report.violations.extend(o.errors);
            }
            Ok(Err(e)) => report
                .violations
                .push(format!("subscriber thread failed: {e:#}")),
            Err(_) => report.violations.push("subscriber thread panicked".into()),
        }
    }
    (hist, checks)
}

fn record_churn(joined: std::thread::Result<Result<ChurnReport>>, report: &mut RunReport) {
    match joined {
        Ok(Ok(c)) => {
            if let Some(e) = &c.error {
                report.violations.push(format!("churn: {e}"));
            }
            report.churn = Some(c);
        }
        Ok(Err(e)) => report.violations.push(format!("churn failed: {e:#}")),
        Err(_) => report.violations.push("churn thread panicked".into()),
    }
}

/// Checks what arrived against what was published: every subscriber's
/// streams, and the sum of PUBLISH replies against deliveries and against
/// subscribers × messages. Fills `report.verify`, `published`, `promised`,
/// `delivered` and `publish_errors`; adds a violation for each mismatch.
pub fn verify_deliveries(
    report: &mut RunReport,
    plan: &Plan,
    outcomes: &[PubOutcome],
    checks: &[SubscriberCheck],
    delivered: u64,
) {
    let mut sent: HashMap<(u32, u32), u64> = HashMap::new();
    for o in outcomes {
        for (c, n) in o.channels.iter().zip(&o.sent_per_channel) {
            sent.insert((o.id, *c), *n);
        }
    }
    let mut counts = Counts::default();
    for check in checks {
        counts.add(&check.finish(|p, c| sent.get(&(p, c)).copied().unwrap_or(0)));
    }
    let promised: u64 = outcomes.iter().map(|o| o.promised).sum();
    let published: u64 = outcomes.iter().map(|o| o.sent).sum();
    let receivers = plan.receivers_per_channel();
    let expected: u64 = sent
        .iter()
        .map(|(&(_, c), &n)| n * receivers[c as usize])
        .sum();
    report.publish_errors = outcomes.iter().map(|o| o.errors).sum();

    if !counts.is_clean() {
        report.violations.push(format!(
            "verification: {} lost, {} reordered, {} duplicate, {} corrupt",
            counts.lost, counts.reordered, counts.duplicates, counts.corrupt
        ));
    }
    if delivered != promised {
        report.violations.push(format!(
            "sum of PUBLISH replies ({promised}) != messages delivered ({delivered})"
        ));
    }
    if promised != expected {
        report.violations.push(format!(
            "sum of PUBLISH replies ({promised}) != subscribers x messages published ({expected})"
        ));
    }
    if report.publish_errors > 0 {
        let first = outcomes.iter().find_map(|o| o.first_error.clone());
        report.violations.push(format!(
            "{} PUBLISH errors (first: {})",
            report.publish_errors,
            first.unwrap_or_default()
        ));
    }
    if published == 0 && report.violations.is_empty() {
        report.violations.push("no message was published".into());
    }
    report.verify = counts;
    report.published = published;
    report.promised = promised;
    report.delivered = delivered;
}

/// Rates, latency and CPU figures of a verified run.
pub fn fill_figures(
    report: &mut RunReport,
    hist: Histogram<u64>,
    elapsed: f64,
    publish_elapsed: f64,
    cpu: (CpuSample, CpuSample),
) {
    let delivered = report.delivered;
    report.elapsed_s = elapsed;
    report.publish_rate = report.published as f64 / publish_elapsed;
    report.delivered_rate = delivered as f64 / elapsed;
    report.payload_bytes_rate = report.delivered_rate * report.payload as f64;
    report.latency = Latency::from_histogram(&hist);
    report.histogram = Some(hist);
    let (before, after) = cpu;
    if let (Some(a), Some(b)) = (before.server_ns, after.server_ns) {
        let used = b.saturating_sub(a) as f64;
        report.server_cpu_cores = Some(used / 1e9 / elapsed);
        if delivered > 0 {
            report.server_cpu_ns_per_msg = Some(used / delivered as f64);
        }
    }
    let self_used = after.client_ns.saturating_sub(before.client_ns) as f64;
    report.client_cpu_cores = self_used / 1e9 / elapsed;
    if delivered > 0 {
        report.client_cpu_ns_per_msg = Some(self_used / delivered as f64);
    }
}

fn run_pubsub(opts: &RunOptions) -> Result<RunReport> {
    let plan: Plan = opts.workload.plan()?;
    let shared = Arc::new(Shared::new());
    let mut report = RunReport::empty(opts);
    report.publishers = plan.publishers.len();
    report.subscribers = plan.subscribers.len();
    report.channels = plan.channels;

    let _holders = hold_background_state(opts)?;
    let workers = Workers::spawn(opts, &plan, &shared).await_setup(&shared)?;

    let cpu0 = CpuSample::take(opts.server_pid);
    let t0 = Instant::now();
    shared.gate.decide(true);
    let publish_elapsed = await_publishers(opts, &workers, &shared, t0);
    let outcomes = join_publishers(workers.pubs, &mut report);
    let churn = workers.churn.map(|h| h.join());
    drain(
        &shared,
        outcomes.iter().map(|o| o.promised).sum(),
        opts.drain_timeout,
    );
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = CpuSample::take(opts.server_pid);
    shared.stop.store(true, Ordering::Relaxed);

    let (hist, checks) = join_subscribers(workers.subs, &mut report);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    verify_deliveries(&mut report, &plan, &outcomes, &checks, delivered);
    if let Some(c) = churn {
        record_churn(c, &mut report);
    }
    fill_figures(&mut report, hist, elapsed, publish_elapsed, (cpu0, cpu1));
    Ok(report)
}

fn run_memory(opts: &RunOptions) -> Result<RunReport> {
    let w = &opts.workload;
    let pid = opts.server_pid.context(
        "the memory shape reads the server's RSS: it needs a local server (--server-pid, or a loopback server that reports process_id in INFO)",
    )?;
    let naming = Naming {
        prefix: w.prefix.clone(),
    };
    let mut report = RunReport::empty(opts);
    let t0 = Instant::now();
    let rss_before = sys::rss_bytes(pid)?;
    let mut conns = Vec::with_capacity(w.connections as usize);
    let mut cmd = Vec::new();
    // Batches overlap round trips while keeping few confirmations pending.
    let ids: Vec<u32> = (0..w.connections).collect();
    for batch in ids.chunks(256) {
        let mut pending = Vec::new();
        for &i in batch {
            let mut rb = ReadBuf::new(256);
            let mut s = opts
                .target
                .open(&mut rb)
                .with_context(|| format!("idle connection {i}"))?;
            cmd.clear();
            conn::write_subscribe(&mut cmd, b"SUBSCRIBE", &[naming.channel(i)]);
            s.write_all(&cmd)?;
            pending.push((s, rb));
        }
        for (mut s, mut rb) in pending {
            conn::read_confirmations(&mut s, &mut rb, 1)?;
            conns.push(s);
        }
        if opts.progress && conns.len() % 2048 == 0 {
            eprintln!("[{}] {} idle subscribers", opts.label, conns.len());
        }
    }
    // Let the server settle (lazy frees, buffer shrinking) before sampling.
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = sys::rss_bytes(pid)?;
    let n = conns.len().max(1) as f64;
    report.subscribers = conns.len();
    report.channels = w.connections;
    report.elapsed_s = t0.elapsed().as_secs_f64();
    report.memory = Some(MemoryReport {
        connections: w.connections,
        rss_before,
        rss_after,
        bytes_per_connection: rss_after.saturating_sub(rss_before) as f64 / n,
    });
    drop(conns);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_reports_every_percentile_in_microseconds() {
        let mut h = new_histogram();
        // 10,000 samples: 1..=10,000 µs.
        for us in 1..=10_000u64 {
            h.record(us * 1000).unwrap();
        }
        let l = Latency::from_histogram(&h).unwrap();
        assert_eq!(l.count, 10_000);
        // HDR keeps 3 significant digits: each figure is within 0.1%.
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(l.p50_us, 5_000.0), "{l:?}");
        assert!(near(l.p90_us, 9_000.0), "{l:?}");
        assert!(near(l.p99_us, 9_900.0), "{l:?}");
        assert!(near(l.p999_us, 9_990.0), "{l:?}");
        assert!(near(l.p9999_us, 9_999.0), "{l:?}");
        assert!(near(l.max_us, 10_000.0), "{l:?}");
        assert!(Latency::from_histogram(&new_histogram()).is_none());
    }
}
