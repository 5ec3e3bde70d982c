//! Building blocks for tests that move many messages: pipelined publishing with
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

/// Invariant 4's closing check: waits for the pipelined publishers, sends
/// each one's `end` marker on channel `end` (which `end_receivers`
/// subscribers hold, so it follows all of that publisher's messages), waits
/// for the subscriber readers, and asserts that the PUBLISH replies add up
/// to the messages received.
pub fn assert_promised_equals_received(
    publishers: Vec<JoinHandle<(RawConn, Vec<Frame>)>>,
    readers: Vec<JoinHandle<usize>>,
    end_receivers: i64,
) {
    let mut counted = 0i64;
    let mut conns = Vec::new();
    for p in publishers {
        let (conn, replies) = p.join().expect("publisher");
        counted += replies.iter().map(Frame::int).sum::<i64>();
        conns.push(conn);
    }
    for mut conn in conns {
        conn.publish("PUBLISH", "end", "end", end_receivers);
    }
    let received: usize = readers
        .into_iter()
        .map(|r| r.join().expect("subscriber"))
        .sum();
    assert_eq!(
        received as i64, counted,
        "PUBLISH replies vs messages received"
    );
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

/// Like [`publishes`] with [`padded_payload`]s, and the command chosen per
/// message too.
pub fn padded_publishes(
    id: usize,
    count: usize,
    target: impl Fn(usize) -> (&'static str, String),
) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 0..count {
        let (command, channel) = target(seq);
        out.extend(resp::command(&[
            command,
            &channel,
            &padded_payload(id, seq),
        ]));
    }
    out
}

/// `p<id>:<seq>`.
pub fn payload(id: usize, seq: usize) -> String {
    format!("p{id}:{seq}")
}

/// `p<id>:<seq>:<filler>`, with a filler of a size and content that vary
/// with `(id, seq)` (0 to 4 KiB), so truncation or mixing shows.
pub fn padded_payload(id: usize, seq: usize) -> String {
    format!("p{id}:{seq}:{}", filler(id, seq))
}

fn filler(id: usize, seq: usize) -> String {
    let len = (seq.wrapping_mul(2_654_435_761) ^ id.wrapping_mul(40_503)) % 4096;
    let first = b'a' + ((id + seq) % 26) as u8;
    (0..len)
        .map(|i| char::from(first + (i % 7) as u8))
        .collect()
}

/// Parses a [`payload`] or [`padded_payload`] back into `(id, seq)`;
/// `None` if it is neither or the filler is not the expected one.
pub fn parse_payload(bytes: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.strip_prefix('p')?.splitn(3, ':');
    let id = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    match parts.next() {
        None => Some((id, seq)),
        Some(rest) if rest == filler(id, seq) => Some((id, seq)),
        Some(_) => None,
    }
}

/// Tracks, per publisher, that sequence numbers arrive strictly in order
/// and without gaps.
#[derive(Default)]
pub struct OrderCheck {
    /// When set, sequence numbers may skip (the subscriber holds only some
    /// of the channels) but never go back or repeat.
    gaps_allowed: bool,
    next: Vec<usize>,
    pub received: usize,
}

impl OrderCheck {
    /// A check for a subscriber that holds only some of the channels a
    /// publisher sends to: numbers may skip but never go back.
    pub fn with_gaps() -> OrderCheck {
        OrderCheck {
            gaps_allowed: true,
            ..OrderCheck::default()
        }
    }

    /// Records a payload; panics (naming `who`) when it is out of order.
    pub fn record(&mut self, who: &str, payload: &[u8]) {
        let (id, seq) = parse_payload(payload)
            .unwrap_or_else(|| panic!("{who}: unexpected payload {}", resp::show(payload)));
        if self.next.len() <= id {
            self.next.resize(id + 1, 0);
        }
        if self.gaps_allowed {
            assert!(
                seq >= self.next[id],
                "{who}: publisher {id} out of order ({seq} after {})",
                self.next[id]
            );
        } else {
            assert_eq!(
                seq, self.next[id],
                "{who}: publisher {id} out of order or lost messages"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_payload_round_trips_and_detects_corruption() {
        for (id, seq) in [(0, 0), (3, 17), (7, 4095)] {
            let p = padded_payload(id, seq);
            assert_eq!(parse_payload(p.as_bytes()), Some((id, seq)));
            let mut broken = p.into_bytes();
            broken.push(b'x');
            assert_eq!(parse_payload(&broken), None);
        }
        assert_eq!(parse_payload(payload(2, 9).as_bytes()), Some((2, 9)));
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn order_check_rejects_a_repeat() {
        let mut check = OrderCheck::default();
        check.record("t", b"p0:0");
        check.record("t", b"p0:0");
    }
}
