//! The ACL log (`ACL LOG`): recent denials, newest first, similar ones
//! merged into one entry with a count, as Redis's `addACLLogEntry`.

use std::collections::VecDeque;

use bytes::Bytes;

/// Denials within this many milliseconds of each other may merge.
const GROUPING_MAX_MS: u64 = 60_000;
/// How many recent entries a new one is compared with.
const SCAN: usize = 10;

/// Why access was denied; the index of its INFO counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReason {
    Auth = 0,
    Command = 1,
    Key = 2,
    Channel = 3,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Auth => "auth",
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command, channel, or (for `auth`) the command that tried.
    pub object: Bytes,
    pub username: Bytes,
    /// Unix milliseconds of the last denial merged into it.
    pub updated_ms: u64,
    /// The client's `CLIENT LIST` line at the last denial.
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: u64,
}

impl LogEntry {
    pub fn new(
        reason: LogReason,
        context: &'static str,
        object: Bytes,
        username: Bytes,
        client_info: String,
        now_ms: u64,
    ) -> LogEntry {
        LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            updated_ms: now_ms,
            client_info,
            entry_id: 0,
            created_ms: now_ms,
        }
    }

    fn same_as(&self, other: &LogEntry) -> bool {
        self.reason == other.reason
            && self.context == other.context
            && self.updated_ms.abs_diff(other.updated_ms) <= GROUPING_MAX_MS
            && self.object == other.object
            && self.username == other.username
    }
}

#[derive(Default)]
pub(super) struct Log {
    pub(super) entries: VecDeque<LogEntry>,
    /// Entries created so far: the next one's `entry-id`.
    created: u64,
}

impl Log {
    pub(super) fn add(&mut self, mut entry: LogEntry, max_len: usize) {
        let similar = self
            .entries
            .iter()
            .take(SCAN)
            .position(|e| e.same_as(&entry));
        if let Some(at) = similar
            && let Some(mut old) = self.entries.remove(at)
        {
            old.count += 1;
            old.updated_ms = entry.updated_ms;
            old.client_info = entry.client_info;
            self.entries.push_front(old);
            return;
        }
        entry.entry_id = self.created;
        self.created += 1;
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &'static [u8], at: u64) -> LogEntry {
        LogEntry::new(
            LogReason::Command,
            "toplevel",
            Bytes::from_static(object),
            Bytes::from_static(b"alice"),
            String::new(),
            at,
        )
    }

    #[test]
    fn similar_denials_merge_and_move_to_the_front() {
        let mut log = Log::default();
        log.add(entry(b"publish", 1000), 128);
        log.add(entry(b"subscribe", 1000), 128);
        log.add(entry(b"publish", 2000), 128);
        assert_eq!(log.entries.len(), 2);
        let first = &log.entries[0];
        assert_eq!((&first.object[..], first.count), (&b"publish"[..], 2));
        assert_eq!(
            (first.entry_id, first.created_ms, first.updated_ms),
            (0, 1000, 2000)
        );
        // Past a minute, the same denial starts a new entry.
        log.add(entry(b"publish", 70_000), 128);
        assert_eq!(log.entries.len(), 3);
        assert_eq!(log.entries[0].entry_id, 2);
    }

    #[test]
    fn the_log_keeps_max_len_entries() {
        let mut log = Log::default();
        log.add(entry(b"a", 0), 2);
        log.add(entry(b"b", 0), 2);
        log.add(entry(b"c", 0), 2);
        let objects: Vec<_> = log.entries.iter().map(|e| e.object.clone()).collect();
        assert_eq!(
            objects,
            vec![Bytes::from_static(b"c"), Bytes::from_static(b"b")]
        );
        log.add(entry(b"d", 0), 0);
        assert!(log.entries.is_empty());
    }
}
