//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
//! PUBLISH, SPUBLISH and the PUBSUB introspection subcommands.
//!
//! Confirmations are pushes: Redis sends them even under `CLIENT REPLY OFF`,
//! so they go straight to the output queue instead of through the reply.

use bytes::{Bytes, BytesMut};

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::cluster::forward;
use crate::errors;
use crate::registry::Namespace;
use crate::resp::encode::{self, Proto};
use crate::router::{self, SubKind};
use crate::session::{ClusterWait, Session};

const GLOBAL: SubKind = SubKind::Channel(Namespace::Global);
const SHARD: SubKind = SubKind::Channel(Namespace::Shard);

/// The start every confirmation of a command shares: the push header and
/// the command's word (`*3\r\n$11\r\nunsubscribe\r\n`), encoded once.
fn confirm_head(proto: Proto, word: &[u8]) -> BytesMut {
    let mut head = BytesMut::with_capacity(word.len() + 12);
    encode::push(&mut head, 3, proto);
    encode::bulk(&mut head, word);
    head
}

/// Appends a `<kind> <name|null> <count>` confirmation push to `out`,
/// `head` being the command's [`confirm_head`]. A command confirms each of
/// its arguments: they are encoded into one buffer and queued once
/// ([`queue`]), however many there are.
fn confirm(out: &mut BytesMut, head: &[u8], proto: Proto, name: Option<&[u8]>, count: usize) {
    out.extend_from_slice(head);
    match name {
        Some(n) => encode::bulk(out, n),
        None => encode::null(out, proto),
    }
    encode::integer(out, count as i64);
}

/// A buffer for the confirmations of a command naming `names`.
fn confirmations(names: &[Bytes], word: &[u8]) -> BytesMut {
    // `*3\r\n$<w>\r\n<word>\r\n$<n>\r\n<name>\r\n:<count>\r\n`: a name and
    // its count take at most 40 bytes besides their digits' worth.
    let each = word.len() + 40;
    BytesMut::with_capacity(
        names
            .iter()
            .map(|n| n.len() + each)
            .sum::<usize>()
            .max(each),
    )
}

/// Queues a command's confirmations (moved, not copied, when many).
fn queue(ctx: &mut Ctx<'_>, out: BytesMut) {
    ctx.pushes.append(out);
}

/// The count a confirmation of this kind reports: shard channels are
/// counted on their own, channels and patterns together.
fn count(session: &Session, kind: SubKind) -> usize {
    match kind {
        SHARD => session.shard_channels.len(),
        _ => session.subscription_count(),
    }
}

/// Cluster mode: whether this SUBSCRIBE/PSUBSCRIBE waits before it runs,
/// until every linked peer has the names that are new on this worker (see
/// `cluster::forward`, guarantee 3); `Some(true)` once it ran after a wait.
fn cluster_hold(ctx: &mut Ctx<'_>, names: &[Bytes], kind: SubKind) -> Option<bool> {
    let fkind = match kind {
        GLOBAL => forward::Kind::Channel,
        SubKind::Pattern => forward::Kind::Pattern,
        _ => return Some(false),
    };
    match std::mem::take(&mut ctx.session.cluster_wait) {
        ClusterWait::Answered(_) => Some(true),
        ClusterWait::Waiting => {
            ctx.session.cluster_wait = ClusterWait::Waiting;
            None
        }
        ClusterWait::Idle if !ctx.shared.cluster.linked() => Some(false),
        ClusterWait::Idle => {
            let new: Vec<(forward::Kind, Bytes)> = names
                .iter()
                .filter(|n| !ctx.router.has_local(kind, n))
                .map(|n| (fkind, Bytes::copy_from_slice(n)))
                .collect();
            if !new.is_empty() && ctx.shared.cluster.hold(ctx.worker, ctx.session.id, new) {
                ctx.session.cluster_wait = ClusterWait::Waiting;
                return None;
            }
            Some(false)
        }
    }
}

fn subscribe_all(ctx: &mut Ctx<'_>, args: &[Bytes], kind: SubKind, word: &[u8]) -> Exec {
    let held = if ctx.shared.cluster.enabled() {
        match cluster_hold(ctx, &args[1..], kind) {
            Some(held) => held,
            None => return Exec::Blocked,
        }
    } else {
        false
    };
    let proto = ctx.session.proto;
    let head = confirm_head(proto, word);
    let mut out = confirmations(&args[1..], word);
    for name in &args[1..] {
        ctx.router.subscribe(ctx.conn, ctx.session, kind, name);
        let n = count(ctx.session, kind);
        confirm(&mut out, &head, proto, Some(name), n);
    }
    if held {
        // After the subscriptions' own interest (one FIFO to the bus).
        ctx.shared.cluster.unhold(ctx.session.id);
    }
    queue(ctx, out);
    ctx.session.publish_counts();
    Exec::Done
}

fn unsubscribe_all(ctx: &mut Ctx<'_>, args: &[Bytes], kind: SubKind, word: &[u8]) -> Exec {
    let proto = ctx.session.proto;
    let head = confirm_head(proto, word);
    let names = &args[1..];
    let mut out = confirmations(names, word);
    // What the count holds besides this kind's subscriptions (patterns
    // for channels and the other way round), unchanged by the command.
    let others = count(ctx.session, kind) - router::held_mut(ctx.session, kind).len();
    if !names.is_empty() {
        // One frame per argument, in order, each with the count after its
        // step (also for names not held: the count is unchanged).
        ctx.router
            .unsubscribe_each(ctx.conn, ctx.session, kind, names, |name, left| {
                confirm(&mut out, &head, proto, Some(name), others + left);
            });
    } else {
        // Every held one (in no particular order, as Redis walks a hash
        // table); the count falls by one per frame.
        let held = ctx.router.unsubscribe_kind(ctx.conn, ctx.session, kind);
        let rest = count(ctx.session, kind);
        if held.is_empty() {
            // Nothing held and nothing named: one frame with a null name.
            confirm(&mut out, &head, proto, None, rest);
        }
        out.reserve(held.len() * (word.len() + 40));
        // Each name is dropped right after its frame, which frees the
        // entry of one the registry and the index no longer hold.
        let mut left = held.len();
        for name in held.into_names() {
            left -= 1;
            confirm(&mut out, &head, proto, Some(&name), rest + left);
        }
    }
    queue(ctx, out);
    ctx.session.publish_counts();
    Exec::Done
}

pub(super) fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    subscribe_all(ctx, args, GLOBAL, b"subscribe")
}

pub(super) fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    unsubscribe_all(ctx, args, GLOBAL, b"unsubscribe")
}

pub(super) fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    subscribe_all(ctx, args, SubKind::Pattern, b"psubscribe")
}

pub(super) fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    unsubscribe_all(ctx, args, SubKind::Pattern, b"punsubscribe")
}

pub(super) fn ssubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    subscribe_all(ctx, args, SHARD, b"ssubscribe")
}

pub(super) fn sunsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    unsubscribe_all(ctx, args, SHARD, b"sunsubscribe")
}

fn publish_in(ctx: &mut Ctx<'_>, args: &[Bytes], ns: Namespace) -> Exec {
    match ctx.router.publish(ns, &args[1], &args[2]) {
        Some(n) => {
            if ctx.shared.cluster.enabled() {
                // Cross-node: PUBLISH to the peers with subscribers for it,
                // SPUBLISH to this node's replicas.
                match ns {
                    Namespace::Global => ctx.shared.cluster.forward_publish(&args[1], &args[2]),
                    Namespace::Shard => ctx.shared.cluster.forward_spublish(&args[1], &args[2]),
                }
            }
            crate::stats::WorkerStats::add(&ctx.stats().messages_published, 1);
            encode::integer(ctx.reply, n as i64);
            Exec::Done
        }
        None => Exec::Blocked,
    }
}

/// `PUBLISH channel message` → number of receivers (channel subscribers plus
/// matching pattern subscriptions, on every worker). The count is what the
/// registry holds when the message is routed: a subscriber that leaves
/// concurrently may be counted and not receive it.
pub(super) fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    publish_in(ctx, args, Namespace::Global)
}

/// `SPUBLISH shardchannel message`: shard channels only; patterns never match.
pub(super) fn spublish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Exec {
    publish_in(ctx, args, Namespace::Shard)
}

pub(super) static PUBSUB: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, 0, |ctx, a| {
        channels(ctx, a, Namespace::Global)
    }),
    cmd("pubsub|numsub", -2, 0, |ctx, a| {
        numsub(ctx, a, Namespace::Global)
    }),
    cmd("pubsub|numpat", 2, 0, |ctx, _| {
        let n = ctx.shared.registry.pattern_count();
        encode::integer(ctx.reply, n as i64);
        Exec::Done
    }),
    cmd("pubsub|shardchannels", -2, 0, |ctx, a| {
        channels(ctx, a, Namespace::Shard)
    }),
    cmd("pubsub|shardnumsub", -2, 0, |ctx, a| {
        numsub(ctx, a, Namespace::Shard)
    }),
    cmd("pubsub|help", 2, 0, |ctx, _| {
        help(
            ctx,
            &[
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Print this help.",
            ],
        )
    }),
];

fn channels(ctx: &mut Ctx<'_>, args: &[Bytes], ns: Namespace) -> Exec {
    if args.len() > 3 {
        encode::error(ctx.reply, errors::subcommand_syntax(&args[1], "PUBSUB"));
        return Exec::Done;
    }
    let list = ctx
        .shared
        .registry
        .channels(ns, args.get(2).map(|p| &p[..]));
    encode::array(ctx.reply, list.len());
    for c in list {
        encode::bulk(ctx.reply, &c);
    }
    Exec::Done
}

fn numsub(ctx: &mut Ctx<'_>, args: &[Bytes], ns: Namespace) -> Exec {
    let names = &args[2..];
    encode::array(ctx.reply, names.len() * 2);
    for c in names {
        let n = ctx.shared.registry.numsub(ns, c);
        encode::bulk(ctx.reply, c);
        encode::integer(ctx.reply, n as i64);
    }
    Exec::Done
}
