//! A deterministic simulation of a ringcast cluster: 3 to 9 nodes in one
//! process, each a `Cluster`, joined by a simulated gossip layer that
//! delivers each node's latest claim late, twice, out of order or not at
//! all, and by a failure detector that works as the server's does: a peer
//! not heard for the node timeout is suspect, for twice that dead, and
//! alive again once heard. Chaos: partitions that heal, nodes killed and
//! restarted from the nodes.conf they saved, reshards done as redis-cli
//! does them (two at a time on the same slots, to different targets),
//! CLUSTER REPLICATE, FAILOVER [FORCE] and BUMPEPOCH on random nodes,
//! masters dying with and without replicas. Then the network heals and
//! the run quiesces, and every live node must hold the same slot map (the
//! same owner and config epoch for every slot), every slot must be owned
//! by a live master whose own claim lists it, the config epochs of the
//! masters must be distinct, and no epoch may ever have gone back. During
//! the run, no node's table may bind a slot to a node that never claimed
//! it (or was never named its owner by SETSLOT NODE). Each message also
//! carries the sender's failure reports, so a dead master's slots move
//! only while a majority of the slot-holding masters is up; for the same
//! reason every dead node restarts when the network heals.
//!
//! Every run is determined by its seed. More seeds:
//! `RINGCAST_CLUSTER_SIM_SEEDS=2000 cargo test -p ringcast-core --test cluster_sim`
//! (or a range, `RINGCAST_CLUSTER_SIM_SEEDS=401-800`);
//! one seed: `RINGCAST_CLUSTER_SIM_SEED=1234` (its trace is printed when it
//! fails; `RINGCAST_CLUSTER_SIM_GREP=text` keeps the trace lines with `text`);
//! longer chaos: `RINGCAST_CLUSTER_SIM_TICKS=1000` (150 ticks of 100 ms by
//! default).

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use ringcast_core::cluster::{
    Addr, Boot, Claim, Cluster, Effect, Liveness, NodeId, Reply, Reports, SLOTS, Settings, Slot,
    SlotSet, Version, config_signature,
};
use ringcast_core::resp::args::Args;

const TICK_MS: u64 = 100;
/// `cluster-node-timeout`, in ticks: suspect after it, dead after twice it.
const NODE_TIMEOUT_TICKS: u64 = 5;
/// How long the chaos lasts, unless `RINGCAST_CLUSTER_SIM_TICKS` says.
const CHAOS_TICKS: u64 = 150;
const SETTLE_MAX_TICKS: u64 = 3000;
/// How long every slot must stay with a live master before the views are
/// compared: long enough for every failure verdict to be revised.
const CALM_TICKS: u64 = 4 * NODE_TIMEOUT_TICKS;

fn seeds() -> Vec<u64> {
    if let Ok(one) = std::env::var("RINGCAST_CLUSTER_SIM_SEED") {
        return vec![one.parse().expect("a seed")];
    }
    // `N` for seeds 1 to N, or `A-B`.
    let range = std::env::var("RINGCAST_CLUSTER_SIM_SEEDS").unwrap_or_else(|_| "32".into());
    let (first, last) = range.split_once('-').unwrap_or(("1", &range));
    (first.parse().expect("a seed")..=last.parse().expect("a seed")).collect()
}

#[test]
fn clusters_converge_after_chaos() {
    for seed in seeds() {
        let mut sim = Sim::new(seed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run()));
        if let Err(panic) = outcome {
            eprintln!("seed {seed} failed; trace:");
            let filter = std::env::var("RINGCAST_CLUSTER_SIM_GREP").unwrap_or_default();
            let lines: Vec<&String> = sim.trace.iter().filter(|l| l.contains(&filter)).collect();
            for line in lines.iter().rev().take(400).rev() {
                eprintln!("  {line}");
            }
            for (i, member) in sim.members.iter().enumerate() {
                if let Some(cluster) = &member.cluster {
                    eprintln!("node {i} ({}):\n{}", member.id, cluster.nodes_text());
                }
            }
            eprintln!("reproduce: RINGCAST_CLUSTER_SIM_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Member {
    /// None while the node is down.
    cluster: Option<Cluster>,
    /// nodes.conf as last rendered; with `dirty` clear, what the node saved
    /// last (the renders are sampled, saves are not coalesced).
    conf: String,
    /// Asked to save since `conf` was rendered.
    dirty: bool,
    /// Its latest claim, as it came out of its text.
    claim: (Version, Rc<Claim>),
    id: NodeId,
    /// When it last heard from each member (a heartbeat, in ticks).
    heard: Vec<u64>,
    /// What its failure detector last told it about each member.
    told: Vec<Option<Liveness>>,
    /// The greatest current and config epochs it ever had.
    epochs: (u64, u64),
}

struct Message {
    at: u64,
    from: usize,
    to: usize,
    claim: Rc<Claim>,
    reports: String,
}

/// A reshard in progress: the admin commands still to send, in order.
struct Reshard {
    steps: VecDeque<(usize, String)>,
}

/// One way of a link down for a while: a false failure verdict.
struct Cut {
    from: usize,
    to: usize,
    until: u64,
}

/// How bad the network is, per run.
struct Net {
    /// Percent of messages and heartbeats lost.
    loss: u64,
    /// Messages arrive up to this many ticks late.
    delay: usize,
}

struct Sim {
    rng: Rng,
    net: Net,
    cuts: Vec<Cut>,
    tick: u64,
    members: Vec<Member>,
    index: BTreeMap<NodeId, usize>,
    in_flight: Vec<Message>,
    /// Each member's side of the partition (all 0: none).
    side: Vec<u8>,
    reshards: Vec<Reshard>,
    /// The slots each member ever claimed, or was named the owner of by
    /// SETSLOT NODE: the only slots any table may bind to it.
    backed: Vec<SlotSet>,
    settings: Settings,
    trace: Vec<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let size = 3 + rng.below(7);
        let settings = Settings {
            orphan_grace_ms: 2 * NODE_TIMEOUT_TICKS * TICK_MS,
            allow_replica_migration: rng.chance(80),
            ..Settings::default()
        };
        let mut members = Vec::new();
        for i in 0..size {
            let addr = Addr {
                ip: "127.0.0.1".into(),
                port: 30001 + i as u16,
                cport: 40001 + i as u16,
                hostname: None,
            };
            let boot = Boot {
                now: 1,
                seed: rng.next(),
            };
            let cluster = Cluster::new(addr, settings.clone(), boot);
            members.push(Member {
                id: cluster.myself().id,
                conf: cluster.nodes_conf(),
                dirty: false,
                claim: (cluster.claim().version, Rc::new(cluster.claim().clone())),
                cluster: Some(cluster),
                heard: vec![0; size],
                told: vec![None; size],
                epochs: (0, 0),
            });
        }
        let net = Net {
            loss: [0, 5, 10, 30][rng.below(4)],
            delay: 1 + rng.below(12),
        };
        let trace = format!(
            "seed {seed}: {size} nodes, {}% lost, {} ticks late at most, replica migration {}",
            net.loss, net.delay, settings.allow_replica_migration
        );
        Sim {
            rng,
            net,
            cuts: Vec::new(),
            tick: 1,
            index: members.iter().enumerate().map(|(i, m)| (m.id, i)).collect(),
            members,
            in_flight: Vec::new(),
            side: vec![0; size],
            reshards: Vec::new(),
            backed: vec![SlotSet::new(); size],
            settings,
            trace: vec![trace],
        }
    }

    fn now(&self) -> u64 {
        self.tick * TICK_MS
    }

    fn run(&mut self) {
        self.create();
        let ticks = std::env::var("RINGCAST_CLUSTER_SIM_TICKS")
            .map_or(CHAOS_TICKS, |t| t.parse().expect("a number of ticks"));
        for _ in 0..ticks {
            self.chaos();
            self.step();
        }
        self.trace.push(format!("t{} heal and settle", self.tick));
        self.side.fill(0);
        self.cuts.clear();
        // A majority of slot-holding masters must be up to move a dead
        // one's slots: bring everyone back.
        for i in 0..self.members.len() {
            if self.members[i].cluster.is_none() {
                self.restart(i);
            }
        }
        self.reshards.clear();
        // Some of the dead come back, with what they saved long ago.
        for i in 0..self.members.len() {
            if self.members[i].cluster.is_none() && self.rng.chance(50) {
                self.restart(i);
            }
        }
        self.close_open_slots();
        self.settle();
        self.check_final();
    }

    /// What `redis-cli --cluster create` does: slots to the masters, an
    /// epoch each, meet, then the replicas.
    fn create(&mut self) {
        let size = self.members.len();
        let masters = (size / 2).max(1) + self.rng.below(size - size / 2);
        for m in 0..masters {
            let (start, end) = (m * SLOTS / masters, (m + 1) * SLOTS / masters - 1);
            self.admin(m, &format!("CLUSTER ADDSLOTSRANGE {start} {end}"));
            self.admin(m, &format!("CLUSTER SET-CONFIG-EPOCH {}", m + 1));
        }
        self.settle();
        for r in masters..size {
            let master = self.members[self.rng.below(masters)].id;
            self.admin(r, &format!("CLUSTER REPLICATE {master}"));
        }
        self.settle();
        self.trace
            .push(format!("t{} created: {masters} masters", self.tick));
        self.check_final();
    }

    // ---- chaos ------------------------------------------------------------

    fn chaos(&mut self) {
        let size = self.members.len();
        let up = self.live().len();
        if self.rng.chance(3) && up > 2 && up > size / 2 {
            let victim = self.rng.below(size);
            self.kill(victim);
        }
        if self.rng.chance(4) {
            let i = self.rng.below(size);
            if self.members[i].cluster.is_none() {
                self.restart(i);
            }
        }
        if self.rng.chance(2) && self.side.iter().all(|s| *s == 0) {
            for i in 0..size {
                self.side[i] = self.rng.below(2) as u8;
            }
            self.trace
                .push(format!("t{} partition {:?}", self.tick, self.side));
        } else if self.rng.chance(3) && self.side.iter().any(|s| *s != 0) {
            self.side.fill(0);
            self.trace.push(format!("t{} heal", self.tick));
        }
        if self.rng.chance(3) {
            let (from, to) = (self.rng.below(size), self.rng.below(size));
            let until = self.tick + 1 + self.rng.below(4 * NODE_TIMEOUT_TICKS as usize) as u64;
            self.trace
                .push(format!("t{} cut {from} -> {to} until t{until}", self.tick));
            self.cuts.push(Cut { from, to, until });
        }
        self.cuts.retain(|c| c.until > self.tick);
        if self.rng.chance(4) {
            self.start_reshard();
        }
        if self.rng.chance(1) {
            let i = self.rng.below(size);
            self.admin(i, "CLUSTER BUMPEPOCH");
        }
        if self.rng.chance(2) {
            self.replicate();
        }
        if self.rng.chance(2) {
            self.failover();
        }
        self.advance_reshards();
    }

    fn kill(&mut self, i: usize) {
        let member = &mut self.members[i];
        let Some(cluster) = member.cluster.take() else {
            return;
        };
        // What it saved last is what it has now, unless something changed
        // without a SaveConfig.
        let conf = cluster.nodes_conf();
        if !std::mem::take(&mut member.dirty) {
            assert_eq!(conf, member.conf, "nodes.conf changed without SaveConfig");
        }
        member.conf = conf;
        self.trace.push(format!("t{} kill {i}", self.tick));
    }

    /// As the server starts: load nodes.conf, tick, publish.
    fn restart(&mut self, i: usize) {
        let boot = Boot {
            now: self.now(),
            seed: self.rng.next(),
        };
        let tick = self.tick;
        let member = &mut self.members[i];
        let cluster = Cluster::load(&member.conf, self.settings.clone(), boot)
            .expect("a node restarts from the nodes.conf it saved");
        assert_eq!(cluster.myself().id, member.id);
        // Loading drops what was the failure detector's (fail flags, links).
        member.conf = cluster.nodes_conf();
        member.dirty = false;
        member.heard.fill(tick);
        member.told.fill(None);
        member.cluster = Some(cluster);
        self.trace.push(format!("t{} restart {i}", self.tick));
        self.check_epochs(i);
        let now = self.now();
        self.input(i, |c| c.tick(now));
        self.broadcast(i);
    }

    /// Move a few slots from a master to another, as redis-cli reshard
    /// does; sometimes a second reshard of the same slots to another
    /// target runs at the same time.
    fn start_reshard(&mut self) {
        let masters: Vec<usize> = (0..self.members.len())
            .filter(|i| {
                let c = self.members[*i].cluster.as_ref();
                c.is_some_and(|c| c.myself().is_master())
            })
            .collect();
        if masters.len() < 2 {
            return;
        }
        let source = masters[self.rng.below(masters.len())];
        let slots: Vec<Slot> = self.cluster(source).myself().slots.iter().collect();
        if slots.is_empty() {
            return;
        }
        let start = slots[self.rng.below(slots.len())];
        let count = 1 + self.rng.below(16) as Slot;
        let range: Vec<Slot> = slots
            .into_iter()
            .filter(|s| (start..start.saturating_add(count)).contains(s))
            .collect();
        let targets = if self.rng.chance(30) { 2 } else { 1 };
        for _ in 0..targets {
            let target = masters[self.rng.below(masters.len())];
            if target == source {
                continue;
            }
            self.trace.push(format!(
                "t{} reshard {range:?} {source} -> {target}",
                self.tick
            ));
            let steps = self.reshard_steps(source, target, &range, &masters);
            self.reshards.push(Reshard { steps });
        }
    }

    fn reshard_steps(
        &self,
        source: usize,
        target: usize,
        slots: &[Slot],
        masters: &[usize],
    ) -> VecDeque<(usize, String)> {
        let (from, to) = (self.members[source].id, self.members[target].id);
        let mut steps = VecDeque::new();
        for slot in slots {
            steps.push_back((target, format!("CLUSTER SETSLOT {slot} IMPORTING {from}")));
            steps.push_back((source, format!("CLUSTER SETSLOT {slot} MIGRATING {to}")));
            steps.push_back((target, format!("CLUSTER SETSLOT {slot} NODE {to}")));
            steps.push_back((source, format!("CLUSTER SETSLOT {slot} NODE {to}")));
            for other in masters.iter().filter(|i| **i != source && **i != target) {
                steps.push_back((*other, format!("CLUSTER SETSLOT {slot} NODE {to}")));
            }
        }
        steps
    }

    /// Each reshard sends its next few commands, so that they interleave.
    fn advance_reshards(&mut self) {
        for r in 0..self.reshards.len() {
            for _ in 0..self.rng.below(5) {
                if let Some((node, command)) = self.reshards[r].steps.pop_front() {
                    self.admin(node, &command);
                }
            }
        }
        self.reshards.retain(|r| !r.steps.is_empty());
    }

    /// CLUSTER REPLICATE on a random node, of a random other node (refused
    /// when that is a replica, or this node a master with slots).
    fn replicate(&mut self) {
        let size = self.members.len();
        let (i, j) = (self.rng.below(size), self.rng.below(size));
        if i != j {
            let master = self.members[j].id;
            self.admin(i, &format!("CLUSTER REPLICATE {master}"));
        }
    }

    /// CLUSTER FAILOVER [FORCE] on a random replica.
    fn failover(&mut self) {
        let replicas: Vec<usize> = self
            .live()
            .into_iter()
            .filter(|i| self.cluster(*i).myself().is_replica())
            .collect();
        if replicas.is_empty() {
            return;
        }
        let i = replicas[self.rng.below(replicas.len())];
        let command = if self.rng.chance(50) {
            "CLUSTER FAILOVER FORCE"
        } else {
            "CLUSTER FAILOVER"
        };
        self.admin(i, command);
    }

    /// Close the slots left open by reshards cut short, as
    /// `redis-cli --cluster fix` does.
    fn close_open_slots(&mut self) {
        for i in 0..self.members.len() {
            let Some(cluster) = &self.members[i].cluster else {
                continue;
            };
            let myself = cluster.myself().id.to_string();
            let text = cluster.nodes_text();
            let line = text
                .lines()
                .find(|l| l.starts_with(&myself))
                .unwrap_or_default();
            let open: Vec<String> = line
                .split(' ')
                .filter_map(|w| w.strip_prefix('['))
                .filter_map(|w| w.split('-').next().map(str::to_string))
                .collect();
            for slot in open {
                self.admin(i, &format!("CLUSTER SETSLOT {slot} STABLE"));
            }
        }
    }

    // ---- time passing: gossip, failure detection ----------------------------

    fn step(&mut self) {
        self.tick += 1;
        let now = self.now();
        let size = self.members.len();
        for i in 0..size {
            if self.members[i].cluster.is_some() {
                self.input(i, |c| c.tick(now));
                // Anti-entropy: repeat the latest claim now and then.
                if self.rng.chance(20) {
                    self.broadcast(i);
                }
            }
        }
        self.deliver();
        self.detect_failures();
        self.save_configs();
        if self.tick.is_multiple_of(10) {
            self.check_safety();
        }
    }

    /// Now and then render a node's nodes.conf: unchanged unless it asked
    /// to save since the last render.
    fn save_configs(&mut self) {
        for member in &mut self.members {
            let Some(cluster) = &member.cluster else {
                continue;
            };
            if !self.rng.chance(3) {
                continue;
            }
            let conf = cluster.nodes_conf();
            if !std::mem::take(&mut member.dirty) {
                assert_eq!(conf, member.conf, "nodes.conf changed without SaveConfig");
            }
            member.conf = conf;
        }
    }

    /// Whether what `from` sends reaches `to`.
    fn reachable(&self, from: usize, to: usize) -> bool {
        self.side[from] == self.side[to]
            && !self
                .cuts
                .iter()
                .any(|c| (c.from, c.to) == (from, to) && c.until > self.tick)
    }

    /// Send member `from`'s latest claim to every other member (some
    /// copies lost, some doubled, each late by up to 6 ticks).
    fn broadcast(&mut self, from: usize) {
        let claim = self.cluster(from).claim();
        if self.members[from].claim.0 != claim.version {
            // Claims travel as text: what arrives is what parses.
            let parsed = Claim::parse(&claim.to_text()).expect("claims parse");
            assert_eq!(&parsed, claim, "claims round-trip through text");
            for slot in parsed.slots.iter() {
                self.backed[from].insert(slot);
            }
            self.members[from].claim = (parsed.version, Rc::new(parsed));
        }
        let claim = self.members[from].claim.1.clone();
        let reports = self.cluster(from).reports().to_text();
        for to in 0..self.members.len() {
            if to == from || self.rng.chance(self.net.loss) {
                continue;
            }
            let copies = if self.rng.chance(5) { 2 } else { 1 };
            for _ in 0..copies {
                let at = self.tick + 1 + self.rng.below(self.net.delay) as u64;
                self.in_flight.push(Message {
                    at,
                    from,
                    to,
                    claim: claim.clone(),
                    reports: reports.clone(),
                });
            }
        }
    }

    fn deliver(&mut self) {
        let tick = self.tick;
        let (due, later): (Vec<Message>, Vec<Message>) =
            self.in_flight.drain(..).partition(|m| m.at <= tick);
        self.in_flight = later;
        let now = self.now();
        for message in due {
            let up = self.members[message.to].cluster.is_some();
            if !up || !self.reachable(message.from, message.to) {
                continue;
            }
            self.input(message.to, |c| c.apply_claim(&message.claim, now));
            let (from, reports) = (message.claim.id, Reports::parse(&message.reports));
            self.input(message.to, |c| c.apply_reports(&from, &reports, now));
        }
    }

    /// The server's failure detector: heartbeats arrive every tick (some
    /// lost); a peer silent for the node timeout is suspect, for twice it
    /// dead, and alive again once heard. Verdicts go in when they change.
    fn detect_failures(&mut self) {
        let size = self.members.len();
        let (now, tick) = (self.now(), self.tick);
        for i in 0..size {
            for j in (0..size).filter(|j| *j != i) {
                if self.members[i].cluster.is_none() {
                    continue;
                }
                let up = self.members[j].cluster.is_some() && self.reachable(j, i);
                if up && !self.rng.chance(self.net.loss) {
                    self.members[i].heard[j] = tick;
                }
                let silent = tick - self.members[i].heard[j];
                let verdict = if silent >= 2 * NODE_TIMEOUT_TICKS {
                    Liveness::Dead
                } else if silent >= NODE_TIMEOUT_TICKS {
                    Liveness::Suspect
                } else {
                    Liveness::Alive
                };
                if self.members[i].told[j] == Some(verdict) {
                    continue;
                }
                self.members[i].told[j] = Some(verdict);
                let id = self.members[j].id;
                self.input(i, |c| c.set_liveness(&id, verdict, now));
            }
        }
    }

    // ---- inputs and their effects ---------------------------------------------

    fn cluster(&self, i: usize) -> &Cluster {
        self.members[i].cluster.as_ref().expect("a live member")
    }

    fn admin(&mut self, i: usize, line: &str) {
        if self.members[i].cluster.is_none() {
            return;
        }
        let args: Args = line.split(' ').map(str::as_bytes).collect();
        let now = self.now();
        let reply = self.input(i, |c| {
            let (reply, effects) = c.command(args.list(), now);
            (reply, effects)
        });
        // SETSLOT NODE names the slot's owner for every node it runs on.
        if let (Some(Reply::Ok), [_, _, slot, node, target]) = (&reply, &args.list().to_vec()[..])
            && node.eq_ignore_ascii_case(b"node")
        {
            let slot: Slot = std::str::from_utf8(slot).unwrap().parse().unwrap();
            let target = NodeId::parse(target).expect("a node id");
            self.backed[self.index[&target]].insert(slot);
        }
        let shown = match &reply {
            Some(Reply::Error(e)) => String::from_utf8_lossy(e).into_owned(),
            Some(r) => format!("{r:?}"),
            None => String::new(),
        };
        self.trace
            .push(format!("t{} {i}: {line} -> {shown}", self.tick));
    }

    /// Apply one input to member `i` and act on its effects, checking what
    /// the effects promise.
    fn input<R: InputResult>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Cluster) -> R,
    ) -> Option<R::Out> {
        let member = &mut self.members[i];
        let cluster = member.cluster.as_mut()?;
        let served = cluster.served_slots();
        let (out, effects) = f(cluster).split();
        let now_served = cluster.served_slots();
        let lost = served.difference(&now_served);
        let said: SlotSet = effects
            .iter()
            .find_map(|e| match e {
                Effect::LostSlots(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        assert_eq!(
            said, lost,
            "LostSlots names exactly the slots no longer served"
        );
        member.dirty |= effects.contains(&Effect::SaveConfig);
        if !lost.is_empty() {
            let (count, ranges) = (lost.len(), lost.ranges());
            let shown = &ranges[..ranges.len().min(4)];
            self.trace.push(format!(
                "t{} {i} lost {count} slots: {shown:?}...",
                self.tick
            ));
        }
        self.check_epochs(i);
        if effects.contains(&Effect::PublishClaim) {
            self.broadcast(i);
        }
        Some(out)
    }

    // ---- checks -----------------------------------------------------------------

    /// A node's current epoch never goes back, across restarts too, and
    /// neither does its config epoch while it is a master (a replica's is
    /// its master's; Redis loads it as 0).
    fn check_epochs(&mut self, i: usize) {
        let member = &mut self.members[i];
        let Some(cluster) = &member.cluster else {
            return;
        };
        let current = cluster.current_epoch();
        assert!(
            current >= member.epochs.0,
            "node {i}: current epoch went back: {current} < {}",
            member.epochs.0
        );
        member.epochs.0 = current;
        if cluster.myself().is_master() {
            let config = cluster.myself().config_epoch;
            assert!(
                config >= member.epochs.1,
                "node {i}: config epoch went back: {config} < {}",
                member.epochs.1
            );
            member.epochs.1 = config;
        }
    }

    /// In every node's table, a slot is bound to one node, and to a node
    /// that claimed it once (or was named its owner by SETSLOT NODE).
    fn check_safety(&self) {
        for (i, member) in self.members.iter().enumerate() {
            let Some(cluster) = &member.cluster else {
                continue;
            };
            let mut seen = SlotSet::new();
            for node in cluster.nodes() {
                let owner = self.index[&node.id];
                let count = seen.len();
                seen = node.slots.iter().fold(seen, |mut seen, slot| {
                    seen.insert(slot);
                    seen
                });
                assert_eq!(
                    seen.len(),
                    count + node.slots.len(),
                    "node {i} shows two owners of a slot: {}",
                    cluster.nodes_text()
                );
                let unbacked = node.slots.difference(&self.backed[owner]);
                assert!(
                    unbacked.is_empty(),
                    "node {i} binds slots {unbacked:?} to node {owner}, which never claimed them"
                );
            }
        }
    }

    /// Run until every view is true and every live node agrees, for a while.
    fn settle(&mut self) {
        let mut calm = 0;
        for _ in 0..SETTLE_MAX_TICKS {
            self.step();
            calm = if self.live_masters_own_every_slot() {
                calm + 1
            } else {
                0
            };
            if calm >= CALM_TICKS && self.converged() {
                return;
            }
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].cluster.is_some())
            .collect()
    }

    fn converged(&self) -> bool {
        let live = self.live();
        let first = self.slot_map(live[0]);
        live.iter().all(|i| self.slot_map(*i) == first)
    }

    /// A node's slot map: each master with slots, its config epoch and
    /// slots, in id order.
    fn slot_map(&self, i: usize) -> Vec<(NodeId, u64, SlotSet)> {
        self.cluster(i)
            .nodes()
            .into_iter()
            .filter(|n| n.is_master() && !n.slots.is_empty())
            .map(|n| (n.id, n.config_epoch, n.slots.clone()))
            .collect()
    }

    /// Every slot is owned by a live master that says so itself, and the
    /// first live node sees the same.
    fn live_masters_own_every_slot(&self) -> bool {
        let live = self.live();
        let view = self.cluster(live[0]);
        let mut owned = 0;
        for i in &live {
            let me = self.cluster(*i).myself();
            if me.is_master() {
                owned += me.slots.len();
                if view.node(&me.id).is_none_or(|n| n.slots != me.slots) {
                    return false;
                }
            }
        }
        owned == SLOTS
    }

    fn check_final(&self) {
        let live = self.live();
        let first = config_signature(&self.cluster(live[0]).nodes_text());
        let map = self.slot_map(live[0]);
        for i in &live {
            let signature = config_signature(&self.cluster(*i).nodes_text());
            assert_eq!(signature, first, "node {i} disagrees with node {}", live[0]);
            assert_eq!(
                self.slot_map(*i),
                map,
                "node {i}'s slot map or epochs differ from node {}'s",
                live[0]
            );
        }
        assert!(
            self.live_masters_own_every_slot(),
            "some slot has no live master, or views differ"
        );
        let mut epochs: Vec<u64> = map.iter().map(|(_, epoch, _)| *epoch).collect();
        epochs.sort_unstable();
        assert!(
            epochs.windows(2).all(|w| w[0] < w[1]),
            "masters share a config epoch: {map:?}"
        );
        self.check_safety();
    }
}

/// An input's result: its effects, and for a command its reply too.
trait InputResult {
    type Out;
    fn split(self) -> (Self::Out, Vec<Effect>);
}

impl InputResult for Vec<Effect> {
    type Out = ();
    fn split(self) -> ((), Vec<Effect>) {
        ((), self)
    }
}

impl InputResult for (Reply, Vec<Effect>) {
    type Out = Reply;
    fn split(self) -> (Reply, Vec<Effect>) {
        self
    }
}
