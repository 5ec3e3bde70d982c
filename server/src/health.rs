//! Whether the process is ready for clients, as the metrics endpoint's
//! `/readyz` reports it (`/healthz` only says the process is up): ready once
//! the listeners accept and every worker runs, not ready again from the
//! moment shutdown begins, or if a worker stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ringcast_core::shared::Shared;

pub(crate) struct Readiness {
    workers: usize,
    running: AtomicUsize,
    accepting: AtomicBool,
}

/// Held by a worker while its loop runs; dropping it (the worker ended,
/// or unwound) takes the worker out of the count.
pub(crate) struct Running(Arc<Readiness>);

impl Readiness {
    pub(crate) fn new(workers: usize) -> Arc<Readiness> {
        Arc::new(Readiness {
            workers,
            running: AtomicUsize::new(0),
            accepting: AtomicBool::new(false),
        })
    }

    /// A worker's loop starts.
    pub(crate) fn worker_running(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self.clone())
    }

    /// Every listener has its acceptor.
    pub(crate) fn accepting(&self) {
        self.accepting.store(true, Ordering::Release);
    }

    /// Ready, or why not.
    pub(crate) fn check(&self, shared: &Shared) -> Result<(), String> {
        if shared.shutting_down.load(Ordering::Acquire) {
            return Err("shutting down".into());
        }
        let running = self.running.load(Ordering::Acquire);
        if running < self.workers {
            return Err(format!("{running} of {} workers running", self.workers));
        }
        if !self.accepting.load(Ordering::Acquire) {
            return Err("not accepting connections yet".into());
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}
