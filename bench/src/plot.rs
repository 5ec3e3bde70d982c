//! Latency distribution plot (SVG): latency against percentile, with the
//! percentile axis in "nines" (90%, 99%, 99.9%, ...) so the tail — where
//! servers differ — gets as much room as the median. One line per server.

use anyhow::{Result, anyhow};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;

/// Deepest percentile drawn: 99.999%.
const MAX_NINES: f64 = 5.0;

/// `q` in 0..1 → number of nines: 0.9 → 1, 0.99 → 2.
fn nines(q: f64) -> f64 {
    (-(1.0 - q).max(1e-9).log10()).min(MAX_NINES)
}

/// (nines, latency in µs) points of a histogram, for the percentile curve.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = h
        .iter_quantiles(4)
        .map(|v| {
            (
                nines(v.quantile_iterated_to()),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .filter(|&(x, _)| x < MAX_NINES)
        .collect();
    if let Some(&(_, last)) = pts.last() {
        pts.push((MAX_NINES, (h.max() as f64 / 1000.0).max(last)));
    }
    pts
}

/// Writes a latency-by-percentile plot, one line per named histogram.
pub fn latency_svg(path: &Path, series: &[(String, Histogram<u64>)]) -> Result<()> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(n, h)| (n.clone(), curve(h)))
        .collect();
    let ymax = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let ymin = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(f64::INFINITY, f64::min)
        .clamp(0.1, ymax);
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());

    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("latency by percentile", ("sans-serif", 22))
        .margin(16)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..MAX_NINES, (ymin * 0.8..ymax * 1.25).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            format!("{}%", trim(p))
        })
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (name, pts)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// 99.900 → "99.9", 0 → "0".
fn trim(p: f64) -> String {
    let s = format!("{p:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis_maps_percentiles() {
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(nines(1.0), MAX_NINES);
        assert_eq!(trim(99.9), "99.9");
        assert_eq!(trim(0.0), "0");
    }

    #[test]
    fn curve_rises_and_ends_at_the_maximum() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap();
        }
        let c = curve(&h);
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
        let last = c.last().unwrap();
        assert_eq!(last.0, MAX_NINES);
        assert!((last.1 - h.max() as f64 / 1000.0).abs() < 1e-9);
    }

    #[test]
    fn svg_file_is_written() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for v in 1..1000u64 {
            h.record(v * 997).unwrap();
        }
        let path = std::env::temp_dir().join(format!("rcb-plot-test-{}.svg", std::process::id()));
        latency_svg(&path, &[("a".into(), h.clone()), ("b".into(), h)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(text.starts_with("<svg"));
        assert!(text.contains("latency by percentile"));
    }
}
