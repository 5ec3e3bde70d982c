//! Pub/sub message frames, built once per publish and shared by every
//! subscriber on every worker.
//!
//! A frame is the complete RESP2 push (`*3\r\n$7\r\nmessage\r\n...`). RESP3
//! subscribers get the same bytes with `>` in place of the leading `*`
//! (see `OutputQueue::push_frame`), so one publish never builds a frame per
//! subscriber nor per protocol version.

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use crate::registry::Namespace;

/// One published message, as it travels to other workers.
#[derive(Debug)]
pub struct Message {
    pub ns: Namespace,
    pub channel: Bytes,
    /// `message` (or `smessage` for shard channels) frame.
    pub frame: Bytes,
    /// One `pmessage` frame per subscribed pattern that matches the channel.
    pub patterns: Vec<PatternFrame>,
    /// When the publishing worker parsed the PUBLISH, on the messages
    /// sampled for the delivery latency histogram of the receiving workers.
    pub published: Option<Instant>,
}

#[derive(Debug)]
pub struct PatternFrame {
    pub pattern: Bytes,
    pub frame: Bytes,
}

pub type SharedMessage = Arc<Message>;

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    let mut len = itoa::Buffer::new();
    out.put_u8(b'$');
    out.put_slice(len.format(data.len()).as_bytes());
    out.put_slice(b"\r\n");
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

/// `message` / `smessage` frame for a channel publish.
pub fn message(ns: Namespace, channel: &[u8], payload: &[u8]) -> Bytes {
    let kind: &[u8] = match ns {
        Namespace::Global => b"message",
        Namespace::Shard => b"smessage",
    };
    push_frame(&[kind, channel, payload])
}

/// `pmessage` frame for one matching pattern.
pub fn pmessage(pattern: &[u8], channel: &[u8], payload: &[u8]) -> Bytes {
    push_frame(&[b"pmessage", pattern, channel, payload])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frame_is_the_redis_resp2_push() {
        assert_eq!(
            &message(Namespace::Global, b"news", b"hello")[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        );
        assert_eq!(
            &message(Namespace::Shard, b"c", b"")[..],
            b"*3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn pmessage_frame_carries_pattern_then_channel() {
        assert_eq!(
            &pmessage(b"n*", b"news", b"x")[..],
            b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n"
        );
    }

    #[test]
    fn binary_payloads_are_framed_by_length() {
        let f = message(Namespace::Global, b"a\r\nb", b"\0\r\n");
        assert_eq!(
            &f[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\na\r\nb\r\n$3\r\n\0\r\n\r\n"
        );
    }
}
