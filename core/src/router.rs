//! One worker's publish/subscribe router: its connections' subscriptions,
//! and the way a publish finds its subscribers on every worker.
//!
//! Subscribing records the connection in the worker's local index
//! (channel or pattern → this worker's subscribers) and counts it in the
//! shared [`Registry`](crate::registry::Registry), which is what publishers
//! on every worker consult. Publishing ([`Router::publish`]) looks the
//! channel up in the registry, builds the message's frames once, pushes a
//! shared reference into the ring of every other worker that holds
//! subscribers, and keeps it for this worker's own subscribers, whom the hub
//! serves once the command is done ([`Router::take_local`],
//! [`Router::recipients`]). A worker receiving a message from a ring consults
//! only its local index.
//!
//! The router knows connections only by their [`ConnKey`]; their output
//! queues belong to the hub.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hashbrown::HashTable;
use indexmap::IndexMap;

use crate::WorkerId;
use crate::cluster::forward;
use crate::frame::{FrameRef, Message, SharedMessage};
use crate::mesh::{Endpoint, Fence};
use crate::registry::{Lookup, Name, Namespace, WorkerSet, widen_seq};
use crate::session::{Session, Subscriptions};
use crate::shared::Shared;

/// A connection's handle inside its worker.
pub type ConnKey = usize;

/// One in this many messages that cross workers carries its publish time
/// for the delivery latency histogram (the first one always does).
pub const LATENCY_SAMPLE_EVERY: u64 = 32;

type Fast = foldhash::fast::RandomState;

/// Subscription sets larger than this give memory back once three quarters
/// empty; smaller ones are not worth a rehash (nor an allocation per
/// subscribe/unsubscribe churn).
const SHRINK_ABOVE: usize = 256;

/// A name's subscribers on this worker, each with the sequence number of
/// its subscription (see [`Router::subscribe`]). Most channels have one
/// subscriber per worker: it is held inline, with no allocation; a set
/// holds two or more.
enum Subscribers {
    One { conn: u32, seq: u64 },
    Many(Box<IndexMap<ConnKey, u64, Fast>>),
}

impl Subscribers {
    fn new(conn: ConnKey, seq: u64) -> Self {
        match u32::try_from(conn) {
            Ok(conn) => Subscribers::One { conn, seq },
            Err(_) => Subscribers::Many(Box::new(IndexMap::from_iter([(conn, seq)]))),
        }
    }

    fn insert(&mut self, conn: ConnKey, seq: u64) {
        match self {
            Subscribers::One {
                conn: held,
                seq: at,
            } if *held as ConnKey == conn => *at = seq,
            Subscribers::One {
                conn: held,
                seq: at,
            } => {
                let first = (*held as ConnKey, *at);
                *self = Subscribers::Many(Box::new(IndexMap::from_iter([first, (conn, seq)])));
            }
            Subscribers::Many(set) => {
                set.insert(conn, seq);
            }
        }
    }

    /// Removes `conn`; true when no subscriber is left.
    fn remove(&mut self, conn: ConnKey) -> bool {
        match self {
            Subscribers::One { conn: held, .. } => *held as ConnKey == conn,
            Subscribers::Many(set) => {
                // Order among a channel's subscribers carries no meaning: O(1).
                set.swap_remove(&conn);
                if set.len() == 1
                    && let Some((&last, &seq)) = set.first()
                    && let Ok(last) = u32::try_from(last)
                {
                    *self = Subscribers::One { conn: last, seq };
                    return false;
                }
                if set.capacity() > SHRINK_ABOVE && set.len() * 4 < set.capacity() {
                    set.shrink_to_fit();
                }
                set.is_empty()
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (ConnKey, u64)> + '_ {
        let (one, many) = match self {
            Subscribers::One { conn, seq } => (Some((*conn as ConnKey, *seq)), None),
            Subscribers::Many(set) => (None, Some(set.iter().map(|(&c, &s)| (c, s)))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// One channel's, shard channel's or pattern's subscribers on this worker,
/// under the name the registry holds (no copy of it).
struct Local {
    name: Name,
    subs: Subscribers,
}

/// Locals by the registry hash of their names.
type Index = HashTable<Local>;

/// Names looked up together when a command drops many
/// ([`Router::unsubscribe_each`]).
const BATCH: usize = 16;

fn name_hash(local: &Local) -> u64 {
    local.name.hash_value()
}

/// What a subscription is to: a channel in one of the two channel
/// namespaces, or a pattern (patterns only see global publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    Channel(Namespace),
    Pattern,
}

/// The subscriptions of one kind a session holds.
pub fn held_mut(session: &mut Session, kind: SubKind) -> &mut Subscriptions {
    match kind {
        SubKind::Channel(Namespace::Global) => &mut session.channels,
        SubKind::Channel(Namespace::Shard) => &mut session.shard_channels,
        SubKind::Pattern => &mut session.patterns,
    }
}

/// Cluster mode: this worker gained its first or lost its last subscriber
/// of a channel or pattern, which the bus thread tells the peers (shard
/// channels are never forwarded). One branch when cluster mode is off.
fn interest_changed(shared: &Shared, kind: SubKind, name: &[u8], up: bool) {
    if !shared.cluster.enabled() {
        return;
    }
    let kind = match kind {
        SubKind::Channel(Namespace::Global) => forward::Kind::Channel,
        SubKind::Pattern => forward::Kind::Pattern,
        SubKind::Channel(Namespace::Shard) => return,
    };
    shared.cluster.interest(kind, name, up);
}

/// This worker's subscribers of each channel, shard channel and pattern.
#[derive(Default)]
struct LocalIndex {
    channels: Index,
    shard: Index,
    patterns: Index,
}

impl LocalIndex {
    fn map(&mut self, kind: SubKind) -> &mut Index {
        match kind {
            SubKind::Channel(Namespace::Global) => &mut self.channels,
            SubKind::Channel(Namespace::Shard) => &mut self.shard,
            SubKind::Pattern => &mut self.patterns,
        }
    }

    /// Adds a subscriber; true if it is the name's first on this worker.
    fn add(&mut self, kind: SubKind, name: Name, conn: ConnKey, seq: u64) -> bool {
        let map = self.map(kind);
        match map.find_mut(name.hash_value(), |l| l.name == name) {
            Some(local) => {
                local.subs.insert(conn, seq);
                false
            }
            None => {
                let subs = Subscribers::new(conn, seq);
                map.insert_unique(name.hash_value(), Local { name, subs }, name_hash);
                true
            }
        }
    }

    /// Removes a subscriber; true if it was the name's last on this worker.
    fn remove(&mut self, kind: SubKind, name: &Name, conn: ConnKey) -> bool {
        let last = self.remove_unshrunk(kind, name, conn);
        self.shrink(kind);
        last
    }

    /// [`LocalIndex::remove`] keeping the room: for many removals, then
    /// one [`LocalIndex::shrink`].
    fn remove_unshrunk(&mut self, kind: SubKind, name: &Name, conn: ConnKey) -> bool {
        let map = self.map(kind);
        let Ok(mut local) = map.find_entry(name.hash_value(), |l| l.name == *name) else {
            return false;
        };
        if !local.get_mut().subs.remove(conn) {
            return false;
        }
        local.remove();
        true
    }

    /// [`LocalIndex::remove_unshrunk`] for a batch of names (at most
    /// [`BATCH`]), all found before any is removed so that their cache
    /// misses overlap; `last` is told each name `conn` was the last
    /// subscriber of on this worker.
    fn remove_batch(
        &mut self,
        kind: SubKind,
        names: &[Name],
        conn: ConnKey,
        mut last: impl FnMut(&Name),
    ) {
        let map = self.map(kind);
        let mut at = [None; BATCH];
        for (at, name) in at.iter_mut().zip(names) {
            *at = map.find_bucket_index(name.hash_value(), |l| l.name == *name);
        }
        for (name, at) in names.iter().zip(at) {
            let Some(Ok(mut local)) = at.map(|i| map.get_bucket_entry(i)) else {
                continue;
            };
            if local.get_mut().subs.remove(conn) {
                local.remove();
                last(name);
            }
        }
    }

    /// Gives the memory back once mostly empty (amortised over the
    /// removals): a worker that once held a million channels does not keep
    /// room for them.
    fn shrink(&mut self, kind: SubKind) {
        let map = self.map(kind);
        if map.capacity() > SHRINK_ABOVE && map.len() * 4 < map.capacity() {
            map.shrink_to_fit(name_hash);
        }
    }

    /// Removes `conn` from the subscribers of every name of `kind` it
    /// holds, `names` (the session's set of them); `last` is told each name
    /// it was the last subscriber of on this worker.
    fn remove_conn(
        &mut self,
        kind: SubKind,
        conn: ConnKey,
        names: &Subscriptions,
        mut last: impl FnMut(&Name),
    ) {
        if names.len() * 2 < self.map(kind).len() {
            for name in names.iter() {
                if self.remove_unshrunk(kind, name, conn) {
                    last(name);
                }
            }
            self.shrink(kind);
            return;
        }
        let map = self.map(kind);
        // Most of the index is the connection's: one pass over it beats a
        // search per name. The names `conn` subscribes to in the index are
        // the ones its session holds.
        map.retain(|local| {
            let gone = local.subs.remove(conn);
            if gone {
                last(&local.name);
            }
            !gone
        });
        self.shrink(kind);
    }

    /// This worker's subscribers of `name` (of hash `hash`) in `map`.
    fn find<'a>(map: &'a Index, hash: u64, name: &[u8]) -> Option<&'a Subscribers> {
        map.find(hash, |l| l.name[..] == *name).map(|l| &l.subs)
    }

    /// [`LocalIndex::find`] for a registry name: no hashing, and no bytes
    /// compared when the index holds that very entry.
    fn find_name<'a>(map: &'a Index, name: &Name) -> Option<&'a Subscribers> {
        map.find(name.hash_value(), |l| l.name == *name)
            .map(|l| &l.subs)
    }
}

/// A subscriber of a message and the frame it gets.
pub struct Recipient<'a> {
    pub conn: ConnKey,
    pub frame: FrameRef<'a>,
}

pub struct Router {
    worker: WorkerId,
    shared: Arc<Shared>,
    endpoint: Endpoint<SharedMessage>,
    local: LocalIndex,
    /// Scratch for registry lookups, reused by every publish.
    lookup: Lookup,
    /// Messages published by this worker's connections that have
    /// subscribers here too; the hub delivers them after the command.
    local_pending: Vec<SharedMessage>,
    /// Messages this worker sent to other workers (latency sampling).
    crossings: u64,
    /// Sequence number of this worker's latest subscribe (0: none yet).
    /// Every subscription gets the next one, and the registry keeps, per
    /// channel and worker, the one of the latest: so a message can say which
    /// of a worker's subscriptions its PUBLISH counted (registry invariant 6).
    seq: u64,
    /// The worker's output backlog is over its limit (`hub::backlog`): local
    /// deliveries wait, and so do the rings into this worker.
    congested: bool,
    /// The workers the publishes since the last [`Router::take_route`]
    /// were handed to (this one for its own subscribers): where a
    /// publisher's messages go (`hub::placement`).
    routed: WorkerSet,
}

impl Router {
    pub fn new(worker: WorkerId, shared: Arc<Shared>, endpoint: Endpoint<SharedMessage>) -> Self {
        Router {
            worker,
            shared,
            endpoint,
            local: LocalIndex::default(),
            lookup: Lookup::default(),
            local_pending: Vec::new(),
            crossings: 0,
            seq: 0,
            congested: false,
            routed: WorkerSet(0),
        }
    }

    /// Subscribe `conn` (whose session is `session`); false if it already held it.
    pub fn subscribe(
        &mut self,
        conn: ConnKey,
        session: &mut Session,
        kind: SubKind,
        name: &[u8],
    ) -> bool {
        let registry = &self.shared.registry;
        let held = held_mut(session, kind);
        if held.contains(registry.name_ref(name)) {
            return false;
        }
        self.seq += 1;
        if self.seq as u32 == 0 {
            // A lookup reports 0 for a worker it counted nobody of: no
            // subscription gets a sequence that looks like that.
            self.seq += 1;
        }
        let seq = self.seq;
        // Invariant 1 (visible before confirmed): the registry counts the
        // subscriber before the caller writes the confirmation. The name
        // it returns is its own copy (so the subscription never pins the
        // read buffer it was parsed from), shared by every holder.
        let raw = name;
        let name = match kind {
            SubKind::Channel(ns) => registry.subscribe_name(ns, raw, self.worker, seq),
            SubKind::Pattern => registry.psubscribe_name(raw, self.worker, seq),
        };
        held.insert(name.clone());
        if self.local.add(kind, name, conn, seq) {
            interest_changed(&self.shared, kind, raw, true);
        }
        true
    }

    /// Whether this worker has a subscriber of `name` (of `kind`).
    pub fn has_local(&self, kind: SubKind, name: &[u8]) -> bool {
        let map = match kind {
            SubKind::Channel(Namespace::Global) => &self.local.channels,
            SubKind::Channel(Namespace::Shard) => &self.local.shard,
            SubKind::Pattern => &self.local.patterns,
        };
        LocalIndex::find(map, self.shared.registry.hash(name), name).is_some()
    }

    /// Unsubscribe `conn` from one channel or pattern; false if it did not hold it.
    pub fn unsubscribe(
        &mut self,
        conn: ConnKey,
        session: &mut Session,
        kind: SubKind,
        name: &[u8],
    ) -> bool {
        let held = held_mut(session, kind);
        let Some(name) = held.take(self.shared.registry.name_ref(name)) else {
            return false;
        };
        self.forget(conn, kind, &name);
        true
    }

    /// Unsubscribe `conn` from each of `names`, in order (UNSUBSCRIBE with
    /// arguments). After each step `each(name, left)` is told how many
    /// subscriptions of this kind the connection still holds: what that
    /// step's confirmation counts. The index and the registry let go of
    /// them all together once every step is done, before this returns (so
    /// before any confirmation can be sent: invariant 2).
    pub fn unsubscribe_each<'n>(
        &mut self,
        conn: ConnKey,
        session: &mut Session,
        kind: SubKind,
        names: impl IntoIterator<Item = &'n [u8]>,
        mut each: impl FnMut(&[u8], usize),
    ) {
        let registry = &self.shared.registry;
        let held = held_mut(session, kind);
        let mut gone = Vec::new();
        let mut names = names.into_iter().peekable();
        while names.peek().is_some() {
            let mut batch: [&[u8]; BATCH] = [&[]; BATCH];
            let mut len = 0;
            for (slot, name) in batch.iter_mut().zip(names.by_ref()) {
                *slot = name;
                len += 1;
            }
            let batch = &batch[..len];
            // Find the whole batch, then take it: the lookups do not depend
            // on each other, so their cache misses overlap.
            let mut at = [None; BATCH];
            for (at, name) in at.iter_mut().zip(batch) {
                *at = held.find_index(registry.name_ref(name));
            }
            for (&name, at) in batch.iter().zip(at) {
                if let Some(held_name) = at.and_then(|i| held.take_at(i)) {
                    gone.push(held_name);
                }
                each(name, held.len());
            }
        }
        held.shrink();
        self.forget_all(conn, kind, &gone);
    }

    /// Remove every subscription of one kind and return them, in no
    /// particular order (UNSUBSCRIBE without arguments).
    pub fn unsubscribe_kind(
        &mut self,
        conn: ConnKey,
        session: &mut Session,
        kind: SubKind,
    ) -> Subscriptions {
        let held = std::mem::take(held_mut(session, kind));
        let shared = &self.shared;
        self.local.remove_conn(kind, conn, &held, |name| {
            interest_changed(shared, kind, name, false);
        });
        let registry = &self.shared.registry;
        match kind {
            SubKind::Channel(ns) => registry.unsubscribe_names(ns, held.iter(), self.worker),
            SubKind::Pattern => registry.punsubscribe_names(held.iter(), self.worker),
        }
        held
    }

    /// Drop every subscription of `conn` without confirmations (RESET, close).
    pub fn unsubscribe_all(&mut self, conn: ConnKey, session: &mut Session) {
        for kind in [
            SubKind::Channel(Namespace::Global),
            SubKind::Channel(Namespace::Shard),
            SubKind::Pattern,
        ] {
            self.unsubscribe_kind(conn, session, kind);
        }
    }

    fn forget(&mut self, conn: ConnKey, kind: SubKind, name: &Name) {
        if self.local.remove(kind, name, conn) {
            interest_changed(&self.shared, kind, name, false);
        }
        match kind {
            SubKind::Channel(ns) => self.shared.registry.unsubscribe_name(ns, name, self.worker),
            SubKind::Pattern => self.shared.registry.punsubscribe_name(name, self.worker),
        }
    }

    /// [`Router::forget`] for many names of one kind: the registry gives
    /// them back in one pass (one new snapshot per shard touched).
    fn forget_all(&mut self, conn: ConnKey, kind: SubKind, names: &[Name]) {
        let worker = self.worker;
        for batch in names.chunks(BATCH) {
            self.local.remove_batch(kind, batch, conn, |name| {
                interest_changed(&self.shared, kind, name, false);
            });
        }
        let registry = &self.shared.registry;
        match kind {
            SubKind::Channel(ns) => registry.unsubscribe_names(ns, names, worker),
            SubKind::Pattern => registry.punsubscribe_names(names, worker),
        }
        self.local.shrink(kind);
    }

    /// PUBLISH / SPUBLISH: the receiver count, or None when a target
    /// worker's ring is full (nothing was done; the caller retries once
    /// woken, see [`Router::poll_idle`]).
    pub fn publish(&mut self, ns: Namespace, channel: &[u8], payload: &[u8]) -> Option<u64> {
        self.shared.registry.lookup(ns, channel, &mut self.lookup);
        let mut workers = self.lookup.channel.workers;
        let mut count = self.lookup.channel.count;
        for p in &self.lookup.patterns {
            workers = WorkerSet(workers.0 | p.hits.workers.0);
            count += p.hits.count;
        }
        if count == 0 {
            return Some(0);
        }
        if self.congested && workers.contains(self.worker) {
            // Invariant 5: this worker's own subscribers are behind; the
            // publisher waits until the backlog is down (the hub rings us).
            return None;
        }
        let others = WorkerSet(workers.0 & !(1 << self.worker));
        let mut message = self.build(ns, channel, payload);
        let weight = message.weight();
        for w in others.iter() {
            if !self.endpoint.has_room(w, weight) {
                // Invariant 5: stop reading this publisher until the target drains.
                self.endpoint.want_room(w, weight);
                return None;
            }
        }
        if !others.is_empty() {
            message.published = self.sample_clock();
        }
        let message = Arc::new(message);
        for w in others.iter() {
            // Room was checked above and only this thread pushes into these rings.
            let _ = self.endpoint.push(w, message.clone());
        }
        if workers.contains(self.worker) {
            self.local_pending.push(message);
        }
        self.routed.0 |= workers.0;
        Some(count)
    }

    /// The workers the publishes since the last call were handed to, this
    /// one included if it holds subscribers of them; empty if nothing was
    /// published (or nobody received it).
    pub fn take_route(&mut self) -> WorkerSet {
        std::mem::replace(&mut self.routed, WorkerSet(0))
    }

    /// A fence at what this worker has pushed into its outbound rings so far.
    pub fn fence(&self) -> Fence {
        self.endpoint.fence()
    }

    /// Whether every worker has taken what the fence's worker pushed before it.
    pub fn passed(&self, fence: &Fence) -> bool {
        self.endpoint.passed(fence)
    }

    /// The message of a publish the last lookup routed, its frames built once.
    fn build(&self, ns: Namespace, channel: &[u8], payload: &[u8]) -> Message {
        Message::new(
            ns,
            channel,
            payload,
            self.lookup.channel.count > 0,
            self.lookup.patterns.iter().map(|p| p.pattern.clone()),
            None,
            self.lookup.seqs(),
            self.lookup.stride(),
        )
    }

    /// The publish time of a message that crosses to another worker, for the
    /// delivery latency histogram: only one in [`LATENCY_SAMPLE_EVERY`] is
    /// stamped, since a clock read costs far more on the hot path than its
    /// ~30 ns alone (the vDSO's ordered TSC read stalls the pipeline).
    fn sample_clock(&mut self) -> Option<Instant> {
        let sampled = self.crossings.is_multiple_of(LATENCY_SAMPLE_EVERY);
        self.crossings = self.crossings.wrapping_add(1);
        sampled.then(Instant::now)
    }

    /// Messages published here since the last call that have local subscribers.
    pub fn take_local(&mut self, into: &mut Vec<SharedMessage>) {
        into.append(&mut self.local_pending);
    }

    /// This worker's subscribers of `message`, each with its frame: channel
    /// subscribers first, then each matching pattern's, the order in which
    /// Redis delivers `message` and `pmessage`. Only the subscriptions the
    /// PUBLISH counted: one made after its lookup, while the message was on
    /// its way here, is left out (PUBLISH reply = deliveries).
    pub fn recipients<'a>(&'a self, message: &'a Message) -> impl Iterator<Item = Recipient<'a>> {
        let channels = match message.ns {
            Namespace::Global => &self.local.channels,
            Namespace::Shard => &self.local.shard,
        };
        let registry = &self.shared.registry;
        let channel = message.channel_frame().and_then(|frame| {
            let hash = registry.hash(message.channel());
            let subs = LocalIndex::find(channels, hash, message.channel())?;
            Some((subs, frame, self.counted_up_to(message, 0)))
        });
        let patterns = message.patterns.iter().enumerate().filter_map(|(i, p)| {
            let subs = LocalIndex::find_name(&self.local.patterns, &p.pattern)?;
            Some((
                subs,
                message.pattern_frame(p),
                self.counted_up_to(message, 1 + i),
            ))
        });
        channel
            .into_iter()
            .chain(patterns)
            .flat_map(|(subs, frame, counted)| {
                subs.iter()
                    .filter(move |&(_, seq)| seq <= counted)
                    .map(move |(conn, _)| Recipient { conn, frame })
            })
    }

    /// The highest of this worker's subscription sequences that `message`'s
    /// lookup counted at `hit` (0 when it counted none of them).
    fn counted_up_to(&self, message: &Message, hit: usize) -> u64 {
        message
            .seen(hit, self.worker)
            .filter(|&low| low != 0)
            .and_then(|low| widen_seq(low, self.seq))
            .unwrap_or(0)
    }

    /// Ring the doorbells of workers this turn pushed messages to.
    pub fn flush_rings(&mut self) {
        self.endpoint.flush();
    }

    /// Park protocol of the worker's inbound task (see `mesh::Endpoint::poll_idle`).
    pub fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.congested {
            self.endpoint.poll_rung(cx)
        } else {
            self.endpoint.poll_idle(cx)
        }
    }

    /// The worker's backlog crossed one of its marks (see `hub::backlog`).
    pub fn set_congested(&mut self, congested: bool) {
        self.congested = congested;
    }

    /// Ring this worker's own doorbell: its inbound task runs once more.
    pub fn ring_self(&self) {
        self.endpoint.ring_self();
    }

    /// Take messages waiting in the inbound rings, in order, for as long as
    /// `take` accepts them; never waits (invariant 5: no deadlock). Returns
    /// how many were taken.
    pub fn drain_inbound(&mut self, take: impl FnMut(SharedMessage) -> bool) -> usize {
        let mut take = take;
        self.endpoint.drain_while(|_, m| take(m))
    }

    /// Bytes of messages this worker pushed to others that they have not taken yet.
    pub fn outbound_bytes(&self) -> u64 {
        self.endpoint.outbound_bytes()
    }

    /// Messages waiting in this worker's inbound rings.
    pub fn inbound_len(&self) -> usize {
        self.endpoint.inbound_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribers(subs: &Subscribers) -> Vec<(ConnKey, u64)> {
        let mut all: Vec<_> = subs.iter().collect();
        all.sort();
        all
    }

    #[test]
    fn one_subscriber_is_inline_and_more_make_a_set() {
        let mut subs = Subscribers::new(3, 10);
        assert!(matches!(subs, Subscribers::One { conn: 3, seq: 10 }));
        subs.insert(5, 11);
        subs.insert(9, 12);
        assert!(matches!(subs, Subscribers::Many(_)));
        assert_eq!(subscribers(&subs), vec![(3, 10), (5, 11), (9, 12)]);
        assert!(!subs.remove(3));
        assert!(!subs.remove(9));
        // Down to one: inline again.
        assert!(matches!(subs, Subscribers::One { conn: 5, seq: 11 }));
        assert!(!subs.remove(4), "not a subscriber");
        assert!(subs.remove(5));
        // A key beyond 32 bits stays in a set.
        let big = ConnKey::try_from(u64::from(u32::MAX) + 1).unwrap_or(ConnKey::MAX);
        if big > u32::MAX as ConnKey {
            let mut subs = Subscribers::new(big, 1);
            assert_eq!(subscribers(&subs), vec![(big, 1)]);
            subs.insert(2, 2);
            assert!(!subs.remove(2));
            assert!(matches!(subs, Subscribers::Many(_)));
            assert!(subs.remove(big));
        }
    }

    #[test]
    fn the_local_index_gives_memory_back_once_mostly_unsubscribed() {
        let registry = crate::registry::Registry::new(1);
        let mut index = LocalIndex::default();
        let kind = SubKind::Channel(Namespace::Global);
        let names: Vec<Name> = (0..10_000)
            .map(|i| registry.subscribe_name(Namespace::Global, format!("c{i}").as_bytes(), 0, 1))
            .collect();
        for name in &names {
            index.add(kind, name.clone(), 7, 1);
        }
        let full = index.channels.capacity();
        for name in &names[..9_990] {
            index.remove(kind, name, 7);
        }
        assert_eq!(index.channels.len(), 10);
        assert!(
            index.channels.capacity() <= SHRINK_ABOVE,
            "capacity {} of {full} kept for 10 channels",
            index.channels.capacity()
        );
    }
}
