//! End-to-end tests of the `ringcast-bench` binary against real servers.
//!
//! - ringcast: `$RINGCAST_BIN`, else `ringcast` in the same target directory
//!   and profile as the binary under test (`cargo test --workspace` builds it).
//!   When neither exists the ringcast tests print why and pass as skipped.
//! - redis-server: found on PATH; skipped (with a message) when absent.
//!
//! Each test starts its own server on a free loopback port. Runs are short
//! and nothing asserts on time: only exit codes and verification counts.

mod common;

use common::*;
use ringcast_bench::servers::{ServerKind, ServerProc, find_redis};
use serde_json::Value;

#[test]
fn short_fanout_against_ringcast_verifies_clean() {
    let Some(server) = start(ServerKind::Ringcast) else {
        return;
    };
    let r = run_clean(&server, &["--shape", "fanout", "--subscribers", "20"]);
    assert_deliveries(&r, 20);
    let r = run_clean(
        &server,
        &["--shape", "patterns", "--subscribers", "8", "--resp", "3"],
    );
    assert_deliveries(&r, 1);
}

#[test]
fn short_fanout_against_redis_server_verifies_clean() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let r = run_clean(&server, &["--shape", "fanout", "--subscribers", "20"]);
    assert_deliveries(&r, 20);
    assert!(
        r["server_cpu_ns_per_msg"].as_f64().is_some(),
        "server pid found via INFO"
    );
    let r = run_clean(
        &server,
        &["--shape", "sharded", "--subscribers", "5", "--resp", "3"],
    );
    assert_deliveries(&r, 5);
    let r = run_clean(
        &server,
        &[
            "--shape",
            "spread",
            "--subscribers",
            "20",
            "--channels",
            "200",
            "--channels-per-subscriber",
            "10",
        ],
    );
    assert_eq!(r["delivered"], r["promised"]);
    let r = run_clean(
        &server,
        &["--shape", "pairs", "--subscribers", "3", "--rate", "3000"],
    );
    assert_deliveries(&r, 1);
    let r = run_clean(&server, &["--shape", "memory", "--connections", "200"]);
    assert!(r["memory"]["bytes_per_connection"].as_f64().is_some());
}

#[test]
fn injected_loss_is_counted_exactly_and_fails_the_run() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let port = server.port.to_string();
    let (code, r) = bench(&[
        "run",
        "-p",
        &port,
        "--json",
        "-q",
        "--shape",
        "fanout",
        "--subscribers",
        "4",
        "--messages",
        "1000",
        "--duration",
        "30",
        "--drop-every",
        "7",
    ]);
    assert_eq!(code, 1, "verification failure must exit 1: {r:#}");
    // Every subscriber receives all 1000 messages and pretends to miss every 7th.
    assert_eq!(r["published"], 1000);
    assert_eq!(r["verify"]["lost"].as_u64(), Some(4 * (1000 / 7)));
    assert_eq!(r["verify"]["duplicates"], 0);
    assert!(!r["violations"].as_array().expect("violations").is_empty());
}

fn stalled_subscribers_cut_by_the_server_leave_the_others_verified(kind: ServerKind) {
    let Some(server) = start(kind) else {
        return;
    };
    assert_eq!(
        command(
            &server,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0"
            ]
        ),
        "+OK\r\n"
    );
    // 16 KiB messages at 2000/s for half a second: 16 MiB for each stalled
    // subscriber, past what the kernel's socket buffers hold and far past
    // the limit.
    let r = run_clean(
        &server,
        &[
            "--shape",
            "fanout",
            "--subscribers",
            "3",
            "--stalled-subscribers",
            "2",
            "--rate",
            "2000",
            "--payload",
            "16384",
        ],
    );
    let published = r["published"].as_u64().expect("published");
    assert!(published > 0, "nothing published: {r:#}");
    assert_eq!(r["delivered"].as_u64(), Some(published * 3), "{r:#}");
    assert_eq!(r["stalled"]["subscribers"], 2);
    assert_eq!(r["stalled"]["closed_by_server"], 2, "{r:#}");
}

#[test]
fn stalled_subscribers_against_ringcast() {
    stalled_subscribers_cut_by_the_server_leave_the_others_verified(ServerKind::Ringcast);
}

#[test]
fn stalled_subscribers_against_redis_server() {
    stalled_subscribers_cut_by_the_server_leave_the_others_verified(ServerKind::Redis);
}

#[test]
fn compare_runs_a_preset_and_reports_medians() {
    if find_redis(&None).is_err() {
        eprintln!("skipped: redis-server not installed");
        return;
    }
    let mut args = vec![
        "compare",
        "--quick",
        "--json",
        "-q",
        "--shapes",
        "pairs1",
        "--duration",
        "0.3",
    ];
    let rc = ringcast_bin();
    let rc_str = rc.as_ref().map(|p| p.display().to_string());
    match &rc_str {
        Some(p) => args.extend_from_slice(&["--servers", "ringcast,redis", "--ringcast-bin", p]),
        None => {
            eprintln!("ringcast binary absent: comparing redis-server alone");
            args.extend_from_slice(&["--servers", "redis"]);
        }
    }
    let (code, out) = bench(&args);
    assert_eq!(code, 0, "{out:#}");
    let medians = out["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), if rc.is_some() { 2 } else { 1 });
    for m in medians {
        assert_eq!(m["passed"], true);
        assert!(m["delivered msg/s"].as_f64().unwrap_or(0.0) > 0.0);
    }
}

/// Runs the latency probe at a low rate; checks that it verified clean and
/// reported every percentile for the server and for the tool's own floor.
fn probe_clean(server: &ServerProc, extra: &[&str]) -> Value {
    let mut args = vec!["--probe", "--rate", "2000", "--ping-count", "200"];
    args.extend_from_slice(extra);
    let r = run_clean(server, &args);
    for key in [
        "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us",
    ] {
        assert!(r["latency"][key].as_f64().is_some(), "{key}: {r:#}");
        assert!(r["probe"]["floor"][key].as_f64().is_some(), "{key}: {r:#}");
    }
    assert!(r["probe"]["ping_half_rtt"]["p50_us"].as_f64().is_some());
    r
}

#[test]
fn latency_probe_against_ringcast_places_publishers_and_reports_a_floor() {
    let Some(server) = start(ServerKind::Ringcast) else {
        return;
    };
    // The server runs 2 workers: placement is chosen and checked.
    let r = probe_clean(
        &server,
        &[
            "--shape",
            "pairs",
            "--subscribers",
            "2",
            "--placement",
            "same",
        ],
    );
    assert_deliveries(&r, 1);
    let placement = &r["probe"]["placement"];
    assert_eq!(placement["reported"], true, "{r:#}");
    assert_eq!(
        (
            placement["same_worker"].as_u64(),
            placement["cross_worker"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let r = probe_clean(&server, &["--shape", "pairs", "--placement", "cross"]);
    let placement = &r["probe"]["placement"];
    assert_eq!(
        (
            placement["same_worker"].as_u64(),
            placement["cross_worker"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let r = probe_clean(&server, &["--shape", "fanout", "--subscribers", "5"]);
    assert_deliveries(&r, 5);
}

#[test]
fn latency_probe_against_redis_server_reports_a_floor_in_resp2_and_resp3() {
    let Some(server) = start(ServerKind::Redis) else {
        return;
    };
    let r = probe_clean(&server, &["--shape", "pairs", "--placement", "same"]);
    assert_deliveries(&r, 1);
    // A single event loop reports no worker; the run says so instead of guessing.
    assert_eq!(r["probe"]["placement"]["reported"], false);
    let r = probe_clean(
        &server,
        &["--shape", "fanout", "--subscribers", "3", "--resp", "3"],
    );
    assert_deliveries(&r, 3);
}

#[test]
fn compare_runs_a_latency_preset_beside_the_floor() {
    if find_redis(&None).is_err() {
        eprintln!("skipped: redis-server not installed");
        return;
    }
    let (code, out) = bench(&[
        "compare",
        "--quick",
        "--json",
        "-q",
        "--servers",
        "redis",
        "--shapes",
        "latency-pairs1",
        "--latency-rates",
        "2000",
        "--duration",
        "0.3",
    ]);
    assert_eq!(code, 0, "{out:#}");
    let medians = out["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), 1);
    assert_eq!(medians[0]["shape"], "latency-pairs1@2k");
    for key in [
        "latency p50 us",
        "latency p99.99 us",
        "latency max us",
        "floor p50 us",
        "half PING p50 us",
    ] {
        assert!(medians[0][key].as_f64().is_some(), "{key}: {out:#}");
    }
}
