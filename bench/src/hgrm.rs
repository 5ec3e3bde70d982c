//! Latency histograms as `.hgrm` text: the percentile distribution that
//! HdrHistogram's `outputPercentileDistribution` prints (5 ticks per half
//! distance), which HdrHistogram's plotter and its many ports read.
//! Values are in microseconds (recorded in ns, scaled by 1000).

use hdrhistogram::Histogram;
use std::fmt::Write;

/// Reporting points per half distance to 100%, as HdrHistogram's default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Recorded values are ns; the file is in µs.
const SCALE: f64 = 1000.0;

/// The text of `h`'s percentile distribution.
pub fn text(h: &Histogram<u64>) -> String {
    let sig = usize::from(h.sigfig());
    let mut o = String::new();
    let _ = write!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:>12.sig$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(o, "{value:>12.sig$} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / SCALE, h.stdev() / SCALE, h.max() as f64 / SCALE)
    };
    let _ = writeln!(
        o,
        "#[Mean    = {mean:>12.sig$}, StdDeviation   = {stdev:>12.sig$}]"
    );
    let _ = writeln!(
        o,
        "#[Max     = {max:>12.sig$}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets(h.sigfig())
    );
    o
}

/// HdrHistogram's sub-bucket count: the power of two holding 2 x 10^sigfig
/// values at unit resolution.
fn sub_buckets(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

/// Writes `h` to `path` as `.hgrm` text.
pub fn write(path: &std::path::Path, h: &Histogram<u64>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text(h)).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_lines_follow_hdrhistogram_format() {
        let mut h = crate::subscriber::new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let t = text(&h);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // The first point: the lowest value at percentile 0.
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        // Every point is value, percentile, cumulative count, 1/(1-p),
        // rising; the last one (100%) has no 1/(1-p).
        let points: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(points.windows(2).all(|w| {
            let n = |p: &Vec<&str>, i: usize| p[i].parse::<f64>().unwrap();
            n(&w[0], 0) <= n(&w[1], 0) && n(&w[0], 2) <= n(&w[1], 2)
        }));
        let last = points.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(
            (last[0], last[1], last[2]),
            ("1000.447", "1.000000000000", "1000")
        );
        // p50 sits at 500 µs (within HDR's 3 digits).
        let p50 = points.iter().find(|p| p[1] == "0.500000000000").unwrap();
        assert_eq!(p50[0], "500.223");
        assert!(t.contains("#[Max     =     1000.447, Total count    =         1000]"));
        assert!(t.ends_with("SubBuckets     =         2048]\n"));
    }

    #[test]
    fn an_empty_histogram_has_a_header_and_a_footer() {
        let t = text(&crate::subscriber::new_histogram());
        assert!(t.starts_with("       Value"));
        assert!(t.contains("Total count    =            0]"));
    }
}
