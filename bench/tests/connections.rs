//! How the tool connects and to what: TLS (server verified against a CA,
//! client certificates, SNI, --insecure), ACL users (--user/--password), for
//! `run` and `compare`, and servers already running (`compare --target`),
//! against ringcast and redis-server started here.
//! Runs are short; only verification and what the report says are checked.

mod common;

use common::*;
use ringcast_bench::servers::{ServerKind, ServerProc, ServerTls, find_redis};
use ringcast_bench::tls::{GeneratedCerts, TlsArgs, TlsClient, generate_certs};
use serde_json::Value;
use std::sync::Arc;

fn certs(name: &str) -> GeneratedCerts {
    generate_certs(&scratch_dir().join(name)).expect("certificates")
}

/// A TLS-only server with the throwaway certificates, requiring client
/// certificates when `auth_clients`.
fn start_tls(kind: ServerKind, c: &GeneratedCerts, auth_clients: bool) -> Option<ServerProc> {
    let client = TlsArgs {
        tls: true,
        cacert: Some(c.ca.clone()),
        cert: auth_clients.then(|| c.client_cert.clone()),
        key: auth_clients.then(|| c.client_key.clone()),
        ..Default::default()
    };
    let tls = ServerTls {
        cert: c.server_cert.clone(),
        key: c.server_key.clone(),
        ca: Some(c.ca.clone()),
        auth_clients,
        client: Arc::new(TlsClient::new(&client, "127.0.0.1").expect("client config")),
    };
    start_with(kind, Some(tls))
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn tls_runs_verify_clean(kind: ServerKind) {
    let c = certs(&format!("tls-{}", kind.name()));
    let Some(server) = start_tls(kind, &c, false) else {
        return;
    };
    let ca = path(&c.ca);
    let tls = ["--tls", "--cacert", ca.as_str()];
    // Closed loop, subscribers in their event loops, INFO for the pid.
    let r = run_clean(
        &server,
        &join(&tls, &["--shape", "fanout", "--subscribers", "8"]),
    );
    assert_deliveries(&r, 8);
    assert_eq!(r["tls"], true);
    assert!(r["server_cpu_ns_per_msg"].as_f64().is_some(), "{r:#}");
    // Open loop (non-blocking writes) and RESP3.
    let r = run_clean(
        &server,
        &join(
            &tls,
            &[
                "--shape",
                "pairs",
                "--subscribers",
                "2",
                "--rate",
                "2000",
                "--resp",
                "3",
            ],
        ),
    );
    assert_deliveries(&r, 1);
    // The latency probe's one-thread engine and its PING round trips.
    let r = run_clean(
        &server,
        &join(
            &tls,
            &[
                "--probe",
                "--rate",
                "2000",
                "--ping-count",
                "100",
                "--shape",
                "pairs",
            ],
        ),
    );
    assert_deliveries(&r, 1);
    assert!(r["probe"]["ping_half_rtt"]["p50_us"].as_f64().is_some());
    // The name checked is --sni's; --insecure checks nothing.
    let r = run_clean(
        &server,
        &join(&tls, &["--sni", "localhost", "--subscribers", "2"]),
    );
    assert_deliveries(&r, 2);
    let r = run_clean(&server, &["--tls", "--insecure", "--subscribers", "2"]);
    assert_deliveries(&r, 2);
    // A name the certificate does not carry fails the handshake: exit 2.
    let port = server.port.to_string();
    let out = std::process::Command::new(bench_bin())
        .args(["run", "-p", &port, "-q", "--duration", "0.2"])
        .args(join(&tls, &["--sni", "elsewhere.test"]))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn runs_over_tls_against_ringcast_verify_clean() {
    tls_runs_verify_clean(ServerKind::Ringcast);
}

#[test]
fn runs_over_tls_against_redis_server_verify_clean() {
    tls_runs_verify_clean(ServerKind::Redis);
}

#[test]
fn client_certificates_are_presented_when_the_server_requires_them() {
    for kind in [ServerKind::Ringcast, ServerKind::Redis] {
        let c = certs(&format!("mtls-{}", kind.name()));
        let Some(server) = start_tls(kind, &c, true) else {
            continue;
        };
        let (ca, cert, key) = (path(&c.ca), path(&c.client_cert), path(&c.client_key));
        let r = run_clean(
            &server,
            &[
                "--tls",
                "--cacert",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "--subscribers",
                "3",
            ],
        );
        assert_deliveries(&r, 3);
    }
}

fn acl_user_runs_verify_clean(kind: ServerKind) {
    let Some(server) = start(kind) else {
        return;
    };
    admin(
        &server,
        &[
            "ACL",
            "SETUSER",
            "bench",
            "on",
            ">secret",
            "+@all",
            "resetchannels",
            "&rcb*",
            "&rcb:0:*",
            "&rcb:1:*",
        ],
    );
    // Nothing may connect unauthenticated from here on.
    admin(&server, &["ACL", "SETUSER", "default", "off"]);
    let user = ["--user", "bench", "--password", "secret"];
    let r = run_clean(&server, &join(&user, &["--subscribers", "4"]));
    assert_deliveries(&r, 4);
    assert_eq!(r["user"], "bench");
    let r = run_clean(
        &server,
        &join(
            &user,
            &["--shape", "patterns", "--subscribers", "2", "--resp", "3"],
        ),
    );
    assert_deliveries(&r, 1);
}

#[test]
fn runs_as_an_acl_user_against_ringcast_verify_clean() {
    acl_user_runs_verify_clean(ServerKind::Ringcast);
}

#[test]
fn runs_as_an_acl_user_against_redis_server_verify_clean() {
    acl_user_runs_verify_clean(ServerKind::Redis);
}

/// `compare` with `extra` flags on one quick shape, against ringcast and
/// redis-server when both are here (else whichever is).
fn compare(extra: &[&str]) -> Option<Value> {
    let rc = ringcast_bin();
    let have_redis = find_redis(&None).is_ok();
    let servers = match (&rc, have_redis) {
        (Some(_), true) => "ringcast,redis",
        (Some(_), false) => "ringcast",
        (None, true) => "redis",
        (None, false) => {
            eprintln!("skipped: neither ringcast nor redis-server here");
            return None;
        }
    };
    let rc = rc.map(|p| p.display().to_string()).unwrap_or_default();
    let mut args = vec!["compare", "--quick", "--json", "-q", "--duration", "0.3"];
    args.extend_from_slice(&["--servers", servers]);
    if !rc.is_empty() {
        args.extend_from_slice(&["--ringcast-bin", &rc]);
    }
    args.extend_from_slice(extra);
    let (code, out) = bench(&args);
    assert_eq!(code, 0, "{out:#}");
    Some(out)
}

fn every_median_passed(out: &Value, columns: usize) {
    let medians = out["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), columns, "{out:#}");
    for m in medians {
        assert_eq!(m["passed"], true, "{m:#}");
        assert!(m["delivered msg/s"].as_f64().unwrap_or(0.0) > 0.0, "{m:#}");
    }
}

#[test]
fn compare_over_tls_makes_its_own_certificates() {
    let Some(out) = compare(&["--shapes", "fanout100", "--tls"]) else {
        return;
    };
    assert_eq!(out["tls"], true);
    let columns = out["columns"].as_array().expect("columns").len();
    every_median_passed(&out, columns);
    for shape in out["shapes"].as_array().expect("shapes") {
        for cell in shape["cells"].as_array().expect("cells") {
            assert!(
                cell["runs"]
                    .as_array()
                    .expect("runs")
                    .iter()
                    .all(|r| r["tls"] == true)
            );
        }
    }
}

#[test]
fn compare_over_tls_with_client_certificates() {
    let Some(out) = compare(&["--shapes", "pairs1", "--tls", "--tls-auth-clients"]) else {
        return;
    };
    let columns = out["columns"].as_array().expect("columns").len();
    every_median_passed(&out, columns);
}

#[test]
fn compare_with_acl_patterns_adds_a_column_per_server_authenticated_as_the_user() {
    let Some(out) = compare(&[
        "--shapes",
        "fanout100,patterns-noise",
        "--acl-patterns",
        "5",
        "--resp",
        "3",
    ]) else {
        return;
    };
    let columns: Vec<String> = out["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(columns.len() % 2, 0);
    let half = columns.len() / 2;
    for i in 0..half {
        assert_eq!(columns[half + i], format!("{}+acl5", columns[i]));
    }
    every_median_passed(&out, 2 * columns.len());
    for shape in out["shapes"].as_array().expect("shapes") {
        for cell in shape["cells"].as_array().expect("cells") {
            let want = if cell["server"]
                .as_str()
                .unwrap_or_default()
                .ends_with("+acl5")
            {
                Value::from("rcb-bench")
            } else {
                Value::Null
            };
            for r in cell["runs"].as_array().expect("runs") {
                assert_eq!(r["user"], want, "{}", cell["server"]);
            }
        }
    }
}

#[test]
fn compare_puts_running_servers_in_the_same_table() {
    let Some(plain) = start(ServerKind::Redis) else {
        return;
    };
    let kind = if ringcast_bin().is_some() {
        ServerKind::Ringcast
    } else {
        ServerKind::Redis
    };
    let c = certs("target");
    let Some(secured) = start_tls(kind, &c, false) else {
        return;
    };
    admin(
        &secured,
        &[
            "ACL",
            "SETUSER",
            "owner",
            "on",
            ">pw",
            "+@all",
            "allchannels",
        ],
    );
    admin(&secured, &["ACL", "SETUSER", "default", "off"]);
    let first = format!("first=127.0.0.1:{}", plain.port);
    let second = format!(
        "second=localhost:{},pid={},tls,user=owner,password=pw",
        secured.port,
        secured.pid()
    );
    let ca = path(&c.ca);
    let (code, out) = bench(&[
        "compare",
        "--quick",
        "--json",
        "-q",
        "--duration",
        "0.3",
        "--servers",
        "none",
        "--shapes",
        "pairs1,memory",
        "--target",
        &first,
        "--target",
        &second,
        "--cacert",
        &ca,
        "--acl-patterns",
        "2",
    ]);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(
        out["columns"],
        serde_json::json!(["first", "second", "first+acl2", "second+acl2"])
    );
    let medians = out["medians"].as_array().expect("medians");
    assert_eq!(medians.len(), 8);
    for m in medians {
        assert_eq!(m["passed"], true, "{m:#}");
        if m["shape"] == "pairs1" {
            assert!(m["delivered msg/s"].as_f64().unwrap_or(0.0) > 0.0, "{m:#}");
            // Both pids are known: one from INFO, one given.
            assert!(m["server CPU ns/msg"].as_f64().is_some(), "{m:#}");
        } else {
            assert!(m["RSS bytes/conn"].as_f64().is_some(), "{m:#}");
        }
    }
    // The ACL user made for the comparison is gone again: default alone is left.
    assert_eq!(command(&plain, &["ACL", "USERS"]), "*1\r\n");
}
