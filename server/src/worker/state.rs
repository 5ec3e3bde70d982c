//! What a worker thread's tasks share: its hub, and the socket of each of
//! its connections, so that a connection the hub closes is shut down at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};
use ringcast_core::hub::{ConnKey, Departure, Hub};

use crate::connection::Arrival;

/// What a worker thread's tasks share: its hub, and the socket of each of
/// its connections so that a connection the hub closes can be shut down at
/// once.
pub(crate) struct Worker {
    hub: RefCell<Hub>,
    sockets: RefCell<HashMap<ConnKey, RawFd>>,
    /// Keys taken from the hub by `settle`, kept to avoid allocating.
    closing: RefCell<Vec<ConnKey>>,
    /// The worker runs on io_uring (whose writes are seen done late).
    uring: bool,
    /// On io_uring, `/dev/null`, written nothing to between turns of a
    /// connection's requests ([`super::yield_to_io`]).
    io_turn: Option<monoio::fs::File>,
    /// Connections moving between workers (`ringcast_core::hub::placement`).
    moves: Moves,
}

/// The channels connections move between workers by: one into each worker.
pub(crate) struct Moves {
    /// Into each worker, by id.
    pub to: Arc<[Sender<Arrival>]>,
    /// Into this one.
    pub from: Receiver<Arrival>,
    /// Arrived, waiting for what their old worker published before they
    /// left to be taken by every worker.
    waiting: RefCell<Vec<Arrival>>,
    /// A timer will look at `waiting` again.
    retry: Cell<bool>,
}

impl Moves {
    pub(crate) fn new(to: Arc<[Sender<Arrival>]>, from: Receiver<Arrival>) -> Self {
        Moves {
            to,
            from,
            waiting: RefCell::new(Vec::new()),
            retry: Cell::new(false),
        }
    }
}

impl Worker {
    pub(super) fn new(hub: Hub, uring: bool, moves: Moves) -> Self {
        Worker {
            hub: RefCell::new(hub),
            sockets: RefCell::new(HashMap::new()),
            closing: RefCell::new(Vec::new()),
            uring,
            io_turn: uring.then(super::open_null).flatten(),
            moves,
        }
    }

    /// `/dev/null` on io_uring ([`super::yield_to_io`]).
    pub(crate) fn io_turn(&self) -> Option<&monoio::fs::File> {
        self.io_turn.as_ref()
    }

    /// The hub, to look at (never held across an await).
    pub(crate) fn hub(&self) -> std::cell::Ref<'_, Hub> {
        self.hub.borrow()
    }

    /// Run `f` on the hub, then shut down the sockets of the connections it closed.
    pub(crate) fn with_hub<T>(&self, f: impl FnOnce(&mut Hub) -> T) -> T {
        let r = f(&mut self.hub.borrow_mut());
        self.settle();
        r
    }

    /// Shut down the socket of every connection the hub closed: its queued
    /// output is already dropped, and a write blocked on a peer that does
    /// not read must end now, not when the peer reads.
    fn settle(&self) {
        let mut closing = self.closing.borrow_mut();
        self.hub.borrow_mut().take_shutdowns(&mut closing);
        if closing.is_empty() {
            return;
        }
        let sockets = self.sockets.borrow();
        for key in closing.drain(..) {
            if let Some(&fd) = sockets.get(&key) {
                shutdown(fd);
            }
        }
    }

    /// A connection was accepted; `fd` stays open until [`Worker::disconnect`].
    pub(crate) fn connect(&self, peer: SocketAddr, local: SocketAddr, fd: RawFd) -> ConnKey {
        let key = self.hub.borrow_mut().connect(peer, local);
        self.sockets.borrow_mut().insert(key, fd);
        key
    }

    /// Both halves of a connection are done: forget its socket (about to
    /// be closed) and its state.
    pub(crate) fn disconnect(&self, key: ConnKey) {
        self.sockets.borrow_mut().remove(&key);
        self.hub.borrow_mut().disconnect(key);
    }

    /// Take `key` out of this worker for the worker it is moving to
    /// ([`Hub::depart`]); its socket is no longer this worker's to shut down.
    pub(crate) fn depart(&self, key: ConnKey) -> Option<Departure> {
        let departure = self.with_hub(|h| h.depart(key))?;
        self.sockets.borrow_mut().remove(&key);
        Some(departure)
    }

    /// Give a departing connection to worker `to` and wake it; back if
    /// that worker has stopped.
    pub(crate) fn send_to(&self, to: usize, arrival: Arrival) -> Result<(), Arrival> {
        let Some(tx) = self.moves.to.get(to) else {
            return Err(arrival);
        };
        tx.send(arrival).map_err(|e| e.into_inner())?;
        self.hub().shared().doorbells.ring(to);
        Ok(())
    }

    /// Take in a connection from another worker, with its socket `fd`.
    pub(crate) fn arrive(&self, departure: Departure, fd: RawFd) -> ConnKey {
        let key = self.hub.borrow_mut().arrive(departure);
        self.sockets.borrow_mut().insert(key, fd);
        // A kill that reached it on the way shuts its socket down now.
        self.settle();
        key
    }

    /// Connections that moved here and may run now (everything their old
    /// worker published before has been taken everywhere); the others
    /// keep waiting. Whether some are still waiting.
    pub(crate) fn take_arrivals(&self, mut ready: impl FnMut(Arrival)) -> bool {
        let mut waiting = self.moves.waiting.borrow_mut();
        waiting.extend(self.moves.from.try_iter());
        if waiting.is_empty() {
            return false;
        }
        let mut i = 0;
        while i < waiting.len() {
            if self.hub().may_resume(waiting[i].departure()) {
                ready(waiting.swap_remove(i));
            } else {
                i += 1;
            }
        }
        !waiting.is_empty()
    }

    /// Shutting down: close the connections still waiting to run here.
    /// They sent nothing that was left unanswered (their old writer sent
    /// every reply before they left), and what they read and did not run
    /// is dropped, as every reader stops reading now.
    pub(crate) fn abandon_arrivals(&self) {
        let shared = self.hub().shared().clone();
        for arrival in self.moves.waiting.borrow_mut().drain(..) {
            arrival.abandon(&shared);
        }
    }

    /// Claim the timer that looks at waiting arrivals again: false if one
    /// is already set.
    pub(crate) fn claim_retry(&self) -> bool {
        !self.moves.retry.replace(true)
    }

    pub(crate) fn retry_done(&self) {
        self.moves.retry.set(false);
    }

    /// Whether this worker runs on io_uring: a write's completion is seen
    /// only when the worker next waits for events.
    pub(crate) fn uring(&self) -> bool {
        self.uring
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.hub
            .borrow()
            .shared()
            .shutting_down
            .load(Ordering::Acquire)
    }
}

/// Shut a connection's socket down in both directions: a read or write in
/// flight on it ends, and the peer sees the close.
///
/// Only called on a socket that is still open: a connection's descriptor is
/// closed when both its halves are dropped, after both loops have returned
/// and the worker has forgotten it (`Worker::disconnect`).
pub(crate) fn shutdown(fd: RawFd) {
    // SAFETY: shutdown(2) takes a plain descriptor and touches no memory; by
    // the rule above, `fd` is this connection's open socket.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}
