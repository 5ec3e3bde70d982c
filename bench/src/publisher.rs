//! Publishers: one OS thread per publisher connection, blocking socket.
//!
//! Publishers are few and each wants a core's attention, so a dedicated thread
//! with a blocking socket is the cheapest way to drive one: a pipelined batch
//! is one `write`, replies come back in one `read`.
//!
//! - Closed loop keeps up to `window` PUBLISHes in flight, refilling when half
//!   have been answered, and pauses while the global undelivered backlog is
//!   above its bound (see [`crate::plan::Workload::max_backlog_mib`]).
//! - Open loop sends on a fixed schedule; each message carries its *intended*
//!   send time, so a stall (ours or the server's) shows up as latency instead
//!   of silently lowering the rate. The same thread reads replies while it
//!   waits (ppoll); waits are precise because its timer slack is set to 1 ns.

use crate::conn::{Naming, Proto, ReadBuf, Target};
use crate::nats;
use crate::payload::{self, Header};
use crate::plan::SubKind;
use crate::resp::{self, Elem};
use crate::shared::Shared;
use crate::tls::Stream;
use crate::verify::Sent;
use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a publisher waits without any reply, while some are
/// outstanding, before declaring the server stuck. A server that keeps
/// answering, however slowly, is not stuck: a run at a rate it cannot
/// sustain drains at its own pace.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings common to every publisher.
#[derive(Debug, Clone)]
pub struct PubConfig {
    pub kind: SubKind,
    pub proto: Proto,
    pub naming: Naming,
    /// Deliveries one message on each channel must produce: what a NATS
    /// PONG stands for, since NATS does not count receivers.
    pub receivers: Arc<Vec<u64>>,
    pub payload: usize,
    pub window: usize,
    pub duration: Duration,
    pub messages: Option<u64>,
    /// Open loop rate for this publisher (messages/s); `None` = closed loop.
    pub rate: Option<f64>,
    /// Offset of this publisher's schedule inside one interval (open loop),
    /// as a fraction in `0..1`, so publishers do not send in lockstep.
    pub phase: f64,
    /// Closed loop: pause while this many deliveries are promised but not received.
    pub max_backlog: u64,
}

/// What one publisher did.
#[derive(Debug, Clone, Default)]
pub struct PubOutcome {
    pub id: u32,
    /// Channel indices and, for each, how many messages were sent on it.
    pub channels: Vec<u32>,
    pub sent_per_channel: Vec<u64>,
    pub sent: u64,
    /// Sum of the integer replies: deliveries the server promised.
    pub promised: u64,
    pub replies: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Why the publisher stopped before its end, if it did. What it sent and
    /// what was answered until then are still above, so that the messages
    /// it sent are verified as such rather than taken for phantoms.
    pub failure: Option<String>,
}

impl PubOutcome {
    /// What was sent and answered on each of this publisher's channels, in
    /// the order of `channels`. Messages go round-robin over the channels
    /// and replies come in order, so the first `replies` messages sent are
    /// the answered ones.
    pub fn sent_on_channels(&self) -> impl Iterator<Item = (u32, Sent)> + '_ {
        let n = self.channels.len().max(1) as u64;
        let answered = self.replies.min(self.sent);
        self.channels
            .iter()
            .zip(&self.sent_per_channel)
            .enumerate()
            .map(move |(i, (&c, &sent))| {
                let share = answered / n + u64::from((i as u64) < answered % n);
                (
                    c,
                    Sent {
                        answered: share.min(sent),
                        sent,
                    },
                )
            })
    }
}

/// Pre-encoded command heads, one per channel: everything before the payload bytes.
fn command_heads(cfg: &PubConfig, channels: &[u32]) -> Vec<Vec<u8>> {
    let verb = cfg.kind.publish_verb();
    channels
        .iter()
        .map(|&c| {
            let name = cfg.naming.channel(c);
            if cfg.proto == Proto::Nats {
                return nats::pub_head(&name, cfg.payload);
            }
            let mut v = Vec::new();
            v.extend_from_slice(b"*3\r\n");
            resp::write_bulk_header(&mut v, verb.len());
            v.extend_from_slice(verb);
            v.extend_from_slice(b"\r\n");
            resp::write_bulk_header(&mut v, name.len());
            v.extend_from_slice(&name);
            v.extend_from_slice(b"\r\n");
            resp::write_bulk_header(&mut v, cfg.payload);
            v
        })
        .collect()
}

/// Builds PUBLISH commands round-robin over a publisher's channels.
pub(crate) struct Encoder {
    id: u32,
    channels: Vec<u32>,
    heads: Vec<Vec<u8>>,
    seqs: Vec<u64>,
    next: usize,
    payload: usize,
    /// NATS: deliveries a message on each of `channels` produces.
    receivers: Vec<u64>,
    nats: bool,
    /// NATS: messages, and their deliveries, since the last PING.
    unpinged: Batch,
    /// NATS: when the last PING went out (CLOCK_MONOTONIC ns).
    pinged_at: u64,
}

/// Messages a NATS PING closes, and the deliveries they must produce.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batch {
    messages: u64,
    deliveries: u64,
}

/// Open loop and probe over NATS: a PING closes a batch once it holds this
/// many messages, or once this long has passed since the last PING, so
/// the server is not asked for a PONG per message.
const PING_EVERY_MESSAGES: u64 = 64;
const PING_EVERY_NS: u64 = 1_000_000;

impl Encoder {
    pub(crate) fn new(id: u32, channels: Vec<u32>, cfg: &PubConfig) -> Encoder {
        Encoder {
            id,
            heads: command_heads(cfg, &channels),
            seqs: vec![0; channels.len()],
            receivers: channels
                .iter()
                .map(|&c| cfg.receivers.get(c as usize).copied().unwrap_or(0))
                .collect(),
            nats: cfg.proto == Proto::Nats,
            unpinged: Batch::default(),
            pinged_at: 0,
            channels,
            next: 0,
            payload: cfg.payload,
        }
    }

    /// NATS: appends a PING that closes the messages pushed since the last
    /// one; `r` counts them when its PONG arrives. Nothing over RESP (every
    /// PUBLISH has its reply) or when no message is waiting.
    pub(crate) fn close_batch(&mut self, out: &mut Vec<u8>, r: &mut Replies, now: u64) {
        if self.nats && self.unpinged.messages > 0 {
            out.extend_from_slice(b"PING\r\n");
            r.batches.push_back(std::mem::take(&mut self.unpinged));
            self.pinged_at = now;
        }
    }

    /// NATS: [`Encoder::close_batch`] when the batch is large or old enough.
    pub(crate) fn maybe_close_batch(&mut self, out: &mut Vec<u8>, r: &mut Replies, now: u64) {
        if self.unpinged.messages >= PING_EVERY_MESSAGES
            || now.saturating_sub(self.pinged_at) >= PING_EVERY_NS
        {
            self.close_batch(out, r, now);
        }
    }

    /// The channel the next [`Encoder::push`] publishes to.
    #[inline]
    pub(crate) fn next_channel(&self) -> u32 {
        self.channels[self.next]
    }

    /// Appends the next PUBLISH, its payload stamped with `sent_ns`.
    #[inline]
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, sent_ns: u64) {
        let i = self.next;
        self.next = if i + 1 == self.channels.len() {
            0
        } else {
            i + 1
        };
        out.extend_from_slice(&self.heads[i]);
        let h = Header {
            publisher: self.id,
            channel: self.channels[i],
            seq: self.seqs[i],
            sent_ns,
        };
        payload::write(out, &h, self.payload);
        out.extend_from_slice(b"\r\n");
        self.seqs[i] += 1;
        if self.nats {
            self.unpinged.messages += 1;
            self.unpinged.deliveries += self.receivers[i];
        }
    }
}

/// Reply accounting shared by both loops (and the latency probe). Over
/// NATS a PONG answers a whole [`Batch`]: its messages count as replies and
/// its deliveries as promised.
#[derive(Default)]
pub(crate) struct Replies {
    promised: u64,
    pub(crate) replies: u64,
    errors: u64,
    first_error: Option<String>,
    nats: bool,
    /// NATS: batches whose PONG has not come yet, oldest first.
    batches: std::collections::VecDeque<Batch>,
    /// NATS: PINGs from the server not yet answered.
    pongs_owed: u32,
}

impl Replies {
    pub(crate) fn new(proto: Proto) -> Replies {
        Replies {
            nats: proto == Proto::Nats,
            ..Replies::default()
        }
    }

    /// NATS: appends a PONG for each PING the server sent.
    pub(crate) fn answer_pings(&mut self, out: &mut Vec<u8>) {
        for _ in 0..std::mem::take(&mut self.pongs_owed) {
            out.extend_from_slice(b"PONG\r\n");
        }
    }

    /// Consumes complete replies from `rb`; returns how many messages they answer.
    pub(crate) fn take(&mut self, rb: &mut ReadBuf, shared: &Shared) -> Result<u64> {
        if self.nats {
            return self.take_nats(rb, shared);
        }
        let buf = rb.unparsed();
        let mut pos = 0;
        let mut n = 0;
        let mut promised = 0;
        while let Some((f, used)) = resp::parse_frame(&buf[pos..])? {
            pos += used;
            n += 1;
            match f.elems() {
                [Elem::Int(v)] if *v >= 0 => promised += *v as u64,
                [e] => {
                    self.errors += 1;
                    if self.first_error.is_none() {
                        self.first_error = Some(resp::describe(e));
                    }
                }
                other => bail!(
                    "unexpected reply to PUBLISH: {:?}",
                    other.iter().map(resp::describe).collect::<Vec<_>>()
                ),
            }
        }
        rb.consume(pos);
        self.promised += promised;
        self.replies += n;
        shared.promised.fetch_add(promised, Ordering::Relaxed);
        Ok(n)
    }

    fn take_nats(&mut self, rb: &mut ReadBuf, shared: &Shared) -> Result<u64> {
        let buf = rb.unparsed();
        let mut pos = 0;
        let (mut n, mut promised) = (0, 0);
        while let Some((f, used)) = nats::parse(&buf[pos..])? {
            pos += used;
            match f {
                nats::Frame::Pong => {
                    let Some(b) = self.batches.pop_front() else {
                        bail!("PONG without a PING");
                    };
                    n += b.messages;
                    promised += b.deliveries;
                }
                nats::Frame::Ping => self.pongs_owed += 1,
                nats::Frame::Other => {}
                nats::Frame::Err(e) => {
                    self.errors += 1;
                    if self.first_error.is_none() {
                        self.first_error = Some(format!("-ERR {}", String::from_utf8_lossy(e)));
                    }
                }
                nats::Frame::Msg { subject, .. } => bail!(
                    "a publisher connection received a message on {}",
                    String::from_utf8_lossy(subject)
                ),
            }
        }
        rb.consume(pos);
        self.promised += promised;
        self.replies += n;
        shared.promised.fetch_add(promised, Ordering::Relaxed);
        Ok(n)
    }
}

/// A publisher connection, set up and waiting for the start gate.
pub fn spawn(
    id: u32,
    channels: Vec<u32>,
    target: Target,
    cfg: Arc<PubConfig>,
    shared: Arc<Shared>,
    ready: Sender<Result<()>>,
) -> JoinHandle<Result<PubOutcome>> {
    std::thread::Builder::new()
        .name("rcb-pub".into())
        .spawn(move || {
            let mut rb = ReadBuf::new(64 * 1024);
            let stream = match target
                .open(&mut rb)
                .with_context(|| format!("publisher {id}"))
            {
                Ok(s) => {
                    let _ = ready.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return Ok(PubOutcome::default());
                }
            };
            drop(ready);
            let enc = Encoder::new(id, channels, &cfg);
            if !shared.gate.wait() {
                return Ok(PubOutcome::default());
            }
            let mut enc = enc;
            let mut r = Replies::new(cfg.proto);
            let result = if cfg.rate.is_some() {
                open_loop(stream, rb, &mut enc, &mut r, &cfg, &shared)
            } else {
                closed_loop(stream, rb, &mut enc, &mut r, &cfg, &shared)
            };
            let mut o = outcome(enc, r);
            if let Err(e) = result {
                shared.abort.store(true, Ordering::Relaxed);
                o.failure = Some(format!("{e:#}"));
            }
            Ok(o)
        })
        .expect("spawning a thread")
}

/// What a publisher did, once it stopped.
pub(crate) fn outcome(enc: Encoder, r: Replies) -> PubOutcome {
    PubOutcome {
        id: enc.id,
        sent: enc.seqs.iter().sum(),
        sent_per_channel: enc.seqs,
        channels: enc.channels,
        promised: r.promised,
        replies: r.replies,
        errors: r.errors,
        first_error: r.first_error,
        failure: None,
    }
}

fn closed_loop(
    mut s: Stream,
    mut rb: ReadBuf,
    enc: &mut Encoder,
    r: &mut Replies,
    cfg: &PubConfig,
    shared: &Shared,
) -> Result<()> {
    s.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let limit = cfg.messages.unwrap_or(u64::MAX);
    let deadline = Instant::now() + cfg.duration;
    let refill_at = cfg.window / 2;
    let mut wbuf = Vec::with_capacity(cfg.window * (cfg.payload + 64));
    let mut outstanding = 0usize;
    let mut sent = 0u64;
    loop {
        let stopping =
            sent >= limit || shared.abort.load(Ordering::Relaxed) || Instant::now() >= deadline;
        if !stopping && outstanding <= refill_at {
            if shared.backlog() <= cfg.max_backlog {
                let n = ((cfg.window - outstanding) as u64).min(limit - sent);
                wbuf.clear();
                let ts = shared.now_ns();
                for _ in 0..n {
                    enc.push(&mut wbuf, ts);
                }
                enc.close_batch(&mut wbuf, r, ts);
                r.answer_pings(&mut wbuf);
                s.write_all(&wbuf).context("writing PUBLISH")?;
                shared.published.fetch_add(n, Ordering::Relaxed);
                outstanding += n as usize;
                sent += n;
            } else if outstanding == 0 {
                // Subscribers are behind; give them the CPU.
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
        }
        if outstanding == 0 {
            if stopping {
                break;
            }
            continue;
        }
        match rb.read_from(&mut s) {
            Ok(0) => bail!("server closed the publisher connection"),
            Ok(_) => outstanding -= r.take(&mut rb, shared)? as usize,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!(
                    "server answered no PUBLISH for {REPLY_TIMEOUT:?} ({} of {sent} answered)",
                    r.replies
                )
            }
            Err(e) => return Err(e).context("reading PUBLISH replies"),
        }
    }
    Ok(())
}

fn open_loop(
    mut s: Stream,
    mut rb: ReadBuf,
    enc: &mut Encoder,
    r: &mut Replies,
    cfg: &PubConfig,
    shared: &Shared,
) -> Result<()> {
    crate::sys::set_precise_timers();
    // One thread per publisher, non-blocking socket, ppoll until the next send
    // time (ns precision). Replies are read at every tick and writes never
    // block, so a server that stops reading until its replies are taken cannot
    // deadlock us, and there is no second thread to wake per reply.
    s.set_nonblocking(true)?;
    let fd = s.as_raw_fd();
    let interval = 1e9 / cfg.rate.unwrap_or(1.0);
    let limit = cfg.messages.unwrap_or(u64::MAX);
    let start = shared.now_ns() as f64 + cfg.phase * interval;
    let end = shared.now_ns() + cfg.duration.as_nanos() as u64;
    let due = |k: u64| (start + k as f64 * interval) as u64;

    let mut wbuf = Vec::with_capacity(64 * (cfg.payload + 64));
    let mut wpos = 0;
    let mut k: u64 = 0;
    let mut done = false;
    // When a reply last arrived (or sending ended): the timeout runs from it.
    let mut progress_at = Instant::now();
    loop {
        loop {
            match rb.read_from(&mut s) {
                Ok(0) => bail!("server closed the publisher connection"),
                Ok(_) => {
                    if r.take(&mut rb, shared)? > 0 {
                        progress_at = Instant::now();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading PUBLISH replies"),
            }
        }
        let now = shared.now_ns();
        if !done {
            if k >= limit || shared.abort.load(Ordering::Relaxed) || due(k) >= end {
                done = true;
                progress_at = Instant::now();
                enc.close_batch(&mut wbuf, r, now);
            } else {
                if wpos == wbuf.len() {
                    wbuf.clear();
                    wpos = 0;
                }
                // Everything due by now goes out together, each message
                // stamped with its own intended time; the cap keeps one
                // long stall from building a giant buffer.
                let mut batch = 0;
                while batch < 1024 && k < limit && due(k) <= now && due(k) < end {
                    enc.push(&mut wbuf, due(k));
                    k += 1;
                    batch += 1;
                }
                shared.published.fetch_add(batch, Ordering::Relaxed);
                enc.maybe_close_batch(&mut wbuf, r, now);
            }
        }
        r.answer_pings(&mut wbuf);
        while wpos < wbuf.len() {
            match s.write(&wbuf[wpos..]) {
                Ok(n) => wpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("writing PUBLISH"),
            }
        }
        // TLS records the socket had no room for go out now or at a later tick.
        match s.flush() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e).context("writing PUBLISH"),
        }
        let unwritten = wpos < wbuf.len() || s.has_pending_output();
        let wait_ns = if done {
            if !unwritten && r.replies >= k {
                return Ok(());
            }
            if progress_at.elapsed() > REPLY_TIMEOUT {
                bail!(
                    "server answered no PUBLISH for {REPLY_TIMEOUT:?} ({} of {k} answered)",
                    r.replies
                );
            }
            10_000_000
        } else {
            due(k).saturating_sub(shared.now_ns())
        };
        if wait_ns > 0 {
            // While sending, replies are collected at each tick rather than
            // waking for each one: wakeups are the dominant client cost.
            wait_fd(fd, done, unwritten, wait_ns);
        }
    }
}

/// Waits until `fd` is readable (when `want_read`) or writable (when
/// `want_write`), or `ns` pass.
fn wait_fd(fd: std::os::fd::RawFd, want_read: bool, want_write: bool, ns: u64) {
    let mut pfd = libc::pollfd {
        fd,
        events: if want_read { libc::POLLIN } else { 0 }
            | if want_write { libc::POLLOUT } else { 0 },
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask change.
    unsafe {
        libc::ppoll(&mut pfd, 1, &ts, std::ptr::null());
    }
}
