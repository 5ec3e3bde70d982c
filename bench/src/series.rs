//! The per-second time series of a run: publish and delivery rates and the
//! latency percentiles of the messages that arrived in each second, warm-up
//! included (and marked). The same figures feed the progress line.
//!
//! Subscriber threads record every latency twice: into the run's
//! histogram, which is merged once at the end, and into a small interval
//! histogram that they add to [`crate::shared::Shared`]'s every
//! [`FLUSH_EVERY_NS`]; whoever builds the series (the main thread, or the
//! probe's one thread) takes that one each second and starts it afresh.

use crate::outcome::Latency;
use hdrhistogram::Histogram;
use serde::Serialize;

/// How often a subscriber thread hands its interval latencies over.
pub const FLUSH_EVERY_NS: u64 = 100_000_000;
/// One point of the series per this much time.
const POINT_EVERY_NS: u64 = 1_000_000_000;

/// An interval histogram: the run's bounds, 2 significant digits (1%), so
/// that adding and resetting it every 100 ms costs little.
pub fn interval_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("static histogram bounds are valid")
}

/// One second of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    /// End of the interval, seconds since the start gate opened.
    pub second: f64,
    /// The interval began before the warm-up ended: not (all) in the
    /// run's figures.
    pub warmup: bool,
    pub published_per_s: f64,
    pub delivered_per_s: f64,
    /// Latency of the messages that arrived in the interval.
    pub latency: Option<Latency>,
}

/// Builds the series from counters and an interval histogram.
#[derive(Debug)]
pub struct SeriesBuilder {
    start_ns: u64,
    warmup_end_ns: u64,
    last_ns: u64,
    last_published: u64,
    last_delivered: u64,
    pub points: Vec<SeriesPoint>,
}

impl SeriesBuilder {
    /// A series whose clock starts at `start_ns` (CLOCK_MONOTONIC), with
    /// the warm-up ending at `warmup_end_ns`.
    pub fn new(start_ns: u64, warmup_end_ns: u64) -> SeriesBuilder {
        SeriesBuilder {
            start_ns,
            warmup_end_ns,
            last_ns: start_ns,
            last_published: 0,
            last_delivered: 0,
            points: Vec::new(),
        }
    }

    /// A second has passed since the last point.
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_ns) >= POINT_EVERY_NS
    }

    /// Closes the interval ending at `now_ns` with the counters' current
    /// totals and the latencies in `interval`, which is emptied.
    pub fn point(
        &mut self,
        now_ns: u64,
        published: u64,
        delivered: u64,
        interval: &mut Histogram<u64>,
    ) -> &SeriesPoint {
        let dt = now_ns.saturating_sub(self.last_ns).max(1) as f64 / 1e9;
        let p = SeriesPoint {
            second: now_ns.saturating_sub(self.start_ns) as f64 / 1e9,
            warmup: self.last_ns < self.warmup_end_ns,
            published_per_s: published.saturating_sub(self.last_published) as f64 / dt,
            delivered_per_s: delivered.saturating_sub(self.last_delivered) as f64 / dt,
            latency: Latency::from_histogram(interval),
        };
        interval.reset();
        self.last_ns = now_ns;
        self.last_published = published;
        self.last_delivered = delivered;
        self.points.push(p);
        self.points.last().expect("just pushed")
    }

    /// The last, partial interval, if it holds anything.
    pub fn finish(
        mut self,
        now_ns: u64,
        published: u64,
        delivered: u64,
        interval: &mut Histogram<u64>,
    ) -> Vec<SeriesPoint> {
        let moved = published != self.last_published || delivered != self.last_delivered;
        if now_ns > self.last_ns && (moved || !interval.is_empty()) {
            self.point(now_ns, published, delivered, interval);
        }
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_point_holds_one_interval_and_marks_the_warmup() {
        let s0 = 1_000_000_000;
        let mut b = SeriesBuilder::new(s0, s0 + 1_500_000_000);
        let mut h = interval_histogram();
        assert!(!b.due(s0 + 999_999_999));
        assert!(b.due(s0 + 1_000_000_000));
        h.record(50_000).unwrap();
        let p = b.point(s0 + 1_000_000_000, 100, 1000, &mut h).clone();
        assert!(p.warmup);
        assert_eq!((p.published_per_s, p.delivered_per_s), (100.0, 1000.0));
        assert_eq!(p.latency.map(|l| l.count), Some(1));
        assert!(h.is_empty());
        // 1 s to 2 s overlaps the warm-up's end at 1.5 s: still marked.
        let p = b.point(s0 + 2_000_000_000, 300, 3000, &mut h).clone();
        assert!(p.warmup);
        assert_eq!((p.second, p.published_per_s), (2.0, 200.0));
        assert!(p.latency.is_none());
        // Half a second more with 50 messages: 100 per second.
        let points = b.finish(s0 + 2_500_000_000, 350, 3000, &mut h);
        assert_eq!(points.len(), 3);
        assert_eq!(points[2].published_per_s, 100.0);
        assert!(!points[2].warmup);
        // Nothing more: no empty point.
        let b = SeriesBuilder::new(s0, 0);
        assert!(b.finish(s0 + 10, 0, 0, &mut h).is_empty());
    }
}
