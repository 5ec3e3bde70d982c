//! Pacing for the latency probe: when each message is due, and how to wait
//! for it without blurring the schedule.
//!
//! Message `k` (counted over all publishers of a run) is due at
//! `start + k / rate`. Each message carries that *intended* time, so a send
//! that leaves late — the tool was busy, the server did not read — is
//! charged to latency instead of silently lowering the rate (no coordinated
//! omission).
//!
//! Waiting: the probe sleeps only when nothing is in flight (every message
//! sent has been delivered and answered) and the next one is more than
//! `spin` away; it then sleeps until `spin` before the send time and spins
//! the rest, because a sleeping thread wakes tens of microseconds late on a
//! virtual machine while a spinning one sees the clock within nanoseconds.

use std::ops::Range;
use std::time::Duration;

/// A fixed-rate send schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    start_ns: u64,
    interval_ns: f64,
    /// No message is due at or after this instant.
    end_ns: u64,
    /// At most this many messages.
    limit: u64,
}

impl Schedule {
    /// `rate` messages per second from `start_ns` for `duration`, at most
    /// `limit` messages.
    pub fn new(start_ns: u64, rate: f64, duration: Duration, limit: Option<u64>) -> Schedule {
        Schedule {
            start_ns,
            interval_ns: 1e9 / rate,
            end_ns: start_ns.saturating_add(duration.as_nanos() as u64),
            limit: limit.unwrap_or(u64::MAX),
        }
    }

    /// The intended send time of message `k`, rounded to the nanosecond.
    /// Computed from `k` rather than accumulated, so a rate that does not
    /// divide a second evenly does not drift.
    #[inline]
    pub fn due(&self, k: u64) -> u64 {
        self.start_ns + (k as f64 * self.interval_ns).round() as u64
    }

    /// True when message `k` belongs to the schedule.
    #[inline]
    pub fn has(&self, k: u64) -> bool {
        k < self.limit && self.due(k) < self.end_ns
    }

    /// Messages `k..` that are due by `now`, at most `cap` of them (so one
    /// long stall does not build a giant write).
    #[inline]
    pub fn due_by(&self, k: u64, now: u64, cap: u64) -> Range<u64> {
        let mut end = k;
        while end - k < cap && self.has(end) && self.due(end) <= now {
            end += 1;
        }
        k..end
    }
}

/// What the probe does between two polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Keep polling: something is in flight, or a send is close.
    Spin,
    /// Nothing to read for a while: sleep until this instant, then spin.
    SleepUntil(u64),
}

/// Decides the wait before message `next_due` (None: no more sends), when
/// `idle` says nothing is in flight.
#[inline]
pub fn next_wait(now: u64, next_due: Option<u64>, idle: bool, spin_ns: u64) -> Wait {
    match next_due {
        Some(due) if idle && due > now.saturating_add(spin_ns) => Wait::SleepUntil(due - spin_ns),
        _ => Wait::Spin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn due_times_follow_the_rate_without_drift() {
        let s = Schedule::new(1_000, 3.0, Duration::from_secs(10), None);
        assert_eq!(s.due(0), 1_000);
        assert_eq!(s.due(1), 1_000 + 333_333_333);
        // 3 msg/s: message 3k is due exactly k seconds later.
        assert_eq!(s.due(30), 1_000 + 10_000_000_000);
        let s = Schedule::new(0, 100_000.0, Duration::from_secs(3600), None);
        assert_eq!(s.due(360_000_000 - 1), 3_600_000_000_000 - 10_000);
    }

    #[test]
    fn schedule_ends_at_the_duration_or_the_message_limit() {
        let s = Schedule::new(0, 1000.0, Duration::from_millis(10), None);
        assert!(s.has(9));
        assert!(!s.has(10)); // due at 10 ms: not before the end
        let s = Schedule::new(0, 1000.0, Duration::from_secs(10), Some(4));
        assert!(s.has(3) && !s.has(4));
    }

    #[test]
    fn late_poll_sends_the_backlog_each_with_its_own_due_time() {
        let s = Schedule::new(0, 1000.0, Duration::from_secs(1), None);
        // Polled 3.5 ms in: messages 0..=3 are due.
        assert_eq!(s.due_by(0, 3 * MS + MS / 2, 1024), 0..4);
        // Nothing more until message 4's time.
        assert_eq!(s.due_by(4, 3 * MS + MS / 2, 1024), 4..4);
        assert_eq!(s.due_by(4, 4 * MS, 1024), 4..5);
        // A long stall is capped per batch; the rest follows next round.
        assert_eq!(s.due_by(0, 900 * MS, 100), 0..100);
        // Past the end nothing is due, however late.
        assert_eq!(s.due_by(1000, 5_000 * MS, 1024), 1000..1000);
    }

    #[test]
    fn sleeps_only_when_idle_and_the_next_send_is_beyond_the_spin_margin() {
        let spin = 50_000;
        assert_eq!(
            next_wait(0, Some(MS), true, spin),
            Wait::SleepUntil(MS - spin)
        );
        // Something in flight: keep reading.
        assert_eq!(next_wait(0, Some(MS), false, spin), Wait::Spin);
        // Within the margin: spin to the send time.
        assert_eq!(next_wait(MS - spin, Some(MS), true, spin), Wait::Spin);
        // Nothing left to send: spin while draining.
        assert_eq!(next_wait(0, None, true, spin), Wait::Spin);
    }
}
