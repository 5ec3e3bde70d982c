//! Claims: what each node publishes about itself, and how a peer's claim is
//! merged into this node's view (rules 1–3 of the module docs).
//!
//! A claim travels as one line of text (the gossip layer stores strings):
//!
//! ```text
//! <id> <ip>:<port>@<cport>[,<hostname>] <master-id|-> <shard-id> <config-epoch>
//!     <current-epoch> <incarnation> <seq> <nofailover:0|1> [<slot ranges>...]
//! ```

use std::fmt::Write as _;

use super::Cluster;
use super::node::{Addr, Flags, Node, NodeId, Version};
use super::slots::{self, SlotSet};

/// A node's account of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub id: NodeId,
    pub version: Version,
    pub addr: Addr,
    pub shard_id: NodeId,
    /// The master it replicates; `None` for a master.
    pub master: Option<NodeId>,
    pub no_failover: bool,
    pub config_epoch: u64,
    pub current_epoch: u64,
    /// The slots bound to it in its own table.
    pub slots: SlotSet,
}

/// A claim line that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed cluster claim: {0}")]
pub struct ClaimError(&'static str);

impl Claim {
    pub(super) fn placeholder(id: NodeId, version: Version) -> Claim {
        Claim {
            id,
            version,
            addr: Addr::default(),
            shard_id: id,
            master: None,
            no_failover: false,
            config_epoch: 0,
            current_epoch: 0,
            slots: SlotSet::new(),
        }
    }

    /// Equal but for the version.
    pub(super) fn same_content(&self, other: &Claim) -> bool {
        Claim {
            version: other.version,
            ..self.clone()
        } == *other
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("{} {}", self.id, render_addr(&self.addr));
        let master = self.master.map_or("-".to_string(), |m| m.to_string());
        let _ = write!(
            out,
            " {master} {} {} {} {} {} {}",
            self.shard_id,
            self.config_epoch,
            self.current_epoch,
            self.version.incarnation,
            self.version.seq,
            u8::from(self.no_failover),
        );
        let ranges = self.slots.ranges();
        if !ranges.is_empty() {
            out.push(' ');
            out.push_str(&slots::render_ranges(&ranges));
        }
        out
    }

    pub fn parse(text: &str) -> Result<Claim, ClaimError> {
        let mut words = text.split_ascii_whitespace();
        let mut next = |what| words.next().ok_or(ClaimError(what));
        let id = parse_id(next("id")?)?;
        let addr = parse_addr(next("address")?).ok_or(ClaimError("address"))?;
        let master = match next("master")? {
            "-" => None,
            m => Some(parse_id(m)?),
        };
        let shard_id = parse_id(next("shard id")?)?;
        let mut number = |what| next(what)?.parse::<u64>().map_err(|_| ClaimError(what));
        let config_epoch = number("config epoch")?;
        let current_epoch = number("current epoch")?;
        let incarnation = number("incarnation")?;
        let seq = number("seq")?;
        let no_failover = number("nofailover")? != 0;
        let mut slots = SlotSet::new();
        for range in words {
            let (start, end) = slots::parse_range(range).ok_or(ClaimError("slots"))?;
            for slot in start..=end {
                slots.insert(slot);
            }
        }
        Ok(Claim {
            id,
            version: Version { incarnation, seq },
            addr,
            shard_id,
            master,
            no_failover,
            config_epoch,
            current_epoch,
            slots,
        })
    }
}

fn parse_id(text: &str) -> Result<NodeId, ClaimError> {
    NodeId::parse(text.as_bytes()).ok_or(ClaimError("node id"))
}

/// `ip:port@cport[,hostname]`, as CLUSTER NODES writes an address.
pub(super) fn render_addr(addr: &Addr) -> String {
    let mut out = format!("{}:{}@{}", addr.ip, addr.port, addr.cport);
    if let Some(host) = &addr.hostname {
        out.push(',');
        out.push_str(host);
    }
    out
}

/// The inverse of [`render_addr`] (the ip is what precedes the last `:`, so
/// IPv6 addresses parse). A missing `@cport` means `port + 10000`.
pub(super) fn parse_addr(text: &str) -> Option<Addr> {
    let mut parts = text.split(',');
    let main = parts.next()?;
    let hostname = parts.next().filter(|h| !h.is_empty()).map(str::to_string);
    let (ip, ports) = main.rsplit_once(':')?;
    let (port, cport) = match ports.split_once('@') {
        Some((port, cport)) => (port.parse().ok()?, cport.parse().ok()?),
        None => {
            let port: u16 = ports.parse().ok()?;
            (port, port.checked_add(10000)?)
        }
    };
    Some(Addr {
        ip: ip.to_string(),
        port,
        cport,
        hostname,
    })
}

impl Cluster {
    /// Merge a peer's claim (Redis's handling of a PING/PONG header).
    pub fn apply_claim(&mut self, claim: &Claim, now: u64) -> Vec<super::Effect> {
        self.step(now, |c| c.merge(claim)).1
    }

    pub(super) fn build_claim(&self, version: Version) -> Claim {
        let me = &self.me;
        Claim {
            id: me.id,
            version,
            addr: me.addr.clone(),
            shard_id: me.shard_id,
            master: me.master.filter(|_| me.is_replica()),
            no_failover: me.flags.contains(Flags::NOFAILOVER),
            config_epoch: me.config_epoch,
            current_epoch: self.current_epoch,
            slots: me.slots.clone(),
        }
    }

    fn merge(&mut self, claim: &Claim) {
        let id = claim.id;
        if id == self.me.id || self.banned.contains_key(&id) {
            return;
        }
        let newer = match self.peers.get(&id).and_then(|n| n.version) {
            Some(seen) if claim.version < seen => return,
            Some(seen) => claim.version > seen,
            None => true,
        };
        if newer {
            self.take_details(claim);
        }
        self.learn_epochs(claim);
        self.take_role(claim);
        // A claim equal to the table still backs the slots an earlier,
        // partial claim of the sender's left loose (a reshard's claims
        // arrive while the table already has its later slots).
        let backs_loose = self.loose.keys().any(|slot| claim.slots.contains(*slot));
        let changed = self
            .peers
            .get(&id)
            .is_some_and(|n| n.is_master() && (n.slots != claim.slots || backs_loose));
        if changed {
            self.update_slots_config_with(id, claim.config_epoch, &claim.slots);
        } else if !self.loose.is_empty() {
            // It claims every slot bound to it: none of them is loose.
            let owners = &self.owners;
            self.loose
                .retain(|slot, _| owners[usize::from(*slot)] != Some(id));
        }
        self.handle_epoch_collision(claim);
    }

    /// Address, shard, flags and version from a claim newer than the last.
    fn take_details(&mut self, claim: &Claim) {
        let node = self
            .peers
            .entry(claim.id)
            .or_insert_with(|| Node::new(claim.id, claim.shard_id, Flags::default()));
        let before = (node.addr.clone(), node.shard_id, node.flags);
        node.addr = claim.addr.clone();
        node.shard_id = claim.shard_id;
        node.flags.set(Flags::NOFAILOVER, claim.no_failover);
        node.version = Some(claim.version);
        node.current_epoch = claim.current_epoch;
        if before != (node.addr.clone(), node.shard_id, node.flags) {
            self.save = true;
        }
    }

    /// Epochs only grow: the current epoch to the greatest seen, the
    /// sender's config epoch to the greatest it published.
    fn learn_epochs(&mut self, claim: &Claim) {
        let highest = claim.current_epoch.max(claim.config_epoch);
        if highest > self.current_epoch {
            self.current_epoch = highest;
            self.save = true;
        }
        if let Some(node) = self.peers.get_mut(&claim.id)
            && claim.config_epoch > node.config_epoch
        {
            node.config_epoch = claim.config_epoch;
            self.save = true;
        }
    }

    /// Master or replica, as claimed: a master turned replica loses its
    /// slots here.
    fn take_role(&mut self, claim: &Claim) {
        let Some(master) = claim.master else {
            self.set_node_as_master(&claim.id);
            return;
        };
        if let Some(node) = self.peers.get(&claim.id)
            && node.is_master()
        {
            // Its slots are unbound; nobody claims them yet (rule 6).
            let slots = node.slots.clone();
            self.del_node_slots(&claim.id);
            for slot in slots.iter() {
                self.loose.insert(slot, self.now);
            }
        }
        let shard = self.node(&master).map(|m| m.shard_id);
        if let Some(node) = self.peers.get_mut(&claim.id)
            && (!node.is_replica() || node.master != Some(master))
        {
            node.flags.remove(Flags::MASTER);
            node.flags.insert(Flags::SLAVE);
            node.master = Some(master);
            node.shard_id = shard.unwrap_or(node.shard_id);
            self.save = true;
        }
    }

    /// Rebind the slots a master claims with a greater epoch, or that their
    /// owner stopped claiming; then follow them if that emptied this node's
    /// master (Redis's `clusterUpdateSlotsConfigWith`).
    fn update_slots_config_with(&mut self, sender: NodeId, epoch: u64, claimed: &SlotSet) {
        let current_master = if self.me.is_master() {
            Some(self.me.id)
        } else {
            self.me.master
        };
        let bound = self
            .node(&sender)
            .map(|n| n.slots.clone())
            .unwrap_or_default();
        for slot in bound.difference(claimed).iter() {
            self.loose.entry(slot).or_insert(self.now);
        }
        let (mut took_ours, mut ours_moved) = (false, 0);
        // Slots come in runs of one owner: look each owner up once per run.
        let mut last: Option<(NodeId, bool)> = None;
        for slot in claimed.iter() {
            let owner = self.owner_id(slot);
            if owner == Some(sender) {
                self.loose.remove(&slot);
                continue;
            }
            if self.importing.contains_key(&slot) {
                continue;
            }
            let beaten = match (owner, last) {
                (None, _) => true,
                (Some(o), Some((id, beaten))) if o == id => beaten,
                (Some(o), _) => {
                    // A dead owner claims nothing: any claim takes its
                    // slots, even on an equal epoch it can no longer resolve.
                    let node = self.node(&o);
                    let beaten = node.is_none_or(|n| n.is_failed() || n.config_epoch < epoch);
                    last = Some((o, beaten));
                    beaten
                }
            };
            if beaten || self.loose.contains_key(&slot) {
                if owner.is_some() && owner == current_master {
                    took_ours = true;
                    ours_moved += 1;
                }
                self.move_slot(slot, sender);
            }
        }
        let emptied = current_master
            .and_then(|m| self.node(&m))
            .is_some_and(|m| m.slots.is_empty());
        let may_follow = self.settings.allow_replica_migration || claimed.len() == ours_moved;
        if took_ours && emptied && may_follow {
            self.set_my_master(sender);
        } else if let Some(grand) = self.my_master().and_then(|m| m.master)
            && self.me.is_replica()
            && grand != self.me.id
        {
            // A replica of a replica: follow the chain up.
            self.set_my_master(grand);
        }
    }

    /// Two masters on one config epoch: the smaller id moves on
    /// (`clusterHandleConfigEpochCollision`).
    fn handle_epoch_collision(&mut self, claim: &Claim) {
        let sender_is_master = self.peers.get(&claim.id).is_some_and(Node::is_master);
        if self.me.is_master()
            && sender_is_master
            && claim.config_epoch == self.me.config_epoch
            && self.me.id < claim.id
        {
            self.current_epoch += 1;
            self.me.config_epoch = self.current_epoch;
            self.save = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_text() {
        let claim = Claim {
            id: NodeId::parse(b"432db750da54b3d5ade2d900c753f459f58e016c").unwrap(),
            version: Version {
                incarnation: 1_700_000_000_000,
                seq: 7,
            },
            addr: Addr {
                ip: "::1".into(),
                port: 30001,
                cport: 40001,
                hostname: Some("host-one".into()),
            },
            shard_id: NodeId::parse(b"59842a06895be50589d2680b301a8082e78dec90").unwrap(),
            master: None,
            no_failover: true,
            config_epoch: 3,
            current_epoch: 9,
            slots: [0, 1, 2, 100, 16383].into_iter().collect(),
        };
        let text = claim.to_text();
        assert_eq!(
            text,
            "432db750da54b3d5ade2d900c753f459f58e016c ::1:30001@40001,host-one - \
             59842a06895be50589d2680b301a8082e78dec90 3 9 1700000000000 7 1 0-2 100 16383"
        );
        assert_eq!(Claim::parse(&text), Ok(claim));
    }

    #[test]
    fn malformed_claims_are_refused() {
        assert!(Claim::parse("").is_err());
        assert!(Claim::parse("nothex 1.2.3.4:1@2 - x 0 0 0 0 0").is_err());
        let id = "432db750da54b3d5ade2d900c753f459f58e016c";
        let good = format!("{id} 1.2.3.4:1@2 - {id} 0 0 0 0 0");
        assert!(Claim::parse(&good).is_ok());
        assert!(Claim::parse(&format!("{good} 0-16384")).is_err());
        assert!(Claim::parse(&format!("{id} 1.2.3.4:x@2 - {id} 0 0 0 0 0")).is_err());
    }
}
