//! What a run is asked to do ([`RunOptions`]) and what it found
//! ([`RunReport`]): the figures, the delivery checks every run passes
//! through, and the parts the latency probe adds.

use crate::churn::ChurnReport;
use crate::conn::{Proto, Target};
use crate::plan::{Placement, Plan, Shape, Workload};
use crate::publisher::PubOutcome;
use crate::series::SeriesPoint;
use crate::shared::Shared;
use crate::sys;
use crate::verify::{Counts, Sent, SubscriberCheck};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
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
    /// Subscriber sockets' kernel receive buffer, bytes (0 = the kernel's
    /// autotuning).
    pub recv_buffer: usize,
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
    /// Collect the per-second time series into the report.
    pub series: bool,
}

impl RunOptions {
    /// Options for unit tests: a target on port 0, default workload.
    pub fn for_tests() -> RunOptions {
        RunOptions {
            target: Target::plain("127.0.0.1", 0),
            workload: Workload::defaults(),
            client_threads: 1,
            server_pid: None,
            read_buf: 1024,
            recv_buffer: 0,
            progress: false,
            label: "test".into(),
            drop_every: 0,
            coalesce: Duration::ZERO,
            drain_timeout: Duration::from_secs(1),
            spin: Duration::ZERO,
            floor: false,
            floor_cpus: Vec::new(),
            floor_spin: false,
            ping_count: 0,
            series: false,
        }
    }

    /// The warm-up, in ns.
    pub fn warmup_ns(&self) -> u64 {
        (self.workload.warmup.max(0.0) * 1e9) as u64
    }
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

/// Subscribers that stopped reading (`--stalled-subscribers`).
#[derive(Debug, Clone, Serialize)]
pub struct StalledReport {
    pub subscribers: u32,
    /// Of them, how many the server had closed by the end of the run.
    pub closed_by_server: u32,
    /// Deliveries the PUBLISH replies promised them.
    pub promised: u64,
}

/// Everything one run measured and verified.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub server: String,
    pub shape: Shape,
    /// RESP version, 0 over NATS.
    pub resp: u8,
    pub protocol: Proto,
    pub loop_kind: &'static str,
    /// Every connection spoke TLS.
    pub tls: bool,
    /// The ACL user every connection authenticated as (`None`: default).
    pub user: Option<String>,
    pub target_rate: Option<f64>,
    pub publishers: usize,
    pub subscribers: usize,
    pub channels: u32,
    pub payload: usize,
    pub window: usize,
    pub noise_patterns: u32,
    /// Seconds of publishing before the measurement window.
    pub warmup_s: f64,
    /// From the end of the warm-up until every delivery arrived.
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
    pub stalled: Option<StalledReport>,
    /// Latency probe figures: the floor, half a PING, placement.
    pub probe: Option<ProbeReport>,
    /// Every way the run failed verification; empty means it passed.
    pub violations: Vec<String>,
    /// One point per second, warm-up included (`--timeseries`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesPoint>,
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
            resp: match opts.target.proto {
                Proto::Resp2 => 2,
                Proto::Resp3 => 3,
                Proto::Nats => 0,
            },
            protocol: opts.target.proto,
            loop_kind: if w.rate.is_some() { "open" } else { "closed" },
            tls: opts.target.tls.is_some(),
            user: opts.target.user.clone(),
            target_rate: w.rate,
            publishers: 0,
            subscribers: 0,
            channels: 0,
            payload: w.payload,
            window: w.window,
            noise_patterns: w.noise_patterns,
            warmup_s: w.warmup,
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
            stalled: None,
            probe: None,
            violations: Vec::new(),
            series: Vec::new(),
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

/// Where the measurement window starts: the end of the warm-up, or the
/// start gate when there is none.
#[derive(Debug, Clone, Copy)]
pub struct WindowStart {
    cpu: CpuSample,
    at_ns: u64,
    delivered: u64,
    published: u64,
}

impl WindowStart {
    pub fn take(server_pid: Option<u32>, shared: &Shared) -> WindowStart {
        WindowStart {
            cpu: CpuSample::take(server_pid),
            at_ns: shared.now_ns(),
            delivered: shared.delivered.load(Ordering::Relaxed),
            published: shared.published.load(Ordering::Relaxed),
        }
    }

    /// The window from here to now; publishing ended at `publish_end_ns`.
    pub fn close(self, server_pid: Option<u32>, shared: &Shared, publish_end_ns: u64) -> Window {
        let now = shared.now_ns();
        Window {
            cpu: (self.cpu, CpuSample::take(server_pid)),
            elapsed_s: now.saturating_sub(self.at_ns).max(1) as f64 / 1e9,
            publish_s: publish_end_ns.saturating_sub(self.at_ns).max(1) as f64 / 1e9,
            delivered: shared
                .delivered
                .load(Ordering::Relaxed)
                .saturating_sub(self.delivered),
            published: shared
                .published
                .load(Ordering::Relaxed)
                .saturating_sub(self.published),
        }
    }
}

/// The measurement window of a run: what rates and CPU per message are
/// computed over. Verification covers the whole run, warm-up included.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub cpu: (CpuSample, CpuSample),
    /// Seconds from the window's start until every delivery arrived.
    pub elapsed_s: f64,
    /// Seconds of publishing inside the window.
    pub publish_s: f64,
    /// Messages delivered and published inside the window.
    pub delivered: u64,
    pub published: u64,
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
    let mut sent: HashMap<(u32, u32), Sent> = HashMap::new();
    for o in outcomes {
        for (c, s) in o.sent_on_channels() {
            sent.insert((o.id, c), s);
        }
    }
    let mut counts = Counts::default();
    for check in checks {
        counts.add(&check.finish_sent(|p, c| sent.get(&(p, c)).copied().unwrap_or_default()));
    }
    let promised: u64 = outcomes.iter().map(|o| o.promised).sum();
    let published: u64 = outcomes.iter().map(|o| o.sent).sum();
    let expected = expected_deliveries(plan, outcomes);
    report.publish_errors = outcomes.iter().map(|o| o.errors).sum();
    // A publisher that gave up left PUBLISHes unanswered: what they
    // delivered was never promised, so the sums below cannot balance (its
    // failure is already a violation); the streams are still checked.
    let unanswered: u64 = outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| o.sent.saturating_sub(o.replies))
        .sum();

    if !counts.is_clean() {
        report.violations.push(format!(
            "verification: {} lost, {} reordered, {} duplicate, {} corrupt",
            counts.lost, counts.reordered, counts.duplicates, counts.corrupt
        ));
    }
    if unanswered > 0 {
        report.violations.push(format!(
            "{unanswered} PUBLISH never answered: deliveries not checked against replies"
        ));
    } else if let Some(stalled) = &mut report.stalled {
        // Each reply also counts the stalled subscribers still connected:
        // between none and all of them.
        let answered: u64 = outcomes.iter().map(|o| o.replies.min(o.sent)).sum();
        let most = expected + answered * u64::from(stalled.subscribers);
        stalled.promised = promised.saturating_sub(expected);
        if delivered != expected {
            report.violations.push(format!(
                "messages delivered to reading subscribers ({delivered}) != subscribers x messages published ({expected})"
            ));
        }
        if promised < expected || promised > most {
            report.violations.push(format!(
                "sum of PUBLISH replies ({promised}) outside {expected}..={most} (reading subscribers x messages, plus at most every stalled one)"
            ));
        }
    } else if delivered != promised {
        report.violations.push(format!(
            "sum of PUBLISH replies ({promised}) != messages delivered ({delivered})"
        ));
    }
    if unanswered == 0 && report.stalled.is_none() && promised != expected {
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

/// Deliveries the subscribers of the plan are owed: every answered message
/// times the subscribers of its channel.
pub fn expected_deliveries(plan: &Plan, outcomes: &[PubOutcome]) -> u64 {
    let receivers = plan.receivers_per_channel();
    outcomes
        .iter()
        .flat_map(|o| o.sent_on_channels())
        .map(|(c, s)| s.answered * receivers[c as usize])
        .sum()
}

/// Rates, latency and CPU figures of a verified run.
pub fn fill_figures(report: &mut RunReport, hist: Histogram<u64>, window: Window) {
    let delivered = window.delivered;
    let elapsed = window.elapsed_s;
    let cpu = window.cpu;
    report.elapsed_s = elapsed;
    report.publish_rate = window.published as f64 / window.publish_s;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SubKind;

    fn options() -> RunOptions {
        RunOptions::for_tests()
    }

    /// One publisher on channels 0 and 1, one subscriber on both.
    fn plan() -> Plan {
        Plan {
            kind: SubKind::Channel,
            channels: 2,
            subscribers: vec![vec![0, 1]],
            publishers: vec![vec![0, 1]],
        }
    }

    #[test]
    fn a_publisher_that_gave_up_waiting_does_not_make_its_deliveries_corrupt() {
        // 10 sent round-robin over two channels (5 each), the first 7
        // answered (4 on channel 0, 3 on channel 1); 9 arrived, one of the
        // unanswered ones did not.
        let outcome = PubOutcome {
            id: 0,
            channels: vec![0, 1],
            sent_per_channel: vec![5, 5],
            sent: 10,
            promised: 7,
            replies: 7,
            failure: Some("server answered no PUBLISH for 30s".into()),
            ..PubOutcome::default()
        };
        let mut check = SubscriberCheck::new([(0, 0), (0, 1)]);
        for seq in 0..5 {
            check.observe(0, 0, seq);
        }
        for seq in 0..4 {
            check.observe(0, 1, seq);
        }
        let mut report = RunReport::empty(&options());
        verify_deliveries(
            &mut report,
            &plan(),
            std::slice::from_ref(&outcome),
            &[check],
            9,
        );
        assert!(report.verify.is_clean(), "{:?}", report.verify);
        assert_eq!(report.verify.received, 9);
        assert_eq!(
            report.violations,
            vec!["3 PUBLISH never answered: deliveries not checked against replies".to_string()]
        );

        // An answered message that never came is still lost.
        let mut check = SubscriberCheck::new([(0, 0), (0, 1)]);
        for seq in 0..3 {
            check.observe(0, 0, seq);
        }
        for seq in 0..3 {
            check.observe(0, 1, seq);
        }
        let mut report = RunReport::empty(&options());
        verify_deliveries(&mut report, &plan(), &[outcome], &[check], 6);
        assert_eq!((report.verify.lost, report.verify.corrupt), (1, 0));
    }

    #[test]
    fn stalled_subscribers_widen_the_replies_but_not_the_deliveries_owed() {
        // 6 sent over two channels, all answered; the reading subscriber got
        // all 6; two stalled subscribers were counted by the first 4
        // replies, then cut.
        let outcome = PubOutcome {
            id: 0,
            channels: vec![0, 1],
            sent_per_channel: vec![3, 3],
            sent: 6,
            promised: 6 + 2 * 4,
            replies: 6,
            ..PubOutcome::default()
        };
        let check = || {
            let mut check = SubscriberCheck::new([(0, 0), (0, 1)]);
            for seq in 0..3 {
                check.observe(0, 0, seq);
                check.observe(0, 1, seq);
            }
            check
        };
        let stalled = || StalledReport {
            subscribers: 2,
            closed_by_server: 2,
            promised: 0,
        };
        let mut report = RunReport::empty(&options());
        report.stalled = Some(stalled());
        verify_deliveries(
            &mut report,
            &plan(),
            std::slice::from_ref(&outcome),
            &[check()],
            6,
        );
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!(report.stalled.as_ref().map(|s| s.promised), Some(8));

        // Replies counting more than every stalled subscriber are wrong.
        let mut report = RunReport::empty(&options());
        report.stalled = Some(stalled());
        let inflated = PubOutcome {
            promised: 6 + 2 * 6 + 1,
            ..outcome
        };
        verify_deliveries(&mut report, &plan(), &[inflated], &[check()], 6);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        assert!(report.violations[0].contains("outside 6..=18"));
    }

    #[test]
    fn answered_messages_are_shared_out_in_round_robin_order() {
        let outcome = PubOutcome {
            channels: vec![7, 8, 9],
            sent_per_channel: vec![3, 3, 2],
            sent: 8,
            replies: 5,
            ..PubOutcome::default()
        };
        let got: Vec<(u32, u64, u64)> = outcome
            .sent_on_channels()
            .map(|(c, s)| (c, s.answered, s.sent))
            .collect();
        assert_eq!(got, vec![(7, 2, 3), (8, 2, 3), (9, 1, 2)]);
    }
}
