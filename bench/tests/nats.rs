//! The NATS core protocol as a target: `run --nats` against a nats-server
//! started here (plain, TLS, with a user), every shape NATS can express,
//! the verifier catching loss, and `compare --servers nats` skipping what
//! NATS cannot express. Skipped when nats-server is not installed.

mod common;

use common::*;
use ringcast_bench::servers::{ServerKind, ServerProc, ServerTls, find_nats, free_port};
use ringcast_bench::tls::{TlsArgs, TlsClient, generate_certs};
use serde_json::Value;
use std::sync::Arc;

fn nats() -> Option<ServerProc> {
    start(ServerKind::Nats)
}

fn run_nats(server: &ServerProc, extra: &[&str]) -> Value {
    let r = run_clean(server, &join(&["--nats"], extra));
    assert_eq!(r["protocol"], "nats", "{r:#}");
    r
}

#[test]
fn every_shape_nats_can_express_verifies_clean() {
    let Some(server) = nats() else {
        return;
    };
    let r = run_nats(&server, &["--shape", "fanout", "--subscribers", "10"]);
    assert_deliveries(&r, 10);
    // The CPU of a server that does not report its pid is found by its port.
    assert!(r["server_cpu_ns_per_msg"].as_f64().is_some(), "{r:#}");
    // Patterns become wildcards: rcb.<i>.* matches rcb.<i>.c alone, even
    // among non-matching ones.
    let r = run_nats(
        &server,
        &[
            "--shape",
            "patterns",
            "--subscribers",
            "6",
            "--noise-patterns",
            "200",
        ],
    );
    assert_deliveries(&r, 1);
    let r = run_nats(
        &server,
        &[
            "--shape",
            "spread",
            "--subscribers",
            "10",
            "--channels",
            "100",
            "--channels-per-subscriber",
            "10",
        ],
    );
    assert_eq!(r["delivered"], r["promised"]);
    // Open loop, and a payload larger than one read.
    let r = run_nats(
        &server,
        &["--shape", "pairs", "--subscribers", "3", "--rate", "3000"],
    );
    assert_deliveries(&r, 1);
    let r = run_nats(&server, &["--subscribers", "3", "--payload", "70000"]);
    assert_deliveries(&r, 3);
    let r = run_nats(&server, &["--shape", "memory", "--connections", "100"]);
    assert!(r["memory"]["bytes_per_connection"].as_f64().is_some());
}

#[test]
fn the_latency_probe_runs_over_nats() {
    let Some(server) = nats() else {
        return;
    };
    let r = run_nats(
        &server,
        &[
            "--probe",
            "--rate",
            "2000",
            "--ping-count",
            "100",
            "--shape",
            "fanout",
            "--subscribers",
            "3",
        ],
    );
    assert_deliveries(&r, 3);
    assert!(r["probe"]["ping_half_rtt"]["p50_us"].as_f64().is_some());
    assert!(r["probe"]["floor"]["p50_us"].as_f64().is_some());
    assert_eq!(r["probe"]["placement"]["reported"], false);
}

#[test]
fn loss_over_nats_is_counted_exactly_and_churn_is_refused() {
    let Some(server) = nats() else {
        return;
    };
    let port = server.port.to_string();
    let (code, r) = bench(&[
        "run",
        "--nats",
        "-p",
        &port,
        "--json",
        "-q",
        "--subscribers",
        "4",
        "--messages",
        "1000",
        "--duration",
        "30",
        "--drop-every",
        "7",
    ]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["published"], 1000);
    assert_eq!(r["verify"]["lost"].as_u64(), Some(4 * (1000 / 7)));
    let out = std::process::Command::new(bench_bin())
        .args(["run", "--nats", "-p", &port, "-q", "--shape", "churn"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NATS"));
}

#[test]
fn nats_over_tls_verifies_clean() {
    let Some(bin) = server_bin(ServerKind::Nats) else {
        return;
    };
    let c = generate_certs(&scratch_dir().join("nats-tls")).expect("certificates");
    let client = TlsArgs {
        tls: true,
        cacert: Some(c.ca.clone()),
        ..Default::default()
    };
    let spec = ringcast_bench::servers::ServerSpec {
        tls: Some(ServerTls {
            cert: c.server_cert.clone(),
            key: c.server_key.clone(),
            ca: None,
            auth_clients: false,
            client: Arc::new(TlsClient::new(&client, "127.0.0.1").expect("client")),
        }),
        ..ringcast_bench::servers::ServerSpec::new(ServerKind::Nats, bin, scratch_dir())
    };
    let server = ServerProc::start(&spec).expect("nats-server over TLS");
    let ca = c.ca.display().to_string();
    let r = run_nats(
        &server,
        &[
            "--tls",
            "--cacert",
            &ca,
            "--subscribers",
            "4",
            "--rate",
            "4000",
        ],
    );
    assert_deliveries(&r, 4);
    assert_eq!(r["tls"], true);
}

/// A nats-server of our own that wants a user and password; stopped on drop.
struct AuthNats(std::process::Child, u16);

impl Drop for AuthNats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn nats_users_authenticate_in_connect() {
    let Ok(bin) = find_nats(&None) else {
        eprintln!("skipped: no nats-server");
        return;
    };
    let port = free_port().expect("port");
    let child = std::process::Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["--user", "bench", "--pass", "secret"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let server = AuthNats(child, port);
    let port = server.1.to_string();
    let args = [
        "run",
        "--nats",
        "-p",
        &port,
        "--json",
        "-q",
        "--duration",
        "0.3",
    ];
    // Without the password the server refuses: the tool cannot run (2).
    let mut tries = 0;
    let code = loop {
        let out = std::process::Command::new(bench_bin())
            .args(args)
            .args(["--subscribers", "2"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Until the server listens, connecting is refused: try again.
        if stderr.contains("onnection refused") && tries < 100 {
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        break out.status.code();
    };
    assert_eq!(code, Some(2));
    let (code, r) = bench(&join(
        &args,
        &[
            "--user",
            "bench",
            "--password",
            "secret",
            "--subscribers",
            "2",
        ],
    ));
    assert_eq!(code, 0, "{r:#}");
    assert_deliveries(&r, 2);
}

#[test]
fn compare_runs_nats_beside_the_others_and_skips_what_it_cannot_express() {
    if find_nats(&None).is_err() {
        eprintln!("skipped: no nats-server");
        return;
    }
    let (code, out) = bench(&[
        "compare",
        "--quick",
        "--json",
        "-q",
        "--duration",
        "0.3",
        "--servers",
        "nats",
        "--shapes",
        "pairs1,patterns,sharded,latency-pairs1",
        "--latency-rates",
        "2000",
    ]);
    assert_eq!(code, 0, "{out:#}");
    let medians = out["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), 4);
    for m in medians {
        assert_eq!(m["server"], "nats");
        assert_eq!(m["passed"], true, "{m:#}");
        match m["shape"].as_str() {
            Some("sharded") => assert!(m["skipped"].as_str().is_some(), "{m:#}"),
            Some("latency-pairs1@2k") => assert!(m["latency p50 us"].as_f64().is_some()),
            _ => assert!(m["delivered msg/s"].as_f64().unwrap_or(0.0) > 0.0, "{m:#}"),
        }
    }
}

#[test]
fn a_running_nats_server_is_a_target_too() {
    let Some(server) = nats() else {
        return;
    };
    let target = format!("gnatsd=127.0.0.1:{},nats", server.port);
    let (code, out) = bench(&[
        "compare",
        "--quick",
        "--json",
        "-q",
        "--duration",
        "0.3",
        "--servers",
        "none",
        "--target",
        &target,
        "--shapes",
        "pairs1,churn",
    ]);
    assert_eq!(code, 0, "{out:#}");
    let medians = out["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), 2);
    assert_eq!(medians[0]["server"], "gnatsd");
    assert!(medians[0]["delivered msg/s"].as_f64().unwrap_or(0.0) > 0.0);
    // Its pid is found by its port, so its CPU is measured.
    assert!(
        medians[0]["server CPU ns/msg"].as_f64().is_some(),
        "{out:#}"
    );
    assert!(medians[1]["skipped"].as_str().is_some());
}
