//! Housekeeping every 100 ms: soft output limits that expire with no new
//! message, idle clients past `timeout`, and the gauges INFO shows.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::Hub;
use super::conn::ConnState;
use crate::stats::WorkerStats;

impl Hub {
    /// Periodic housekeeping (about every 100 ms).
    pub fn cron(&mut self) {
        self.cron_at(Instant::now());
    }

    /// [`Hub::cron`] with the current time given (tests drive the clock).
    pub fn cron_at(&mut self, now: Instant) {
        self.now = now;
        self.acl_sweep();
        let config = self.shared.config.load();
        let limit = config.output_limit_pubsub;
        let timeout = Duration::from_secs(config.timeout);
        let mut idle = Vec::new();
        let (mut out_total, mut out_max, mut in_max, mut paused) = (0u64, 0u64, 0u64, 0u64);
        for (key, conn) in self.conns.iter_mut() {
            if conn.state != ConnState::Open {
                continue;
            }
            let out = conn.out.memory();
            conn.session.meta.output_bytes.store(out, Relaxed);
            out_total += out as u64;
            out_max = out_max.max(out as u64);
            in_max = in_max.max(conn.input_buffered as u64);
            paused += conn.pending.is_some() as u64;
            if limit.soft > 0
                && conn.session.in_pubsub()
                && let Some(why) = conn.out.check_limit(&limit)
            {
                self.doomed.push((key, why));
            } else if conn.is_idle(now, timeout) {
                idle.push(key);
            }
        }
        self.check_doomed();
        self.close_idle(idle);
        self.backlog.limit = config.worker_output_backlog;
        self.find_stalled(now);
        let stats = self.stats();
        stats.output_memory.store(out_total, Relaxed);
        stats.max_output_buffer.store(out_max, Relaxed);
        stats.max_input_buffer.store(in_max, Relaxed);
        stats.paused_publishers.store(paused, Relaxed);
        let depth = self.router.inbound_len() as u64;
        stats.inbound_depth.store(depth, Relaxed);
        let outbound = self.router.outbound_bytes();
        stats.ring_bytes_out.store(outbound, Relaxed);
        stats.output_backlog.store(self.backlog() as u64, Relaxed);
    }

    fn close_idle(&mut self, idle: Vec<super::ConnKey>) {
        for key in idle {
            if let Some(conn) = self.conns.get(key) {
                tracing::debug!(
                    "closing idle client id={} addr={}",
                    conn.session.id,
                    conn.session.meta.addr
                );
            }
            WorkerStats::add(&self.stats().idle_timeouts, 1);
            self.kill(key, None);
        }
    }
}
