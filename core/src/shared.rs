//! State shared by every worker: the registry, live configuration, counters,
//! the client directory (for `CLIENT LIST`/`KILL` across workers) and facts
//! about the process that `INFO` reports.
//!
//! Nothing here is touched on the publish path except the registry (lock-free)
//! and the calling worker's own counters (relaxed atomics on its own cache line).

use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed,
};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use crossbeam_utils::CachePadded;

use crate::commands::CommandSpec;
use crate::config::Config;
use crate::mesh::Doorbells;
use crate::registry::{Registry, WorkerId};
use crate::stats::{ErrorStats, LatencyHistogram, ProcessStats};

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

/// Counters one worker owns (it alone writes them; INFO sums all workers).
#[derive(Default, Debug)]
pub struct WorkerStats {
    pub connections_received: AtomicU64,
    pub connected_clients: AtomicU64,
    pub pubsub_clients: AtomicU64,
    pub commands_processed: AtomicU64,
    pub messages_published: AtomicU64,
    pub messages_delivered: AtomicU64,
    pub output_limit_disconnections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub inbound_depth: AtomicU64,
    /// Error replies sent (INFO `total_error_replies`).
    pub error_replies: AtomicU64,
    /// Read and write calls that moved data (INFO `total_reads_processed` / `total_writes_processed`).
    pub reads_processed: AtomicU64,
    pub writes_processed: AtomicU64,
    pub query_buffer_disconnections: AtomicU64,
    /// Idle clients closed by `timeout`.
    pub idle_timeouts: AtomicU64,
    /// Failed AUTH / HELLO AUTH attempts (INFO `acl_access_denied_auth`).
    pub auth_denied: AtomicU64,
    /// Gauges refreshed by the worker's cron: output bytes held for its
    /// clients, the largest output and input buffer among them, and its
    /// publishers paused for ring room.
    pub output_memory: AtomicU64,
    pub max_output_buffer: AtomicU64,
    pub max_input_buffer: AtomicU64,
    pub paused_publishers: AtomicU64,
    /// CPU time of the worker thread, microseconds (set by the server).
    pub cpu_sys_us: AtomicU64,
    pub cpu_user_us: AtomicU64,
    /// Time from PUBLISH on another worker to the message being queued here.
    pub delivery_latency: LatencyHistogram,
}

impl WorkerStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        // Single writer: a load + store is enough and avoids a locked RMW.
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }
    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_sub(n), Relaxed);
    }
}

/// What `CLIENT LIST` shows about a connection, readable from any worker.
/// The owning worker updates it when the connection's state changes.
#[derive(Debug)]
pub struct ClientMeta {
    pub id: u64,
    pub worker: WorkerId,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub lib_name: Mutex<Option<Bytes>>,
    pub lib_ver: Mutex<Option<Bytes>>,
    pub channels: AtomicUsize,
    pub patterns: AtomicUsize,
    pub shard_channels: AtomicUsize,
    pub db: AtomicU64,
    pub resp: AtomicU8,
    /// The last command run (`cmd=` of CLIENT LIST): written on every
    /// command, so an atomic pointer to its static table entry, not a lock.
    /// Only ever holds null or a pointer taken from a `&'static CommandSpec`.
    last_cmd: AtomicPtr<CommandSpec>,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub output_bytes: AtomicUsize,
}

impl ClientMeta {
    pub fn new(id: u64, worker: WorkerId, addr: String, laddr: String) -> Self {
        ClientMeta {
            id,
            worker,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            channels: AtomicUsize::new(0),
            patterns: AtomicUsize::new(0),
            shard_channels: AtomicUsize::new(0),
            db: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            last_active_ms: AtomicU64::new(0),
            output_bytes: AtomicUsize::new(0),
        }
    }
}

impl ClientMeta {
    /// Record the command the client is running.
    pub fn set_last_cmd(&self, spec: &'static CommandSpec) {
        self.last_cmd
            .store(spec as *const CommandSpec as *mut CommandSpec, Relaxed);
    }

    /// Name of the last command run, `NULL` before the first (as Redis shows it).
    pub fn last_cmd(&self) -> &'static str {
        let p = self.last_cmd.load(Relaxed);
        // SAFETY: `last_cmd` only ever holds null or a pointer made from a
        // `&'static CommandSpec` (see `set_last_cmd`), valid for the whole
        // program and never written through.
        unsafe { p.as_ref() }.map_or("NULL", |spec| spec.name)
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these small locks leaves plain data behind;
    // the data is still consistent, so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Shared {
    pub registry: Registry,
    pub config: ArcSwap<Config>,
    pub info: ServerInfo,
    pub stats: Box<[CachePadded<WorkerStats>]>,
    pub rejected_connections: AtomicU64,
    /// Client slots taken, against `maxclients`: see [`Shared::admit_client`].
    admitted: AtomicUsize,
    pub next_client_id: AtomicU64,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientMeta>>>,
    /// Client ids other workers asked each worker to close (`CLIENT KILL`).
    pub kills: Box<[Mutex<Vec<u64>>]>,
    pub kills_pending: Box<[AtomicBool]>,
    pub doorbells: Arc<Doorbells>,
    pub shutting_down: AtomicBool,
    /// Process figures sampled by the server (memory, CPU, rates).
    pub process: ProcessStats,
    /// Error replies by code (INFO `errorstats`).
    pub errors: ErrorStats,
}

impl Shared {
    pub fn new(config: Config, info: ServerInfo, doorbells: Arc<Doorbells>) -> Self {
        let workers = info.workers;
        Shared {
            registry: Registry::new(workers),
            config: ArcSwap::from_pointee(config),
            info,
            stats: (0..workers)
                .map(|_| CachePadded::new(WorkerStats::default()))
                .collect(),
            rejected_connections: AtomicU64::new(0),
            admitted: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            clients: Mutex::new(BTreeMap::new()),
            kills: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
            kills_pending: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            doorbells,
            shutting_down: AtomicBool::new(false),
            process: ProcessStats::default(),
            errors: ErrorStats::default(),
        }
    }

    pub fn total(&self, f: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
        self.stats.iter().map(|s| f(s).load(Relaxed)).sum()
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
        let Some(worker) = lock(&self.clients).get(&id).map(|m| m.worker) else {
            return false;
        };
        lock(&self.kills[worker]).push(id);
        self.kills_pending[worker].store(true, std::sync::atomic::Ordering::Release);
        self.doorbells.ring(worker);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let (doorbells, _) = crate::mesh::mesh::<()>(1, 4);
        let info = ServerInfo {
            started: Instant::now(),
            pid: 1,
            run_id: "0".repeat(40),
            port: 6379,
            workers: 1,
            io_backend: "test".into(),
            config_file: String::new(),
            executable: String::new(),
        };
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
