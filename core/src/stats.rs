//! Figures about the whole process that `INFO` and the metrics endpoint
//! report: memory, CPU, rates, error counts and the delivery latency
//! histogram.
//!
//! The core does no I/O, so the server reads the operating system's figures
//! on a timer and hands them to a [`Sampler`], which derives peaks and
//! Redis-style instantaneous rates and stores everything in
//! [`ProcessStats`] (plain atomics in `Shared`). INFO only reads those.
//!
//! Delivery latency is recorded by the worker that queues a message for its
//! subscribers, into that worker's own [`LatencyHistogram`] (single writer,
//! relaxed atomics: no lock and no shared cache line on the hot path);
//! readers merge the per-worker histograms. Only messages that cross workers
//! are measured, and only a sample of them carries a publish time (see
//! `hub::LATENCY_SAMPLE_EVERY`): reading the clock on every publish cost
//! more than the rest of a cross-worker delivery's bookkeeping.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::lock;

/// CPU time used, in microseconds (from `getrusage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub sys_us: u64,
    pub user_us: u64,
}

/// One reading of the operating system's figures, taken by the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessSample {
    /// Bytes the allocator holds for the process (0 if unknown: RSS is used).
    pub allocated: u64,
    /// Resident set size in bytes.
    pub rss: u64,
    pub total_system_memory: u64,
    pub cpu: CpuTimes,
    pub cpu_children: CpuTimes,
}

/// The latest process figures, written by the sampler, read by INFO and metrics.
#[derive(Debug, Default)]
pub struct ProcessStats {
    pub used_memory: AtomicU64,
    pub used_memory_peak: AtomicU64,
    /// `used_memory` at the first sample (INFO `used_memory_startup`).
    pub used_memory_startup: AtomicU64,
    pub rss: AtomicU64,
    pub total_system_memory: AtomicU64,
    pub cpu_sys_us: AtomicU64,
    pub cpu_user_us: AtomicU64,
    pub cpu_sys_children_us: AtomicU64,
    pub cpu_user_children_us: AtomicU64,
    pub ops_per_sec: AtomicU64,
    /// Network input and output rates, bytes per second.
    pub input_bps: AtomicU64,
    pub output_bps: AtomicU64,
    /// Set by `CONFIG RESETSTAT`: the sampler starts its rates afresh.
    pub reset_rates: AtomicBool,
    /// Name of the memory allocator (INFO `mem_allocator`), set once by the server.
    pub allocator: OnceLock<String>,
    /// INFO `process_supervised` (`systemd`, `upstart`, else `no`), set once by the server.
    pub supervised: OnceLock<&'static str>,
    /// `uname` as Redis prints it in INFO `os` (sysname release machine), set once by the server.
    pub os: OnceLock<String>,
}

/// Redis's instantaneous metric (`trackInstantaneousMetric`): the rate of a
/// counter over each sampling interval, averaged over the last 16 intervals.
#[derive(Debug, Default, Clone)]
pub struct Instantaneous {
    samples: [u64; Instantaneous::SAMPLES],
    idx: usize,
    last: Option<(Instant, u64)>,
}

impl Instantaneous {
    pub const SAMPLES: usize = 16;

    /// Record the counter's value at `now`.
    pub fn sample(&mut self, now: Instant, reading: u64) {
        if let Some((t, v)) = self.last {
            let ms = now.saturating_duration_since(t).as_millis() as u64;
            let rate = reading
                .saturating_sub(v)
                .saturating_mul(1000)
                .checked_div(ms)
                .unwrap_or(0);
            self.samples[self.idx] = rate;
            self.idx = (self.idx + 1) % Self::SAMPLES;
        }
        self.last = Some((now, reading));
    }

    /// Forget the rates measured so far (Redis's `resetServerStats`); the
    /// last reading is kept, so the next rate is measured from it.
    pub fn clear(&mut self) {
        self.samples = [0; Self::SAMPLES];
        self.idx = 0;
    }

    /// Average rate per second over the kept samples.
    pub fn value(&self) -> u64 {
        self.samples.iter().sum::<u64>() / Self::SAMPLES as u64
    }
}

/// Counters one worker owns (it alone writes them; INFO sums all workers).
#[derive(Default, Debug)]
pub struct WorkerStats {
    pub connections_received: AtomicU64,
    pub connected_clients: AtomicU64,
    /// Connections that moved here from another worker (`hub::placement`).
    pub connections_moved: AtomicU64,
    pub pubsub_clients: AtomicU64,
    pub commands_processed: AtomicU64,
    pub messages_published: AtomicU64,
    pub messages_delivered: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub inbound_depth: AtomicU64,
    /// Bytes of messages this worker pushed into other workers' rings that
    /// they have not taken yet (bounded by `ring-bytes`).
    pub ring_bytes_out: AtomicU64,
    /// Output queued and not yet written, as the backlog counts it (gauge),
    /// and how many times it paused the worker's intake.
    pub output_backlog: AtomicU64,
    pub backlog_pauses: AtomicU64,
    /// Error replies sent (INFO `total_error_replies`).
    pub error_replies: AtomicU64,
    /// Read and write calls that moved data (INFO `total_reads_processed` / `total_writes_processed`).
    pub reads_processed: AtomicU64,
    pub writes_processed: AtomicU64,
    /// Connections closed, by why ([`Disconnect`] as the index).
    pub disconnections: [AtomicU64; Disconnect::COUNT],
    /// Failed AUTH / HELLO AUTH attempts (INFO `acl_access_denied_auth`).
    pub auth_denied: AtomicU64,
    /// Gauges refreshed by the worker's cron: output bytes held for its
    /// clients, the largest output and input buffer among them, and its
    /// publishers paused for ring room.
    pub output_memory: AtomicU64,
    pub max_output_buffer: AtomicU64,
    pub max_input_buffer: AtomicU64,
    pub paused_publishers: AtomicU64,
    /// CPU time of the worker thread, microseconds (set by the server).
    pub cpu_sys_us: AtomicU64,
    pub cpu_user_us: AtomicU64,
    /// Time from PUBLISH on another worker to the message being queued here.
    pub delivery_latency: LatencyHistogram,
}

impl WorkerStats {
    /// Connections closed for this reason.
    pub fn disconnections(&self, why: Disconnect) -> &AtomicU64 {
        &self.disconnections[why as usize]
    }

    /// The counters `CONFIG RESETSTAT` resets (Redis's `resetServerStats`
    /// and ringcast's own totals, disconnections by reason among them);
    /// gauges are not among them.
    pub fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        [
            &self.connections_received,
            &self.connections_moved,
            &self.commands_processed,
            &self.messages_published,
            &self.messages_delivered,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.backlog_pauses,
            &self.error_replies,
            &self.reads_processed,
            &self.writes_processed,
        ]
        .into_iter()
        .chain(&self.disconnections)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        // Single writer: a load + store is enough and avoids a locked RMW.
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }
    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_sub(n), Relaxed);
    }
}

/// Why a connection closed: the `reason` label of the metrics endpoint's
/// `ringcast_disconnections_total` and of the disconnect log line. Each
/// connection is counted once, under the first reason that ends it (a
/// client that sends QUIT and then hangs up has quit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// QUIT.
    Quit,
    /// The client closed its side, or reading from or writing to it failed.
    HangUp,
    /// A malformed request (the error is sent, then the connection closes),
    /// or one that looks like HTTP (closed at once).
    ProtocolError,
    /// Over `client-output-buffer-limit`, or over the output allowed a
    /// client that never authenticated.
    OutputBufferLimit,
    /// Over `client-query-buffer-limit`.
    QueryBufferLimit,
    /// Idle for longer than `timeout`.
    IdleTimeout,
    /// `CLIENT KILL`.
    Killed,
    /// Its ACL user was deleted or changed so that it may not stay.
    AclRevoked,
    /// The server is shutting down.
    Shutdown,
}

impl Disconnect {
    pub const COUNT: usize = 9;
    pub const ALL: [Disconnect; Disconnect::COUNT] = [
        Disconnect::Quit,
        Disconnect::HangUp,
        Disconnect::ProtocolError,
        Disconnect::OutputBufferLimit,
        Disconnect::QueryBufferLimit,
        Disconnect::IdleTimeout,
        Disconnect::Killed,
        Disconnect::AclRevoked,
        Disconnect::Shutdown,
    ];

    /// The label value, as metrics and logs show it.
    pub fn label(self) -> &'static str {
        match self {
            Disconnect::Quit => "quit",
            Disconnect::HangUp => "hangup",
            Disconnect::ProtocolError => "protocol_error",
            Disconnect::OutputBufferLimit => "output_buffer_limit",
            Disconnect::QueryBufferLimit => "query_buffer_limit",
            Disconnect::IdleTimeout => "idle_timeout",
            Disconnect::Killed => "killed",
            Disconnect::AclRevoked => "acl_revoked",
            Disconnect::Shutdown => "shutdown",
        }
    }
}

/// Sums of per-worker counters the [`Sampler`] turns into rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerTotals {
    pub commands_processed: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
}

/// Turns periodic [`ProcessSample`]s into the figures of [`ProcessStats`].
#[derive(Debug, Default)]
pub struct Sampler {
    ops: Instantaneous,
    input: Instantaneous,
    output: Instantaneous,
    started: bool,
}

impl Sampler {
    /// How often the server should call [`Sampler::tick`] (Redis samples
    /// its instantaneous metrics every 100 ms too).
    pub const INTERVAL: Duration = Duration::from_millis(100);

    pub fn tick(&mut self, p: &ProcessStats, totals: WorkerTotals, now: Instant, s: ProcessSample) {
        if p.reset_rates.swap(false, Relaxed) {
            self.ops.clear();
            self.input.clear();
            self.output.clear();
        }
        let used = if s.allocated > 0 { s.allocated } else { s.rss };
        p.used_memory.store(used, Relaxed);
        p.used_memory_peak.fetch_max(used, Relaxed);
        if !self.started {
            p.used_memory_startup.store(used, Relaxed);
            self.started = true;
        }
        p.rss.store(s.rss, Relaxed);
        p.total_system_memory.store(s.total_system_memory, Relaxed);
        p.cpu_sys_us.store(s.cpu.sys_us, Relaxed);
        p.cpu_user_us.store(s.cpu.user_us, Relaxed);
        p.cpu_sys_children_us.store(s.cpu_children.sys_us, Relaxed);
        p.cpu_user_children_us
            .store(s.cpu_children.user_us, Relaxed);
        self.ops.sample(now, totals.commands_processed);
        self.input.sample(now, totals.net_input_bytes);
        self.output.sample(now, totals.net_output_bytes);
        p.ops_per_sec.store(self.ops.value(), Relaxed);
        p.input_bps.store(self.input.value(), Relaxed);
        p.output_bps.store(self.output.value(), Relaxed);
    }
}

/// Upper bounds (inclusive) of the delivery latency buckets, in nanoseconds:
/// 1-2-5 steps from 1 µs to 1 s. Anything slower lands in the last (+Inf) bucket.
pub const LATENCY_BOUNDS_NS: [u64; 19] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
];

/// One worker's histogram of delivery latencies. Only its worker writes it.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts; the last slot is the +Inf bucket.
    buckets: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    /// Record one observation (called only by the owning worker).
    pub fn record(&self, latency: Duration) {
        let ns = latency.as_nanos().min(u64::MAX as u128) as u64;
        let i = LATENCY_BOUNDS_NS.partition_point(|&b| b < ns);
        WorkerStats::add(&self.buckets[i], 1);
        WorkerStats::add(&self.sum_ns, ns);
    }

    /// Add this histogram's counts into `into`.
    pub fn merge_into(&self, into: &mut LatencySnapshot) {
        for (acc, b) in into.buckets.iter_mut().zip(&self.buckets) {
            *acc += b.load(Relaxed);
        }
        into.sum_ns += self.sum_ns.load(Relaxed);
    }

    /// Add into `into` the counts recorded since `base` copied them.
    pub fn merge_since(&self, base: &LatencyHistogram, into: &mut LatencySnapshot) {
        for ((acc, b), old) in into
            .buckets
            .iter_mut()
            .zip(&self.buckets)
            .zip(&base.buckets)
        {
            *acc += b.load(Relaxed).saturating_sub(old.load(Relaxed));
        }
        into.sum_ns += self
            .sum_ns
            .load(Relaxed)
            .saturating_sub(base.sum_ns.load(Relaxed));
    }

    /// Make `base` a copy of this histogram's counts (`CONFIG RESETSTAT`).
    pub fn copy_to(&self, base: &LatencyHistogram) {
        for (b, old) in self.buckets.iter().zip(&base.buckets) {
            old.store(b.load(Relaxed), Relaxed);
        }
        base.sum_ns.store(self.sum_ns.load(Relaxed), Relaxed);
    }
}

/// A merged, plain copy of latency histograms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    pub buckets: [u64; LATENCY_BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
}

impl LatencySnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// `(upper bound in seconds, count in that bucket alone)` for each
    /// finite bucket; observations above the last bound are only in `count()`.
    /// (`prometheus-client` accumulates these into `le` series itself.)
    pub fn finite_buckets(&self) -> Vec<(f64, u64)> {
        LATENCY_BOUNDS_NS
            .iter()
            .zip(&self.buckets)
            .map(|(&b, &n)| (b as f64 / 1e9, n))
            .collect()
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1), in
    /// nanoseconds; None when empty or when it falls in the +Inf bucket.
    pub fn quantile_bound_ns(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_NS.get(i).copied();
            }
        }
        None
    }
}

/// Error replies by their code (the first word: `ERR`, `NOAUTH`...), for
/// INFO `errorstats`. Errors are off the hot path, so a small lock is fine.
#[derive(Debug, Default)]
pub struct ErrorStats {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl ErrorStats {
    /// Count one error reply; `reply` is its text without the leading `-`.
    pub fn record(&self, reply: &[u8]) {
        let code = reply
            .split(|&b| b == b' ' || b == b'\r')
            .next()
            .unwrap_or_default();
        let code = String::from_utf8_lossy(code);
        *lock(&self.counts).entry(code.into_owned()).or_default() += 1;
    }

    /// Forget every count (`CONFIG RESETSTAT`).
    pub fn clear(&self) {
        lock(&self.counts).clear();
    }

    /// Every code seen and its count, sorted by code.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        lock(&self.counts)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// Redis's `bytesToHuman`: `1016.22K`, `11.70M`, `0B`.
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

/// Microseconds as Redis prints CPU times: `seconds.micros` (`0.087207`).
pub fn format_cpu(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_disconnect_reason_has_its_own_slot_and_label() {
        for (i, why) in Disconnect::ALL.iter().enumerate() {
            assert_eq!(*why as usize, i);
        }
        let mut labels: Vec<_> = Disconnect::ALL.iter().map(|d| d.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Disconnect::COUNT);
    }

    #[test]
    fn instantaneous_rate_averages_the_last_sixteen_intervals() {
        let t0 = Instant::now();
        let mut m = Instantaneous::default();
        m.sample(t0, 0);
        assert_eq!(m.value(), 0, "one reading gives no rate yet");
        // 100 events every 100 ms = 1000/s, for all 16 samples.
        for i in 1..=16u64 {
            m.sample(t0 + Duration::from_millis(100 * i), 100 * i);
        }
        assert_eq!(m.value(), 1000);
        // Half the window idle: the average halves.
        for i in 17..=24u64 {
            m.sample(t0 + Duration::from_millis(100 * i), 1600);
        }
        assert_eq!(m.value(), 500);
    }

    #[test]
    fn instantaneous_rate_ignores_a_counter_going_backwards() {
        let t0 = Instant::now();
        let mut m = Instantaneous::default();
        m.sample(t0, 50);
        m.sample(t0 + Duration::from_millis(100), 10);
        assert_eq!(m.value(), 0);
    }

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_covers_it() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_nanos(1_000)); // exactly the 1 µs bound
        h.record(Duration::from_nanos(1_001)); // just over: 2 µs bucket
        h.record(Duration::from_secs(5)); // +Inf
        let mut s = LatencySnapshot::default();
        h.merge_into(&mut s);
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[LATENCY_BOUNDS_NS.len()], 1);
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_ns, 1_000 + 1_001 + 5_000_000_000);
        let finite = s.finite_buckets();
        assert_eq!(finite.len(), LATENCY_BOUNDS_NS.len());
        assert_eq!(finite[0], (1e-6, 1));
        assert_eq!(finite[1], (2e-6, 1));
        assert_eq!(
            finite.iter().map(|b| b.1).sum::<u64>(),
            2,
            "the 5 s observation is past every finite bound"
        );
    }

    #[test]
    fn histograms_of_several_workers_merge_by_bucket() {
        let a = LatencyHistogram::default();
        let b = LatencyHistogram::default();
        a.record(Duration::from_micros(3));
        b.record(Duration::from_micros(4));
        b.record(Duration::from_millis(3));
        let mut s = LatencySnapshot::default();
        a.merge_into(&mut s);
        b.merge_into(&mut s);
        assert_eq!(s.buckets[2], 2, "3 µs and 4 µs share the 5 µs bucket");
        assert_eq!(s.count(), 3);
        assert_eq!(s.quantile_bound_ns(0.5), Some(5_000));
        assert_eq!(s.quantile_bound_ns(1.0), Some(5_000_000));
        assert_eq!(LatencySnapshot::default().quantile_bound_ns(0.5), None);
    }

    #[test]
    fn error_codes_are_the_first_word_of_the_reply() {
        let e = ErrorStats::default();
        e.record(b"ERR unknown command 'x'");
        e.record(b"ERR syntax error");
        e.record(b"NOAUTH Authentication required.");
        e.record(b"WRONGPASS invalid username-password pair");
        assert_eq!(
            e.snapshot(),
            vec![
                ("ERR".to_string(), 2),
                ("NOAUTH".to_string(), 1),
                ("WRONGPASS".to_string(), 1)
            ]
        );
    }

    #[test]
    fn human_sizes_follow_redis_bytes_to_human() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1_040_608), "1016.22K");
        assert_eq!(bytes_to_human(12_271_616), "11.70M");
        assert_eq!(bytes_to_human(25_276_514_304), "23.54G");
    }

    #[test]
    fn cpu_times_print_as_seconds_with_six_decimals() {
        assert_eq!(format_cpu(87_207), "0.087207");
        assert_eq!(format_cpu(12_000_001), "12.000001");
    }
}
