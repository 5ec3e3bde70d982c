//! What a run is asked to do ([`RunOptions`]) and what it found
//! ([`RunReport`]): the figures, the delivery checks every run passes
//! through, and the parts the latency probe adds.

use crate::churn::ChurnReport;
use crate::conn::Target;
use crate::plan::{Placement, Plan, Shape, Workload};
use crate::publisher::PubOutcome;
use crate::sys;
use crate::verify::{Counts, SubscriberCheck};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// How a run is executed (as opposed to what traffic it generates).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: Target,
    pub workload: Workload,
    /// Subscriber event-loop threads.
    pub client_threads: usize,
    /// Local server process to sample for CPU and RSS.
    pub server_pid: Option<u32>,
    /// Per-connection read buffer, bytes.
    pub read_buf: usize,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Name of the server in reports.
    pub label: String,
    /// Fault injection: subscribers ignore every n-th message (0 = off).
    pub drop_every: u64,
    /// Subscriber pause after each busy poll round (0 = none).
    pub coalesce: Duration,
    /// Give up waiting for promised deliveries after this long without progress.
    pub drain_timeout: Duration,
    /// Latency probe: sleeps end this long before a send time; the rest is spun.
    pub spin: Duration,
    /// Latency probe: also measure the tool's floor against its own relay.
    pub floor: bool,
    /// Latency probe: CPUs for the floor relay (the server's); empty = any.
    pub floor_cpus: Vec<usize>,
    /// Latency probe: the floor relay busy-polls instead of waiting in epoll.
    pub floor_spin: bool,
    /// Latency probe: PING round trips to time against the target.
    pub ping_count: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            p9999_us: us(h.value_at_quantile(0.9999)),
            max_us: us(h.max()),
        })
    }
}

/// Memory shape results.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub connections: u32,
    pub rss_before: u64,
    pub rss_after: u64,
    pub bytes_per_connection: f64,
}

/// Everything one run measured and verified.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub server: String,
    pub shape: Shape,
    pub resp: u8,
    pub loop_kind: &'static str,
    pub target_rate: Option<f64>,
    pub publishers: usize,
    pub subscribers: usize,
    pub channels: u32,
    pub payload: usize,
    pub window: usize,
    pub noise_patterns: u32,
    pub elapsed_s: f64,
    pub published: u64,
    pub publish_rate: f64,
    pub promised: u64,
    pub delivered: u64,
    pub delivered_rate: f64,
    pub payload_bytes_rate: f64,
    pub verify: Counts,
    pub publish_errors: u64,
    pub latency: Option<Latency>,
    pub server_cpu_ns_per_msg: Option<f64>,
    pub server_cpu_cores: Option<f64>,
    pub client_cpu_cores: f64,
    /// This tool's own CPU per delivered message: when it is well below the
    /// server's on an equal core, the tool was not the limit.
    pub client_cpu_ns_per_msg: Option<f64>,
    pub churn: Option<ChurnReport>,
    pub memory: Option<MemoryReport>,
    /// Latency probe figures: the floor, half a PING, placement.
    pub probe: Option<ProbeReport>,
    /// Every way the run failed verification; empty means it passed.
    pub violations: Vec<String>,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

impl RunReport {
    /// A report with the run's settings and no results yet.
    pub(crate) fn empty(opts: &RunOptions) -> RunReport {
        let w = &opts.workload;
        RunReport {
            server: opts.label.clone(),
            shape: w.shape,
            resp: if opts.target.resp3 { 3 } else { 2 },
            loop_kind: if w.rate.is_some() { "open" } else { "closed" },
            target_rate: w.rate,
            publishers: 0,
            subscribers: 0,
            channels: 0,
            payload: w.payload,
            window: w.window,
            noise_patterns: w.noise_patterns,
            elapsed_s: 0.0,
            published: 0,
            publish_rate: 0.0,
            promised: 0,
            delivered: 0,
            delivered_rate: 0.0,
            payload_bytes_rate: 0.0,
            verify: Counts::default(),
            publish_errors: 0,
            latency: None,
            server_cpu_ns_per_msg: None,
            server_cpu_cores: None,
            client_cpu_cores: 0.0,
            client_cpu_ns_per_msg: None,
            churn: None,
            memory: None,
            probe: None,
            violations: Vec::new(),
            histogram: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// CPU time of the server and of this process at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    server_ns: Option<u64>,
    client_ns: u64,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> CpuSample {
        CpuSample {
            server_ns: server_pid.and_then(|p| sys::cpu_ns(p).ok()),
            client_ns: sys::self_cpu_ns().unwrap_or(0),
        }
    }
}

/// Checks what arrived against what was published: every subscriber's
/// streams, and the sum of PUBLISH replies against deliveries and against
/// subscribers × messages. Fills `report.verify`, `published`, `promised`,
/// `delivered` and `publish_errors`; adds a violation for each mismatch.
pub fn verify_deliveries(
    report: &mut RunReport,
    plan: &Plan,
    outcomes: &[PubOutcome],
    checks: &[SubscriberCheck],
    delivered: u64,
) {
    let mut sent: HashMap<(u32, u32), u64> = HashMap::new();
    for o in outcomes {
        for (c, n) in o.channels.iter().zip(&o.sent_per_channel) {
            sent.insert((o.id, *c), *n);
        }
    }
    let mut counts = Counts::default();
    for check in checks {
        counts.add(&check.finish(|p, c| sent.get(&(p, c)).copied().unwrap_or(0)));
    }
    let promised: u64 = outcomes.iter().map(|o| o.promised).sum();
    let published: u64 = outcomes.iter().map(|o| o.sent).sum();
    let receivers = plan.receivers_per_channel();
    let expected: u64 = sent
        .iter()
        .map(|(&(_, c), &n)| n * receivers[c as usize])
        .sum();
    report.publish_errors = outcomes.iter().map(|o| o.errors).sum();

    if !counts.is_clean() {
        report.violations.push(format!(
            "verification: {} lost, {} reordered, {} duplicate, {} corrupt",
            counts.lost, counts.reordered, counts.duplicates, counts.corrupt
        ));
    }
    if delivered != promised {
        report.violations.push(format!(
            "sum of PUBLISH replies ({promised}) != messages delivered ({delivered})"
        ));
    }
    if promised != expected {
        report.violations.push(format!(
            "sum of PUBLISH replies ({promised}) != subscribers x messages published ({expected})"
        ));
    }
    if report.publish_errors > 0 {
        let first = outcomes.iter().find_map(|o| o.first_error.clone());
        report.violations.push(format!(
            "{} PUBLISH errors (first: {})",
            report.publish_errors,
            first.unwrap_or_default()
        ));
    }
    if published == 0 && report.violations.is_empty() {
        report.violations.push("no message was published".into());
    }
    report.verify = counts;
    report.published = published;
    report.promised = promised;
    report.delivered = delivered;
}

/// Rates, latency and CPU figures of a verified run.
pub fn fill_figures(
    report: &mut RunReport,
    hist: Histogram<u64>,
    elapsed: f64,
    publish_elapsed: f64,
    cpu: (CpuSample, CpuSample),
) {
    let delivered = report.delivered;
    report.elapsed_s = elapsed;
    report.publish_rate = report.published as f64 / publish_elapsed;
    report.delivered_rate = delivered as f64 / elapsed;
    report.payload_bytes_rate = report.delivered_rate * report.payload as f64;
    report.latency = Latency::from_histogram(&hist);
    report.histogram = Some(hist);
    let (before, after) = cpu;
    if let (Some(a), Some(b)) = (before.server_ns, after.server_ns) {
        let used = b.saturating_sub(a) as f64;
        report.server_cpu_cores = Some(used / 1e9 / elapsed);
        if delivered > 0 {
            report.server_cpu_ns_per_msg = Some(used / delivered as f64);
        }
    }
    let self_used = after.client_ns.saturating_sub(before.client_ns) as f64;
    report.client_cpu_cores = self_used / 1e9 / elapsed;
    if delivered > 0 {
        report.client_cpu_ns_per_msg = Some(self_used / delivered as f64);
    }
}

/// What the probe adds to a run's report.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// Messages per second, all publishers together.
    pub rate: f64,
    /// Sleeps end this long before a send time; the rest is spun.
    pub spin_us: f64,
    /// The same probe against the relay inside the tool.
    pub floor: Option<Latency>,
    /// Half of a PING round trip against the target.
    pub ping_half_rtt: Option<Latency>,
    /// How late the probe wrote each message against its intended time
    /// (target pass): the pacing error, already included in the latency.
    pub send_lag: Option<Latency>,
    /// The same for the floor pass.
    pub floor_send_lag: Option<Latency>,
    pub placement: PlacementReport,
    #[serde(skip)]
    pub floor_histogram: Option<Histogram<u64>>,
}

/// Where the target put the probe's connections.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementReport {
    pub wanted: Placement,
    /// False when the server does not say which worker serves a connection.
    pub reported: bool,
    /// (publisher, subscriber) pairs sharing a channel, on one worker / on two.
    pub same_worker: u64,
    pub cross_worker: u64,
    pub publisher_workers: Vec<Option<u32>>,
    pub subscriber_workers: Vec<Option<u32>>,
}

impl PlacementReport {
    /// One line for people.
    pub fn describe(&self) -> String {
        if !self.reported {
            return "not reported by the server (no io-thread in CLIENT INFO)".into();
        }
        let wanted = match self.wanted {
            Placement::Any => "any",
            Placement::Same => "same",
            Placement::Cross => "cross",
        };
        format!(
            "{} publisher->subscriber pair(s) on the same worker, {} across workers \
             (asked: {wanted}; from CLIENT INFO io-thread)",
            self.same_worker, self.cross_worker
        )
    }
}
