//! CSV files: one row per run (`--csv`) and one row per second of a run
//! (`--timeseries`). Rows are appended; the header is written when the file
//! is new, and a file whose header differs is refused rather than mixed.

use crate::run::{Latency, RunReport};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;

/// Which run a row belongs to: the shape's row group (`fanout100`,
/// `latency-pairs1@1k`), the table column, and the repetition (from 1).
#[derive(Debug, Clone)]
pub struct RunId<'a> {
    pub case: &'a str,
    pub column: &'a str,
    pub run: usize,
}

/// Columns of `--csv`.
const RESULT_COLUMNS: &[&str] = &[
    "unix_time",
    "case",
    "column",
    "run",
    "server",
    "shape",
    "protocol",
    "tls",
    "user",
    "loop",
    "target_rate",
    "publishers",
    "subscribers",
    "channels",
    "payload",
    "warmup_s",
    "elapsed_s",
    "published",
    "publish_rate",
    "delivered",
    "delivered_rate",
    "lost",
    "reordered",
    "duplicates",
    "corrupt",
    "passed",
    "latency_count",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "p9999_us",
    "max_us",
    "server_cpu_ns_per_msg",
    "server_cpu_cores",
    "client_cpu_ns_per_msg",
    "client_cpu_cores",
    "churn_ops_per_s",
    "rss_bytes_per_conn",
    "floor_p50_us",
    "floor_p99_us",
    "floor_p999_us",
    "ping_half_p50_us",
    "violations",
];

/// Columns of `--timeseries`.
const SERIES_COLUMNS: &[&str] = &[
    "case",
    "column",
    "run",
    "second",
    "warmup",
    "published_per_s",
    "delivered_per_s",
    "latency_count",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "p9999_us",
    "max_us",
];

/// A field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => String::new(),
    }
}

fn latency_fields(l: Option<&Latency>) -> Vec<String> {
    vec![
        l.map(|l| l.count.to_string()).unwrap_or_default(),
        num(l.map(|l| l.p50_us)),
        num(l.map(|l| l.p90_us)),
        num(l.map(|l| l.p99_us)),
        num(l.map(|l| l.p999_us)),
        num(l.map(|l| l.p9999_us)),
        num(l.map(|l| l.max_us)),
    ]
}

/// The `--csv` row of one run.
pub fn result_row(id: &RunId<'_>, r: &RunReport) -> Vec<String> {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let shape = serde_json::to_value(r.shape)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let protocol = serde_json::to_value(r.protocol)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let floor = r.probe.as_ref().and_then(|p| p.floor.as_ref());
    let mut row = vec![
        time.to_string(),
        id.case.to_owned(),
        id.column.to_owned(),
        id.run.to_string(),
        r.server.clone(),
        shape,
        protocol,
        r.tls.to_string(),
        r.user.clone().unwrap_or_default(),
        r.loop_kind.to_owned(),
        num(r.target_rate),
        r.publishers.to_string(),
        r.subscribers.to_string(),
        r.channels.to_string(),
        r.payload.to_string(),
        num(Some(r.warmup_s)),
        num(Some(r.elapsed_s)),
        r.published.to_string(),
        num(Some(r.publish_rate)),
        r.delivered.to_string(),
        num(Some(r.delivered_rate)),
        r.verify.lost.to_string(),
        r.verify.reordered.to_string(),
        r.verify.duplicates.to_string(),
        r.verify.corrupt.to_string(),
        r.passed().to_string(),
    ];
    row.extend(latency_fields(r.latency.as_ref()));
    row.extend([
        num(r.server_cpu_ns_per_msg),
        num(r.server_cpu_cores),
        num(r.client_cpu_ns_per_msg),
        num(Some(r.client_cpu_cores)),
        num(r.churn.as_ref().map(|c| c.ops_per_sec)),
        num(r.memory.as_ref().map(|m| m.bytes_per_connection)),
        num(floor.map(|l| l.p50_us)),
        num(floor.map(|l| l.p99_us)),
        num(floor.map(|l| l.p999_us)),
        num(r
            .probe
            .as_ref()
            .and_then(|p| p.ping_half_rtt.as_ref())
            .map(|l| l.p50_us)),
        r.violations.join(" | "),
    ]);
    row
}

/// The `--timeseries` rows of one run.
pub fn series_rows(id: &RunId<'_>, r: &RunReport) -> Vec<Vec<String>> {
    r.series
        .iter()
        .map(|p| {
            let mut row = vec![
                id.case.to_owned(),
                id.column.to_owned(),
                id.run.to_string(),
                num(Some(p.second)),
                p.warmup.to_string(),
                num(Some(p.published_per_s)),
                num(Some(p.delivered_per_s)),
            ];
            row.extend(latency_fields(p.latency.as_ref()));
            row
        })
        .collect()
}

/// Appends the `--csv` rows of `runs` to `path`.
pub fn append_results(path: &Path, runs: &[(RunId<'_>, &RunReport)]) -> Result<()> {
    let rows: Vec<Vec<String>> = runs.iter().map(|(id, r)| result_row(id, r)).collect();
    append(path, RESULT_COLUMNS, &rows)
}

/// Appends the `--timeseries` rows of `runs` to `path`.
pub fn append_series(path: &Path, runs: &[(RunId<'_>, &RunReport)]) -> Result<()> {
    let rows: Vec<Vec<String>> = runs.iter().flat_map(|(id, r)| series_rows(id, r)).collect();
    append(path, SERIES_COLUMNS, &rows)
}

fn append(path: &Path, columns: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let header = columns.join(",");
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    if let Some(first) = existing.lines().next()
        && first != header
    {
        bail!(
            "{}: its header is not this tool's ({} columns expected); write to a new file",
            path.display(),
            columns.len()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut out = String::new();
    if existing.is_empty() {
        out.push_str(&header);
        out.push('\n');
    }
    for row in rows {
        debug_assert_eq!(row.len(), columns.len());
        let fields: Vec<String> = row.iter().map(|f| field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    f.write_all(out.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RunOptions;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn rows_have_one_field_per_column_and_the_header_is_written_once() {
        let opts = RunOptions::for_tests();
        let mut r = RunReport::empty(&opts);
        r.violations.push("lost, badly".into());
        let id = RunId {
            case: "fanout100",
            column: "redis",
            run: 1,
        };
        assert_eq!(result_row(&id, &r).len(), RESULT_COLUMNS.len());
        r.series.push(crate::series::SeriesPoint {
            second: 1.0,
            warmup: true,
            published_per_s: 10.0,
            delivered_per_s: 10.0,
            latency: None,
        });
        let rows = series_rows(&id, &r);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), SERIES_COLUMNS.len());
        r.series.clear();
        let dir = std::env::temp_dir().join(format!("rcb-csv-{}", std::process::id()));
        let path = dir.join("results.csv");
        let _ = std::fs::remove_file(&path);
        append_results(&path, &[(id.clone(), &r)]).unwrap();
        append_results(&path, &[(id, &r)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], RESULT_COLUMNS.join(","));
        // passed, 7 latency fields, 3 CPU fields, client cores, 6 more, violations.
        assert!(
            lines[1].ends_with(",false,,,,,,,,,,,0,,,,,,,\"lost, badly\""),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_file_with_another_header_is_refused() {
        let dir = std::env::temp_dir().join(format!("rcb-csv-other-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let opts = RunOptions::for_tests();
        let r = RunReport::empty(&opts);
        let id = RunId {
            case: "c",
            column: "x",
            run: 1,
        };
        let e = append_results(&path, &[(id, &r)]).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.to_string().contains("header"));
    }
}
