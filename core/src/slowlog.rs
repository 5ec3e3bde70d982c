//! The slow log: commands that ran for at least `slowlog-log-slower-than`
//! microseconds, one log for the whole server, newest first.
//!
//! Workers time their commands themselves (see `hub::observe`) and only
//! touch the log when a command qualifies, or when it holds more entries
//! than `slowlog-max-len` (one relaxed load of its length tells): the lock
//! is never taken on the path of an ordinary command. Entry ids are given
//! under the lock, so they grow in the order entries enter the log,
//! whichever worker ran them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;

use crate::lock;
use crate::resp::args::ArgList;

/// Arguments an entry keeps; the last one kept says how many more there were.
pub const MAX_ARGS: usize = 32;
/// Bytes an argument keeps; the rest is summed up (`... (N more bytes)`).
pub const MAX_ARG_BYTES: usize = 128;

/// One logged command, as `SLOWLOG GET` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// Unix time, in seconds, when it was logged.
    pub time: u64,
    pub duration_us: u64,
    /// The arguments as logged ([`logged_args`]).
    pub args: Vec<Bytes>,
    /// The client's address (`ip:port`) and name (empty if none).
    pub addr: String,
    pub name: Bytes,
}

#[derive(Default)]
struct Log {
    /// Newest first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

#[derive(Default)]
pub struct SlowLog {
    log: Mutex<Log>,
    /// `entries.len()`, readable without the lock.
    len: AtomicUsize,
}

impl SlowLog {
    /// Log a command (its `id` is given here), then keep at most `max_len` entries.
    pub fn push(&self, mut entry: Entry, max_len: u64) {
        let mut log = lock(&self.log);
        entry.id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(entry);
        truncate(&mut log.entries, max_len);
        self.len.store(log.entries.len(), Relaxed);
    }

    /// Keep at most `max_len` entries (after `slowlog-max-len` was lowered:
    /// Redis trims at the next command that runs while the log is on).
    pub fn trim(&self, max_len: u64) {
        if self.len() as u64 <= max_len {
            return;
        }
        let mut log = lock(&self.log);
        truncate(&mut log.entries, max_len);
        self.len.store(log.entries.len(), Relaxed);
    }

    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every entry (ids keep growing, as in Redis).
    pub fn reset(&self) {
        let mut log = lock(&self.log);
        log.entries.clear();
        self.len.store(0, Relaxed);
    }

    /// The newest `count` entries, newest first.
    pub fn newest(&self, count: usize) -> Vec<Entry> {
        lock(&self.log)
            .entries
            .iter()
            .take(count)
            .cloned()
            .collect()
    }
}

fn truncate(entries: &mut VecDeque<Entry>, max_len: u64) {
    let keep = usize::try_from(max_len).unwrap_or(usize::MAX);
    entries.truncate(keep);
}

/// A command's arguments as Redis's `slowlogCreateEntry` keeps them: at most
/// [`MAX_ARGS`] (the last one kept then reads `... (N more arguments)`),
/// each cut at [`MAX_ARG_BYTES`] (`... (N more bytes)` appended), those at
/// the (ascending) indexes in `redacted` shown as `(redacted)`. Copies, so
/// an entry never holds on to the buffer the request was read into.
pub fn logged_args(args: ArgList<'_>, redacted: &[usize]) -> Vec<Bytes> {
    let kept = args.len().min(MAX_ARGS);
    (0..kept)
        .map(|i| {
            if kept != args.len() && i == kept - 1 {
                let more = args.len() - kept + 1;
                return Bytes::from(format!("... ({more} more arguments)"));
            }
            if redacted.binary_search(&i).is_ok() {
                return Bytes::from_static(crate::monitor::REDACTED);
            }
            let arg = &args[i];
            if arg.len() > MAX_ARG_BYTES {
                let mut cut = arg[..MAX_ARG_BYTES].to_vec();
                let more = arg.len() - MAX_ARG_BYTES;
                cut.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
                Bytes::from(cut)
            } else {
                Bytes::copy_from_slice(arg)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::args::Args;

    fn entry() -> Entry {
        Entry {
            id: 0,
            time: 1,
            duration_us: 2,
            args: vec![Bytes::from_static(b"ping")],
            addr: "a:1".into(),
            name: Bytes::new(),
        }
    }

    #[test]
    fn ids_grow_and_only_max_len_newest_entries_stay() {
        let log = SlowLog::default();
        for _ in 0..5 {
            log.push(entry(), 3);
        }
        assert_eq!(log.len(), 3);
        let ids: Vec<u64> = log.newest(10).iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![4, 3, 2]);
        log.trim(1);
        assert_eq!(log.newest(10)[0].id, 4);
        log.reset();
        assert!(log.is_empty());
        log.push(entry(), 3);
        assert_eq!(log.newest(1)[0].id, 5, "ids survive a reset");
    }

    #[test]
    fn long_commands_keep_31_arguments_and_say_how_many_more() {
        let numbers: Vec<String> = (0..34).map(|i| i.to_string()).collect();
        let args: Args = numbers.iter().map(|n| n.as_bytes()).collect();
        let args = args.list();
        let logged = logged_args(args, &[]);
        assert_eq!(logged.len(), 32);
        assert_eq!(&logged[30][..], b"30");
        assert_eq!(&logged[31][..], b"... (3 more arguments)");
        assert_eq!(logged_args(args.slice(..32), &[]).len(), 32);
        assert_eq!(&logged_args(args.slice(..32), &[])[31][..], b"31");
    }

    #[test]
    fn long_arguments_are_cut_at_128_bytes() {
        let long = [b'A'; 129];
        let args: Args = [&b"x"[..], &long[..]].into_iter().collect();
        let args = args.list();
        let logged = logged_args(args, &[]);
        let expected = [&[b'A'; 128][..], b"... (1 more bytes)"].concat();
        assert_eq!(&logged[1][..], &expected[..]);
        let redacted = logged_args(args, &[1]);
        assert_eq!(&redacted[1][..], b"(redacted)");
    }
}
