//! ringcast-core: everything that is broker logic and has no I/O.
//!
//! The server feeds bytes and events into a worker's [`hub::Hub`] and sends
//! what it hands back; the hub parses requests ([`resp`]), runs
//! [`commands`], routes publishes through the shared [`registry`] and the
//! inter-worker [`mesh`], and queues replies and frames ([`output`]).
//! Nothing here opens a socket or depends on an async runtime.

pub mod commands;
pub mod config;
pub mod errors;
pub mod frame;
pub mod glob;
pub mod hub;
pub mod mesh;
pub mod output;
pub mod registry;
pub mod resp;
pub mod session;
pub mod shared;
pub mod stats;

/// The Redis version ringcast's protocol behaviour follows. Clients gate
/// features on it (redis-py only uses sharded pub/sub from 7.0).
pub const REDIS_VERSION: &str = "7.2.4";

/// ringcast's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
