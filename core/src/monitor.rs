//! The MONITOR feed: every command a worker runs, as the line Redis sends
//! its monitors (`+<sec>.<usec> [<db> <addr>] "cmd" "arg"...`), delivered to
//! the monitors of every worker.
//!
//! The worker that runs a command formats its line once ([`line()`]) into a
//! shared `Bytes`, queues it for its own monitors at once, and at the end of
//! its input turn posts the turn's lines into the inbox of every other
//! worker that has monitors ([`MonitorFeed::post`]), ringing that worker's
//! doorbell when its inbox was empty. The receiving worker takes everything
//! its inbox holds ([`MonitorFeed::take`]) when its inbound task runs, and
//! queues each line for its monitors; a line is never copied per worker,
//! and is copied per monitor only when small (as published frames are).
//!
//! # Invariants
//!
//! 1. **Nothing without monitors.** Each worker sets its bit in `watchers`
//!    while it has monitors and clears it when it has none (only that worker
//!    writes its bit). A worker running a command reads `watchers` once,
//!    relaxed: when it is 0 nothing else is done.
//! 2. **A monitor sees what runs after its `+OK`.** MONITOR sets the bit
//!    before its `+OK` is handed to the writer. A command that starts after
//!    the client could have read that `+OK` is read from a socket after the
//!    kernel delivered it, so the worker running it sees the bit (the socket
//!    calls order the two, as they order a subscription and a publish).
//! 3. **Order.** An inbox is a FIFO under its lock and each worker posts its
//!    lines in the order its commands ran: lines from one worker reach every
//!    monitor in that order, whichever worker the monitor is on.
//! 4. **Bounded, and never waiting for a monitor.** Posting takes the inbox
//!    lock for a copy of handles (no I/O, no waiting for the receiving
//!    worker or its monitors). An inbox holds at most its byte cap; a line
//!    that does not fit is dropped and the inbox marked lost, and the
//!    receiving worker then closes its monitors, which missed a line (no
//!    silent loss). The cap is the monitors' own hard output limit: every
//!    monitor of that worker would have been over it anyway, since nothing
//!    in the inbox has been queued for any of them yet.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_utils::CachePadded;

use crate::WorkerId;
use crate::lock;
use crate::resp::args::ArgList;

/// The monitors of every worker, and the inboxes lines travel through.
pub struct MonitorFeed {
    /// Bit `w`: worker `w` has at least one monitor (invariant 1).
    watchers: AtomicU64,
    inboxes: Box<[CachePadded<Inbox>]>,
}

#[derive(Default)]
struct Inbox {
    /// Lines wait (set after a post, cleared by the taker before it locks).
    waiting: AtomicBool,
    lines: Mutex<Lines>,
}

#[derive(Default)]
struct Lines {
    items: Vec<Bytes>,
    bytes: usize,
    /// A line was dropped since the last take (invariant 4).
    lost: bool,
}

/// Most lines an emptied inbox keeps room for.
const KEEP: usize = 1024;

/// What [`MonitorFeed::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Every line posted since the last take, in order.
    Complete,
    /// Some lines were dropped: the worker's monitors must be closed.
    Lost,
}

impl MonitorFeed {
    pub fn new(workers: usize) -> Self {
        MonitorFeed {
            watchers: AtomicU64::new(0),
            inboxes: (0..workers).map(|_| CachePadded::default()).collect(),
        }
    }

    /// The workers that have monitors, as a bit set: the one load a command
    /// pays when nobody monitors (invariant 1).
    #[inline]
    pub fn watchers(&self) -> u64 {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Worker `w` now has monitors (`true`) or none (`false`).
    pub fn watch(&self, w: WorkerId, on: bool) {
        let bit = 1u64 << w;
        if on {
            self.watchers.fetch_or(bit, Ordering::Release);
        } else {
            self.watchers.fetch_and(!bit, Ordering::Release);
        }
    }

    /// Append `lines` to worker `to`'s inbox, holding it to `cap` bytes.
    /// True when the inbox was empty: the caller rings `to`'s doorbell
    /// (a non-empty inbox already has a ring on its way).
    pub fn post<'a>(
        &self,
        to: WorkerId,
        lines: impl Iterator<Item = &'a Bytes>,
        cap: usize,
    ) -> bool {
        let inbox = &self.inboxes[to];
        let was_empty = {
            let mut held = lock(&inbox.lines);
            let was_empty = held.items.is_empty() && !held.lost;
            for line in lines {
                if held.lost || held.bytes + line.len() > cap {
                    held.lost = true;
                    continue;
                }
                held.bytes += line.len();
                held.items.push(line.clone());
            }
            was_empty
        };
        inbox.waiting.store(true, Ordering::Release);
        was_empty
    }

    /// Move what waits in worker `w`'s inbox into `into` (which the caller
    /// keeps empty between takes, so its allocation is reused).
    pub fn take(&self, w: WorkerId, into: &mut Vec<Bytes>) -> Taken {
        let inbox = &self.inboxes[w];
        if !inbox.waiting.swap(false, Ordering::Acquire) {
            return Taken::Complete;
        }
        let mut held = lock(&inbox.lines);
        std::mem::swap(&mut held.items, into);
        if held.items.capacity() > KEEP {
            // The caller's list grew in an earlier burst: not kept here.
            held.items = Vec::new();
        }
        held.bytes = 0;
        if std::mem::take(&mut held.lost) {
            into.clear();
            return Taken::Lost;
        }
        Taken::Complete
    }
}

/// The redacted form of an argument (Redis's `shared.redacted`).
pub const REDACTED: &[u8] = b"(redacted)";

/// One monitor line, as Redis's `replicationFeedMonitors` writes it: the
/// time, the client's database and address, then every argument quoted as
/// `sdscatrepr` quotes it, those at the (ascending) indexes in `redacted`
/// replaced by `(redacted)`.
pub fn line(time: SystemTime, db: i64, addr: &str, args: ArgList<'_>, redacted: &[usize]) -> Bytes {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let size = 32 + addr.len() + args.iter().map(|a| a.len() + 3).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(
        format!(
            "+{}.{:06} [{db} {addr}] ",
            since.as_secs(),
            since.subsec_micros()
        )
        .as_bytes(),
    );
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let shown = if redacted.binary_search(&i).is_ok() {
            REDACTED
        } else {
            arg
        };
        repr(&mut out, shown);
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Append `bytes` quoted as Redis's `sdscatrepr` does: in double quotes,
/// `\\` and `"` escaped, `\n \r \t \a \b` by name, other bytes outside
/// printable ASCII as `\xhh`.
pub fn repr(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::args::Args;
    use std::time::Duration;

    fn args(a: &[&[u8]]) -> Args {
        a.iter().copied().collect()
    }

    #[test]
    fn lines_quote_arguments_as_sdscatrepr() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_042);
        let l = line(
            t,
            3,
            "127.0.0.1:5000",
            args(&[b"set", b"k", b"a b\"\\\n\r\t\x07\x08\x00\xff\x7f~"]).list(),
            &[],
        );
        assert_eq!(
            &l[..],
            &b"+1700000000.000042 [3 127.0.0.1:5000] \"set\" \"k\" \"a b\\\"\\\\\\n\\r\\t\\a\\b\\x00\\xff\\x7f~\"\r\n"[..]
        );
    }

    #[test]
    fn redacted_arguments_are_replaced() {
        let l = line(
            UNIX_EPOCH,
            0,
            "a:1",
            args(&[b"auth", b"user", b"secret"]).list(),
            &[1, 2],
        );
        assert_eq!(
            &l[..],
            b"+0.000000 [0 a:1] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
    }

    #[test]
    fn an_inbox_keeps_order_and_marks_what_did_not_fit() {
        let feed = MonitorFeed::new(2);
        let a = Bytes::from_static(b"aaaa");
        let b = Bytes::from_static(b"bb");
        assert!(feed.post(1, [&a, &b].into_iter(), 10), "was empty");
        assert!(!feed.post(1, std::iter::once(&b), 10), "not empty");
        let mut got = Vec::new();
        assert_eq!(feed.take(1, &mut got), Taken::Complete);
        assert_eq!(got, vec![a.clone(), b.clone(), b.clone()]);
        got.clear();
        assert_eq!(feed.take(1, &mut got), Taken::Complete);
        assert!(got.is_empty());
        feed.post(1, [&a, &a, &a].into_iter(), 10);
        assert_eq!(feed.take(1, &mut got), Taken::Lost);
        assert!(got.is_empty());
        assert!(feed.post(1, std::iter::once(&a), 10), "usable again");
    }

    #[test]
    fn workers_set_and_clear_their_own_bit() {
        let feed = MonitorFeed::new(3);
        assert_eq!(feed.watchers(), 0);
        feed.watch(2, true);
        feed.watch(0, true);
        assert_eq!(feed.watchers(), 0b101);
        feed.watch(2, false);
        assert_eq!(feed.watchers(), 0b001);
    }
}
