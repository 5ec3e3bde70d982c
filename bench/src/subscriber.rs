//! The subscriber engine: a few OS threads, each running an epoll event loop
//! (via `mio`) over a fixed share of the subscriber connections.
//!
//! Why threads + epoll and not an async runtime: connections are assigned to
//! threads once, round-robin, so each thread owns its connections' verifiers
//! and one latency histogram outright — no locks, no task migration, and the
//! per-thread histograms are merged once at the end (only the small interval
//! histograms of the time series are handed over, every 100 ms). Every readable connection
//! is drained into its own large [`ReadBuf`] and parsed in place; the hot path
//! allocates nothing.

use crate::conn::{Naming, Proto, ReadBuf, Target};
use crate::nats;
use crate::payload;
use crate::plan::SubKind;
use crate::resp::{self, Elem};
use crate::shared::Shared;
use crate::tls::Stream;
use crate::verify::SubscriberCheck;
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

/// Latency histogram bounds: 1 ns .. 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Where a subscriber thread (or the probe) puts each message's latency.
pub(crate) struct Recorder {
    /// Messages intended to be sent from the end of the warm-up on: the
    /// run's latency figures.
    pub(crate) hist: Histogram<u64>,
    /// Every message, for the time series and the progress line; `None`
    /// when neither is wanted.
    interval: Option<Histogram<u64>>,
    measure_from: u64,
    flushed_at: u64,
}

impl Recorder {
    /// Call once the start gate is open (the warm-up's end is known then).
    pub(crate) fn new(shared: &Shared, series: bool) -> Recorder {
        Recorder {
            hist: new_histogram(),
            interval: series.then(crate::series::interval_histogram),
            measure_from: shared.measure_from_ns.load(Ordering::Relaxed),
            flushed_at: shared.now_ns(),
        }
    }

    #[inline]
    fn record(&mut self, sent_ns: u64, now: u64) {
        let v = now.saturating_sub(sent_ns).max(1);
        if sent_ns >= self.measure_from {
            self.hist.saturating_record(v);
        }
        if let Some(i) = &mut self.interval {
            i.saturating_record(v);
        }
    }

    /// Hands the interval latencies to `shared` every
    /// [`crate::series::FLUSH_EVERY_NS`], or now when `force`.
    pub(crate) fn flush(&mut self, shared: &Shared, now: u64, force: bool) {
        let Some(i) = &mut self.interval else {
            return;
        };
        if force || now.saturating_sub(self.flushed_at) >= crate::series::FLUSH_EVERY_NS {
            if !i.is_empty() {
                shared.add_interval(i);
                i.reset();
            }
            self.flushed_at = now;
        }
    }

    /// The interval latencies, for a thread that builds the series itself.
    pub(crate) fn interval_mut(&mut self) -> Option<&mut Histogram<u64>> {
        self.interval.as_mut()
    }
}

/// Settings common to every subscriber connection.
#[derive(Debug, Clone)]
pub struct SubConfig {
    pub kind: SubKind,
    pub proto: Proto,
    pub naming: Naming,
    pub check_padding: bool,
    pub read_buf: usize,
    /// Kernel receive buffer to fix on each socket, bytes (0 = autotuned).
    pub recv_buffer: usize,
    /// Fault injection for testing the verifier end to end: pretend every
    /// n-th message never arrived (0 = off).
    pub drop_every: u64,
    /// Pause after each poll round that had events, so reads batch more.
    pub coalesce: Duration,
    /// Exact first bytes of a message frame (see [`resp::message_head`]).
    pub head: Vec<u8>,
    /// Keep interval latencies for the time series and progress line.
    pub series: bool,
}

/// One subscriber connection to set up.
#[derive(Debug, Clone)]
pub struct SubSpec {
    pub index: usize,
    /// Channel or pattern names to subscribe to.
    pub names: Vec<Vec<u8>>,
    /// (publisher, channel) streams this connection must receive.
    pub expected: Vec<(u32, u32)>,
}

/// What one subscriber thread hands back.
pub struct ThreadOutcome {
    pub checks: Vec<(usize, SubscriberCheck)>,
    pub hist: Histogram<u64>,
    pub errors: Vec<String>,
}

/// One subscribed connection, non-blocking, with its verifier.
pub(crate) struct Conn {
    pub(crate) stream: Stream,
    rb: ReadBuf,
    pub(crate) check: SubscriberCheck,
    index: usize,
    pub(crate) closed: bool,
    seen: u64,
}

impl Conn {
    /// Wraps a connection whose subscriptions are confirmed; switches it to
    /// non-blocking mode.
    /// Registers the connection's socket with `poll` (edge-triggered reads).
    pub(crate) fn register(&self, poll: &Poll, token: Token) -> std::io::Result<()> {
        let fd = self.stream.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
    }

    pub(crate) fn deregister(&self, poll: &Poll) {
        let fd = self.stream.as_raw_fd();
        let _ = poll.registry().deregister(&mut SourceFd(&fd));
    }

    pub(crate) fn subscribed(mut s: Stream, rb: ReadBuf, spec: &SubSpec) -> Result<Conn> {
        s.set_nonblocking(true)?;
        Ok(Conn {
            stream: s,
            rb,
            check: SubscriberCheck::new(spec.expected.iter().copied()),
            index: spec.index,
            closed: false,
            seen: 0,
        })
    }
}

/// Starts one subscriber thread. It reports setup success on `ready`, waits
/// for the start gate, then receives until `shared.stop`.
pub fn spawn(
    specs: Vec<SubSpec>,
    target: Target,
    cfg: Arc<SubConfig>,
    shared: Arc<Shared>,
    ready: Sender<Result<()>>,
) -> JoinHandle<Result<ThreadOutcome>> {
    std::thread::Builder::new()
        .name("rcb-sub".into())
        .spawn(move || {
            let conns = match setup(&specs, &target, &cfg) {
                Ok(c) => {
                    let _ = ready.send(Ok(()));
                    c
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return Ok(ThreadOutcome {
                        checks: Vec::new(),
                        hist: new_histogram(),
                        errors: Vec::new(),
                    });
                }
            };
            drop(ready);
            let go = shared.gate.wait();
            event_loop(conns, &cfg, &shared, go)
        })
        .expect("spawning a thread")
}

fn setup(specs: &[SubSpec], target: &Target, cfg: &SubConfig) -> Result<Vec<Conn>> {
    // Subscribe every connection first, then collect confirmations, so the
    // round trips of a thread's connections overlap.
    let mut pending = Vec::with_capacity(specs.len());
    let mut cmd = Vec::new();
    for spec in specs {
        let mut rb = ReadBuf::new(cfg.read_buf);
        let mut s = target
            .open(&mut rb)
            .with_context(|| format!("subscriber {}", spec.index))?;
        if cfg.recv_buffer > 0 {
            // Set once connected: the window scale negotiated at connect
            // follows the system's largest receive buffer, so any size up to
            // it is usable.
            crate::sys::set_recv_buffer(s.as_raw_fd(), cfg.recv_buffer)
                .with_context(|| format!("subscriber {}: SO_RCVBUF", spec.index))?;
        }
        cmd.clear();
        cfg.proto
            .write_subscribe(&mut cmd, cfg.kind.subscribe_verb(), &spec.names, 0);
        s.write_all(&cmd)?;
        pending.push((s, rb, spec));
    }
    let mut conns = Vec::with_capacity(specs.len());
    for (mut s, mut rb, spec) in pending {
        cfg.proto
            .read_confirmations(&mut s, &mut rb, spec.names.len())
            .with_context(|| format!("subscriber {}", spec.index))?;
        conns.push(Conn::subscribed(s, rb, spec)?);
    }
    Ok(conns)
}

fn event_loop(
    mut conns: Vec<Conn>,
    cfg: &SubConfig,
    shared: &Shared,
    go: bool,
) -> Result<ThreadOutcome> {
    let mut rec = Recorder::new(shared, cfg.series);
    let mut errors = Vec::new();
    if go {
        let mut poll = Poll::new()?;
        for (i, c) in conns.iter().enumerate() {
            c.register(&poll, Token(i))?;
        }
        let mut events = Events::with_capacity(1024);
        while !shared.stop.load(Ordering::Relaxed) {
            if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(5))) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            for ev in events.iter() {
                let Some(c) = conns.get_mut(ev.token().0) else {
                    continue;
                };
                if c.closed {
                    continue;
                }
                let n = drain(c, cfg, shared, &mut rec, &mut errors);
                if n > 0 {
                    shared.delivered.fetch_add(n, Ordering::Relaxed);
                }
                if c.closed {
                    c.deregister(&poll);
                }
            }
            rec.flush(shared, shared.now_ns(), false);
            if !cfg.coalesce.is_zero() && !events.is_empty() {
                std::thread::sleep(cfg.coalesce);
            }
        }
        rec.flush(shared, shared.now_ns(), true);
    }
    Ok(ThreadOutcome {
        checks: conns.into_iter().map(|c| (c.index, c.check)).collect(),
        hist: rec.hist,
        errors,
    })
}

/// Reads a connection until it would block (the poller is edge-triggered),
/// verifying every complete frame. Returns messages received.
pub(crate) fn drain(
    c: &mut Conn,
    cfg: &SubConfig,
    shared: &Shared,
    rec: &mut Recorder,
    errors: &mut Vec<String>,
) -> u64 {
    let mut delivered = 0;
    loop {
        match c.rb.read_from(&mut c.stream) {
            Ok(0) => {
                c.closed = true;
                errors.push(format!(
                    "subscriber {}: server closed the connection",
                    c.index
                ));
                return delivered;
            }
            Ok(n) => {
                // One timestamp per read: every message in it was available by now.
                let now = shared.now_ns();
                let filled = c.rb.end == c.rb.data.len();
                match parse_all(c, cfg, now, rec) {
                    Ok(n) => delivered += n,
                    Err(e) => {
                        c.closed = true;
                        errors.push(format!("subscriber {}: {e}", c.index));
                        return delivered;
                    }
                }
                // A read that did not fill the buffer emptied the socket; bytes
                // arriving later raise a new edge. Skipping the read that would
                // only say EAGAIN halves the syscalls when messages trickle in.
                if !filled && n > 0 {
                    return delivered;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return delivered,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                c.closed = true;
                errors.push(format!("subscriber {}: read failed: {e}", c.index));
                return delivered;
            }
        }
    }
}

fn parse_all(c: &mut Conn, cfg: &SubConfig, now: u64, rec: &mut Recorder) -> Result<u64, String> {
    if cfg.proto == Proto::Nats {
        return parse_all_nats(c, cfg, now, rec);
    }
    let buf = &c.rb.data[c.rb.start..c.rb.end];
    let mut pos = 0;
    let mut n = 0;
    let with_pattern = cfg.kind == SubKind::Pattern;
    loop {
        let (channel, body) = if let Some((ch, p, used)) =
            resp::parse_message(&buf[pos..], &cfg.head, with_pattern)
        {
            pos += used;
            (ch, p)
        } else {
            let Some((f, used)) = resp::parse_frame(&buf[pos..]).map_err(|e| e.to_string())? else {
                break;
            };
            pos += used;
            match f.elems() {
                [Elem::Bulk(k), Elem::Bulk(ch), Elem::Bulk(p)]
                    if *k == b"message" || *k == b"smessage" =>
                {
                    (*ch, *p)
                }
                [Elem::Bulk(k), Elem::Bulk(_), Elem::Bulk(ch), Elem::Bulk(p)]
                    if *k == b"pmessage" =>
                {
                    (*ch, *p)
                }
                other => {
                    return Err(format!(
                        "unexpected frame {:?}",
                        other.iter().map(resp::describe).collect::<Vec<_>>()
                    ));
                }
            }
        };
        n += 1;
        observe(&mut c.check, &mut c.seen, cfg, channel, body, now, rec);
    }
    c.rb.consume(pos);
    Ok(n)
}

/// Verifies one delivered message and records its latency.
#[inline]
fn observe(
    check: &mut SubscriberCheck,
    seen: &mut u64,
    cfg: &SubConfig,
    channel: &[u8],
    body: &[u8],
    now: u64,
    rec: &mut Recorder,
) {
    *seen += 1;
    if cfg.drop_every > 0 && seen.is_multiple_of(cfg.drop_every) {
        return;
    }
    match payload::read(body, cfg.check_padding) {
        Ok(h) if cfg.naming.parse_channel(channel) == Some(h.channel) => {
            check.observe(h.publisher, h.channel, h.seq);
            rec.record(h.sent_ns, now);
        }
        _ => check.observe_corrupt(),
    }
}

/// [`parse_all`] for NATS: `MSG` frames, and a PONG for every PING.
fn parse_all_nats(
    c: &mut Conn,
    cfg: &SubConfig,
    now: u64,
    rec: &mut Recorder,
) -> Result<u64, String> {
    let buf = &c.rb.data[c.rb.start..c.rb.end];
    let mut pos = 0;
    let mut n = 0;
    let mut pings = 0;
    while let Some((f, used)) = nats::parse(&buf[pos..]).map_err(|e| e.to_string())? {
        pos += used;
        match f {
            nats::Frame::Msg { subject, payload } => {
                n += 1;
                observe(&mut c.check, &mut c.seen, cfg, subject, payload, now, rec);
            }
            nats::Frame::Ping => pings += 1,
            nats::Frame::Pong | nats::Frame::Other => {}
            nats::Frame::Err(e) => return Err(format!("-ERR {}", String::from_utf8_lossy(e))),
        }
    }
    c.rb.consume(pos);
    for _ in 0..pings {
        // Six bytes into an idle send buffer: a full one means the
        // connection is lost anyway.
        let _ = c.stream.write_all(b"PONG\r\n");
    }
    Ok(n)
}
