//! Redis Cluster, as one node sees it: who owns each of the 16384 hash
//! slots, the nodes, their roles and epochs, and how that changes. No I/O,
//! no threads, no clock: the server feeds inputs and acts on the effects.
//!
//! # Inputs
//!
//! Every input carries the time (`now`, unix ms) and returns [`Effect`]s.
//!
//! - [`Cluster::apply_claim`]: a peer's [`Claim`], as the gossip layer
//!   delivers it (possibly stale, repeated or out of order). Deliver each
//!   peer's latest claim again from time to time, as Redis's pings repeat
//!   it: merging is idempotent, and some rules act on the repeat.
//! - [`Cluster::set_liveness`]: the gossip layer's verdict on a peer (this
//!   node's own: `fail?`).
//! - [`Cluster::apply_reports`]: a peer's failure reports, the peers it
//!   judges unreachable; a majority of them makes a peer `fail` (module
//!   `quorum`). Publish [`Cluster::reports`] beside the claim.
//! - [`Cluster::set_heard`]: when the gossip layer last heard from a peer
//!   (the link state and ping times CLUSTER NODES and LINKS show).
//! - [`Cluster::command`]: a `CLUSTER ...` request, with Redis's reply.
//! - [`Cluster::tick`]: time passing.
//!
//! Queries that change nothing: [`Cluster::route_shard`] (where an
//! SSUBSCRIBE, SUNSUBSCRIBE or SPUBLISH may run), the renderings (CLUSTER
//! NODES, SLOTS, SHARDS, INFO) and [`Cluster::nodes_conf`].
//!
//! # The rules (Redis's, `cluster.c`)
//!
//! 1. Each node publishes its own [`Claim`]: role, config epoch, the slots
//!    bound to it. A claim moves a slot to the claimer when the slot is
//!    unbound, when its owner no longer claims it (or is dead: ringcast's
//!    addition), or when the claim's config epoch is greater than the
//!    owner's (`clusterUpdateSlotsConfigWith`). A slot this node is
//!    importing moves only by hand.
//! 2. Two masters with the same config epoch: the one with the smaller id
//!    takes `currentEpoch + 1` (`clusterHandleConfigEpochCollision`), so
//!    epochs end up distinct and every contest has a winner.
//! 3. A master left without slots by a claim becomes a replica of the
//!    claimer; a replica follows its master's slots to their new owner.
//! 4. Admin commands change the local table as Redis's do (module `admin`).
//!
//! And ringcast's own, replacing Redis's elections (there is no data to
//! keep consistent, so no vote is needed):
//!
//! 5. The slots of a dead master (`fail`: a majority of the slot-holding
//!    masters judge it unreachable, module `quorum`) go to one of its live
//!    replicas (the smallest id), else, slot by slot, to the live master
//!    with the highest rendezvous hash of (slot, id). Only that node acts:
//!    it claims them with an epoch above every epoch it knows; the others
//!    wait for its claim.
//! 6. A slot no claim backs for [`Settings::orphan_grace_ms`] (bound to a
//!    master that leaves it out of its claim, unbound because its owner
//!    turned replica, or handed by SETSLOT NODE to a dead node) is taken
//!    over the same way, by a live master, even where rule 5 names a
//!    replica (that replica may not know the slot was its master's). This
//!    ends the deadlocks Redis leaves to `redis-cli --cluster fix`, such as
//!    two reshards of one slot crossing, each target handing it to the
//!    other, or a reshard to a master that died before taking the slot.
//!
//! Rules 5 and 6 are checked after every input, so they hold whatever
//! order things happen in.
//!
//! # Effects
//!
//! [`Effect::LostSlots`] when slots this node served (as their master, or as
//! a replica of it) leave it, so the server unsubscribes the local sharded
//! subscribers of their channels; [`Effect::SaveConfig`] before
//! [`Effect::PublishClaim`], so a restart never goes back on what was
//! announced; [`Effect::Meet`] and [`Effect::Forget`] for the gossip layer.
//!
//! # Where ringcast parts from Redis
//!
//! Rules 5 and 6 and the dead-owner case of rule 1 above; there are no
//! elections, but as in Redis a peer is `fail` only on the fresh failure
//! reports of a majority of the masters that hold slots, so a takeover
//! needs a majority of them reachable (the lone survivor of three masters
//! takes nothing), and a node on the minority side of a partition never
//! takes slots; a node adopts a peer's `fail` verdict only if it judges
//! the node unreachable itself (Redis adopts a FAIL message at once), and
//! clears it as soon as it hears the node again (Redis waits for a master
//! with slots); claims
//! carry a version so that a stale one is dropped; a link is `connected`
//! while the peer was heard within the node timeout (there is no TCP link
//! per peer: CLUSTER LINKS shows both directions of each such peer, with
//! empty buffers); the rest is listed where it happens: admin commands
//! (module `admin`: no keys, MEET without a handshake node, FAILOVER as an
//! immediate takeover), renderings (`render`: node order, replicas listed
//! at once, no bus counters), nodes.conf (`persist`: failure flags not
//! restored, `looseSlots`). A slot is
//! announced lost only when it is (Redis also unsubscribes when SETSLOT NODE
//! gives a slot to the node that already has it), and a replica that moves
//! to another shard loses its old master's slots (Redis 7.4's rule; 7.2
//! keeps those subscribers).

mod admin;
mod bus;
mod claim;
mod errors;
mod failover;
pub mod forward;
mod node;
mod persist;
mod quorum;
mod render;
mod reply;
mod route;
mod slots;

use std::collections::BTreeMap;

pub use admin::SUBCOMMANDS;
pub use bus::{Bus, BusRequest, Forward, Mail};
pub use claim::{Claim, ClaimError};
pub use errors::DISABLED;
pub use node::{Addr, Flags, Link, Node, NodeId, Version};
pub use persist::ConfError;
pub use quorum::Reports;
pub use render::config_signature;
pub use reply::Reply;
pub use route::{ConnFlags, Redirect};
pub use slots::{SLOTS, Slot, SlotSet, crc16, key_slot};

/// The cluster settings that shape this module's behaviour (`cluster-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `cluster-require-full-coverage`: the cluster is down while a slot is
    /// unbound or its owner is failed.
    pub require_full_coverage: bool,
    /// `cluster-allow-pubsubshard-when-down`.
    pub allow_pubsubshard_when_down: bool,
    /// `cluster-allow-reads-when-down` (EXEC's routing).
    pub allow_reads_when_down: bool,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `cluster-replica-no-failover`: never take this node's master's slots.
    pub replica_no_failover: bool,
    /// `cluster-preferred-endpoint-type`.
    pub preferred_endpoint: Endpoint,
    /// Rule 6's grace; Redis's `cluster-node-timeout` is a fair value.
    pub orphan_grace_ms: u64,
    /// `cluster-node-timeout`: a failure report is fresh for twice this.
    pub node_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            require_full_coverage: true,
            allow_pubsubshard_when_down: true,
            allow_reads_when_down: false,
            allow_replica_migration: true,
            replica_no_failover: false,
            preferred_endpoint: Endpoint::Ip,
            orphan_grace_ms: 15_000,
            node_timeout_ms: 15_000,
        }
    }
}

/// What MOVED and CLUSTER SLOTS name a node by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Endpoint {
    #[default]
    Ip,
    Hostname,
    /// Clients use the address they reached the node at.
    Unknown,
}

/// The gossip layer's verdict on a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Suspected by this node (`fail?`): no failover yet.
    Suspect,
    /// Silent for longer still; to the state machine the same as
    /// `Suspect` (`fail` needs a majority's reports).
    Dead,
}

/// What the server must do after an input, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Slots this node no longer serves: send `sunsubscribe` to the local
    /// subscribers of shard channels in them (Redis's `removeChannelsInSlot`).
    LostSlots(SlotSet),
    /// Write [`Cluster::nodes_conf`] durably.
    SaveConfig,
    /// Publish [`Cluster::claim`] (after saving).
    PublishClaim,
    /// CLUSTER MEET: start gossiping with this address.
    Meet { ip: String, port: u16, cport: u16 },
    /// This node forgot the peer (CLUSTER FORGET, RESET): its claims are
    /// ignored for a minute.
    Forget(NodeId),
}

/// How a node starts: the time (unix ms), which also orders its claims
/// across restarts, and a seed for the ids it makes up. `now` must grow
/// from one start to the next (a wall clock does unless it is set back by
/// more than the downtime): peers drop claims of an older incarnation.
#[derive(Clone, Copy, Debug)]
pub struct Boot {
    pub now: u64,
    pub seed: u64,
}

/// Redis's `CLUSTER_BLACKLIST_TTL`: a forgotten node stays out this long.
const FORGET_BAN_MS: u64 = 60_000;

/// One node's view of the cluster. Cloned for the workers' snapshot
/// ([`Bus::publish`]) after each change.
#[derive(Clone, Debug)]
pub struct Cluster {
    me: Node,
    peers: BTreeMap<NodeId, Node>,
    /// The slot table: the owner of each slot.
    owners: Vec<Option<NodeId>>,
    migrating: BTreeMap<Slot, NodeId>,
    importing: BTreeMap<Slot, NodeId>,
    /// Slots no claim backs, and since when: bound to an owner whose latest
    /// claim leaves them out (Redis's `owner_not_claiming_slot`), or left
    /// unbound when their owner turned replica. Rule 6 acts on them.
    loose: BTreeMap<Slot, u64>,
    /// Peers' reports of the nodes they judge unreachable (module `quorum`).
    failure_reports: quorum::FailureReports,
    current_epoch: u64,
    last_vote_epoch: u64,
    /// Forgotten ids and until when their claims are ignored.
    banned: BTreeMap<NodeId, u64>,
    settings: Settings,
    /// The claim last published, and the state of the random ids.
    published: Claim,
    rng: u64,
    /// Cached after every input: routing asks for it on every command.
    ok: bool,
    /// The time of the input being applied.
    now: u64,
    /// Set by whatever changes what `nodes_conf` writes.
    save: bool,
    pending: Vec<Effect>,
}

impl Cluster {
    /// A node that knows only itself, with a new random id: what Redis is
    /// on its first start. Save [`Cluster::nodes_conf`], then publish
    /// [`Cluster::claim`].
    pub fn new(addr: Addr, settings: Settings, boot: Boot) -> Cluster {
        let mut rng = boot.seed;
        let id = NodeId::random(|| splitmix(&mut rng));
        let shard = NodeId::random(|| splitmix(&mut rng));
        let mut me = Node::new(id, shard, Flags::MYSELF | Flags::MASTER);
        me.addr = addr;
        me.link = Link::Connected;
        Cluster::assemble(me, BTreeMap::new(), settings, boot, rng)
    }

    fn assemble(
        me: Node,
        peers: BTreeMap<NodeId, Node>,
        settings: Settings,
        boot: Boot,
        rng: u64,
    ) -> Cluster {
        let version = Version {
            incarnation: boot.now,
            seq: 0,
        };
        let (mut me, mut peers) = (me, peers);
        // The first node to list a slot keeps it, as when Redis loads a file.
        let mut owners = vec![None; SLOTS];
        for node in std::iter::once(&mut me).chain(peers.values_mut()) {
            for slot in node.slots.clone().iter() {
                match owners[usize::from(slot)] {
                    Some(_) => _ = node.slots.remove(slot),
                    None => owners[usize::from(slot)] = Some(node.id),
                }
            }
        }
        let mut cluster = Cluster {
            owners,
            published: Claim::placeholder(me.id, version),
            me,
            peers,
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            loose: BTreeMap::new(),
            failure_reports: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            banned: BTreeMap::new(),
            settings,
            rng,
            ok: false,
            now: boot.now,
            save: false,
            pending: Vec::new(),
        };
        cluster.apply_settings();
        cluster.published = cluster.build_claim(version);
        cluster.ok = cluster.compute_ok();
        cluster
    }

    // ---- inputs -------------------------------------------------------

    /// Time passing: rule 6 acts once its grace is over.
    pub fn tick(&mut self, now: u64) -> Vec<Effect> {
        self.step(now, |_| ()).1
    }

    /// New settings (CONFIG SET of a `cluster-*` parameter).
    pub fn set_settings(&mut self, settings: Settings, now: u64) -> Vec<Effect> {
        self.step(now, |c| {
            c.settings = settings;
            c.apply_settings();
        })
        .1
    }

    /// This node's address changed (`cluster-announce-*`).
    pub fn set_my_addr(&mut self, addr: Addr, now: u64) -> Vec<Effect> {
        self.step(now, |c| {
            if c.me.addr != addr {
                c.me.addr = addr;
                c.save = true;
            }
        })
        .1
    }

    /// The transport's ping/pong times for a peer (CLUSTER NODES shows them).
    pub fn set_ping_times(&mut self, id: &NodeId, ping_sent: u64, pong_received: u64) {
        if let Some(node) = self.node_mut(id) {
            node.ping_sent = ping_sent;
            node.pong_received = pong_received;
        }
    }

    /// When the transport last heard from a peer (unix ms), at `now`: the
    /// link is `connected` while that is within `node_timeout`, and the
    /// ping times are what Redis's would be. Redis pings a peer silent for
    /// half the node timeout and shows that ping as sent until a pong comes
    /// back; a peer heard more recently has no ping outstanding (0).
    pub fn set_heard(&mut self, id: &NodeId, heard: u64, now: u64, node_timeout: u64) {
        let Some(node) = self.peers.get_mut(id) else {
            return;
        };
        let silent = now.saturating_sub(heard);
        let link = if silent < node_timeout {
            Link::Connected
        } else {
            Link::Disconnected
        };
        if link == Link::Connected && node.link != Link::Connected {
            node.link_since = now;
        }
        node.link = link;
        node.pong_received = heard;
        node.ping_sent = match silent >= node_timeout / 2 {
            true => heard + node_timeout / 2,
            false => 0,
        };
    }

    // ---- queries ------------------------------------------------------

    pub fn myself(&self) -> &Node {
        &self.me
    }

    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        if *id == self.me.id {
            Some(&self.me)
        } else {
            self.peers.get(id)
        }
    }

    /// Every known node, this one included, in id order.
    pub fn nodes(&self) -> Vec<&Node> {
        let mut all: Vec<&Node> = self.peers.values().collect();
        let at = all.partition_point(|n| n.id < self.me.id);
        all.insert(at, &self.me);
        all
    }

    pub fn owner(&self, slot: Slot) -> Option<&Node> {
        self.owners
            .get(usize::from(slot))
            .copied()
            .flatten()
            .and_then(|id| self.node(&id))
    }

    pub fn current_epoch(&self) -> u64 {
        self.current_epoch
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The claim to publish (the latest; [`Effect::PublishClaim`] says when
    /// it changed).
    pub fn claim(&self) -> &Claim {
        &self.published
    }

    /// Whether the cluster is up as this node sees it (Redis's
    /// `clusterUpdateState`, without its rejoin delays).
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The slots whose shard channels this node serves: its own as a
    /// master, its master's as a replica.
    pub fn served_slots(&self) -> SlotSet {
        match self.my_master() {
            Some(master) if self.me.is_replica() => master.slots.clone(),
            _ => self.me.slots.clone(),
        }
    }

    // ---- the step: one input, then the rules, then the effects ---------

    /// Apply one input: `f`, then the failure reports, rules 5 and 6, then
    /// work out the effects.
    fn step<R>(&mut self, now: u64, f: impl FnOnce(&mut Self) -> R) -> (R, Vec<Effect>) {
        self.now = now;
        self.banned.retain(|_, until| *until >= now);
        let served = self.served_slots();
        let result = f(self);
        self.mark_failing();
        self.reassign();
        self.ok = self.compute_ok();

        let mut effects = Vec::new();
        let lost = served.difference(&self.served_slots());
        if !lost.is_empty() {
            effects.push(Effect::LostSlots(lost));
        }
        if std::mem::take(&mut self.save) {
            effects.push(Effect::SaveConfig);
        }
        let mut claim = self.build_claim(self.published.version);
        if !claim.same_content(&self.published) {
            claim.version.seq += 1;
            self.published = claim;
            effects.push(Effect::PublishClaim);
        }
        effects.append(&mut self.pending);
        (result, effects)
    }

    fn apply_settings(&mut self) {
        let no_failover = self.settings.replica_no_failover;
        if self.me.flags.contains(Flags::NOFAILOVER) != no_failover {
            self.me.flags.set(Flags::NOFAILOVER, no_failover);
            self.save = true;
        }
    }

    fn compute_ok(&self) -> bool {
        let all = || std::iter::once(&self.me).chain(self.peers.values());
        // Every slot is in exactly one node's set, so counting is enough.
        let covered: usize = all()
            .filter(|n| !n.is_failed())
            .map(|n| n.slots.len())
            .sum();
        if self.settings.require_full_coverage && covered < SLOTS {
            return false;
        }
        let (mut size, mut reachable) = (0, 0);
        for node in all().filter(|n| n.is_master() && !n.slots.is_empty()) {
            size += 1;
            if !node.flags.intersects(Flags::FAIL | Flags::PFAIL) {
                reachable += 1;
            }
        }
        reachable > size / 2
    }

    // ---- primitives: every change to the table goes through these ------

    fn node_mut(&mut self, id: &NodeId) -> Option<&mut Node> {
        if *id == self.me.id {
            Some(&mut self.me)
        } else {
            self.peers.get_mut(id)
        }
    }

    fn my_master(&self) -> Option<&Node> {
        self.me.master.and_then(|id| self.node(&id))
    }

    /// The owner of `slot`, as an id.
    fn owner_id(&self, slot: Slot) -> Option<NodeId> {
        self.owners[usize::from(slot)]
    }

    /// Bind an unbound slot (`clusterAddSlot`).
    fn add_slot(&mut self, id: NodeId, slot: Slot) {
        if self.owners[usize::from(slot)].is_some() {
            return;
        }
        if let Some(node) = self.node_mut(&id) {
            node.slots.insert(slot);
            self.owners[usize::from(slot)] = Some(id);
            self.loose.remove(&slot);
            self.save = true;
        }
    }

    /// Unbind a slot (`clusterDelSlot`).
    fn del_slot(&mut self, slot: Slot) {
        if let Some(id) = self.owners[usize::from(slot)].take() {
            if let Some(node) = self.node_mut(&id) {
                node.slots.remove(slot);
            }
            self.loose.remove(&slot);
            self.save = true;
        }
    }

    /// Bind `slot` to `id`, whoever had it.
    fn move_slot(&mut self, slot: Slot, id: NodeId) {
        self.del_slot(slot);
        self.add_slot(id, slot);
    }

    fn del_node_slots(&mut self, id: &NodeId) {
        let slots = self.node(id).map(|n| n.slots.clone()).unwrap_or_default();
        for slot in slots.iter() {
            self.del_slot(slot);
        }
    }

    /// Make a node a master (`clusterSetNodeAsMaster`).
    fn set_node_as_master(&mut self, id: &NodeId) {
        if let Some(node) = self.node_mut(id)
            && !node.is_master()
        {
            node.flags.remove(Flags::SLAVE);
            node.flags.insert(Flags::MASTER);
            node.master = None;
            self.save = true;
        }
    }

    /// Make this node a replica of `master` (`clusterSetMaster`); it must
    /// hold no slots.
    fn set_my_master(&mut self, master: NodeId) {
        if master == self.me.id || !self.me.slots.is_empty() {
            return;
        }
        if self.me.is_master() {
            self.me.flags.remove(Flags::MASTER);
            self.me.flags.insert(Flags::SLAVE);
            self.migrating.clear();
            self.importing.clear();
        }
        self.me.master = Some(master);
        if let Some(shard) = self.node(&master).map(|m| m.shard_id) {
            self.me.shard_id = shard;
        }
        self.save = true;
    }

    /// Forget a peer (`clusterDelNode`).
    fn del_node(&mut self, id: &NodeId) {
        self.migrating.retain(|_, to| to != id);
        self.importing.retain(|_, from| from != id);
        self.del_node_slots(id);
        for node in std::iter::once(&mut self.me).chain(self.peers.values_mut()) {
            if node.master == Some(*id) {
                node.master = None;
            }
        }
        if self.peers.remove(id).is_some() {
            self.save = true;
        }
    }

    /// The greatest epoch this node knows (`clusterGetMaxEpoch`).
    fn max_epoch(&self) -> u64 {
        self.nodes()
            .iter()
            .map(|n| n.config_epoch)
            .chain([self.current_epoch])
            .max()
            .unwrap_or(0)
    }

    /// A new config epoch for this node if its own is 0 or not the greatest
    /// (`clusterBumpConfigEpochWithoutConsensus`); false if it kept it.
    fn bump_epoch_if_not_greatest(&mut self) -> bool {
        if self.me.config_epoch != 0 && self.me.config_epoch == self.max_epoch() {
            return false;
        }
        self.current_epoch += 1;
        self.me.config_epoch = self.current_epoch;
        self.save = true;
        true
    }

    /// An epoch above every epoch this node knows, for its new claim.
    fn take_greatest_epoch(&mut self) {
        self.current_epoch = self.max_epoch() + 1;
        self.me.config_epoch = self.current_epoch;
        self.save = true;
    }

    /// A made-up id (RESET HARD's new identity).
    fn random_id(&mut self) -> NodeId {
        let mut rng = self.rng;
        let id = NodeId::random(|| splitmix(&mut rng));
        self.rng = rng;
        id
    }
}

/// SplitMix64: a small, good enough generator for made-up ids.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
