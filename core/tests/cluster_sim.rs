//! A deterministic simulation of a ringcast cluster: 3 to 10 nodes in one
//! process, each a `Cluster`, joined by a simulated gossip layer that
//! delivers each node's latest claim late, twice, out of order or not at
//! all, and by a failure detector that learns the truth late. Chaos:
//! partitions that heal, nodes killed and restarted from the nodes.conf
//! they saved, reshards done as redis-cli does them (two at a time on the
//! same slots, to different targets), masters dying with and without
//! replicas. Each message carries the sender's failure reports too, so a
//! dead master's slots move only while a majority of the slot-holding
//! masters is up. Then the network heals, the dead nodes restart, the run
//! quiesces, and every live
//! node must agree (redis-cli's signature), every slot must have exactly
//! one owner, a live master, and no epoch may ever have gone back.
//!
//! Every run is determined by its seed. More seeds:
//! `RINGCAST_CLUSTER_SIM_SEEDS=2000 cargo test -p ringcast-core --test cluster_sim`
//! (or a range, `RINGCAST_CLUSTER_SIM_SEEDS=401-800`);
//! one seed: `RINGCAST_CLUSTER_SIM_SEED=1234` (its trace is printed when it fails).

use std::collections::VecDeque;

use bytes::Bytes;
use ringcast_core::cluster::{
    Addr, Boot, Claim, Cluster, Effect, Liveness, NodeId, Reply, Reports, SLOTS, Settings, Slot,
    SlotSet, Version, config_signature,
};

const TICK_MS: u64 = 100;
const CHAOS_TICKS: u64 = 300;
const SETTLE_MAX_TICKS: u64 = 3000;

fn seeds() -> Vec<u64> {
    if let Ok(one) = std::env::var("RINGCAST_CLUSTER_SIM_SEED") {
        return vec![one.parse().expect("a seed")];
    }
    // `N` for seeds 1 to N, or `A-B`.
    let range = std::env::var("RINGCAST_CLUSTER_SIM_SEEDS").unwrap_or_else(|_| "16".into());
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
    /// The nodes.conf it saved last.
    conf: String,
    /// Asked to save since the end of the last tick (saves are coalesced
    /// per tick, as the server should do).
    dirty: bool,
    /// Its latest claim as text, cached by version.
    claim_text: (Version, String),
    id: NodeId,
    /// What its failure detector last told it about each member.
    told: Vec<Option<bool>>,
    /// The greatest current and config epochs it ever had.
    epochs: (u64, u64),
}

struct Message {
    at: u64,
    from: usize,
    to: usize,
    claim: String,
    reports: String,
}

/// A reshard in progress: the admin commands still to send, in order.
struct Reshard {
    steps: VecDeque<(usize, String)>,
}

struct Sim {
    rng: Rng,
    tick: u64,
    members: Vec<Member>,
    in_flight: Vec<Message>,
    /// Each member's side of the partition (all 0: none).
    side: Vec<u8>,
    reshards: Vec<Reshard>,
    /// The last claim text parsed from each member, and what it parsed to.
    parsed: Vec<Option<(String, Claim)>>,
    settings: Settings,
    trace: Vec<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let size = 3 + rng.below(8);
        let settings = Settings {
            orphan_grace_ms: 30 * TICK_MS,
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
                claim_text: (Version::default(), String::new()),
                cluster: Some(cluster),
                told: vec![None; size],
                epochs: (0, 0),
            });
        }
        Sim {
            rng,
            tick: 1,
            members,
            in_flight: Vec::new(),
            side: vec![0; size],
            reshards: Vec::new(),
            parsed: vec![None; size],
            settings,
            trace: vec![format!("seed {seed}: {size} nodes")],
        }
    }

    fn now(&self) -> u64 {
        self.tick * TICK_MS
    }

    fn run(&mut self) {
        self.create();
        for _ in 0..CHAOS_TICKS {
            self.chaos();
            self.step();
        }
        self.trace.push(format!("t{} heal and settle", self.tick));
        self.side.fill(0);
        // A majority of slot-holding masters must be up to move a dead
        // one's slots: bring everyone back.
        for i in 0..self.members.len() {
            if self.members[i].cluster.is_none() {
                self.restart(i);
            }
        }
        self.reshards.clear();
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
        let up = (0..size)
            .filter(|i| self.members[*i].cluster.is_some())
            .count();
        if self.rng.chance(3) && up > 2 && up > size / 2 {
            let victim = self.rng.below(size);
            if self.members[victim].cluster.take().is_some() {
                self.trace.push(format!("t{} kill {victim}", self.tick));
            }
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
        if self.rng.chance(4) {
            self.start_reshard();
        }
        if self.rng.chance(1) {
            let i = self.rng.below(size);
            self.admin(i, "CLUSTER BUMPEPOCH");
        }
        self.advance_reshards();
    }

    fn restart(&mut self, i: usize) {
        let boot = Boot {
            now: self.now(),
            seed: self.rng.next(),
        };
        let member = &mut self.members[i];
        let cluster = Cluster::load(&member.conf, self.settings.clone(), boot)
            .expect("a node restarts from the nodes.conf it saved");
        assert_eq!(cluster.myself().id, member.id);
        // Loading drops what was the failure detector's (fail flags, links).
        member.conf = cluster.nodes_conf();
        member.told.fill(None);
        member.cluster = Some(cluster);
        self.trace.push(format!("t{} restart {i}", self.tick));
        self.check_epochs(i);
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
            .filter(|s| (start..start + count).contains(s))
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
        if self.tick.is_multiple_of(20) {
            self.check_safety();
        }
    }

    /// Write the nodes.conf of the nodes that asked; check now and then that
    /// the others had nothing new to write.
    fn save_configs(&mut self) {
        for member in &mut self.members {
            let Some(cluster) = &member.cluster else {
                continue;
            };
            if std::mem::take(&mut member.dirty) {
                member.conf = cluster.nodes_conf();
            } else if self.rng.chance(10) {
                assert_eq!(
                    cluster.nodes_conf(),
                    member.conf,
                    "nodes.conf changed without SaveConfig"
                );
            }
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.side[a] == self.side[b]
    }

    fn broadcast(&mut self, from: usize) {
        let claim = self.cluster(from).claim();
        if self.members[from].claim_text.0 != claim.version {
            self.members[from].claim_text = (claim.version, claim.to_text());
        }
        let claim = self.members[from].claim_text.1.clone();
        let reports = self.cluster(from).reports().to_text();
        for to in 0..self.members.len() {
            if to == from || self.rng.chance(10) {
                continue;
            }
            let copies = if self.rng.chance(5) { 2 } else { 1 };
            for _ in 0..copies {
                let at = self.tick + 1 + self.rng.below(6) as u64;
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
        let (due, later): (Vec<Message>, Vec<Message>) =
            self.in_flight.drain(..).partition(|m| m.at <= self.tick);
        self.in_flight = later;
        let now = self.now();
        for message in due {
            let up = self.members[message.to].cluster.is_some();
            if !up || !self.reachable(message.from, message.to) {
                continue;
            }
            let claim = match &self.parsed[message.from] {
                Some((text, claim)) if *text == message.claim => claim.clone(),
                _ => {
                    let claim = Claim::parse(&message.claim).expect("claims parse");
                    self.parsed[message.from] = Some((message.claim.clone(), claim.clone()));
                    claim
                }
            };
            self.input(message.to, |c| c.apply_claim(&claim, now));
            let (from, reports) = (claim.id, Reports::parse(&message.reports));
            self.input(message.to, |c| c.apply_reports(&from, &reports, now));
        }
    }

    /// Each node learns the truth about each other node, late.
    fn detect_failures(&mut self) {
        let size = self.members.len();
        let now = self.now();
        for i in 0..size {
            for j in (0..size).filter(|j| *j != i) {
                if self.members[i].cluster.is_none() {
                    continue;
                }
                let alive = self.members[j].cluster.is_some() && self.reachable(i, j);
                if self.members[i].told[j] == Some(alive) || !self.rng.chance(25) {
                    continue;
                }
                self.members[i].told[j] = Some(alive);
                let id = self.members[j].id;
                let verdict = if alive {
                    Liveness::Alive
                } else {
                    Liveness::Dead
                };
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
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let now = self.now();
        let reply = self.input(i, |c| {
            let (reply, effects) = c.command(&args, now);
            (reply, effects)
        });
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

    /// No node ever shows two owners for one slot.
    fn check_safety(&self) {
        for (i, member) in self.members.iter().enumerate() {
            let Some(cluster) = &member.cluster else {
                continue;
            };
            let mut seen = SlotSet::new();
            for line in cluster.nodes_text().lines() {
                for entry in line.split(' ').skip(8).filter(|e| !e.starts_with('[')) {
                    let (start, end) = entry.split_once('-').unwrap_or((entry, entry));
                    let (start, end): (Slot, Slot) = (start.parse().unwrap(), end.parse().unwrap());
                    for slot in start..=end {
                        assert!(
                            seen.insert(slot),
                            "node {i} shows two owners of slot {slot}"
                        );
                    }
                }
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
            if calm >= 50 && self.converged() {
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
        if !self.live_masters_own_every_slot() {
            return false;
        }
        let live = self.live();
        let signatures: Vec<Option<String>> = live
            .iter()
            .map(|i| config_signature(&self.cluster(*i).nodes_text()))
            .collect();
        signatures.windows(2).all(|w| w[0] == w[1])
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
        for i in &live {
            let signature = config_signature(&self.cluster(*i).nodes_text());
            assert_eq!(signature, first, "node {i} disagrees with node {}", live[0]);
        }
        assert!(
            self.live_masters_own_every_slot(),
            "some slot has no live master, or views differ"
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
