//! Helpers for tests that move many messages: pipelined publishing with
//! concurrent reply reading, and payloads that say who sent them and when.

use crate::raw::RawConn;
use crate::resp::{self, Frame};
use std::io::Write;
use std::thread::{self, JoinHandle};

/// Writes `requests` from one thread while another reads `replies` frames,
/// so neither side of the socket can fill up and stall the test itself.
/// Returns the connection and the replies in order.
pub fn pipelined(
    mut conn: RawConn,
    requests: Vec<u8>,
    replies: usize,
) -> JoinHandle<(RawConn, Vec<Frame>)> {
    thread::spawn(move || {
        let mut writer = conn.try_clone_stream();
        let w = thread::spawn(move || {
            writer
                .write_all(&requests)
                .expect("write pipelined requests")
        });
        let out = (0..replies).map(|_| conn.read_frame()).collect();
        w.join().expect("writer thread");
        (conn, out)
    })
}

/// `count` PUBLISH (or SPUBLISH) commands from publisher `id` to the channel
/// chosen by `channel_of(seq)`, payloads from [`payload`].
pub fn publishes(
    command: &str,
    id: usize,
    count: usize,
    channel_of: impl Fn(usize) -> String,
) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 0..count {
        out.extend(resp::command(&[
            command,
            &channel_of(seq),
            &payload(id, seq),
        ]));
    }
    out
}

/// `p<id>:<seq>`.
pub fn payload(id: usize, seq: usize) -> String {
    format!("p{id}:{seq}")
}

/// Parses a [`payload`] back into `(id, seq)`.
pub fn parse_payload(bytes: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (id, seq) = text.strip_prefix('p')?.split_once(':')?;
    Some((id.parse().ok()?, seq.parse().ok()?))
}

/// Tracks, per publisher, that sequence numbers arrive strictly in order
/// and without gaps.
#[derive(Default)]
pub struct OrderCheck {
    next: Vec<usize>,
    pub received: usize,
}

impl OrderCheck {
    /// Records a payload; panics (naming `who`) when it is out of order.
    pub fn record(&mut self, who: &str, payload: &[u8]) {
        let (id, seq) = parse_payload(payload)
            .unwrap_or_else(|| panic!("{who}: unexpected payload {}", resp::show(payload)));
        if self.next.len() <= id {
            self.next.resize(id + 1, 0);
        }
        assert_eq!(
            seq, self.next[id],
            "{who}: publisher {id} out of order or lost messages"
        );
        self.next[id] = seq + 1;
        self.received += 1;
    }
}

/// The payload of a `message`, `smessage` or `pmessage` frame.
pub fn delivered_payload(frame: &Frame) -> &[u8] {
    frame
        .message()
        .map(|(_, p)| p)
        .or_else(|| frame.pmessage().map(|(_, _, p)| p))
        .unwrap_or_else(|| panic!("expected a message frame, got {frame:?}"))
}
