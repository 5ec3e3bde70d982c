//! Subscription churn: one connection SUBSCRIBEs and UNSUBSCRIBEs fresh
//! channels as fast as the server confirms them, while the rest of the run
//! publishes and many channels are already held by idle connections.
//!
//! Each channel name is used once (`<prefix>churn:<k>`), so every SUBSCRIBE
//! creates a registry entry and every UNSUBSCRIBE removes it — the expensive
//! path. Throughput is counted in confirmations (one per SUBSCRIBE or
//! UNSUBSCRIBE).

use crate::conn::{ReadBuf, Target};
use crate::resp::{self, Elem};
use crate::shared::Shared;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::{ErrorKind, Write};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the churning connection achieved.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// SUBSCRIBE + UNSUBSCRIBE confirmations received.
    pub ops: u64,
    pub elapsed_s: f64,
    pub ops_per_sec: f64,
    /// First unexpected reply, if any (fails the run).
    pub error: Option<String>,
}

pub fn spawn(
    target: Target,
    prefix: String,
    window: usize,
    duration: Duration,
    shared: Arc<Shared>,
    ready: Sender<Result<()>>,
) -> JoinHandle<Result<ChurnReport>> {
    std::thread::Builder::new()
        .name("rcb-churn".into())
        .spawn(move || {
            let mut rb = ReadBuf::new(64 * 1024);
            let s = match target.open(&mut rb).context("churn connection") {
                Ok(s) => {
                    let _ = ready.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    bail!("churn connection failed");
                }
            };
            drop(ready);
            if !shared.gate.wait() {
                bail!("run aborted");
            }
            churn_loop(s, rb, &prefix, window, duration)
        })
        .expect("spawning a thread")
}

fn churn_loop(
    mut s: crate::tls::Stream,
    mut rb: ReadBuf,
    prefix: &str,
    window: usize,
    duration: Duration,
) -> Result<ChurnReport> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let mut wbuf = Vec::new();
    let mut next_channel: u64 = 0;
    // Confirmations still to come (two per pair).
    let mut outstanding = 0usize;
    let mut ops = 0u64;
    let mut error = None;
    let mut name = String::new();
    loop {
        let stopping = Instant::now() >= deadline || error.is_some();
        if !stopping && outstanding <= window {
            wbuf.clear();
            for _ in 0..(2 * window - outstanding) / 2 {
                name.clear();
                use std::fmt::Write as _;
                let _ = write!(name, "{prefix}churn:{next_channel}");
                next_channel += 1;
                resp::write_command(&mut wbuf, &[b"SUBSCRIBE", name.as_bytes()]);
                resp::write_command(&mut wbuf, &[b"UNSUBSCRIBE", name.as_bytes()]);
                outstanding += 2;
            }
            s.write_all(&wbuf)?;
        }
        if outstanding == 0 {
            break;
        }
        match rb.read_from(&mut s) {
            Ok(0) => bail!("server closed the churn connection"),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading churn confirmations"),
        }
        let buf = rb.unparsed();
        let mut pos = 0;
        while let Some((f, used)) = resp::parse_frame(&buf[pos..])? {
            pos += used;
            match f.elems() {
                [Elem::Bulk(k), Elem::Bulk(_), Elem::Int(_)]
                    if *k == b"subscribe" || *k == b"unsubscribe" =>
                {
                    ops += 1;
                    outstanding = outstanding.saturating_sub(1);
                }
                other => {
                    outstanding = outstanding.saturating_sub(1);
                    error.get_or_insert_with(|| {
                        format!(
                            "unexpected reply {:?}",
                            other.iter().map(resp::describe).collect::<Vec<_>>()
                        )
                    });
                }
            }
        }
        rb.consume(pos);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    Ok(ChurnReport {
        ops,
        elapsed_s: elapsed,
        ops_per_sec: ops as f64 / elapsed,
        error,
    })
}
