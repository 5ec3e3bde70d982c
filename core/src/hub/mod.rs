//! A worker's broker state: the connections it owns, its pub/sub
//! [`Router`], and the loop that turns their input into output.
//!
//! The server feeds the hub bytes read from a connection ([`Hub::input`]),
//! messages arriving from other workers ([`Hub::drain_inbound`]) and timer
//! ticks ([`Hub::cron`]); it sends what [`Hub::poll_output`] hands back and
//! shuts down the sockets [`Hub::take_shutdowns`] names. The hub never does
//! I/O, so every behaviour here is testable without sockets.
//!
//! Its parts, one file each:
//!
//! - `conn`: the connection table, a connection's life (connect, close,
//!   kill, disconnect) and its state;
//! - `input`: decoding requests and running each command through a
//!   [`Ctx`](crate::commands::Ctx) of disjoint borrows;
//! - `delivery`: putting published messages into subscribers' output
//!   queues, from this worker's own publishes and from the inbound rings;
//! - `writer`: what a connection's writer sends next;
//! - `backlog`: output queued and not yet written, and the pause it puts
//!   on the worker's intake when it grows (invariant 5);
//! - `cluster`: what the cluster bus thread posts (CLUSTER replies, slots
//!   lost);
//! - `closing`: why each connection ends, counted once and logged
//!   (rate-limited per reason);
//! - `placement`: moving a publisher to the worker its messages go to;
//! - `cron`: soft output limits, idle timeouts and gauges, `hz` times a second (every 100 ms by default);
//! - `observe`: what MONITOR, the slow log and the latency monitor see of
//!   the commands run here, and this worker's monitors.

mod backlog;
mod closing;
mod cluster;
mod conn;
mod cron;
mod delivery;
mod input;
mod observe;
pub mod placement;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use slab::Slab;

use crate::WorkerId;
use crate::frame::SharedMessage;
use crate::mesh::Endpoint;
use crate::output::LimitExceeded;
use crate::router::Router;
pub use crate::router::{ConnKey, LATENCY_SAMPLE_EVERY};
use crate::shared::Shared;
use crate::stats::WorkerStats;

use backlog::Backlog;
pub use backlog::STALL;
use closing::DisconnectLog;
pub use closing::LOGS_PER_SECOND;
use conn::Conn;
pub use input::UNAUTHENTICATED_OUTPUT_LIMIT;
pub use placement::Departure;

type Fast = foldhash::fast::RandomState;

/// What the reader of a connection should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Everything in the buffer was handled; read more.
    NeedMore,
    /// A publish waits for room in another worker's ring: stop reading from
    /// this connection until woken (see [`Hub::park_reader`]).
    Blocked,
    /// A turn's worth of requests was handled and more wait in the buffer:
    /// let the worker's writers run and its other connections' input be
    /// read, then call `input` again (without reading first).
    Yield,
    /// `DEBUG SLEEP`: block the worker thread for this long, then call `input` again.
    Sleep(Duration),
    /// Stop reading; the writer sends what is queued and closes.
    Close,
    /// Stop reading: the connection is to move to this worker
    /// ([`Hub::prepare_departure`], `placement`). Bytes left in the buffer
    /// go with it.
    Move(WorkerId),
}

/// What the writer of a connection should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Send the frames put in the batch (this many bytes), then call [`Hub::sent`].
    Write(usize),
    /// Close the connection.
    Close,
    /// Everything queued is sent and the connection is leaving for another
    /// worker ([`Hub::depart`]): stop without closing the socket.
    Depart,
}

pub struct Hub {
    worker: WorkerId,
    shared: Arc<Shared>,
    conns: Slab<Conn>,
    by_id: HashMap<u64, ConnKey, Fast>,
    router: Router,
    /// The reply of the command being executed (dropped under CLIENT REPLY OFF/SKIP).
    reply: BytesMut,
    /// Subscribers that crossed an output limit during a fan-out.
    doomed: Vec<(ConnKey, LimitExceeded)>,
    /// Publishers waiting for ring room.
    blocked: Vec<ConnKey>,
    /// Messages being delivered (scratch, kept to avoid allocating per turn).
    inbox: Vec<SharedMessage>,
    /// Connections closed by the server's decision whose sockets must be
    /// shut down now, even while a write to them is in flight.
    shutdowns: Vec<ConnKey>,
    /// Output queued and not yet written, and whether it pauses the worker.
    backlog: Backlog,
    /// Where the cron's round over the connections is.
    round: cron::Round,
    /// When the cross-protocol warning was last logged.
    security_warned: Option<Instant>,
    /// The rate limit of disconnect log lines.
    disconnect_log: DisconnectLog,
    /// Shutting down: no more requests are read ([`Hub::stop_intake`]).
    stopping: bool,
    /// The ACL epoch this worker's connections last read their users at.
    acl_epoch: u64,
    /// Coarse clock, advanced by [`Hub::cron_at`]: reads and writes stamp
    /// connections with it instead of asking the OS for the time.
    now: Instant,
    /// This worker's monitors and its side of the MONITOR feed.
    observer: observe::Observer,
    /// The id of `CONFIG SET`, after which a turn reads its settings again.
    config_set: Option<u16>,
    /// How long one call of [`Hub::input`] runs requests before it yields
    /// ([`input::INPUT_TURN_TIME`]; zero in tests that watch the turns).
    turn_time: Duration,
}

impl Hub {
    pub fn new(worker: WorkerId, shared: Arc<Shared>, endpoint: Endpoint<SharedMessage>) -> Self {
        Hub {
            worker,
            router: Router::new(worker, shared.clone(), endpoint),
            conns: Slab::new(),
            by_id: HashMap::default(),
            reply: BytesMut::with_capacity(4096),
            doomed: Vec::new(),
            blocked: Vec::new(),
            inbox: Vec::new(),
            shutdowns: Vec::new(),
            backlog: Backlog::new(shared.config.load().worker_output_backlog, Instant::now()),
            round: cron::Round::default(),
            security_warned: None,
            disconnect_log: DisconnectLog::default(),
            stopping: false,
            acl_epoch: shared.acl.epoch(),
            shared,
            now: Instant::now(),
            observer: observe::Observer::default(),
            config_set: crate::commands::audit::config_set_id(),
            turn_time: input::INPUT_TURN_TIME,
        }
    }

    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn stats(&self) -> &WorkerStats {
        self.shared.worker_stats(self.worker)
    }

    /// Number of connections this worker owns.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod observe_tests;
#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod tests;
