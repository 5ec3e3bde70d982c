//! Liveness from the gossip layer, and rules 5 and 6 of the module docs:
//! who takes the slots of a dead master, or of a live one that stopped
//! claiming them. Every node computes the same heir from the same view, and
//! only the heir acts; differing views end in several claims, which the
//! epoch rule settles.

use super::node::{Flags, Node, NodeId};
use super::slots::{Slot, SlotSet};
use super::{Cluster, Effect, Liveness};

impl Cluster {
    /// The gossip layer's verdict on a peer (ignored for unknown nodes: they
    /// appear with their first claim). `Suspect` and `Dead` both make it
    /// `fail?` only: `fail` needs a majority's reports (module `quorum`).
    pub fn set_liveness(&mut self, id: &NodeId, liveness: Liveness, now: u64) -> Vec<Effect> {
        self.step(now, |c| {
            let Some(node) = c.peers.get_mut(id) else {
                return;
            };
            let before = node.flags;
            match liveness {
                Liveness::Alive => node.flags.remove(Flags::FAIL | Flags::PFAIL),
                Liveness::Suspect | Liveness::Dead if !node.is_failed() => {
                    node.flags.insert(Flags::PFAIL)
                }
                Liveness::Suspect | Liveness::Dead => {}
            }
            if node.flags != before {
                c.save = true;
            }
        })
        .1
    }

    /// Take the slots this node is the heir of (rules 5 and 6), promoting
    /// itself if it is the chosen replica of a dead master.
    pub(super) fn reassign(&mut self) {
        let mut mine = SlotSet::new();
        let mut promoted = false;
        let dead = self
            .peers
            .values()
            .filter(|n| n.is_failed() && !n.slots.is_empty());
        for owner in dead {
            match self.replica_heir(owner) {
                Some(heir) if heir == self.me.id => {
                    promoted = true;
                    mine = owner.slots.iter().fold(mine, with);
                }
                Some(_) => {}
                None => mine = self.master_heir_of(owner.slots.iter(), mine),
            }
        }
        let grace = self.settings.orphan_grace_ms;
        let orphans = self
            .loose
            .iter()
            .filter(|(_, since)| self.now.saturating_sub(**since) >= grace)
            .map(|(slot, _)| *slot);
        mine = self.master_heir_of(orphans, mine);
        if mine.is_empty() {
            return;
        }
        if promoted {
            let me = self.me.id;
            self.set_node_as_master(&me);
        }
        self.take_greatest_epoch();
        let me = self.me.id;
        for slot in mine.iter() {
            self.move_slot(slot, me);
        }
    }

    /// The replica that takes a dead master's place: the live one with the
    /// smallest id, among those that may fail over.
    fn replica_heir(&self, master: &Node) -> Option<NodeId> {
        self.nodes()
            .into_iter()
            .filter(|n| n.is_replica() && n.master == Some(master.id))
            .filter(|n| !n.is_failed() && !n.flags.contains(Flags::NOFAILOVER))
            .map(|n| n.id)
            .min()
    }

    /// Add to `mine` the slots whose rendezvous heir among live masters is
    /// this node (none when it is not a master).
    fn master_heir_of(&self, slots: impl Iterator<Item = Slot>, mut mine: SlotSet) -> SlotSet {
        if !self.me.is_master() {
            return mine;
        }
        let live: Vec<(u64, NodeId)> = self
            .nodes()
            .into_iter()
            .filter(|n| n.is_master() && !n.is_failed())
            .map(|n| (id_hash(&n.id), n.id))
            .collect();
        for slot in slots {
            let heir = live
                .iter()
                .max_by_key(|(h, id)| (rendezvous(slot, *h), *id));
            if heir.map(|(_, id)| id) == Some(&self.me.id) {
                mine.insert(slot);
            }
        }
        mine
    }
}

fn with(mut set: SlotSet, slot: Slot) -> SlotSet {
    set.insert(slot);
    set
}

/// A node id's hash for [`rendezvous`]: FNV-1a, the same on every node and
/// every platform (the std hasher's algorithm may change).
pub(super) fn id_hash(id: &NodeId) -> u64 {
    id.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The weight of a node (by its [`id_hash`]) for `slot`: the heir of a slot
/// is the live master of greatest weight. SplitMix64's finalizer spreads
/// the bits.
pub(super) fn rendezvous(slot: Slot, id_hash: u64) -> u64 {
    let mut h = id_hash ^ u64::from(slot).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_slots_over_nodes() {
        let ids: Vec<NodeId> = (0..4u8)
            .map(|i| NodeId::parse(format!("{:040}", i).as_bytes()).unwrap())
            .collect();
        let mut won = [0usize; 4];
        for slot in 0..16384u16 {
            let (at, _) = ids
                .iter()
                .enumerate()
                .max_by_key(|(_, id)| rendezvous(slot, id_hash(id)))
                .unwrap();
            won[at] += 1;
        }
        // Each of 4 nodes gets about a quarter.
        assert!(won.iter().all(|&n| (3500..4700).contains(&n)), "{won:?}");
    }
}
