//! One benchmark run against one server: set every connection up, open the
//! start gate, publish, drain, verify, and measure.
//!
//! Measurement window: from the gate opening until every promised delivery
//! has arrived (or the drain timeout). Server CPU is sampled at both ends of
//! that window, so "server CPU ns per delivered message" covers exactly the
//! work of the run.

use crate::churn::{self, ChurnReport};
use crate::conn::{self, Proto, ReadBuf, Target};
pub use crate::outcome::{
    CpuSample, Latency, MemoryReport, RunOptions, RunReport, StalledReport, Window, WindowStart,
    expected_deliveries, fill_figures, verify_deliveries,
};
use crate::plan::{Plan, Shape, SubKind, Workload};
use crate::publisher::{self, PubConfig, PubOutcome};
use crate::series::{SeriesBuilder, SeriesPoint};
use crate::shared::Shared;
use crate::subscriber::{self, SubConfig, SubSpec, ThreadOutcome, new_histogram};
use crate::sys;
use crate::tls::Stream;
use crate::verify::SubscriberCheck;
use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs one workload against one server.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    if opts.target.is_nats()
        && let Some(why) = crate::nats::unsupported(opts.workload.shape)
    {
        bail!("{why}");
    }
    match opts.workload.shape {
        Shape::Memory => run_memory(opts),
        _ if opts.workload.probe => crate::probe::run(opts),
        _ => run_pubsub(opts),
    }
}

/// Idle connections that hold subscriptions for the whole run (noise
/// patterns, churn's pre-existing channels). They never receive messages.
struct Holders {
    _conns: Vec<Stream>,
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
        for (k, window) in group.chunks(conn::NAMES_PER_COMMAND * 8).enumerate() {
            cmd.clear();
            let first_sid = k * conn::NAMES_PER_COMMAND * 8;
            target
                .proto
                .write_subscribe(&mut cmd, verb, window, first_sid);
            s.write_all(&cmd)?;
            target
                .proto
                .read_confirmations(&mut s, &mut rb, window.len())?;
        }
        conns.push(s);
    }
    Ok(Holders { _conns: conns })
}

/// The non-matching patterns held while publishing (`--noise-patterns`).
fn noise_patterns(w: &Workload, proto: Proto) -> Vec<Vec<u8>> {
    let noise = proto.naming(&format!("{}x", w.prefix));
    (0..w.noise_patterns).map(|k| noise.pattern(k)).collect()
}

/// Every pattern a run of `w` PSUBSCRIBEs, as written: what an ACL user
/// must list literally, since ACL checks a PSUBSCRIBE by its pattern text.
pub fn subscribed_patterns(w: &Workload) -> Result<Vec<Vec<u8>>> {
    let plan = w.plan()?;
    let mut names = noise_patterns(w, Proto::Resp2);
    if plan.kind == SubKind::Pattern {
        let naming = Proto::Resp2.naming(&w.prefix);
        let all: Vec<u32> = (0..plan.channels).collect();
        names.extend(plan.subscription_names(&naming, &all));
    }
    Ok(names)
}

/// Subscriptions that only add server state (noise patterns, churn's
/// pre-existing channels), held before anything starts.
fn hold_background_state(opts: &RunOptions) -> Result<Vec<Holders>> {
    let w = &opts.workload;
    let mut holders = Vec::new();
    if w.noise_patterns > 0 {
        let names = noise_patterns(w, opts.target.proto);
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

/// Subscribers that stop reading once subscribed (`--stalled-subscribers`),
/// each on every channel of the plan. Their receive buffers are left as
/// they are: shrunk after the connection is set up (std cannot do it
/// before), the window already offered is not taken back, so the kernel
/// drops what it has no room for and the drain at the end crawls through
/// retransmission timeouts.
fn stall_subscribers(opts: &RunOptions, plan: &Plan) -> Result<Vec<Stream>> {
    let naming = opts.target.proto.naming(&opts.workload.prefix);
    let all: Vec<u32> = (0..plan.channels).collect();
    let names = plan.subscription_names(&naming, &all);
    let mut conns = Vec::new();
    let mut cmd = Vec::new();
    for i in 0..opts.workload.stalled_subscribers {
        let mut rb = ReadBuf::new(64 * 1024);
        let mut s = opts
            .target
            .open(&mut rb)
            .with_context(|| format!("stalled subscriber {i}"))?;
        cmd.clear();
        let proto = opts.target.proto;
        proto.write_subscribe(&mut cmd, plan.kind.subscribe_verb(), &names, 0);
        s.write_all(&cmd)?;
        proto.read_confirmations(&mut s, &mut rb, names.len())?;
        conns.push(s);
    }
    Ok(conns)
}

/// How many of the stalled subscribers the server has closed. A server
/// closes a connection only after its socket has sent what was queued (up
/// to megabytes), so each is read, without blocking and in turns, until it
/// ends; the ones that have given nothing for a second, while none of the
/// others ended either, count as still open.
fn count_closed(conns: Vec<Stream>) -> u32 {
    let mut buf = vec![0u8; 256 * 1024];
    let mut open: Vec<Stream> = conns
        .into_iter()
        .filter_map(|mut s| s.set_nonblocking(true).is_ok().then_some(s))
        .collect();
    let mut closed = 0;
    let mut progress_at = Instant::now();
    while !open.is_empty() && progress_at.elapsed() < Duration::from_secs(1) {
        open.retain_mut(|s| {
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        closed += 1;
                        progress_at = Instant::now();
                        return false;
                    }
                    Ok(_) => progress_at = Instant::now(),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(_) => {
                        closed += 1;
                        progress_at = Instant::now();
                        return false;
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    closed
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
                Duration::from_secs_f64(w.publish_seconds()),
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
    let naming = opts.target.proto.naming(&w.prefix);
    let by_channel = plan.publishers_by_channel();
    let cfg = Arc::new(SubConfig {
        kind: plan.kind,
        proto: opts.target.proto,
        naming: naming.clone(),
        check_padding: !w.no_check_padding,
        read_buf: opts.read_buf,
        recv_buffer: opts.recv_buffer,
        drop_every: opts.drop_every,
        coalesce: opts.coalesce,
        head: crate::resp::message_head(opts.target.resp3(), plan.kind.message_kind()),
        series: Monitor::wants_intervals(opts),
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
    let receivers = Arc::new(plan.receivers_per_channel());
    plan.publishers
        .iter()
        .enumerate()
        .map(|(i, chans)| {
            let cfg = Arc::new(PubConfig {
                kind: plan.kind,
                proto: opts.target.proto,
                naming: opts.target.proto.naming(&w.prefix),
                receivers: receivers.clone(),
                payload: w.payload,
                window: w.window,
                duration: Duration::from_secs_f64(w.publish_seconds()),
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

/// Watches a run from the main thread while the workers run: the end of
/// the warm-up (where the measurement window starts), the time series and
/// the progress line.
struct Monitor<'a> {
    opts: &'a RunOptions,
    shared: &'a Shared,
    warmup_end_ns: u64,
    window: Option<WindowStart>,
    series: Option<SeriesBuilder>,
    /// Interval latencies taken from the subscriber threads.
    interval: Histogram<u64>,
    show_progress: bool,
}

impl<'a> Monitor<'a> {
    /// Call just before the start gate opens: sets the warm-up's end for
    /// the subscriber threads.
    fn new(opts: &'a RunOptions, shared: &'a Shared) -> Monitor<'a> {
        let start_ns = shared.now_ns();
        let warmup_end_ns = start_ns + opts.warmup_ns();
        shared
            .measure_from_ns
            .store(warmup_end_ns, Ordering::Relaxed);
        let show_progress = opts.progress && opts.workload.publish_seconds() >= 2.0;
        Monitor {
            opts,
            shared,
            warmup_end_ns,
            window: (warmup_end_ns == start_ns).then(|| WindowStart::take(opts.server_pid, shared)),
            series: (opts.series || show_progress)
                .then(|| SeriesBuilder::new(start_ns, warmup_end_ns)),
            interval: crate::series::interval_histogram(),
            show_progress,
        }
    }

    /// Whether subscriber threads must keep interval latencies.
    fn wants_intervals(opts: &RunOptions) -> bool {
        opts.series || (opts.progress && opts.workload.publish_seconds() >= 2.0)
    }

    /// Starts the window when the warm-up is over; adds a point to the
    /// series (and prints it) once a second.
    fn tick(&mut self) {
        let now = self.shared.now_ns();
        if let Some(series) = &mut self.series
            && series.due(now)
        {
            self.shared.take_interval(&mut self.interval);
            let p = series.point(
                now,
                self.shared.published.load(Ordering::Relaxed),
                self.shared.delivered.load(Ordering::Relaxed),
                &mut self.interval,
            );
            if self.show_progress {
                eprintln!("[{}] {}", self.opts.label, progress_line(p));
            }
        }
        if self.window.is_none() && now >= self.warmup_end_ns {
            self.window = Some(WindowStart::take(self.opts.server_pid, self.shared));
        }
    }

    /// Waits for the publisher threads; returns when they ended (ns).
    fn await_publishers(&mut self, workers: &Workers) -> u64 {
        while workers.pubs.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            self.tick();
        }
        self.shared.now_ns()
    }

    /// Waits until `promised` messages were delivered, or until nothing
    /// has arrived for `timeout`.
    fn drain(&mut self, promised: u64, timeout: Duration) {
        let shared = self.shared;
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
            self.tick();
        }
    }

    /// The measurement window, ended now, and the series.
    fn finish(mut self, publish_end_ns: u64) -> (Window, Vec<SeriesPoint>) {
        let (pid, shared) = (self.opts.server_pid, self.shared);
        // A run cut short before the warm-up ended measures from here.
        let start = self
            .window
            .unwrap_or_else(|| WindowStart::take(pid, shared));
        let window = start.close(pid, shared, publish_end_ns);
        let series = match self.series {
            Some(b) if self.opts.series => {
                shared.take_interval(&mut self.interval);
                b.finish(
                    shared.now_ns(),
                    shared.published.load(Ordering::Relaxed),
                    shared.delivered.load(Ordering::Relaxed),
                    &mut self.interval,
                )
            }
            _ => Vec::new(),
        };
        (window, series)
    }
}

/// `  3.0s  published 40,000/s  delivered 4,000,000/s  p50 120.3 us  p99 850.1 us`
pub(crate) fn progress_line(p: &SeriesPoint) -> String {
    let mut s = format!(
        "{:>6.1}s{}  published {:>10}/s  delivered {:>12}/s",
        p.second,
        if p.warmup { " (warm-up)" } else { "" },
        crate::report::thousands(p.published_per_s),
        crate::report::thousands(p.delivered_per_s)
    );
    if let Some(l) = &p.latency {
        s.push_str(&format!("  p50 {:.1} us  p99 {:.1} us", l.p50_us, l.p99_us));
    }
    s
}

/// Joins the publisher threads; failures become violations.
fn join_publishers(
    pubs: Vec<JoinHandle<Result<PubOutcome>>>,
    report: &mut RunReport,
) -> Vec<PubOutcome> {
    let mut outcomes = Vec::new();
    for h in pubs {
        match h.join() {
            Ok(Ok(o)) => {
                if let Some(why) = &o.failure {
                    report.violations.push(format!(
                        "publisher {} failed: {why} ({} PUBLISH sent, {} answered)",
                        o.id, o.sent, o.replies
                    ));
                }
                outcomes.push(o);
            }
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

fn run_pubsub(opts: &RunOptions) -> Result<RunReport> {
    let plan: Plan = opts.workload.plan()?;
    let shared = Arc::new(Shared::new());
    let mut report = RunReport::empty(opts);
    report.publishers = plan.publishers.len();
    report.subscribers = plan.subscribers.len();
    report.channels = plan.channels;

    let _holders = hold_background_state(opts)?;
    let stalled = stall_subscribers(opts, &plan)?;
    let workers = Workers::spawn(opts, &plan, &shared).await_setup(&shared)?;

    let mut monitor = Monitor::new(opts, &shared);
    shared.gate.decide(true);
    let publish_end = monitor.await_publishers(&workers);
    let outcomes = join_publishers(workers.pubs, &mut report);
    let churn = workers.churn.map(|h| h.join());
    // What the reading subscribers are owed: the replies also count the
    // stalled ones, whose deliveries never arrive here.
    let owed = if stalled.is_empty() {
        outcomes.iter().map(|o| o.promised).sum()
    } else {
        expected_deliveries(&plan, &outcomes)
    };
    monitor.drain(owed, opts.drain_timeout);
    let (window, series) = monitor.finish(publish_end);
    shared.stop.store(true, Ordering::Relaxed);

    let (hist, checks) = join_subscribers(workers.subs, &mut report);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    if !stalled.is_empty() {
        report.stalled = Some(StalledReport {
            subscribers: stalled.len() as u32,
            closed_by_server: count_closed(stalled),
            promised: 0,
        });
    }
    verify_deliveries(&mut report, &plan, &outcomes, &checks, delivered);
    if let Some(c) = churn {
        record_churn(c, &mut report);
    }
    fill_figures(&mut report, hist, window);
    report.series = series;
    Ok(report)
}

fn run_memory(opts: &RunOptions) -> Result<RunReport> {
    let w = &opts.workload;
    let pid = opts.server_pid.context(
        "the memory shape reads the server's RSS: it needs a local server (--server-pid, or a loopback server that reports process_id in INFO)",
    )?;
    let naming = opts.target.proto.naming(&w.prefix);
    let proto = opts.target.proto;
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
            proto.write_subscribe(&mut cmd, b"SUBSCRIBE", &[naming.channel(i)], 0);
            s.write_all(&cmd)?;
            pending.push((s, rb));
        }
        for (mut s, mut rb) in pending {
            proto.read_confirmations(&mut s, &mut rb, 1)?;
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
