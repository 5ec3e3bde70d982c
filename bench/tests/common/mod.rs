//! What every end-to-end test of the binary shares: finding the binaries,
//! starting servers on free ports, running the tool and checking a clean run.
//!
//! - ringcast: `$RINGCAST_BIN`, else `ringcast` in the same target directory
//!   and profile as the binary under test (`cargo test --workspace` builds it).
//!   When neither exists the ringcast tests print why and pass as skipped.
//! - redis-server and nats-server: found on PATH; skipped (with a message)
//!   when absent.

#![allow(dead_code, unreachable_pub)]

use ringcast_bench::servers::{
    ServerKind, ServerProc, ServerSpec, ServerTls, find_nats, find_redis,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

pub fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringcast-bench"))
}

pub fn ringcast_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RINGCAST_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let p = bench_bin().parent()?.join("ringcast");
    p.is_file().then_some(p)
}

/// The binary of a server kind, or why the test is skipped.
pub fn server_bin(kind: ServerKind) -> Option<PathBuf> {
    match kind {
        ServerKind::Ringcast => {
            let b = ringcast_bin();
            if b.is_none() {
                eprintln!(
                    "skipped: no ringcast binary (set RINGCAST_BIN or build ringcast-server next to {})",
                    bench_bin().display()
                );
            }
            b
        }
        ServerKind::Redis => match find_redis(&None) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("skipped: {e}");
                None
            }
        },
        ServerKind::Nats => match find_nats(&None) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("skipped: {e}");
                None
            }
        },
    }
}

/// A directory for this test process's logs and certificates.
pub fn scratch_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rcb-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Starts a server (ringcast with 2 workers), plain TCP.
pub fn start(kind: ServerKind) -> Option<ServerProc> {
    start_with(kind, None)
}

/// Starts a server, listening for TLS only when `tls` is given.
pub fn start_with(kind: ServerKind, tls: Option<ServerTls>) -> Option<ServerProc> {
    let bin = server_bin(kind)?;
    let spec = ServerSpec {
        cpus: (0..256).collect(),
        tls,
        ..ServerSpec::new(kind, bin, scratch_dir())
    };
    Some(ServerProc::start(&spec).expect("server starts and answers PING"))
}

/// Sends one command as the default user and expects `+OK` or any non-error reply.
pub fn admin(server: &ServerProc, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    server.target().command(&args).expect("admin command");
}

/// Runs the tool; returns (exit code, parsed JSON stdout).
pub fn bench(args: &[&str]) -> (i32, Value) {
    let out = Command::new(bench_bin())
        .args(args)
        .output()
        .expect("ringcast-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// Runs the tool against `server` (for half a second unless `extra` says
/// otherwise); checks a clean run.
pub fn run_clean(server: &ServerProc, extra: &[&str]) -> Value {
    let port = server.port.to_string();
    let mut args = vec!["run", "-p", &port, "--json", "-q"];
    if !extra.contains(&"--duration") {
        args.extend_from_slice(&["--duration", "0.5"]);
    }
    args.extend_from_slice(extra);
    let (code, r) = bench(&args);
    assert_eq!(code, 0, "run {extra:?} failed: {r:#}");
    assert_eq!(r["violations"], Value::Array(vec![]), "{r:#}");
    assert_eq!(r["verify"]["lost"], 0);
    assert_eq!(r["verify"]["duplicates"], 0);
    assert_eq!(r["verify"]["reordered"], 0);
    assert_eq!(r["verify"]["corrupt"], 0);
    r
}

pub fn assert_deliveries(r: &Value, subscribers_per_message: u64) {
    let published = r["published"].as_u64().expect("published");
    assert!(published > 0, "nothing published: {r:#}");
    assert_eq!(
        r["promised"].as_u64(),
        Some(published * subscribers_per_message)
    );
    assert_eq!(r["delivered"], r["promised"]);
}

/// Sends one command on a fresh connection and returns the first reply line.
pub fn command(server: &ServerProc, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req += &format!("${}\r\n{a}\r\n", a.len());
    }
    s.write_all(req.as_bytes()).expect("write");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("reply");
    line
}

/// `a` then `b`.
pub fn join<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    [a, b].concat()
}
