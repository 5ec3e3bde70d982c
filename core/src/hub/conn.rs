//! The connection table and a connection's life: connect, the states it
//! goes through, close, kill and disconnect.

use std::net::SocketAddr;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::{ConnKey, Hub};
use crate::output::{LimitExceeded, OutputQueue};
use crate::resp::args::Args;
use crate::resp::decode::{Decoder, RequestLimits};
use crate::session::Session;
use crate::stats::{Disconnect, WorkerStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnState {
    Open,
    /// Send what is queued, then close (QUIT, protocol error). Nothing new
    /// is queued for it: its subscriptions are already gone.
    CloseAfterReply,
    /// Closed by the server (output limit, CLIENT KILL, timeout): its queued
    /// output is dropped and its socket shut down at once.
    Killed,
}

pub(super) struct Conn {
    pub(super) session: Session,
    pub(super) out: OutputQueue,
    pub(super) decoder: Decoder,
    /// A command that waits for room in an inter-worker ring.
    pub(super) pending: Option<Args>,
    pub(super) state: ConnState,
    /// The reader, parked while its publish waits for ring room.
    pub(super) reader: Option<Waker>,
    /// Counted in the worker's `pubsub_clients` gauge.
    pub(super) counted_in_pubsub: bool,
    /// Over an output limit: to be closed once the current fan-out is done.
    pub(super) doomed: bool,
    /// What its queued output counts for in the worker's backlog.
    pub(super) backlog_share: usize,
    /// Its writes made no progress for `backlog::STALL`: it does not read.
    pub(super) stalled: bool,
    /// Counted in the backlog for more than its share (in `Backlog::heavy`).
    pub(super) heavy: bool,
    /// Kept the worker congested too long: counted up to its share only,
    /// until its output is back under it (`backlog`).
    pub(super) laggard: bool,
    /// When its writer last finished a write, or its queue last became non-empty.
    pub(super) last_progress: Instant,
    /// Last read or write that moved data, on the hub's coarse clock
    /// (the `timeout` idle check).
    pub(super) last_interaction: Instant,
    /// Unprocessed input bytes after the last read (INFO `client_recent_max_input_buffer`).
    pub(super) input_buffered: usize,
    /// Why it is closing, once it is (`closing`).
    pub(super) ended: Option<Disconnect>,
    /// One of the worker's monitors (`observe`).
    pub(super) watching: bool,
    /// Which worker it should live on (`placement`).
    pub(super) placement: super::placement::Placement,
}

impl Conn {
    /// Redis's `clientsCronHandleTimeout`: with `timeout` set, a client idle for
    /// longer than that is closed, unless it is in pub/sub mode (subscribers wait
    /// for messages by design), a monitor (likewise), or blocked (here: a
    /// publisher paused for ring room).
    pub(super) fn is_idle(&self, now: Instant, timeout: Duration) -> bool {
        !timeout.is_zero()
            && self.pending.is_none()
            && !self.session.in_pubsub()
            && !self.watching
            && now
                .saturating_duration_since(self.last_interaction)
                .as_secs()
                > timeout.as_secs()
    }
}

impl Hub {
    /// A new connection arrived on this worker.
    pub fn connect(&mut self, peer: SocketAddr, local: SocketAddr) -> ConnKey {
        let meta = self
            .shared
            .clients
            .register(self.worker, peer.to_string(), local.to_string());
        let id = meta.id;
        let config = self.shared.config.load();
        let limits = RequestLimits {
            max_bulk: config.proto_max_bulk_len,
            ..RequestLimits::default()
        };
        let conn = Conn {
            session: Session::new(meta, self.shared.acl.users(), peer.ip().is_loopback()),
            out: OutputQueue::default(),
            decoder: Decoder::new(limits),
            pending: None,
            state: ConnState::Open,
            reader: None,
            counted_in_pubsub: false,
            doomed: false,
            backlog_share: 0,
            stalled: false,
            heavy: false,
            laggard: false,
            last_progress: self.now,
            last_interaction: self.now,
            input_buffered: 0,
            ended: None,
            watching: false,
            placement: super::placement::Placement::new(self.now),
        };
        let key = self.conns.insert(conn);
        self.by_id.insert(id, key);
        let stats = self.stats();
        WorkerStats::add(&stats.connections_received, 1);
        WorkerStats::add(&stats.connected_clients, 1);
        key
    }

    /// Once the ACL users changed (the epoch moved): every open connection
    /// takes its user's new rules, and those that may not stay are closed —
    /// their user was deleted or replaced by `ACL LOAD`, or they hold a
    /// subscription their user may no longer have. Runs before each command
    /// and before each batch of inbound messages is delivered, so nothing
    /// published after the change reaches a revoked subscriber.
    pub(super) fn acl_sweep(&mut self) {
        let epoch = self.shared.acl.epoch();
        if epoch == self.acl_epoch {
            return;
        }
        self.acl_epoch = epoch;
        let users = self.shared.acl.users();
        let mut revoked = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if conn.state == ConnState::Open && !conn.session.refresh_acl(&users) {
                revoked.push(key);
            }
        }
        for key in revoked {
            self.kill(key, Disconnect::AclRevoked);
        }
    }

    /// The connection is gone (both its reader and writer finished): drop its
    /// subscriptions and state.
    pub fn disconnect(&mut self, key: ConnKey) {
        if !self.conns.contains(key) {
            return;
        }
        // Every connection is counted once: one that ends with no reason
        // given went away on its own.
        self.note_ending(key, Disconnect::HangUp, None);
        self.unsubscribe_all(key);
        self.leave_monitors(key);
        let conn = self.conns.remove(key);
        self.backlog.forget(&conn);
        self.check_congestion();
        self.by_id.remove(&conn.session.id);
        self.shared.clients.unregister(conn.session.id);
        WorkerStats::sub(&self.stats().connected_clients, 1);
        self.shared.release_client();
    }

    /// The client closed its side (or reading failed): close without
    /// sending what is queued, as Redis frees such a client at once.
    pub fn close(&mut self, key: ConnKey) {
        if self
            .conns
            .get(key)
            .is_some_and(|c| c.state != ConnState::Killed)
        {
            self.kill(key, Disconnect::HangUp);
        }
    }

    /// Bytes the decoder waits for to finish a large argument (read sizing hint).
    pub fn pending_bulk(&self, key: ConnKey) -> Option<usize> {
        self.conns
            .get(key)
            .and_then(|c| c.decoder.pending_bulk_len())
    }

    /// Send what is queued, then close (QUIT, a protocol error): stop
    /// deliveries now and tell the writer.
    pub(super) fn close_after_reply(&mut self, key: ConnKey, why: Disconnect) {
        if self
            .conns
            .get(key)
            .is_none_or(|c| c.state != ConnState::Open)
        {
            return;
        }
        self.note_ending(key, why, None);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.state = ConnState::CloseAfterReply;
        // The writer may be idle with nothing queued (CLIENT REPLY OFF).
        conn.out.wake();
        self.unsubscribe_all(key);
        self.leave_monitors(key);
    }

    /// Close a connection over an output limit, now.
    pub(super) fn kill_over_limit(&mut self, key: ConnKey, limit: LimitExceeded) {
        if self
            .conns
            .get(key)
            .is_some_and(|c| c.state != ConnState::Killed)
        {
            self.note_ending(key, Disconnect::OutputBufferLimit, Some(limit));
            self.kill(key, Disconnect::OutputBufferLimit);
        }
    }

    /// Close a connection now, dropping its queued output.
    pub(super) fn kill(&mut self, key: ConnKey, why: Disconnect) {
        if self
            .conns
            .get(key)
            .is_none_or(|c| c.state == ConnState::Killed)
        {
            return;
        }
        self.note_ending(key, why, None);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.state = ConnState::Killed;
        conn.session
            .meta
            .closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        conn.out.clear();
        conn.out.wake();
        if let Some(w) = conn.reader.take() {
            w.wake();
        }
        // The socket goes at once, even if a write to it is blocked.
        self.shutdowns.push(key);
        self.reweigh(key);
        self.check_congestion();
        // Stop deliveries at once; the reader's disconnect finishes the cleanup.
        self.unsubscribe_all(key);
        self.leave_monitors(key);
    }

    /// Drop every subscription of a connection without confirmations.
    fn unsubscribe_all(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        self.router.unsubscribe_all(key, &mut conn.session);
        conn.session.publish_counts();
        self.sync_pubsub_gauge(key);
    }

    /// Keep the worker's `pubsub_clients` gauge equal to its connections in
    /// pub/sub mode: called after anything that may change the mode.
    pub(super) fn sync_pubsub_gauge(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let now = conn.session.in_pubsub();
        if now == conn.counted_in_pubsub {
            return;
        }
        conn.counted_in_pubsub = now;
        let gauge = &self.shared.worker_stats(self.worker).pubsub_clients;
        if now {
            WorkerStats::add(gauge, 1);
        } else {
            WorkerStats::sub(gauge, 1);
        }
    }

    /// Connections whose sockets must be shut down now (killed since the
    /// last call); the server shuts each one down, which ends any read or
    /// write in flight on it.
    pub fn take_shutdowns(&mut self, into: &mut Vec<ConnKey>) {
        into.append(&mut self.shutdowns);
    }
}
