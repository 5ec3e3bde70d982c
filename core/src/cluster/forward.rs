//! Cross-node PUBLISH, the sans-IO part: the frames nodes exchange on
//! their node-to-node links, which channels and patterns this node has
//! subscribers for ([`LocalInterest`]), what each peer told it it wants
//! ([`PeerSet`], gathered into the [`PeerInterest`] snapshot the workers
//! read on every PUBLISH), and how a forwarded message becomes a local
//! delivery ([`inbound_message`]). The links themselves (TCP beside the
//! gossip port) live in the server's `cluster::links`.
//!
//! Forwarding is interest-based, as NATS routes are: a node tells each
//! peer the channels and patterns it has local subscribers for (the whole
//! set when its link comes up, then a [`Frame::Sub`] / [`Frame::Unsub`]
//! each time one gains its first or loses its last subscriber on the node),
//! and a PUBLISH goes only to the peers that want it. A forwarded message is
//! delivered to the receiving node's local subscribers and never forwarded
//! again (one hop). SPUBLISH goes to this node's replicas only, as Redis
//! sends it to the shard (a replica serves SSUBSCRIBE for its master's
//! slots), unconditionally.
//!
//! Guarantees:
//!
//! 1. **Order.** Messages of one publisher connection on one channel reach
//!    every subscriber on every node in publish order: they take one FIFO
//!    path (the publisher's worker → the bus thread → one TCP link → the
//!    peer's bus thread → its workers' mailboxes).
//! 2. **At most once.** A message is written to a link once and never
//!    retried. When a peer's outgoing queue passes its bound in bytes the
//!    link is dropped (counted in `total_cluster_links_buffer_limit_exceeded`)
//!    and dialled again; what was queued for it, and what is published for
//!    it while it is down, is lost, never duplicated. The peer's interest is
//!    sent again in full on the new link.
//! 3. **Visibility.** A SUBSCRIBE or PSUBSCRIBE naming a channel or pattern
//!    that has no subscriber yet on the worker is held before it subscribes:
//!    the bus thread announces the names to every linked peer, followed by
//!    a [`Frame::Sync`], and the command runs (subscribes and replies) once
//!    each of those peers has answered [`Frame::Ack`], which it does only
//!    after the interest is in the snapshot its workers read. So a PUBLISH
//!    on any node that starts after the SUBSCRIBE reply was sent is
//!    forwarded to it. Bounded: a peer whose link goes down, or that has not
//!    answered after [`HOLD_FOR`], is not waited for; a peer whose link is
//!    not up yet (just met, or redialling) is not waited for either, and
//!    gets the interest with the rest when its link comes up.
//! 4. **Counts.** The PUBLISH reply counts the receivers on the node the
//!    PUBLISH was sent to, as Redis Cluster's does.
//!
//! The frame: a 9-byte header, `type` (u8), then two big-endian u32
//! lengths `a` and `b`, then `a` bytes and `b` bytes. `Publish` carries
//! channel and payload, `Hello` the sender's node id, `Sub`/`Unsub` a
//! channel or pattern, `Sync`/`Ack` an 8-byte token (the held SUBSCRIBE's
//! client id).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::frame::Message;
use crate::glob;
use crate::registry::{Lookup, Namespace, Registry, WorkerSet};

/// How long a SUBSCRIBE reply is held at most for peers to acknowledge
/// its interest.
pub const HOLD_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes of a frame header.
pub const HEADER: usize = 9;
/// The largest frame accepted (Redis's `proto-max-bulk-len` is 512 MiB
/// per argument; a channel and a payload each fit).
pub const MAX_FRAME: usize = (1 << 30) + HEADER;

const HELLO: u8 = 1;
const SUB_CHANNEL: u8 = 2;
const SUB_PATTERN: u8 = 3;
const UNSUB_CHANNEL: u8 = 4;
const UNSUB_PATTERN: u8 = 5;
const PUBLISH: u8 = 6;
const SYNC: u8 = 7;
const ACK: u8 = 8;
const SPUBLISH: u8 = 9;

/// What an interest is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Channel,
    Pattern,
}

/// One frame on a node-to-node link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first frame on a link: who dialled.
    Hello { id: Bytes },
    /// The sender has subscribers of this channel or pattern now.
    Sub { kind: Kind, name: Bytes },
    /// The sender's last subscriber of it left.
    Unsub { kind: Kind, name: Bytes },
    /// A PUBLISH on the sender, for the receiver's local subscribers.
    Publish { channel: Bytes, payload: Bytes },
    /// An SPUBLISH on a master, for the local subscribers of its replica.
    ShardPublish { channel: Bytes, payload: Bytes },
    /// Answer [`Frame::Ack`] once everything before this is in effect.
    Sync { token: u64 },
    /// The answer to [`Frame::Sync`], written back on the same link.
    Ack { token: u64 },
}

/// A malformed link stream: the link is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("frame type {0} with a body of the wrong length")]
    BadLength(u8),
}

fn header(out: &mut BytesMut, kind: u8, a: usize, b: usize) {
    out.put_u8(kind);
    // Lengths over u32 never reach here: names and payloads are bounded by
    // the client protocol far below 4 GiB.
    out.put_u32(a as u32);
    out.put_u32(b as u32);
}

impl Frame {
    /// Appends the frame's bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Hello { id } => {
                header(out, HELLO, id.len(), 0);
                out.put_slice(id);
            }
            Frame::Sub { kind, name } | Frame::Unsub { kind, name } => {
                let sub = matches!(self, Frame::Sub { .. });
                let t = match (sub, kind) {
                    (true, Kind::Channel) => SUB_CHANNEL,
                    (true, Kind::Pattern) => SUB_PATTERN,
                    (false, Kind::Channel) => UNSUB_CHANNEL,
                    (false, Kind::Pattern) => UNSUB_PATTERN,
                };
                header(out, t, name.len(), 0);
                out.put_slice(name);
            }
            Frame::Publish { channel, payload } | Frame::ShardPublish { channel, payload } => {
                let t = if matches!(self, Frame::Publish { .. }) {
                    PUBLISH
                } else {
                    SPUBLISH
                };
                out.reserve(HEADER + channel.len() + payload.len());
                header(out, t, channel.len(), payload.len());
                out.put_slice(channel);
                out.put_slice(payload);
            }
            Frame::Sync { token } | Frame::Ack { token } => {
                let t = if matches!(self, Frame::Sync { .. }) {
                    SYNC
                } else {
                    ACK
                };
                header(out, t, 8, 0);
                out.put_u64(*token);
            }
        }
    }

    /// The frame's bytes, in one buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Takes one whole frame off the front of `buf`; `Ok(None)` while it
    /// is still incomplete.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        let t = buf[0];
        if !(HELLO..=SPUBLISH).contains(&t) {
            return Err(FrameError::UnknownType(t));
        }
        let a = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        let b = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) as usize;
        let total = HEADER.saturating_add(a).saturating_add(b);
        if total > MAX_FRAME {
            return Err(FrameError::TooLarge(total));
        }
        if matches!(t, SYNC | ACK) && (a != 8 || b != 0) {
            return Err(FrameError::BadLength(t));
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER);
        let first = buf.split_to(a).freeze();
        let second = buf.split_to(b).freeze();
        let name = first;
        Ok(Some(match t {
            HELLO => Frame::Hello { id: name },
            SUB_CHANNEL => Frame::Sub {
                kind: Kind::Channel,
                name,
            },
            SUB_PATTERN => Frame::Sub {
                kind: Kind::Pattern,
                name,
            },
            UNSUB_CHANNEL => Frame::Unsub {
                kind: Kind::Channel,
                name,
            },
            UNSUB_PATTERN => Frame::Unsub {
                kind: Kind::Pattern,
                name,
            },
            SYNC | ACK => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&name);
                let token = u64::from_be_bytes(bytes);
                if t == SYNC {
                    Frame::Sync { token }
                } else {
                    Frame::Ack { token }
                }
            }
            SPUBLISH => Frame::ShardPublish {
                channel: name,
                payload: second,
            },
            _ => Frame::Publish {
                channel: name,
                payload: second,
            },
        }))
    }
}

/// The channels and patterns this node has subscribers for: per name, how
/// many workers hold one. A worker reports a name when it gains its first
/// subscriber of it and when it loses its last; the node-level change
/// (first worker in, last worker out) is what peers are told.
#[derive(Debug, Default)]
pub struct LocalInterest {
    counts: HashMap<(Kind, Bytes), u32>,
}

impl LocalInterest {
    /// A worker gained (`up`) or lost interest in `name`: the frame to send
    /// every peer when the node's interest changed.
    pub fn apply(&mut self, kind: Kind, name: Bytes, up: bool) -> Option<Frame> {
        if up {
            let n = self.counts.entry((kind, name.clone())).or_insert(0);
            *n += 1;
            (*n == 1).then_some(Frame::Sub { kind, name })
        } else {
            let key = (kind, name);
            let n = self.counts.get_mut(&key)?;
            *n -= 1;
            if *n > 0 {
                return None;
            }
            let ((kind, name), _) = self.counts.remove_entry(&key)?;
            Some(Frame::Unsub { kind, name })
        }
    }

    /// Every interest, as the frames a new link starts with.
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        self.counts.keys().map(|(kind, name)| Frame::Sub {
            kind: *kind,
            name: name.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// What one peer wants: the channels and patterns it has subscribers for.
#[derive(Debug, Default, Clone)]
pub struct PeerSet {
    channels: std::collections::HashSet<Bytes, foldhash::fast::RandomState>,
    patterns: Vec<Bytes>,
}

impl PeerSet {
    /// Applies a `Sub` or `Unsub` frame; false for any other frame.
    pub fn apply(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::Sub {
                kind: Kind::Channel,
                name,
            } => {
                self.channels.insert(name);
            }
            Frame::Unsub {
                kind: Kind::Channel,
                name,
            } => {
                self.channels.remove(&name);
            }
            Frame::Sub {
                kind: Kind::Pattern,
                name,
            } => {
                if !self.patterns.contains(&name) {
                    self.patterns.push(name);
                }
            }
            Frame::Unsub {
                kind: Kind::Pattern,
                name,
            } => self.patterns.retain(|p| *p != name),
            _ => return false,
        }
        true
    }

    /// Whether a PUBLISH to `channel` has a subscriber on the peer.
    pub fn wants(&self, channel: &[u8]) -> bool {
        self.channels.contains(channel) || self.patterns.iter().any(|p| glob::matches(p, channel))
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty()
    }
}

/// A peer as the workers know it: a small number the bus thread gave it.
pub type PeerKey = u32;

/// Every linked peer's interest: the snapshot workers read (lock-free) on
/// each PUBLISH in cluster mode, rebuilt by the bus thread when a peer's
/// interest changes.
#[derive(Debug, Default)]
pub struct PeerInterest {
    peers: Vec<(PeerKey, Arc<PeerSet>)>,
    /// This node's replicas: every SPUBLISH here goes to them, as Redis
    /// propagates it to the shard (a replica serves SSUBSCRIBE).
    replicas: Vec<PeerKey>,
}

impl PeerInterest {
    pub fn new(
        peers: impl IntoIterator<Item = (PeerKey, Arc<PeerSet>)>,
        replicas: Vec<PeerKey>,
    ) -> PeerInterest {
        PeerInterest {
            peers: peers.into_iter().filter(|(_, s)| !s.is_empty()).collect(),
            replicas,
        }
    }

    /// Where an SPUBLISH on this node goes.
    pub fn replicas(&self) -> &[PeerKey] {
        &self.replicas
    }

    /// The peers that want a PUBLISH to `channel` (allocates only when
    /// there is one).
    pub fn targets(&self, channel: &[u8]) -> Vec<PeerKey> {
        self.peers
            .iter()
            .filter(|(_, set)| set.wants(channel))
            .map(|(key, _)| *key)
            .collect()
    }

    /// No peer wants any PUBLISH.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// A message forwarded by a peer, built for this node's subscribers as a
/// local PUBLISH would build it (one lookup, frames encoded once), and the
/// workers that hold its subscribers. None when nobody here subscribes.
pub fn inbound_message(
    registry: &Registry,
    ns: Namespace,
    channel: Bytes,
    payload: &[u8],
    lookup: &mut Lookup,
) -> Option<(Message, WorkerSet)> {
    registry.lookup(ns, &channel, lookup);
    let mut workers = lookup.channel.workers;
    let mut count = lookup.channel.count;
    for p in &lookup.patterns {
        workers = WorkerSet(workers.0 | p.hits.workers.0);
        count += p.hits.count;
    }
    if count == 0 {
        return None;
    }
    let message = Message::new(
        ns,
        &channel,
        payload,
        lookup.channel.count > 0,
        lookup.patterns.iter().map(|p| p.pattern.clone()),
        None,
        lookup.seqs(),
        lookup.stride(),
    );
    Some((message, workers))
}

/// Node-to-node PUBLISH counters, for CLUSTER INFO.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ForwardStats {
    /// Messages written to peers (one per peer per message).
    pub publish_sent: u64,
    /// Messages read from peers.
    pub publish_received: u64,
    /// Links dropped because their outgoing queue passed its bound.
    pub links_buffer_limit_exceeded: u64,
}

/// CLUSTER INFO with the forwarding counters: Redis's
/// `cluster_stats_messages_publish_sent` / `_received` lines (present only
/// when not zero, after the totals they add to, as Redis prints them) and
/// `total_cluster_links_buffer_limit_exceeded`.
pub fn splice_info(text: &str, stats: ForwardStats) -> String {
    let mut out = String::with_capacity(text.len() + 96);
    for line in text.split_inclusive("\r\n") {
        let (key, value) = line
            .trim_end_matches("\r\n")
            .split_once(':')
            .unwrap_or((line, ""));
        let base: u64 = value.parse().unwrap_or(0);
        let (total, extra) = match key {
            "cluster_stats_messages_sent" => (
                base + stats.publish_sent,
                Some(("cluster_stats_messages_publish_sent", stats.publish_sent)),
            ),
            "cluster_stats_messages_received" => (
                base + stats.publish_received,
                Some((
                    "cluster_stats_messages_publish_received",
                    stats.publish_received,
                )),
            ),
            "total_cluster_links_buffer_limit_exceeded" => {
                (base + stats.links_buffer_limit_exceeded, None)
            }
            _ => {
                out.push_str(line);
                continue;
            }
        };
        out.push_str(&format!("{key}:{total}\r\n"));
        if let Some((name, n)) = extra
            && n > 0
        {
            out.push_str(&format!("{name}:{n}\r\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn every_frame() -> Vec<Frame> {
        vec![
            Frame::Hello { id: b("abc") },
            Frame::Sub {
                kind: Kind::Channel,
                name: b("news"),
            },
            Frame::Sub {
                kind: Kind::Pattern,
                name: b("n*"),
            },
            Frame::Unsub {
                kind: Kind::Channel,
                name: b("news"),
            },
            Frame::Unsub {
                kind: Kind::Pattern,
                name: b(""),
            },
            Frame::Publish {
                channel: b("news"),
                payload: b("hello\r\nworld"),
            },
            Frame::Publish {
                channel: b(""),
                payload: b(""),
            },
            Frame::ShardPublish {
                channel: b("{a}b"),
                payload: b("x"),
            },
            Frame::Sync { token: 7 },
            Frame::Ack { token: u64::MAX },
        ]
    }

    #[test]
    fn frames_round_trip_whole_and_byte_by_byte() {
        let frames = every_frame();
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        let mut whole = wire.clone();
        let mut got = Vec::new();
        while let Some(f) = Frame::decode(&mut whole).expect("valid") {
            got.push(f);
        }
        assert_eq!(got, frames);
        assert!(whole.is_empty());

        let mut trickle = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire.iter() {
            trickle.put_u8(*byte);
            while let Some(f) = Frame::decode(&mut trickle).expect("valid") {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn the_publish_header_is_nine_bytes() {
        let f = Frame::Publish {
            channel: b("ch"),
            payload: b("xyz"),
        };
        assert_eq!(&f.to_bytes()[..], b"\x06\0\0\0\x02\0\0\0\x03chxyz");
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut buf = BytesMut::from(&b"\x0a\0\0\0\0\0\0\0\0"[..]);
        assert_eq!(Frame::decode(&mut buf), Err(FrameError::UnknownType(10)));
        let mut buf = BytesMut::from(&b"\x06\xff\xff\xff\xff\xff\xff\xff\xff"[..]);
        assert!(matches!(
            Frame::decode(&mut buf),
            Err(FrameError::TooLarge(_))
        ));
        let mut buf = BytesMut::from(&b"\x07\0\0\0\x01\0\0\0\0x"[..]);
        assert_eq!(Frame::decode(&mut buf), Err(FrameError::BadLength(7)));
        let mut buf = BytesMut::from(&b"\x06\0\0"[..]);
        assert_eq!(Frame::decode(&mut buf), Ok(None));
    }

    #[test]
    fn local_interest_changes_on_first_worker_in_and_last_out() {
        let mut local = LocalInterest::default();
        let sub = Frame::Sub {
            kind: Kind::Channel,
            name: b("a"),
        };
        assert_eq!(local.apply(Kind::Channel, b("a"), true), Some(sub.clone()));
        assert_eq!(local.apply(Kind::Channel, b("a"), true), None);
        // A pattern of the same text is another interest.
        assert!(local.apply(Kind::Pattern, b("a"), true).is_some());
        assert_eq!(local.frames().count(), 2);
        assert_eq!(local.apply(Kind::Channel, b("a"), false), None);
        assert_eq!(
            local.apply(Kind::Channel, b("a"), false),
            Some(Frame::Unsub {
                kind: Kind::Channel,
                name: b("a"),
            })
        );
        // A loss never reported as a gain changes nothing.
        assert_eq!(local.apply(Kind::Channel, b("zz"), false), None);
        assert_eq!(local.len(), 1);
    }

    #[test]
    fn peer_interest_targets_exact_channels_and_matching_patterns() {
        let mut one = PeerSet::default();
        one.apply(Frame::Sub {
            kind: Kind::Channel,
            name: b("news"),
        });
        let mut two = PeerSet::default();
        two.apply(Frame::Sub {
            kind: Kind::Pattern,
            name: b("n?ws"),
        });
        let three = PeerSet::default();
        let view = PeerInterest::new(
            [
                (1, Arc::new(one.clone())),
                (2, Arc::new(two.clone())),
                (3, Arc::new(three)),
            ],
            vec![3],
        );
        assert_eq!(view.replicas(), &[3]);
        assert_eq!(view.targets(b"news"), vec![1, 2]);
        assert_eq!(view.targets(b"nows"), vec![2]);
        assert!(view.targets(b"other").is_empty());

        two.apply(Frame::Unsub {
            kind: Kind::Pattern,
            name: b("n?ws"),
        });
        assert!(two.is_empty());
        let view = PeerInterest::new([(1, Arc::new(one)), (2, Arc::new(two))], Vec::new());
        assert_eq!(view.targets(b"nows"), Vec::<PeerKey>::new());
        assert_eq!(view.targets(b"news"), vec![1]);
    }

    #[test]
    fn cluster_info_gets_the_publish_counters_where_redis_prints_them() {
        let text = "cluster_state:ok\r\n\
                    cluster_stats_messages_sent:0\r\n\
                    cluster_stats_messages_received:0\r\n\
                    total_cluster_links_buffer_limit_exceeded:0\r\n";
        assert_eq!(splice_info(text, ForwardStats::default()), text);
        let stats = ForwardStats {
            publish_sent: 3,
            publish_received: 0,
            links_buffer_limit_exceeded: 1,
        };
        assert_eq!(
            splice_info(text, stats),
            "cluster_state:ok\r\n\
             cluster_stats_messages_sent:3\r\n\
             cluster_stats_messages_publish_sent:3\r\n\
             cluster_stats_messages_received:0\r\n\
             total_cluster_links_buffer_limit_exceeded:1\r\n"
        );
    }
}
