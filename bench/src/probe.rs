//! The latency probe: what a message costs end to end at a fixed rate,
//! beside what the tool itself costs.
//!
//! One thread does everything: it paces the publishers (see [`crate::pacing`]),
//! writes each PUBLISH with its intended send time in the payload, and
//! busy-polls every socket — subscribers and publisher replies — through one
//! epoll set with a zero timeout. Why one thread: on a 2-core machine the
//! server needs the other core, and any second thread of ours (a reader
//! beside a writer) would either share a core with the first, so that
//! every hand-off waits for the scheduler, or take the server's core. A
//! single spinning thread pinned to one CPU has no hand-offs and no
//! wake-ups: between a message reaching a socket and our timestamp there is
//! one poll round, about a microsecond. It sleeps only when nothing is in
//! flight, and then wakes early and spins to the send time.
//!
//! The same pass runs three times in one run:
//!
//! 1. half a PING round trip against the target (busy-polled, one at a time);
//! 2. the **floor**: the same schedule, payload and verification against the
//!    relay inside the tool ([`crate::relay`]), pinned to the server's CPUs;
//! 3. the target itself, with the server's CPU sampled around it.
//!
//! A server's figures mean something only as far as they stand above the floor.

use crate::conn::{self, Proto, ReadBuf, Target};
use crate::outcome::{
    self, Latency, PlacementReport, ProbeReport, RunOptions, RunReport, Window, WindowStart,
};
use crate::pacing::{self, Schedule, Wait};
use crate::plan::{Placement, Plan};
use crate::publisher::{self, Encoder, PubConfig, PubOutcome, Replies};
use crate::relay::Relay;
use crate::series::{SeriesBuilder, SeriesPoint};
use crate::shared::Shared;
use crate::subscriber::{self, Recorder, SubConfig, SubSpec, new_histogram};
use crate::sys::{self, monotonic_ns};
use crate::tls::Stream;
use crate::verify::SubscriberCheck;
use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Messages written in one go when the probe is behind schedule.
const MAX_BATCH: u64 = 1024;
/// Unwritten PUBLISH bytes at which the server is declared stuck.
const MAX_UNWRITTEN: usize = 64 << 20;
/// Connections tried per publisher to land it on the wanted worker.
const PLACEMENT_TRIES: usize = 16;

/// Runs the probe on a thread of its own, pinned to one CPU of this
/// process's set (one not given to the floor relay, when there is one).
/// The relay gets `opts.floor_cpus`, else every other CPU this process may
/// use: two spinning threads on one CPU would measure the scheduler.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    let mine = sys::current_affinity();
    let cpu = mine
        .iter()
        .find(|c| !opts.floor_cpus.contains(c))
        .or(mine.first())
        .copied();
    let relay_cpus = if opts.floor_cpus.is_empty() {
        mine.iter().copied().filter(|&c| Some(c) != cpu).collect()
    } else {
        opts.floor_cpus.clone()
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("rcb-probe".into())
            .spawn_scoped(s, || {
                if let Some(c) = cpu {
                    sys::set_affinity(0, &[c]).context("pinning the probe")?;
                }
                sys::set_precise_timers();
                run_pinned(opts, &relay_cpus)
            })
            .context("spawning the probe thread")?
            .join()
            .map_err(|_| anyhow!("the probe thread panicked"))?
    })
}

fn run_pinned(opts: &RunOptions, relay_cpus: &[usize]) -> Result<RunReport> {
    let plan = opts.workload.plan()?;
    let mut report = RunReport::empty(opts);
    report.loop_kind = "probe";
    report.publishers = plan.publishers.len();
    report.subscribers = plan.subscribers.len();
    report.channels = plan.channels;

    let ping = ping_half_rtt(&opts.target, opts.ping_count).context("PING round trips")?;
    let floor = if opts.floor {
        Some(floor_pass(opts, &plan, relay_cpus)?)
    } else {
        None
    };
    if opts.progress {
        eprintln!("[{}] probe: target pass", opts.label);
    }
    let (mut pass, placement) = Pass::connect(opts, &plan, &opts.target, opts.workload.placement)?;
    let stats = pass.run(&schedule(opts), opts, true)?;
    let delivered = pass.delivered();
    let (outcomes, checks) = pass.finish(&mut report.violations);
    outcome::verify_deliveries(&mut report, &plan, &outcomes, &checks, delivered);
    outcome::fill_figures(&mut report, stats.hist, stats.window);
    report.series = stats.series;

    let mut probe = ProbeReport {
        rate: opts.workload.rate.unwrap_or(0.0),
        spin_us: opts.spin.as_secs_f64() * 1e6,
        floor: None,
        ping_half_rtt: Latency::from_histogram(&ping),
        send_lag: Latency::from_histogram(&stats.lag),
        floor_send_lag: None,
        placement,
        floor_histogram: None,
    };
    if let Some(f) = floor {
        probe.floor = Latency::from_histogram(&f.hist);
        probe.floor_send_lag = Latency::from_histogram(&f.lag);
        probe.floor_histogram = Some(f.hist);
        report
            .violations
            .extend(f.violations.into_iter().map(|v| format!("floor: {v}")));
    }
    report.probe = Some(probe);
    Ok(report)
}

/// The schedule of a pass, starting a millisecond from now so the first
/// messages are not late before the loop begins.
fn schedule(opts: &RunOptions) -> Schedule {
    let w = &opts.workload;
    let publishers = w.plan().map(|p| p.publishers.len() as u64).unwrap_or(1);
    Schedule::new(
        monotonic_ns() + 1_000_000,
        w.rate.unwrap_or(1.0),
        Duration::from_secs_f64(w.publish_seconds()),
        w.messages.map(|m| m.saturating_mul(publishers)),
    )
}

/// The floor's results: its latency, pacing error and any verification failure.
struct Floor {
    hist: Histogram<u64>,
    lag: Histogram<u64>,
    violations: Vec<String>,
}

/// The same pass against the relay inside the tool, pinned to the server's CPUs.
fn floor_pass(opts: &RunOptions, plan: &Plan, cpus: &[usize]) -> Result<Floor> {
    if opts.progress {
        eprintln!("[{}] probe: floor pass (relay inside the tool)", opts.label);
    }
    let relay = Relay::start(cpus, opts.floor_spin)?;
    // The relay speaks RESP: a NATS target's floor is measured over RESP2.
    let target = Target {
        proto: if opts.target.is_nats() {
            Proto::Resp2
        } else {
            opts.target.proto
        },
        ..Target::plain("127.0.0.1", relay.port)
    };
    let result = measure_floor(opts, plan, &target);
    let stopped = relay.stop().context("floor relay");
    let floor = result.context("floor pass")?;
    stopped?;
    Ok(floor)
}

fn measure_floor(opts: &RunOptions, plan: &Plan, relay: &Target) -> Result<Floor> {
    let (mut pass, _) = Pass::connect(opts, plan, relay, Placement::Any)?;
    let stats = pass.run(&schedule(opts), opts, false)?;
    let delivered = pass.delivered();
    let mut scratch = RunReport::empty(opts);
    let (outcomes, checks) = pass.finish(&mut scratch.violations);
    outcome::verify_deliveries(&mut scratch, plan, &outcomes, &checks, delivered);
    Ok(Floor {
        hist: stats.hist,
        lag: stats.lag,
        violations: scratch.violations,
    })
}

/// Half of each PING round trip, one PING at a time, the reply busy-polled.
fn ping_half_rtt(target: &Target, count: u64) -> Result<Histogram<u64>> {
    let mut hist = new_histogram();
    if count == 0 {
        return Ok(hist);
    }
    let mut rb = ReadBuf::new(4096);
    let mut s = target.open(&mut rb)?;
    s.set_nonblocking(true)?;
    let mut cmd = Vec::new();
    crate::resp::write_command(&mut cmd, &[b"PING"]);
    if target.is_nats() {
        cmd = b"PING\r\n".to_vec();
    }
    let deadline = monotonic_ns() + 2_000_000_000;
    for _ in 0..count {
        let t0 = monotonic_ns();
        write_fully(&mut s, &cmd)?;
        loop {
            if let Some(end) = reply_end(target, rb.unparsed())? {
                rb.consume(end);
                break;
            }
            match rb.read_from(&mut s) {
                Ok(0) => bail!("server closed the PING connection"),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(e.into()),
            }
        }
        hist.saturating_record(((monotonic_ns() - t0) / 2).max(1));
        if monotonic_ns() > deadline {
            break;
        }
    }
    Ok(hist)
}

/// Where the reply at the start of `buf` ends, once it is complete.
fn reply_end(target: &Target, buf: &[u8]) -> Result<Option<usize>> {
    if target.is_nats() {
        return Ok(crate::nats::parse(buf)?.map(|(_, used)| used));
    }
    Ok(crate::resp::skip_value(buf, 0)?)
}

/// Writes all of `bytes` to a non-blocking socket, spinning on a full buffer.
fn write_fully(s: &mut Stream, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match s.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e.into()),
        }
    }
    while s.has_pending_output() {
        match s.flush() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A publisher connection driven by the probe.
struct ProbePub {
    stream: Stream,
    rb: ReadBuf,
    /// PUBLISH bytes not yet written, from `written` on.
    wbuf: Vec<u8>,
    written: usize,
    enc: Encoder,
    replies: Replies,
}

/// What one pass measured.
struct PassStats {
    hist: Histogram<u64>,
    lag: Histogram<u64>,
    window: Window,
    series: Vec<SeriesPoint>,
}

/// Every connection of one pass against one server, and what it observed.
struct Pass {
    subs: Vec<subscriber::Conn>,
    pubs: Vec<ProbePub>,
    sub_cfg: SubConfig,
    /// Deliveries one message on each channel must produce.
    receivers: Vec<u64>,
    poll: Poll,
    /// The delivered counter and the clock the subscriber code reads.
    shared: Shared,
    rec: Recorder,
    errors: Vec<String>,
}

/// A fresh connection, and the worker serving it when the server says.
type Placed = (Stream, ReadBuf, Option<u32>);

fn open_placed(target: &Target, read_buf: usize) -> Result<Placed> {
    let mut rb = ReadBuf::new(read_buf);
    let mut s = target.open(&mut rb)?;
    let worker = if target.is_nats() {
        None
    } else {
        conn::worker_of(&mut s, &mut rb).context("CLIENT INFO")?
    };
    Ok((s, rb, worker))
}

/// A connection for a publisher whose subscriber is on worker `anchor`:
/// a spare that fits, or new connections until one lands where `wanted`
/// says (the server spreads connections over its workers as it accepts
/// them). Connections that do not fit are kept as spares for later publishers.
fn place(
    target: &Target,
    read_buf: usize,
    wanted: Placement,
    anchor: Option<u32>,
    spares: &mut Vec<Placed>,
) -> Result<Placed> {
    let fits = |w: Option<u32>| match (wanted, anchor, w) {
        (Placement::Same, Some(a), Some(w)) => a == w,
        (Placement::Cross, Some(a), Some(w)) => a != w,
        _ => true,
    };
    if let Some(i) = spares.iter().position(|c| fits(c.2)) {
        return Ok(spares.swap_remove(i));
    }
    for _ in 0..PLACEMENT_TRIES {
        let c = open_placed(target, read_buf)?;
        if fits(c.2) {
            return Ok(c);
        }
        spares.push(c);
    }
    bail!(
        "no connection out of {PLACEMENT_TRIES} landed {} the subscriber's worker {}: \
         does the server run more than one worker?",
        if wanted == Placement::Same {
            "on"
        } else {
            "off"
        },
        anchor.unwrap_or_default()
    )
}

/// Subscribes a connection (blocking, confirmations read) and hands it to the poller.
fn subscribe(
    (mut s, mut rb, _): Placed,
    spec: &SubSpec,
    cfg: &SubConfig,
) -> Result<subscriber::Conn> {
    let mut cmd = Vec::new();
    cfg.proto
        .write_subscribe(&mut cmd, cfg.kind.subscribe_verb(), &spec.names, 0);
    s.write_all(&cmd)?;
    cfg.proto
        .read_confirmations(&mut s, &mut rb, spec.names.len())
        .with_context(|| format!("subscriber {}", spec.index))?;
    subscriber::Conn::subscribed(s, rb, spec)
}

impl PlacementReport {
    /// Counts (publisher, subscriber) pairs by whether they share a worker.
    fn new(
        wanted: Placement,
        plan: &Plan,
        publisher_workers: Vec<Option<u32>>,
        subscriber_workers: Vec<Option<u32>>,
    ) -> PlacementReport {
        let by_channel = plan.publishers_by_channel();
        let (mut same, mut cross) = (0, 0);
        for (s, sw) in subscriber_workers.iter().enumerate() {
            for (p, _) in plan.expected_streams(s, &by_channel) {
                match (sw, publisher_workers[p as usize]) {
                    (Some(a), Some(b)) if *a == b => same += 1,
                    (Some(_), Some(_)) => cross += 1,
                    _ => {}
                }
            }
        }
        PlacementReport {
            wanted,
            reported: subscriber_workers.iter().all(Option::is_some)
                && publisher_workers.iter().all(Option::is_some),
            same_worker: same,
            cross_worker: cross,
            publisher_workers,
            subscriber_workers,
        }
    }
}

/// Every subscriber, subscribed, and the worker serving each.
fn connect_subscribers(
    opts: &RunOptions,
    plan: &Plan,
    target: &Target,
    cfg: &SubConfig,
) -> Result<(Vec<subscriber::Conn>, Vec<Option<u32>>)> {
    let by_channel = plan.publishers_by_channel();
    let (mut subs, mut workers) = (Vec::new(), Vec::new());
    for (i, chans) in plan.subscribers.iter().enumerate() {
        let spec = SubSpec {
            index: i,
            names: plan.subscription_names(&cfg.naming, chans),
            expected: plan.expected_streams(i, &by_channel),
        };
        let placed =
            open_placed(target, opts.read_buf).with_context(|| format!("subscriber {i}"))?;
        if opts.recv_buffer > 0 {
            crate::sys::set_recv_buffer(placed.0.as_raw_fd(), opts.recv_buffer)
                .with_context(|| format!("subscriber {i}: SO_RCVBUF"))?;
        }
        workers.push(placed.2);
        subs.push(subscribe(placed, &spec, cfg)?);
    }
    Ok((subs, workers))
}

/// Every publisher, placed as `wanted` relative to the worker of the first
/// subscriber of its first channel, and the worker serving each.
fn connect_publishers(
    opts: &RunOptions,
    plan: &Plan,
    target: &Target,
    wanted: Placement,
    sub_workers: &[Option<u32>],
) -> Result<(Vec<ProbePub>, Vec<Option<u32>>)> {
    let w = &opts.workload;
    let cfg = PubConfig {
        kind: plan.kind,
        proto: target.proto,
        naming: target.proto.naming(&w.prefix),
        receivers: std::sync::Arc::new(plan.receivers_per_channel()),
        payload: w.payload,
        window: 1,
        duration: Duration::ZERO,
        messages: None,
        rate: w.rate,
        phase: 0.0,
        max_backlog: 0,
    };
    let (mut pubs, mut workers, mut spares) = (Vec::new(), Vec::new(), Vec::new());
    for (p, chans) in plan.publishers.iter().enumerate() {
        let anchor = chans.first().and_then(|c| {
            let s = plan.subscribers.iter().position(|sc| sc.contains(c))?;
            sub_workers[s]
        });
        let (mut s, rb, worker) = place(target, opts.read_buf, wanted, anchor, &mut spares)
            .with_context(|| format!("publisher {p}"))?;
        s.set_nonblocking(true)?;
        workers.push(worker);
        pubs.push(ProbePub {
            stream: s,
            rb,
            wbuf: Vec::with_capacity(64 * (w.payload + 64)),
            written: 0,
            enc: Encoder::new(p as u32, chans.clone(), &cfg),
            replies: Replies::new(target.proto),
        });
    }
    Ok((pubs, workers))
}

impl Pass {
    /// Opens and subscribes every subscriber, then opens each publisher on
    /// the worker `wanted` asks for, relative to the first subscriber of its
    /// first channel.
    fn connect(
        opts: &RunOptions,
        plan: &Plan,
        target: &Target,
        wanted: Placement,
    ) -> Result<(Pass, PlacementReport)> {
        let w = &opts.workload;
        let sub_cfg = SubConfig {
            kind: plan.kind,
            proto: target.proto,
            naming: target.proto.naming(&w.prefix),
            check_padding: !w.no_check_padding,
            read_buf: opts.read_buf,
            recv_buffer: opts.recv_buffer,
            drop_every: opts.drop_every,
            coalesce: Duration::ZERO,
            head: crate::resp::message_head(target.resp3(), plan.kind.message_kind()),
            series: false,
        };
        let (subs, sub_workers) = connect_subscribers(opts, plan, target, &sub_cfg)?;
        let (pubs, pub_workers) = connect_publishers(opts, plan, target, wanted, &sub_workers)?;
        let poll = Poll::new()?;
        for (i, c) in subs.iter().enumerate() {
            c.register(&poll, Token(i))?;
        }
        for (i, p) in pubs.iter().enumerate() {
            let fd = p.stream.as_raw_fd();
            poll.registry().register(
                &mut SourceFd(&fd),
                Token(subs.len() + i),
                Interest::READABLE,
            )?;
        }
        let placement = PlacementReport::new(wanted, plan, pub_workers, sub_workers);
        let pass = Pass {
            subs,
            pubs,
            sub_cfg,
            receivers: plan.receivers_per_channel(),
            poll,
            rec: Recorder::new(&Shared::new(), false),
            shared: Shared::new(),
            errors: Vec::new(),
        };
        Ok((pass, placement))
    }

    /// Sends on schedule and reads everything until every promised delivery
    /// and reply has arrived (or nothing has moved for the drain timeout).
    /// The pass against the target (`measured`) samples the server's CPU
    /// at the end of the warm-up and at the end, builds the time series
    /// when asked and prints progress.
    fn run(&mut self, sched: &Schedule, opts: &RunOptions, measured: bool) -> Result<PassStats> {
        let spin_ns = opts.spin.as_nanos() as u64;
        let drain_ns = opts.drain_timeout.as_nanos() as u64;
        let mut lag = new_histogram();
        let mut events = Events::with_capacity(1024);
        let (mut k, mut expected) = (0u64, 0u64);
        let start = sched.due(0);
        let warmup_end = start + opts.warmup_ns();
        let pid = opts.server_pid.filter(|_| measured);
        let progress = measured && opts.progress && opts.workload.publish_seconds() >= 2.0;
        let mut series =
            (measured && (opts.series || progress)).then(|| SeriesBuilder::new(start, warmup_end));
        self.shared
            .measure_from_ns
            .store(warmup_end, Ordering::Relaxed);
        self.rec = Recorder::new(&self.shared, series.is_some());
        let mut window = (warmup_end == start).then(|| WindowStart::take(pid, &self.shared));
        let mut publish_end = start;
        let (mut last_seen, mut last_change) = ((0, 0), monotonic_ns());
        loop {
            let now = monotonic_ns();
            if window.is_none() && now >= warmup_end {
                window = Some(WindowStart::take(pid, &self.shared));
            }
            let delivered = self.delivered();
            if let (Some(b), Some(interval)) = (&mut series, self.rec.interval_mut())
                && b.due(now)
            {
                let p = b.point(
                    now,
                    self.shared.published.load(Ordering::Relaxed),
                    delivered,
                    interval,
                );
                if progress {
                    eprintln!("[{}] {}", opts.label, crate::run::progress_line(p));
                }
            }
            let due = sched.due_by(k, now, MAX_BATCH);
            if !due.is_empty() {
                expected += self.encode(sched, due.clone(), now, &mut lag);
                k = due.end;
                publish_end = now;
            }
            self.close_batches(now, !sched.has(k));
            self.write_publishers()?;
            self.poll_once(&mut events)?;
            let seen = (self.delivered(), self.replies());
            let settled = seen.0 >= expected && seen.1 == k && self.all_written();
            let sending = sched.has(k);
            let t = monotonic_ns();
            if seen != last_seen {
                (last_seen, last_change) = (seen, t);
            }
            if !sending && (settled || t - last_change >= drain_ns) {
                break;
            }
            let next = sending.then(|| sched.due(k));
            if let Wait::SleepUntil(until) = pacing::next_wait(t, next, settled, spin_ns) {
                sys::sleep_until_ns(until);
            }
        }
        let window = window
            .unwrap_or_else(|| WindowStart::take(pid, &self.shared))
            .close(pid, &self.shared, publish_end);
        let published = self.shared.published.load(Ordering::Relaxed);
        let delivered = self.delivered();
        let series = match (series, self.rec.interval_mut()) {
            (Some(b), Some(interval)) if opts.series => {
                b.finish(monotonic_ns(), published, delivered, interval)
            }
            _ => Vec::new(),
        };
        Ok(PassStats {
            hist: std::mem::replace(&mut self.rec.hist, new_histogram()),
            lag,
            window,
            series,
        })
    }

    /// Queues messages `due` round-robin over the publishers, each stamped
    /// with its intended time; returns the deliveries they must produce.
    fn encode(
        &mut self,
        sched: &Schedule,
        due: std::ops::Range<u64>,
        now: u64,
        lag: &mut Histogram<u64>,
    ) -> u64 {
        let n = self.pubs.len() as u64;
        let mut deliveries = 0;
        let count = due.end - due.start;
        for j in due {
            let p = &mut self.pubs[(j % n) as usize];
            deliveries += self.receivers[p.enc.next_channel() as usize];
            p.enc.push(&mut p.wbuf, sched.due(j));
            lag.saturating_record(now.saturating_sub(sched.due(j)).max(1));
        }
        self.shared.published.fetch_add(count, Ordering::Relaxed);
        deliveries
    }

    /// NATS: closes each publisher's batch with a PING when it is large or
    /// old enough, or when sending is over (`all`).
    fn close_batches(&mut self, now: u64, all: bool) {
        for p in &mut self.pubs {
            if all {
                p.enc.close_batch(&mut p.wbuf, &mut p.replies, now);
            } else {
                p.enc.maybe_close_batch(&mut p.wbuf, &mut p.replies, now);
            }
        }
    }

    fn write_publishers(&mut self) -> Result<()> {
        for p in &mut self.pubs {
            while p.written < p.wbuf.len() {
                match p.stream.write(&p.wbuf[p.written..]) {
                    Ok(n) => p.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("writing PUBLISH"),
                }
            }
            match p.stream.flush() {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(e).context("writing PUBLISH"),
            }
            if p.written == p.wbuf.len() {
                p.wbuf.clear();
                p.written = 0;
            } else if p.wbuf.len() - p.written > MAX_UNWRITTEN {
                bail!("the server stopped reading PUBLISH commands");
            }
        }
        Ok(())
    }

    /// One busy poll round: reads every ready subscriber and publisher.
    fn poll_once(&mut self, events: &mut Events) -> Result<()> {
        match self.poll.poll(events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let n_subs = self.subs.len();
        for ev in events.iter() {
            let t = ev.token().0;
            if let Some(c) = self.subs.get_mut(t) {
                if c.closed {
                    continue;
                }
                let n = subscriber::drain(
                    c,
                    &self.sub_cfg,
                    &self.shared,
                    &mut self.rec,
                    &mut self.errors,
                );
                self.shared.delivered.fetch_add(n, Ordering::Relaxed);
                if c.closed {
                    c.deregister(&self.poll);
                }
            } else if let Some(p) = self.pubs.get_mut(t - n_subs) {
                read_replies(p, &self.shared)?;
            }
        }
        Ok(())
    }

    fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    fn replies(&self) -> u64 {
        self.pubs.iter().map(|p| p.replies.replies).sum()
    }

    fn all_written(&self) -> bool {
        self.pubs
            .iter()
            .all(|p| p.written == p.wbuf.len() && !p.stream.has_pending_output())
    }

    /// Publisher outcomes and subscriber verifiers; read errors become violations.
    fn finish(self, violations: &mut Vec<String>) -> (Vec<PubOutcome>, Vec<SubscriberCheck>) {
        violations.extend(self.errors);
        let outcomes = self
            .pubs
            .into_iter()
            .map(|p| publisher::outcome(p.enc, p.replies))
            .collect();
        let checks = self.subs.into_iter().map(|c| c.check).collect();
        (outcomes, checks)
    }
}

/// Reads a publisher's replies until the socket would block.
fn read_replies(p: &mut ProbePub, shared: &Shared) -> Result<()> {
    loop {
        match p.rb.read_from(&mut p.stream) {
            Ok(0) => bail!("server closed the publisher connection"),
            Ok(_) => {
                p.replies.take(&mut p.rb, shared)?;
                p.replies.answer_pings(&mut p.wbuf);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading PUBLISH replies"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;
    use crate::plan::{Shape, SubKind, Workload};

    fn pub_config() -> PubConfig {
        PubConfig {
            kind: SubKind::Channel,
            proto: Proto::Resp2,
            naming: Proto::Resp2.naming("rcb"),
            receivers: std::sync::Arc::new(vec![1; 8]),
            payload: 64,
            window: 1,
            duration: Duration::ZERO,
            messages: None,
            rate: Some(1000.0),
            phase: 0.0,
            max_backlog: 0,
        }
    }

    #[test]
    fn messages_sent_late_carry_their_intended_time_id_and_sequence() {
        let sched = Schedule::new(5_000_000, 1000.0, Duration::from_secs(1), None);
        let mut enc = Encoder::new(3, vec![7], &pub_config());
        let mut wire = Vec::new();
        // Polled 2.5 ms late: three messages are due, each keeps its own time.
        for k in sched.due_by(0, 7_500_000, MAX_BATCH) {
            enc.push(&mut wire, sched.due(k));
        }
        let mut args = Vec::new();
        let mut pos = 0;
        let mut stamps = Vec::new();
        while let Some(used) = crate::resp::parse_command(&wire[pos..], &mut args).unwrap() {
            let cmd = &wire[pos..pos + used];
            assert_eq!(&cmd[args[0].clone()], b"PUBLISH");
            assert_eq!(&cmd[args[1].clone()], b"rcb:7:c");
            let h = payload::read(&cmd[args[2].clone()], true).unwrap();
            stamps.push((h.publisher, h.channel, h.seq, h.sent_ns));
            pos += used;
        }
        assert_eq!(
            stamps,
            [
                (3, 7, 0, 5_000_000),
                (3, 7, 1, 6_000_000),
                (3, 7, 2, 7_000_000)
            ]
        );
    }

    #[test]
    fn placement_counts_each_publisher_subscriber_pair_once() {
        let mut w = Workload::defaults();
        w.shape = Shape::Pairs;
        w.subscribers = Some(3);
        let plan = w.plan().unwrap();
        let r = PlacementReport::new(
            Placement::Same,
            &plan,
            vec![Some(0), Some(1), Some(0)],
            vec![Some(0), Some(0), Some(0)],
        );
        assert!(r.reported);
        assert_eq!((r.same_worker, r.cross_worker), (2, 1));
        // redis-server reports no worker: nothing is counted, and it says so.
        let r = PlacementReport::new(Placement::Cross, &plan, vec![None; 3], vec![None; 3]);
        assert!(!r.reported);
        assert_eq!((r.same_worker, r.cross_worker), (0, 0));
        assert!(r.describe().contains("not reported"));
    }
}
