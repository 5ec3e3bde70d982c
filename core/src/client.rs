//! The client directory: what `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL`
//! know about every connection, readable from any worker.
//!
//! A connection's own state ([`crate::session::Session`]) belongs to the
//! worker that owns it. What other workers may need to see is mirrored into
//! its [`ClientMeta`] (atomics and small locks, written by the owner only when
//! the state changes, never per message), and requests to close a client owned
//! by another worker go through [`Clients::request_kill`], which its owner acts
//! on when it next drains its inbound rings.

use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU16, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use crate::WorkerId;
use crate::lock;

/// `last_cmd` before the first command (CLIENT LIST shows `cmd=NULL`).
pub const NO_COMMAND: u16 = u16::MAX;

/// Bits of [`ClientMeta::flags`]: the modes `CLIENT LIST` shows as letters.
pub mod flags {
    /// In MONITOR mode (`O`).
    pub const MONITOR: u8 = 1;
    /// `CLIENT NO-EVICT on` (`e`).
    pub const NO_EVICT: u8 = 2;
    /// `CLIENT NO-TOUCH on` (`T`).
    pub const NO_TOUCH: u8 = 4;
}

/// What `CLIENT LIST` shows about a connection, readable from any worker.
/// The owning worker updates it when the connection's state changes.
#[derive(Debug)]
pub struct ClientMeta {
    pub id: u64,
    /// The worker that owns it now (a connection may move: `hub::placement`).
    pub worker: AtomicUsize,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub lib_name: Mutex<Option<Bytes>>,
    pub lib_ver: Mutex<Option<Bytes>>,
    /// The ACL user it is logged in as (`user=` of CLIENT LIST).
    pub user: Mutex<Bytes>,
    pub channels: AtomicUsize,
    pub patterns: AtomicUsize,
    pub shard_channels: AtomicUsize,
    /// Commands queued since MULTI, or -1 outside a transaction (`multi=`).
    pub multi: AtomicI64,
    /// Bytes those commands hold (`multi-mem=`).
    pub multi_mem: AtomicUsize,
    pub db: AtomicU64,
    pub resp: AtomicU8,
    /// The last command run (`cmd=` of CLIENT LIST), as its index in the
    /// command table (`commands::name_of`): written on every command, so a
    /// plain atomic rather than a lock.
    pub last_cmd: AtomicU16,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    /// Output bytes held for the client, refreshed by its worker's cron.
    pub output_bytes: AtomicUsize,
    /// Being closed (killed, or over a limit): its worker has not let it go
    /// yet (CLIENT LIST still shows it, as Redis shows a client closed
    /// asynchronously until it is freed), but CLIENT KILL no longer counts
    /// it, as Redis frees a client it kills at once.
    pub closing: AtomicBool,
    /// Modes set by commands ([`flags`]), written by the owning worker.
    pub flags: AtomicU8,
}

impl ClientMeta {
    pub fn new(id: u64, worker: WorkerId, addr: String, laddr: String) -> Self {
        ClientMeta {
            id,
            worker: AtomicUsize::new(worker),
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            user: Mutex::new(Bytes::from_static(b"default")),
            channels: AtomicUsize::new(0),
            patterns: AtomicUsize::new(0),
            shard_channels: AtomicUsize::new(0),
            multi: AtomicI64::new(-1),
            multi_mem: AtomicUsize::new(0),
            db: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            last_cmd: AtomicU16::new(NO_COMMAND),
            last_active_ms: AtomicU64::new(0),
            output_bytes: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            flags: AtomicU8::new(0),
        }
    }

    /// Set or clear mode bits ([`flags`]); only the owning worker writes them.
    pub fn set_flag(&self, flag: u8, on: bool) {
        let old = self.flags.load(Ordering::Relaxed);
        let new = if on { old | flag } else { old & !flag };
        self.flags.store(new, Ordering::Relaxed);
    }

    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }

    /// Whether the client holds any subscription (CLIENT LIST `flags=P`).
    pub fn in_pubsub(&self) -> bool {
        self.channels.load(Ordering::Relaxed)
            + self.patterns.load(Ordering::Relaxed)
            + self.shard_channels.load(Ordering::Relaxed)
            > 0
    }
}

/// Every connected client by id, and the kill requests addressed to each worker.
pub struct Clients {
    next_id: AtomicU64,
    by_id: Mutex<BTreeMap<u64, Arc<ClientMeta>>>,
    /// Client ids other workers asked each worker to close (`CLIENT KILL`).
    kills: Box<[Mutex<Vec<u64>>]>,
    kills_pending: Box<[AtomicBool]>,
}

impl Clients {
    pub fn new(workers: usize) -> Self {
        Clients {
            next_id: AtomicU64::new(1),
            by_id: Mutex::new(BTreeMap::new()),
            kills: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
            kills_pending: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Register a new connection of `worker`; ids start at 1 and are never reused.
    pub fn register(&self, worker: WorkerId, addr: String, laddr: String) -> Arc<ClientMeta> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = Arc::new(ClientMeta::new(id, worker, addr, laddr));
        lock(&self.by_id).insert(id, meta.clone());
        meta
    }

    pub fn unregister(&self, id: u64) {
        lock(&self.by_id).remove(&id);
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientMeta>> {
        lock(&self.by_id).get(&id).cloned()
    }

    /// Every client, by ascending id (a copy: the lock is not held while the caller works).
    pub fn snapshot(&self) -> Vec<Arc<ClientMeta>> {
        lock(&self.by_id).values().cloned().collect()
    }

    /// Ask the worker that owns client `id` to close it; returns that worker,
    /// or None if there is no such client. The caller rings the worker's doorbell.
    pub fn request_kill(&self, id: u64) -> Option<WorkerId> {
        let worker = {
            let by_id = lock(&self.by_id);
            let meta = by_id.get(&id)?;
            // Marked before its owner is read: a connection on its way to
            // another worker is killed on arrival if its old owner was
            // asked (`hub::placement`).
            meta.closing.store(true, Ordering::SeqCst);
            meta.worker.load(Ordering::SeqCst)
        };
        lock(&self.kills[worker]).push(id);
        self.kills_pending[worker].store(true, Ordering::Release);
        Some(worker)
    }

    /// The kill requests addressed to `worker` since it last asked.
    pub fn take_kills(&self, worker: WorkerId) -> Vec<u64> {
        if !self.kills_pending[worker].swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.kills[worker]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_and_unregistered_clients_leave_the_snapshot() {
        let clients = Clients::new(2);
        let a = clients.register(0, "a".into(), "l".into());
        let b = clients.register(1, "b".into(), "l".into());
        assert_eq!((a.id, b.id), (1, 2));
        clients.unregister(a.id);
        let ids: Vec<u64> = clients.snapshot().iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![2]);
    }

    #[test]
    fn kill_requests_reach_the_owning_worker_once() {
        let clients = Clients::new(2);
        let m = clients.register(1, "a".into(), "l".into());
        assert_eq!(clients.request_kill(m.id), Some(1));
        assert_eq!(clients.request_kill(99), None);
        assert!(clients.take_kills(0).is_empty());
        assert_eq!(clients.take_kills(1), vec![m.id]);
        assert!(clients.take_kills(1).is_empty());
    }

    #[test]
    fn a_client_asked_to_close_is_marked_closing_until_its_worker_lets_go() {
        let clients = Clients::new(2);
        let a = clients.register(0, "a".into(), "l".into());
        let b = clients.register(1, "b".into(), "l".into());
        clients.request_kill(b.id);
        assert!(b.closing.load(Ordering::Relaxed));
        assert!(!a.closing.load(Ordering::Relaxed));
        assert_eq!(clients.snapshot().len(), 2, "still listed");
    }
}
