//! The writing side of a connection: what its writer sends next.

use std::task::{Context, Poll};

use bytes::Bytes;

use super::conn::ConnState;
use super::{ConnKey, Hub, Output};
use crate::stats::WorkerStats;

impl Hub {
    /// Next action for the writer of `key`: frames to send (moved into
    /// `batch`), close, or Pending (woken when output is queued).
    pub fn poll_output(
        &mut self,
        key: ConnKey,
        cx: &mut Context<'_>,
        batch: &mut Vec<Bytes>,
    ) -> Poll<Output> {
        let Some(conn) = self.conns.get_mut(key) else {
            return Poll::Ready(Output::Close);
        };
        if conn.state == ConnState::Killed {
            return Poll::Ready(Output::Close);
        }
        if !conn.out.is_empty() {
            let n = conn.out.take(batch);
            return Poll::Ready(Output::Write(n));
        }
        if conn.state == ConnState::CloseAfterReply {
            return Poll::Ready(Output::Close);
        }
        if conn.placement.departing && conn.out.memory() == 0 {
            return Poll::Ready(Output::Depart);
        }
        conn.out.register(cx.waker());
        Poll::Pending
    }

    /// The writer sent `n` bytes of what it took.
    pub fn sent(&mut self, key: ConnKey, n: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.out.sent(n);
            conn.last_interaction = self.now;
            conn.last_progress = self.now;
            conn.stalled = false;
            self.reweigh(key);
            self.check_congestion();
        }
        let stats = self.stats();
        WorkerStats::add(&stats.net_output_bytes, n as u64);
        WorkerStats::add(&stats.writes_processed, 1);
    }
}
