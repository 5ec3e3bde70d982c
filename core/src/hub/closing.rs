//! Why each connection ends: counted once, under the first reason that
//! ends it ([`Disconnect`]), and logged with the client's id, address, name,
//! worker and buffer use (`omem`: output queued, `omem_writing`: of which
//! in a write now, `qbuf`: input buffered at its last read), at most [`LOGS_PER_SECOND`] lines a second
//! per reason on each worker (a mass disconnect must not flood the log or
//! slow the worker down writing it). What a window holds back is reported
//! once it ends, as one "suppressed N similar" line per reason.

use std::time::{Duration, Instant};

use tracing::Level;

use super::{ConnKey, Hub};
use crate::output::LimitExceeded;
use crate::stats::{Disconnect, WorkerStats};

/// Disconnect lines one worker logs per reason in a window.
pub const LOGS_PER_SECOND: u32 = 10;
const WINDOW: Duration = Duration::from_secs(1);

/// The rate limit of one worker's disconnect lines.
#[derive(Debug, Default)]
pub(super) struct DisconnectLog {
    /// Start of the current window (none before the first line).
    window: Option<Instant>,
    logged: [u32; Disconnect::COUNT],
    suppressed: [u64; Disconnect::COUNT],
}

impl DisconnectLog {
    /// Whether a line for `why` may be logged at `now`; if not, it is
    /// counted as suppressed. A window that has ended must be closed with
    /// [`DisconnectLog::roll`] first.
    pub(super) fn admit(&mut self, now: Instant, why: Disconnect) -> bool {
        if self.window.is_none() {
            self.window = Some(now);
        }
        let i = why as usize;
        if self.logged[i] < LOGS_PER_SECOND {
            self.logged[i] += 1;
            true
        } else {
            self.suppressed[i] += 1;
            false
        }
    }

    /// If the window has ended at `now`, start a new one and return what
    /// the old one suppressed, by reason (empty otherwise).
    pub(super) fn roll(&mut self, now: Instant) -> Vec<(Disconnect, u64)> {
        let Some(start) = self.window else {
            return Vec::new();
        };
        if now.saturating_duration_since(start) < WINDOW {
            return Vec::new();
        }
        let held = Disconnect::ALL
            .iter()
            .filter(|d| self.suppressed[**d as usize] > 0)
            .map(|d| (*d, self.suppressed[*d as usize]))
            .collect();
        *self = DisconnectLog::default();
        held
    }
}

/// The level a disconnect is logged at: a client cut off for its buffers
/// is a warning (as in Redis); any other ending is `verbose`, where Redis
/// logs "Client closed connection" and "Closing idle client".
fn level(why: Disconnect) -> Level {
    match why {
        Disconnect::OutputBufferLimit | Disconnect::QueryBufferLimit => Level::WARN,
        _ => Level::DEBUG,
    }
}

fn message(why: Disconnect) -> &'static str {
    match why {
        Disconnect::Quit => "Client quit",
        Disconnect::HangUp => "Client closed connection",
        Disconnect::ProtocolError => "Client closed after a protocol error",
        Disconnect::OutputBufferLimit => "Client closed for overcoming of output buffer limits",
        Disconnect::QueryBufferLimit => "Client closed for overcoming of client-query-buffer-limit",
        Disconnect::IdleTimeout => "Closing idle client",
        Disconnect::Killed => "Client killed by CLIENT KILL",
        Disconnect::AclRevoked => "Client closed: its ACL user was removed or no longer allows it",
        Disconnect::Shutdown => "Client closed for shutdown",
    }
}

/// `tracing`'s macros take a constant level: pick the macro by the level.
macro_rules! event_at {
    ($level:expr, $($rest:tt)+) => {
        match $level {
            Level::ERROR | Level::WARN => tracing::warn!($($rest)+),
            Level::INFO => tracing::info!($($rest)+),
            _ => tracing::debug!($($rest)+),
        }
    };
}

impl Hub {
    /// The connection is ending for `why` (and, over an output limit, which
    /// one): the first call per connection counts it and logs it; later
    /// ones change nothing.
    pub(super) fn note_ending(
        &mut self,
        key: ConnKey,
        why: Disconnect,
        limit: Option<LimitExceeded>,
    ) {
        let now = self.now;
        self.report_suppressed(now);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.ended.is_some() {
            return;
        }
        conn.ended = Some(why);
        let (omem, writing, qbuf) = (conn.out.memory(), conn.out.in_flight(), conn.input_buffered);
        let stats = self.shared.worker_stats(self.worker);
        WorkerStats::add(stats.disconnections(why), 1);
        // Below the log level: no line, and no place in the window taken.
        let shown = match level(why) {
            Level::WARN => tracing::enabled!(Level::WARN),
            _ => tracing::enabled!(Level::DEBUG),
        };
        if !shown || !self.disconnect_log.admit(now, why) {
            return;
        }
        let meta = &conn.session.meta;
        let name = crate::lock(&meta.name)
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        // Present only for an output-limit disconnect.
        let limit = limit.map(|l| match l {
            LimitExceeded::Hard => "hard",
            LimitExceeded::Soft => "soft",
            LimitExceeded::Unauthenticated => "unauthenticated",
        });
        event_at!(
            level(why),
            client_id = meta.id,
            addr = meta.addr.as_str(),
            laddr = meta.laddr.as_str(),
            name = name.as_str(),
            reason = why.label(),
            limit,
            worker = self.worker,
            omem,
            omem_writing = writing,
            qbuf,
            "{}",
            message(why)
        );
    }

    /// Log what the window that ended at `now` held back (called on every
    /// disconnect and by the cron, so the line comes within a second or so).
    pub(super) fn report_suppressed(&mut self, now: Instant) {
        for (why, n) in self.disconnect_log.roll(now) {
            event_at!(
                level(why),
                reason = why.label(),
                worker = self.worker,
                suppressed = n,
                "suppressed {n} similar disconnect log lines (reason {})",
                why.label()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_logs_the_first_lines_of_each_reason_and_counts_the_rest() {
        let mut log = DisconnectLog::default();
        let t0 = Instant::now();
        let admitted = (0..25)
            .filter(|_| log.admit(t0, Disconnect::HangUp))
            .count();
        assert_eq!(admitted, LOGS_PER_SECOND as usize);
        // Another reason has its own allowance.
        assert!(log.admit(t0, Disconnect::OutputBufferLimit));
        assert!(log.roll(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(
            log.roll(t0 + WINDOW),
            vec![(Disconnect::HangUp, 25 - LOGS_PER_SECOND as u64)]
        );
        // A new window starts with the next line.
        assert!(log.admit(t0 + WINDOW, Disconnect::HangUp));
        assert!(log.roll(t0 + 2 * WINDOW).is_empty());
    }
}
