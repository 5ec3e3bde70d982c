//! What a worker thread's tasks share: its hub, and the socket of each of
//! its connections, so that a connection the hub closes is shut down at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use ringcast_core::hub::{ConnKey, Hub};

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
}

impl Worker {
    pub(super) fn new(hub: Hub, uring: bool) -> Self {
        Worker {
            hub: RefCell::new(hub),
            sockets: RefCell::new(HashMap::new()),
            closing: RefCell::new(Vec::new()),
            uring,
        }
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
