//! Cluster mode's commands — CLUSTER, READONLY, READWRITE, ASKING — and the
//! routing check dispatch runs before SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and
//! EXEC (Redis's `getNodeByQuery` in `processCommand`).
//!
//! CLUSTER runs on the server's bus thread, which owns the cluster state:
//! the command hands its arguments over ([`Bus::request`]) and returns
//! [`Exec::Blocked`], so the connection stops reading without the worker
//! waiting; when the reply is in the worker's mailbox the hub wakes the
//! connection, the same command runs again and sends it. Routing reads the
//! snapshot the bus thread publishes, never the bus thread itself.
//!
//! [`Bus::request`]: crate::cluster::Bus::request

use super::{CommandSpec, Ctx, Exec, cmd};
use crate::cluster::{self, BusRequest, Reply, SUBCOMMANDS};
use crate::resp::args::ArgList;
use crate::resp::encode;
use crate::session::ClusterWait;

/// CLUSTER's subcommands, with Redis's arities (the bus thread's state
/// machine checks them again, with the same texts).
pub(super) static CLUSTER: &[CommandSpec] = &TABLE;

static TABLE: [CommandSpec; SUBCOMMANDS.len()] = {
    let mut table = [const { cmd("", 0, 0, cluster) }; SUBCOMMANDS.len()];
    let mut i = 0;
    while i < SUBCOMMANDS.len() {
        table[i].name = FULL_NAMES[i];
        table[i].arity = SUBCOMMANDS[i].1;
        i += 1;
    }
    table
};

/// `cluster|<sub>` for each of [`SUBCOMMANDS`], in its order (a test holds
/// the two lists together).
const FULL_NAMES: [&str; SUBCOMMANDS.len()] = [
    "cluster|addslots",
    "cluster|addslotsrange",
    "cluster|bumpepoch",
    "cluster|count-failure-reports",
    "cluster|countkeysinslot",
    "cluster|delslots",
    "cluster|delslotsrange",
    "cluster|failover",
    "cluster|flushslots",
    "cluster|forget",
    "cluster|getkeysinslot",
    "cluster|help",
    "cluster|info",
    "cluster|keyslot",
    "cluster|links",
    "cluster|meet",
    "cluster|myid",
    "cluster|myshardid",
    "cluster|nodes",
    "cluster|replicas",
    "cluster|replicate",
    "cluster|reset",
    "cluster|saveconfig",
    "cluster|set-config-epoch",
    "cluster|setslot",
    "cluster|shards",
    "cluster|slaves",
    "cluster|slots",
];

/// `CLUSTER <subcommand> ...`: answered by the bus thread.
fn cluster(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if !ctx.shared.cluster.enabled() {
        encode::error(ctx.reply, cluster::DISABLED);
        return Exec::Done;
    }
    match std::mem::take(&mut ctx.session.cluster_wait) {
        ClusterWait::Answered(reply) => {
            reply.encode(ctx.reply, ctx.session.proto);
            Exec::Done
        }
        ClusterWait::Waiting => {
            ctx.session.cluster_wait = ClusterWait::Waiting;
            Exec::Blocked
        }
        ClusterWait::Idle => {
            let request = BusRequest {
                worker: ctx.worker,
                client: ctx.session.id,
                args: args.to_args(),
            };
            if ctx.shared.cluster.request(request) {
                ctx.session.cluster_wait = ClusterWait::Waiting;
                Exec::Blocked
            } else {
                encode::error(ctx.reply, b"ERR the cluster bus is not running");
                Exec::Done
            }
        }
    }
}

/// READONLY, READWRITE and ASKING.
pub(super) fn conn_flag(ctx: &mut Ctx<'_>, args: ArgList<'_>) -> Exec {
    if !ctx.shared.cluster.enabled() {
        encode::error(ctx.reply, cluster::DISABLED);
        return Exec::Done;
    }
    match ctx.session.cluster.apply(&args[0]) {
        Some(reply) => reply.encode(ctx.reply, ctx.session.proto),
        None => Reply::Ok.encode(ctx.reply, ctx.session.proto),
    }
    Exec::Done
}

/// Where the command may run in cluster mode: the error to send instead
/// (`MOVED`, `CROSSSLOT`, `CLUSTERDOWN`...), or None to run it here.
pub(super) fn redirect(ctx: &Ctx<'_>, spec: &CommandSpec, args: ArgList<'_>) -> Option<Vec<u8>> {
    if !ctx.shared.cluster.enabled() {
        return None;
    }
    let channels = match spec.name {
        "ssubscribe" | "sunsubscribe" => args.slice(1..),
        "spublish" => args.slice(1..2),
        "exec" => {
            let view = ctx.shared.cluster.view()?;
            let t = ctx.session.transaction.as_deref()?;
            return view
                .route_exec(t.shard_channels(), ctx.session.cluster)
                .err()
                .map(|r| r.error_text());
        }
        _ => return None,
    };
    let Some(view) = ctx.shared.cluster.view() else {
        // Not started yet: nothing is served.
        return Some(b"CLUSTERDOWN Hash slot not served".to_vec());
    };
    view.route_shard(channels.iter(), ctx.session.cluster)
        .err()
        .map(|r| r.error_text())
}

/// After a command: ASKING holds for the next command only, outside MULTI.
pub(super) fn command_done(ctx: &mut Ctx<'_>, spec: &CommandSpec) {
    if ctx.shared.cluster.enabled() && spec.name != "asking" && ctx.session.transaction.is_none() {
        ctx.session.cluster.command_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommand_names_follow_the_state_machine_table() {
        for ((name, _), full) in SUBCOMMANDS.iter().zip(FULL_NAMES) {
            assert_eq!(full.strip_prefix("cluster|"), Some(*name));
        }
    }
}
