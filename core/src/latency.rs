//! The latency monitor (Redis's `latency.c`): for each event, the worst
//! latency of each second it crossed `latency-monitor-threshold` in, the
//! last 160 such seconds, and the worst ever; and the per-command latency
//! histograms `LATENCY HISTOGRAM` reports.
//!
//! Events are recorded only when over the threshold, so their lock is off
//! the path of ordinary commands. The events are Redis's `command` and
//! `fast-command` (a command that ran that long), and ringcast's own
//! `event-loop` (a worker spent that long in one call from its event loop:
//! a batch of requests from one connection, a drain of messages from other
//! workers, or its housekeeping) and `delivery-lag` (a message published on
//! another worker waited that long before it was queued for its
//! subscribers; measured on the sampled messages that carry their publish
//! time).
//!
//! Histograms are per worker (only their worker writes them: relaxed
//! load-and-store, no lock, no shared cache line) and summed when read.
//! They keep only what Redis's reply shows: the count of each power-of-two
//! bucket its hdr-histogram iteration reports (see [`bucket`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::WorkerId;
use crate::lock;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const HISTORY_LEN: usize = 160;
/// Command ids a histogram table has room for (the dispatch table's
/// commands and subcommands; a test in `commands` holds it to that).
pub const COMMAND_SLOTS: usize = 192;
/// Buckets of a command's histogram (see [`bucket`]).
pub const BUCKETS: usize = 21;

#[derive(Clone, Copy, Default, Debug)]
struct Sample {
    /// Unix seconds (0: empty slot).
    time: u64,
    latency_ms: u64,
}

/// One event's history.
struct Series {
    event: String,
    /// Next slot to write.
    idx: usize,
    max: u64,
    samples: [Sample; HISTORY_LEN],
}

impl Series {
    fn new(event: &str) -> Series {
        Series {
            event: event.to_string(),
            idx: 0,
            max: 0,
            samples: [Sample::default(); HISTORY_LEN],
        }
    }

    /// Samples in time order, oldest first.
    fn in_order(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..HISTORY_LEN)
            .map(move |j| self.samples[(self.idx + j) % HISTORY_LEN])
            .filter(|s| s.time != 0)
    }

    fn latest(&self) -> Sample {
        self.samples[(self.idx + HISTORY_LEN - 1) % HISTORY_LEN]
    }
}

/// What `LATENCY LATEST` shows of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    pub event: String,
    pub time: u64,
    pub latency_ms: u64,
    pub max_ms: u64,
}

/// One worker's command histograms: `[command id][bucket]`.
struct Histograms(Box<[[AtomicU64; BUCKETS]]>);

pub struct LatencyMonitor {
    /// Events in the order they first occurred.
    events: Mutex<Vec<Series>>,
    histograms: Box<[CachePadded<Histograms>]>,
    /// Counts at the last `CONFIG RESETSTAT`, subtracted when read (only the
    /// owning worker writes a histogram, so a reset cannot clear it).
    baseline: Mutex<Vec<[u64; BUCKETS]>>,
}

impl LatencyMonitor {
    pub fn new(workers: usize) -> Self {
        LatencyMonitor {
            events: Mutex::new(Vec::new()),
            histograms: (0..workers)
                .map(|_| {
                    let table = (0..COMMAND_SLOTS)
                        .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                        .collect();
                    CachePadded::new(Histograms(table))
                })
                .collect(),
            baseline: Mutex::new(vec![[0; BUCKETS]; COMMAND_SLOTS]),
        }
    }

    /// Record that `event` lasted `latency_ms` at unix time `now` (Redis's
    /// `latencyAddSample`: one sample per second, the worst of that second).
    pub fn add(&self, event: &str, latency_ms: u64, now: u64) {
        let mut events = lock(&self.events);
        let at = match events.iter().position(|s| s.event == event) {
            Some(at) => at,
            None => {
                events.push(Series::new(event));
                events.len() - 1
            }
        };
        let s = &mut events[at];
        s.max = s.max.max(latency_ms);
        let prev = (s.idx + HISTORY_LEN - 1) % HISTORY_LEN;
        if s.samples[prev].time == now {
            s.samples[prev].latency_ms = s.samples[prev].latency_ms.max(latency_ms);
            return;
        }
        s.samples[s.idx] = Sample {
            time: now,
            latency_ms,
        };
        s.idx = (s.idx + 1) % HISTORY_LEN;
    }

    /// The latest sample and the worst ever of every event.
    pub fn latest(&self) -> Vec<Latest> {
        lock(&self.events)
            .iter()
            .map(|s| {
                let last = s.latest();
                Latest {
                    event: s.event.clone(),
                    time: last.time,
                    latency_ms: last.latency_ms,
                    max_ms: s.max,
                }
            })
            .collect()
    }

    /// `(time, latency)` samples of `event` (exact name), oldest first.
    pub fn history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        lock(&self.events)
            .iter()
            .find(|s| s.event.as_bytes() == event)
            .map(|s| s.in_order().map(|x| (x.time, x.latency_ms)).collect())
            .unwrap_or_default()
    }

    /// Forget the named events (any case), or all when `events` is empty;
    /// returns how many were forgotten.
    pub fn reset(&self, events: &[&[u8]]) -> usize {
        let mut held = lock(&self.events);
        let before = held.len();
        held.retain(|s| {
            !events.is_empty()
                && !events
                    .iter()
                    .any(|e| s.event.as_bytes().eq_ignore_ascii_case(e))
        });
        before - held.len()
    }

    /// `LATENCY GRAPH`: the event's samples as Redis draws them, at unix
    /// time `now`; None if the event has no samples.
    pub fn graph(&self, event: &[u8], now: u64) -> Option<String> {
        let events = lock(&self.events);
        let s = events.iter().find(|s| s.event.as_bytes() == event)?;
        let samples: Vec<(f64, String)> = s
            .in_order()
            .map(|x| (x.latency_ms as f64, age_label(now.saturating_sub(x.time))))
            .collect();
        let (low, high) = samples.iter().fold((u64::MAX, 0), |(lo, hi), (v, _)| {
            (lo.min(*v as u64), hi.max(*v as u64))
        });
        let low = if samples.is_empty() { 0 } else { low };
        let mut graph = format!(
            "{} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
            s.event,
            s.max,
            "-".repeat(GRAPH_COLUMNS)
        );
        sparkline(&mut graph, &samples, GRAPH_COLUMNS, 4);
        Some(graph)
    }

    /// `LATENCY DOCTOR`'s report: what each event did, then advice.
    pub fn doctor(&self, settings: DoctorSettings, now: u64) -> String {
        let events = lock(&self.events);
        let stats: Vec<(String, EventStats)> = events
            .iter()
            .map(|s| (s.event.clone(), EventStats::of(s, now)))
            .collect();
        doctor(&stats, settings)
    }

    /// Count a command (id `id`) that ran for `micros`, on `worker`'s
    /// histograms. Only that worker calls this for its own index.
    pub fn record(&self, worker: WorkerId, id: u16, micros: u64) {
        if let Some(row) = self.histograms[worker].0.get(usize::from(id)) {
            let b = &row[bucket(micros)];
            b.store(b.load(Relaxed) + 1, Relaxed);
        }
    }

    /// A command's histogram since the last reset: its calls, and for each
    /// bucket that holds any, the bucket's bound in microseconds and the
    /// calls up to it (`LATENCY HISTOGRAM`'s `histogram_usec`). None if it
    /// has no calls.
    pub fn histogram(&self, id: u16) -> Option<(u64, Vec<(u64, u64)>)> {
        let at = usize::from(id);
        let base = *lock(&self.baseline).get(at)?;
        let counts = self.counts(at);
        let mut cumulative = 0;
        let mut steps = Vec::new();
        for (k, (&now, &then)) in counts.iter().zip(base.iter()).enumerate() {
            let n = now.saturating_sub(then);
            if n > 0 {
                cumulative += n;
                steps.push((bucket_bound(k), cumulative));
            }
        }
        (cumulative > 0).then_some((cumulative, steps))
    }

    /// `CONFIG RESETSTAT`: every histogram starts again from nothing.
    pub fn reset_histograms(&self) {
        let mut base = lock(&self.baseline);
        for (at, row) in base.iter_mut().enumerate() {
            *row = self.counts(at);
        }
    }

    fn counts(&self, at: usize) -> [u64; BUCKETS] {
        let mut sum = [0u64; BUCKETS];
        for w in self.histograms.iter() {
            if let Some(row) = w.0.get(at) {
                for (s, c) in sum.iter_mut().zip(row.iter()) {
                    *s += c.load(Relaxed);
                }
            }
        }
        sum
    }
}

/// The bucket of a command that ran `micros` microseconds. Redis records
/// `micros * 1000` nanoseconds (clamped to 1 ns .. 1 s) into an
/// hdr-histogram of 2 significant digits and reports it by iterating at
/// powers of two from 1024 ns: the step at `1024 << k` counts every value up
/// to `129 << (k + 3)` ns exclusive (the top of the sub-bucket holding
/// `1024 << k`). Bucket `k` holds the values between two such steps; the
/// last one, the values above `129 << 22` ns.
pub fn bucket(micros: u64) -> usize {
    let ns = micros.saturating_mul(1000).clamp(1, 1_000_000_000);
    // The smallest k with ns < 129 << (k + 3) = 1032 << k.
    let q = (ns + 1032) / 1032;
    let k = if q <= 1 {
        0
    } else {
        64 - (q - 1).leading_zeros() as usize
    };
    k.min(BUCKETS - 1)
}

/// The microseconds Redis shows for bucket `k`: the highest value the
/// bucket's hdr sub-bucket holds, divided by 1000. The last bucket's step is
/// reported at the histogram's last sub-bucket (2^30 - 1 ns).
pub fn bucket_bound(k: usize) -> u64 {
    if k + 1 >= BUCKETS {
        return ((1u64 << 30) - 1) / 1000;
    }
    ((129u64 << (k + 3)) - 1) / 1000
}

/// What `LATENCY DOCTOR` needs of the configuration.
#[derive(Clone, Copy, Debug)]
pub struct DoctorSettings {
    pub latency_threshold_ms: u64,
    pub slowlog_slower_than_us: i64,
}

/// Redis's `latencyStats` of one event.
#[derive(Clone, Copy, Debug, Default)]
struct EventStats {
    avg: u64,
    mad: u64,
    samples: u64,
    /// Seconds since the oldest sample (at least 1).
    period: u64,
    max: u64,
}

impl EventStats {
    fn of(s: &Series, now: u64) -> EventStats {
        let samples: Vec<Sample> = s.in_order().collect();
        let mut st = EventStats {
            max: s.max,
            ..EventStats::default()
        };
        if samples.is_empty() {
            return st;
        }
        st.samples = samples.len() as u64;
        st.avg = samples.iter().map(|x| x.latency_ms).sum::<u64>() / st.samples;
        let oldest = samples.iter().map(|x| x.time).min().unwrap_or(now);
        st.period = now.saturating_sub(oldest).max(1);
        st.mad = samples
            .iter()
            .map(|x| x.latency_ms.abs_diff(st.avg))
            .sum::<u64>()
            / st.samples;
        st
    }
}

/// `LATENCY DOCTOR` as Redis's `createLatencyReport` writes it: the same
/// opening, one line per event in Redis's format, then advice. The advice
/// is Redis's for its events (`command`, `fast-command`) except what speaks
/// of keys, persistence or huge pages (ringcast has none of them, and does
/// not read `/proc`); ringcast's own events get advice of their own.
fn doctor(events: &[(String, EventStats)], settings: DoctorSettings) -> String {
    if events.is_empty() && settings.latency_threshold_ms == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    let mut report = String::new();
    let mut advice = Advice::default();
    for (n, (event, st)) in events.iter().enumerate() {
        if n == 0 {
            report.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let per_sample = if st.samples == 0 {
            f64::NAN
        } else {
            st.period as f64 / st.samples as f64
        };
        report.push_str(&format!(
            "{}. {event}: {} latency spikes (average {}ms, mean deviation {}ms, period {per_sample:.2} sec). Worst all time event {}ms.\n",
            n + 1,
            st.samples,
            st.avg,
            st.mad,
            st.max
        ));
        advice.note(event, settings);
    }
    if events.is_empty() {
        report.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
    } else if advice.count == 0 {
        report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        report.push_str("\nI have a few advices for you:\n\n");
        advice.write(&mut report, settings);
    }
    report
}

/// Which pieces of advice the report's events call for.
#[derive(Default)]
struct Advice {
    count: usize,
    slowlog_enable: bool,
    slowlog_tune: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    event_loop: bool,
    delivery: bool,
}

impl Advice {
    fn note(&mut self, event: &str, settings: DoctorSettings) {
        if event.eq_ignore_ascii_case("command") {
            if settings.slowlog_slower_than_us < 0 {
                self.slowlog_enable = true;
                self.count += 1;
            } else if (settings.slowlog_slower_than_us / 1000) as u64
                > settings.latency_threshold_ms
            {
                self.slowlog_tune = true;
                self.count += 1;
            }
            self.slowlog_inspect = true;
            self.count += 1;
        }
        if event.eq_ignore_ascii_case("fast-command") {
            self.scheduler = true;
            self.count += 1;
        }
        if event.eq_ignore_ascii_case("event-loop") {
            self.event_loop = true;
            self.count += 1;
        }
        if event.eq_ignore_ascii_case("delivery-lag") {
            self.delivery = true;
            self.count += 1;
        }
    }

    fn write(&self, r: &mut String, settings: DoctorSettings) {
        let suggested = settings.latency_threshold_ms.saturating_mul(1000);
        if self.slowlog_enable {
            r.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {suggested}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n"));
        }
        if self.slowlog_tune {
            r.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {suggested}'.\n"));
        }
        if self.slowlog_inspect {
            r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if self.scheduler {
            r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n");
        }
        if self.event_loop {
            r.push_str("- A worker spent a long time in one turn of its event loop, without reading or writing for its other clients: a slow command (see the Slow Log), a large fan-out of messages to its subscribers, or a system that does not give it CPU time. Check the Slow Log and the system load, and consider spreading publishers and subscribers over more workers.\n");
        }
        if self.delivery {
            r.push_str("- Messages from other workers waited long before reaching their subscribers: the receiving worker was busy, or paused because its subscribers' output was piling up (see INFO's output backlog figures). Check for slow subscribers and for slow commands on that worker.\n");
        }
    }
}

/// Width of a `LATENCY GRAPH` (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLUMNS: usize = 80;

/// How long ago a sample was, as `LATENCY GRAPH` labels it.
fn age_label(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Redis's `sparklineRender` with `SPARKLINE_FILL`: `rows` rows of
/// `_o#|` characters, then each sample's label written downwards, in
/// chunks of `columns` samples.
fn sparkline(out: &mut String, samples: &[(f64, String)], columns: usize, rows: usize) {
    let min = samples.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let max = samples
        .iter()
        .map(|s| s.0)
        .fold(f64::NEG_INFINITY, f64::max);
    for (n, chunk) in samples.chunks(columns).enumerate() {
        if n != 0 {
            out.push('\n');
        }
        sparkline_range(out, chunk, min, max, rows);
    }
}

fn sparkline_range(out: &mut String, chunk: &[(f64, String)], min: f64, max: f64, rows: usize) {
    const FILL: [char; 3] = ['_', 'o', '#'];
    const LABEL_MARGIN_TOP: usize = 1;
    let labelled = chunk.iter().any(|s| !s.1.is_empty());
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let steps = (FILL.len() * rows) as i64;
    let mut row = 0;
    loop {
        let mut line = vec![' '; chunk.len()];
        let mut more = false;
        for (j, (value, label)) in chunk.iter().enumerate() {
            // As Redis's `(int) (relval*steps)/relmax`: truncated twice.
            let step = (((value - min) * steps as f64) as i64 as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < rows {
                more = true;
                let at = step - ((rows - row - 1) * FILL.len()) as i64;
                if (0..FILL.len() as i64).contains(&at) {
                    line[j] = FILL[at as usize];
                } else if at >= FILL.len() as i64 {
                    line[j] = '|';
                }
            } else {
                if labelled && row - rows < LABEL_MARGIN_TOP {
                    more = true;
                    break;
                }
                if let Some(c) = label.as_bytes().get(row - rows - LABEL_MARGIN_TOP) {
                    more = true;
                    line[j] = char::from(*c);
                }
            }
        }
        if !more {
            return;
        }
        row += 1;
        out.extend(line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_redis_histogram_steps() {
        // Bounds Redis 7 reports in `histogram_usec`.
        let bounds: Vec<u64> = (0..BUCKETS).map(bucket_bound).collect();
        assert_eq!(
            &bounds[..8],
            &[1, 2, 4, 8, 16, 33, 66, 132],
            "the first steps"
        );
        assert_eq!(bounds[18], 270532);
        assert_eq!(bounds[19], 541065);
        assert_eq!(bounds[20], 1073741);
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 1);
        assert_eq!(bucket(3), 2);
        assert_eq!(bucket(150_143), 18);
        assert_eq!(bucket(300_138), 19);
        assert_eq!(bucket(600_000), 20);
        assert_eq!(bucket(5_000_000), 20, "over a second counts at the top");
        // Every value lands in the first bucket whose bound covers it.
        for micros in [1u64, 2, 4, 5, 8, 9, 16, 17, 33, 34, 1000, 270532, 270533] {
            let k = bucket(micros);
            assert!(micros * 1000 < (129u64 << (k + 3)), "{micros}");
            assert!(
                k == 0 || micros * 1000 > (129u64 << (k + 2)) - 1,
                "{micros}"
            );
        }
    }

    #[test]
    fn histograms_are_summed_over_workers_and_reset_by_baseline() {
        let m = LatencyMonitor::new(2);
        m.record(0, 5, 0);
        m.record(1, 5, 3);
        m.record(1, 5, 3);
        assert_eq!(m.histogram(5), Some((3, vec![(1, 1), (4, 3)])));
        assert_eq!(m.histogram(6), None);
        m.reset_histograms();
        assert_eq!(m.histogram(5), None);
        m.record(0, 5, 150_143);
        assert_eq!(m.histogram(5), Some((1, vec![(270532, 1)])));
    }

    #[test]
    fn one_sample_per_second_keeps_the_worst() {
        let m = LatencyMonitor::new(1);
        m.add("command", 300, 100);
        m.add("command", 500, 100);
        m.add("command", 200, 100);
        m.add("command", 150, 102);
        assert_eq!(m.history(b"command"), vec![(100, 500), (102, 150)]);
        assert_eq!(m.history(b"COMMAND"), vec![], "history names are exact");
        let latest = m.latest();
        assert_eq!(latest.len(), 1);
        assert_eq!(
            (latest[0].time, latest[0].latency_ms, latest[0].max_ms),
            (102, 150, 500)
        );
        assert_eq!(m.reset(&[b"nosuch"]), 0);
        assert_eq!(m.reset(&[b"COMMAND"]), 1, "reset names are any case");
        assert!(m.latest().is_empty());
    }

    #[test]
    fn history_wraps_after_160_seconds() {
        let m = LatencyMonitor::new(1);
        for t in 1..=170 {
            m.add("e", t, t);
        }
        let h = m.history(b"e");
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h[0], (11, 11));
        assert_eq!(h[159], (170, 170));
    }

    #[test]
    fn graph_is_drawn_as_redis_draws_it() {
        let m = LatencyMonitor::new(1);
        m.add("command", 300, 1000);
        m.add("command", 150, 1002);
        // Redis 7.0's reply to the same samples, seen 3 and 1 seconds later.
        let expected = format!(
            "command - high 300 ms, low 150 ms (all time high 300 ms)\n{}\n# \n| \n| \n|_\n  \n31\nss\n",
            "-".repeat(80)
        );
        assert_eq!(m.graph(b"command", 1003).as_deref(), Some(&expected[..]));
        assert_eq!(m.graph(b"nosuch", 1003), None);
    }

    #[test]
    fn doctor_reports_events_in_redis_words() {
        let settings = DoctorSettings {
            latency_threshold_ms: 0,
            slowlog_slower_than_us: 10000,
        };
        let m = LatencyMonitor::new(1);
        assert!(m.doctor(settings, 0).starts_with("I'm sorry, Dave"));
        m.add("command", 300, 1000);
        m.add("command", 150, 1002);
        let settings = DoctorSettings {
            latency_threshold_ms: 100,
            ..settings
        };
        let report = m.doctor(settings, 1003);
        assert!(report.starts_with("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n1. command: 2 latency spikes (average 225ms, mean deviation 75ms, period 1.50 sec). Worst all time event 300ms.\n\nI have a few advices for you:\n\n- Check your Slow Log"), "{report}");
    }
}
