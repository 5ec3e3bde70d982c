//! State shared by every thread of one run: the clock, the global
//! promised/delivered counters that bound the closed-loop backlog, the stop
//! flag for subscriber loops, and the start gate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

pub struct Shared {
    /// Sum of PUBLISH replies received so far (deliveries the server promised).
    pub promised: AtomicU64,
    /// Messages received by all subscribers so far.
    pub delivered: AtomicU64,
    /// Tells subscriber loops to finish.
    pub stop: AtomicBool,
    /// Something failed: publishers stop early.
    pub abort: AtomicBool,
    /// Opens once every connection is set up.
    pub gate: Gate,
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            promised: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            gate: Gate::default(),
        }
    }

    /// CLOCK_MONOTONIC nanoseconds: the clock of every payload stamp.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        crate::sys::monotonic_ns()
    }

    /// Promised deliveries not yet received.
    #[inline]
    pub fn backlog(&self) -> u64 {
        self.promised
            .load(Ordering::Relaxed)
            .saturating_sub(self.delivered.load(Ordering::Relaxed))
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// A one-shot gate: threads wait until it is opened (go) or closed (abort).
#[derive(Default)]
pub struct Gate {
    state: Mutex<Option<bool>>,
    cv: Condvar,
}

impl Gate {
    /// Blocks until decided; true means go.
    pub fn wait(&self) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(go) = *g {
                return go;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn decide(&self, go: bool) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(go);
        }
        self.cv.notify_all();
    }
}
