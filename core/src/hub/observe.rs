//! What operators see of the commands this worker runs: the MONITOR feed
//! (`crate::monitor`), the slow log (`crate::slowlog`) and the latency
//! monitor (`crate::latency`); and the monitors this worker serves.
//!
//! After each command that ran (not one refused before running, as in
//! Redis's `call`), the hub times it when asked to, then in Redis's order
//! records its latency event and histogram, logs it if slow, and shows it to
//! the monitors (unless it is an `admin` command). With no monitor anywhere
//! that last step costs one relaxed load (`MonitorFeed::watchers`). With
//! monitors, the line is formatted once and shared: this worker's monitors
//! get it at once, other workers' at the end of the input turn (one post per
//! worker and turn, see `crate::monitor` for the invariants).
//!
//! # Timing
//!
//! Commands are timed only while the slow log is on
//! (`slowlog-log-slower-than` at 0 or more, Redis's default) or the latency
//! monitor is (`latency-monitor-threshold` above 0), and then for one clock
//! read each: a turn reads the clock when it starts and after each command,
//! and a command's duration is the time since the read before it. That includes decoding the request (a few
//! nanoseconds next to the command) and the monitor feed of the command
//! before it. Reading before and after each command would cost two reads;
//! timing a whole turn and only its commands when the turn was slow would
//! not tell which command was slow, and `slowlog-log-slower-than 0` and
//! `LATENCY HISTOGRAM` need every command's duration anyway. The turn's own
//! duration (the `event-loop` event) falls out of the same reads. A command
//! that sleeps (`DEBUG SLEEP`) returns before the worker sleeps: the sleep
//! it asked for is added to its duration and its turn's.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::conn::ConnState;
use super::{ConnKey, Hub};
use crate::commands::{Exec, audit};
use crate::config::{Config, OutputLimit};
use crate::frame::FrameRef;
use crate::monitor::Taken;
use crate::output::{LimitExceeded, UNCOUNTED_OUTPUT};
use crate::resp::args::ArgList;
use crate::resp::encode::Proto;
use crate::session::ReplyMode;
use crate::slowlog::{self, Entry};

/// An inbox's byte cap when monitors have no hard output limit at all.
const UNLIMITED_INBOX: usize = 64 << 20;
/// Most lines the scratch lists keep room for between turns: a burst does
/// not leave its largest allocation behind.
const LINES_KEEP: usize = 1024;

/// This worker's side of the feed.
#[derive(Default)]
pub(super) struct Observer {
    /// This worker's monitors.
    monitors: Vec<ConnKey>,
    /// Lines for other workers' monitors, each with the set of workers that
    /// had monitors when its command ran; posted at the end of the turn.
    outbox: Vec<(Bytes, u64)>,
    /// Lines taken from this worker's inbox (kept for its allocation).
    inbox: Vec<Bytes>,
}

/// What one input turn needs of the configuration, read when it starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Watch {
    slower_than: i64,
    max_len: u64,
    latency_ms: u64,
    inbox_cap: usize,
}

impl Watch {
    fn of(config: &Config) -> Watch {
        let hard = monitor_limit(config, false)
            .hard
            .max(config.output_limit_pubsub.hard);
        Watch {
            slower_than: config.slowlog_log_slower_than,
            max_len: config.slowlog_max_len,
            latency_ms: config.latency_monitor_threshold,
            inbox_cap: if hard == 0 {
                UNLIMITED_INBOX
            } else {
                hard + UNCOUNTED_OUTPUT
            },
        }
    }

    /// Whether commands are timed: the slow log or the latency monitor is on.
    fn timed(&self) -> bool {
        self.slower_than >= 0 || self.latency_ms > 0
    }
}

/// The clock of one input turn (see the module docs).
pub(super) struct Timer {
    watch: Watch,
    started: Option<Instant>,
    /// The last read: the end of the previous command.
    last: Option<Instant>,
    slept: Duration,
}

impl Timer {
    /// The configuration changed (`CONFIG SET`): the rest of the turn, and
    /// the command that changed it (as Redis judges it), follow the new one.
    pub(super) fn refresh(&mut self, config: &Config) {
        self.watch = Watch::of(config);
        if !self.watch.timed() {
            self.last = None;
        } else if self.last.is_none() {
            let now = Instant::now();
            self.started = Some(now);
            self.last = Some(now);
        }
    }

    /// How long the turn has run requests: from its start to the end of the
    /// last command when commands are timed (no clock read), else from
    /// `first_look`, the clock at the first call (read then, and now).
    pub(super) fn spent(&self, first_look: &mut Option<Instant>) -> Duration {
        if let (Some(start), Some(last)) = (self.started, self.last) {
            return last.saturating_duration_since(start);
        }
        let now = Instant::now();
        now.saturating_duration_since(*first_look.get_or_insert(now))
    }

    /// The duration of the command just done, if commands are timed.
    pub(super) fn lap(&mut self, exec: Exec) -> Option<Duration> {
        let before = self.last?;
        let now = Instant::now();
        self.last = Some(now);
        let mut took = now.saturating_duration_since(before);
        if let Exec::Sleep(d) = exec {
            took += d;
            self.slept += d;
        }
        Some(took)
    }
}

/// The output limit a monitor is held to. Redis counts a monitor as a
/// normal client (`getClientType`), and the `normal` class is unlimited by
/// default, so a monitor that does not read would grow without bound; here
/// it gets the `normal` limits when they are set, else the `pubsub` ones
/// (32 MB hard, 8 MB for 60 s by default). A subscribed monitor is a
/// pub/sub client, as in Redis.
pub(super) fn monitor_limit(config: &Config, subscribed: bool) -> OutputLimit {
    let normal = config.output_limit_normal;
    if subscribed || (normal.hard == 0 && normal.soft == 0) {
        config.output_limit_pubsub
    } else {
        normal
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Hub {
    /// Start an input turn: read what it needs of the configuration, and
    /// the clock if commands are timed.
    pub(super) fn start_turn(&self) -> Timer {
        let watch = Watch::of(&self.shared.config.load());
        let started = watch.timed().then(Instant::now);
        Timer {
            watch,
            started,
            last: started,
            slept: Duration::ZERO,
        }
    }

    /// End an input turn: record it if it was long, and post its lines to
    /// the other workers' monitors.
    pub(super) fn end_turn(&mut self, timer: &Timer) {
        if let (Some(start), Some(end)) = (timer.started, timer.last) {
            let took = end.saturating_duration_since(start) + timer.slept;
            self.latency_event("event-loop", took, timer.watch.latency_ms);
        }
        if self.observer.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut self.observer.outbox);
        let mut targets = outbox.iter().fold(0u64, |all, (_, w)| all | w);
        while targets != 0 {
            let w = targets.trailing_zeros() as usize;
            targets &= targets - 1;
            let lines = outbox
                .iter()
                .filter(|(_, to)| to & (1 << w) != 0)
                .map(|(line, _)| line);
            if self.shared.monitors.post(w, lines, timer.watch.inbox_cap) {
                self.shared.doorbells.ring(w);
            }
        }
        if outbox.capacity() <= LINES_KEEP {
            self.observer.outbox = outbox;
            self.observer.outbox.clear();
        }
    }

    /// Record `event` with the latency monitor if it lasted at least
    /// `threshold_ms` (0: the monitor is off).
    pub(super) fn latency_event(&self, event: &str, took: Duration, threshold_ms: u64) {
        let ms = took.as_millis() as u64;
        if threshold_ms > 0 && ms >= threshold_ms {
            self.shared.latency.add(event, ms, unix_now());
        }
    }

    /// After a command that ran (id `id`), timed `took` when commands are
    /// timed: histogram, latency event, slow log, then the monitors.
    /// `silent`: its reply is skipped (`CLIENT REPLY SKIP`), and so is its
    /// own line if it is a monitor, as in Redis.
    pub(super) fn observe(
        &mut self,
        key: ConnKey,
        id: u16,
        args: ArgList<'_>,
        took: Option<Duration>,
        timer: &Timer,
        silent: bool,
    ) {
        if let Some(took) = took {
            let micros = took.as_micros() as u64;
            self.shared.latency.record(self.worker, id, micros);
            let threshold = timer.watch.latency_ms;
            if threshold > 0 && micros / 1000 >= threshold {
                let event = if audit::traits(id).fast {
                    "fast-command"
                } else {
                    "command"
                };
                self.latency_event(event, took, threshold);
            }
            self.slow_log(key, id, args, micros, timer.watch);
        }
        // Invariant 1 of `crate::monitor`: without monitors, this load is all.
        let watchers = self.shared.monitors.watchers();
        if watchers != 0 && !audit::traits(id).admin {
            self.feed(key, id, args, watchers, silent);
        }
    }

    /// Show the monitors the commands EXEC ran on `key`, in the order they
    /// ran (Redis feeds them from `call`, before EXEC's own line).
    pub(super) fn show_ran_in_exec(&mut self, key: ConnKey, silent: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.session.ran_in_exec.is_empty() {
            return;
        }
        let ran = std::mem::take(&mut conn.session.ran_in_exec);
        let watchers = self.shared.monitors.watchers();
        for (id, args) in &ran {
            if watchers != 0 && !audit::traits(*id).admin {
                self.feed(key, *id, args.list(), watchers, silent);
            }
        }
    }

    /// Redis's `slowlogPushEntryIfNeeded`: while the log is on, log a
    /// command that took long enough, and keep the log to its length.
    fn slow_log(&self, key: ConnKey, id: u16, args: ArgList<'_>, micros: u64, watch: Watch) {
        if watch.slower_than < 0 {
            return;
        }
        let log = &self.shared.slowlog;
        if micros < watch.slower_than as u64 {
            log.trim(watch.max_len);
            return;
        }
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let entry = Entry {
            id: 0,
            time: unix_now(),
            duration_us: micros,
            args: slowlog::logged_args(args, &audit::redacted(id, args)),
            addr: conn.session.meta.addr.clone(),
            name: conn.session.name.clone().unwrap_or_default(),
        };
        log.push(entry, watch.max_len);
    }

    /// Show a command to every monitor: its line, formatted once.
    fn feed(&mut self, key: ConnKey, id: u16, args: ArgList<'_>, watchers: u64, silent: bool) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let s = &conn.session;
        let redacted = audit::redacted(id, args);
        let line = crate::monitor::line(SystemTime::now(), s.db, &s.meta.addr, args, &redacted);
        let config = self.shared.config.load();
        self.feed_local(&line, silent.then_some(key), &config);
        self.check_doomed();
        let others = watchers & !(1u64 << self.worker);
        if others != 0 {
            self.observer.outbox.push((line, others));
        }
    }

    /// Queue a line for this worker's monitors (but `silent`), each held
    /// to its output limit as the line is queued.
    fn feed_local(&mut self, line: &Bytes, silent: Option<ConnKey>, config: &Config) {
        if self.observer.monitors.is_empty() {
            return;
        }
        let share_cap = self.backlog.share_cap();
        let since = super::backlog::Backlog::reading_since(self.now);
        for &key in &self.observer.monitors {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.state != ConnState::Open
                || conn.doomed
                || conn.session.reply_mode == ReplyMode::Off
                || silent == Some(key)
            {
                continue;
            }
            if conn.out.memory() == 0 {
                conn.last_progress = self.now;
            }
            // A simple string in both protocols: queued as it is.
            let frame = FrameRef {
                head: line,
                body: None,
            };
            conn.out.push_frame(frame, Proto::Resp2);
            self.backlog.account(key, conn, share_cap, since);
            let limit = monitor_limit(config, conn.session.in_pubsub());
            if let Some(why) = conn.out.check_limit(&limit) {
                conn.doomed = true;
                self.doomed.push((key, why));
            }
        }
        self.check_congestion();
    }

    /// Lines other workers posted for this worker's monitors, queued for
    /// them in order; if some were lost (the inbox was full), the monitors
    /// missed them and are closed as over their output limit.
    pub(super) fn drain_monitor_inbox(&mut self) {
        let mut lines = std::mem::take(&mut self.observer.inbox);
        match self.shared.monitors.take(self.worker, &mut lines) {
            Taken::Complete => {
                if !lines.is_empty() {
                    let config = self.shared.config.load();
                    for line in lines.drain(..) {
                        self.feed_local(&line, None, &config);
                    }
                    self.check_doomed();
                }
            }
            Taken::Lost => {
                tracing::warn!(
                    "worker {} fell behind the MONITOR feed by more than its monitors' output limit: closing its {} monitors",
                    self.worker,
                    self.observer.monitors.len()
                );
                for key in self.observer.monitors.clone() {
                    self.kill_over_limit(key, LimitExceeded::Hard);
                }
            }
        }
        lines.clear();
        if lines.capacity() <= LINES_KEEP {
            self.observer.inbox = lines;
        }
    }

    /// Join or leave the feed as the connection's MONITOR mode says (after
    /// MONITOR or RESET): joining happens before the command's `+OK` can be
    /// sent (`crate::monitor` invariant 2).
    pub(super) fn sync_monitor(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let wanted = conn.session.monitor && conn.state == ConnState::Open;
        if wanted == conn.watching {
            return;
        }
        if wanted {
            conn.watching = true;
            self.observer.monitors.push(key);
            if self.observer.monitors.len() == 1 {
                self.shared.monitors.watch(self.worker, true);
            }
        } else {
            self.leave_monitors(key);
        }
    }

    /// The connection stops being a monitor (RESET, closing).
    pub(super) fn leave_monitors(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.watching {
            return;
        }
        conn.watching = false;
        self.observer.monitors.retain(|&k| k != key);
        if self.observer.monitors.is_empty() {
            self.shared.monitors.watch(self.worker, false);
        }
    }
}
