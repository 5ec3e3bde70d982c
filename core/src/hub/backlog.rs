//! The worker's output backlog, and the pause that keeps a worker from
//! taking messages faster than it can write them (invariant 5).
//!
//! A worker's backlog is the output it has queued for its connections and not
//! yet written, counted per connection up to a share (1/16 of
//! `worker-output-backlog`), and not at all for a connection whose writes
//! have made no progress for [`STALL`]. Above `worker-output-backlog` the
//! worker is *congested*: it stops taking messages from its inbound rings
//! (they fill, and the publishing workers stop reading their publishers) and
//! pauses its own publishers that have local subscribers, until the backlog
//! is back under half of that. So when a worker falls behind because there is
//! too much to write, publishers are slowed down, and subscribers that read
//! are never cut off for it; a subscriber that does not read stalls, stops
//! counting, and meets its own output limit as before.

use std::time::Duration;

use super::conn::{Conn, ConnState};
use super::{ConnKey, Hub};
use crate::stats::WorkerStats;

/// Writes that made no progress for this long mark a connection as not
/// reading: its output no longer holds the worker back.
pub const STALL: Duration = Duration::from_secs(2);

/// How much of the backlog one connection may account for: 1/16 of it, so a
/// few subscribers that do not read cannot pause a worker.
const SHARE_DIVISOR: usize = 16;

/// The backlog of one worker.
#[derive(Debug)]
pub(super) struct Backlog {
    /// Sum of the connections' shares.
    total: usize,
    /// `worker-output-backlog`, refreshed by the cron.
    pub(super) limit: usize,
    congested: bool,
}

impl Backlog {
    pub(super) fn new(limit: usize) -> Self {
        Backlog {
            total: 0,
            limit,
            congested: false,
        }
    }

    /// Most one connection's output counts for.
    pub(super) fn share_cap(&self) -> usize {
        self.limit / SHARE_DIVISOR
    }

    /// Bring `conn`'s share in line with its output now.
    pub(super) fn account(&mut self, conn: &mut Conn, share_cap: usize) {
        let share = match conn.state {
            ConnState::Killed => 0,
            _ if conn.stalled => 0,
            _ => conn.out.memory().min(share_cap),
        };
        self.total = self.total - conn.backlog_share + share;
        conn.backlog_share = share;
    }

    /// A connection leaves: its share goes with it.
    pub(super) fn forget(&mut self, conn: &Conn) {
        self.total -= conn.backlog_share;
    }
}

impl Hub {
    /// A connection's output changed: update its share of the backlog.
    /// Cheap enough for every delivery; call [`Hub::check_congestion`] once
    /// after a batch of them.
    pub(super) fn reweigh(&mut self, key: ConnKey) {
        let share_cap = self.backlog.share_cap();
        if let Some(conn) = self.conns.get_mut(key) {
            self.backlog.account(conn, share_cap);
        }
    }

    /// Enter or leave the congested state as the backlog crosses its marks.
    pub(super) fn check_congestion(&mut self) {
        let limit = self.backlog.limit;
        if !self.backlog.congested && self.backlog.total > limit {
            self.backlog.congested = true;
            self.router.set_congested(true);
            WorkerStats::add(&self.stats().backlog_pauses, 1);
        } else if self.backlog.congested && self.backlog.total <= limit / 2 {
            self.backlog.congested = false;
            self.router.set_congested(false);
            // The inbound task resumes draining and wakes paused publishers.
            self.router.ring_self();
        }
    }

    /// Whether the worker is paused by its backlog.
    pub fn congested(&self) -> bool {
        self.backlog.congested
    }

    /// Output queued and not yet written, as the backlog counts it.
    pub fn backlog(&self) -> usize {
        self.backlog.total
    }
}
