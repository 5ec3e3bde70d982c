//! nodes.conf: the CLUSTER NODES lines (with Redis 7.2's aux fields) and a
//! `vars` line, written after every change that matters and read at start,
//! so a restarted node comes back with its id, epochs and slots
//! (`clusterSaveConfig`, `clusterLoadConfig`). Files written by Redis 7.0
//! (no aux fields) and 7.2 both load.
//!
//! The `vars` line may carry one variable of ringcast's own, `looseSlots`:
//! the unbound slots rule 6 is waiting on, so that a restart does not
//! forget them (Redis skips variables it does not know).
//!
//! Unlike Redis, `fail` and `fail?` flags are not restored: they were the
//! failure detector's view before the restart, and the gossip layer tells
//! anew who is alive. Restoring them would have the restarted node take
//! over slots of masters that are alive and well (rule 5).

use std::collections::BTreeMap;

use super::claim::parse_addr;
use super::node::{Flags, Link, Node, NodeId};
use super::slots::{SlotSet, parse_range, render_ranges};
use super::{Boot, Cluster, Settings};

/// A nodes.conf that does not parse (Redis refuses to start on one).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfError {
    #[error("corrupted cluster config file, line {line}: {why}")]
    Line { line: usize, why: &'static str },
    #[error("corrupted cluster config file: no node is flagged myself")]
    NoMyself,
}

impl Cluster {
    /// The nodes.conf content.
    pub fn nodes_conf(&self) -> String {
        let mut text: String = self
            .nodes()
            .into_iter()
            .filter(|n| !n.flags.contains(Flags::HANDSHAKE))
            .map(|n| self.node_line(n, true) + "\n")
            .collect();
        text.push_str(&format!(
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        ));
        let unbound: SlotSet = self
            .loose
            .keys()
            .copied()
            .filter(|slot| self.owner_id(*slot).is_none())
            .collect();
        if !unbound.is_empty() {
            let ranges = render_ranges(&unbound.ranges()).replace(' ', ",");
            text.push_str(&format!(" looseSlots {ranges}"));
        }
        text.push('\n');
        text
    }

    /// A node restarting from its nodes.conf; publish [`Cluster::claim`]
    /// once started.
    pub fn load(text: &str, settings: Settings, boot: Boot) -> Result<Cluster, ConfError> {
        let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
        let mut open: Vec<(u16, bool, NodeId)> = Vec::new();
        let mut vars = Vars::default();
        for (at, line) in text.lines().enumerate() {
            let fail = |why| ConfError::Line { line: at + 1, why };
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            match words.first() {
                None => continue,
                Some(w) if w.eq_ignore_ascii_case("vars") => {
                    vars.read(&words[1..]).map_err(fail)?;
                }
                Some(_) => read_node(&words, &mut nodes, &mut open).map_err(fail)?,
            }
        }
        let myself = nodes
            .values()
            .find(|n| n.is_myself())
            .map(|n| n.id)
            .ok_or(ConfError::NoMyself)?;
        let mut me = nodes.remove(&myself).ok_or(ConfError::NoMyself)?;
        me.link = Link::Connected;
        let mut cluster = Cluster::assemble(me, nodes, settings, boot, boot.seed);
        for (slot, migrating, peer) in open {
            let table = if migrating {
                &mut cluster.migrating
            } else {
                &mut cluster.importing
            };
            table.insert(slot, peer);
        }
        cluster.last_vote_epoch = vars.last_vote_epoch;
        cluster.current_epoch = vars.current_epoch.max(cluster.max_epoch());
        for slot in vars.loose.iter() {
            if cluster.owner_id(slot).is_none() {
                cluster.loose.insert(slot, boot.now);
            }
        }
        cluster.published = cluster.build_claim(cluster.published.version);
        Ok(cluster)
    }
}

/// The `vars` line.
#[derive(Default)]
struct Vars {
    current_epoch: u64,
    last_vote_epoch: u64,
    loose: SlotSet,
}

impl Vars {
    fn read(&mut self, words: &[&str]) -> Result<(), &'static str> {
        if !words.len().is_multiple_of(2) {
            return Err("vars");
        }
        for pair in words.chunks(2) {
            // Redis reads epochs with strtoull and skips unknown variables.
            let (name, value) = (pair[0], pair[1]);
            if name.eq_ignore_ascii_case("currentEpoch") {
                self.current_epoch = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("lastVoteEpoch") {
                self.last_vote_epoch = value.parse().unwrap_or(0);
            } else if name == "looseSlots" {
                for range in value.split(',') {
                    let (start, end) = parse_range(range).ok_or("looseSlots")?;
                    (start..=end).for_each(|slot| _ = self.loose.insert(slot));
                }
            }
        }
        Ok(())
    }
}

/// One node line: `id addr flags master ping pong epoch link slots...`.
fn read_node(
    words: &[&str],
    nodes: &mut BTreeMap<NodeId, Node>,
    open: &mut Vec<(u16, bool, NodeId)>,
) -> Result<(), &'static str> {
    if words.len() < 8 {
        return Err("fewer than eight fields");
    }
    let id = NodeId::parse(words[0].as_bytes()).ok_or("node id")?;
    let (addr_text, aux) = split_aux(words[1]);
    let addr = parse_addr(addr_text).ok_or("address")?;
    let mut flags = Flags::parse(words[2]).ok_or("flags")?;
    flags.remove(Flags::FAIL | Flags::PFAIL);
    let master = match words[3] {
        m if m.starts_with('-') => None,
        m => Some(NodeId::parse(m.as_bytes()).ok_or("master id")?),
    };
    let shard = match aux.iter().find_map(|a| a.strip_prefix("shard-id=")) {
        Some(s) => NodeId::parse(s.as_bytes()).ok_or("shard id")?,
        None => master.unwrap_or(id),
    };
    // A replica's epoch is its master's; Redis loads it as 0.
    let epoch = match master {
        Some(_) if flags.contains(Flags::SLAVE) => 0,
        _ => words[6].parse().unwrap_or(0),
    };
    let mut node = Node::new(id, shard, flags);
    node.addr = addr;
    node.master = master;
    node.config_epoch = epoch;
    for entry in &words[8..] {
        if let Some(inner) = entry.strip_prefix('[') {
            open.push(read_open_slot(inner)?);
        } else {
            let (start, end) = parse_range(entry).ok_or("slot range")?;
            for slot in start..=end {
                node.slots.insert(slot);
            }
        }
    }
    nodes.insert(id, node);
    Ok(())
}

/// `ip:port@cport,hostname,aux=value,...` → the address part and the aux
/// fields (Redis 7.2 writes `tls-port` and `shard-id` there).
fn split_aux(field: &str) -> (&str, Vec<&str>) {
    let mut parts = field.splitn(3, ',');
    let main = parts.next().unwrap_or_default();
    let host = parts.next();
    let aux = parts
        .next()
        .map(|a| a.split(',').collect())
        .unwrap_or_default();
    let end = main.len() + host.map_or(0, |h| h.len() + 1);
    (&field[..end], aux)
}

/// `slot->-id]` (migrating) or `slot-<-id]` (importing).
fn read_open_slot(inner: &str) -> Result<(u16, bool, NodeId), &'static str> {
    let body = inner.strip_suffix(']').ok_or("open slot")?;
    let (slot, migrating, peer) = if let Some((slot, peer)) = body.split_once("->-") {
        (slot, true, peer)
    } else if let Some((slot, peer)) = body.split_once("-<-") {
        (slot, false, peer)
    } else {
        return Err("open slot");
    };
    let slot: u16 = slot.parse().map_err(|_| "open slot")?;
    if usize::from(slot) >= super::SLOTS {
        return Err("open slot");
    }
    let peer = NodeId::parse(peer.as_bytes()).ok_or("open slot node")?;
    Ok((slot, migrating, peer))
}
