//! Pub/sub message frames, built once per publish and shared by every
//! subscriber on every worker.
//!
//! A publish builds one `message` (or `smessage`) frame: the complete RESP2
//! push `*3\r\n$7\r\nmessage\r\n$<n>\r\n<channel>\r\n$<p>\r\n<payload>\r\n`.
//! A `pmessage` frame for a matching pattern is a small header of its own,
//! `*4\r\n$8\r\npmessage\r\n$<m>\r\n<pattern>\r\n$<n>\r\n<channel>\r\n`,
//! followed by the tail of that same frame, `$<p>\r\n<payload>\r\n`: the
//! payload exists once per publish however many patterns match. RESP3
//! subscribers get the same bytes with `>` in place of the leading `*` (see
//! `OutputQueue::push_frame`), so one publish never builds a frame per
//! subscriber nor per protocol version.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use crate::WorkerId;
use crate::registry::{Name, Namespace};

/// One published message, as it travels to other workers.
#[derive(Debug)]
pub struct Message {
    pub ns: Namespace,
    /// Where the channel's name lies in `frame` (`<channel>\r\n` right
    /// before the payload's bulk): the message holds no copy or handle of
    /// its own.
    channel: Range<usize>,
    /// The `message` (or `smessage`) frame.
    frame: Bytes,
    /// `$<p>\r\n<payload>\r\n`: the end of `frame`, shared by every `pmessage`.
    tail: Bytes,
    /// Whether the `message` frame goes to anyone (channel subscribers).
    to_channel: bool,
    /// One entry per subscribed pattern that matches the channel.
    pub patterns: Vec<PatternFrame>,
    /// When the publishing worker parsed the PUBLISH, on the messages
    /// sampled for the delivery latency histogram of the receiving workers.
    pub published: Option<Instant>,
    /// Which subscriptions the publish counted: for the channel (hit 0) and
    /// each pattern (hit `1 + i`), the 32-bit subscription sequence the
    /// registry read for each worker (`registry::Lookup::seqs`).
    seen: SeqList,
    /// Entries per hit in `seen`: the worker count.
    stride: usize,
}

/// The sequences of a lookup: inline for the common case (one or two hits
/// on a few workers), so most publishes allocate nothing for them.
#[derive(Debug)]
enum SeqList {
    Inline { len: u8, seqs: [u32; INLINE_SEQS] },
    Heap(Box<[u32]>),
}

const INLINE_SEQS: usize = 8;

impl SeqList {
    fn new(seqs: &[u32]) -> SeqList {
        if seqs.len() <= INLINE_SEQS {
            let mut inline = [0; INLINE_SEQS];
            inline[..seqs.len()].copy_from_slice(seqs);
            SeqList::Inline {
                len: seqs.len() as u8,
                seqs: inline,
            }
        } else {
            SeqList::Heap(seqs.into())
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            SeqList::Inline { len, seqs } => &seqs[..usize::from(*len)],
            SeqList::Heap(seqs) => seqs,
        }
    }
}

/// A matching pattern (the registry's name of it, with its hash) and the
/// header of its `pmessage` frame.
#[derive(Debug)]
pub struct PatternFrame {
    pub pattern: Name,
    header: Bytes,
}

pub type SharedMessage = Arc<Message>;

/// A frame to queue: `head`, then `body` when there is one (a `pmessage`
/// header and the shared payload tail).
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    pub head: &'a Bytes,
    pub body: Option<&'a Bytes>,
}

impl FrameRef<'_> {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.map_or(0, Bytes::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fixed cost of a message on its way to another worker, beyond its frames
/// (the allocation itself, its fields, pattern entries).
const MESSAGE_OVERHEAD: usize = 128;

impl Message {
    /// The message of a publish to `channel` in `ns`, for channel subscribers
    /// if `to_channel` and for subscribers of each of `patterns`; `seen` and
    /// `stride` are the lookup's subscription sequences (see
    /// [`Message::seen`]), empty when no subscriber needs telling apart.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        to_channel: bool,
        patterns: impl IntoIterator<Item = Name>,
        published: Option<Instant>,
        seen: &[u32],
        stride: usize,
    ) -> Message {
        let (frame, payload_at) = message(ns, channel, payload);
        let patterns = patterns
            .into_iter()
            .map(|pattern| PatternFrame {
                header: pmessage_header(&pattern, channel),
                pattern,
            })
            .collect();
        let channel_end = payload_at - 2;
        Message {
            ns,
            channel: channel_end - channel.len()..channel_end,
            tail: frame.slice(payload_at..),
            frame,
            to_channel,
            patterns,
            published,
            seen: SeqList::new(seen),
            stride,
        }
    }

    /// The 32-bit subscription sequence the publish's lookup read for worker
    /// `w` at `hit` (0 = the channel, `1 + i` = `patterns[i]`): that worker's
    /// subscriptions with a sequence up to it (widened, see
    /// `registry::widen_seq`) were counted, later ones were not. `None` when
    /// the message carries no sequences (built without a lookup).
    pub fn seen(&self, hit: usize, w: WorkerId) -> Option<u32> {
        if w >= self.stride {
            return None;
        }
        self.seen.as_slice().get(hit * self.stride + w).copied()
    }

    /// The channel it was published to.
    pub fn channel(&self) -> &[u8] {
        &self.frame[self.channel.clone()]
    }

    /// The `message` frame, if channel subscribers are to get it.
    pub fn channel_frame(&self) -> Option<FrameRef<'_>> {
        self.to_channel.then_some(FrameRef {
            head: &self.frame,
            body: None,
        })
    }

    /// The `pmessage` frame of one of `patterns`: its header, then the
    /// payload tail shared with the `message` frame.
    pub fn pattern_frame<'a>(&'a self, p: &'a PatternFrame) -> FrameRef<'a> {
        FrameRef {
            head: &p.header,
            body: Some(&self.tail),
        }
    }

    /// Bytes this message holds while it waits in a ring (the bound on
    /// bytes in flight between workers counts these).
    pub fn weight(&self) -> usize {
        MESSAGE_OVERHEAD
            + self.frame.len()
            + self
                .patterns
                .iter()
                .map(|p| p.header.len() + MESSAGE_OVERHEAD / 4)
                .sum::<usize>()
    }
}

impl crate::mesh::Weigh for SharedMessage {
    fn weight(&self) -> usize {
        Message::weight(self)
    }
}

fn put_bulk_header(out: &mut BytesMut, len: usize) {
    let mut digits = itoa::Buffer::new();
    out.put_u8(b'$');
    out.put_slice(digits.format(len).as_bytes());
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_bulk_header(out, data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

const BULK_OVERHEAD: usize = 1 + 20 + 2 + 2;

/// `*<n>` push frame whose elements are all bulk strings.
pub fn push_frame(parts: &[&[u8]]) -> Bytes {
    let size = 4 + parts.iter().map(|p| p.len() + BULK_OVERHEAD).sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_u8(b'*');
    out.put_u8(b'0' + parts.len() as u8);
    out.put_slice(b"\r\n");
    for p in parts {
        put_bulk(&mut out, p);
    }
    out.freeze()
}

/// `message` / `smessage` frame for a channel publish, and where its
/// payload bulk (`$<p>\r\n...`) starts.
pub fn message(ns: Namespace, channel: &[u8], payload: &[u8]) -> (Bytes, usize) {
    let kind: &[u8] = match ns {
        Namespace::Global => b"message",
        Namespace::Shard => b"smessage",
    };
    let frame = push_frame(&[kind, channel, payload]);
    let payload_at = frame.len() - payload.len() - 2 - bulk_header_len(payload.len());
    (frame, payload_at)
}

fn bulk_header_len(len: usize) -> usize {
    itoa::Buffer::new().format(len).len() + 3
}

/// `*4\r\n$8\r\npmessage\r\n$<m>\r\n<pattern>\r\n$<n>\r\n<channel>\r\n`:
/// a `pmessage` frame up to its payload.
pub fn pmessage_header(pattern: &[u8], channel: &[u8]) -> Bytes {
    let mut out =
        BytesMut::with_capacity(4 + 3 * BULK_OVERHEAD + 8 + pattern.len() + channel.len());
    out.put_slice(b"*4\r\n");
    put_bulk(&mut out, b"pmessage");
    put_bulk(&mut out, pattern);
    put_bulk(&mut out, channel);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry's names of `patterns`, as a lookup reports them.
    fn names<S: AsRef<[u8]>>(patterns: impl IntoIterator<Item = S>) -> Vec<Name> {
        let registry = crate::registry::Registry::new(1);
        (1..)
            .zip(patterns)
            .map(|(seq, p)| registry.psubscribe_name(p.as_ref(), 0, seq))
            .collect()
    }

    fn whole(f: FrameRef<'_>) -> Vec<u8> {
        let mut v = f.head.to_vec();
        v.extend_from_slice(f.body.map_or(&b""[..], |b| b));
        v
    }

    #[test]
    fn message_frame_is_the_redis_resp2_push() {
        assert_eq!(
            &message(Namespace::Global, b"news", b"hello").0[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        );
        assert_eq!(
            &message(Namespace::Shard, b"c", b"").0[..],
            b"*3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn pmessage_frame_carries_pattern_then_channel_then_the_shared_payload() {
        let m = Message::new(
            Namespace::Global,
            b"news",
            b"x",
            false,
            names(["n*"]),
            None,
            &[],
            0,
        );
        assert!(m.channel_frame().is_none());
        assert_eq!(
            whole(m.pattern_frame(&m.patterns[0])),
            b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n"
        );
    }

    #[test]
    fn a_large_payload_exists_once_whatever_the_patterns() {
        let payload = vec![7u8; 100_000];
        let patterns = names((0..200).map(|i| format!("*{i}")));
        let m = Message::new(
            Namespace::Global,
            b"c",
            &payload,
            true,
            patterns,
            None,
            &[],
            0,
        );
        let channel = m.channel_frame().expect("channel subscribers");
        let tails: Vec<*const u8> = m
            .patterns
            .iter()
            .map(|p| m.pattern_frame(p).body.expect("a shared tail").as_ptr())
            .collect();
        // Every pmessage ends with the very bytes of the message frame's payload.
        let payload_in_frame = channel.head[channel.head.len() - payload.len() - 2..].as_ptr();
        assert!(
            tails
                .iter()
                .all(|&t| t < payload_in_frame && t >= channel.head.as_ptr())
        );
        assert!(
            m.patterns
                .iter()
                .all(|p| m.pattern_frame(p).head.len() < 64)
        );
        assert!(m.weight() < payload.len() + 200 * 128);
    }

    #[test]
    fn a_message_tells_each_worker_which_subscriptions_were_counted() {
        let seen = [0, 7, 3, 9, 1, 2];
        let m = Message::new(
            Namespace::Global,
            b"c",
            b"x",
            true,
            names(["*", "c*"]),
            None,
            &seen,
            2,
        );
        assert_eq!(m.seen(0, 1), Some(7));
        assert_eq!(m.seen(1, 0), Some(3));
        assert_eq!(m.seen(2, 1), Some(2));
        assert_eq!(m.seen(0, 2), None);
        let many: Vec<u32> = (0..40).collect();
        let m = Message::new(Namespace::Global, b"c", b"x", true, [], None, &many, 40);
        assert_eq!(m.seen(0, 39), Some(39));
    }

    #[test]
    fn binary_payloads_are_framed_by_length() {
        let (f, at) = message(Namespace::Global, b"a\r\nb", b"\0\r\n");
        assert_eq!(
            &f[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\na\r\nb\r\n$3\r\n\0\r\n\r\n"
        );
        assert_eq!(&f[at..], b"$3\r\n\0\r\n\r\n");
    }
}
