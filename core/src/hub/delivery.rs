//! Putting published messages into subscribers' output queues: this
//! worker's own publishes, once the command that made them is done, and
//! messages from other workers, drained from the inbound rings.

use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::conn::ConnState;
use super::{ConnKey, Hub};
use crate::frame::Message;
use crate::stats::WorkerStats;

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
    fn deliver(&mut self, message: &Message) {
        let limit = self.shared.config.load().output_limit_pubsub;
        let mut delivered = 0u64;
        for r in self.router.recipients(message) {
            delivered += 1;
            let Some(conn) = self.conns.get_mut(r.conn) else {
                continue;
            };
            if conn.state != ConnState::Open || conn.doomed {
                continue;
            }
            conn.out.push_frame(r.frame, conn.session.proto);
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
    }

    /// Close connections whose output crossed a limit during a fan-out.
    pub(super) fn check_doomed(&mut self) {
        while let Some((key, why)) = self.doomed.pop() {
            self.kill(key, Some(why));
        }
    }

    /// Ring the doorbells of workers this turn pushed messages to.
    pub fn flush_rings(&mut self) {
        self.router.flush_rings();
    }

    /// Park protocol of the worker's inbound task (see `mesh::Endpoint::poll_idle`).
    pub fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.router.poll_idle(cx)
    }

    /// Deliver every message waiting in the inbound rings, then wake readers
    /// that were waiting for ring room and act on CLIENT KILL requests.
    /// Never waits for outbound room (invariant 5: no deadlock).
    pub fn drain_inbound(&mut self) -> usize {
        let mut inbox = std::mem::take(&mut self.inbox);
        let n = self.router.drain_inbound(&mut inbox);
        self.record_latency(&inbox);
        for m in inbox.drain(..) {
            self.deliver(&m);
        }
        self.inbox = inbox;
        self.check_doomed();
        for key in std::mem::take(&mut self.blocked) {
            if let Some(w) = self.conns.get_mut(key).and_then(|c| c.reader.take()) {
                w.wake();
            }
        }
        for id in self.shared.clients.take_kills(self.worker) {
            if let Some(&key) = self.by_id.get(&id) {
                self.kill(key, None);
            }
        }
        n
    }

    /// Feed the delivery latency histogram from the sampled messages of a batch.
    fn record_latency(&self, batch: &[crate::frame::SharedMessage]) {
        // At most one clock read per batch: every message in it is queued now.
        let mut now = None;
        let histogram = &self.shared.worker_stats(self.worker).delivery_latency;
        for published in batch.iter().filter_map(|m| m.published) {
            let now = *now.get_or_insert_with(Instant::now);
            histogram.record(now.saturating_duration_since(published));
        }
    }

    /// The reader of `key` got [`super::Input::Blocked`]: wake it when rings drain.
    pub fn park_reader(&mut self, key: ConnKey, waker: &Waker) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.reader = Some(waker.clone());
            self.blocked.push(key);
        }
    }

    /// Shutting down: deliver what already arrived, then let every
    /// connection send what is queued for it and close.
    pub fn close_all(&mut self) {
        self.drain_inbound();
        let keys: Vec<ConnKey> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close_after_reply(key);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.out.wake();
                if let Some(w) = conn.reader.take() {
                    w.wake();
                }
            }
        }
    }
}
