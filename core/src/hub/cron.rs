//! Housekeeping `hz` times a second (10 by default, every 100 ms): soft
//! output limits that expire with no new message, idle clients past
//! `timeout`, writes that stopped making progress, and the gauges INFO shows.
//!
//! Like Redis's `clientsCron`, each run visits a slice of the connections
//! (a `hz`-th of them), so that every connection is seen about once a second
//! whatever their number and whatever `hz`: 10,000 idle subscribers cost a
//! tenth of a full pass per run at the default, and no run holds the worker
//! long enough to show in delivery latency. The gauges are totals over a
//! full round, published when the round ends.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::backlog::STALL;
use super::conn::ConnState;
use super::{ConnKey, Hub};
use crate::stats::Disconnect;

/// Fewest connection slots a run visits: a worker with few connections
/// does the whole round in every run.
pub(super) const MIN_SLICE: usize = 64;

/// Connection tables with room for more than this many are shrunk once
/// three quarters empty ([`Hub::shrink_tables`]).
const SHRINK_ABOVE: usize = 1024;

/// Where the current round is, and what it has summed so far.
#[derive(Debug, Default)]
pub(super) struct Round {
    /// Next connection slot to visit.
    next: usize,
    output_total: u64,
    output_max: u64,
    input_max: u64,
    paused: u64,
}

impl Hub {
    /// Periodic housekeeping, `hz` times a second ([`Hub::cron_interval`]).
    pub fn cron(&mut self) {
        self.cron_at(Instant::now());
    }

    /// [`Hub::cron`] with the current time given (tests drive the clock).
    pub fn cron_at(&mut self, now: Instant) {
        let threshold = self.shared.config.load().latency_monitor_threshold;
        let started = (threshold > 0).then(Instant::now);
        self.run_cron(now);
        if let Some(started) = started {
            self.latency_event("event-loop", started.elapsed(), threshold);
        }
    }

    fn run_cron(&mut self, now: Instant) {
        self.now = now;
        self.report_suppressed(now);
        self.acl_sweep();
        let config = self.shared.config.load();
        self.backlog.limit = config.worker_output_backlog;
        let limit = config.output_limit_pubsub;
        let timeout = Duration::from_secs(config.timeout);
        let share_cap = self.backlog.share_cap();
        let since = super::backlog::Backlog::reading_since(now);
        let slots = self.conns.capacity();
        let start = self.round.next;
        // `hz` runs per round: each connection once a second.
        let runs_per_round = config.hz.max(1) as usize;
        let end = (start + slots.div_ceil(runs_per_round).max(MIN_SLICE)).min(slots);
        let mut idle = Vec::new();
        for key in start..end {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.state != ConnState::Open {
                continue;
            }
            let round = &mut self.round;
            let out = conn.out.memory();
            conn.session.meta.output_bytes.store(out, Relaxed);
            round.output_total += out as u64;
            round.output_max = round.output_max.max(out as u64);
            round.input_max = round.input_max.max(conn.input_buffered as u64);
            round.paused += conn.pending.is_some() as u64;
            if !conn.stalled && out > 0 && now.saturating_duration_since(conn.last_progress) > STALL
            {
                // Writes made no progress: its output stops holding the worker back.
                conn.stalled = true;
                self.backlog.account(key, conn, share_cap, since);
            }
            // Soft limits run out with no new output: subscribers and monitors.
            let class = if conn.session.in_pubsub() {
                Some(limit)
            } else {
                conn.watching
                    .then(|| super::observe::monitor_limit(&config, false))
            };
            if let Some(class) = class
                && class.soft > 0
                && let Some(why) = conn.out.check_limit(&class)
            {
                self.doomed.push((key, why));
            } else if conn.is_idle(now, timeout) {
                idle.push(key);
            }
        }
        self.check_doomed();
        self.close_idle(idle);
        self.rejudge_heavy(now);
        self.round.next = end;
        if end >= slots {
            self.end_round();
        }
        let stats = self.stats();
        stats
            .inbound_depth
            .store(self.router.inbound_len() as u64, Relaxed);
        stats
            .ring_bytes_out
            .store(self.router.outbound_bytes(), Relaxed);
        stats.output_backlog.store(self.backlog() as u64, Relaxed);
    }

    /// How long the worker waits between two runs of [`Hub::cron`]: a
    /// `hz`-th of a second (`hz` is 1 to 500, as Redis clamps it).
    pub fn cron_interval(&self) -> Duration {
        Duration::from_secs(1) / self.shared.config.load().hz.max(1)
    }

    /// A round over every connection is complete: publish its totals.
    fn end_round(&mut self) {
        let round = std::mem::take(&mut self.round);
        let stats = self.stats();
        stats.output_memory.store(round.output_total, Relaxed);
        stats.max_output_buffer.store(round.output_max, Relaxed);
        stats.max_input_buffer.store(round.input_max, Relaxed);
        stats.paused_publishers.store(round.paused, Relaxed);
        self.shrink_tables();
    }

    /// Gives back the room of connections that are gone: the slab and the
    /// id map keep the size of the most connections ever held (about 1 KiB
    /// each) until most of it is unused. Once a round, so a burst of
    /// connects and closes does not make the tables shrink and regrow.
    /// Keys stay valid: the slab only drops vacant slots past the last
    /// connection it holds.
    fn shrink_tables(&mut self) {
        if self.conns.capacity() > SHRINK_ABOVE && self.conns.len() * 4 < self.conns.capacity() {
            self.conns.shrink_to_fit();
        }
        if self.by_id.capacity() > SHRINK_ABOVE && self.by_id.len() * 4 < self.by_id.capacity() {
            self.by_id.shrink_to_fit();
        }
    }

    fn close_idle(&mut self, idle: Vec<ConnKey>) {
        for key in idle {
            self.kill(key, Disconnect::IdleTimeout);
        }
    }
}
