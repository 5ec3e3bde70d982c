//! What the tool writes besides its table: HDR histograms (`.hgrm`), CSV
//! of results, per-second time series, the progress line; and how a run
//! is shaped: warm-up, presets with flags overridden. Short runs against
//! redis-server (and ringcast when built); only contents are checked.

mod common;

use common::*;
use ringcast_bench::servers::{ServerKind, find_redis};
use std::path::{Path, PathBuf};

fn out_dir(name: &str) -> PathBuf {
    let d = scratch_dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("output dir");
    d
}

/// The (value, percentile, total count) points of an `.hgrm` file.
fn hgrm_points(path: &Path) -> Vec<(f64, f64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
        "{text}"
    );
    assert!(text.contains("#[Max     = "), "{text}");
    text.lines()
        .skip(2)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().expect("value"),
                f[1].parse().expect("percentile"),
                f[2].parse().expect("count"),
            )
        })
        .collect()
}

#[test]
fn hgrm_files_hold_every_delivery_of_a_run() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let dir = out_dir("hgrm-run");
    let file = dir.join("fanout.hgrm");
    let f = file.display().to_string();
    let r = run_clean(&server, &["--subscribers", "4", "--hgrm", &f]);
    let points = hgrm_points(&file);
    let last = points.last().expect("points");
    assert_eq!(last.1, 1.0);
    assert_eq!(Some(last.2), r["latency"]["count"].as_u64());
    // The probe writes its floor beside it.
    let file = dir.join("probe.hgrm");
    let f = file.display().to_string();
    run_clean(
        &server,
        &[
            "--probe",
            "--rate",
            "2000",
            "--ping-count",
            "50",
            "--shape",
            "pairs",
            "--hgrm",
            &f,
        ],
    );
    assert!(!hgrm_points(&file).is_empty());
    assert!(!hgrm_points(&dir.join("probe-floor.hgrm")).is_empty());
}

#[test]
fn compare_writes_one_hgrm_per_shape_and_column() {
    if find_redis(&None).is_err() {
        eprintln!("skipped: no redis-server");
        return;
    }
    let dir = out_dir("hgrm-compare");
    let d = dir.display().to_string();
    let (code, out) = bench(&[
        "compare",
        "--quick",
        "--json",
        "-q",
        "--duration",
        "0.3",
        "--servers",
        "redis",
        "--shapes",
        "fanout100,latency-pairs1",
        "--latency-rates",
        "2000",
        "--hgrm-dir",
        &d,
    ]);
    assert_eq!(code, 0, "{out:#}");
    for f in [
        "fanout100-redis.hgrm",
        "latency-pairs1@2k-redis.hgrm",
        "latency-pairs1@2k-redis-floor.hgrm",
    ] {
        assert!(!hgrm_points(&dir.join(f)).is_empty(), "{f}");
    }
}

/// The rows of a CSV file as maps from column name to field (no quoted
/// commas in the files checked here).
fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{l}");
            header
                .iter()
                .cloned()
                .zip(fields.into_iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn warmup_is_verified_but_left_out_of_the_figures_and_marked_in_the_series() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let dir = out_dir("series-run");
    let file = dir.join("series.csv");
    let f = file.display().to_string();
    for extra in [
        &["--subscribers", "3", "--rate", "2000"][..],
        &[
            "--probe",
            "--rate",
            "2000",
            "--ping-count",
            "50",
            "--shape",
            "pairs",
        ][..],
    ] {
        let args = join(
            &["--warmup", "1", "--duration", "1.2", "--timeseries", &f],
            extra,
        );
        let r = run_clean(&server, &args);
        assert_eq!(r["warmup_s"], 1.0);
        // Every message is verified; only those sent after the warm-up count.
        let delivered = r["delivered"].as_u64().expect("delivered");
        let measured = r["latency"]["count"].as_u64().expect("latency count");
        assert!(
            measured > 0 && measured < delivered,
            "{measured} of {delivered}"
        );
        let series = r["series"].as_array().expect("series");
        assert!(series.len() >= 2, "{r:#}");
        assert_eq!(series[0]["warmup"], true);
        assert_eq!(series[series.len() - 1]["warmup"], false);
    }
    let rows = csv_rows(&file);
    assert!(rows.len() >= 4, "{rows:?}");
    assert!(rows.iter().any(|r| r["case"] == "pairs"));
    assert!(
        rows.iter()
            .all(|r| r["run"] == "1" && !r["second"].is_empty())
    );
    assert_eq!(rows[0]["warmup"], "true");
    assert!(
        rows.iter()
            .any(|r| r["warmup"] == "false" && !r["p99_us"].is_empty())
    );
}

#[test]
fn the_progress_line_shows_latency() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let port = server.port.to_string();
    let out = std::process::Command::new(bench_bin())
        .args(["run", "-p", &port, "--subscribers", "2", "--rate", "1000"])
        .args(["--duration", "2"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("delivered") && l.contains("/s"))
        .unwrap_or_else(|| panic!("no progress line in:\n{stderr}"));
    assert!(line.contains(" p50 ") && line.contains(" p99 "), "{line}");
}

#[test]
fn csv_results_get_one_row_per_run_appended() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let dir = out_dir("csv-run");
    let file = dir.join("results.csv");
    let f = file.display().to_string();
    let r1 = run_clean(&server, &["--subscribers", "3", "--csv", &f]);
    run_clean(
        &server,
        &["--shape", "pairs", "--rate", "2000", "--csv", &f],
    );
    let rows = csv_rows(&file);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["case"], "fanout");
    assert_eq!(rows[0]["passed"], "true");
    assert_eq!(rows[0]["delivered"], r1["delivered"].to_string());
    assert_eq!(rows[0]["lost"], "0");
    assert!(!rows[0]["p99_us"].is_empty() && !rows[0]["server_cpu_ns_per_msg"].is_empty());
    assert_eq!(
        (rows[1]["case"].as_str(), rows[1]["loop"].as_str()),
        ("pairs", "open")
    );
}

#[test]
fn compare_appends_a_csv_row_per_run_and_a_series_per_run() {
    if find_redis(&None).is_err() {
        eprintln!("skipped: no redis-server");
        return;
    }
    let dir = out_dir("csv-compare");
    let (results, series) = (dir.join("results.csv"), dir.join("series.csv"));
    let (r, s) = (results.display().to_string(), series.display().to_string());
    let (code, out) = bench(&[
        "compare",
        "--json",
        "-q",
        "--duration",
        "1.2",
        "--servers",
        "redis",
        "--shapes",
        "pairs1,fanout100",
        "--repeat",
        "2",
        "--csv",
        &r,
        "--timeseries",
        &s,
    ]);
    assert_eq!(code, 0, "{out:#}");
    let rows = csv_rows(&results);
    let key = |r: &std::collections::HashMap<String, String>| {
        (r["case"].clone(), r["column"].clone(), r["run"].clone())
    };
    let keys: Vec<_> = rows.iter().map(key).collect();
    let want = |c: &str, run: &str| (c.to_owned(), "redis".to_owned(), run.to_owned());
    assert_eq!(
        keys,
        [
            want("pairs1", "1"),
            want("pairs1", "2"),
            want("fanout100", "1"),
            want("fanout100", "2")
        ]
    );
    assert!(rows.iter().all(|r| r["passed"] == "true"));
    let points = csv_rows(&series);
    for k in &keys {
        assert!(points.iter().any(|p| key(p) == *k), "no series for {k:?}");
    }
}

#[test]
fn a_preset_takes_the_flags_given_over_its_own() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let r = run_clean(
        &server,
        &[
            "--preset",
            "fanout100",
            "--subscribers",
            "5",
            "--payload",
            "100",
        ],
    );
    assert_eq!(
        (r["shape"].as_str(), r["subscribers"].as_u64()),
        (Some("fanout"), Some(5))
    );
    assert_eq!(r["payload"], 100);
    assert_deliveries(&r, 5);
    // pairs8 with 3 pairs: the preset's shape, the given count.
    let r = run_clean(&server, &["--preset", "pairs8", "--subscribers", "3"]);
    assert_eq!(
        (r["publishers"].as_u64(), r["subscribers"].as_u64()),
        (Some(3), Some(3))
    );
}

#[test]
fn compare_applies_the_flags_given_to_every_preset() {
    if find_redis(&None).is_err() {
        eprintln!("skipped: no redis-server");
        return;
    }
    let (code, out) = bench(&[
        "compare",
        "--json",
        "-q",
        "--quick",
        "--servers",
        "redis",
        "--shapes",
        "pairs8,latency-pairs1",
        "--subscribers",
        "2",
        "--warmup",
        "0.5",
        "--duration",
        "1",
        "--rate",
        "3000",
    ]);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["duration_s"], 1.0);
    let overrides = out["overrides"].as_str().expect("overrides");
    for flag in ["--subscribers 2", "--warmup 0.5", "--rate 3000"] {
        assert!(overrides.contains(flag), "{overrides}");
    }
    let shapes: Vec<&str> = out["shapes"]
        .as_array()
        .expect("shapes")
        .iter()
        .map(|s| s["shape"].as_str().unwrap_or_default())
        .collect();
    // A given --rate replaces the latency preset's own rates.
    assert_eq!(shapes, ["pairs8", "latency-pairs1@3k"]);
    for s in out["shapes"].as_array().expect("shapes") {
        for r in s["cells"][0]["runs"].as_array().expect("runs") {
            assert_eq!(r["subscribers"], 2);
            assert_eq!(r["warmup_s"], 0.5);
            assert_eq!(r["target_rate"], 3000.0);
            assert_eq!(r["violations"], serde_json::json!([]));
        }
    }
}
