//! Human-readable output: one block per run, and number formatting shared
//! with the comparison table.

use crate::conn::Proto;
use crate::outcome::ProbeReport;
use crate::plan::Shape;
use crate::run::{Latency, RunReport};
use std::fmt::Write;

/// `1234567.0` → `1,234,567`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i128;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Bytes with a binary unit.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The text block printed for one run.
pub fn human(r: &RunReport) -> String {
    let mut o = String::new();
    let shape = serde_json::to_value(r.shape)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    if r.shape == Shape::Memory {
        memory_block(&mut o, r, &shape);
    } else {
        traffic_block(&mut o, r, &shape);
        if let Some(p) = &r.probe {
            probe_block(&mut o, r, p);
        } else if let Some(l) = &r.latency {
            latency_line(&mut o, r, l);
        }
        cpu_lines(&mut o, r);
        if let Some(s) = &r.stalled {
            let _ = writeln!(
                o,
                "  stalled      {} subscribers stopped reading: {} closed by the server, {} deliveries promised to them",
                s.subscribers,
                s.closed_by_server,
                thousands(s.promised as f64)
            );
        }
        if let Some(c) = &r.churn {
            let _ = writeln!(
                o,
                "  churn        {} SUBSCRIBE/UNSUBSCRIBE per second ({} ops)",
                thousands(c.ops_per_sec),
                thousands(c.ops as f64)
            );
        }
    }
    verdict(&mut o, r);
    o
}

/// ` TLS` and ` user NAME` when the connections had them.
fn connection_note(r: &RunReport) -> String {
    let mut s = String::new();
    if r.tls {
        s.push_str("  TLS");
    }
    if let Some(u) = &r.user {
        s.push_str(&format!("  user {u}"));
    }
    s
}

fn memory_block(o: &mut String, r: &RunReport, shape: &str) {
    let _ = writeln!(
        o,
        "{}  shape {}  {}{}",
        r.server,
        shape,
        r.protocol.name(),
        connection_note(r)
    );
    if let Some(m) = &r.memory {
        let _ = writeln!(
            o,
            "  idle subscribers {}   server RSS {} -> {}   {:.0} bytes per connection",
            thousands(m.connections as f64),
            bytes(m.rss_before as f64),
            bytes(m.rss_after as f64),
            m.bytes_per_connection
        );
    }
}

/// What ran, and how many messages went out and came in.
fn traffic_block(o: &mut String, r: &RunReport, shape: &str) {
    let _ = writeln!(
        o,
        "{}  shape {}  {}{}  {}{}",
        r.server,
        shape,
        r.protocol.name(),
        connection_note(r),
        if r.probe.is_some() {
            "latency probe".to_string()
        } else {
            format!("{} loop", r.loop_kind)
        },
        match r.target_rate {
            Some(rate) => format!(" at {} msg/s", thousands(rate)),
            None => format!(" (window {})", r.window),
        }
    );
    let _ = writeln!(
        o,
        "  publishers {}  subscribers {}  channels {}  payload {} B{}  elapsed {:.2} s{}",
        r.publishers,
        r.subscribers,
        r.channels,
        r.payload,
        if r.noise_patterns > 0 {
            format!("  noise patterns {}", r.noise_patterns)
        } else {
            String::new()
        },
        r.elapsed_s,
        if r.warmup_s > 0.0 {
            format!(
                " after {} s of warm-up (verified, not measured)",
                r.warmup_s
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "  published  {:>15} msg  {:>13} msg/s",
        thousands(r.published as f64),
        thousands(r.publish_rate)
    );
    let _ = writeln!(
        o,
        "  delivered  {:>15} msg  {:>13} msg/s  {}/s payload",
        thousands(r.delivered as f64),
        thousands(r.delivered_rate),
        bytes(r.payload_bytes_rate)
    );
}

fn latency_line(o: &mut String, r: &RunReport, l: &Latency) {
    let _ = writeln!(
        o,
        "  latency us   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}  (from {} send time)",
        l.p50_us,
        l.p90_us,
        l.p99_us,
        l.p999_us,
        l.p9999_us,
        l.max_us,
        if r.loop_kind == "open" {
            "intended"
        } else {
            "actual"
        }
    );
}

fn cpu_lines(o: &mut String, r: &RunReport) {
    match (r.server_cpu_ns_per_msg, r.server_cpu_cores) {
        (Some(ns), Some(cores)) => {
            let _ = writeln!(
                o,
                "  server CPU   {ns:.1} ns per delivered message  ({cores:.2} cores busy)"
            );
        }
        _ => {
            let _ = writeln!(o, "  server CPU   not measured (no local server pid)");
        }
    }
    match r.client_cpu_ns_per_msg {
        Some(ns) => {
            let _ = writeln!(
                o,
                "  client CPU   {ns:.1} ns per delivered message  ({:.2} cores busy)",
                r.client_cpu_cores
            );
        }
        None => {
            let _ = writeln!(o, "  client CPU   {:.2} cores busy", r.client_cpu_cores);
        }
    }
}

/// The latency probe's table: the server beside the tool's floor measured
/// in the same run, their difference, half a PING, the pacing error.
fn probe_block(o: &mut String, r: &RunReport, p: &ProbeReport) {
    let _ = writeln!(
        o,
        "  latency us from intended send time   {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    let row = |o: &mut String, name: &str, l: Option<&Latency>, note: &str| {
        let cells: String = match l {
            Some(l) => [
                l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.p9999_us, l.max_us,
            ]
            .iter()
            .map(|v| format!(" {v:>8.1}"))
            .collect(),
            None => format!(" {:>8}", "-"),
        };
        let _ = writeln!(o, "    {name:<34}{cells}{note}");
    };
    row(o, &r.server, r.latency.as_ref(), "");
    row(o, "floor (relay inside the tool)", p.floor.as_ref(), "");
    let above = match (&r.latency, &p.floor) {
        (Some(l), Some(f)) => Some(Latency {
            count: l.count,
            mean_us: l.mean_us - f.mean_us,
            p50_us: l.p50_us - f.p50_us,
            p90_us: l.p90_us - f.p90_us,
            p99_us: l.p99_us - f.p99_us,
            p999_us: l.p999_us - f.p999_us,
            p9999_us: l.p9999_us - f.p9999_us,
            max_us: l.max_us - f.max_us,
        }),
        _ => None,
    };
    row(o, "server above floor", above.as_ref(), "");
    row(o, "half PING round trip", p.ping_half_rtt.as_ref(), "");
    row(
        o,
        "send lag (in the figures above)",
        p.send_lag.as_ref(),
        "",
    );
    let _ = writeln!(
        o,
        "  probe        one pinned thread, spin {:.0} us before each send",
        p.spin_us
    );
    let _ = writeln!(o, "  placement    {}", p.placement.describe());
}

fn verdict(o: &mut String, r: &RunReport) {
    let v = &r.verify;
    if r.passed() && r.shape == Shape::Memory {
        let _ = writeln!(o, "  verified     OK: every connection subscribed");
    } else if r.passed() {
        let _ = writeln!(
            o,
            "  verified     OK: 0 lost, 0 reordered, 0 duplicate, 0 corrupt; {}",
            if r.protocol == Proto::Nats {
                "deliveries = messages PONG-confirmed x subscribers"
            } else {
                "PUBLISH replies = deliveries"
            }
        );
    } else {
        let _ = writeln!(
            o,
            "  verified     FAILED: {} lost, {} reordered, {} duplicate, {} corrupt",
            v.lost, v.reordered, v.duplicates, v.corrupt
        );
        for line in r.violations.iter().take(20) {
            let _ = writeln!(o, "    - {line}");
        }
        if r.violations.len() > 20 {
            let _ = writeln!(o, "    ... {} more", r.violations.len() - 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}
