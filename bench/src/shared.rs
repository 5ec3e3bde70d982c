//! State shared by every thread of one run: the clock, the global
//! promised/delivered counters that bound the closed-loop backlog, the stop
//! flag for subscriber loops, the start gate, the end of the warm-up, and
//! the interval latencies of the time series.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

pub struct Shared {
    /// Messages written by all publishers so far.
    pub published: AtomicU64,
    /// Messages intended to be sent before this (CLOCK_MONOTONIC ns) are
    /// warm-up: verified, but not in the latency figures.
    pub measure_from_ns: AtomicU64,
    /// Latencies since the series last took them (see [`crate::series`]).
    pub interval: Mutex<Histogram<u64>>,
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
            published: AtomicU64::new(0),
            measure_from_ns: AtomicU64::new(0),
            interval: Mutex::new(crate::series::interval_histogram()),
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

    /// Adds a subscriber thread's interval latencies.
    pub fn add_interval(&self, h: &Histogram<u64>) {
        let mut i = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        let _ = i.add(h);
    }

    /// Takes the interval latencies, leaving an empty histogram.
    pub fn take_interval(&self, into: &mut Histogram<u64>) {
        let mut i = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        let _ = into.add(&*i);
        i.reset();
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
