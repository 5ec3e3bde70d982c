//! Which worker a connection lives on, and moving it to another.
//!
//! The acceptor deals connections to workers in turn, before it knows what
//! they will do. A publisher whose subscribers all sit on another worker
//! then pays a hand-off for every message: a ring push, a doorbell, the
//! other worker woken. Once such a connection has published
//! [`MOVE_AFTER`] times in a row only to subscribers of one other worker
//! (none of its own worker's), it moves there, and its messages are
//! delivered in the turn that publishes them.
//!
//! Only a connection with nothing in flight moves: no subscription (a
//! subscriber's deliveries are tied to its worker's index), no MULTI, no
//! MONITOR, no publish waiting for ring room, no CLUSTER command under
//! way, nothing queued or being written. The server stops its reader after
//! the command that tipped the count ([`super::Input::Move`]), lets its
//! writer send everything queued ([`super::Output::Depart`]), then takes it
//! out of this hub with [`Hub::depart`] and gives it to the other worker,
//! which takes it in with [`Hub::arrive`].
//!
//! **Order across a move (invariant 1).** Messages the connection published
//! before the move are in the old worker's rings; those it publishes after
//! start from the new one, delivered at once to the new worker's
//! subscribers or pushed into its rings. So a departure carries a
//! [`Fence`] of the old worker's rings, and the new worker runs nothing of
//! the connection until the fence is passed ([`Hub::may_resume`]): every
//! worker has taken, and delivered, all the old worker pushed before.
//! Replies keep their order because the old writer sent all of them before
//! the departure.
//!
//! A connection moves at most once per [`SETTLE`], so one whose
//! subscribers come and go does not bounce between workers.

use std::time::{Duration, Instant};

use super::conn::{Conn, ConnState};
use super::{ConnKey, Hub};
use crate::WorkerId;
use crate::mesh::Fence;
use crate::registry::WorkerSet;
use crate::session::ClusterWait;
use crate::stats::{Disconnect, WorkerStats};

/// Publishes in a row that reached subscribers on one other worker only
/// before the connection moves there.
pub const MOVE_AFTER: u32 = 64;

/// Shortest stay on a worker between two moves of one connection.
pub const SETTLE: Duration = Duration::from_secs(1);

/// A connection's placement state.
#[derive(Debug)]
pub(super) struct Placement {
    /// The worker its latest publishes went to, and how many in a row.
    toward: WorkerId,
    streak: u32,
    /// No move before this (coarse clock).
    settled_until: Instant,
    /// Chosen to move there: the reader stops after the current command.
    pub(super) moving: Option<WorkerId>,
    /// Its writer is asked to send what is queued and hand the socket back.
    pub(super) departing: bool,
    /// The server cannot move it (a TLS session): never chosen.
    fixed: bool,
}

impl Placement {
    pub(super) fn new(now: Instant) -> Self {
        Placement {
            toward: 0,
            streak: 0,
            settled_until: now,
            moving: None,
            departing: false,
            fixed: false,
        }
    }
}

/// A connection between two workers: taken out of one hub by
/// [`Hub::depart`], given to another by [`Hub::arrive`].
pub struct Departure {
    conn: Box<Conn>,
    fence: Fence,
    to: WorkerId,
}

impl Departure {
    /// The worker it is going to.
    pub fn to(&self) -> WorkerId {
        self.to
    }

    /// Its client id.
    pub fn id(&self) -> u64 {
        self.conn.session.id
    }
}

impl std::fmt::Debug for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Departure")
            .field("id", &self.id())
            .field("from", &self.fence.from())
            .field("to", &self.to)
            .finish()
    }
}

impl Hub {
    /// After a command of `key`: where what it published went. Chooses a
    /// move once [`MOVE_AFTER`] publishes in a row went to one other worker
    /// only; a publish that also reached this worker's subscribers, or
    /// several workers', starts the count again.
    pub(super) fn note_route(&mut self, key: ConnKey, route: WorkerSet) {
        if route.is_empty() {
            return;
        }
        let worker = self.worker;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let p = &mut conn.placement;
        let mut targets = route.iter();
        let (Some(to), None) = (targets.next(), targets.next()) else {
            p.streak = 0;
            return;
        };
        if to == worker {
            p.streak = 0;
            return;
        }
        if p.toward != to {
            p.toward = to;
            p.streak = 0;
        }
        p.streak = p.streak.saturating_add(1);
        if p.streak < MOVE_AFTER || p.fixed || self.now < p.settled_until {
            return;
        }
        // Looked at again after as many publishes if it may not move now.
        p.streak = 0;
        if self.shared.config.load().migrate_connections && movable(conn) {
            conn.placement.moving = Some(to);
        }
    }

    /// The worker `key` was chosen to move to, if it still may: the reader
    /// checks after each command.
    pub(super) fn move_chosen(&mut self, key: ConnKey) -> Option<WorkerId> {
        let conn = self.conns.get_mut(key)?;
        let to = conn.placement.moving?;
        if movable(conn) && !self.stopping {
            return Some(to);
        }
        conn.placement.moving = None;
        None
    }

    /// The server cannot move `key` (it holds a TLS session): it stays,
    /// and is not chosen again.
    pub fn stay(&mut self, key: ConnKey) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.placement.moving = None;
            conn.placement.departing = false;
            conn.placement.fixed = true;
        }
    }

    /// The reader of `key` got [`super::Input::Move`] and stopped: its
    /// writer is to send what is queued and then return
    /// [`super::Output::Depart`]. False if it may no longer move (it
    /// resumes where it was).
    pub fn prepare_departure(&mut self, key: ConnKey) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.placement.moving.is_none() || !movable(conn) {
            conn.placement.moving = None;
            return false;
        }
        conn.placement.departing = true;
        conn.out.wake();
        true
    }

    /// The server cannot hand `key` over now (out of descriptors, say): it
    /// stays, and is looked at again after a while.
    pub fn cancel_departure(&mut self, key: ConnKey) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.placement.moving = None;
            conn.placement.departing = false;
            conn.placement.settled_until = self.now + SETTLE;
        }
    }

    /// Take `key` out of this worker, for the worker chosen, once its writer
    /// returned [`super::Output::Depart`]. None if it may no longer move
    /// (killed meanwhile, say): it then resumes here.
    pub fn depart(&mut self, key: ConnKey) -> Option<Departure> {
        let conn = self.conns.get_mut(key)?;
        let to = conn.placement.moving.take();
        conn.placement.departing = false;
        let to = to.filter(|_| movable(conn) && conn.out.memory() == 0 && !self.stopping)?;
        let mut conn = self.conns.remove(key);
        self.backlog.forget(&conn);
        self.by_id.remove(&conn.session.id);
        // The old writer's waker is not carried to another thread.
        conn.out.forget_waker();
        conn.heavy = false;
        conn.session
            .meta
            .worker
            .store(to, std::sync::atomic::Ordering::SeqCst);
        WorkerStats::sub(&self.stats().connected_clients, 1);
        Some(Departure {
            conn: Box::new(conn),
            fence: self.router.fence(),
            to,
        })
    }

    /// Whether `departure` may run here now: everything its old worker
    /// pushed before it left has been taken by every worker.
    pub fn may_resume(&self, departure: &Departure) -> bool {
        self.router.passed(&departure.fence)
    }

    /// Take in a connection another worker gave up; call once
    /// [`Hub::may_resume`] says so. A `CLIENT KILL` that reached it on the
    /// way is carried out now (its socket is in [`Hub::take_shutdowns`]).
    pub fn arrive(&mut self, departure: Departure) -> ConnKey {
        let mut conn = *departure.conn;
        conn.placement.settled_until = self.now + SETTLE;
        conn.placement.streak = 0;
        conn.backlog_share = 0;
        let id = conn.session.id;
        let killed = conn
            .session
            .meta
            .closing
            .load(std::sync::atomic::Ordering::SeqCst);
        let key = self.conns.insert(conn);
        self.by_id.insert(id, key);
        let stats = self.stats();
        WorkerStats::add(&stats.connected_clients, 1);
        WorkerStats::add(&stats.connections_moved, 1);
        if killed {
            self.kill(key, Disconnect::Killed);
        }
        key
    }
}

impl Departure {
    /// The connection cannot reach its new worker (it has stopped, the
    /// server shutting down): forget it, as a disconnect would. Dropping
    /// its socket closes it.
    pub fn abandon(self, shared: &crate::shared::Shared) {
        shared.clients.unregister(self.id());
        shared.release_client();
    }
}

/// Nothing of the connection is tied to its worker but its place in the
/// connection table (module docs).
fn movable(conn: &Conn) -> bool {
    conn.state == ConnState::Open
        && !conn.doomed
        && !conn.watching
        && conn.pending.is_none()
        && conn.reader.is_none()
        && !conn.session.in_pubsub()
        && !conn.session.monitor
        && conn.session.transaction.is_none()
        && matches!(conn.session.cluster_wait, ClusterWait::Idle)
}

/// A departure crosses threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Departure>();
};
