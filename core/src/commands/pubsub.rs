//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
//! PUBLISH, SPUBLISH and the PUBSUB introspection subcommands.
//!
//! Confirmations are pushes: Redis sends them even under `CLIENT REPLY OFF`,
//! so they go straight to the output queue instead of through the reply.

use bytes::{Bytes, BytesMut};

use super::{CommandSpec, Ctx, Exec, cmd, help};
use crate::errors;
use crate::registry::Namespace;
use crate::resp::encode;
use crate::router::SubKind;
use crate::session::Session;

const GLOBAL: SubKind = SubKind::Channel(Namespace::Global);
const SHARD: SubKind = SubKind::Channel(Namespace::Shard);

/// `<kind> <name|null> <count>` confirmation push.
fn confirm(ctx: &mut Ctx<'_>, word: &[u8], name: Option<&[u8]>, count: usize) {
    let proto = ctx.session.proto;
    let mut out = BytesMut::with_capacity(32 + name.map_or(0, <[u8]>::len));
    encode::push(&mut out, 3, proto);
    encode::bulk(&mut out, word);
    match name {
        Some(n) => encode::bulk(&mut out, n),
        None => encode::null(&mut out, proto),
    }
    encode::integer(&mut out, count as i64);
    ctx.pushes.extend(&out);
}

/// The count a confirmation of this kind reports: shard channels are
/// counted on their own, channels and patterns together.
fn count(session: &Session, kind: SubKind) -> usize {
    match kind {
        SHARD => session.shard_channels.len(),
        _ => session.subscription_count(),
    }
}

fn subscribe_all(ctx: &mut Ctx<'_>, args: &[Bytes], kind: SubKind, word: &[u8]) -> Exec {
    for name in &args[1..] {
        ctx.router.subscribe(ctx.conn, ctx.session, kind, name);
        let n = count(ctx.session, kind);
        confirm(ctx, word, Some(name), n);
    }
    ctx.session.publish_counts();
    Exec::Done
}

fn unsubscribe_all(ctx: &mut Ctx<'_>, args: &[Bytes], kind: SubKind, word: &[u8]) -> Exec {
    if args.len() > 1 {
        for name in &args[1..] {
            ctx.router.unsubscribe(ctx.conn, ctx.session, kind, name);
            let n = count(ctx.session, kind);
            confirm(ctx, word, Some(name), n);
        }
    } else {
        // Every held one (in no particular order, as Redis walks a hash
        // table); the count falls by one per frame.
        let held = ctx.router.unsubscribe_kind(ctx.conn, ctx.session, kind);
        let rest = count(ctx.session, kind);
        if held.is_empty() {
            // Nothing held and nothing named: one frame with a null name.
            confirm(ctx, word, None, rest);
        }
        for (i, name) in held.iter().enumerate() {
            confirm(ctx, word, Some(name), rest + held.len() - i - 1);
        }
    }
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
