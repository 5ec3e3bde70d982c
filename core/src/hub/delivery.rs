//! Putting published messages into subscribers' output queues: this
//! worker's own publishes, once the command that made them is done, and
//! messages from other workers, drained from the inbound rings.

use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::conn::ConnState;
use super::{ConnKey, Hub};
use crate::frame::Message;
use crate::stats::{Disconnect, WorkerStats};

/// Messages taken from the inbound rings between two looks at the backlog:
/// enough to pay for the fence each take costs, few enough that a worker that
/// falls behind stops taking soon after.
const DRAIN_CHUNK: usize = 64;
const DRAIN_CHUNK_BYTES: usize = 64 << 10;
/// Messages' bytes one turn of [`Hub::drain_turn`] takes from the inbound
/// rings before the worker lets its writers send. Redis reads at most 16 KiB
/// from a publisher per event-loop turn and writes to subscribers between
/// turns; a bounded amount per turn likewise keeps what waits in a reading
/// subscriber's queue (and counts against its output limit) to about one
/// turn's worth, where taking a whole ring at once could push it past a
/// small limit.
const TURN_BYTES: usize = 64 << 10;

impl Hub {
    /// Deliver what this worker's connections just published to its own subscribers.
    pub(super) fn deliver_local(&mut self) {
        let mut messages = std::mem::take(&mut self.inbox);
        self.router.take_local(&mut messages);
        for m in messages.drain(..) {
            self.deliver(&m);
        }
        self.inbox = messages;
        self.check_doomed();
    }

    /// Append a message to every local subscriber's output queue, checking
    /// each one's output limit as the frame is queued.
    pub(super) fn deliver(&mut self, message: &Message) {
        let limit = self.shared.config.load().output_limit_pubsub;
        let share_cap = self.backlog.share_cap();
        let since = super::backlog::Backlog::reading_since(self.now);
        let mut delivered = 0u64;
        for r in self.router.recipients(message) {
            delivered += 1;
            let Some(conn) = self.conns.get_mut(r.conn) else {
                continue;
            };
            if conn.state != ConnState::Open || conn.doomed {
                continue;
            }
            if conn.out.memory() == 0 {
                conn.last_progress = self.now;
            }
            conn.out.push_frame(r.frame, conn.session.proto);
            self.backlog.account(r.conn, conn, share_cap, since);
            // The limit applies as frames are queued: once over it, nothing
            // more is queued for the connection, which is closed after the batch.
            if let Some(why) = conn.out.check_limit(&limit) {
                conn.doomed = true;
                self.doomed.push((r.conn, why));
            }
        }
        WorkerStats::add(
            &self.shared.worker_stats(self.worker).messages_delivered,
            delivered,
        );
        self.check_congestion();
    }

    /// Close connections whose output crossed a limit during a fan-out.
    pub(super) fn check_doomed(&mut self) {
        while let Some((key, why)) = self.doomed.pop() {
            self.kill_over_limit(key, why);
        }
    }

    /// Ring the doorbells of workers this turn pushed messages to.
    pub fn flush_rings(&mut self) {
        self.router.flush_rings();
    }

    /// Park protocol of the worker's inbound task (see `mesh::Endpoint::poll_idle`):
    /// while congested, messages waiting in the rings do not wake it, only
    /// its doorbell does (rung when the backlog is down again).
    pub fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.router.poll_idle(cx)
    }

    /// Deliver every message waiting in the inbound rings, then wake readers
    /// that were waiting for ring room, queue the lines other workers posted
    /// for this worker's monitors and act on CLIENT KILL requests.
    /// Never waits for outbound room (invariant 5: no deadlock).
    pub fn drain_inbound(&mut self) -> usize {
        self.drain_upto(usize::MAX)
    }

    /// [`Hub::drain_inbound`] for one turn: whole chunks of messages until
    /// about `TURN_BYTES` (64 KiB) were taken; the caller lets the writers
    /// run before the next turn (shutdown does, see `close_all`).
    pub fn drain_turn(&mut self) -> usize {
        self.drain_upto(TURN_BYTES)
    }

    /// Whether messages wait in the inbound rings.
    pub fn inbound_pending(&self) -> bool {
        self.router.inbound_len() > 0
    }

    /// Shutting down, first step: every reader gets [`super::Input::Close`]
    /// from now on (its connection still sends what is queued for it), so
    /// nothing more is published here, while what was published already is
    /// still delivered.
    pub fn stop_intake(&mut self) {
        self.stopping = true;
        for (_, conn) in self.conns.iter_mut() {
            if let Some(w) = conn.reader.take() {
                w.wake();
            }
        }
    }

    fn drain_upto(&mut self, budget: usize) -> usize {
        let threshold = self.shared.config.load().latency_monitor_threshold;
        let started = (threshold > 0).then(Instant::now);
        let n = self.drain_rings(budget, threshold);
        self.drain_monitor_inbox();
        self.drain_cluster_mail();
        for id in self.shared.clients.take_kills(self.worker) {
            if let Some(&key) = self.by_id.get(&id) {
                self.kill(key, Disconnect::Killed);
            }
        }
        if let Some(started) = started {
            self.latency_event("event-loop", started.elapsed(), threshold);
        }
        n
    }

    /// Deliver what waits in the inbound rings, up to about `budget` bytes,
    /// then wake the readers that waited for ring room.
    fn drain_rings(&mut self, budget: usize, latency_threshold: u64) -> usize {
        self.acl_sweep();
        let (mut n, mut taken_bytes) = (0, 0);
        if !self.congested() {
            // A few messages at a time, so that a backlog that fills up
            // stops the intake soon and the rest stays in the rings.
            let mut inbox = std::mem::take(&mut self.inbox);
            loop {
                let (mut count, mut bytes) = (0, 0);
                let taken = self.router.drain_inbound(|m| {
                    count += 1;
                    bytes += m.weight();
                    inbox.push(m);
                    count < DRAIN_CHUNK && bytes < DRAIN_CHUNK_BYTES
                });
                if taken == 0 {
                    break;
                }
                n += taken;
                taken_bytes += bytes;
                // A message taken now may have been published after an ACL
                // change that revokes one of its subscribers.
                self.acl_sweep();
                for m in inbox.drain(..) {
                    self.record_latency(&m, latency_threshold);
                    self.deliver(&m);
                }
                if self.congested() || taken_bytes >= budget {
                    break;
                }
            }
            self.inbox = inbox;
            self.check_doomed();
        }
        if !self.congested() {
            for key in std::mem::take(&mut self.blocked) {
                if let Some(w) = self.conns.get_mut(key).and_then(|c| c.reader.take()) {
                    w.wake();
                }
            }
        }
        n
    }

    /// Feed the delivery latency histogram from a sampled message, and the
    /// latency monitor's `delivery-lag` event when it waited that long.
    fn record_latency(&self, message: &Message, latency_threshold: u64) {
        if let Some(published) = message.published {
            let histogram = &self.shared.worker_stats(self.worker).delivery_latency;
            let lag = Instant::now().saturating_duration_since(published);
            histogram.record(lag);
            self.latency_event("delivery-lag", lag, latency_threshold);
        }
    }

    /// The reader of `key` got [`super::Input::Blocked`]: wake it when rings drain.
    pub fn park_reader(&mut self, key: ConnKey, waker: &Waker) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.reader = Some(waker.clone());
            self.blocked.push(key);
        }
    }

    /// Shutting down and out of time: drop what is queued and not yet handed
    /// to a writer, so that each connection closes as soon as its current
    /// write is done. A write holds whole frames, so no client is left with
    /// a frame cut short.
    pub fn abandon_output(&mut self) {
        let keys: Vec<ConnKey> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close_after_reply(key, Disconnect::Shutdown);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.out.clear();
                conn.out.wake();
            }
            self.reweigh(key);
        }
    }

    /// Shutting down: deliver what already arrived, then let every
    /// connection send what is queued for it and close.
    pub fn close_all(&mut self) {
        self.drain_inbound();
        let keys: Vec<ConnKey> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close_after_reply(key, Disconnect::Shutdown);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.out.wake();
                if let Some(w) = conn.reader.take() {
                    w.wake();
                }
            }
        }
    }
}
