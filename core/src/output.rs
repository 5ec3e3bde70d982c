//! A connection's output queue: replies and pushed frames waiting to be sent.
//!
//! Small items are copied into one contiguous buffer (cheaper than tracking a
//! shared handle per 60-byte frame); frames larger than [`SHARE_THRESHOLD`]
//! are queued as shared `Bytes`, so a large payload is never copied per
//! subscriber. The writer takes everything queued in one go and sends it with
//! one (vectored) write per event-loop turn.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::OutputLimit;
use crate::frame::FrameRef;
use crate::resp::encode::Proto;

/// Frames at least this large are queued by reference instead of copied.
pub const SHARE_THRESHOLD: usize = 1024;

/// Largest tail buffer a connection keeps for reuse once it is sent: a tail
/// that grew past this during a burst (a subscriber that did not read) goes
/// out whole and is freed once written, instead of staying with the
/// connection at its largest size for the rest of its life.
const TAIL_KEEP: usize = 16 * 1024;
/// Likewise, most queued items a connection keeps room for once sent.
const ITEMS_KEEP: usize = 1024;

#[derive(Default, Debug)]
pub struct OutputQueue {
    items: VecDeque<Bytes>,
    tail: BytesMut,
    queued: usize,
    in_flight: usize,
    over_soft_since: Option<Instant>,
    waker: Option<Waker>,
    /// Frames pushed while the connection's EXEC is paused ([`Self::hold`]):
    /// they go out after it, as they would after Redis's atomic EXEC.
    held: Option<Box<OutputQueue>>,
}

/// Why an output limit closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    Hard,
    Soft,
    /// A client that never authenticated let its output pile up
    /// (`hub::UNAUTHENTICATED_OUTPUT_LIMIT`).
    Unauthenticated,
}

impl OutputQueue {
    /// Append already-encoded reply bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.wake();
    }

    /// The buffer [`Self::extend`] copies small replies into, with room for
    /// `additional` bytes, for a caller that encodes straight into it. The
    /// writer is woken now and runs once the caller is done.
    pub fn encode_buffer(&mut self, additional: usize) -> &mut BytesMut {
        self.wake();
        self.tail.reserve(additional);
        &mut self.tail
    }

    /// Append an encoded buffer the caller is done with: a large one (the
    /// confirmations of a command naming thousands) is queued as it is,
    /// not copied; a small one is copied like [`Self::extend`].
    pub fn append(&mut self, bytes: BytesMut) {
        if bytes.len() < SHARE_THRESHOLD {
            self.extend(&bytes);
            return;
        }
        self.seal_tail();
        self.queued += bytes.len();
        self.items.push_back(bytes.freeze());
        self.wake();
    }

    /// Queue a shared RESP2 push frame, as RESP3 (`>`) when `proto` asks:
    /// copied when small, else queued by reference (a `pmessage` header is
    /// copied and its shared payload tail referenced).
    pub fn push_frame(&mut self, frame: FrameRef<'_>, proto: Proto) {
        if let Some(held) = self.held.as_deref_mut() {
            held.push_frame(frame, proto);
            return;
        }
        let len = frame.len();
        if len < SHARE_THRESHOLD {
            self.tail.reserve(len);
            self.put_head(frame.head, proto);
            if let Some(body) = frame.body {
                self.tail.extend_from_slice(body);
            }
        } else if let Some(body) = frame.body {
            self.put_head(frame.head, proto);
            self.seal_tail();
            self.items.push_back(body.clone());
            self.queued += body.len();
        } else {
            self.seal_tail();
            match proto {
                Proto::Resp2 => self.items.push_back(frame.head.clone()),
                Proto::Resp3 => {
                    self.items.push_back(Bytes::from_static(b">"));
                    self.items.push_back(frame.head.slice(1..));
                }
            }
            self.queued += len;
        }
        self.wake();
    }

    /// Copy the start of a push frame into the tail, `>` in place of `*` for RESP3.
    fn put_head(&mut self, head: &[u8], proto: Proto) {
        match (proto, head.split_first()) {
            (Proto::Resp3, Some((_, rest))) => {
                self.tail.put_u8(b'>');
                self.tail.extend_from_slice(rest);
            }
            _ => self.tail.extend_from_slice(head),
        }
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            // Splitting keeps the rest of the buffer (reused once the sealed
            // part is sent); a large one is handed over whole instead.
            let t = if self.tail.capacity() > TAIL_KEEP {
                std::mem::take(&mut self.tail)
            } else {
                self.tail.split()
            }
            .freeze();
            self.queued += t.len();
            self.items.push_back(t);
        }
    }

    /// Bytes held for this connection: queued (held frames too) plus
    /// handed to the writer and not yet sent.
    pub fn memory(&self) -> usize {
        self.queued
            + self.tail.len()
            + self.in_flight
            + self.held.as_ref().map_or(0, |h| h.memory())
    }

    /// From now on frames ([`Self::push_frame`]) wait apart, behind what
    /// [`Self::extend`] appends, until [`Self::release`]: the reply of an
    /// EXEC that paused stays in one piece.
    pub fn hold(&mut self) {
        if self.held.is_none() {
            self.held = Some(Box::default());
        }
    }

    /// Forget the frames held since [`Self::hold`] (the connection closes).
    pub fn drop_held(&mut self) {
        self.held = None;
    }

    /// Queue the frames held since [`Self::hold`] after everything else.
    pub fn release(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        held.seal_tail();
        if held.queued == 0 {
            return;
        }
        self.seal_tail();
        self.queued += held.queued;
        self.items.append(&mut held.items);
        self.wake();
    }

    /// Bytes handed to the writer and not yet reported sent.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.tail.is_empty()
    }

    /// Move everything queued into `out` for sending; returns the byte count.
    pub fn take(&mut self, out: &mut Vec<Bytes>) -> usize {
        self.seal_tail();
        let n = self.queued;
        out.extend(self.items.drain(..));
        if self.items.capacity() > ITEMS_KEEP {
            self.items = VecDeque::new();
        }
        self.in_flight += n;
        self.queued = 0;
        n
    }

    /// The writer finished sending `n` bytes it took.
    pub fn sent(&mut self, n: usize) {
        self.in_flight = self.in_flight.saturating_sub(n);
    }

    /// Drop everything (the connection is being closed).
    pub fn clear(&mut self) {
        self.items.clear();
        self.tail.clear();
        self.queued = 0;
        self.held = None;
    }

    pub fn register(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    /// Drop the writer's waker without waking it (the connection leaves
    /// for another worker, whose writer registers its own).
    pub fn forget_waker(&mut self) {
        self.waker = None;
    }

    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Check Redis's output buffer limit (`client-output-buffer-limit`):
    /// over `hard` closes at once; over `soft` continuously for more than
    /// `soft_seconds` closes too. `now` is read only when over the soft limit.
    ///
    /// What counts is the output past the first [`UNCOUNTED_OUTPUT`] bytes,
    /// as in Redis, whose limit counts its reply list and not the static
    /// buffer in front of it: a subscriber sent a few large messages at once
    /// is cut at the same point on both servers. Bytes handed to the writer
    /// count until the write reports them sent: a write to a peer that does
    /// not read holds them, and they must meet the limit.
    pub fn check_limit(&mut self, limit: &OutputLimit) -> Option<LimitExceeded> {
        let used = self.memory().saturating_sub(UNCOUNTED_OUTPUT);
        if limit.hard > 0 && used >= limit.hard {
            return Some(LimitExceeded::Hard);
        }
        if limit.soft > 0 && used >= limit.soft {
            let now = Instant::now();
            let since = *self.over_soft_since.get_or_insert(now);
            // As Redis: trips once the time over the soft limit exceeds soft_seconds.
            if now.duration_since(since).as_secs() > limit.soft_seconds {
                return Some(LimitExceeded::Soft);
            }
        } else {
            self.over_soft_since = None;
        }
        None
    }
}

/// Output a Redis client holds in its static reply buffer
/// (`PROTO_REPLY_CHUNK_BYTES`), which `client-output-buffer-limit` does not count.
pub const UNCOUNTED_OUTPUT: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(frame: &Bytes) -> FrameRef<'_> {
        FrameRef {
            head: frame,
            body: None,
        }
    }

    #[test]
    fn pmessage_parts_are_copied_when_small_and_shared_when_large() {
        let head = Bytes::from_static(b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n");
        let small = Bytes::from_static(b"$1\r\nx\r\n");
        let mut q = OutputQueue::default();
        let f = FrameRef {
            head: &head,
            body: Some(&small),
        };
        q.push_frame(f, Proto::Resp3);
        let out = drain(&mut q);
        assert_eq!(out[0], b'>');
        assert_eq!(&out[1..head.len()], &head[1..]);
        assert_eq!(&out[head.len()..], &small[..]);

        let large = Bytes::from(vec![9u8; 8192]);
        let f = FrameRef {
            head: &head,
            body: Some(&large),
        };
        q.push_frame(f, Proto::Resp2);
        assert_eq!(q.memory(), head.len() + large.len());
        let mut v = Vec::new();
        q.take(&mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(&v[0][..], &head[..]);
        assert_eq!(v[1].as_ptr(), large.as_ptr(), "the payload is shared");
    }

    fn drain(q: &mut OutputQueue) -> Vec<u8> {
        let mut v = Vec::new();
        let n = q.take(&mut v);
        q.sent(n);
        v.concat()
    }

    #[test]
    fn replies_and_frames_keep_their_order() {
        let mut q = OutputQueue::default();
        q.extend(b"+OK\r\n");
        let big = Bytes::from(vec![b'*'; 2000]);
        q.push_frame(whole(&big), Proto::Resp2);
        q.extend(b":1\r\n");
        let out = drain(&mut q);
        assert_eq!(&out[..5], b"+OK\r\n");
        assert_eq!(out.len(), 5 + 2000 + 4);
        assert_eq!(&out[2005..], b":1\r\n");
    }

    #[test]
    fn a_large_appended_buffer_is_moved_in_whole_and_keeps_its_place() {
        let mut q = OutputQueue::default();
        q.extend(b"+OK\r\n");
        let mut big = BytesMut::with_capacity(4096);
        big.extend_from_slice(&[b'c'; 3000]);
        let at = big.as_ptr();
        q.append(big);
        q.append(BytesMut::from(&b":1\r\n"[..]));
        assert_eq!(q.memory(), 5 + 3000 + 4);
        let mut v = Vec::new();
        q.take(&mut v);
        assert_eq!(v.len(), 3);
        assert_eq!(&v[0][..], b"+OK\r\n");
        assert_eq!(v[1].as_ptr(), at, "not copied");
        assert_eq!(&v[2][..], b":1\r\n");
    }

    #[test]
    fn held_frames_go_out_after_what_is_appended_until_release() {
        let (frame, _) = crate::frame::message(crate::registry::Namespace::Global, b"c", b"m");
        let big = Bytes::from(vec![b'*'; 2000]);
        let mut q = OutputQueue::default();
        q.extend(b"*2\r\n");
        q.hold();
        q.push_frame(whole(&frame), Proto::Resp2);
        q.push_frame(whole(&big), Proto::Resp2);
        q.extend(b":1\r\n");
        assert_eq!(q.memory(), 4 + frame.len() + 2000 + 4);
        assert_eq!(drain(&mut q), b"*2\r\n:1\r\n", "held frames wait");
        q.extend(b":2\r\n");
        q.release();
        let out = drain(&mut q);
        assert_eq!(&out[..4], b":2\r\n");
        assert_eq!(&out[4..4 + frame.len()], &frame[..]);
        assert_eq!(out.len(), 4 + frame.len() + 2000);
        q.push_frame(whole(&frame), Proto::Resp2);
        assert_eq!(drain(&mut q), &frame[..], "no longer held");
    }

    #[test]
    fn resp3_frames_start_with_push_marker() {
        let (frame, _) = crate::frame::message(crate::registry::Namespace::Global, b"c", b"m");
        let mut q = OutputQueue::default();
        q.push_frame(whole(&frame), Proto::Resp3);
        assert_eq!(
            drain(&mut q),
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
        );
        let (big, _) = crate::frame::message(crate::registry::Namespace::Global, b"c", &[7; 4096]);
        q.push_frame(whole(&big), Proto::Resp3);
        let out = drain(&mut q);
        assert_eq!(out[0], b'>');
        assert_eq!(&out[1..], &big[1..]);
    }

    #[test]
    fn large_frames_are_shared_not_copied() {
        let big = Bytes::from(vec![1u8; 4096]);
        let mut q = OutputQueue::default();
        q.push_frame(whole(&big), Proto::Resp2);
        let mut v = Vec::new();
        q.take(&mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].as_ptr(), big.as_ptr());
    }

    #[test]
    fn memory_counts_until_sent() {
        let mut q = OutputQueue::default();
        q.extend(b"12345");
        assert_eq!(q.memory(), 5);
        let mut v = Vec::new();
        let n = q.take(&mut v);
        assert_eq!(q.memory(), 5);
        q.sent(n);
        assert_eq!(q.memory(), 0);
    }

    #[test]
    fn a_burst_leaves_no_large_buffer_behind_once_sent() {
        let mut q = OutputQueue::default();
        // A subscriber that did not read: 4 MB of small frames pile up.
        for _ in 0..(4 << 20) / 64 {
            q.extend(&[b'x'; 64]);
        }
        let mut v = Vec::new();
        let n = q.take(&mut v);
        assert_eq!(n, 4 << 20);
        drop(v);
        q.sent(n);
        q.extend(b"+OK\r\n");
        assert!(
            q.tail.capacity() <= TAIL_KEEP,
            "tail keeps {} bytes after the burst",
            q.tail.capacity()
        );

        let frame = Bytes::from(vec![b'*'; 2 * SHARE_THRESHOLD]);
        for _ in 0..100_000 {
            q.push_frame(whole(&frame), Proto::Resp2);
        }
        let mut v = Vec::new();
        q.take(&mut v);
        assert!(q.items.capacity() <= ITEMS_KEEP);
    }

    #[test]
    fn a_small_tail_is_reused_once_sent() {
        let mut q = OutputQueue::default();
        q.extend(&[b'x'; 1000]);
        let mut v = Vec::new();
        let n = q.take(&mut v);
        let first = v[0].as_ptr();
        v.clear();
        q.sent(n);
        q.extend(&[b'y'; 500]);
        q.take(&mut v);
        assert_eq!(v[0].as_ptr(), first, "the same buffer, reclaimed");
    }

    #[test]
    fn hard_limit_trips_at_once_and_soft_limit_needs_time() {
        let limit = OutputLimit {
            hard: 100,
            soft: 10,
            soft_seconds: 3600,
        };
        let mut q = OutputQueue::default();
        q.extend(&[0; UNCOUNTED_OUTPUT + 50]);
        assert_eq!(q.check_limit(&limit), None);
        q.extend(&[0; 60]);
        assert_eq!(q.check_limit(&limit), Some(LimitExceeded::Hard));
        let unlimited = OutputLimit::default();
        assert_eq!(q.check_limit(&unlimited), None);
    }

    #[test]
    fn soft_limit_trips_after_its_seconds() {
        let limit = OutputLimit {
            hard: 0,
            soft: 10,
            soft_seconds: 1,
        };
        let mut q = OutputQueue::default();
        q.extend(&[0; UNCOUNTED_OUTPUT + 20]);
        assert_eq!(q.check_limit(&limit), None);
        q.over_soft_since = Some(Instant::now() - std::time::Duration::from_secs(2));
        assert_eq!(q.check_limit(&limit), Some(LimitExceeded::Soft));
    }

    #[test]
    fn the_first_16_kib_do_not_count_as_in_redis() {
        let limit = OutputLimit {
            hard: 100,
            soft: 0,
            soft_seconds: 0,
        };
        let mut q = OutputQueue::default();
        q.extend(&[0; UNCOUNTED_OUTPUT]);
        assert_eq!(
            q.check_limit(&limit),
            None,
            "all of it in the uncounted part"
        );
        q.extend(&[0; 99]);
        assert_eq!(q.check_limit(&limit), None);
        q.extend(&[0; 1]);
        assert_eq!(q.check_limit(&limit), Some(LimitExceeded::Hard));
    }
}
