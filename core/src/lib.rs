//! ringcast-core: everything that is broker logic and has no I/O.
//!
//! The server feeds bytes and events into a worker's [`hub::Hub`] and sends
//! what it hands back; the hub parses requests ([`resp`]), runs
//! [`commands`] through a narrow context, routes publishes through the
//! worker's [`router`], the shared [`registry`] and the inter-worker
//! [`mesh`], and queues replies and frames ([`output`]). Nothing here opens a
//! socket, depends on an async runtime or uses `unsafe`.

#![forbid(unsafe_code)]

pub mod acl;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod errors;
pub mod frame;
pub mod glob;
pub mod hub;
pub mod latency;
pub mod mesh;
pub mod monitor;
pub mod output;
pub mod registry;
pub mod resp;
pub mod router;
pub mod session;
pub mod shared;
pub mod slowlog;
pub mod stats;

/// The Redis version ringcast's protocol behaviour follows. Clients gate
/// features on it (redis-py only uses sharded pub/sub from 7.0).
pub const REDIS_VERSION: &str = "7.2.4";

/// ringcast's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Index of a worker thread, `0..workers` (one per core).
pub type WorkerId = usize;

/// Lock one of the small mutexes that guard plain data off the hot path.
/// A panic while holding one leaves that data consistent, so poisoning is
/// ignored rather than spread.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
