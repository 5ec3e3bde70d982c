//! A worker's broker state: the connections it owns, its local subscription
//! index, and its end of the inter-worker mesh.
//!
//! The server feeds the hub bytes read from a connection ([`Hub::input`]),
//! messages arriving from other workers ([`Hub::drain_inbound`]) and timer
//! ticks ([`Hub::cron`]); it sends what [`Hub::poll_output`] hands back. The
//! hub never does I/O, so every behaviour here is testable without sockets.
//!
//! Publishing: the registry says which workers hold subscribers; the frame is
//! built once, pushed by reference into the ring of every other such worker,
//! and appended to the output queues of this worker's own subscribers. A
//! worker receiving a message consults only its local index.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use indexmap::IndexSet;
use slab::Slab;

use crate::frame::{self, Message, PatternFrame, SharedMessage};
use crate::mesh::Endpoint;
use crate::output::{LimitExceeded, OutputQueue};
use crate::registry::{Lookup, Namespace, WorkerId, WorkerSet};
use crate::resp::decode::{Decoder, RequestLimits};

use crate::session::Session;
use crate::shared::{ClientMeta, Shared, WorkerStats, lock};

/// One in this many messages that cross workers carries its publish time
/// for the delivery latency histogram (the first one always does).
pub const LATENCY_SAMPLE_EVERY: u64 = 32;

/// A connection's handle inside its worker's hub.
pub type ConnKey = usize;

type Fast = foldhash::fast::RandomState;
type Subscribers = IndexSet<ConnKey, Fast>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    Open,
    /// Send what is queued, then close (QUIT, protocol error).
    CloseAfterReply,
    /// Close now, dropping queued output (output limit, CLIENT KILL).
    Killed,
}

pub(crate) struct Conn {
    pub(crate) session: Session,
    pub(crate) out: OutputQueue,
    decoder: Decoder,
    /// A command that waits for room in an inter-worker ring.
    pending: Option<Vec<Bytes>>,
    pub(crate) state: ConnState,
    reader: Option<Waker>,
    pub(crate) local_addr_loopback: bool,
    /// Last read or write that moved data, on the hub's coarse clock
    /// (the `timeout` idle check).
    last_interaction: Instant,
    /// Unprocessed input bytes after the last read (INFO `client_recent_max_input_buffer`).
    input_buffered: usize,
}

/// What the reader of a connection should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Everything in the buffer was handled; read more.
    NeedMore,
    /// A publish waits for room in another worker's ring: stop reading from
    /// this connection until woken (see [`Hub::park_reader`]).
    Blocked,
    /// `DEBUG SLEEP`: block the worker thread for this long, then call `input` again.
    Sleep(Duration),
    /// Stop reading; the writer sends what is queued and closes.
    Close,
}

/// What the writer of a connection should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Send the frames put in the batch (this many bytes), then call [`Hub::sent`].
    Write(usize),
    /// Close the connection.
    Close,
}

/// Outcome of one command.
pub(crate) enum Exec {
    Done,
    Blocked(Vec<Bytes>),
    Sleep(Duration),
    Close,
}

#[derive(Default)]
struct LocalIndex {
    channels: HashMap<Bytes, Subscribers, Fast>,
    shard: HashMap<Bytes, Subscribers, Fast>,
    patterns: HashMap<Bytes, Subscribers, Fast>,
}

impl LocalIndex {
    fn map(&mut self, ns: Namespace) -> &mut HashMap<Bytes, Subscribers, Fast> {
        match ns {
            Namespace::Global => &mut self.channels,
            Namespace::Shard => &mut self.shard,
        }
    }

    fn add(map: &mut HashMap<Bytes, Subscribers, Fast>, name: &Bytes, key: ConnKey) {
        map.entry(name.clone()).or_default().insert(key);
    }

    fn remove(map: &mut HashMap<Bytes, Subscribers, Fast>, name: &[u8], key: ConnKey) {
        if let Some(subs) = map.get_mut(name) {
            subs.swap_remove(&key);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }
}

pub struct Hub {
    pub(crate) worker: WorkerId,
    pub(crate) shared: Arc<Shared>,
    endpoint: Endpoint<SharedMessage>,
    pub(crate) conns: Slab<Conn>,
    by_id: HashMap<u64, ConnKey, Fast>,
    local: LocalIndex,
    lookup: Lookup,
    /// The reply of the command being executed (dropped under CLIENT REPLY OFF/SKIP).
    pub(crate) reply: BytesMut,
    /// Set while executing a command whose reply CLIENT REPLY SKIP suppresses.
    pub(crate) skip_reply: bool,
    /// Frames a publisher sends to itself: queued after its PUBLISH reply (Redis 7.2 order).
    deferred: Vec<Bytes>,
    /// Subscribers that crossed an output limit during a fan-out.
    doomed: Vec<(ConnKey, LimitExceeded)>,
    blocked: Vec<ConnKey>,
    inbox: Vec<SharedMessage>,
    /// Coarse clock, advanced by [`Hub::cron_at`]: reads and writes stamp
    /// connections with it instead of asking the OS for the time.
    pub(crate) now: Instant,
    /// Messages this worker sent to other workers (latency sampling).
    crossings: u64,
}

impl Hub {
    pub fn new(worker: WorkerId, shared: Arc<Shared>, endpoint: Endpoint<SharedMessage>) -> Self {
        Hub {
            worker,
            shared,
            endpoint,
            conns: Slab::new(),
            by_id: HashMap::default(),
            local: LocalIndex::default(),
            lookup: Lookup::default(),
            reply: BytesMut::with_capacity(4096),
            skip_reply: false,
            deferred: Vec::new(),
            doomed: Vec::new(),
            blocked: Vec::new(),
            inbox: Vec::new(),
            now: Instant::now(),
            crossings: 0,
        }
    }

    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn stats(&self) -> &WorkerStats {
        &self.shared.stats[self.worker]
    }

    /// Number of connections this worker owns.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A new connection arrived on this worker.
    pub fn connect(&mut self, peer: SocketAddr, local: SocketAddr) -> ConnKey {
        let id = self.shared.next_client_id.fetch_add(1, Relaxed);
        let meta = Arc::new(ClientMeta::new(
            id,
            self.worker,
            peer.to_string(),
            local.to_string(),
        ));
        lock(&self.shared.clients).insert(id, meta.clone());
        let config = self.shared.config.load();
        let limits = RequestLimits {
            max_bulk: config.proto_max_bulk_len,
            ..RequestLimits::default()
        };
        let conn = Conn {
            session: Session::new(meta, config.requirepass.is_none()),
            out: OutputQueue::default(),
            decoder: Decoder::new(limits),
            pending: None,
            state: ConnState::Open,
            reader: None,
            local_addr_loopback: peer.ip().is_loopback(),
            last_interaction: self.now,
            input_buffered: 0,
        };
        let key = self.conns.insert(conn);
        self.by_id.insert(id, key);
        let stats = self.stats();
        WorkerStats::add(&stats.connections_received, 1);
        WorkerStats::add(&stats.connected_clients, 1);
        key
    }

    /// The connection is gone (both its reader and writer finished): drop its
    /// subscriptions and state.
    pub fn disconnect(&mut self, key: ConnKey) {
        if !self.conns.contains(key) {
            return;
        }
        self.unsubscribe_everything(key);
        let conn = self.conns.remove(key);
        self.by_id.remove(&conn.session.id);
        lock(&self.shared.clients).remove(&conn.session.id);
        WorkerStats::sub(&self.stats().connected_clients, 1);
        self.shared.release_client();
    }

    /// The client closed its side (or reading failed): close without
    /// sending what is queued, as Redis frees such a client at once.
    pub fn close(&mut self, key: ConnKey) {
        if self
            .conns
            .get(key)
            .is_some_and(|c| c.state == ConnState::Open)
        {
            self.kill(key, None);
        }
    }

    /// Bytes the decoder waits for to finish a large argument (read sizing hint).
    pub fn pending_bulk(&self, key: ConnKey) -> Option<usize> {
        self.conns
            .get(key)
            .and_then(|c| c.decoder.pending_bulk_len())
    }

    /// Handle the bytes read so far from a connection: decode and execute
    /// every complete request, consuming its bytes from `buf`.
    pub fn input(&mut self, key: ConnKey, buf: &mut BytesMut) -> Input {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return Input::Close;
            };
            if conn.state != ConnState::Open {
                return Input::Close;
            }
            let args = match conn.pending.take() {
                Some(args) => args,
                None => match conn.decoder.decode(buf, conn.session.authenticated) {
                    Ok(Some(args)) => args,
                    Ok(None) => return Input::NeedMore,
                    Err(e) => {
                        // Redis replies to a protocol error and closes after the reply.
                        let mut out = b"-ERR ".to_vec();
                        out.extend_from_slice(&e.message_bytes());
                        out.extend_from_slice(b"\r\n");
                        conn.out.extend(&out);
                        conn.state = ConnState::CloseAfterReply;
                        self.shared.errors.record(&out[1..]);
                        WorkerStats::add(&self.stats().error_replies, 1);
                        return Input::Close;
                    }
                },
            };
            match self.execute(key, args) {
                Exec::Done => {}
                Exec::Blocked(args) => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.pending = Some(args);
                    }
                    return Input::Blocked;
                }
                Exec::Sleep(d) => return Input::Sleep(d),
                Exec::Close => return Input::Close,
            }
        }
    }

    /// Run one command and deliver its reply (unless CLIENT REPLY suppresses it).
    fn execute(&mut self, key: ConnKey, args: Vec<Bytes>) -> Exec {
        self.reply.clear();
        let conn = &mut self.conns[key];
        let before = conn.session.in_pubsub();
        self.skip_reply = match conn.session.reply_mode {
            crate::session::ReplyMode::SkipNext => {
                conn.session.reply_mode = crate::session::ReplyMode::On;
                true
            }
            _ => false,
        };
        let exec = crate::commands::dispatch(self, key, args);
        if matches!(exec, Exec::Blocked(_)) {
            // Nothing ran; the command is retried as a whole later.
            if self.skip_reply {
                self.conns[key].session.reply_mode = crate::session::ReplyMode::SkipNext;
            }
            return exec;
        }
        WorkerStats::add(&self.stats().commands_processed, 1);
        if self.reply.first() == Some(&b'-') {
            // Counted whether or not CLIENT REPLY lets it through, as Redis does.
            self.shared.errors.record(&self.reply[1..]);
            WorkerStats::add(&self.stats().error_replies, 1);
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return Exec::Close;
        };
        let suppressed =
            self.skip_reply || conn.session.reply_mode == crate::session::ReplyMode::Off;
        if !self.reply.is_empty() && !suppressed {
            conn.out.extend(&self.reply);
        }
        let proto = conn.session.proto;
        for f in self.deferred.drain(..) {
            conn.out.push_frame(&f, proto);
        }
        let after = conn.session.in_pubsub();
        if before != after {
            let stat = &self.shared.stats[self.worker].pubsub_clients;
            if after {
                WorkerStats::add(stat, 1)
            } else {
                WorkerStats::sub(stat, 1)
            }
        }
        self.check_doomed();
        exec
    }

    /// Close connections whose output crossed a limit during a fan-out.
    fn check_doomed(&mut self) {
        while let Some((key, why)) = self.doomed.pop() {
            self.kill(key, Some(why));
        }
    }

    /// Close a connection now, dropping its queued output.
    pub(crate) fn kill(&mut self, key: ConnKey, why: Option<LimitExceeded>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state == ConnState::Killed {
            return;
        }
        conn.state = ConnState::Killed;
        conn.out.clear();
        conn.out.wake();
        if let Some(w) = conn.reader.take() {
            w.wake();
        }
        if let Some(why) = why {
            let id = conn.session.id;
            let addr = conn.session.meta.addr.clone();
            tracing::warn!(
                "client id={id} addr={addr} closed for overcoming of output buffer limits ({why:?})"
            );
            WorkerStats::add(&self.stats().output_limit_disconnections, 1);
        }
        // Stop deliveries at once; the reader's disconnect finishes the cleanup.
        self.unsubscribe_everything(key);
    }

    // ----- subscriptions -------------------------------------------------

    /// Add one subscription of `key`; false if it was already held.
    pub(crate) fn add_subscription(&mut self, key: ConnKey, kind: SubKind, name: &Bytes) -> bool {
        let conn = &mut self.conns[key];
        let set = match kind {
            SubKind::Channel(ns) => conn.session.set(ns),
            SubKind::Pattern => &mut conn.session.patterns,
        };
        if set.contains(&name[..]) {
            return false;
        }
        // `name` is a slice of the connection's read buffer: keep a copy of
        // its own, or a held subscription would pin the whole buffer.
        let name = &Bytes::copy_from_slice(name);
        set.insert(name.clone());
        // Registry first, then the local index: once the confirmation is
        // queued, publishers on every worker see this subscriber.
        match kind {
            SubKind::Channel(ns) => {
                self.shared.registry.subscribe(ns, name, self.worker);
                LocalIndex::add(self.local.map(ns), name, key);
            }
            SubKind::Pattern => {
                self.shared.registry.psubscribe(name, self.worker);
                LocalIndex::add(&mut self.local.patterns, name, key);
            }
        }
        true
    }

    /// Remove one subscription of `key`; false if it was not held.
    pub(crate) fn remove_subscription(&mut self, key: ConnKey, kind: SubKind, name: &[u8]) -> bool {
        let conn = &mut self.conns[key];
        let set = match kind {
            SubKind::Channel(ns) => conn.session.set(ns),
            SubKind::Pattern => &mut conn.session.patterns,
        };
        if !set.shift_remove(name) {
            return false;
        }
        match kind {
            SubKind::Channel(ns) => {
                LocalIndex::remove(self.local.map(ns), name, key);
                self.shared.registry.unsubscribe(ns, name, self.worker);
            }
            SubKind::Pattern => {
                LocalIndex::remove(&mut self.local.patterns, name, key);
                self.shared.registry.punsubscribe(name, self.worker);
            }
        }
        true
    }

    /// Drop every subscription of a connection without confirmations (RESET, close).
    pub(crate) fn unsubscribe_everything(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let was = conn.session.in_pubsub();
        let channels = std::mem::take(&mut conn.session.channels);
        let patterns = std::mem::take(&mut conn.session.patterns);
        let shard = std::mem::take(&mut conn.session.shard_channels);
        conn.session.publish_counts();
        for c in &channels {
            LocalIndex::remove(&mut self.local.channels, c, key);
            self.shared
                .registry
                .unsubscribe(Namespace::Global, c, self.worker);
        }
        for c in &shard {
            LocalIndex::remove(&mut self.local.shard, c, key);
            self.shared
                .registry
                .unsubscribe(Namespace::Shard, c, self.worker);
        }
        for p in &patterns {
            LocalIndex::remove(&mut self.local.patterns, p, key);
            self.shared.registry.punsubscribe(p, self.worker);
        }
        if was {
            WorkerStats::sub(&self.shared.stats[self.worker].pubsub_clients, 1);
        }
    }

    // ----- publishing ----------------------------------------------------

    /// PUBLISH / SPUBLISH from connection `key`. Returns the receiver count,
    /// or None when a target worker's ring is full (nothing was done; retry
    /// once woken).
    pub(crate) fn publish(
        &mut self,
        key: ConnKey,
        ns: Namespace,
        channel: &Bytes,
        payload: &[u8],
    ) -> Option<u64> {
        self.shared.registry.lookup(ns, channel, &mut self.lookup);
        let mut workers = self.lookup.channel.workers;
        let mut count = self.lookup.channel.count;
        for p in &self.lookup.patterns {
            workers = WorkerSet(workers.0 | p.hits.workers.0);
            count += p.hits.count;
        }
        if count == 0 {
            WorkerStats::add(&self.stats().messages_published, 1);
            return Some(0);
        }
        for w in workers.iter().filter(|&w| w != self.worker) {
            if !self.endpoint.has_room(w) {
                // Invariant 5: stop reading this publisher until the target drains.
                self.endpoint.want_room(w);
                return None;
            }
        }
        // Only messages that cross to another worker feed the latency
        // histogram, and only one in LATENCY_SAMPLE_EVERY of them is stamped:
        // a clock read costs far more on the hot path than its ~30 ns alone
        // (the vDSO's ordered TSC read stalls the pipeline).
        let mut published = None;
        if workers.iter().any(|w| w != self.worker) {
            if self.crossings.is_multiple_of(LATENCY_SAMPLE_EVERY) {
                published = Some(Instant::now());
            }
            self.crossings = self.crossings.wrapping_add(1);
        }
        let message = Arc::new(Message {
            published,
            ns,
            channel: channel.clone(),
            frame: if self.lookup.channel.count > 0 {
                frame::message(ns, channel, payload)
            } else {
                Bytes::new()
            },
            patterns: self
                .lookup
                .patterns
                .iter()
                .map(|p| PatternFrame {
                    pattern: p.pattern.clone(),
                    frame: frame::pmessage(&p.pattern, channel, payload),
                })
                .collect(),
        });
        for w in workers.iter().filter(|&w| w != self.worker) {
            // Room was checked above and only this thread pushes into these rings.
            let _ = self.endpoint.push(w, message.clone());
        }
        if workers.contains(self.worker) {
            self.deliver(&message, Some(key));
        }
        WorkerStats::add(&self.stats().messages_published, 1);
        Some(count)
    }

    /// Append a message to every local subscriber's output queue.
    /// Frames for `publisher` itself go to `deferred` (sent after its reply).
    fn deliver(&mut self, message: &Message, publisher: Option<ConnKey>) {
        let limit = self.shared.config.load().output_limit_pubsub;
        let map = match message.ns {
            Namespace::Global => &self.local.channels,
            Namespace::Shard => &self.local.shard,
        };
        // Channel subscribers first, then each matching pattern's: the order
        // Redis delivers `message` and `pmessage` in.
        let channel = (!message.frame.is_empty())
            .then(|| map.get(&message.channel).map(|subs| (subs, &message.frame)))
            .flatten();
        let patterns = message.patterns.iter().filter_map(|p| {
            self.local
                .patterns
                .get(&p.pattern)
                .map(|subs| (subs, &p.frame))
        });
        let mut delivered = 0u64;
        for (subs, frame) in channel.into_iter().chain(patterns) {
            for &k in subs {
                delivered += 1;
                if publisher == Some(k) {
                    self.deferred.push(frame.clone());
                    continue;
                }
                let Some(conn) = self.conns.get_mut(k) else {
                    continue;
                };
                if conn.state == ConnState::Killed {
                    continue;
                }
                conn.out.push_frame(frame, conn.session.proto);
                if let Some(why) = conn.out.check_limit(&limit) {
                    self.doomed.push((k, why));
                }
            }
        }
        WorkerStats::add(
            &self.shared.stats[self.worker].messages_delivered,
            delivered,
        );
    }

    /// Ring the doorbells of workers this turn pushed messages to.
    pub fn flush_rings(&mut self) {
        self.endpoint.flush();
    }

    // ----- the worker's inbound side -------------------------------------

    /// Park protocol of the worker's inbound task (see `mesh::Endpoint::poll_idle`).
    pub fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.endpoint.poll_idle(cx)
    }

    /// Deliver every message waiting in the inbound rings, then wake readers
    /// that were waiting for ring room and act on CLIENT KILL requests.
    /// Never waits for outbound room (invariant 5: no deadlock).
    pub fn drain_inbound(&mut self) -> usize {
        let mut inbox = std::mem::take(&mut self.inbox);
        let n = self.endpoint.drain(|_, m| inbox.push(m));
        // At most one clock read per batch: every message in it is queued now.
        let mut now = None;
        let histogram = &self.shared.stats[self.worker].delivery_latency;
        for published in inbox.iter().filter_map(|m| m.published) {
            let now = *now.get_or_insert_with(Instant::now);
            histogram.record(now.saturating_duration_since(published));
        }
        for m in inbox.drain(..) {
            self.deliver(&m, None);
        }
        self.inbox = inbox;
        self.check_doomed();
        for key in std::mem::take(&mut self.blocked) {
            if let Some(w) = self.conns.get_mut(key).and_then(|c| c.reader.take()) {
                w.wake();
            }
        }
        if self.shared.kills_pending[self.worker].swap(false, Acquire) {
            let ids = std::mem::take(&mut *lock(&self.shared.kills[self.worker]));
            for id in ids {
                if let Some(&key) = self.by_id.get(&id) {
                    self.kill(key, None);
                }
            }
        }
        n
    }

    /// Shutting down: deliver what already arrived, then let every
    /// connection send what is queued for it and close.
    pub fn close_all(&mut self) {
        self.drain_inbound();
        for (_, conn) in self.conns.iter_mut() {
            if conn.state == ConnState::Open {
                conn.state = ConnState::CloseAfterReply;
            }
            conn.out.wake();
            if let Some(w) = conn.reader.take() {
                w.wake();
            }
        }
    }

    /// The reader of `key` got [`Input::Blocked`]: wake it when rings drain.
    pub fn park_reader(&mut self, key: ConnKey, waker: &Waker) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.reader = Some(waker.clone());
            self.blocked.push(key);
        }
    }

    // ----- the writer side -----------------------------------------------

    /// Next action for the writer of `key`: frames to send (moved into
    /// `batch`), close, or Pending (woken when output is queued).
    pub fn poll_output(
        &mut self,
        key: ConnKey,
        cx: &mut Context<'_>,
        batch: &mut Vec<Bytes>,
    ) -> Poll<Output> {
        let Some(conn) = self.conns.get_mut(key) else {
            return Poll::Ready(Output::Close);
        };
        if conn.state == ConnState::Killed {
            return Poll::Ready(Output::Close);
        }
        if !conn.out.is_empty() {
            let n = conn.out.take(batch);
            return Poll::Ready(Output::Write(n));
        }
        if conn.state == ConnState::CloseAfterReply {
            return Poll::Ready(Output::Close);
        }
        conn.out.register(cx.waker());
        Poll::Pending
    }

    /// The writer sent `n` bytes of what it took.
    pub fn sent(&mut self, key: ConnKey, n: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.out.sent(n);
            conn.last_interaction = self.now;
        }
        let stats = self.stats();
        WorkerStats::add(&stats.net_output_bytes, n as u64);
        WorkerStats::add(&stats.writes_processed, 1);
    }

    /// The reader got `n` bytes (INFO counters) — and checks the query buffer limit:
    /// false means the client must be closed.
    pub fn received(&mut self, key: ConnKey, n: usize, buffered: usize) -> bool {
        let stats = self.stats();
        WorkerStats::add(&stats.net_input_bytes, n as u64);
        WorkerStats::add(&stats.reads_processed, 1);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.last_interaction = self.now;
            conn.input_buffered = buffered;
        }
        let limit = self.shared.config.load().client_query_buffer_limit;
        if buffered > limit {
            WorkerStats::add(&self.stats().query_buffer_disconnections, 1);
            if let Some(conn) = self.conns.get(key) {
                tracing::warn!(
                    "closing client id={} addr={}: query buffer over {limit} bytes",
                    conn.session.id,
                    conn.session.meta.addr
                );
            }
            self.kill(key, None);
            return false;
        }
        true
    }

    /// Periodic housekeeping (about every 100 ms): soft output limits that
    /// expire with no new message, idle clients past `timeout`, gauges for INFO.
    pub fn cron(&mut self) {
        self.cron_at(Instant::now());
    }

    /// [`Hub::cron`] with the current time given (tests drive the clock).
    pub fn cron_at(&mut self, now: Instant) {
        self.now = now;
        let config = self.shared.config.load();
        let limit = config.output_limit_pubsub;
        let timeout = Duration::from_secs(config.timeout);
        let mut idle = Vec::new();
        let (mut out_total, mut out_max, mut in_max, mut paused) = (0u64, 0u64, 0u64, 0u64);
        for (key, conn) in self.conns.iter_mut() {
            if conn.state != ConnState::Open {
                continue;
            }
            let out = conn.out.memory();
            conn.session.meta.output_bytes.store(out, Relaxed);
            out_total += out as u64;
            out_max = out_max.max(out as u64);
            in_max = in_max.max(conn.input_buffered as u64);
            let waiting = conn.pending.is_some();
            paused += waiting as u64;
            if limit.soft > 0
                && conn.session.in_pubsub()
                && let Some(why) = conn.out.check_limit(&limit)
            {
                self.doomed.push((key, why));
            } else if is_idle(conn, now, timeout, waiting) {
                idle.push(key);
            }
        }
        self.check_doomed();
        for key in idle {
            if let Some(conn) = self.conns.get(key) {
                tracing::debug!(
                    "closing idle client id={} addr={}",
                    conn.session.id,
                    conn.session.meta.addr
                );
            }
            WorkerStats::add(&self.stats().idle_timeouts, 1);
            self.kill(key, None);
        }
        let stats = self.stats();
        stats.output_memory.store(out_total, Relaxed);
        stats.max_output_buffer.store(out_max, Relaxed);
        stats.max_input_buffer.store(in_max, Relaxed);
        stats.paused_publishers.store(paused, Relaxed);
        let depth = self.endpoint.inbound_len() as u64;
        stats.inbound_depth.store(depth, Relaxed);
    }
}

/// Redis's `clientsCronHandleTimeout`: with `timeout` set, a client idle for
/// longer than that is closed, unless it is in pub/sub mode (subscribers wait
/// for messages by design) or blocked (here: a publisher paused for ring room).
fn is_idle(conn: &Conn, now: Instant, timeout: Duration, blocked: bool) -> bool {
    !timeout.is_zero()
        && !blocked
        && !conn.session.in_pubsub()
        && now
            .saturating_duration_since(conn.last_interaction)
            .as_secs()
            > timeout.as_secs()
}

/// Which namespace a subscription lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubKind {
    Channel(Namespace),
    Pattern,
}

#[cfg(test)]
mod tests;
