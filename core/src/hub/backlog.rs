//! The worker's output backlog, and the pause that keeps a worker from
//! taking messages faster than it can write them (invariant 5).
//!
//! A worker's backlog is the output it has queued for its connections and not
//! yet written. A connection whose writes are going through (one finished
//! within [`RECENT`]) counts for all its output; one whose writes wait counts
//! for at most a share (1/16 of `worker-output-backlog`), so a few that do
//! not read cannot pause the worker; one whose writes made no progress for
//! [`STALL`] does not count at all. Above `worker-output-backlog` the worker
//! is *congested*: it stops taking messages from its inbound rings (they
//! fill, and the publishing workers stop reading their publishers) and
//! pauses its own publishers that have local subscribers, until the backlog
//! is back under half of that.
//!
//! So when publishers send faster than the worker or its reading subscribers
//! take messages, publishers are slowed down to their pace (as one Redis
//! thread, busy writing, reads its publishers less often), and a subscriber
//! that reads is not cut off for it, however few subscribers there are. Two
//! limits keep one client from holding everyone back: a subscriber that
//! does not read stops counting in full after [`RECENT`], and then meets its
//! own output limit; and when the worker has stayed congested for
//! [`LAG_LIMIT`] without catching up, the connections counted in full at
//! that moment become *laggards*, counted up to their share only, until
//! they are back under it: a reader that stays slower than the publishers
//! meets its output limit, as in Redis, instead of slowing everyone to its
//! pace.

use std::time::{Duration, Instant};

use super::conn::{Conn, ConnState};
use super::{ConnKey, Hub};
use crate::stats::WorkerStats;

/// Writes that made no progress for this long mark a connection as not
/// reading: its output no longer holds the worker back.
pub const STALL: Duration = Duration::from_secs(2);

/// How much of the backlog one connection whose writes wait may account
/// for: 1/16 of it, so a few subscribers that do not read cannot pause a worker.
const SHARE_DIVISOR: usize = 16;

/// A connection whose last write finished this recently is reading: all its
/// queued output counts (two runs of the cron's coarse clock at the default
/// `hz`, since the clock moves in its steps).
pub(super) const RECENT: Duration = Duration::from_millis(250);

/// Longest the worker stays congested before the connections that keep it
/// so are counted as laggards (module docs).
pub(super) const LAG_LIMIT: Duration = Duration::from_secs(1);

/// The backlog of one worker.
#[derive(Debug)]
pub(super) struct Backlog {
    /// Sum of the connections' shares.
    total: usize,
    /// `worker-output-backlog`, refreshed by the cron.
    pub(super) limit: usize,
    congested: bool,
    /// When the worker last became congested (coarse clock).
    since: Instant,
    /// The connections counted for more than their share (`Conn::heavy`),
    /// judged again at every run of the cron; may hold keys of closed
    /// connections, which the cron drops.
    heavy: Vec<ConnKey>,
}

impl Backlog {
    pub(super) fn new(limit: usize, now: Instant) -> Self {
        Backlog {
            total: 0,
            limit,
            congested: false,
            since: now,
            heavy: Vec::new(),
        }
    }

    /// Most one connection's output counts for.
    pub(super) fn share_cap(&self) -> usize {
        self.limit / SHARE_DIVISOR
    }

    /// The earliest last write of a connection that still reads at `now`
    /// ([`RECENT`]); computed once per batch of [`Backlog::account`] calls,
    /// so that each of them is one comparison.
    pub(super) fn reading_since(now: Instant) -> Instant {
        now.checked_sub(RECENT).unwrap_or(now)
    }

    /// Bring `conn`'s (key `key`) share in line with its output now;
    /// `reading_since` is [`Backlog::reading_since`] of the coarse clock.
    pub(super) fn account(
        &mut self,
        key: ConnKey,
        conn: &mut Conn,
        share_cap: usize,
        reading_since: Instant,
    ) {
        let out = conn.out.memory();
        if conn.laggard && out <= share_cap {
            conn.laggard = false;
        }
        let reading = conn.last_progress >= reading_since;
        let share = match conn.state {
            ConnState::Killed => 0,
            _ if conn.stalled => 0,
            _ if reading && !conn.laggard => out,
            _ => out.min(share_cap),
        };
        if share > share_cap && !conn.heavy {
            conn.heavy = true;
            self.heavy.push(key);
        }
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
            let since = Backlog::reading_since(self.now);
            self.backlog.account(key, conn, share_cap, since);
        }
    }

    /// From the cron: judge again the connections counted in full, as time
    /// passes without their writes finishing, and make laggards of them if
    /// the worker has been congested for [`LAG_LIMIT`].
    pub(super) fn rejudge_heavy(&mut self, now: Instant) {
        let share_cap = self.backlog.share_cap();
        let lagging = self.backlog.congested
            && now.saturating_duration_since(self.backlog.since) >= LAG_LIMIT;
        let since = Backlog::reading_since(now);
        let mut heavy = std::mem::take(&mut self.backlog.heavy);
        heavy.sort_unstable();
        heavy.dedup();
        for &key in &heavy {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.heavy = false;
            if lagging && conn.backlog_share > share_cap {
                conn.laggard = true;
            }
            self.backlog.account(key, conn, share_cap, since);
        }
        if lagging {
            // Judged from here on: the next laggards only after another
            // LAG_LIMIT of congestion.
            self.backlog.since = now;
        }
        heavy.clear();
        if self.backlog.heavy.is_empty() {
            // Keep the allocation (most runs have none or few).
            std::mem::swap(&mut self.backlog.heavy, &mut heavy);
        }
        self.check_congestion();
    }

    /// Enter or leave the congested state as the backlog crosses its marks.
    pub(super) fn check_congestion(&mut self) {
        let limit = self.backlog.limit;
        if !self.backlog.congested && self.backlog.total > limit {
            self.backlog.congested = true;
            self.backlog.since = self.now;
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
