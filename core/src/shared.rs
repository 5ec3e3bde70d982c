//! State shared by every worker: the registry, live configuration, counters,
//! the client directory (for `CLIENT LIST`/`KILL` across workers) and facts
//! about the process that `INFO` reports.
//!
//! Nothing here is touched on the publish path except the registry (lock-free)
//! and the calling worker's own counters (relaxed atomics on its own cache line).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use crate::WorkerId;
use crate::acl::Acl;
use crate::client::Clients;
use crate::config::Config;
use crate::latency::LatencyMonitor;
use crate::mesh::Doorbells;
use crate::monitor::MonitorFeed;
use crate::registry::Registry;
use crate::slowlog::SlowLog;
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

#[cfg(test)]
impl ServerInfo {
    /// A process of `workers` workers, for tests that build hubs by hand.
    pub(crate) fn for_tests(workers: usize) -> ServerInfo {
        ServerInfo {
            started: Instant::now(),
            pid: 1,
            run_id: "0".repeat(40),
            port: 6379,
            workers,
            io_backend: "test".into(),
            config_file: String::new(),
            executable: String::new(),
        }
    }
}

pub struct Shared {
    pub registry: Registry,
    /// The names commands answer to (`rename-command`, fixed at startup).
    pub command_names: crate::commands::CommandNames,
    pub config: ArcSwap<Config>,
    pub info: ServerInfo,
    pub stats: Box<[CachePadded<WorkerStats>]>,
    pub rejected_connections: AtomicU64,
    /// TLS handshakes that failed or timed out (INFO `tls_handshake_failures`).
    pub tls_handshake_failures: AtomicU64,
    /// Client slots taken, against `maxclients`: see [`Shared::admit_client`].
    admitted: AtomicUsize,
    pub clients: Clients,
    pub doorbells: std::sync::Arc<Doorbells>,
    pub shutting_down: AtomicBool,
    /// Process figures sampled by the server (memory, CPU, rates).
    pub process: ProcessStats,
    /// Error replies by code (INFO `errorstats`).
    pub errors: ErrorStats,
    /// ACL users, the ACL log and its counters.
    pub acl: Acl,
    /// What operators watch: the MONITOR feed, the slow log, the latency monitor.
    pub monitors: MonitorFeed,
    pub slowlog: SlowLog,
    pub latency: LatencyMonitor,
    /// The counters as `CONFIG RESETSTAT` last saw them ([`Shared::reset_stats`]).
    reset_base: ResetBase,
    /// Asks the process to shut down (`SHUTDOWN`), set by the server.
    pub shutdown: ShutdownHook,
    /// Cluster mode: the slot table's snapshot and the way to the bus thread.
    pub cluster: crate::cluster::Bus,
}

/// The counters at the last `CONFIG RESETSTAT`. The counters themselves
/// never go back (each worker's are written by that worker alone, without
/// a locked instruction, and the metrics endpoint exports them as
/// monotonic counters); INFO shows each minus its value here.
#[derive(Debug, Default)]
struct ResetBase {
    workers: Box<[WorkerStats]>,
    rejected_connections: AtomicU64,
    tls_handshake_failures: AtomicU64,
}

/// How `SHUTDOWN` reaches the process: the server installs a function that
/// starts the same shutdown as SIGTERM. None outside a server (tests).
#[derive(Default)]
pub struct ShutdownHook(std::sync::OnceLock<Box<dyn Fn(String) + Send + Sync>>);

impl ShutdownHook {
    /// Installs the server's shutdown; only the first one counts.
    pub fn install(&self, start: impl Fn(String) + Send + Sync + 'static) {
        let _ = self.0.set(Box::new(start));
    }

    /// Starts the shutdown, saying why in the log; false without a server.
    pub fn request(&self, why: String) -> bool {
        match self.0.get() {
            Some(start) => {
                start(why);
                true
            }
            None => false,
        }
    }
}

impl Shared {
    pub fn new(config: Config, info: ServerInfo, doorbells: std::sync::Arc<Doorbells>) -> Self {
        let workers = info.workers;
        let acl = Acl::new(config.requirepass.as_deref(), config.acl_defaults());
        // Checked when the file was read; a configuration built otherwise
        // (tests) with a bad rename keeps every command's name.
        let command_names =
            crate::commands::CommandNames::new(&config.renamed_commands).unwrap_or_default();
        let cluster = crate::cluster::Bus::new(config.cluster.enabled, workers);
        Shared {
            acl,
            registry: Registry::new(workers),
            command_names,
            config: ArcSwap::from_pointee(config),
            info,
            stats: (0..workers)
                .map(|_| CachePadded::new(WorkerStats::default()))
                .collect(),
            rejected_connections: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            admitted: AtomicUsize::new(0),
            clients: Clients::new(workers),
            doorbells,
            shutting_down: AtomicBool::new(false),
            process: ProcessStats::default(),
            errors: ErrorStats::default(),
            monitors: MonitorFeed::new(workers),
            slowlog: SlowLog::default(),
            latency: LatencyMonitor::new(workers),
            reset_base: ResetBase {
                workers: (0..workers).map(|_| WorkerStats::default()).collect(),
                ..ResetBase::default()
            },
            shutdown: ShutdownHook::default(),
            cluster,
        }
    }

    pub fn total(&self, f: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
        self.stats.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    /// A counter summed over the workers, since the last `CONFIG RESETSTAT`.
    pub fn since_reset(&self, f: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
        (0..self.stats.len())
            .map(|w| self.worker_since_reset(w, &f))
            .sum()
    }

    /// One worker's counter since the last `CONFIG RESETSTAT`.
    pub fn worker_since_reset(&self, w: WorkerId, f: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
        let base = self
            .reset_base
            .workers
            .get(w)
            .map_or(0, |b| f(b).load(Relaxed));
        f(&self.stats[w]).load(Relaxed).saturating_sub(base)
    }

    /// INFO `rejected_connections` since the last `CONFIG RESETSTAT`.
    pub fn rejected_since_reset(&self) -> u64 {
        self.rejected_connections
            .load(Relaxed)
            .saturating_sub(self.reset_base.rejected_connections.load(Relaxed))
    }

    /// INFO `tls_handshake_failures` since the last `CONFIG RESETSTAT`.
    pub fn tls_failures_since_reset(&self) -> u64 {
        self.tls_handshake_failures
            .load(Relaxed)
            .saturating_sub(self.reset_base.tls_handshake_failures.load(Relaxed))
    }

    /// Delivery latencies recorded since the last `CONFIG RESETSTAT`.
    pub fn latency_since_reset(&self) -> crate::stats::LatencySnapshot {
        let mut snapshot = crate::stats::LatencySnapshot::default();
        for (s, base) in self.stats.iter().zip(self.reset_base.workers.iter()) {
            s.delivery_latency
                .merge_since(&base.delivery_latency, &mut snapshot);
        }
        snapshot
    }

    /// `CONFIG RESETSTAT`: what Redis's `resetServerStats`,
    /// `resetCommandTableStats` and `resetErrorTableStats` reset starts
    /// again from zero — the totals, rates and error counts in INFO, the
    /// disconnections by reason, the commands' latency histograms (LATENCY
    /// HISTOGRAM) — not the gauges, the slow log or the latency events, and
    /// not the ACL counters, which Redis keeps too.
    pub fn reset_stats(&self) {
        for (s, base) in self.stats.iter().zip(self.reset_base.workers.iter()) {
            for (now, then) in s.counters().zip(base.counters()) {
                then.store(now.load(Relaxed), Relaxed);
            }
            s.delivery_latency.copy_to(&base.delivery_latency);
        }
        let base = &self.reset_base;
        base.rejected_connections
            .store(self.rejected_connections.load(Relaxed), Relaxed);
        base.tls_handshake_failures
            .store(self.tls_handshake_failures.load(Relaxed), Relaxed);
        self.errors.clear();
        self.latency.reset_histograms();
        self.process.reset_rates.store(true, Relaxed);
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

    /// Takes a client slot if fewer than `max` (`maxclients`) are taken;
    /// false if the client must be refused. The acceptor takes the slot
    /// before it hands the socket to a worker, so sockets on their way to a
    /// busy worker count as much as the clients it already serves: checked
    /// and taken in one atomic step, admission never overshoots. The slot is
    /// given back when the connection is gone (`Hub::disconnect`) or its
    /// hand-off fails.
    pub fn admit_client(&self, max: usize) -> bool {
        self.admitted
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Gives back a slot taken by [`Shared::admit_client`].
    pub fn release_client(&self) {
        // Saturating: a hub driven without an acceptor (the sans-IO tests)
        // releases slots it never took.
        let _ = self
            .admitted
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Client slots taken: connected clients plus those on their way to a worker.
    pub fn admitted_clients(&self) -> usize {
        self.admitted.load(Relaxed)
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

    /// Load the ACL users configured for startup, as Redis does once it is
    /// ready: the config file's `user` lines, or the `aclfile` (not both).
    /// Err is why the server must not start.
    pub fn load_acl(&self) -> Result<(), String> {
        let config = self.config.load();
        if !config.aclfile.is_empty() && !config.users.is_empty() {
            return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
        }
        let defaults = config.acl_defaults();
        self.acl
            .edit(|users| {
                crate::acl::load_user_lines(users, &config.users, defaults, || self.acl.next_id())
            })
            .map_err(|e| e.to_string())?;
        if !config.aclfile.is_empty() {
            let text = config
                .acl_files
                .read(&config.aclfile)
                .map_err(|e| crate::errors::acl_file_open(&config.aclfile, &e))?;
            self.acl
                .edit(|users| {
                    let loaded =
                        crate::acl::parse_file(&text, &config.aclfile, users, defaults, || {
                            self.acl.next_id()
                        })?;
                    *users = loaded;
                    Ok::<(), String>(())
                })
                .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        }
        Ok(())
    }

    /// Wake every worker, so that each re-reads the ACL users at once.
    pub fn ring_all(&self) {
        for w in 0..self.info.workers {
            self.doorbells.ring(w);
        }
    }

    /// Posts to worker `w`'s cluster mailbox and wakes it.
    pub fn post_cluster_mail(&self, w: WorkerId, mail: crate::cluster::Mail) {
        self.cluster.post(w, mail);
        self.doorbells.ring(w);
    }

    /// The counters of worker `w` (only that worker writes them).
    pub fn worker_stats(&self, w: WorkerId) -> &WorkerStats {
        &self.stats[w]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let (doorbells, _) = crate::mesh::mesh::<crate::frame::SharedMessage>(1, 4, 1 << 20);
        let info = ServerInfo::for_tests(1);
        Shared::new(Config::default(), info, doorbells)
    }

    #[test]
    fn concurrent_admissions_take_exactly_maxclients_slots() {
        let shared = shared();
        let admitted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if shared.admit_client(150) {
                            admitted.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Relaxed), 150);
        assert_eq!(shared.admitted_clients(), 150);
        shared.release_client();
        assert!(shared.admit_client(150));
        assert!(!shared.admit_client(150));
    }

    #[test]
    fn a_lower_maxclients_refuses_until_enough_slots_are_released() {
        let shared = shared();
        for _ in 0..5 {
            assert!(shared.admit_client(10));
        }
        assert!(!shared.admit_client(2));
        for _ in 0..4 {
            shared.release_client();
        }
        assert!(shared.admit_client(2));
        for _ in 0..10 {
            shared.release_client();
        }
        assert_eq!(shared.admitted_clients(), 0, "releasing never wraps");
    }
}
