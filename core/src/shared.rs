//! State shared by every worker: the registry, live configuration, counters,
//! the client directory (for `CLIENT LIST`/`KILL` across workers) and facts
//! about the process that `INFO` reports.
//!
//! Nothing here is touched on the publish path except the registry (lock-free)
//! and the calling worker's own counters (relaxed atomics on its own cache line).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use crate::WorkerId;
use crate::client::Clients;
use crate::config::Config;
use crate::mesh::Doorbells;
use crate::registry::Registry;
use crate::stats::{ErrorStats, ProcessStats, WorkerStats, WorkerTotals};

/// Facts about the running process, fixed at start.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub started: Instant,
    pub pid: u32,
    /// Random 40-hex-digit identifier of this run (INFO `run_id`).
    pub run_id: String,
    pub port: u16,
    pub workers: usize,
    /// `io_uring` or `epoll`.
    pub io_backend: String,
    pub config_file: String,
    pub executable: String,
}

pub struct Shared {
    pub registry: Registry,
    pub config: ArcSwap<Config>,
    pub info: ServerInfo,
    pub stats: Box<[CachePadded<WorkerStats>]>,
    pub rejected_connections: AtomicU64,
    pub clients: Clients,
    pub doorbells: std::sync::Arc<Doorbells>,
    pub shutting_down: AtomicBool,
    /// Process figures sampled by the server (memory, CPU, rates).
    pub process: ProcessStats,
    /// Error replies by code (INFO `errorstats`).
    pub errors: ErrorStats,
}

impl Shared {
    pub fn new(config: Config, info: ServerInfo, doorbells: std::sync::Arc<Doorbells>) -> Self {
        let workers = info.workers;
        Shared {
            registry: Registry::new(workers),
            config: ArcSwap::from_pointee(config),
            info,
            stats: (0..workers)
                .map(|_| CachePadded::new(WorkerStats::default()))
                .collect(),
            rejected_connections: AtomicU64::new(0),
            clients: Clients::new(workers),
            doorbells,
            shutting_down: AtomicBool::new(false),
            process: ProcessStats::default(),
            errors: ErrorStats::default(),
        }
    }

    pub fn total(&self, f: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
        self.stats.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    /// The counters the process sampler turns into rates.
    pub fn totals(&self) -> WorkerTotals {
        WorkerTotals {
            commands_processed: self.total(|w| &w.commands_processed),
            net_input_bytes: self.total(|w| &w.net_input_bytes),
            net_output_bytes: self.total(|w| &w.net_output_bytes),
        }
    }

    pub fn connected_clients(&self) -> u64 {
        self.total(|s| &s.connected_clients)
    }

    /// Ask the worker that owns client `id` to close it. Returns false if no such client.
    pub fn request_kill(&self, id: u64) -> bool {
        match self.clients.request_kill(id) {
            Some(worker) => {
                self.doorbells.ring(worker);
                true
            }
            None => false,
        }
    }

    /// The counters of worker `w` (only that worker writes them).
    pub fn worker_stats(&self, w: WorkerId) -> &WorkerStats {
        &self.stats[w]
    }
}
