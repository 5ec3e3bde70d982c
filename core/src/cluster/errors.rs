//! Every error text of the cluster commands and of cluster routing, as Redis
//! 7.2.4's `cluster.c` writes them (the generic ones, syntax and arity, are
//! in [`crate::errors`]). Echoed arguments are cut at a NUL, as Redis's
//! `%s` cuts them.

/// Any cluster command on a node started without `cluster-enabled yes`.
pub const DISABLED: &str = "ERR This instance has cluster support disabled";
pub(super) const INVALID_SLOT: &str = "ERR Invalid or out of range slot";
pub(super) const SETSLOT_ON_REPLICA: &str = "ERR Please use SETSLOT only with masters.";
pub(super) const TARGET_NOT_MASTER: &str = "ERR Target node is not a master";
pub(super) const SETSLOT_SYNTAX: &str =
    "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";
pub(super) const COUNTKEYS_SLOT: &str = "ERR Invalid slot";
pub(super) const GETKEYS_ARGS: &str = "ERR Invalid slot or number of keys";
pub(super) const FORGET_MYSELF: &str = "ERR I tried hard but I can't forget myself...";
pub(super) const FORGET_MY_MASTER: &str = "ERR Can't forget my master!";
pub(super) const REPLICATE_MYSELF: &str = "ERR Can't replicate myself";
pub(super) const REPLICATE_REPLICA: &str = "ERR I can only replicate a master, not a replica.";
pub(super) const REPLICATE_NOT_EMPTY: &str =
    "ERR To set a master the node must be empty and without assigned slots.";
pub(super) const NOT_A_MASTER: &str = "ERR The specified node is not a master";
pub(super) const FAILOVER_ON_MASTER: &str = "ERR You should send CLUSTER FAILOVER to a replica";
pub(super) const FAILOVER_NO_MASTER: &str = "ERR I'm a replica but my master is unknown to me";
pub(super) const FAILOVER_MASTER_DOWN: &str =
    "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE";
pub(super) const EPOCH_KNOWS_OTHERS: &str =
    "ERR The user can assign a config epoch only when the node does not know any other node.";
pub(super) const EPOCH_NOT_ZERO: &str = "ERR Node config epoch is already non-zero";

pub(super) const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
pub(super) const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
pub(super) const DOWN: &str = "CLUSTERDOWN The cluster is down";
pub(super) const DOWN_READ_ONLY: &str =
    "CLUSTERDOWN The cluster is down and only accepts read commands";
pub(super) const UNBOUND: &str = "CLUSTERDOWN Hash slot not served";

pub(super) fn slot_busy(slot: u16) -> String {
    format!("ERR Slot {slot} is already busy")
}

pub(super) fn slot_unassigned(slot: u16) -> String {
    format!("ERR Slot {slot} is already unassigned")
}

pub(super) fn slot_repeated(slot: u16) -> String {
    format!("ERR Slot {slot} specified multiple times")
}

pub(super) fn inverted_range(start: u16, end: u16) -> String {
    format!("ERR start slot number {start} is greater than end slot number {end}")
}

pub(super) fn not_owner(slot: u16) -> String {
    format!("ERR I'm not the owner of hash slot {slot}")
}

pub(super) fn already_owner(slot: u16) -> String {
    format!("ERR I'm already the owner of hash slot {slot}")
}

/// SETSLOT MIGRATING / IMPORTING with an id this node does not know.
pub(super) fn dont_know_node(id: &[u8]) -> Vec<u8> {
    echo("ERR I don't know about node ", id, "")
}

pub(super) fn unknown_node(id: &[u8]) -> Vec<u8> {
    echo("ERR Unknown node ", id, "")
}

pub(super) fn invalid_base_port(port: &[u8]) -> Vec<u8> {
    echo("ERR Invalid base port specified: ", port, "")
}

pub(super) fn invalid_bus_port(port: &[u8]) -> Vec<u8> {
    echo("ERR Invalid bus port specified: ", port, "")
}

pub(super) fn invalid_address(ip: &[u8], port: &[u8]) -> Vec<u8> {
    let mut e = echo("ERR Invalid node address specified: ", ip, ":");
    e.extend_from_slice(c_str(port));
    e
}

pub(super) fn invalid_config_epoch(epoch: i64) -> String {
    format!("ERR Invalid config epoch specified: {epoch}")
}

pub(super) fn moved(slot: u16, endpoint: &str) -> String {
    format!("MOVED {slot} {endpoint}")
}

pub(super) fn ask(slot: u16, endpoint: &str) -> String {
    format!("ASK {slot} {endpoint}")
}

fn echo(before: &str, arg: &[u8], after: &str) -> Vec<u8> {
    [before.as_bytes(), c_str(arg), after.as_bytes()].concat()
}

fn c_str(bytes: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, bytes).unwrap_or(bytes.len());
    &bytes[..end]
}
