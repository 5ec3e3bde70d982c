//! The CLUSTER command: each subcommand's checks, in Redis 7.2.4's order and
//! with its replies (`clusterCommand`), and the change it makes.
//!
//! Where ringcast differs: it holds no keys, so COUNTKEYSINSLOT is 0,
//! GETKEYSINSLOT is empty and no "still holds keys" refusal happens; MEET
//! only hands the address to the gossip layer ([`Effect::Meet`]), without
//! a handshake node in the table; CLUSTER FAILOVER, in every mode, takes
//! over at once with a new epoch (there is no data to catch up on and no
//! vote); LINKS lists the peers gossip hears from; SAVECONFIG asks the server to save
//! ([`Effect::SaveConfig`]).

use std::net::IpAddr;

use super::errors;
use super::node::{Link, NodeId};
use super::reply::Reply;
use super::slots::{SLOTS, Slot, SlotSet, key_slot};
use super::{Cluster, Effect, FORGET_BAN_MS};
use crate::errors as common;
use crate::resp::args::ArgList;

/// The subcommands and their arities (Redis's convention: n > 0 exactly n
/// arguments counting `CLUSTER` and the subcommand, n < 0 at least -n).
pub const SUBCOMMANDS: &[(&str, i32)] = &[
    ("addslots", -3),
    ("addslotsrange", -4),
    ("bumpepoch", 2),
    ("count-failure-reports", 3),
    ("countkeysinslot", 3),
    ("delslots", -3),
    ("delslotsrange", -4),
    ("failover", -2),
    ("flushslots", 2),
    ("forget", 3),
    ("getkeysinslot", 4),
    ("help", 2),
    ("info", 2),
    ("keyslot", 3),
    ("links", 2),
    ("meet", -4),
    ("myid", 2),
    ("myshardid", 2),
    ("nodes", 2),
    ("replicas", 3),
    ("replicate", 3),
    ("reset", -2),
    ("saveconfig", 2),
    ("set-config-epoch", 3),
    ("setslot", -4),
    ("shards", 2),
    ("slaves", 3),
    ("slots", 2),
];

impl Cluster {
    /// Run `CLUSTER <subcommand> ...` (`args[0]` is `CLUSTER`): the reply,
    /// and what the server must do.
    pub fn command(&mut self, args: ArgList<'_>, now: u64) -> (Reply, Vec<Effect>) {
        self.step(now, |c| c.run(args))
    }

    fn run(&mut self, args: ArgList<'_>) -> Reply {
        let Some(sub) = args.get(1) else {
            return Reply::error(common::wrong_arity("cluster"));
        };
        let Some(&(name, arity)) = SUBCOMMANDS
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(sub))
        else {
            return Reply::error(common::unknown_subcommand(sub, "CLUSTER"));
        };
        let argc = args.len() as i32;
        if (arity > 0 && argc != arity) || argc < -arity {
            return Reply::error(common::wrong_arity(&format!("cluster|{name}")));
        }
        let syntax = || Reply::error(common::subcommand_syntax(sub, "CLUSTER"));
        match name {
            "help" => help(),
            "meet" if argc <= 5 => self.meet(args),
            "meet" => syntax(),
            "nodes" => Reply::Text(self.nodes_text()),
            "myid" => Reply::bulk(self.me.id.as_str()),
            "myshardid" => Reply::bulk(self.me.shard_id.as_str()),
            "slots" => self.slots_reply(),
            "shards" => self.shards_reply(),
            "info" => Reply::Text(self.info_text()),
            "links" => self.links_reply(),
            "flushslots" => {
                let me = self.me.id;
                self.del_node_slots(&me);
                Reply::Ok
            }
            "addslots" | "delslots" => self.change_slots(args, name == "delslots"),
            "addslotsrange" | "delslotsrange" => self.change_ranges(args, name == "delslotsrange"),
            "setslot" => self.setslot(args),
            "bumpepoch" => {
                let word = if self.bump_epoch_if_not_greatest() {
                    "BUMPED"
                } else {
                    "STILL"
                };
                Reply::Status(format!("{word} {}", self.me.config_epoch))
            }
            "saveconfig" => {
                self.save = true;
                Reply::Ok
            }
            "keyslot" => Reply::Int(key_slot(&args[2]).into()),
            "countkeysinslot" => match string2ll(&args[2]) {
                None => Reply::error(common::NOT_INTEGER),
                Some(slot) if !(0..SLOTS as i64).contains(&slot) => {
                    Reply::error(errors::COUNTKEYS_SLOT)
                }
                Some(_) => Reply::Int(0),
            },
            "getkeysinslot" => getkeysinslot(&args[2], &args[3]),
            "forget" => self.forget(&args[2]),
            "replicate" => self.replicate(&args[2]),
            "replicas" | "slaves" => match self.lookup(&args[2]) {
                None => Reply::error(errors::unknown_node(&args[2])),
                Some(n) if n.is_replica() => Reply::error(errors::NOT_A_MASTER),
                Some(n) => self.replica_lines(n),
            },
            "count-failure-reports" => match self.lookup(&args[2]) {
                None => Reply::error(errors::unknown_node(&args[2])),
                // Failure reports are the gossip layer's business.
                Some(_) => Reply::Int(0),
            },
            "failover" if argc <= 3 => self.failover(args.get(2)),
            "set-config-epoch" => self.set_config_epoch(&args[2]),
            "reset" if argc <= 3 => self.reset(args.get(2)),
            _ => syntax(),
        }
    }

    /// A known node by the id a client typed.
    fn lookup(&self, id: &[u8]) -> Option<&super::Node> {
        NodeId::parse(id).and_then(|id| self.node(&id))
    }

    /// ADDSLOTS / DELSLOTS: every argument must parse before any is checked.
    fn change_slots(&mut self, args: ArgList<'_>, del: bool) -> Reply {
        let mut slots = Vec::with_capacity(args.len() - 2);
        for arg in args.slice(2..) {
            match parse_slot(arg) {
                Some(slot) => slots.push(slot),
                None => return Reply::error(errors::INVALID_SLOT),
            }
        }
        let mut chosen = SlotSet::new();
        for slot in slots {
            if let Err(e) = self.check_assignment(&mut chosen, del, slot, slot) {
                return Reply::error(e);
            }
        }
        self.update_slots(&chosen, del);
        Reply::Ok
    }

    /// ADDSLOTSRANGE / DELSLOTSRANGE: pairs parsed and checked in turn.
    fn change_ranges(&mut self, args: ArgList<'_>, del: bool) -> Reply {
        if args.len() % 2 == 1 {
            let name = if del {
                "delslotsrange"
            } else {
                "addslotsrange"
            };
            return Reply::error(common::wrong_arity(&format!("cluster|{name}")));
        }
        let mut chosen = SlotSet::new();
        for pair in args.slice(2..).to_vec().chunks(2) {
            let (Some(start), Some(end)) = (parse_slot(pair[0]), parse_slot(pair[1])) else {
                return Reply::error(errors::INVALID_SLOT);
            };
            if start > end {
                return Reply::error(errors::inverted_range(start, end));
            }
            if let Err(e) = self.check_assignment(&mut chosen, del, start, end) {
                return Reply::error(e);
            }
        }
        self.update_slots(&chosen, del);
        Reply::Ok
    }

    /// `checkSlotAssignmentsOrReply`.
    fn check_assignment(
        &self,
        chosen: &mut SlotSet,
        del: bool,
        start: Slot,
        end: Slot,
    ) -> Result<(), String> {
        for slot in start..=end {
            let owned = self.owner_id(slot).is_some();
            if del && !owned {
                return Err(errors::slot_unassigned(slot));
            }
            if !del && owned {
                return Err(errors::slot_busy(slot));
            }
            if !chosen.insert(slot) {
                return Err(errors::slot_repeated(slot));
            }
        }
        Ok(())
    }

    /// `clusterUpdateSlots`: a slot this node was importing is its own now.
    fn update_slots(&mut self, slots: &SlotSet, del: bool) {
        let me = self.me.id;
        for slot in slots.iter() {
            self.importing.remove(&slot);
            if del {
                self.del_slot(slot);
            } else {
                self.add_slot(me, slot);
            }
        }
        self.save = true;
    }

    fn setslot(&mut self, args: ArgList<'_>) -> Reply {
        if self.me.is_replica() {
            return Reply::error(errors::SETSLOT_ON_REPLICA);
        }
        let Some(slot) = parse_slot(&args[2]) else {
            return Reply::error(errors::INVALID_SLOT);
        };
        let action = args[3].to_ascii_lowercase();
        let result = match (&action[..], args.get(4)) {
            (b"migrating", Some(id)) if args.len() == 5 => self.set_migrating(slot, id),
            (b"importing", Some(id)) if args.len() == 5 => self.set_importing(slot, id),
            (b"stable", None) => {
                self.migrating.remove(&slot);
                self.importing.remove(&slot);
                Ok(())
            }
            (b"node", Some(id)) if args.len() == 5 => self.set_slot_node(slot, id),
            _ => Err(errors::SETSLOT_SYNTAX.into()),
        };
        match result {
            Ok(()) => {
                self.save = true;
                Reply::Ok
            }
            Err(e) => Reply::Error(e),
        }
    }

    fn set_migrating(&mut self, slot: Slot, id: &[u8]) -> Result<(), Vec<u8>> {
        if self.owner_id(slot) != Some(self.me.id) {
            return Err(errors::not_owner(slot).into());
        }
        let target = self.lookup(id).ok_or_else(|| errors::dont_know_node(id))?;
        if target.is_replica() {
            return Err(errors::TARGET_NOT_MASTER.into());
        }
        self.migrating.insert(slot, target.id);
        Ok(())
    }

    fn set_importing(&mut self, slot: Slot, id: &[u8]) -> Result<(), Vec<u8>> {
        if self.owner_id(slot) == Some(self.me.id) {
            return Err(errors::already_owner(slot).into());
        }
        let source = self.lookup(id).ok_or_else(|| errors::dont_know_node(id))?;
        if source.is_replica() {
            return Err(errors::TARGET_NOT_MASTER.into());
        }
        self.importing.insert(slot, source.id);
        Ok(())
    }

    /// `SETSLOT <slot> NODE <id>`: bind the slot here; a master giving away
    /// its last slot becomes a replica of the taker; a node closing an
    /// import takes a new epoch so its claim wins.
    fn set_slot_node(&mut self, slot: Slot, id: &[u8]) -> Result<(), Vec<u8>> {
        let target = self.lookup(id).ok_or_else(|| errors::unknown_node(id))?;
        if target.is_replica() {
            return Err(errors::TARGET_NOT_MASTER.into());
        }
        let (target, dead) = (target.id, target.is_failed());
        let me = self.me.id;
        // No keys are ever held, so a migration closes at once.
        self.migrating.remove(&slot);
        let was_mine = self.owner_id(slot) == Some(me);
        self.move_slot(slot, target);
        if dead && target != me {
            // A dead node will not claim it: rule 6 gives it a live owner.
            self.loose.insert(slot, self.now);
        }
        if was_mine
            && target != me
            && self.me.slots.is_empty()
            && self.settings.allow_replica_migration
        {
            self.set_my_master(target);
        }
        if target == me && self.importing.remove(&slot).is_some() {
            self.bump_epoch_if_not_greatest();
        }
        Ok(())
    }

    fn meet(&mut self, args: ArgList<'_>) -> Reply {
        let Some(port) = string2ll(&args[3]) else {
            return Reply::error(errors::invalid_base_port(&args[3]));
        };
        let cport = match args.get(4) {
            Some(arg) => match string2ll(arg) {
                Some(cport) => cport,
                None => return Reply::error(errors::invalid_bus_port(arg)),
            },
            None => port.saturating_add(10000),
        };
        let ip = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok());
        let (Some(ip), Ok(port @ 1..), Ok(cport @ 1..)) =
            (ip, u16::try_from(port), u16::try_from(cport))
        else {
            return Reply::error(errors::invalid_address(&args[2], &args[3]));
        };
        self.pending.push(Effect::Meet {
            ip: ip.to_string(),
            port,
            cport,
        });
        Reply::Ok
    }

    fn forget(&mut self, id: &[u8]) -> Reply {
        let Some(node) = self.lookup(id) else {
            let banned = NodeId::parse(id).is_some_and(|id| self.banned.contains_key(&id));
            // Already forgotten (maybe on another node's word): fine.
            return if banned {
                Reply::Ok
            } else {
                Reply::error(errors::unknown_node(id))
            };
        };
        let id = node.id;
        if id == self.me.id {
            return Reply::error(errors::FORGET_MYSELF);
        }
        if self.me.is_replica() && self.me.master == Some(id) {
            return Reply::error(errors::FORGET_MY_MASTER);
        }
        self.banned.insert(id, self.now + FORGET_BAN_MS);
        self.del_node(&id);
        self.pending.push(Effect::Forget(id));
        Reply::Ok
    }

    fn replicate(&mut self, id: &[u8]) -> Reply {
        let Some(master) = self.lookup(id) else {
            return Reply::error(errors::unknown_node(id));
        };
        if master.id == self.me.id {
            return Reply::error(errors::REPLICATE_MYSELF);
        }
        if master.is_replica() {
            return Reply::error(errors::REPLICATE_REPLICA);
        }
        if self.me.is_master() && !self.me.slots.is_empty() {
            return Reply::error(errors::REPLICATE_NOT_EMPTY);
        }
        let master = master.id;
        self.set_my_master(master);
        Reply::Ok
    }

    /// CLUSTER FAILOVER [FORCE|TAKEOVER]: this replica takes its master's
    /// place and slots, with an epoch above all it knows.
    fn failover(&mut self, mode: Option<&[u8]>) -> Reply {
        let force = match mode {
            None => false,
            Some(m) if m.eq_ignore_ascii_case(b"force") || m.eq_ignore_ascii_case(b"takeover") => {
                true
            }
            Some(_) => return Reply::error(common::SYNTAX),
        };
        if self.me.is_master() {
            return Reply::error(errors::FAILOVER_ON_MASTER);
        }
        let Some(master) = self.my_master() else {
            return Reply::error(errors::FAILOVER_NO_MASTER);
        };
        if !force && (master.is_failed() || master.link == Link::Disconnected) {
            return Reply::error(errors::FAILOVER_MASTER_DOWN);
        }
        let slots = master.slots.clone();
        let me = self.me.id;
        self.set_node_as_master(&me);
        self.take_greatest_epoch();
        for slot in slots.iter() {
            self.move_slot(slot, me);
        }
        Reply::Ok
    }

    fn set_config_epoch(&mut self, arg: &[u8]) -> Reply {
        let Some(epoch) = string2ll(arg) else {
            return Reply::error(common::NOT_INTEGER);
        };
        if epoch < 0 {
            return Reply::error(errors::invalid_config_epoch(epoch));
        }
        if !self.peers.is_empty() {
            return Reply::error(errors::EPOCH_KNOWS_OTHERS);
        }
        if self.me.config_epoch != 0 {
            return Reply::error(errors::EPOCH_NOT_ZERO);
        }
        self.me.config_epoch = epoch as u64;
        self.current_epoch = self.current_epoch.max(epoch as u64);
        self.save = true;
        Reply::Ok
    }

    /// CLUSTER RESET [HARD|SOFT] (`clusterReset`): back to a master alone,
    /// and for HARD with new ids and epochs at 0.
    fn reset(&mut self, mode: Option<&[u8]>) -> Reply {
        let hard = match mode {
            None => false,
            Some(m) if m.eq_ignore_ascii_case(b"hard") => true,
            Some(m) if m.eq_ignore_ascii_case(b"soft") => false,
            Some(_) => return Reply::error(common::SYNTAX),
        };
        let me = self.me.id;
        self.set_node_as_master(&me);
        self.migrating.clear();
        self.importing.clear();
        for slot in 0..SLOTS as Slot {
            self.del_slot(slot);
        }
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in peers {
            self.del_node(&id);
            self.pending.push(Effect::Forget(id));
        }
        self.banned.clear();
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me.config_epoch = 0;
            self.me.id = self.random_id();
            self.me.shard_id = self.random_id();
        }
        self.save = true;
        Reply::Ok
    }
}

/// `getSlotOrReply`: a `string2ll` integer in `0..16384`.
fn parse_slot(arg: &[u8]) -> Option<Slot> {
    string2ll(arg)
        .filter(|s| (0..SLOTS as i64).contains(s))
        .map(|s| s as Slot)
}

fn getkeysinslot(slot: &[u8], count: &[u8]) -> Reply {
    let (Some(slot), Some(count)) = (string2ll(slot), string2ll(count)) else {
        return Reply::error(common::NOT_INTEGER);
    };
    if !(0..SLOTS as i64).contains(&slot) || count < 0 {
        return Reply::error(errors::GETKEYS_ARGS);
    }
    Reply::Array(Vec::new())
}

/// Redis's `string2ll`: an optional `-`, then `0` alone or digits not
/// starting with `0`, in range; nothing else (no `+`, no spaces, no `-0`).
pub(super) fn string2ll(arg: &[u8]) -> Option<i64> {
    if arg == b"0" {
        return Some(0);
    }
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    if !matches!(digits.first(), Some(b'1'..=b'9')) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn help() -> Reply {
    const LINES: &[&str] = &[
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ADDSLOTS <slot> [<slot> ...]",
        "    Assign slots to current node.",
        "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
        "    Assign slots which are between <start-slot> and <end-slot> to current node.",
        "BUMPEPOCH",
        "    Advance the cluster config epoch.",
        "COUNT-FAILURE-REPORTS <node-id>",
        "    Return number of failure reports for <node-id>.",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "DELSLOTS <slot> [<slot> ...]",
        "    Delete slots information from current node.",
        "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
        "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
        "FAILOVER [FORCE|TAKEOVER]",
        "    Promote current replica node to being a master.",
        "FORGET <node-id>",
        "    Remove a node from the cluster.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "FLUSHSLOTS",
        "    Delete current node own slots information.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MEET <ip> <port> [<bus-port>]",
        "    Connect nodes into a working cluster.",
        "MYID",
        "    Return the node id.",
        "MYSHARDID",
        "    Return the node's shard id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "REPLICATE <node-id>",
        "    Configure current node as replica to <node-id>.",
        "RESET [HARD|SOFT]",
        "    Reset current node (default: soft).",
        "SET-CONFIG-EPOCH <epoch>",
        "    Set config epoch of current node.",
        "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
        "    Set slot state.",
        "REPLICAS <node-id>",
        "    Return <node-id> replicas.",
        "SAVECONFIG",
        "    Force saving cluster configuration on disk.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "LINKS",
        "    Return information about all network links between this node and its peers.",
        "    Output format is an array where each array element is a map containing attributes of a link",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(LINES.iter().map(|l| Reply::Status(l.to_string())).collect())
}
