//! The comparison table: which figures each shape shows, medians over the
//! runs of a cell, ratios between columns, and the aligned text.

use super::{Cell, ShapeResult};
use crate::plan::Shape;
use crate::report::{bytes, thousands};
use crate::run::{Latency, RunReport};

/// One figure the table shows for a shape.
pub(super) struct Metric {
    pub(super) name: &'static str,
    higher_is_better: bool,
    /// Read from the server process (/proc): "n/a" where its pid is unknown.
    of_server_process: bool,
    get: fn(&RunReport) -> Option<f64>,
    fmt: fn(f64) -> String,
}

/// A latency figure in µs, lower is better.
const fn us(name: &'static str, get: fn(&RunReport) -> Option<f64>) -> Metric {
    Metric {
        name,
        higher_is_better: false,
        of_server_process: false,
        get,
        fmt: |v| format!("{v:.1}"),
    }
}

const SERVER_CPU: Metric = Metric {
    name: "server CPU ns/msg",
    higher_is_better: false,
    of_server_process: true,
    get: |r| r.server_cpu_ns_per_msg,
    fmt: |v| format!("{v:.0}"),
};

/// What the table shows for a latency probe run: the server's percentiles,
/// the tool's floor and half a PING measured in the same run, and the
/// server's latency above the floor — the part that is the server's.
fn probe_metrics() -> Vec<Metric> {
    fn lat(r: &RunReport) -> Option<&Latency> {
        r.latency.as_ref()
    }
    fn floor(r: &RunReport) -> Option<&Latency> {
        r.probe.as_ref()?.floor.as_ref()
    }
    vec![
        us("latency p50 us", |r| lat(r).map(|l| l.p50_us)),
        us("latency p90 us", |r| lat(r).map(|l| l.p90_us)),
        us("latency p99 us", |r| lat(r).map(|l| l.p99_us)),
        us("latency p99.9 us", |r| lat(r).map(|l| l.p999_us)),
        us("latency p99.99 us", |r| lat(r).map(|l| l.p9999_us)),
        us("latency max us", |r| lat(r).map(|l| l.max_us)),
        us("floor p50 us", |r| floor(r).map(|l| l.p50_us)),
        us("floor p99 us", |r| floor(r).map(|l| l.p99_us)),
        us("floor p99.9 us", |r| floor(r).map(|l| l.p999_us)),
        us("half PING p50 us", |r| {
            r.probe.as_ref()?.ping_half_rtt.as_ref().map(|l| l.p50_us)
        }),
        us("p50 above floor us", |r| {
            Some(lat(r)?.p50_us - floor(r)?.p50_us)
        }),
        us("p99 above floor us", |r| {
            Some(lat(r)?.p99_us - floor(r)?.p99_us)
        }),
        SERVER_CPU,
    ]
}

/// The figures of one table row group, by the kind of run.
fn metrics_for(r: &RunReport) -> Vec<Metric> {
    if r.probe.is_some() {
        probe_metrics()
    } else {
        metrics(r.shape)
    }
}

pub(super) fn metrics(shape: Shape) -> Vec<Metric> {
    let rate = Metric {
        name: "delivered msg/s",
        higher_is_better: true,
        of_server_process: false,
        get: |r| Some(r.delivered_rate),
        fmt: thousands,
    };
    let p50 = us("latency p50 us", |r| r.latency.as_ref().map(|l| l.p50_us));
    let p99 = us("latency p99 us", |r| r.latency.as_ref().map(|l| l.p99_us));
    match shape {
        Shape::Memory => vec![Metric {
            name: "RSS bytes/conn",
            higher_is_better: false,
            of_server_process: true,
            get: |r| r.memory.as_ref().map(|m| m.bytes_per_connection),
            fmt: |v| bytes(v),
        }],
        Shape::Churn => vec![
            Metric {
                name: "churn ops/s",
                higher_is_better: true,
                of_server_process: false,
                get: |r| r.churn.as_ref().map(|c| c.ops_per_sec),
                fmt: thousands,
            },
            rate,
            SERVER_CPU,
            p99,
        ],
        _ => vec![rate, SERVER_CPU, p50, p99],
    }
}

/// Median of the finite values, if any.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl ShapeResult {
    /// The figures its rows show, from the kind of its first run.
    pub(super) fn metrics(&self) -> Vec<Metric> {
        self.cells
            .iter()
            .find_map(|c| c.runs.first())
            .map(metrics_for)
            .unwrap_or_else(|| metrics(Shape::Fanout))
    }
}

pub(super) fn cell_median(c: &Cell, m: &Metric) -> Option<f64> {
    median(
        c.runs
            .iter()
            .filter(|r| r.passed())
            .filter_map(m.get)
            .collect(),
    )
}

/// What a cell shows for one figure.
fn cell_text(c: &Cell, m: &Metric, v: Option<f64>) -> String {
    match v {
        Some(v) => (m.fmt)(v),
        None if !c.failures.is_empty() => "FAIL".into(),
        None if c.skipped.is_some() => "n/a".into(),
        None if m.of_server_process && !c.pid_known => "n/a".into(),
        None => "-".into(),
    }
}

/// The comparison table: one row per (shape, metric); a ratio column per
/// pair of `ratios` (indices into the columns), and which of the two is
/// better when there is a single pair.
pub(super) fn table(
    columns: &[String],
    ratios: &[(usize, usize)],
    results: &[ShapeResult],
) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["shape".to_string(), "metric".to_string()];
    head.extend(columns.iter().cloned());
    for &(x, y) in ratios {
        head.push(format!("{}/{}", columns[x], columns[y]));
    }
    let better = ratios.len() == 1;
    if better {
        head.push("better".into());
    }
    rows.push(head);
    for r in results {
        for (i, m) in r.metrics().iter().enumerate() {
            let label = if i == 0 { r.shape.as_str() } else { "" };
            let mut row = vec![label.to_string(), m.name.to_string()];
            let vals: Vec<Option<f64>> = r.cells.iter().map(|c| cell_median(c, m)).collect();
            for (c, v) in r.cells.iter().zip(&vals) {
                row.push(cell_text(c, m, *v));
            }
            for &(x, y) in ratios {
                let [q, b] = ratio_cells(columns, (x, y), m, vals[x], vals[y]);
                row.push(q);
                if better {
                    row.push(b);
                }
            }
            rows.push(row);
        }
    }
    render(&rows)
}

/// "x/y" and which column is better by that metric (within 2% is "same");
/// none for a negative figure (a latency above the floor can dip below it).
fn ratio_cells(
    columns: &[String],
    (i, j): (usize, usize),
    m: &Metric,
    x: Option<f64>,
    y: Option<f64>,
) -> [String; 2] {
    match (x, y) {
        (Some(x), Some(y)) if x >= 0.0 && y > 0.0 => {
            let q = x / y;
            let first_better = if m.higher_is_better { q > 1.0 } else { q < 1.0 };
            let better = if (q - 1.0).abs() < 0.02 {
                "same"
            } else if first_better {
                columns[i].as_str()
            } else {
                columns[j].as_str()
            };
            [format!("{q:.2}x"), better.into()]
        }
        _ => ["-".into(), String::new()],
    }
}

/// Aligned columns: the first two left-aligned, the figures right-aligned,
/// a rule under the header row.
fn render(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i < 2 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out
}

/// "shape (server)" for every passed run whose client CPU use was near the
/// CPUs it had: there the load generator may have set the pace.
pub(super) fn client_limited(results: &[ShapeResult], cpus: usize) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        for c in &r.cells {
            if c.runs
                .iter()
                .any(|x| x.passed() && x.client_cpu_cores >= 0.9 * cpus as f64)
            {
                out.push(format!("{} ({})", r.shape, c.server));
            }
        }
    }
    out
}

/// One object per (shape, column): every figure of the table, medians.
pub(super) fn medians_json(results: &[ShapeResult]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for r in results {
        for c in &r.cells {
            let mut obj = serde_json::Map::new();
            obj.insert("shape".into(), r.shape.clone().into());
            obj.insert("server".into(), c.server.clone().into());
            obj.insert("passed".into(), c.failures.is_empty().into());
            if let Some(why) = &c.skipped {
                obj.insert("skipped".into(), why.clone().into());
            }
            for m in r.metrics() {
                obj.insert(
                    m.name.into(),
                    cell_median(c, &m)
                        .map(serde_json::Value::from)
                        .unwrap_or_default(),
                );
            }
            out.push(serde_json::Value::Object(obj));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn unknown_server_cpu_reads_not_available() {
        let cell = Cell {
            server: "valkey".into(),
            runs: Vec::new(),
            failures: Vec::new(),
            skipped: None,
            pid_known: false,
        };
        assert_eq!(cell_text(&cell, &SERVER_CPU, None), "n/a");
        let rate = &metrics(Shape::Fanout)[0];
        assert_eq!(cell_text(&cell, rate, None), "-");
        assert_eq!(cell_text(&cell, rate, Some(1234.0)), "1,234");
    }
}
