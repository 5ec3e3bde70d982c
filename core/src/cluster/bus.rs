//! What the workers share with the server's cluster bus thread, which owns
//! the [`Cluster`] value: the latest snapshot of it (routing reads it on
//! every SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and EXEC), the way CLUSTER
//! requests reach the bus thread, and each worker's mailbox for what comes
//! back (replies, slots lost, messages forwarded by peers). In cluster mode
//! it also carries cross-node PUBLISH (see [`super::forward`]): the peers'
//! interest snapshot a PUBLISH reads, and the queue into the bus thread
//! that a PUBLISH some peer wants, and each change of a worker's
//! interest, take.
//!
//! No worker ever waits here: a request is handed over without blocking and
//! the connection that sent it parks until its reply is in the mailbox; the
//! bus thread takes a mailbox's lock only to push one item.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;

use super::forward::{ForwardStats, Kind, PeerInterest, PeerKey};
use super::{Cluster, Reply, SlotSet};
use crate::WorkerId;
use crate::frame::SharedMessage;
use crate::resp::args::Args;

/// Bytes of PUBLISH payloads and channels handed to the bus thread and not
/// taken yet, beyond which a PUBLISH is not forwarded (and counted in
/// `forward_dropped`): the bus thread has stalled.
const FORWARD_LIMIT: usize = 64 << 20;

/// What a worker hands the bus thread for cross-node PUBLISH.
#[derive(Debug)]
pub enum Forward {
    /// A PUBLISH that these peers want (an SPUBLISH for these replicas
    /// when `shard`).
    Publish {
        shard: bool,
        channel: Bytes,
        payload: Bytes,
        targets: Vec<PeerKey>,
    },
    /// A channel or pattern gained its first (`up`) or lost its last
    /// subscriber on this worker.
    Interest { kind: Kind, name: Bytes, up: bool },
    /// Announce these names to the peers as if subscribed, and post
    /// [`Mail::Reply`] to `client` once every linked peer has them.
    Hold {
        worker: WorkerId,
        client: u64,
        names: Vec<(Kind, Bytes)>,
    },
    /// The held command of `client` ran (or its connection is gone): let
    /// go of the announcement.
    Unhold { client: u64 },
}

/// A CLUSTER command on its way to the bus thread.
#[derive(Debug)]
pub struct BusRequest {
    pub worker: WorkerId,
    /// The client that waits for the reply (ids are never reused).
    pub client: u64,
    /// `CLUSTER <subcommand> ...`
    pub args: Args,
}

/// What the bus thread posts to a worker.
#[derive(Debug)]
pub enum Mail {
    /// The reply to a [`BusRequest`] of this client, or the end of its
    /// SUBSCRIBE's wait for the peers ([`Forward::Hold`]).
    Reply { client: u64, reply: Reply },
    /// These slots left this node: `sunsubscribe` the local subscribers of
    /// shard channels in them.
    LostSlots(Arc<SlotSet>),
    /// A PUBLISH forwarded by a peer: deliver it to this worker's
    /// subscribers as a local one (its weight counts in the mailbox's bytes
    /// until taken).
    Deliver(SharedMessage),
}

type Send = Box<dyn Fn(BusRequest) -> bool + std::marker::Send + Sync>;
type SendForward = Box<dyn Fn(Forward) -> bool + std::marker::Send + Sync>;

#[derive(Default)]
struct Mailbox {
    full: AtomicBool,
    items: Mutex<Vec<Mail>>,
    /// Weight of the [`Mail::Deliver`] messages waiting here.
    bytes: AtomicUsize,
}

/// Counters of cross-node PUBLISH (the bus thread and workers add).
#[derive(Default)]
struct Counters {
    publish_sent: AtomicU64,
    publish_received: AtomicU64,
    links_buffer_limit_exceeded: AtomicU64,
    forward_dropped: AtomicU64,
}

/// The workers' side of the cluster bus. Without `cluster-enabled` it stays
/// empty and [`Bus::enabled`] is false.
pub struct Bus {
    enabled: bool,
    view: ArcSwapOption<Cluster>,
    send: OnceLock<Send>,
    mail: Box<[Mailbox]>,
    forward: OnceLock<SendForward>,
    /// What each linked peer wants (rebuilt by the bus thread).
    peers: ArcSwap<PeerInterest>,
    /// Bytes handed over in [`Forward::Publish`] and not taken yet.
    forward_bytes: AtomicUsize,
    /// Links to peers that are up (a SUBSCRIBE waits for none when 0).
    linked: AtomicUsize,
    counters: Counters,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Bus {
    pub fn new(enabled: bool, workers: usize) -> Bus {
        Bus {
            enabled,
            view: ArcSwapOption::empty(),
            send: OnceLock::new(),
            mail: (0..workers).map(|_| Mailbox::default()).collect(),
            forward: OnceLock::new(),
            peers: ArcSwap::from_pointee(PeerInterest::default()),
            forward_bytes: AtomicUsize::new(0),
            linked: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    /// `cluster-enabled yes`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The latest snapshot of the cluster (None until the bus thread has
    /// published one, and always without cluster mode).
    pub fn view(&self) -> Option<Arc<Cluster>> {
        self.view.load_full()
    }

    /// A new snapshot, published by the bus thread before it answers the
    /// request that changed it (a client sees its own change at once).
    pub fn publish(&self, cluster: Arc<Cluster>) {
        self.view.store(Some(cluster));
    }

    /// Installs how requests reach the bus thread (the server does, once).
    pub fn install(&self, send: impl Fn(BusRequest) -> bool + std::marker::Send + Sync + 'static) {
        let _ = self.send.set(Box::new(send));
    }

    /// Hands a request to the bus thread without waiting; false if there is
    /// no bus thread to take it.
    pub fn request(&self, request: BusRequest) -> bool {
        self.send.get().is_some_and(|send| send(request))
    }

    /// Posts to a worker's mailbox; the caller then rings its doorbell.
    pub fn post(&self, worker: WorkerId, mail: Mail) {
        if let Some(mailbox) = self.mail.get(worker) {
            if let Mail::Deliver(m) = &mail {
                mailbox.bytes.fetch_add(m.weight(), Ordering::Relaxed);
            }
            crate::lock(&mailbox.items).push(mail);
            mailbox.full.store(true, Ordering::Release);
        }
    }

    /// Takes what waits in a worker's mailbox (one atomic load when empty).
    pub fn take(&self, worker: WorkerId) -> Vec<Mail> {
        match self.mail.get(worker) {
            Some(mailbox) if mailbox.full.swap(false, Ordering::Acquire) => {
                let mail = std::mem::take(&mut *crate::lock(&mailbox.items));
                let bytes: usize = mail
                    .iter()
                    .map(|m| match m {
                        Mail::Deliver(m) => m.weight(),
                        _ => 0,
                    })
                    .sum();
                if bytes > 0 {
                    mailbox.bytes.fetch_sub(bytes, Ordering::Relaxed);
                }
                mail
            }
            _ => Vec::new(),
        }
    }

    /// Weight of the forwarded messages waiting in a worker's mailbox: the
    /// bus thread stops reading its links while it is over its bound.
    pub fn inbound_bytes(&self, worker: WorkerId) -> usize {
        self.mail
            .get(worker)
            .map_or(0, |m| m.bytes.load(Ordering::Relaxed))
    }

    /// Installs how forwarding reaches the bus thread (the server does, once).
    pub fn install_forward(
        &self,
        send: impl Fn(Forward) -> bool + std::marker::Send + Sync + 'static,
    ) {
        let _ = self.forward.set(Box::new(send));
    }

    /// A new snapshot of the peers' interest (the bus thread's).
    pub fn set_peer_interest(&self, peers: PeerInterest) {
        self.peers.store(Arc::new(peers));
    }

    /// A PUBLISH on this node: hands it to the bus thread, without
    /// waiting, if a linked peer has subscribers for it. One snapshot load
    /// and, per peer with interest, a hash lookup and its patterns' matches.
    pub fn forward_publish(&self, channel: &[u8], payload: &[u8]) {
        let targets = {
            let peers = self.peers.load();
            if peers.is_empty() {
                return;
            }
            peers.targets(channel)
        };
        self.hand_over(false, channel, payload, targets);
    }

    /// An SPUBLISH on this node: to its replicas, if it has any.
    pub fn forward_spublish(&self, channel: &[u8], payload: &[u8]) {
        let targets = self.peers.load().replicas().to_vec();
        self.hand_over(true, channel, payload, targets);
    }

    fn hand_over(&self, shard: bool, channel: &[u8], payload: &[u8], targets: Vec<PeerKey>) {
        if targets.is_empty() {
            return;
        }
        let Some(send) = self.forward.get() else {
            return;
        };
        let bytes = channel.len() + payload.len();
        if self.forward_bytes.fetch_add(bytes, Ordering::Relaxed) > FORWARD_LIMIT {
            self.forward_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.counters
                .forward_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let item = Forward::Publish {
            shard,
            channel: Bytes::copy_from_slice(channel),
            payload: Bytes::copy_from_slice(payload),
            targets,
        };
        if !send(item) {
            self.forward_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// The bus thread took a [`Forward::Publish`] of `bytes` (channel and
    /// payload).
    pub fn forward_taken(&self, bytes: usize) {
        self.forward_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// A worker's interest in a channel or pattern changed (see [`Forward::Interest`]).
    pub fn interest(&self, kind: Kind, name: &[u8], up: bool) {
        if let Some(send) = self.forward.get() {
            let name = Bytes::copy_from_slice(name);
            send(Forward::Interest { kind, name, up });
        }
    }

    /// How many links to peers are up (the bus thread sets it).
    pub fn set_linked(&self, n: usize) {
        self.linked.store(n, Ordering::Relaxed);
    }

    /// Whether any link to a peer is up: else a SUBSCRIBE has nobody to
    /// wait for.
    pub fn linked(&self) -> bool {
        self.linked.load(Ordering::Relaxed) > 0
    }

    /// Holds a SUBSCRIBE of `client` until the peers have its new names
    /// (see [`Forward::Hold`]); false if there is no bus thread to do it.
    pub fn hold(&self, worker: WorkerId, client: u64, names: Vec<(Kind, Bytes)>) -> bool {
        self.forward.get().is_some_and(|send| {
            send(Forward::Hold {
                worker,
                client,
                names,
            })
        })
    }

    /// See [`Forward::Unhold`].
    pub fn unhold(&self, client: u64) {
        if let Some(send) = self.forward.get() {
            send(Forward::Unhold { client });
        }
    }

    pub fn count_sent(&self, n: u64) {
        self.counters.publish_sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_received(&self, n: u64) {
        self.counters
            .publish_received
            .fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_link_overflow(&self) {
        self.counters
            .links_buffer_limit_exceeded
            .fetch_add(1, Ordering::Relaxed);
    }

    /// PUBLISHes not forwarded because the bus thread had fallen more than
    /// its bound behind (INFO `cluster_forward_dropped`).
    pub fn forward_dropped(&self) -> u64 {
        self.counters.forward_dropped.load(Ordering::Relaxed)
    }

    /// The cross-node PUBLISH counters.
    pub fn forward_stats(&self) -> ForwardStats {
        let c = &self.counters;
        ForwardStats {
            publish_sent: c.publish_sent.load(Ordering::Relaxed),
            publish_received: c.publish_received.load(Ordering::Relaxed),
            links_buffer_limit_exceeded: c.links_buffer_limit_exceeded.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::forward::{Frame, PeerSet};

    /// A bus whose one peer wants `news`, and a bus thread that never takes
    /// what it is handed: the hand-over stops at its bound in bytes.
    #[test]
    fn publishes_past_the_bound_of_a_stalled_bus_thread_are_dropped_and_counted() {
        let bus = Bus::new(true, 1);
        let mut peer = PeerSet::default();
        peer.apply(Frame::Sub {
            kind: Kind::Channel,
            name: Bytes::from_static(b"news"),
        });
        bus.set_peer_interest(PeerInterest::new([(1, Arc::new(peer))], Vec::new()));
        let held = Arc::new(Mutex::new(0usize));
        let queued = held.clone();
        bus.install_forward(move |item| {
            if let Forward::Publish { .. } = item {
                *queued.lock().unwrap() += 1;
            }
            true
        });
        let channel = Bytes::from_static(b"news");
        let payload = Bytes::from(vec![b'x'; 1 << 20]);
        for _ in 0..70 {
            bus.forward_publish(&channel, &payload);
        }
        // Up to 64 MiB of 1 MiB payloads (plus the channel) pass; the rest
        // would wait for nobody and are dropped.
        let passed = *held.lock().unwrap();
        assert_eq!(passed, 64);
        assert_eq!(bus.forward_dropped(), 70 - 64);
        // Once the bus thread takes them, forwarding resumes.
        for _ in 0..passed {
            bus.forward_taken(channel.len() + payload.len());
        }
        bus.forward_publish(&channel, &payload);
        assert_eq!(*held.lock().unwrap(), passed + 1);
        // A channel no peer wants is not handed over at all.
        bus.forward_publish(&Bytes::from_static(b"other"), &payload);
        assert_eq!(*held.lock().unwrap(), passed + 1);
        assert_eq!(bus.forward_dropped(), 6);
    }
}
